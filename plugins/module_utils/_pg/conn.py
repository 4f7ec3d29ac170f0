# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Connection settings shared by the PostgreSQL modules.

One place turns the module options (``url`` and/or ``login_*``) into libpq settings, and
hands them out in the two shapes the modules need:

- keyword arguments for ``psycopg2.connect`` (``ConnParams.connect_kwargs``);
- an environment for the client programs (pg_dump, pg_restore, psql, alembic), with the
  password in a private 0600 passfile (``ConnParams.client_env``) - never on a command line,
  where ``ps`` shows it to every user of the machine.

Connection failures become typed errors whose messages say what is wrong and what to do;
they never contain the password.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._dburl import (
    DbUrlError,
    parse_db_url,
)

try:
    import psycopg2
    import psycopg2.extensions

    HAS_PSYCOPG2 = True
except ImportError:  # pragma: no cover - reported by require_psycopg2()
    HAS_PSYCOPG2 = False

# Module options, shared through the doc fragment prodready.deploy._postgres.
CONNECTION_ARG_SPEC: dict[str, dict[str, Any]] = {
    "url": {"type": "str", "no_log": True},
    "login_host": {"type": "str"},
    "login_port": {"type": "int"},
    "login_user": {"type": "str"},
    "login_password": {"type": "str", "no_log": True},
    "database": {"type": "str", "aliases": ["db"]},
    "ssl_mode": {"type": "str",
                 "choices": ["disable", "allow", "prefer", "require", "verify-ca",
                             "verify-full"]},
    "ca_cert": {"type": "path", "aliases": ["ssl_rootcert"]},
    # No default here: None lets a connect_timeout in the URL apply (10 s otherwise).
    "connect_timeout": {"type": "int"},
}

# URL query keys passed on to libpq as they are (the others are refused: a typo such as
# ?sslmdoe=disable must not silently weaken the connection).
_LIBPQ_QUERY_KEYS = {
    "sslmode": "sslmode", "sslrootcert": "sslrootcert", "sslcert": "sslcert",
    "sslkey": "sslkey", "sslcrl": "sslcrl", "application_name": "application_name",
    "connect_timeout": "connect_timeout", "options": "options",
    "target_session_attrs": "target_session_attrs", "gssencmode": "gssencmode",
    "channel_binding": "channel_binding", "sslcompression": "sslcompression",
}

_ENV_FOR = {
    "host": "PGHOST", "port": "PGPORT", "user": "PGUSER", "dbname": "PGDATABASE",
    "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY", "sslcrl": "PGSSLCRL", "application_name": "PGAPPNAME",
    "connect_timeout": "PGCONNECT_TIMEOUT", "options": "PGOPTIONS",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "gssencmode": "PGGSSENCMODE",
    "channel_binding": "PGCHANNELBINDING", "sslcompression": "PGSSLCOMPRESSION",
}

# libpq reads these from the environment; a stale one in the caller's environment would
# silently change where a client program connects.
_CLEARED_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD",
                "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGSSLMODE", "PGSSLROOTCERT",
                "PGSSLCERT", "PGSSLKEY", "PGSSLCRL", "PGAPPNAME", "PGCONNECT_TIMEOUT",
                "PGOPTIONS", "PGTARGETSESSIONATTRS", "PGGSSENCMODE", "PGCHANNELBINDING",
                "PGSSLCOMPRESSION", "PGREQUIRESSL")


class PgError(Exception):
    """Base class of the errors of the PostgreSQL helpers. Messages never hold a secret."""


class PgInputError(PgError):
    """The connection options are wrong or incomplete; nothing was attempted."""


class PgConnectError(PgError):
    """The server could not be reached or refused the connection."""

    kind = "connect"


class PgAuthError(PgConnectError):
    kind = "auth"


class PgUnreachableError(PgConnectError):
    kind = "unreachable"


class PgDatabaseMissingError(PgConnectError):
    kind = "database_missing"


class PgTlsError(PgConnectError):
    kind = "tls"


class PgDependencyError(PgError):
    """A Python library or client program this module needs is missing."""


@dataclass(frozen=True)
class ConnParams:
    """Where and how to connect. ``password`` is never part of ``repr`` or messages."""

    host: str | None = None
    port: int = 5432
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    dbname: str | None = None
    options: dict[str, str] = field(default_factory=dict)
    connect_timeout: int = 10

    def with_database(self, dbname: str) -> ConnParams:
        """The same server and credentials, another database (scratch restores)."""
        return replace(self, dbname=dbname)

    @property
    def sslmode(self) -> str | None:
        return self.options.get("sslmode")

    def describe(self) -> str:
        """``user@host:port/db`` for messages."""
        user = f"{self.user}@" if self.user else ""
        return f"{user}{self.host or 'localhost'}:{self.port}/{self.dbname or '?'}"

    def libpq_settings(self) -> dict[str, str]:
        """Every libpq keyword except the password."""
        settings = {"port": str(self.port), "connect_timeout": str(self.connect_timeout)}
        if self.host:
            settings["host"] = self.host
        if self.user:
            settings["user"] = self.user
        if self.dbname:
            settings["dbname"] = self.dbname
        settings.update(self.options)
        settings.setdefault("application_name", "prodready.deploy")
        return settings

    def connect_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``psycopg2.connect``."""
        kwargs = self.libpq_settings()
        if self.password is not None:
            kwargs["password"] = self.password
        return kwargs

    @contextlib.contextmanager
    def client_env(self, base: dict[str, str] | None = None) -> Iterator[dict[str, str]]:
        """Environment for libpq client programs; the password goes to a private passfile.

        The passfile lives in a 0700 directory that is removed when the block ends, even on
        error. ``base`` defaults to ``os.environ``; the libpq variables in it are dropped
        first so only these settings apply.
        """
        env = {k: v for k, v in (os.environ if base is None else base).items()
               if k not in _CLEARED_ENV}
        for key, value in self.libpq_settings().items():
            env[_ENV_FOR[key]] = value
        if self.password is None:
            # No password given: never fall back to the caller's ~/.pgpass.
            env["PGPASSFILE"] = os.devnull
            yield env
            return
        tmpdir = tempfile.mkdtemp(prefix="prodready-pg-")
        try:
            passfile = os.path.join(tmpdir, "pgpass")
            fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(f"*:*:*:*:{_pgpass_escape(self.password)}\n")
            env["PGPASSFILE"] = passfile
            yield env
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)


def _pgpass_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace(":", "\\:")


def from_params(params: dict[str, Any]) -> ConnParams:
    """Build ``ConnParams`` from the module options of ``CONNECTION_ARG_SPEC``.

    ``url`` gives the base; ``login_*``, ``database``, ``ssl_mode`` and ``ca_cert`` override
    its parts (so a URL without a password can be combined with a vaulted password).
    """
    url = params.get("url")
    parts: dict[str, Any] = {"query": {}}
    if url:
        try:
            parts = parse_db_url(url)
        except DbUrlError as exc:
            raise PgInputError(f"option url: {exc}") from None
    options: dict[str, str] = {}
    for key, value in parts["query"].items():
        if key not in _LIBPQ_QUERY_KEYS:
            raise PgInputError(
                f"option url: the query parameter {key!r} is not a libpq connection setting"
                f" this module passes on; use one of {', '.join(sorted(_LIBPQ_QUERY_KEYS))}")
        options[_LIBPQ_QUERY_KEYS[key]] = value
    if params.get("ssl_mode"):
        options["sslmode"] = params["ssl_mode"]
    if params.get("ca_cert"):
        options["sslrootcert"] = params["ca_cert"]
    # The option wins over the URL's connect_timeout; the URL's applies when the option is
    # not given (None), and 10 s when neither is.
    url_timeout = options.pop("connect_timeout", None)
    timeout = params.get("connect_timeout")
    if timeout is None and url_timeout is not None:
        try:
            timeout = int(url_timeout)
        except ValueError:
            raise PgInputError("option url: connect_timeout must be a whole number of"
                               " seconds") from None
    timeout = 10 if timeout is None else timeout
    if timeout < 1:
        raise PgInputError("connect_timeout must be at least 1 (seconds)")

    host = params.get("login_host") or parts.get("host")
    port = params.get("login_port") or parts.get("port") or 5432
    user = params.get("login_user") or parts.get("username")
    password = params.get("login_password")
    if password is None:
        password = parts.get("password")
    dbname = params.get("database") or parts.get("database")
    if not host:
        raise PgInputError("no server given: set url (postgresql://user@host:5432/db) or"
                           " login_host")
    if not 1 <= int(port) <= 65535:
        raise PgInputError("option login_port must be between 1 and 65535")
    if not dbname:
        raise PgInputError("no database given: put it in url (…/dbname) or set database")
    return ConnParams(host=host, port=int(port), user=user, password=password, dbname=dbname,
                      options=options, connect_timeout=timeout)


# libpq message fragments -> (error class, what to do). First match wins.
_CAUSES: tuple[tuple[re.Pattern[str], type[PgConnectError], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), cls, fix) for pattern, cls, fix in (
        (r"password authentication failed|authentication failed for user|"
         r"no password supplied|fe_sendauth",
         PgAuthError, "check the password (login_password or the password in url) and the"
                      " user name"),
        (r"role \"[^\"]*\" does not exist", PgAuthError,
         "check the user name (login_user or the user in url)"),
        (r"database \"[^\"]*\" does not exist", PgDatabaseMissingError,
         "check the database name (database or the path of url), or create the database"),
        (r"no pg_hba\.conf entry", PgAuthError,
         "allow this client in the server's pg_hba.conf, or connect with the SSL mode the"
         " server requires"),
        (r"certificate|SSL|TLS", PgTlsError,
         "check ssl_mode, ca_cert (the CA that signed the server certificate) and that the"
         " host name matches the certificate"),
        (r"connection refused|could not connect|could not translate host name|timeout expired|"
         r"no route to host|network is unreachable|server closed the connection|"
         r"Name or service not known|No such file or directory",
         PgUnreachableError, "check host and port, and that PostgreSQL is running and"
                             " accepts TCP connections there"),
    ))


def _first_line(text: str) -> str:
    for line in text.strip().splitlines():
        line = line.strip()
        if line:
            return line
    return "no message"


def scrub(text: str, params: ConnParams) -> str:
    """Remove the password from ``text`` (libpq never prints it; belt and braces)."""
    if params.password:
        text = text.replace(params.password, "********")
    return text


def connect_error(message: str, params: ConnParams) -> PgError:
    """Turn a libpq connection error text into a typed error with a remedy."""
    message = scrub(message, params).strip()
    for pattern, cls, fix in _CAUSES:
        if pattern.search(message):
            detail = " ".join(line.strip() for line in message.splitlines() if line.strip())
            return cls(f"cannot connect to PostgreSQL at {params.describe()}: {detail}; {fix}")
    return PgConnectError(f"cannot connect to PostgreSQL at {params.describe()}:"
                          f" {_first_line(message)}")


def require_psycopg2() -> None:
    if not HAS_PSYCOPG2:
        raise PgDependencyError("the psycopg2 Python library is required on the host that runs"
                                " this module: pip install psycopg2-binary (or psycopg2)")


def connect(params: ConnParams, autocommit: bool = True) -> Any:
    """Open a psycopg2 connection, turning failures into typed errors with a remedy."""
    require_psycopg2()
    try:
        conn = psycopg2.connect(**params.connect_kwargs())
    except psycopg2.OperationalError as exc:
        raise connect_error(str(exc), params) from None
    conn.autocommit = autocommit
    return conn


def find_program(name: str, explicit: str | None = None) -> str:
    """Path of a client program (pg_dump, pg_restore, psql), or a clear error."""
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise PgDependencyError(f"{name} not found at {explicit}: give the path of an"
                                    " executable")
        return explicit
    found = shutil.which(name)
    if not found:
        raise PgDependencyError(f"{name} is not installed on the host that runs this module:"
                                " install the PostgreSQL client (e.g. postgresql-client)")
    return found


def quote_ident(name: str) -> str:
    """Quote an SQL identifier (for statements psycopg2.sql cannot build, e.g. in logs)."""
    return '"' + name.replace('"', '""') + '"'
