# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Parse database URLs and redact the secrets in any URL.

Private to this collection (leading underscore): the API may change without notice.

Every error message shows the URL only after ``redact_url`` has masked it, or not at all
when the value does not look like a URL (it might be a bare password).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, NoReturn
from urllib.parse import unquote

MASK = "********"
DEFAULT_PORT = 5432
SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")

_URL_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*$")
# postgresql, postgresql+<driver> (SQLAlchemy style) and the libpq/Heroku alias postgres.
_PG_SCHEME_RE = re.compile(r"^(?:postgresql(?:\+(?P<driver>[a-z0-9_]+))?|postgres)$")
# Query parameters whose values are masked by redact_url (libpq accepts ?password=...).
_SECRET_QUERY_KEY_RE = re.compile(
    r"pass|pwd|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|credential|signature",
    re.IGNORECASE,
)
# Schemes whose clients read a lone userinfo ("redis://s3cret@host") as the password.
_LONE_USERINFO_IS_PASSWORD = frozenset({"redis", "rediss", "valkey", "valkeys"})
_PORT_RE = re.compile(r"[0-9]+")


class DbUrlError(ValueError):
    """A database URL is malformed or unsupported. The message never holds a secret."""


def _first_index(text: str, chars: str) -> int:
    """Index of the first of ``chars`` in ``text``, or ``len(text)``."""
    hits = [i for i in (text.find(c) for c in chars) if i >= 0]
    return min(hits) if hits else len(text)


def _ambiguous_userinfo(scheme: str, authority: str, tail: str) -> bool:
    """True when an unencoded '/', '?' or '#' may have cut a password short.

    ``postgresql://app:pa/ss@db/app`` splits (RFC 3986) into the authority ``app:pa`` and the
    path ``/ss@db/app``: the '@' after the authority is the only trace of the password.
    """
    if "@" in authority or "@" not in tail or authority.startswith("["):
        return False
    return ":" in authority or scheme.lower() in _LONE_USERINFO_IS_PASSWORD


def _mask_userinfo(scheme: str, userinfo: str) -> str:
    user, colon, password = userinfo.partition(":")
    if colon:
        return f"{user}:{MASK}" if password else userinfo
    if userinfo and scheme.lower() in _LONE_USERINFO_IS_PASSWORD:
        return MASK
    return userinfo


def _mask_query(query: str) -> str:
    parts = []
    for item in query.split("&"):
        key, eq, value = item.partition("=")
        if eq and value and _SECRET_QUERY_KEY_RE.search(unquote(key)):
            item = f"{key}={MASK}"
        parts.append(item)
    return "&".join(parts)


def redact_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``MASK``; everything else is kept as is.

    Masks the password in the userinfo (``user:MASK@``), a lone userinfo for Redis-style
    schemes (``redis://MASK@host``) and the values of query parameters whose name looks
    secret (``?password=MASK``). A URL without any of those comes back unchanged, and so does
    a string that is not a URL. When an unencoded '/', '?' or '#' makes the end of the
    password ambiguous, everything from the first ':' to the last '@' is masked.
    """
    if not isinstance(url, str):
        raise DbUrlError(f"expected a URL string, got {type(url).__name__}")
    scheme, sep, rest = url.partition("://")
    if not sep or not _URL_SCHEME_RE.match(scheme):
        return url
    authority_end = _first_index(rest, "/?#")
    authority, tail = rest[:authority_end], rest[authority_end:]
    if "@" in authority:
        userinfo_end = authority.rfind("@")
    elif _ambiguous_userinfo(scheme, authority, tail):
        userinfo_end = rest.rfind("@")
    else:
        userinfo_end = -1

    if userinfo_end >= 0:
        userinfo = _mask_userinfo(scheme, rest[:userinfo_end])
        after = rest[userinfo_end:]
    else:
        userinfo, after = "", rest

    query_start = after.find("?")
    if query_start >= 0:
        fragment_start = _first_index(after[query_start:], "#") + query_start
        after = (
            after[: query_start + 1]
            + _mask_query(after[query_start + 1 : fragment_start])
            + after[fragment_start:]
        )
    return f"{scheme}{sep}{userinfo}{after}"


def describe_url(url: str) -> str:
    """Quote the redacted URL for a message, or say why it is not shown."""
    scheme, sep, _rest = url.partition("://")
    if not sep or not _URL_SCHEME_RE.match(scheme):
        return f"(a {len(url)}-character value, not shown because it is not a URL)"
    shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in redact_url(url))
    return f"'{shown}'"


_Fail = Callable[[str, str], NoReturn]


def _unquote(text: str, part: str, fail: _Fail) -> str:
    try:
        return unquote(text, errors="strict")
    except UnicodeDecodeError:
        fail(f"the {part} has percent-escapes that are not UTF-8", "percent-encode UTF-8 bytes")


def _parse_query(query: str, fail: _Fail) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in query.split("&"):
        if not item:
            continue
        key, eq, value = item.partition("=")
        if not eq or not key:
            # The item is not echoed: in a malformed URL it may be a piece of the password.
            fail("a query parameter is not of the form key=value", "write key=value pairs")
        params[_unquote(key, "query", fail)] = _unquote(value, "query", fail)
    return params


def parse_db_url(url: str) -> dict[str, Any]:
    """Split a PostgreSQL URL into its parts.

    Accepts ``postgresql://``, ``postgresql+<driver>://`` and ``postgres://``. Returns a dict
    with ``scheme`` (always ``postgresql``), ``driver`` (``None`` without ``+driver``),
    ``username`` and ``password`` (percent-decoded; ``None`` when absent), ``host`` (brackets
    of an IPv6 literal removed, percent-decoded so a socket directory can be given as
    ``%2Frun%2Fpostgresql``), ``port`` (int, default 5432), ``database`` (``None`` when
    absent), ``query`` (dict; values percent-decoded as libpq does, '+' stays '+'; a repeated
    key keeps its last value) and ``sslmode`` (from the query, ``None`` when absent).

    Raises ``DbUrlError`` with a message that shows only the redacted URL.
    """
    if not isinstance(url, str):
        raise DbUrlError(f"expected a database URL string, got {type(url).__name__}")
    shown = describe_url(url)

    def fail(problem: str, fix: str) -> NoReturn:
        raise DbUrlError(f"invalid database URL {shown}: {problem}; {fix}")

    example = "postgresql://user:password@host:5432/database"
    if not url.strip():
        fail("it is empty", f"give a URL such as {example}")
    if url != url.strip():
        fail(
            "it has leading or trailing whitespace",
            "strip it (a trailing newline from a file or an environment variable is common)",
        )
    if any(not c.isprintable() or c.isspace() for c in url):
        fail("it contains whitespace or control characters", "percent-encode them (' ' is %20)")

    scheme, sep, rest = url.partition("://")
    if not sep:
        fail("it has no '://' after the scheme", f"write it as {example}")
    match = _PG_SCHEME_RE.match(scheme.lower())
    if match is None:
        # The scheme is already visible in the redacted URL, or hidden with the rest of it.
        fail(
            "the scheme is not supported",
            "use postgresql://, postgresql+<driver>:// (for example postgresql+psycopg2://)"
            " or postgres://",
        )
    if "#" in rest:
        fail(
            "it contains '#'",
            "percent-encode '#' as %23 (in a password too); database URLs have no fragment",
        )
    authority_end = _first_index(rest, "/?")
    authority, tail = rest[:authority_end], rest[authority_end:]
    if _ambiguous_userinfo(scheme, authority, tail):
        fail(
            "it has an '@' after the host but none before it, so a password may hold an"
            " unencoded '/' or '?'",
            "percent-encode '/' as %2F, '?' as %3F and '@' as %40 in the user name,"
            " the password, the database name and query values",
        )

    username: str | None = None
    password: str | None = None
    userinfo, at, hostport = authority.rpartition("@")
    if at:
        raw_user, colon, raw_password = userinfo.partition(":")
        username = _unquote(raw_user, "user name", fail) or None
        if colon:
            password = _unquote(raw_password, "password", fail)

    if "," in hostport:
        fail("it lists several hosts", "give a single host; multi-host URLs are not supported")
    if hostport.startswith("["):
        close = hostport.find("]")
        if close < 0:
            fail("an IPv6 host has no closing ']'", "write it as [2001:db8::1]")
        raw_host, after_host = hostport[1:close], hostport[close + 1 :]
        if after_host and not after_host.startswith(":"):
            fail("text follows the IPv6 host", "write it as [2001:db8::1]:5432")
        has_port, raw_port = bool(after_host), after_host[1:]
    else:
        raw_host, colon, raw_port = hostport.partition(":")
        has_port = bool(colon)
    host = _unquote(raw_host, "host", fail)
    if not host:
        fail("it has no host", "put the host after '://' or after the '@'")

    port = DEFAULT_PORT
    if has_port:
        # The port text is never echoed: in a malformed URL it may be part of the password.
        if not _PORT_RE.fullmatch(raw_port):
            fail(
                "the port is not a number",
                "give an integer port between 1 and 65535, or drop the ':' for 5432"
                " (IPv6 hosts go in brackets: [::1])",
            )
        port = int(raw_port)
        if not 1 <= port <= 65535:
            fail("the port is out of range", "give an integer port between 1 and 65535")

    path, _q, raw_query = tail.partition("?")
    database: str | None = None
    if path:
        if "/" in path[1:]:
            fail("the path has more than one segment", "percent-encode '/' in the name as %2F")
        database = _unquote(path[1:], "database name", fail) or None

    query = _parse_query(raw_query, fail)
    sslmode = query.get("sslmode")
    if sslmode is not None and sslmode not in SSLMODES:
        fail("sslmode is not one libpq knows", f"use one of {', '.join(SSLMODES)}")

    return {
        "scheme": "postgresql",
        "driver": match["driver"],
        "username": username,
        "password": password,
        "host": host,
        "port": port,
        "database": database,
        "query": query,
        "sslmode": sslmode,
    }
