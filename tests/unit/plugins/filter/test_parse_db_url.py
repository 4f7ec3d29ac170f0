# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.filter.parse_db_url import FilterModule

CANARY = "Kq7ZxWv9Tn"
parse_db_url = FilterModule().filters()["parse_db_url"]


def test_registers_one_filter():
    assert list(FilterModule().filters()) == ["parse_db_url"]


def test_parses():
    assert parse_db_url(f"postgresql+psycopg2://app:{CANARY}@db:6432/app?sslmode=require") == {
        "scheme": "postgresql",
        "driver": "psycopg2",
        "username": "app",
        "password": CANARY,
        "host": "db",
        "port": 6432,
        "database": "app",
        "query": {"sslmode": "require"},
        "sslmode": "require",
    }


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            f"postgresql://app:{CANARY}@db:70000/app",
            "prodready.deploy.parse_db_url: invalid database URL"
            " 'postgresql://app:********@db:70000/app': the port is out of range; give an"
            " integer port between 1 and 65535",
            id="bad-port",
        ),
        pytest.param(
            CANARY,
            "prodready.deploy.parse_db_url: invalid database URL (a 10-character value, not"
            " shown because it is not a URL): it has no '://' after the scheme; write it as"
            " postgresql://user:password@host:5432/database",
            id="bare-secret",
        ),
        pytest.param(
            ["postgresql://db/app"],
            "prodready.deploy.parse_db_url: expected a database URL string, got list",
            id="list",
        ),
        pytest.param(
            f"redis://:{CANARY}@cache/0",
            "prodready.deploy.parse_db_url: invalid database URL 'redis://:********@cache/0':"
            " the scheme is not supported",
            id="redis-url",
        ),
    ],
)
def test_errors(url, message):
    with pytest.raises(AnsibleFilterError) as excinfo:
        parse_db_url(url)
    assert str(excinfo.value).startswith(message)
    assert CANARY not in str(excinfo.value)
    # No chained cause that Ansible could print next to the message.
    assert excinfo.value.__cause__ is None
    assert excinfo.value.__suppress_context__ is True
