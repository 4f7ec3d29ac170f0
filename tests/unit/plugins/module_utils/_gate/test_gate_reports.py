# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JUnit and Cobertura parsing, the tests and coverage gates, and the evidence files."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._gate import evidence, reports
from ansible_collections.prodready.deploy.plugins.module_utils._gate.model import (
    FAIL,
    PASS,
    ReportError,
)

FIXTURES = Path(__file__).parent / "fixtures"


def test_parse_junit_counts_and_failure_location():
    junit = reports.parse_junit((FIXTURES / "junit.xml").read_text())
    assert junit.as_dict() == {"tests": 3, "failures": 1, "errors": 0, "skipped": 1,
                               "passed": 1}
    [failed] = junit.failed
    # the traceback line in the test's own file, not the 0-based `def` line of the report
    assert (failed.file, failed.line, failed.rule) == ("tests/test_calc.py", 11, "test-failure")
    assert failed.message == "tests.test_calc::test_add_wrong failed: assert 2 == 3"


@pytest.mark.parametrize(("case", "where"), [
    ('<testcase classname="a.b" name="t" file="a/b.py" line="9"><error message="x">'
     'no traceback</error></testcase>', ("a/b.py", 10)),
    ('<testcase classname="pkg.test_m" name="t"><failure>pkg/helper.py:3: in f\n'
     'x</failure></testcase>', ("pkg/helper.py", 3)),
    ('<testcase classname="pkg.test_m" name="t"><failure>boom</failure></testcase>',
     ("pkg/test_m.py", 0)),
])
def test_failure_location_fallbacks(case, where):
    junit = reports.parse_junit(f"<testsuite>{case}</testsuite>")
    assert (junit.failed[0].file, junit.failed[0].line) == where


@pytest.mark.parametrize(("text", "error"), [
    ("<testsuites", "the JUnit report is not valid XML"),
    ("<html/>", "the JUnit report's root is <html>"),
])
def test_parse_junit_errors(text, error):
    with pytest.raises(ReportError, match=error):
        reports.parse_junit(text)


@pytest.mark.parametrize(("xml", "returncode", "status", "message"), [
    ('<testsuite><testcase name="a"/></testsuite>', 0, PASS,
     "1 passed, 0 failed, 0 errors, 0 skipped"),
    ("<testsuite/>", 5, FAIL, "no tests ran (the JUnit report lists none)"),
    ('<testsuite><testcase name="a"/></testsuite>', 3, FAIL,
     "the test command exited with 3 although its report has no failure (1 passed, 0 failed, "
     "0 errors, 0 skipped): INTERNALERROR"),
    (None, 4, FAIL, "the test command (exit code 4) wrote no JUnit report: INTERNALERROR"),
])
def test_tests_gate(xml, returncode, status, message):
    junit = reports.parse_junit(xml) if xml else None
    gate = reports.tests_gate(junit, returncode, "INTERNALERROR")
    assert (gate.id, gate.status, gate.message) == ("tests", status, message)


def test_tests_gate_names_failed_tests():
    gate = reports.tests_gate(reports.parse_junit((FIXTURES / "junit.xml").read_text()), 1)
    assert gate.status == FAIL
    assert gate.message == ("1 of 3 tests failed (1 passed, 1 failed, 0 errors, 1 skipped): "
                            "tests/test_calc.py:11 test-failure")


def test_parse_cobertura_totals_and_files():
    coverage = reports.parse_cobertura((FIXTURES / "coverage.xml").read_text(), "/tmp/qg-fx/src")
    assert (coverage.covered, coverage.valid) == (13, 18)
    assert [(f.file, f.covered, f.valid, f.missed_lines) for f in coverage.files] == [
        ("calc.py", 5, 9, [9, 13, 14, 15]), ("tests/test_calc.py", 8, 9, [16])]


@pytest.mark.parametrize(("minimum", "status", "message"), [
    (72.0, PASS, "72.22% covered (minimum 72.0%)"),
    (80.0, FAIL, "72.22% covered, under the minimum of 80.0% (5 lines not covered): "
                 "calc.py:9 coverage"),
    (90.0, FAIL, "72.22% covered, under the minimum of 90.0% (5 lines not covered): "
                 "calc.py:9 coverage, tests/test_calc.py:16 coverage"),
])
def test_coverage_gate_threshold(minimum, status, message):
    coverage = reports.parse_cobertura((FIXTURES / "coverage.xml").read_text(), "/tmp/qg-fx/src")
    gate = reports.coverage_gate(coverage, minimum)
    assert (gate.status, gate.message) == (status, message)
    if status == FAIL:
        assert gate.findings[0].as_dict() == {
            "file": "calc.py", "line": 9, "rule": "coverage", "severity": "high",
            "message": "55.6% covered (5 of 9 lines); not covered: 9, 13-15"}


def test_coverage_gate_without_data():
    assert reports.coverage_gate(None, 80).message == "the test command wrote no coverage report"
    empty = reports.parse_cobertura('<coverage lines-valid="0" lines-covered="0"/>')
    assert reports.coverage_gate(empty, 80).status == FAIL


def test_branches_count_like_coverage_report():
    coverage = reports.parse_cobertura('<coverage lines-valid="10" lines-covered="8" '
                                       'branches-valid="10" branches-covered="9"/>')
    assert coverage.percent == 85.0


@pytest.mark.parametrize(("lines", "text"), [
    ([], ""), ([3], "3"), ([5, 3, 4, 9, 12, 13], "3-5, 9, 12-13"),
])
def test_line_ranges(lines, text):
    assert reports.line_ranges(lines) == text


def test_normalised_reports_have_no_timing():
    for name in ("junit.xml", "coverage.xml"):
        text = evidence.normalise_xml((FIXTURES / name).read_text()).decode()
        assert "timestamp=" not in text and " time=" not in text and "hostname=" not in text
        assert "<testcase" in text or "<line " in text


def test_plan_and_write_is_idempotent_and_check_mode_writes_nothing(tmp_path):
    target = tmp_path / "evidence"
    files = {"quality-gate.json": evidence.dump_json({"b": 1, "a": [1]}), "junit.xml": b"<x/>"}
    assert evidence.plan_and_write(str(target), files, write=False) == [
        f"{target}/", "junit.xml", "quality-gate.json"]
    assert not target.exists()
    assert evidence.plan_and_write(str(target), files, write=True) == [
        f"{target}/", "junit.xml", "quality-gate.json"]
    assert evidence.plan_and_write(str(target), files, write=True) == []
    assert (target / "quality-gate.json").read_text() == '{\n  "a": [\n    1\n  ],\n  "b": 1\n}\n'
    # a report this run did not produce is removed
    assert evidence.plan_and_write(str(target), {"junit.xml": b"<x/>"}, write=True) == [
        "quality-gate.json"]
    assert sorted(p.name for p in target.iterdir()) == ["junit.xml"]
