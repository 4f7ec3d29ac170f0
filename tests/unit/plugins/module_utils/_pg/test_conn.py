# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection options -> libpq settings, client environments and typed errors."""

from __future__ import annotations

import os
import stat

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg import conn as c

URL = "postgresql://app:s3cr%3At@db.example:6432/shop?sslmode=verify-full&sslrootcert=/ca.crt"


def test_url_parts_and_overrides() -> None:
    params = c.from_params({"url": URL, "login_user": "other", "database": "other_db"})
    assert (params.host, params.port, params.user, params.dbname) == \
        ("db.example", 6432, "other", "other_db")
    assert params.password == "s3cr:t"
    assert params.options == {"sslmode": "verify-full", "sslrootcert": "/ca.crt"}
    assert "s3cr" not in repr(params)


@pytest.mark.parametrize(("query", "option", "expected"), [
    ("", None, 10),
    ("?connect_timeout=3", None, 3),
    ("?connect_timeout=3", 7, 7),
    ("", 5, 5),
])
def test_connect_timeout_option_wins_over_the_url(query: str, option: int | None,
                                                  expected: int) -> None:
    params = c.from_params({"url": f"postgresql://u@h/db{query}", "connect_timeout": option})
    assert params.connect_timeout == expected
    assert params.libpq_settings()["connect_timeout"] == str(expected)


@pytest.mark.parametrize(("params", "match"), [
    ({"url": "postgresql://u@h/db?connect_timeout=abc"}, "whole number of seconds"),
    ({"url": "postgresql://u@h/db", "connect_timeout": 0}, "at least 1"),
    ({"url": "postgresql://u@h/db?keepalives=1"}, "'keepalives' is not a libpq"),
    ({"url": "postgresql://u@h/db?sslmdoe=disable"}, "'sslmdoe' is not a libpq"),
    ({"url": "postgresql://u@h"}, "no database given"),
    ({"database": "db"}, "no server given"),
    ({"url": "mysql://u:canary-pw@h/db"}, "scheme is not supported"),
])
def test_bad_options_are_input_errors_without_the_password(params: dict, match: str) -> None:
    with pytest.raises(c.PgInputError, match=match) as err:
        c.from_params(params)
    assert "canary-pw" not in str(err.value)


def test_every_accepted_url_setting_reaches_the_client_environment() -> None:
    values = {key: "require" if key == "sslmode" else "1" for key in c._LIBPQ_QUERY_KEYS}
    query = "&".join(f"{key}={value}" for key, value in values.items())
    params = c.from_params({"url": f"postgresql://u:pw@h/db?{query}"})
    with params.client_env(base={}) as env:
        for key, value in values.items():
            assert env[c._ENV_FOR[key]] == value, key


def test_client_env_passfile_is_private_removed_and_clears_stale_settings() -> None:
    params = c.from_params({"url": "postgresql://u:p%3Aw%5C@h:5433/db"})
    with params.client_env(base={"PGPASSWORD": "stale", "PGHOST": "elsewhere", "KEEP": "1"}
                           ) as env:
        passfile = env["PGPASSFILE"]
        assert stat.S_IMODE(os.stat(passfile).st_mode) == 0o600
        with open(passfile, encoding="utf-8") as handle:
            assert handle.read() == "*:*:*:*:p\\:w\\\\\n"
        assert "PGPASSWORD" not in env and env["PGHOST"] == "h" and env["KEEP"] == "1"
        assert "p:w" not in "".join(v for k, v in env.items() if k != "PGPASSFILE")
    assert not os.path.exists(passfile)


def test_client_env_without_password_never_reads_the_callers_pgpass() -> None:
    with c.from_params({"url": "postgresql://u@h/db"}).client_env(base={}) as env:
        assert env["PGPASSFILE"] == os.devnull


@pytest.mark.parametrize(("message", "cls"), [
    ('FATAL:  password authentication failed for user "app"', c.PgAuthError),
    ('FATAL:  role "ghost" does not exist', c.PgAuthError),
    ('FATAL:  database "nope" does not exist', c.PgDatabaseMissingError),
    ("SSL error: certificate verify failed", c.PgTlsError),
    ('connection to server at "127.0.0.1", port 1 failed: Connection refused',
     c.PgUnreachableError),
    ("could not translate host name \"nohost\" to address", c.PgUnreachableError),
    ("something new", c.PgConnectError),
])
def test_connect_errors_are_typed_and_scrubbed(message: str, cls: type) -> None:
    params = c.from_params({"url": "postgresql://app:canary-pw@h/db"})
    err = c.connect_error(f"{message} canary-pw", params)
    assert err.__class__ is cls  # exactly this class, not a subclass or the base
    assert "canary-pw" not in str(err) and "app@h:5432/db" in str(err)
