# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Small statistics helpers (percentiles) with numpy's results and no numpy dependency.

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any


class StatsError(ValueError):
    """The input to a statistics helper is unusable; the message says which item and why."""


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


def _is_number(value: Any) -> bool:
    # bool is an int subclass, but True in a list of latencies is a bug, not a 1.
    return isinstance(value, Real) and not isinstance(value, bool)


def _is_list_like(value: Any) -> bool:
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, Mapping))


def sorted_numbers(values: Iterable[Any]) -> list[float]:
    """Return ``values`` as sorted floats; reject empty input, non-numbers and NaN/inf."""
    if not _is_list_like(values):
        raise StatsError(
            f"values must be a list of numbers, got {type(values).__name__};"
            " pass a list such as [12.5, 40, 7]"
        )
    numbers: list[float] = []
    for index, item in enumerate(values):
        if not _is_number(item):
            raise StatsError(
                f"item {index} of values is {type(item).__name__} {_show(item)}, not a number;"
                " convert the items (for example with map('float')) or drop that item"
            )
        try:
            number = float(item)
        except OverflowError:
            number = math.inf
        if not math.isfinite(number):
            raise StatsError(
                f"item {index} of values is {_show(item)}, not a finite number; drop NaN and"
                " infinite values first"
            )
        numbers.append(number)
    if not numbers:
        raise StatsError("values is empty; a percentile needs at least one number")
    numbers.sort()
    return numbers


def _check_p(p: Any, name: str) -> float:
    if not _is_number(p):
        raise StatsError(
            f"{name} must be a number between 0 and 100, got {type(p).__name__} {_show(p)};"
            " convert it (for example with | float)"
        )
    q = float(p)
    if not 0.0 <= q <= 100.0:  # also rejects NaN
        raise StatsError(f"{name} must be between 0 and 100, got {_show(p)}")
    return q


def _at(ordered: list[float], p: float) -> float:
    """Percentile ``p`` of the sorted list, numpy's "linear" method (Hyndman & Fan type 7).

    The virtual index is ``(n - 1) * p / 100``; the result interpolates linearly between the
    values at its floor and ceiling. The arithmetic follows numpy's ``_lerp`` step by step
    (including its ``gamma >= 0.5`` branch) so results match numpy to the last bit.
    """
    n = len(ordered)
    virtual = (n - 1) * (p / 100.0)
    below = min(math.floor(virtual), n - 1)
    above = min(below + 1, n - 1)
    gamma = virtual - below
    a, b = ordered[below], ordered[above]
    diff = b - a
    if gamma >= 0.5:
        return b - diff * (1.0 - gamma)
    return a + diff * gamma


def percentile(values: Iterable[Any], p: Any) -> float:
    """Return the ``p``-th percentile (0 <= p <= 100) of ``values`` as a float.

    Same result as ``numpy.percentile(values, p)`` with the default ``method="linear"``.
    Raises ``StatsError`` for an empty list, a non-numeric, NaN or infinite item, or a ``p``
    that is not a number in [0, 100].
    """
    q = _check_p(p, "p")
    return _at(sorted_numbers(values), q)


def percentiles(values: Iterable[Any], ps: Iterable[Any]) -> list[float]:
    """Return one percentile per item of ``ps``, in the same order (values sorted once)."""
    if not _is_list_like(ps):
        raise StatsError(f"p must be a number or a list of numbers, got {type(ps).__name__}")
    qs = [_check_p(p, f"p[{index}]") for index, p in enumerate(ps)]
    ordered = sorted_numbers(values)
    return [_at(ordered, q) for q in qs]
