# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The bandit gate: `bandit -f json` parsed, findings at or above the thresholds fail.

Private to this collection (leading underscore): the API may change without notice.

Bandit's report quotes source code (`code`) and its hardcoded-password tests quote the
value they found in `issue_text`; both would put a secret into the task result and the
evidence. The report is sanitised before anything else reads it.
"""

from __future__ import annotations

import json
from typing import Any

from .model import FAIL, PASS, WARN, Finding, Gate, ReportError, first_lines, severity_rank

# B105 hardcoded_password_string, B106 hardcoded_password_funcarg,
# B107 hardcoded_password_default: their issue_text ends with the value found.
VALUE_QUOTING_TESTS = frozenset({"B105", "B106", "B107"})


def sanitise(report: dict[str, Any]) -> dict[str, Any]:
    """The report without source excerpts, quoted secret values or its timestamp."""
    clean = {key: value for key, value in report.items() if key != "generated_at"}
    results = []
    for item in report.get("results") or []:
        item = {key: value for key, value in item.items() if key != "code"}
        if item.get("test_id") in VALUE_QUOTING_TESTS:
            text = str(item.get("issue_text") or "")
            item["issue_text"] = text.split(":", 1)[0] + " (value not shown)"
        item["filename"] = _clean_path(str(item.get("filename") or "?"))
        results.append(item)
    clean["results"] = results
    clean["errors"] = [{**error, "filename": _clean_path(str(error.get("filename") or "?"))}
                       for error in report.get("errors") or []]
    if isinstance(report.get("metrics"), dict):
        clean["metrics"] = {_clean_path(key): value for key, value in report["metrics"].items()}
    return clean


def _clean_path(path: str) -> str:
    return path[2:] if path.startswith("./") else path


def parse(text: str) -> dict[str, Any]:
    """bandit's JSON report, sanitised."""
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"bandit's JSON report cannot be parsed ({exc})") from exc
    if not isinstance(report, dict) or not isinstance(report.get("results"), list):
        raise ReportError("bandit's JSON report has no `results` list")
    return sanitise(report)


def gate(report: dict[str, Any], severity: str = "high", confidence: str = "low") -> Gate:
    """Fails on a finding of at least `severity` and `confidence`; warns on the others and
    on files bandit could not scan."""
    failing: list[Finding] = []
    other: list[Finding] = []
    for item in report["results"]:
        cwe = (item.get("issue_cwe") or {}).get("id")
        finding = Finding(
            file=item["filename"], line=int(item.get("line_number") or 0),
            rule=f"{item.get('test_id', '?')} {item.get('test_name', '')}".strip(),
            severity=str(item.get("issue_severity", "")).lower(),
            message=f"{item.get('issue_text', '')} (confidence "
                    f"{str(item.get('issue_confidence', '')).lower()}"
                    + (f", CWE-{cwe})" if cwe else ")"))
        blocking = (severity_rank(item.get("issue_severity", "")) >= severity_rank(severity)
                    and severity_rank(item.get("issue_confidence", ""))
                    >= severity_rank(confidence))
        (failing if blocking else other).append(finding)
    for error in report.get("errors") or []:
        other.append(Finding(file=error["filename"], line=0, rule="bandit-error",
                             severity="low", message=str(error.get("reason", "not scanned"))))
    details = {"failing": len(failing), "other": len(other),
               "severity": severity, "confidence": confidence}
    threshold = f"severity >= {severity}, confidence >= {confidence}"
    if failing:
        return Gate("bandit", FAIL, f"{len(failing)} finding(s) with {threshold}: "
                                    f"{first_lines(failing)}", failing + other, details)
    if other:
        return Gate("bandit", WARN, f"no finding with {threshold}; {len(other)} below it: "
                                    f"{first_lines(other)}", other, details)
    return Gate("bandit", PASS, "no findings", details=details)
