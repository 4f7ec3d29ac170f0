# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import json
import math
from fractions import Fraction
from pathlib import Path

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._stats import (
    StatsError,
    percentile,
    percentiles,
    sorted_numbers,
)

# numpy.percentile results for seeded random inputs, computed once with numpy (see _comment).
NUMPY_CASES = json.loads(
    (Path(__file__).parent / "fixtures" / "percentile_numpy.json").read_text(encoding="utf-8")
)["cases"]

PERCENTILE_CASES = [
    pytest.param([1, 2, 3, 4], 50, 2.5, id="median-even"),
    pytest.param([3, 1, 2], 50, 2.0, id="unsorted-median-odd"),
    pytest.param([10, 20, 30, 40, 50], 0, 10.0, id="p0-min"),
    pytest.param([10, 20, 30, 40, 50], 100, 50.0, id="p100-max"),
    pytest.param([10, 20, 30, 40, 50], 90, 46.0, id="p90"),
    pytest.param([10, 20, 30, 40, 50], 99, 49.6, id="p99"),
    pytest.param([1, 2], 75, 1.75, id="quarter-steps"),
    pytest.param([7], 37, 7.0, id="single-value"),
    pytest.param([-5, -1, -3], 50, -3.0, id="negative"),
    pytest.param(list(range(1, 101)), 95, 95.05, id="one-to-hundred-p95"),
    pytest.param([0.1, 0.2, 0.3], 33.3, 0.1666, id="float-p-float-values"),
    pytest.param([Fraction(1, 2), 1.5], 50, 1.0, id="fraction"),
    # numpy's _lerp computes b - (b - a) * (1 - t) for t >= 0.5; a + (b - a) * t would give
    # 7.148230040565949 here.
    pytest.param(
        [0.9424502837770503, 7.398985747399307],
        96.11624983327084,
        7.14823004056595,
        id="lerp-upper-branch-bit-exact",
    ),
]


@pytest.mark.parametrize(("values", "p", "expected"), PERCENTILE_CASES)
def test_percentile(values, p, expected):
    result = percentile(values, p)
    assert result == expected
    assert isinstance(result, float)


def test_percentile_accepts_a_generator():
    assert percentile((x * 10 for x in range(1, 6)), 90) == 46.0


def test_percentile_does_not_reorder_the_input():
    values = [3, 1, 2]
    percentile(values, 50)
    assert values == [3, 1, 2]


@pytest.mark.parametrize("case", NUMPY_CASES, ids=lambda c: f"n{len(c['values'])}")
def test_matches_numpy_bit_for_bit(case):
    assert percentiles(case["values"], case["p"]) == case["expected"]
    assert [percentile(case["values"], p) for p in case["p"]] == case["expected"]


def test_numpy_fixture_is_not_empty():
    assert len(NUMPY_CASES) == 120


def test_percentiles_keeps_order_of_p():
    assert percentiles([10, 20, 30, 40, 50], [99, 50, 0]) == [49.6, 30.0, 10.0]


def test_percentiles_empty_p_list():
    assert percentiles([1, 2, 3], []) == []


def test_sorted_numbers():
    assert sorted_numbers([3, 1.5, 2]) == [1.5, 2.0, 3.0]


ERRORS = [
    pytest.param(
        [], 50, "values is empty; a percentile needs at least one number", id="empty-list"
    ),
    pytest.param((x for x in []), 50, "values is empty", id="empty-generator"),
    pytest.param(
        "123",
        50,
        "values must be a list of numbers, got str; pass a list such as [12.5, 40, 7]",
        id="string-values",
    ),
    pytest.param({"a": 1}, 50, "values must be a list of numbers, got dict", id="dict-values"),
    pytest.param(None, 50, "values must be a list of numbers, got NoneType", id="none-values"),
    pytest.param(
        [1, "2", 3],
        50,
        "item 1 of values is str '2', not a number; convert the items (for example with"
        " map('float')) or drop that item",
        id="numeric-string-item",
    ),
    pytest.param([1, True], 50, "item 1 of values is bool True, not a number", id="bool-item"),
    pytest.param([None], 50, "item 0 of values is NoneType None, not a number", id="none-item"),
    pytest.param(
        [1, math.nan],
        50,
        "item 1 of values is nan, not a finite number; drop NaN and infinite values first",
        id="nan-item",
    ),
    pytest.param([math.inf], 50, "item 0 of values is inf, not a finite number", id="inf-item"),
    pytest.param(
        [10**400],
        50,
        "item 0 of values is 1000000000000000000000000000000000000...",
        id="huge-int-item",
    ),
    pytest.param([1, 2], 101, "p must be between 0 and 100, got 101", id="p-above-100"),
    pytest.param([1, 2], -0.5, "p must be between 0 and 100, got -0.5", id="p-negative"),
    pytest.param([1, 2], math.nan, "p must be between 0 and 100, got nan", id="p-nan"),
    pytest.param(
        [1, 2],
        "95",
        "p must be a number between 0 and 100, got str '95'; convert it (for example with | float)",
        id="p-string",
    ),
    pytest.param(
        [1, 2], None, "p must be a number between 0 and 100, got NoneType None", id="p-none"
    ),
    pytest.param([1, 2], True, "p must be a number between 0 and 100, got bool True", id="p-bool"),
]


@pytest.mark.parametrize(("values", "p", "message"), ERRORS)
def test_percentile_errors(values, p, message):
    with pytest.raises(StatsError) as excinfo:
        percentile(values, p)
    assert str(excinfo.value).startswith(message)


@pytest.mark.parametrize(
    ("values", "ps", "message"),
    [
        pytest.param([1, 2], [50, 200], "p[1] must be between 0 and 100, got 200", id="p-item"),
        pytest.param(
            [1, 2], ["x"], "p[0] must be a number between 0 and 100, got str 'x'", id="p-item-type"
        ),
        pytest.param([1, 2], 50, "p must be a number or a list of numbers, got int", id="scalar"),
        pytest.param([], [50], "values is empty", id="empty-values"),
    ],
)
def test_percentiles_errors(values, ps, message):
    with pytest.raises(StatsError) as excinfo:
        percentiles(values, ps)
    assert str(excinfo.value).startswith(message)


def test_long_items_are_shortened_in_messages():
    with pytest.raises(StatsError) as excinfo:
        percentile([1, "x" * 500], 50)
    assert f"is str '{'x' * 36}..., not a number" in str(excinfo.value)
    assert "x" * 60 not in str(excinfo.value)
