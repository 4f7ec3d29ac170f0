# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The histogram's precision: every percentile within 0.05% of the exact nearest-rank value."""

from __future__ import annotations

import math
import random

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._load.histogram import (
    MAX_RELATIVE_ERROR,
    SUB_COUNT,
    Histogram,
    bucket_index,
    bucket_range,
)

PERCENTS = (50, 90, 95, 99, 99.9)


def exact(values: list[int], percent: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


def distributions():
    rng = random.Random(6)
    return {
        "uniform 0-10 s": [rng.randint(0, 10_000_000) for _draw in range(50_000)],
        "lognormal around 20 ms": [int(rng.lognormvariate(math.log(20_000), 0.8))
                                   for _draw in range(50_000)],
        "exponential, 1 ms mean": [int(rng.expovariate(1 / 1000)) for _draw in range(50_000)],
        "bimodal 2 ms / 900 ms": [rng.choice((2_000, 900_000)) + rng.randint(0, 50)
                                  for _draw in range(20_000)],
        "one hour outliers": [rng.randint(100, 200) for _draw in range(9_990)]
        + [3_600_000_000] * 10,
    }


@pytest.mark.parametrize("name", list(distributions()))
def test_percentiles_within_bounded_relative_error(name):
    values = distributions()[name]
    hist = Histogram()
    hist.record_many(values)
    assert hist.total == len(values)
    assert hist.min == min(values) and hist.max == max(values)
    for percent in PERCENTS:
        want, got = exact(values, percent), hist.percentile(percent)
        assert abs(got - want) <= max(want * MAX_RELATIVE_ERROR, 0.5), (percent, want, got)
    assert hist.percentile(100) == max(values)
    assert hist.mean() == pytest.approx(sum(values) / len(values))


@pytest.mark.parametrize(("value", "index", "low", "high"), [
    (0, 0, 0, 0),
    (2047, 2047, 2047, 2047),
    (2048, 2048, 2048, 2049),
    (2049, 2048, 2048, 2049),
    (4095, 3071, 4094, 4095),
    (4096, 3072, 4096, 4099),
    (1_000_000, None, None, None),
])
def test_bucket_boundaries(value, index, low, high):
    got = bucket_index(value)
    if index is not None:
        assert got == index
        assert bucket_range(got) == (low, high)
    lo, hi = bucket_range(got)
    assert lo <= value <= hi
    assert (hi - lo + 1) / max(lo, 1) <= 2 * MAX_RELATIVE_ERROR or hi < SUB_COUNT


def test_buckets_tile_the_integers():
    previous_high = -1
    for index in range(0, 40_000):
        low, high = bucket_range(index)
        assert low == previous_high + 1
        assert bucket_index(low) == index == bucket_index(high)
        previous_high = high


def test_merge_equals_recording_everything():
    rng = random.Random(1)
    a_values = [rng.randint(0, 5_000_000) for _draw in range(5000)]
    b_values = [rng.randint(1000, 90_000_000) for _draw in range(5000)]
    a, b, both = Histogram(), Histogram(), Histogram()
    a.record_many(a_values)
    b.record_many(b_values)
    both.record_many(a_values + b_values)
    a.merge(b)
    assert a.total == both.total and a.min == both.min and a.max == both.max
    assert [a.percentile(p) for p in PERCENTS] == [both.percentile(p) for p in PERCENTS]


def test_empty_and_single_value():
    hist = Histogram()
    assert hist.percentile(99) == 0.0
    assert hist.summary_ms()["p99"] == 0.0
    hist.record(123_456)
    summary = hist.summary_ms()
    assert summary["min"] == summary["max"] == 123.456
    assert summary["p50"] == pytest.approx(123.456, rel=MAX_RELATIVE_ERROR)
    assert set(summary) == {"min", "mean", "p50", "p90", "p95", "p99", "max"}
