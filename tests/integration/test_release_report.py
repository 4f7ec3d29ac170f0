# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release_report callback through ansible-playbook and ansible-runner: a checklist with
a passing, a skipped, a rescued failure, a warning, a no_log failure that ends the play and
two declared steps that never run. The evidence files agree with the printed table, the JUnit
parses, and the no_log task's message is in neither the files nor what the callback prints."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CANARY = "canary-release-report-3f9a1c"
FILES = ("release-report.json", "release-report.xml", "release-report.md")
WARNING = ("As of Ansible 2.4, the parameter 'executable' is no longer supported with the "
           "'command' module. Not using '/bin/sh'.")
# name, status, detail, tasks, rescued
EXPECTED_STEPS = [
    ("announce", "pass", "1 task, 0 changed", 1, False),
    ("optional", "skipped", "condition false: release_optional | bool", 1, False),
    ("migrate", "fail", 'Apply the migration: migration 0042 <failed> & "stopped"', 2, True),
    ("lint", "warn", f"Run a command that warns: {WARNING}", 1, False),
    ("secrets", "fail", "Use the secret: output hidden (no_log)", 1, False),
    ("approval", "skipped", "disabled by release_approval=false", 0, False),
    ("smoke", "skipped", "not reached", 0, False),
]
PLAY = {
    "name": "Release", "hosts": "localhost", "gather_facts": False,
    "vars": {
        "release_id": "{{ 'r-' ~ 42 }}", "release_app": "shop", "release_optional": False,
        "release_steps": ["announce", "optional", "migrate", "lint", "secrets", "approval",
                          "smoke"],
        "release_skip_reasons": {"approval": "{{ '' if release_approval | default(false) "
                                             "else 'disabled by release_approval=false' }}"},
    },
    "tasks": [
        {"name": "Announce the release", "ansible.builtin.include_role": {"name": "announce"},
         "vars": {"release_step": "announce"}},
        {"name": "Run the optional part", "vars": {"release_step": "optional"}, "block": [
            {"name": "Do the optional thing", "ansible.builtin.debug": {"msg": "optional"},
             "when": "release_optional | bool"}]},
        {"name": "Note a task outside the checklist", "ansible.builtin.debug": {"msg": "aside"}},
        {"name": "Migrate", "vars": {"release_step": "migrate"},
         "block": [{"name": "Apply the migration",
                    "ansible.builtin.fail": {"msg": 'migration 0042 <failed> & "stopped"'}}],
         "rescue": [{"name": "Record the rescue", "ansible.builtin.debug": {"msg": "rescued"}}]},
        {"name": "Lint", "vars": {"release_step": "lint"}, "block": [
            {"name": "Run a command that warns",
             "ansible.builtin.command": {"cmd": "true", "executable": "/bin/sh"},
             "changed_when": False}]},
        {"name": "Handle the secret", "vars": {"release_step": "secrets"}, "block": [
            {"name": "Use the secret", "ansible.builtin.fail": {"msg": f"token {CANARY}"},
             "no_log": True}]},
        {"name": "Smoke test", "ansible.builtin.debug": {"msg": "smoke"},
         "vars": {"release_step": "smoke"}},
    ],
}


def write_project(project: Path) -> Path:
    """The playbook and its role in ``project``; returns the playbook."""
    tasks = project / "roles" / "announce" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "main.yml").write_text(json.dumps([
        {"name": "Say which release", "ansible.builtin.debug": {"msg": "release r-42"}}]))
    playbook = project / "release.yml"
    playbook.write_text(json.dumps([PLAY]))
    return playbook


def base_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PRODREADY_REPORT_DIR", "AWX_ISOLATED_DATA_DIR")
           and not k.startswith("ANSIBLE_")}
    return {**env, "PATH": f"{BIN}{os.pathsep}{env.get('PATH', '')}",
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_CALLBACKS_ENABLED": "prodready.deploy.release_report", **extra}


def inventory(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("localhost ansible_connection=local "
                    f"ansible_python_interpreter={sys.executable}\n")
    return path


def assert_report(directory: Path, out: str) -> None:
    report = json.loads((directory / "release-report.json").read_text())
    assert {k: report[k] for k in ("release_id", "app", "outcome", "run_failed", "summary")} == {
        "release_id": "r-42", "app": "shop", "outcome": "fail", "run_failed": True,
        "summary": {"pass": 1, "warn": 1, "fail": 2, "skipped": 3}}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["started"])
    assert report["started"] <= report["finished"]
    assert [(s["name"], s["status"], s["detail"], s["tasks"], s["rescued"])
            for s in report["steps"]] == EXPECTED_STEPS
    for step in report["steps"]:
        ran = step["tasks"] > 0
        assert (step["started"] is not None) == ran, step
        assert 0 <= step["duration"] <= report["duration"]

    root = ET.parse(directory / "release-report.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("7", "2", "3")
    failures = {case.get("name"): case.find("failure").get("message")
                for case in suite.iter("testcase") if case.find("failure") is not None}
    assert failures == {"migrate": EXPECTED_STEPS[2][2], "secrets": EXPECTED_STEPS[4][2]}
    skipped = [case.get("name") for case in suite.iter("testcase")
               if case.find("skipped") is not None]
    assert skipped == ["optional", "approval", "smoke"]

    markdown = (directory / "release-report.md").read_text().splitlines()
    assert markdown[0] == "# Release report shop r-42: FAIL"
    rows = markdown[markdown.index("| Step | Status | Duration | Detail |"):]
    expected_rows = [
        r"\| Step \| Status \| Duration \| Detail \|", r"\| --- \| --- \| --- \| --- \|",
        r"\| announce \| PASS \| \d+\.\ds \| 1 task, 0 changed \|",
        r"\| optional \| SKIPPED \| \d+\.\ds \| condition false: release_optional \\\| bool \|",
        r'\| migrate \| FAIL \| \d+\.\ds \| \[rescued\] Apply the migration: migration 0042 '
        r'&lt;failed&gt; &amp; "stopped" \|',
        r"\| lint \| WARN \| \d+\.\ds \| Run a command that warns: As of Ansible 2\.4, .* "
        r"Not using '/bin/sh'\. \|",
        r"\| secrets \| FAIL \| \d+\.\ds \| Use the secret: output hidden \(no_log\) \|",
        r"\| approval \| SKIPPED \| - \| disabled by release_approval=false \|",
        r"\| smoke \| SKIPPED \| - \| not reached \|",
    ]
    assert len(rows) == len(expected_rows), rows
    for row, pattern in zip(rows, expected_rows, strict=True):
        assert re.fullmatch(pattern, row), row

    # The printed table, after the play failed.
    assert "Release report shop r-42: FAIL" in out
    for pattern in (r"announce +\| PASS +\| +\d+\.\ds \| 1 task, 0 changed",
                    r"migrate +\| FAIL +\| +\d+\.\ds \| \[rescued\] Apply the migration: "
                    r'migration 0042 <failed> & "stopped"',
                    r"lint +\| WARN +\| +\d+\.\ds \| Run a command that warns: As of",
                    r"secrets +\| FAIL +\| +\d+\.\ds \| Use the secret: output hidden \(no_log\)",
                    r"approval +\| SKIPPED +\| +- \| disabled by release_approval=false",
                    r"smoke +\| SKIPPED +\| +- \| not reached"):
        assert re.search(pattern, out), pattern
    assert f"Release report: {directory / 'release-report.json'}, " in out
    assert not re.search(r"^Note a task outside", out, re.MULTILINE)

    for name in FILES:
        assert CANARY not in (directory / name).read_text(), name
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o640
    # ansible-core 2.19's own stdout callback prints the msg of a failed no_log task in its
    # "[ERROR]: Task failed: ..." line (censoring keeps a result's error summary); that
    # line is the only place the canary may be, and never what this callback printed.
    assert CANARY not in out[out.index("Release report shop r-42: FAIL"):]
    leaks = [line for line in out.splitlines() if CANARY in line]
    assert all(line.startswith("[ERROR]: Task failed: ") for line in leaks), leaks


def test_report_from_ansible_playbook(tmp_path: Path) -> None:
    playbook = write_project(tmp_path / "project")
    reports = tmp_path / "evidence" / "r-42"
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory(tmp_path / "hosts")), str(playbook)],
        capture_output=True, text=True, cwd=tmp_path / "project", timeout=300, check=False,
        env=base_env(PRODREADY_REPORT_DIR=str(reports)))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out  # a host failed: the no_log task
    assert "fatal: [localhost]: FAILED!" in out
    assert sorted(p.name for p in reports.iterdir()) == sorted(FILES)
    assert stat.S_IMODE(reports.stat().st_mode) == 0o750
    assert_report(reports, out)
    assert not (tmp_path / "project" / "release-report").exists()


RUNNER = """
import sys
import ansible_runner
run = ansible_runner.run(private_data_dir=sys.argv[1], playbook="release.yml", ident="rel-1",
                         quiet=True)
print(run.status, run.rc)
"""


def test_report_lands_in_the_runner_artifact_directory(tmp_path: Path) -> None:
    private = tmp_path / "runner"
    write_project(private / "project")
    inventory(private / "inventory" / "hosts")
    proc = subprocess.run([sys.executable, "-c", RUNNER, str(private)], capture_output=True,
                          text=True, cwd=tmp_path, timeout=300, check=False, env=base_env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["failed", "2"], proc.stdout + proc.stderr
    artifacts = private / "artifacts" / "rel-1"
    assert sorted(p.name for p in artifacts.glob("release-report.*")) == sorted(FILES)
    assert_report(artifacts, (artifacts / "stdout").read_text())
    assert not (private / "project" / "release-report").exists()
    assert not (tmp_path / "release-report").exists()
