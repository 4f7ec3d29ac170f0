# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Read-only database checks for the preflight: TLS, connection headroom, foreign keys
without an index, slow statements and weak passwords.

Each check reads through ``Db`` (which records every statement) and hands the rows to a pure
``judge_*`` function that returns a ``CheckResult``; the unit tests drive both halves with
canned rows. No message, remediation or data value holds a password or a password hash:
the password checks compare on this side and report fixed text, and the role checks
compute ``rolpassword IS NULL`` / ``LIKE 'md5%'`` on the server so the hash never leaves it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    ConnParams,
    PgInputError,
    connect_error,
    quote_ident,
    scrub,
)
from ansible_collections.prodready.deploy.plugins.module_utils._secrets import (
    placeholder_reasons,
    secret_strength,
)

try:
    import psycopg2

    _DB_ERRORS: tuple[type[Exception], ...] = (psycopg2.Error,)
except ImportError:  # pragma: no cover - conn.connect() reports the missing library
    _DB_ERRORS = ()

CHECK_IDS = ("tls", "connections", "fk_indexes", "slow_statements", "passwords")
STATUSES = ("pass", "warn", "fail", "skip")
FAIL_ON = ("fail", "warn", "never")

SECURE_SSLMODES = ("require", "verify-ca", "verify-full")
# Well-known defaults, compared lowercased; the user name is added per check.
DEFAULT_PASSWORDS = frozenset({"postgres", "password", "changeme", "admin", "secret"})
# Below these a password is guessable offline from a SCRAM exchange or an md5 hash.
MIN_PASSWORD_LENGTH = 16
MIN_PASSWORD_BITS = 60.0
WEAK_TLS_VERSIONS = ("SSLv2", "SSLv3", "TLSv1", "TLSv1.1")


class CheckInputError(PgInputError):
    """A check option is out of range; nothing was read."""


@dataclass
class CheckResult:
    id: str
    status: str
    message: str
    remediation: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "status": self.status, "message": self.message,
                "remediation": self.remediation, "data": self.data}


@dataclass(frozen=True)
class Settings:
    """The options of the checks, validated once."""

    pool_size: int = 5
    max_overflow: int = 10
    app_processes: int = 1
    connection_usage_warn_percent: float = 80.0
    slow_statement_ms: float = 500.0
    slow_statements_count: int = 10
    query_length: int = 200

    def __post_init__(self) -> None:
        for name, minimum in (("pool_size", 1), ("max_overflow", 0), ("app_processes", 1),
                              ("slow_statements_count", 1), ("query_length", 20)):
            if getattr(self, name) < minimum:
                raise CheckInputError(f"option {name} must be at least {minimum}, got"
                                      f" {getattr(self, name)}")
        if not 0 < self.connection_usage_warn_percent <= 100:
            raise CheckInputError("option connection_usage_warn_percent must be above 0 and"
                                  f" at most 100, got {self.connection_usage_warn_percent:g}")
        if self.slow_statement_ms < 0:
            raise CheckInputError("option slow_statement_ms must be 0 or more, got"
                                  f" {self.slow_statement_ms:g}")

    @property
    def pool_demand(self) -> int:
        return (self.pool_size + self.max_overflow) * self.app_processes


class Db:
    """A psycopg2 connection that records the statements it runs."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.queries: list[str] = []

    def all(self, query: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        self.queries.append(" ".join(query.split()))
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def execute(self, query: str, params: Sequence[Any] | None = None) -> None:
        """A statement without a result (SET)."""
        self.queries.append(" ".join(query.split()))
        with self.conn.cursor() as cur:
            cur.execute(query, params)

    def one(self, query: str, params: Sequence[Any] | None = None) -> tuple[Any, ...]:
        rows = self.all(query, params)
        return rows[0] if rows else ()

    def lost(self) -> bool:
        """Whether the connection is gone (after an error: the server, not the statement)."""
        return bool(getattr(self.conn, "closed", 0))

    def sslmode(self) -> str | None:
        """The sslmode libpq used (the configured one, else its default or PGSSLMODE)."""
        return self.conn.get_dsn_parameters().get("sslmode")


# ---------------------------------------------------------------------------------------
# tls

TLS_QUERY = ("SELECT ssl, version, cipher, bits FROM pg_stat_ssl"
             " WHERE pid = pg_backend_pid()")


def check_tls(db: Db, params: ConnParams, settings: Settings) -> CheckResult:
    row = db.one(TLS_QUERY)
    return judge_tls(row, db.sslmode() or params.sslmode)


def judge_tls(row: Sequence[Any], sslmode: str | None) -> CheckResult:
    ssl, version, cipher, bits = (tuple(row) + (None,) * 4)[:4]
    mode = sslmode or "prefer"
    data = {"ssl": bool(ssl), "version": version, "cipher": cipher, "bits": bits,
            "sslmode": mode}
    fix_mode = ("connect with sslmode=verify-full and the CA certificate that signed the"
                " server's (ssl_mode / ca_cert, or ?sslmode=verify-full&sslrootcert=... in"
                " DATABASE_URL)")
    if not ssl:
        return CheckResult(
            "tls", "fail",
            f"the connection is not encrypted (pg_stat_ssl.ssl is false, sslmode={mode})",
            f"{fix_mode}; make the server refuse plain connections (hostssl, not host, lines"
            " in pg_hba.conf)", data)
    if mode not in SECURE_SSLMODES:
        return CheckResult(
            "tls", "fail",
            f"the connection uses {version} but sslmode={mode} would fall back to an"
            " unencrypted connection (or accept any server) without an error",
            fix_mode, data)
    if version in WEAK_TLS_VERSIONS:
        return CheckResult(
            "tls", "warn", f"the connection uses {version}, which is deprecated",
            "set ssl_min_protocol_version = 'TLSv1.2' on the server", data)
    note = ("" if mode == "verify-full" else
            f"; sslmode={mode} does not check the server's host name, verify-full does")
    return CheckResult("tls", "pass",
                       f"the connection uses {version} ({cipher}), sslmode={mode}{note}",
                       "", data)


# ---------------------------------------------------------------------------------------
# connections

# numbackends (pg_stat_database) is visible to every role, unlike the backend type of other
# roles' sessions in pg_stat_activity; each count leaves out this session.
CONNECTIONS_QUERY = """
SELECT current_setting('max_connections')::int,
       current_setting('superuser_reserved_connections')::int,
       coalesce(current_setting('reserved_connections', true), '0')::int,
       (SELECT coalesce(sum(numbackends), 0) FROM pg_stat_database) - 1,
       (SELECT numbackends FROM pg_stat_database WHERE datname = current_database()) - 1,
       (SELECT count(*) FROM pg_stat_activity
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
           AND usename = current_user),
       (SELECT datconnlimit FROM pg_database WHERE datname = current_database()),
       (SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user),
       current_database(), current_user
"""


def check_connections(db: Db, params: ConnParams, settings: Settings) -> CheckResult:
    return judge_connections(db.one(CONNECTIONS_QUERY), settings)


def judge_connections(row: Sequence[Any], settings: Settings) -> CheckResult:
    (max_conn, su_reserved, reserved, in_use, in_use_db, in_use_role, datconnlimit,
     rolconnlimit, database, user) = row
    available = max_conn - su_reserved - reserved
    # Every limit that applies to the app's connections: (what, limit, in use by others).
    limits = [(f"max_connections {max_conn} - {su_reserved + reserved} reserved", available,
               in_use)]
    if datconnlimit is not None and datconnlimit >= 0:
        limits.append((f"the connection limit of database {database}", datconnlimit,
                       in_use_db))
    if rolconnlimit is not None and rolconnlimit >= 0:
        limits.append((f"the connection limit of role {user}", rolconnlimit, in_use_role))
    what, limit, used = min(limits, key=lambda item: item[1] - item[2])
    free = max(limit - used, 0)
    demand = settings.pool_demand
    usage = round(100.0 * (used + demand) / limit, 1) if limit > 0 else 100.0
    pool = (f"(DB_POOL_SIZE {settings.pool_size} + DB_MAX_OVERFLOW {settings.max_overflow})"
            f" x {settings.app_processes} process{'es' if settings.app_processes != 1 else ''}")
    data = {"max_connections": max_conn, "superuser_reserved_connections": su_reserved,
            "reserved_connections": reserved, "available": available, "in_use": in_use,
            "in_use_database": in_use_db, "in_use_role": in_use_role,
            "datconnlimit": datconnlimit, "rolconnlimit": rolconnlimit,
            "binding_limit": what, "limit": limit, "free": free,
            "pool_size": settings.pool_size, "max_overflow": settings.max_overflow,
            "app_processes": settings.app_processes, "pool_demand": demand,
            "projected_usage_percent": usage,
            "usage_warn_percent": settings.connection_usage_warn_percent}
    counted = f"{used} in use by other sessions, {what}: {limit}"
    if demand > free:
        return CheckResult(
            "connections", "fail",
            f"the app's pool needs up to {demand} connections {pool} but only {free} are"
            f" free ({counted})",
            "lower DB_POOL_SIZE / DB_MAX_OVERFLOW or the replicas x workers, put a pooler"
            " (PgBouncer) in front of the server, or raise max_connections (needs a restart)",
            data)
    if usage > settings.connection_usage_warn_percent:
        return CheckResult(
            "connections", "warn",
            f"the app's pool fits ({demand} of {free} free connections, {pool}), but would"
            f" bring usage to {usage:g}% of {limit}, above the"
            f" {settings.connection_usage_warn_percent:g}% threshold ({counted})",
            "leave headroom for a rolling deploy (old and new pods hold connections at the"
            " same time): lower the pool or put a pooler (PgBouncer) in front", data)
    return CheckResult(
        "connections", "pass",
        f"the app's pool of up to {demand} connections {pool} fits in the {free} free"
        f" ({usage:g}% projected usage; {counted})", "", data)


# ---------------------------------------------------------------------------------------
# fk_indexes

FK_QUERY = """
SELECT n.nspname, t.relname, t.relkind, c.conname,
       ARRAY(SELECT a.attname::text
               FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
               JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
              ORDER BY k.ord),
       c.confrelid::regclass::text
  FROM pg_constraint c
  JOIN pg_class t ON t.oid = c.conrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE c.contype = 'f'
   AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND n.nspname NOT LIKE 'pg_toast%'
 ORDER BY 1, 2, 4
"""

INDEX_QUERY = """
SELECT n.nspname, t.relname, ic.relname,
       ARRAY(SELECT a.attname::text
               FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
               LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
              WHERE k.ord <= i.indnkeyatts
              ORDER BY k.ord),
       i.indisvalid, i.indpred IS NOT NULL
  FROM pg_index i
  JOIN pg_class t ON t.oid = i.indrelid
  JOIN pg_class ic ON ic.oid = i.indexrelid
  JOIN pg_namespace n ON n.oid = t.relnamespace
 WHERE t.oid IN (SELECT conrelid FROM pg_constraint WHERE contype = 'f')
"""


def check_fk_indexes(db: Db, params: ConnParams, settings: Settings) -> CheckResult:
    fks = db.all(FK_QUERY)
    indexes = db.all(INDEX_QUERY) if fks else []
    return judge_fk_indexes(fks, indexes)


def _index_name(table: str, columns: Sequence[str]) -> str:
    name = "_".join(["ix", table, *columns])
    name = re.sub(r"[\W_]+", "_", name.lower()).strip("_")
    # PostgreSQL truncates identifiers to 63 bytes; keep the name meaningful instead.
    return name.encode()[:63].decode(errors="ignore")


def create_index_sql(schema: str, table: str, columns: Sequence[str],
                     partitioned: bool = False) -> str:
    """CREATE INDEX CONCURRENTLY for the columns of a foreign key, identifiers quoted."""
    cols = ", ".join(quote_ident(c) for c in columns)
    target = f"{quote_ident(schema)}.{quote_ident(table)}"
    if partitioned:
        # CONCURRENTLY is refused on a partitioned table; ON ONLY + per-partition builds
        # would be the non-blocking way, this is the simple one.
        return (f"CREATE INDEX IF NOT EXISTS {quote_ident(_index_name(table, columns))}"
                f" ON {target} ({cols});")
    return (f"CREATE INDEX CONCURRENTLY IF NOT EXISTS"
            f" {quote_ident(_index_name(table, columns))} ON {target} ({cols});")


def _covers(index_columns: Sequence[str | None], fk_columns: Sequence[str]) -> bool:
    """An index serves the FK when the FK's columns are its leading columns, in any order."""
    lead = list(index_columns[:len(fk_columns)])
    return len(lead) == len(fk_columns) and set(lead) == set(fk_columns)


def judge_fk_indexes(fks: Iterable[Sequence[Any]],
                     indexes: Iterable[Sequence[Any]]) -> CheckResult:
    by_table: dict[tuple[str, str], list[tuple[str, list[str | None], bool, bool]]] = {}
    for schema, table, name, columns, valid, partial in indexes:
        by_table.setdefault((schema, table), []).append((name, list(columns), valid, partial))
    missing = []
    checked = 0
    for schema, table, relkind, conname, columns, references in fks:
        checked += 1
        candidates = by_table.get((schema, table), [])
        if any(valid and not partial and _covers(cols, columns)
               for _name, cols, valid, partial in candidates):
            continue
        invalid = [name for name, cols, valid, partial in candidates
                   if _covers(cols, columns) and (not valid or partial)]
        missing.append({
            "schema": schema, "table": table, "constraint": conname,
            "columns": list(columns), "references": references,
            "unusable_indexes": invalid,
            "suggestion": create_index_sql(schema, table, columns, relkind == "p"),
        })
    data = {"foreign_keys": checked, "missing": missing}
    if not missing:
        return CheckResult("fk_indexes", "pass",
                           f"all {checked} foreign keys have an index on their columns", "",
                           data)
    names = ", ".join(f"{m['schema']}.{m['table']}.{m['constraint']}"
                      f" ({', '.join(m['columns'])})" for m in missing)
    return CheckResult(
        "fk_indexes", "warn",
        f"{len(missing)} of {checked} foreign keys have no index on their columns: {names};"
        " deleting or updating a referenced row scans the whole referencing table",
        "create the indexes (data.missing[].suggestion; CONCURRENTLY does not block writes and"
        " must run outside a transaction)", data)


# ---------------------------------------------------------------------------------------
# slow_statements

# pg_settings leaves out shared_preload_libraries for roles without pg_read_all_settings
# (the subquery is then NULL: unknown), where current_setting() would raise.
EXTENSION_QUERY = """
SELECT n.nspname, e.extversion,
       (SELECT setting FROM pg_settings WHERE name = 'shared_preload_libraries')
  FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
 WHERE e.extname = 'pg_stat_statements'
"""
PRELOAD_QUERY = ("SELECT (SELECT setting FROM pg_settings"
                 " WHERE name = 'shared_preload_libraries'), current_database()")

_SECRET_LITERALS = re.compile(
    r"(?i)\b(password|encrypted\s+password)(\s*=?\s*)('(?:[^']|'')*'|\$(\w*)\$.*?\$\4\$)",
    re.DOTALL)


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version or "0"))


def statements_query(schema: str, version: str, count: int) -> str:
    # pg_stat_statements 1.8 (PostgreSQL 13) renamed mean_time to mean_exec_time.
    new = _version_tuple(version) >= (1, 8)
    mean, peak, total = (("mean_exec_time", "max_exec_time", "total_exec_time") if new else
                         ("mean_time", "max_time", "total_time"))
    return (f"SELECT queryid, query, calls, {mean}, {peak}, {total}, rows"
            f" FROM {quote_ident(schema)}.pg_stat_statements"
            " WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())"
            f" ORDER BY {mean} DESC LIMIT {int(count)}")


def redact_query(text: str | None, length: int, params: ConnParams | None = None) -> str:
    """One line of at most ``length`` characters, password literals removed."""
    text = _SECRET_LITERALS.sub(lambda m: f"{m.group(1)}{m.group(2)}'********'", text or "")
    if params is not None:
        text = scrub(text, params)
    text = " ".join(text.split())
    return text if len(text) <= length else text[:length - 3] + "..."


def check_slow_statements(db: Db, params: ConnParams, settings: Settings) -> CheckResult:
    found = db.one(EXTENSION_QUERY)
    if not found:
        preload, database = db.one(PRELOAD_QUERY)
        return judge_slow_statements(None, None, preload, [], settings, database)
    schema, version, preload = found
    try:
        rows = db.all(statements_query(schema, version, settings.slow_statements_count))
    except _DB_ERRORS as exc:
        if db.lost():
            raise
        # Installed, but the library is not loaded (or the view is not readable).
        return judge_slow_statements(schema, version, preload, [], settings,
                                     error=_first_line(str(exc)))
    rows = [(qid, redact_query(q, settings.query_length, params), *rest)
            for qid, q, *rest in rows]
    return judge_slow_statements(schema, version, preload, rows, settings)


def _preloaded(preload: str | None) -> bool | None:
    """Whether pg_stat_statements is preloaded; None when the setting is not readable."""
    if preload is None:
        return None
    return "pg_stat_statements" in [p.strip().strip('"') for p in preload.split(",")]


def _enable_steps(preload: str | None) -> str:
    loaded = _preloaded(preload)
    first = {
        True: "",
        None: "make sure shared_preload_libraries contains pg_stat_statements"
              " (needs a restart), then ",
        False: "add pg_stat_statements to shared_preload_libraries and restart"
               " PostgreSQL, then ",
    }[loaded]
    return (f"{first}run CREATE EXTENSION pg_stat_statements in the database (as a superuser)"
            "; it records statement timings from then on")


def judge_slow_statements(schema: str | None, version: str | None, preload: str | None,
                          rows: Sequence[Sequence[Any]], settings: Settings,
                          database: str | None = None, error: str | None = None,
                          ) -> CheckResult:
    threshold = settings.slow_statement_ms
    if schema is None:
        where = f"database {database}" if database else "this database"
        return CheckResult(
            "slow_statements", "skip",
            f"pg_stat_statements is not installed in {where}",
            _enable_steps(preload),
            {"installed": False, "preloaded": _preloaded(preload)})
    data: dict[str, Any] = {"installed": True, "schema": schema, "version": version,
                            "threshold_ms": threshold, "statements": []}
    if error is not None:
        data["error"] = error
        return CheckResult("slow_statements", "skip",
                           f"pg_stat_statements is installed but cannot be read: {error}",
                           _enable_steps(preload), data)
    statements = [{"queryid": qid, "query": query, "calls": calls,
                   "mean_ms": round(float(mean), 2), "max_ms": round(float(peak), 2),
                   "total_ms": round(float(total), 2), "rows": nrows}
                  for qid, query, calls, mean, peak, total, nrows in rows]
    data["statements"] = statements
    slow = [s for s in statements if s["mean_ms"] > threshold]
    data["slow"] = len(slow)
    if not statements:
        return CheckResult("slow_statements", "pass",
                           "pg_stat_statements has recorded no statements in this database yet",
                           "", data)
    if slow:
        worst = slow[0]
        return CheckResult(
            "slow_statements", "warn",
            f"{len(slow)} of the {len(statements)} slowest statements take more than"
            f" {threshold:g} ms on average; the slowest: {worst['mean_ms']:g} ms mean,"
            f" {worst['max_ms']:g} ms max over {worst['calls']} calls: {worst['query']}",
            "look at their plans (EXPLAIN (ANALYZE, BUFFERS)) for missing indexes or"
            " unbounded scans; data.statements lists them", data)
    return CheckResult(
        "slow_statements", "pass",
        f"the slowest statement takes {statements[0]['mean_ms']:g} ms on average, within"
        f" {threshold:g} ms", "", data)


# ---------------------------------------------------------------------------------------
# passwords

AUTHID_READABLE_QUERY = "SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')"
# The hash never leaves the server: only whether there is one and which kind.
ROLES_QUERY = """
SELECT rolname, rolpassword IS NULL, coalesce(rolpassword LIKE 'md5%', false)
  FROM pg_catalog.pg_authid
 WHERE rolcanlogin
 ORDER BY rolname
"""


def check_passwords(db: Db, params: ConnParams, settings: Settings) -> CheckResult:
    readable = bool(db.one(AUTHID_READABLE_QUERY)[0])
    roles = db.all(ROLES_QUERY) if readable else None
    return judge_passwords(params, roles)


def configured_password_findings(password: str | None, user: str | None,
                                 client_cert: bool = False) -> tuple[str, str]:
    """(status, message) about the configured password; the message never holds it."""
    if password is None:
        if client_cert:
            return "pass", "no password is configured; the connection uses a client certificate"
        return ("warn", "no password is configured, yet the server let this user in: it"
                        " allows trust or peer authentication, or a ~/.pgpass supplied one")
    if password == "":
        return "fail", "the configured password is empty"
    lowered = password.strip().lower()
    defaults = DEFAULT_PASSWORDS | ({user.lower()} if user else set())
    if lowered in defaults:
        return "fail", "the configured password is a well-known default or the user name"
    if placeholder_reasons(password):
        return ("fail", "the configured password "
                        + "; it ".join(placeholder_reasons(password)))
    verdict = secret_strength(password, min_length=MIN_PASSWORD_LENGTH,
                              min_entropy_bits=MIN_PASSWORD_BITS)
    if not verdict["ok"]:
        return "warn", "the configured password " + "; it ".join(verdict["reasons"])
    return "pass", (f"the configured password is {verdict['length']} characters long and"
                    " not a known default")


def judge_passwords(params: ConnParams, roles: Sequence[Sequence[Any]] | None,
                    ) -> CheckResult:
    status, message = configured_password_findings(
        params.password, params.user, client_cert=bool(params.options.get("sslcert")))
    data: dict[str, Any] = {"configured_password": status, "roles_checked": roles is not None}
    messages = [message]
    remedies = []
    if status == "fail":
        remedies.append("set a long random password for the role (ALTER ROLE ... PASSWORD,"
                        " from psql's \\password so it is not logged) and in the app's"
                        " secret, e.g. openssl rand -base64 32")
    elif status == "warn":
        remedies.append("use a long random password (openssl rand -base64 32) or client"
                        " certificates, and allow only scram-sha-256 or cert in pg_hba.conf")
    if roles is None:
        messages.append("login roles not checked: pg_authid is readable by superusers only")
    else:
        no_password = [name for name, empty, _md5 in roles if empty]
        md5 = [name for name, empty, is_md5 in roles if not empty and is_md5]
        data.update(login_roles=len(roles), roles_without_password=no_password,
                    roles_with_md5=md5)
        if no_password:
            messages.append(f"login roles without a password: {', '.join(no_password)}")
            remedies.append(f"give {', '.join(no_password)} a password (or NOLOGIN) and make"
                            " sure pg_hba.conf has no trust lines")
        if md5:
            messages.append(f"login roles with an MD5 password hash: {', '.join(md5)}")
            remedies.append("with password_encryption = 'scram-sha-256', set the passwords of"
                            f" {', '.join(md5)} again (MD5 hashes are deprecated and can be"
                            " replayed)")
        if not (no_password or md5):
            messages.append(f"all {len(roles)} login roles have SCRAM password hashes")
        if status == "pass" and (no_password or md5):
            status = "warn"
    return CheckResult("passwords", status, "; ".join(messages), "; ".join(remedies), data)


# ---------------------------------------------------------------------------------------

CHECKS: dict[str, Callable[[Db, ConnParams, Settings], CheckResult]] = {
    "tls": check_tls,
    "connections": check_connections,
    "fk_indexes": check_fk_indexes,
    "slow_statements": check_slow_statements,
    "passwords": check_passwords,
}


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "no message")


def run_checks(db: Db, params: ConnParams, settings: Settings,
               ids: Iterable[str] | None = None) -> list[CheckResult]:
    """Run the chosen checks in their canonical order; a check whose statement fails is a
    ``fail`` naming the error, a lost connection is a typed connection error."""
    wanted = set(CHECK_IDS if ids is None else ids)
    unknown = wanted - set(CHECK_IDS)
    if unknown:
        raise CheckInputError(f"unknown checks {', '.join(sorted(unknown))}; choose from"
                              f" {', '.join(CHECK_IDS)}")
    results = []
    for check_id in CHECK_IDS:
        if check_id not in wanted:
            continue
        try:
            results.append(CHECKS[check_id](db, params, settings))
        except _DB_ERRORS as exc:
            if db.lost():
                raise connect_error(str(exc), params) from None
            error = scrub(_first_line(str(exc)), params)
            results.append(CheckResult(check_id, "fail", f"the check could not run: {error}",
                                       "grant the connecting role read access to the"
                                       " catalog views it reads, or leave the check out"
                                       " (option checks)", {"error": error}))
    return results


def summarize(results: Sequence[CheckResult], fail_on: str = "fail") -> dict[str, Any]:
    """``summary`` counts, ``failed`` and ``warned`` ids, and whether the module fails."""
    if fail_on not in FAIL_ON:
        raise CheckInputError(f"fail_on must be one of {', '.join(FAIL_ON)}, got {fail_on!r}")
    summary = {status: sum(r.status == status for r in results) for status in STATUSES}
    failed = [r.id for r in results if r.status == "fail"]
    warned = [r.id for r in results if r.status == "warn"]
    fails = bool(failed) if fail_on == "fail" else bool(failed or warned) \
        if fail_on == "warn" else False
    return {"summary": summary, "failed": failed, "warned": warned, "fails": fails}


def finish(module: Any, result: dict[str, Any], fails: bool, fail_on: str, name: str,
           failure: str) -> None:
    """End a check module (pg_check, env_check, http_check) the same way: one task warning
    per warned check, then - after returning the whole report - a failure that names every
    failing check (warned ones too with fail_on=warn) and its message, or success."""
    by_id = {c["id"]: c for c in result["checks"]}
    for check_id in result["warned_checks"]:
        module.warn(f"{name} {check_id}: {by_id[check_id]['message']}")
    if fails:
        bad = result["failed_checks"] + (result["warned_checks"] if fail_on == "warn" else [])
        detail = "; ".join(f"{i} ({by_id[i]['message']})" for i in bad)
        module.fail_json(msg=f"{failure}: {detail}", **result)
    module.exit_json(**result)
