# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Grading of the security headers against the OWASP recommended set."""

from __future__ import annotations

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._http.headers import (
    better_or_equal,
    evaluate,
    grade_for,
    hsts_max_age,
)

FULL = {
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "referrer-policy": "no-referrer",
}


def without(*names: str, **extra: str) -> dict[str, str]:
    found = {k: v for k, v in FULL.items() if k not in names}
    found.update({k.replace("_", "-"): v for k, v in extra.items()})
    return found


@pytest.mark.parametrize(("headers", "grade", "score", "items"), [
    (FULL, "A", 100, []),
    ({}, "F", 10, ["Content-Security-Policy", "Strict-Transport-Security", "X-Frame-Options",
                   "X-Content-Type-Options", "Referrer-Policy"]),
    (without("x-frame-options"), "A", 100, []),  # CSP frame-ancestors covers framing
    (without("x-frame-options", content_security_policy="default-src 'self'"), "B", 85,
     ["X-Frame-Options"]),
    (without(strict_transport_security="max-age=86400"), "A", 90,
     ["Strict-Transport-Security"]),
    (without("content-security-policy", "x-frame-options"), "D", 60,
     ["Content-Security-Policy", "X-Frame-Options"]),
    (without(server="nginx/1.25.3", x_powered_by="Express"), "A", 90,
     ["Server", "X-Powered-By"]),
    (without(server="nginx"), "A", 100, []),  # a name without a version is fine
    (without(referrer_policy="no-referrer, unsafe-url"), "A", 90, ["Referrer-Policy"]),
    (without(x_content_type_options="sniff"), "B", 85, ["X-Content-Type-Options"]),
])
def test_grade(headers: dict[str, str], grade: str, score: int, items: list[str]) -> None:
    verdict = evaluate(headers)
    assert (verdict["grade"], verdict["score"]) == (grade, score)
    assert [f["item"] for f in verdict["findings"]] == items


def test_missing_names_only_absent_headers() -> None:
    verdict = evaluate(without("referrer-policy", strict_transport_security="max-age=10"))
    assert verdict["missing"] == ["Referrer-Policy"]
    assert verdict["findings"][0]["problem"] == "max-age=10 is under 31536000 (one year)"


@pytest.mark.parametrize(("score", "grade"), [(100, "A"), (90, "A"), (89, "B"), (70, "C"),
                                              (60, "D"), (50, "E"), (49, "F"), (0, "F")])
def test_grade_floors(score: int, grade: str) -> None:
    assert grade_for(score) == grade


@pytest.mark.parametrize(("value", "age"), [("max-age=31536000", 31536000),
                                            ('max-age="600"; preload', 600),
                                            ("includeSubDomains; max-age=5", 5),
                                            ("includeSubDomains", None)])
def test_hsts_max_age(value: str, age: int | None) -> None:
    assert hsts_max_age(value) == age


def test_better_or_equal() -> None:
    assert better_or_equal("A", "B") and better_or_equal("B", "B")
    assert not better_or_equal("C", "B")
