# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The test gate (JUnit XML) and the coverage gate (Cobertura XML, as pytest-cov writes it).

Private to this collection (leading underscore): the API may change without notice.

The reports come from the test command the gate itself ran, so the standard library's XML
parser is enough (no entity expansion happens in ElementTree's default parser; bandit's
B405/B314 are marked `nosec` for that reason).
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET  # nosec B405
from dataclasses import dataclass, field
from typing import Any

from .model import FAIL, PASS, Finding, Gate, ReportError, first_lines

# `path/to/test_x.py:42: AssertionError` - the location lines of a pytest traceback.
_TRACE_LINE = re.compile(r"^(?P<file>[^\s:]+\.py):(?P<line>\d+):", re.MULTILINE)


@dataclass
class JUnitResult:
    tests: int = 0
    failures: int = 0
    errors: int = 0
    skipped: int = 0
    failed: list[Finding] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"tests": self.tests, "failures": self.failures, "errors": self.errors,
                "skipped": self.skipped,
                "passed": self.tests - self.failures - self.errors - self.skipped}


def _parse_xml(text: str, what: str) -> ET.Element:
    try:
        return ET.fromstring(text)  # nosec B314
    except ET.ParseError as exc:
        raise ReportError(f"{what} is not valid XML ({exc})") from exc


def _failure_location(case: ET.Element, text: str) -> tuple[str, int]:
    """File and line of a failed test: the traceback line in the test's own file when the
    report has one, else the test's `file`/`line` attributes (pytest writes the line of the
    `def` 0-based), else the file derived from the class name."""
    file = case.get("file") or ""
    if not file:
        classname = case.get("classname") or ""
        file = classname.replace(".", "/") + ".py" if classname else "<unknown>"
    hits = [(m.group("file"), int(m.group("line"))) for m in _TRACE_LINE.finditer(text)]
    own = [hit for hit in hits if hit[0].endswith(file) or file.endswith(hit[0])]
    if own:
        return own[-1]
    if case.get("line", "").isdigit():
        return file, int(case.get("line")) + 1
    if hits:
        return hits[-1]
    return file, 0


def parse_junit(text: str) -> JUnitResult:
    """Counts and one finding per failed or erroring test case."""
    root = _parse_xml(text, "the JUnit report")
    if root.tag not in ("testsuites", "testsuite"):
        raise ReportError(f"the JUnit report's root is <{root.tag}>, not <testsuites>")
    result = JUnitResult()
    for case in root.iter("testcase"):
        result.tests += 1
        name = case.get("name") or "?"
        classname = case.get("classname") or ""
        test_id = f"{classname}::{name}" if classname else name
        for tag in ("failure", "error"):
            node = case.find(tag)
            if node is None:
                continue
            if tag == "failure":
                result.failures += 1
            else:
                result.errors += 1
            detail = (node.get("message") or "").strip().splitlines()
            file, line = _failure_location(case, node.text or "")
            result.failed.append(Finding(
                file=file, line=line, rule="test-" + tag, severity="high",
                message=f"{test_id} {'failed' if tag == 'failure' else 'errored'}"
                        + (f": {detail[0][:300]}" if detail else "")))
            break
        else:
            if case.find("skipped") is not None:
                result.skipped += 1
    return result


def tests_gate(junit: JUnitResult | None, returncode: int | None,
               output_tail: str = "") -> Gate:
    """Fails on any failed or erroring test, on no tests at all, or on a test command that
    failed without saying why in its report."""
    if junit is None:
        return Gate("tests", FAIL, f"the test command (exit code {returncode}) wrote no JUnit "
                                   f"report" + (f": {output_tail}" if output_tail else ""),
                    details={"returncode": returncode})
    details = {**junit.as_dict(), "returncode": returncode}
    counts = (f"{details['passed']} passed, {junit.failures} failed, {junit.errors} errors, "
              f"{junit.skipped} skipped")
    if junit.failed:
        return Gate("tests", FAIL, f"{len(junit.failed)} of {junit.tests} tests failed "
                                   f"({counts}): {first_lines(junit.failed)}",
                    junit.failed, details)
    if junit.tests == 0:
        return Gate("tests", FAIL, "no tests ran (the JUnit report lists none)",
                    details=details)
    if returncode:
        return Gate("tests", FAIL, f"the test command exited with {returncode} although its "
                                   f"report has no failure ({counts})"
                    + (f": {output_tail}" if output_tail else ""), details=details)
    return Gate("tests", PASS, counts, details=details)


@dataclass
class FileCoverage:
    file: str
    covered: int
    valid: int
    missed_lines: list[int]

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.valid if self.valid else 100.0


@dataclass
class CoverageResult:
    covered: int
    valid: int
    files: list[FileCoverage]

    @property
    def percent(self) -> float:
        return 100.0 * self.covered / self.valid if self.valid else 0.0


def line_ranges(lines: list[int]) -> str:
    """`3-5, 9, 12-13` from [3, 4, 5, 9, 12, 13]."""
    parts: list[str] = []
    start = prev = None
    for number in sorted(set(lines)):
        if prev is not None and number == prev + 1:
            prev = number
            continue
        if start is not None:
            parts.append(str(start) if start == prev else f"{start}-{prev}")
        start = prev = number
    if start is not None:
        parts.append(str(start) if start == prev else f"{start}-{prev}")
    return ", ".join(parts)


def _relative(path: str, sources: list[str], src: str) -> str:
    """A report path relative to the source tree when it lies inside it."""
    for base in sources or [""]:
        full = path if os.path.isabs(path) else os.path.join(base, path)
        if os.path.isabs(full) and src:
            rel = os.path.relpath(full, src)
            if not rel.startswith(".."):
                return rel
    return path


def parse_cobertura(text: str, src: str = "") -> CoverageResult:
    """Totals as `coverage report` counts them (statements, plus branches when measured) and
    the lines each file misses."""
    root = _parse_xml(text, "the Cobertura coverage report")
    if root.tag != "coverage":
        raise ReportError(f"the coverage report's root is <{root.tag}>, not <coverage>")
    try:
        covered = int(root.get("lines-covered", "0")) + int(root.get("branches-covered", "0"))
        valid = int(root.get("lines-valid", "0")) + int(root.get("branches-valid", "0"))
    except ValueError as exc:
        raise ReportError(f"the coverage report's totals are not numbers ({exc})") from exc
    sources = [(node.text or "").strip() for node in root.iter("source")]
    files: dict[str, FileCoverage] = {}
    for cls in root.iter("class"):
        name = _relative(cls.get("filename") or "?", sources, src)
        entry = files.setdefault(name, FileCoverage(name, 0, 0, []))
        for line in cls.iter("line"):
            number = int(line.get("number", "0"))
            entry.valid += 1
            if int(line.get("hits", "0")) > 0:
                entry.covered += 1
            else:
                entry.missed_lines.append(number)
    return CoverageResult(covered, valid, sorted(files.values(), key=lambda f: f.file))


def coverage_gate(coverage: CoverageResult | None, minimum: float) -> Gate:
    """Fails under `minimum` percent; the findings are the files under it, those that miss
    the most lines first, each at its first line not covered."""
    if coverage is None:
        return Gate("coverage", FAIL, "the test command wrote no coverage report")
    if coverage.valid == 0:
        return Gate("coverage", FAIL, "the coverage report measured no lines (is the "
                                      "coverage source the application's code?)")
    percent = round(coverage.percent, 2)
    details = {"percent": percent, "minimum": minimum, "covered": coverage.covered,
               "valid": coverage.valid}
    if percent >= minimum:
        return Gate("coverage", PASS, f"{percent}% covered (minimum {minimum}%)",
                    details=details)
    below = sorted((f for f in coverage.files if f.percent < minimum and f.missed_lines),
                   key=lambda f: (-len(f.missed_lines), f.file))
    findings = [Finding(
        file=f.file, line=min(f.missed_lines), rule="coverage", severity="high",
        message=f"{round(f.percent, 1)}% covered ({f.covered} of {f.valid} lines); not "
                f"covered: {line_ranges(f.missed_lines)}") for f in below]
    return Gate("coverage", FAIL, f"{percent}% covered, under the minimum of {minimum}% "
                                  f"({coverage.valid - coverage.covered} lines not covered)"
                + (f": {first_lines(findings)}" if findings else ""), findings, details)
