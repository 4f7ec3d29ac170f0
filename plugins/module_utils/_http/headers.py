# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Security headers against the OWASP Secure Headers Project's recommended set, with a grade.

Each item has a weight (its share of 100 points); a missing or weak item loses its weight (a
too-short HSTS max-age loses part of it). Grades: A >= 90, B >= 80, C >= 70, D >= 60,
E >= 50, F below.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

HSTS_MIN_SECONDS = 31536000
GRADES = ("A", "B", "C", "D", "E", "F")
_GRADE_FLOORS = ((90, "A"), (80, "B"), (70, "C"), (60, "D"), (50, "E"))
WEIGHTS = {
    "Content-Security-Policy": 25,
    "Strict-Transport-Security": 25,
    "X-Frame-Options": 15,
    "X-Content-Type-Options": 15,
    "Referrer-Policy": 10,
    "Server": 5,
    "X-Powered-By": 5,
}
# Policies that send the full URL (path and query) to other origins.
_LEAKY_REFERRER = frozenset({"unsafe-url", "no-referrer-when-downgrade"})
_VERSION = re.compile(r"\d+(\.\d+)*")


@dataclass(frozen=True)
class Finding:
    item: str
    problem: str
    points: int

    def as_dict(self) -> dict[str, Any]:
        return {"item": self.item, "problem": self.problem, "points": self.points}


def grade_for(score: int) -> str:
    return next((grade for floor, grade in _GRADE_FLOORS if score >= floor), "F")


def _directives(policy: str) -> dict[str, str]:
    found = {}
    for part in policy.split(";"):
        words = part.strip().split(None, 1)
        if words:
            found.setdefault(words[0].lower(), words[1] if len(words) > 1 else "")
    return found


def hsts_max_age(value: str) -> int | None:
    match = re.search(r"(?:^|;)\s*max-age\s*=\s*\"?(\d+)\"?", value, re.IGNORECASE)
    return int(match.group(1)) if match else None


def evaluate(headers: Mapping[str, str], hsts_min: int = HSTS_MIN_SECONDS
             ) -> dict[str, Any]:
    """Grade lower-cased response headers: score, grade, the findings and what was present."""
    def get(name: str) -> str | None:
        value = headers.get(name.lower())
        return value.strip() if value is not None else None

    findings: list[Finding] = []
    csp = get("Content-Security-Policy")
    directives = _directives(csp) if csp else {}
    if not csp:
        findings.append(Finding("Content-Security-Policy", "missing",
                                WEIGHTS["Content-Security-Policy"]))

    hsts = get("Strict-Transport-Security")
    if not hsts:
        findings.append(Finding("Strict-Transport-Security", "missing",
                                WEIGHTS["Strict-Transport-Security"]))
    else:
        age = hsts_max_age(hsts)
        if age is None:
            findings.append(Finding("Strict-Transport-Security", "has no max-age",
                                    WEIGHTS["Strict-Transport-Security"]))
        elif age < hsts_min:
            findings.append(Finding("Strict-Transport-Security",
                                    f"max-age={age} is under {hsts_min} (one year)", 10))

    frame = (get("X-Frame-Options") or "").upper()
    if frame not in ("DENY", "SAMEORIGIN") and "frame-ancestors" not in directives:
        problem = f"is {frame!r} (want DENY or SAMEORIGIN)" if frame else \
            "missing (and no CSP frame-ancestors)"
        findings.append(Finding("X-Frame-Options", problem, WEIGHTS["X-Frame-Options"]))

    nosniff = get("X-Content-Type-Options")
    if (nosniff or "").lower() != "nosniff":
        findings.append(Finding("X-Content-Type-Options",
                                f"is {nosniff!r} (want nosniff)" if nosniff else "missing",
                                WEIGHTS["X-Content-Type-Options"]))

    referrer = get("Referrer-Policy")
    if not referrer:
        findings.append(Finding("Referrer-Policy", "missing", WEIGHTS["Referrer-Policy"]))
    else:
        # Browsers use the last policy they understand.
        last = [p.strip().lower() for p in referrer.split(",") if p.strip()][-1:]
        if last and last[0] in _LEAKY_REFERRER:
            findings.append(Finding("Referrer-Policy",
                                    f"{last[0]} sends full URLs to other origins",
                                    WEIGHTS["Referrer-Policy"]))

    server = get("Server")
    if server and _VERSION.search(server):
        findings.append(Finding("Server", f"reveals a version ({server})", WEIGHTS["Server"]))
    powered = get("X-Powered-By")
    if powered is not None:
        findings.append(Finding("X-Powered-By", f"present ({powered})",
                                WEIGHTS["X-Powered-By"]))

    score = 100 - sum(f.points for f in findings)
    return {
        "score": score, "grade": grade_for(score),
        "findings": [f.as_dict() for f in findings],
        "missing": [f.item for f in findings if f.problem.startswith("missing")],
        "present": {name: get(name) for name in WEIGHTS if get(name) is not None},
    }


def better_or_equal(grade: str, minimum: str) -> bool:
    return GRADES.index(grade) <= GRADES.index(minimum)
