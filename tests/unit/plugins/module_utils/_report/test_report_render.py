# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release report's renderings: JSON, JUnit XML, Markdown and the printed table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._report.render import (
    format_duration,
    markdown_cell,
    render_json,
    render_junit,
    render_markdown,
    render_table,
)
from ansible_collections.prodready.deploy.plugins.module_utils._report.steps import (
    Checklist,
    StepResult,
    TaskEvent,
    build_report,
)

CANARY = "canary-render-77c1"
T0 = 1764331200.0  # 2025-11-28T12:00:00Z


def sample_report() -> dict:
    steps = [
        StepResult("preflight", "pass", "4 tasks, 0 changed", tasks=4, started=T0,
                   finished=T0 + 2.04),
        StepResult("quality_gate", "skipped", "disabled by release_quality_gate=false"),
        StepResult("backup", "warn", "Dump: disk 91% full", tasks=2, changed=1,
                   started=T0 + 3, finished=T0 + 128.5),
        StepResult("migration", "fail", 'Migrate: column "a|b" <x> & \'y\'\nsecond line',
                   tasks=3, started=T0 + 130, finished=T0 + 131, rescued=True),
        StepResult("rollout", "skipped", "not reached"),
    ]
    return build_report(steps, T0, T0 + 140.0, release_id="r-42", app="shop", run_failed=True)


def test_json_holds_the_document():
    report = sample_report()
    assert json.loads(render_json(report)) == report


def test_junit_has_one_testcase_per_step_and_escapes_the_message():
    root = ET.fromstring(render_junit(sample_report()))
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert {k: suite.get(k) for k in ("name", "tests", "failures", "errors", "skipped", "time",
                                      "timestamp")} == {
        "name": "release shop r-42", "tests": "5", "failures": "1", "errors": "0",
        "skipped": "2", "time": "140.000", "timestamp": "2025-11-28T12:00:00"}
    assert {p.get("name"): p.get("value") for p in suite.iter("property")} == {
        "release_id": "r-42", "app": "shop", "outcome": "fail"}
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name"), c.get("time")) for c in cases] == [
        ("release.shop", "preflight", "2.040"), ("release.shop", "quality_gate", "0.000"),
        ("release.shop", "backup", "125.500"), ("release.shop", "migration", "1.000"),
        ("release.shop", "rollout", "0.000")]
    failure = cases[3].find("failure")
    assert failure is not None
    assert failure.get("message") == 'Migrate: column "a|b" <x> & \'y\' second line'
    assert failure.get("type") == "rescued"
    assert failure.text == 'Migrate: column "a|b" <x> & \'y\'\nsecond line'
    assert [c.find("skipped").get("message") for c in cases if c.find("skipped") is not None
            ] == ["disabled by release_quality_gate=false", "not reached"]
    assert cases[2].find("failure") is None and cases[2].find("skipped") is None
    assert cases[2].findtext("system-out") == "WARN: Dump: disk 91% full\n2 tasks, 1 changed"
    assert cases[0].findtext("system-out") == "PASS: 4 tasks, 0 changed"


def test_junit_parses_even_with_control_characters_in_a_message():
    report = build_report([StepResult("image", "fail", "build: \x1b[31mred\x1b[0m\x00 done")],
                          T0, T0 + 1)
    failure = ET.fromstring(render_junit(report)).find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.text == "build: \ufffd[31mred\ufffd[0m\ufffd done"
    assert ET.fromstring(render_junit(report)).find("testsuite").get("name") == "release"


def test_markdown_table():
    lines = render_markdown(sample_report()).decode().splitlines()
    assert lines == [
        "# Release report shop r-42: FAIL",
        "",
        "Started 2025-11-28T12:00:00Z, finished 2025-11-28T12:02:20Z (140.0s): "
        "1 pass, 1 warn, 1 fail, 2 skipped.",
        "",
        "| Step | Status | Duration | Detail |",
        "| --- | --- | --- | --- |",
        "| preflight | PASS | 2.0s | 4 tasks, 0 changed |",
        "| quality_gate | SKIPPED | - | disabled by release_quality_gate=false |",
        "| backup | WARN | 2m 05.5s | Dump: disk 91% full |",
        "| migration | FAIL | 1.0s | [rescued] Migrate: column \"a\\|b\" &lt;x&gt; &amp; 'y' "
        "second line |",
        "| rollout | SKIPPED | - | not reached |",
    ]


@pytest.mark.parametrize(("text", "cell"), [
    ("a | b", "a \\| b"),
    ("<script>x</script>", "&lt;script&gt;x&lt;/script&gt;"),
    ("C:\\dir|x", "C:\\\\dir\\|x"),
    ("one\n  two\tthree", "one two three"),
])
def test_markdown_cells_stay_in_their_column(text, cell):
    assert markdown_cell(text) == cell


def test_printed_table():
    assert render_table(sample_report(), width=30) == [
        "Release report shop r-42: FAIL",
        "Started 2025-11-28T12:00:00Z, finished 2025-11-28T12:02:20Z (140.0s): "
        "1 pass, 1 warn, 1 fail, 2 skipped.",
        "STEP         | STATUS  | DURATION | DETAIL",
        "-------------+---------+----------+-------",
        "preflight    | PASS    |     2.0s | 4 tasks, 0 changed",
        "quality_gate | SKIPPED |        - | disabled by release_quality...",
        "backup       | WARN    | 2m 05.5s | Dump: disk 91% full",
        "migration    | FAIL    |     1.0s | [rescued] Migrate: column \"...",
        "rollout      | SKIPPED |        - | not reached",
        "-------------+---------+----------+-------",
    ]


@pytest.mark.parametrize(("duration", "text"), [
    (0.0, "0.0s"), (0.04, "0.0s"), (59.94, "59.9s"), (60.0, "1m 00.0s"), (754.25, "12m 34.2s"),
    (3600.0, "1h 00m"), (7384.0, "2h 03m"),
])
def test_durations(duration, text):
    assert format_duration({"started": "2025-11-28T12:00:00Z", "duration": duration}) == text
    assert format_duration({"started": None, "duration": duration}) == "-"


def test_a_no_log_step_never_leaks_into_any_rendering():
    checklist = Checklist()
    checklist.declare(["secrets"])
    checklist.record(TaskEvent("secrets", "Write the secret", "failed", T0 + 1, T0, no_log=True,
                               result={"msg": f"token {CANARY}", "stderr": CANARY,
                                       "censored": "hidden"}, warnings=[CANARY]))
    report = build_report(checklist.steps(), T0, T0 + 2, app="shop")
    assert report["steps"][0]["detail"] == "Write the secret: output hidden (no_log)"
    outputs = [render_json(report), render_junit(report), render_markdown(report),
               "\n".join(render_table(report)).encode()]
    for output in outputs:
        assert b"output hidden (no_log)" in output
        assert CANARY.encode() not in output
