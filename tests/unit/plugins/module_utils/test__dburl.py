# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._dburl import (
    MASK,
    DbUrlError,
    parse_db_url,
    redact_url,
)

# Canary password pieces: none of them may ever show up in an error or a redacted URL.
CANARY_A = "Kq7Zx"
CANARY_B = "Wv9Tn"
CANARY = f"{CANARY_A}{CANARY_B}"


def _parts(**overrides):
    parts = {
        "scheme": "postgresql",
        "driver": None,
        "username": None,
        "password": None,
        "host": "db",
        "port": 5432,
        "database": None,
        "query": {},
        "sslmode": None,
    }
    parts.update(overrides)
    return parts


PARSE_CASES = [
    pytest.param(
        "postgresql+psycopg2://app:s3cr%40t%2F1@db.internal:6432/appdb?sslmode=require",
        _parts(
            driver="psycopg2",
            username="app",
            password="s3cr@t/1",
            host="db.internal",
            port=6432,
            database="appdb",
            query={"sslmode": "require"},
            sslmode="require",
        ),
        id="driver-encoded-password-port-sslmode",
    ),
    pytest.param(
        "postgres://app@db/app",
        _parts(username="app", database="app"),
        id="postgres-alias-default-port",
    ),
    pytest.param(
        "PostgreSQL://app:pw@db/app",
        _parts(username="app", password="pw", database="app"),
        id="scheme-case-insensitive",
    ),
    pytest.param(
        "postgresql+asyncpg://u:p@[2001:db8::1]:5433/x",
        _parts(
            driver="asyncpg",
            username="u",
            password="p",
            host="2001:db8::1",
            port=5433,
            database="x",
        ),
        id="ipv6-host",
    ),
    pytest.param(
        "postgresql://[::1]/x",
        _parts(host="::1", database="x"),
        id="ipv6-default-port",
    ),
    pytest.param(
        "postgresql://%2Frun%2Fpostgresql/app",
        _parts(host="/run/postgresql", database="app"),
        id="socket-directory-host",
    ),
    pytest.param("postgresql://db", _parts(), id="no-path"),
    pytest.param("postgresql://db/", _parts(), id="empty-database"),
    pytest.param(
        "postgresql://app:@db/app",
        _parts(username="app", password="", database="app"),
        id="explicitly-empty-password",
    ),
    pytest.param(
        "postgresql://:pw@db/app",
        _parts(password="pw", database="app"),
        id="password-without-user",
    ),
    pytest.param(
        "postgresql://app:a:b@db/app",
        _parts(username="app", password="a:b", database="app"),
        id="raw-colon-in-password",
    ),
    pytest.param(
        "postgresql://app:p@ss@db/app",
        _parts(username="app", password="p@ss", database="app"),
        id="raw-at-in-password-last-at-wins",
    ),
    pytest.param(
        "postgresql://db/my%20db?application_name=a+b%20c&connect_timeout=5&sslmode=disable"
        "&sslmode=verify-full",
        _parts(
            database="my db",
            query={"application_name": "a+b c", "connect_timeout": "5", "sslmode": "verify-full"},
            sslmode="verify-full",
        ),
        id="query-decoding-plus-kept-last-key-wins",
    ),
    pytest.param(
        "postgresql://db/app?&options=&",
        _parts(database="app", query={"options": ""}),
        id="query-empty-items-and-value",
    ),
    pytest.param(
        "postgresql://db/app@2026",
        _parts(database="app@2026"),
        id="at-in-database-without-userinfo",
    ),
]


@pytest.mark.parametrize(("url", "expected"), PARSE_CASES)
def test_parse_db_url(url, expected):
    assert parse_db_url(url) == expected


PARSE_ERRORS = [
    pytest.param(42, "expected a database URL string, got int", id="not-a-string"),
    pytest.param(None, "expected a database URL string, got NoneType", id="none"),
    pytest.param("", "invalid database URL (a 0-character value, not shown", id="empty"),
    pytest.param(
        CANARY,
        "invalid database URL (a 10-character value, not shown because it is not a URL): it has"
        " no '://' after the scheme; write it as postgresql://user:password@host:5432/database",
        id="bare-password-not-echoed",
    ),
    pytest.param(
        f"mysql://app:{CANARY}@db/app",
        "invalid database URL 'mysql://app:********@db/app': the scheme is not supported; use"
        " postgresql://, postgresql+<driver>:// (for example postgresql+psycopg2://) or"
        " postgres://",
        id="unsupported-scheme",
    ),
    pytest.param(
        f"postgresql+bad-driver://app:{CANARY}@db/app",
        "the scheme is not supported",
        id="driver-with-dash",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@/app",
        "invalid database URL 'postgresql://app:********@/app': it has no host; put the host"
        " after '://' or after the '@'",
        id="no-host",
    ),
    pytest.param("postgresql:///app?host=/run/postgresql", "it has no host", id="host-in-query"),
    pytest.param(
        f"postgresql://app:{CANARY}@db:99999/app",
        "'postgresql://app:********@db:99999/app': the port is out of range; give an integer"
        " port between 1 and 65535",
        id="port-out-of-range",
    ),
    pytest.param(f"postgresql://app:{CANARY}@db:0/app", "the port is out of range", id="port-0"),
    pytest.param(f"postgresql://app:{CANARY}@db:5x/app", "the port is not a number", id="port-5x"),
    pytest.param(f"postgresql://app:{CANARY}@db:/app", "the port is not a number", id="port-empty"),
    pytest.param(f"postgresql://app:{CANARY}@db:-1/app", "the port is not a number", id="port-neg"),
    pytest.param(
        "postgresql://2001:db8::1/app", "IPv6 hosts go in brackets", id="ipv6-unbracketed"
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@[::1/app", "an IPv6 host has no closing ']'", id="ipv6-unclosed"
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@[::1]x/app", "text follows the IPv6 host", id="ipv6-trailing"
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A}/{CANARY_B}@db/app",
        "invalid database URL 'postgresql://app:********@db/app': it has an '@' after the host"
        " but none before it, so a password may hold an unencoded '/' or '?'; percent-encode"
        " '/' as %2F, '?' as %3F and '@' as %40",
        id="unencoded-slash-in-password",
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A}?{CANARY_B}@db/app",
        "it has an '@' after the host but none before it",
        id="unencoded-question-mark-in-password",
    ),
    pytest.param(
        "postgresql://db:5432/app?application_name=a@b",
        "it has an '@' after the host but none before it",
        id="documented-limitation-raw-at-in-query-without-userinfo",
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A}#{CANARY_B}@db/app",
        "invalid database URL 'postgresql://app:********@db/app': it contains '#'; percent-encode"
        " '#' as %23",
        id="unencoded-hash-in-password",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@db/app\n",
        "invalid database URL 'postgresql://app:********@db/app\\n': it has leading or trailing"
        " whitespace; strip it",
        id="trailing-newline",
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A} {CANARY_B}@db/app",
        "it contains whitespace or control characters; percent-encode them (' ' is %20)",
        id="inner-space",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@db1:5432,db2:5432/app",
        "it lists several hosts; give a single host",
        id="multi-host",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@db/a/b",
        "the path has more than one segment; percent-encode '/' in the name as %2F",
        id="two-path-segments",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@db/app?sslmode=requried",
        "'postgresql://app:********@db/app?sslmode=requried': sslmode is not one libpq knows;"
        " use one of disable, allow, prefer, require, verify-ca, verify-full",
        id="bad-sslmode",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@db/app?sslmode",
        "a query parameter is not of the form key=value",
        id="query-without-equals",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@db/app?=x",
        "a query parameter is not of the form key=value",
        id="query-without-key",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}%ff@db/app",
        "the password has percent-escapes that are not UTF-8",
        id="password-not-utf8",
    ),
]


@pytest.mark.parametrize(("url", "fragment"), PARSE_ERRORS)
def test_parse_db_url_errors(url, fragment):
    with pytest.raises(DbUrlError) as excinfo:
        parse_db_url(url)
    message = str(excinfo.value)
    assert fragment in message
    assert CANARY_A not in message
    assert CANARY_B not in message


REDACT_CASES = [
    pytest.param(
        f"postgresql://app:{CANARY}@db:5432/app?sslmode=require",
        "postgresql://app:********@db:5432/app?sslmode=require",
        id="postgresql",
    ),
    pytest.param(
        f"postgresql+psycopg2://app:{CANARY_A}%40{CANARY_B}@db/app",
        "postgresql+psycopg2://app:********@db/app",
        id="encoded-password",
    ),
    pytest.param(
        f"redis://:{CANARY}@cache:6379/0", "redis://:********@cache:6379/0", id="redis-no-user"
    ),
    pytest.param(
        f"rediss://default:{CANARY}@cache:6380",
        "rediss://default:********@cache:6380",
        id="rediss-acl-user",
    ),
    pytest.param(
        f"redis://{CANARY}@cache:6379", "redis://********@cache:6379", id="redis-lone-userinfo"
    ),
    pytest.param(
        f"redis://{CANARY_A}/{CANARY_B}@cache/0", "redis://********@cache/0", id="redis-slash"
    ),
    pytest.param(
        f"amqp://guest:{CANARY}@mq:5672/%2F", "amqp://guest:********@mq:5672/%2F", id="amqp"
    ),
    pytest.param("postgresql://app@db/app", "postgresql://app@db/app", id="no-password"),
    pytest.param("postgresql://db/app", "postgresql://db/app", id="no-userinfo"),
    pytest.param("postgresql://app:@db/app", "postgresql://app:@db/app", id="empty-password"),
    pytest.param("redis://cache:6379/0", "redis://cache:6379/0", id="redis-no-password"),
    pytest.param(
        f"postgresql://app:{CANARY}@db/app?password={CANARY}&sslpassword={CANARY}&a=b#frag",
        "postgresql://app:********@db/app?password=********&sslpassword=********&a=b#frag",
        id="query-passwords-and-fragment",
    ),
    pytest.param(
        f"https://api.example.test/v1?api_key={CANARY}&page=2&access_token={CANARY}",
        "https://api.example.test/v1?api_key=********&page=2&access_token=********",
        id="secret-query-keys",
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A}/{CANARY_B}@db/app",
        "postgresql://app:********@db/app",
        id="unencoded-slash",
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A}?{CANARY_B}@db/app",
        "postgresql://app:********@db/app",
        id="unencoded-question-mark",
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A}#{CANARY_B}@db/app",
        "postgresql://app:********@db/app",
        id="unencoded-hash",
    ),
    pytest.param(
        f"postgresql://app:{CANARY_A}@{CANARY_B}@db/app",
        "postgresql://app:********@db/app",
        id="unencoded-at",
    ),
    pytest.param(
        f"postgresql://app:{CANARY}@db/app\n",
        "postgresql://app:********@db/app\n",
        id="trailing-newline-kept",
    ),
    pytest.param(
        "postgresql://[::1]:5432/app?application_name=a@b",
        "postgresql://[::1]:5432/app?application_name=a@b",
        id="ipv6-with-at-in-query",
    ),
    pytest.param(
        "postgresql://db:5432/app?application_name=a@b",
        "postgresql://db:********@b",
        id="documented-over-masking",
    ),
    pytest.param(f"not a url {CANARY}", f"not a url {CANARY}", id="not-a-url-unchanged"),
]


@pytest.mark.parametrize(("url", "expected"), REDACT_CASES)
def test_redact_url(url, expected):
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "url", [case.values[0] for case in REDACT_CASES if case.id != "not-a-url-unchanged"]
)
def test_redact_url_hides_canary_and_is_idempotent(url):
    redacted = redact_url(url)
    assert CANARY_A not in redacted
    assert CANARY_B not in redacted
    assert redact_url(redacted) == redacted


def test_redact_url_rejects_non_string():
    with pytest.raises(DbUrlError, match=r"^expected a URL string, got bytes$"):
        redact_url(b"postgresql://app:pw@db/app")


def test_mask_constant():
    assert MASK == "********"
