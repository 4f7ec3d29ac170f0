# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.filter.secret_strength import FilterModule

secret_strength = FilterModule().filters()["secret_strength"]
FERNET_KEY = "rgt4ZuiMm0l-3SH_bffWQjbt1wSknR2OxtZPYxidXa4="


def test_registers_one_filter():
    assert list(FilterModule().filters()) == ["secret_strength"]


def test_strong_secret():
    assert secret_strength(FERNET_KEY) == {
        "length": 44,
        "entropy_bits": 221.5,
        "placeholder": False,
        "ok": True,
        "reasons": [],
    }


def test_keyword_arguments_as_jinja_passes_them():
    result = secret_strength(FERNET_KEY, min_length=50, min_entropy_bits=250)
    assert result["reasons"] == [
        "is 44 characters long; at least 50 are required",
        "has an estimated 221.5 bits of entropy; at least 250 are required",
    ]
    assert result["ok"] is False


def test_placeholder():
    result = secret_strength("your-secret-key")
    assert result["placeholder"] is True
    assert "looks like a well-known default, example or placeholder value" in result["reasons"]
    assert not any("your-secret-key" in reason for reason in result["reasons"])


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        pytest.param(
            None,
            {},
            "prodready.deploy.secret_strength: expected the secret as a string, got NoneType"
            " (an unset variable often arrives as None)",
            id="none",
        ),
        pytest.param(
            FERNET_KEY,
            {"min_length": "32"},
            "prodready.deploy.secret_strength: min_length must be an integer >= 1, got '32'",
            id="string-min-length",
        ),
    ],
)
def test_errors(value, kwargs, message):
    with pytest.raises(AnsibleFilterError) as excinfo:
        secret_strength(value, **kwargs)
    assert str(excinfo.value) == message
    assert FERNET_KEY not in str(excinfo.value)
    assert excinfo.value.__cause__ is None
