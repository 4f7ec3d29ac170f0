# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.filter.redact_url import FilterModule

CANARY = "Kq7ZxWv9Tn"
redact_url = FilterModule().filters()["redact_url"]


def test_registers_one_filter():
    assert list(FilterModule().filters()) == ["redact_url"]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        pytest.param(
            f"postgresql://app:{CANARY}@db:5432/app?sslmode=require",
            "postgresql://app:********@db:5432/app?sslmode=require",
            id="postgresql",
        ),
        pytest.param(
            f"redis://:{CANARY}@cache:6379/0", "redis://:********@cache:6379/0", id="redis"
        ),
        pytest.param("postgresql://app@db/app", "postgresql://app@db/app", id="unchanged"),
    ],
)
def test_redacts(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param(42, id="int"),
        pytest.param({"password": CANARY}, id="dict-with-secret"),
    ],
)
def test_rejects_non_strings_without_echoing(value):
    with pytest.raises(AnsibleFilterError) as excinfo:
        redact_url(value)
    message = str(excinfo.value)
    assert message == (
        f"prodready.deploy.redact_url: expected a URL string, got {type(value).__name__};"
        " pass the URL itself"
    )
    assert CANARY not in message
