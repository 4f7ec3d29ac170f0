# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What a gate returns: a status, a one-line message and findings that name file and line.

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PASS, WARN, FAIL, SKIP = "pass", "warn", "fail", "skip"
GATE_IDS = ("tests", "coverage", "bandit", "dependencies", "secrets")
SEVERITIES = ("low", "medium", "high")


class GateError(Exception):
    """A gate cannot be evaluated (a tool is missing, crashed or wrote nothing usable)."""


class ReportError(GateError):
    """A tool's report cannot be parsed; the message names the report and the cause."""


class InputError(GateError):
    """An input of the gate is unusable (a missing baseline, an unreadable advisory file)."""


@dataclass(frozen=True)
class Finding:
    """One thing a gate found, always with the file and line it is about."""

    file: str
    line: int
    rule: str
    severity: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "rule": self.rule,
                "severity": self.severity, "message": self.message}

    def where(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class Gate:
    """The outcome of one gate."""

    id: str
    status: str
    message: str
    findings: list[Finding] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "message": self.message,
                "findings": [finding.as_dict() for finding in self.findings],
                "details": self.details}


def severity_rank(value: str) -> int:
    """0 for low, 1 for medium, 2 for high; -1 for what bandit calls UNDEFINED."""
    value = (value or "").lower()
    return SEVERITIES.index(value) if value in SEVERITIES else -1


def first_lines(findings: list[Finding], limit: int = 3) -> str:
    """`a.py:4 B602, b.py:9 B105 (+2 more)` - the head of a finding list for a message."""
    head = ", ".join(f"{finding.where()} {finding.rule}" for finding in findings[:limit])
    more = len(findings) - limit
    return head + (f" (+{more} more)" if more > 0 else "")
