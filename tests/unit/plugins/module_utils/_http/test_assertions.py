# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JMESPath assertions and the placeholder substitution of the smoke suites."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._http.assertions import (
    MissingValueError,
    evaluate,
    placeholders,
    same,
    substitute,
)
from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    HttpInputError,
)

SCOPES = {"saved": {"id": 42, "email": "a@example.com"}, "vars": {"tier": "gold"},
          "run": {"id": "abc123"}}


@pytest.mark.parametrize(("value", "expected"), [
    ("{{ saved.id }}", 42),                      # whole value keeps its type
    ("{{saved.id}}", 42),
    ("/api/users/{{ saved.id }}/export", "/api/users/42/export"),
    ("u-{{ run.id }}@example.com", "u-abc123@example.com"),
    ({"k-{{ vars.tier }}": ["{{ saved.email }}", 1]}, {"k-gold": ["a@example.com", 1]}),
    ("no placeholder {", "no placeholder {"),
    (7, 7),
])
def test_substitute(value: Any, expected: Any) -> None:
    assert substitute(value, SCOPES) == expected


@pytest.mark.parametrize("value", ["{{ saved.id + 1 }}", "{{ lookup('env', 'HOME') }}",
                                   "x {{ saved.id | int }}", "{{ self.__class__ }}"])
def test_expressions_are_refused(value: str) -> None:
    with pytest.raises(HttpInputError):
        substitute(value, SCOPES)


def test_missing_value_names_it() -> None:
    with pytest.raises(MissingValueError) as info:
        substitute("/api/users/{{ saved.user_id }}", SCOPES)
    assert (info.value.namespace, info.value.name) == ("saved", "user_id")


def test_placeholders_found_everywhere() -> None:
    assert placeholders({"a": ["{{ saved.id }}", {"{{ vars.x }}": "{{ run.id }}"}]}) == {
        ("saved", "id"), ("vars", "x"), ("run", "id")}


def test_evaluate_reports_expected_and_actual() -> None:
    body = {"status": "fail", "checks": {"database": "ok", "redis": "fail"}, "n": 1}
    found = evaluate({"status": "ok", "checks.database": "ok", "checks.redis": "ok",
                      "n": 1.0, "length(checks)": 2}, body)
    assert [m.describe() for m in found] == ['status: expected "ok", got "fail"',
                                             'checks.redis: expected "ok", got "fail"']


def test_evaluate_refuses_bad_expression() -> None:
    with pytest.raises(HttpInputError, match=r"option health.json: 'a\[' is not a JMESPath"):
        evaluate({"a[": 1}, {}, "health.json")


@pytest.mark.parametrize(("expected", "actual", "equal"), [
    (1, 1.0, True), (True, 1, False), (1, True, False), (False, False, True),
    ([1, "a"], [1, "a"], True), (None, None, True), ("1", 1, False)])
def test_same(expected: Any, actual: Any, equal: bool) -> None:
    assert same(expected, actual) is equal
