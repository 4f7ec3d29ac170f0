# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A log-linear latency histogram with bounded relative error, after HdrHistogram.

Values are integer microseconds. Below 2048 every value has its own bucket (exact); above,
each power of two is cut into 1024 equal buckets, so a bucket is never wider than 1/1024 of
its lower bound and the midpoint reported for it is within 0.05% of any value it holds -
better than HdrHistogram's 3 significant digits (0.1%). Recording is an index computation
and a list increment; memory grows with the largest value (about 22,000 counters for an
hour).

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

SUB_BITS = 10
SUB_HALF = 1 << SUB_BITS          # 1024 buckets per power of two
SUB_COUNT = SUB_HALF << 1         # values below 2048 are exact
MAX_RELATIVE_ERROR = 1 / (2 * SUB_HALF)


def bucket_index(value: int) -> int:
    """The bucket of a non-negative integer value."""
    if value < SUB_COUNT:
        return value
    shift = value.bit_length() - SUB_BITS - 1
    return (shift + 1) * SUB_HALF + (value >> shift) - SUB_HALF


def bucket_range(index: int) -> tuple[int, int]:
    """(lowest, highest) value of a bucket, both included."""
    if index < SUB_COUNT:
        return index, index
    shift = index // SUB_HALF - 1
    low = (index - (shift + 1) * SUB_HALF + SUB_HALF) << shift
    return low, low + (1 << shift) - 1


class Histogram:
    """Counts of values (microseconds) in log-linear buckets, plus exact min, max and sum."""

    __slots__ = ("counts", "total", "min", "max", "sum")

    def __init__(self) -> None:
        self.counts: list[int] = [0] * SUB_COUNT
        self.total = 0
        self.min = 0
        self.max = 0
        self.sum = 0

    def record(self, value: int) -> None:
        value = max(value, 0)
        index = value if value < SUB_COUNT else bucket_index(value)
        counts = self.counts
        if index >= len(counts):
            counts.extend([0] * (index + 1 - len(counts) + SUB_HALF))
        counts[index] += 1
        if self.total == 0 or value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        self.total += 1
        self.sum += value

    def record_many(self, values: Iterable[int]) -> None:
        for value in values:
            self.record(value)

    def merge(self, other: Histogram) -> None:
        if other.total == 0:
            return
        if len(other.counts) > len(self.counts):
            self.counts.extend([0] * (len(other.counts) - len(self.counts)))
        for index, count in enumerate(other.counts):
            if count:
                self.counts[index] += count
        self.min = other.min if self.total == 0 else min(self.min, other.min)
        self.max = max(self.max, other.max)
        self.total += other.total
        self.sum += other.sum

    def percentile(self, percent: float) -> float:
        """The value at ``percent`` (0-100): the smallest recorded value with at least that
        share of values at or below it (nearest rank), as the midpoint of its bucket and never
        outside [min, max]. 0.0 when empty."""
        if self.total == 0:
            return 0.0
        if percent >= 100:
            return float(self.max)
        rank = max(1, math.ceil(percent / 100 * self.total))
        seen = 0
        for index, count in enumerate(self.counts):
            if not count:
                continue
            seen += count
            if seen >= rank:
                low, high = bucket_range(index)
                return float(min(max((low + high) / 2, self.min), self.max))
        return float(self.max)

    def mean(self) -> float:
        return self.sum / self.total if self.total else 0.0

    def summary_ms(self, percents: Iterable[float] = (50, 90, 95, 99)) -> dict[str, float]:
        """Milliseconds: min, mean, each percentile as pNN (p99.9 as p99_9), max."""
        out = {"min": round(self.min / 1000, 3) if self.total else 0.0,
               "mean": round(self.mean() / 1000, 3)}
        for percent in percents:
            key = "p" + (f"{percent:g}".replace(".", "_"))
            out[key] = round(self.percentile(percent) / 1000, 3)
        out["max"] = round(self.max / 1000, 3)
        return out
