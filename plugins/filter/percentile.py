# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: percentile
short_description: The p-th percentile of a list of numbers, computed as numpy does by default
version_added: 0.1.0
author: prodready.deploy contributors
description:
  - Returns the O(p)-th percentile of the input list, or a list of percentiles when O(p) is
    a list.
  - Method - linear interpolation between the closest ranks, the default C(linear) method of
    C(numpy.percentile), also known as type 7 of Hyndman and Fan and the default of R and of
    Excel's C(PERCENTILE.INC). With the n values sorted as C(x[0] <= ... <= x[n-1]), it takes
    the position C(h = p * [n - 1] / 100), its integer part C(i) and its fraction C(f), and
    returns C(x[i] + f * [x[i+1] - x[i]]). V(p=0) gives the minimum, V(p=100) the maximum,
    V(p=50) the median.
  - The result is always a float and matches numpy's result exactly.
  - Fails for an empty list, an item that is not a number (strings such as C('12') and
    booleans included; convert first, for example with C(map) and the C(float) filter),
    NaN or infinite items, and a O(p) that is not a number between 0 and 100.
positional: p
options:
  _input:
    description:
      - The numbers, in any order. Any list-like value works, including the result of C(map).
    type: list
    elements: float
    required: true
  p:
    description:
      - The percentile to compute, between 0 and 100 inclusive, or a list of them.
    type: raw
    required: true
"""

EXAMPLES = r"""
---
- name: Fail when the 95th percentile of the smoke test latencies is too high
  ansible.builtin.assert:
    that:
      - smoke_latencies_ms | prodready.deploy.percentile(95) < 250
    fail_msg: "p95 latency is {{ smoke_latencies_ms | prodready.deploy.percentile(95) }} ms"

# [1, 2, 3, 4] | prodready.deploy.percentile(50)           => 2.5
# [10, 20, 30, 40, 50] | prodready.deploy.percentile(90)   => 46.0
# [10, 20, 30, 40, 50] | prodready.deploy.percentile([50, 99]) => [30.0, 49.6]
# results | map(attribute='elapsed') | prodready.deploy.percentile(99)
"""

RETURN = r"""
_value:
  description:
    - The percentile as a float, or a list of floats in the order of O(p) when O(p) is a list.
  type: raw
"""

from collections.abc import Callable, Iterable, Mapping
from numbers import Real
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.module_utils._stats import (
    StatsError,
    percentile,
    percentiles,
)


def percentile_filter(values: Any, p: Any) -> float | list[float]:
    try:
        if isinstance(p, Iterable) and not isinstance(p, (str, bytes, Mapping, Real)):
            return percentiles(values, p)
        return percentile(values, p)
    except StatsError as exc:
        raise AnsibleFilterError(f"prodready.deploy.percentile: {exc}") from None


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"percentile": percentile_filter}
