# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.filter.percentile import FilterModule

percentile = FilterModule().filters()["percentile"]
VALUES = [10, 20, 30, 40, 50]


def test_registers_one_filter():
    assert list(FilterModule().filters()) == ["percentile"]


@pytest.mark.parametrize(
    ("values", "p", "expected"),
    [
        pytest.param(VALUES, 90, 46.0, id="scalar-p"),
        pytest.param(VALUES, 99.0, 49.6, id="float-p"),
        pytest.param(VALUES, [50, 99], [30.0, 49.6], id="list-of-p"),
        pytest.param(VALUES, (0, 100), [10.0, 50.0], id="tuple-of-p"),
        pytest.param(VALUES, (p for p in [50]), [30.0], id="generator-of-p"),
        pytest.param(VALUES, [], [], id="empty-list-of-p"),
        pytest.param((v for v in VALUES), 90, 46.0, id="generator-values-like-map"),
    ],
)
def test_percentile(values, p, expected):
    assert percentile(values, p) == expected


@pytest.mark.parametrize(
    ("values", "p", "message"),
    [
        pytest.param(
            [],
            95,
            "prodready.deploy.percentile: values is empty; a percentile needs at least one number",
            id="empty",
        ),
        pytest.param(
            [1, "2"],
            95,
            "prodready.deploy.percentile: item 1 of values is str '2', not a number;",
            id="string-item",
        ),
        pytest.param(
            VALUES,
            "95",
            "prodready.deploy.percentile: p must be a number between 0 and 100, got str '95';",
            id="string-p-not-iterated",
        ),
        pytest.param(
            VALUES,
            {"p": 95},
            "prodready.deploy.percentile: p must be a number between 0 and 100, got dict",
            id="dict-p",
        ),
        pytest.param(
            VALUES,
            [50, 101],
            "prodready.deploy.percentile: p[1] must be between 0 and 100, got 101",
            id="bad-item-in-list-of-p",
        ),
    ],
)
def test_errors(values, p, message):
    with pytest.raises(AnsibleFilterError) as excinfo:
        percentile(values, p)
    assert str(excinfo.value).startswith(message)
    assert excinfo.value.__cause__ is None
