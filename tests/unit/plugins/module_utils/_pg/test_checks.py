# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight database checks on canned query results (a fake connection whose cursor
answers by the statement it is given)."""

from __future__ import annotations

from typing import Any

import psycopg2
import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg import checks
from ansible_collections.prodready.deploy.plugins.module_utils._pg.checks import (
    CheckInputError,
    CheckResult,
    Db,
    Settings,
    configured_password_findings,
    create_index_sql,
    judge_connections,
    judge_fk_indexes,
    judge_passwords,
    judge_slow_statements,
    judge_tls,
    redact_query,
    run_checks,
    statements_query,
    summarize,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    ConnParams,
    PgUnreachableError,
)

CANARY = "Canary-7f3e9a1c-d0b2-4c55-a1e8-3b9c2f6d4e10"
STRONG = ConnParams(host="db", user="app", password=CANARY, dbname="app",
                    options={"sslmode": "verify-full"})


class FakeConn:
    """psycopg2 connection stand-in: ``answers`` maps a fragment of a statement to its rows
    (or to an exception to raise); the first fragment found in the statement wins."""

    def __init__(self, answers: dict[str, Any], sslmode: str = "verify-full",
                 close_on_error: bool = False) -> None:
        self.answers = answers
        self.sslmode = sslmode
        self.close_on_error = close_on_error
        self.closed = 0
        self.executed: list[str] = []

    def cursor(self) -> FakeConn:
        return self

    def __enter__(self) -> FakeConn:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None

    def execute(self, query: str, params: Any = None) -> None:
        self.executed.append(query)
        for fragment, answer in self.answers.items():
            if fragment in query:
                if isinstance(answer, Exception):
                    self.closed = 2 if self.close_on_error else 0
                    raise answer
                self.rows = answer
                return
        raise AssertionError(f"unexpected statement: {query}")

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows

    def get_dsn_parameters(self) -> dict[str, str]:
        return {"sslmode": self.sslmode}


# ------------------------------------------------------------------------------- tls

@pytest.mark.parametrize(("row", "sslmode", "status", "fragment"), [
    ((True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256), "verify-full", "pass",
     "uses TLSv1.3 (TLS_AES_256_GCM_SHA384), sslmode=verify-full"),
    ((True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256), "require", "pass",
     "sslmode=require does not check the server's host name"),
    ((True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256), "verify-ca", "pass", "verify-ca"),
    ((True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256), "prefer", "fail",
     "sslmode=prefer would fall back"),
    ((True, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256), "allow", "fail", "sslmode=allow"),
    ((True, "TLSv1.3", "x", 256), None, "fail", "sslmode=prefer"),
    ((False, None, None, None), "disable", "fail",
     "not encrypted (pg_stat_ssl.ssl is false, sslmode=disable)"),
    ((False, None, None, None), "require", "fail", "not encrypted"),
    ((), "require", "fail", "not encrypted"),
    ((True, "TLSv1.1", "AES256-SHA", 256), "verify-full", "warn", "TLSv1.1, which is"),
])
def test_tls(row, sslmode, status, fragment):
    result = judge_tls(row, sslmode)
    assert (result.status, result.id) == (status, "tls")
    assert fragment in result.message
    if status == "fail":
        assert "sslmode=verify-full" in result.remediation
    else:
        assert result.data["ssl"] is True


# ----------------------------------------------------------------------- connections

def conn_row(in_use=10, in_db=4, in_role=3, max_conn=100, su=3, reserved=0, datlimit=-1,
             rollimit=-1):
    return (max_conn, su, reserved, in_use, in_db, in_role, datlimit, rollimit, "app", "app")


@pytest.mark.parametrize(("row", "settings", "status", "free", "fragment"), [
    (conn_row(), Settings(), "pass", 87, "up to 15 connections"),
    # (5 + 10) x 6 = 90 > 87 free
    (conn_row(), Settings(app_processes=6), "fail", 87,
     "needs up to 90 connections (DB_POOL_SIZE 5 + DB_MAX_OVERFLOW 10) x 6 processes but"
     " only 87 are free"),
    # 15 x 5 = 75 fits in 87, but (10 + 75) / 97 = 87.6% > 80%
    (conn_row(), Settings(app_processes=5), "warn", 87, "bring usage to 87.6% of 97"),
    (conn_row(), Settings(app_processes=5, connection_usage_warn_percent=90), "pass", 87,
     "87.6% projected"),
    (conn_row(in_use=0, reserved=5),
     Settings(pool_size=92, max_overflow=0, connection_usage_warn_percent=100), "pass", 92,
     "100% projected"),
    (conn_row(in_use=0, reserved=5), Settings(pool_size=93, max_overflow=0), "fail", 92,
     "only 92 are free"),
    (conn_row(datlimit=20, in_db=10), Settings(pool_size=7, max_overflow=0), "warn", 10,
     "usage to 85% of 20"),
    (conn_row(datlimit=20, in_db=10), Settings(pool_size=11, max_overflow=0), "fail", 10,
     "the connection limit of database app: 20"),
    (conn_row(rollimit=16, in_role=2), Settings(pool_size=14, max_overflow=1), "fail", 14,
     "the connection limit of role app: 16"),
    (conn_row(in_use=120), Settings(pool_size=1, max_overflow=0), "fail", 0, "only 0 are free"),
])
def test_connections(row, settings, status, free, fragment):
    result = judge_connections(row, settings)
    assert result.status == status, result.message
    assert result.data["free"] == free
    assert result.data["pool_demand"] == settings.pool_demand
    assert fragment in result.message
    assert bool(result.remediation) == (status != "pass")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"pool_size": 0}, "option pool_size must be at least 1"),
    ({"max_overflow": -1}, "option max_overflow must be at least 0"),
    ({"app_processes": 0}, "option app_processes must be at least 1"),
    ({"connection_usage_warn_percent": 0}, "connection_usage_warn_percent must be above 0"),
    ({"connection_usage_warn_percent": 101}, "at most 100"),
    ({"slow_statement_ms": -1}, "slow_statement_ms must be 0 or more"),
    ({"slow_statements_count": 0}, "slow_statements_count must be at least 1"),
])
def test_settings_refuse_bad_values(kwargs, message):
    with pytest.raises(CheckInputError, match=message):
        Settings(**kwargs)


# ------------------------------------------------------------------------ fk_indexes

def fk(table, name, columns, relkind="r", schema="public"):
    return (schema, table, relkind, name, columns, "public.users")


def ix(table, name, columns, valid=True, partial=False, schema="public"):
    return (schema, table, name, columns, valid, partial)


@pytest.mark.parametrize(("fks", "indexes", "missing"), [
    ([], [], []),
    ([fk("orders", "orders_user_fk", ["user_id"])], [], ["orders_user_fk"]),
    ([fk("orders", "orders_user_fk", ["user_id"])],
     [ix("orders", "ix_orders_user", ["user_id"])], []),
    # leading column of a wider index: covered
    ([fk("orders", "orders_user_fk", ["user_id"])],
     [ix("orders", "ix_orders_user_created", ["user_id", "created_at"])], []),
    # not leading: not covered
    ([fk("orders", "orders_user_fk", ["user_id"])],
     [ix("orders", "ix_orders_created_user", ["created_at", "user_id"])], ["orders_user_fk"]),
    # two-column FK, index columns in the other order: covered
    ([fk("lines", "lines_fk", ["order_id", "shop_id"])],
     [ix("lines", "ix", ["shop_id", "order_id", "sku"])], []),
    # only the first of two FK columns: not covered
    ([fk("lines", "lines_fk", ["order_id", "shop_id"])], [ix("lines", "ix", ["order_id"])],
     ["lines_fk"]),
    # invalid or partial indexes do not count
    ([fk("orders", "orders_user_fk", ["user_id"])],
     [ix("orders", "ix_bad", ["user_id"], valid=False)], ["orders_user_fk"]),
    ([fk("orders", "orders_user_fk", ["user_id"])],
     [ix("orders", "ix_part", ["user_id"], partial=True)], ["orders_user_fk"]),
    # expression index (column None) does not count; other table's index does not either
    ([fk("orders", "orders_user_fk", ["user_id"])],
     [ix("orders", "ix_expr", [None]), ix("other", "ix_o", ["user_id"]),
      ix("orders", "ix_s", ["user_id"], schema="archive")], ["orders_user_fk"]),
])
def test_fk_indexes(fks, indexes, missing):
    result = judge_fk_indexes(fks, indexes)
    assert [m["constraint"] for m in result.data["missing"]] == missing
    assert result.status == ("warn" if missing else "pass")
    assert result.data["foreign_keys"] == len(fks)


def test_fk_unusable_indexes_are_named():
    result = judge_fk_indexes([fk("orders", "orders_user_fk", ["user_id"])],
                              [ix("orders", "ix_bad", ["user_id"], valid=False)])
    assert result.data["missing"][0]["unusable_indexes"] == ["ix_bad"]
    assert "public.orders.orders_user_fk (user_id)" in result.message


@pytest.mark.parametrize(("schema", "table", "columns", "partitioned", "expected"), [
    ("public", "orders", ["user_id"], False,
     'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_orders_user_id" ON "public"."orders"'
     ' ("user_id");'),
    ("Sales", 'Order "Items"', ["Order Id", "shop"], False,
     'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_order_items_order_id_shop" ON'
     ' "Sales"."Order ""Items""" ("Order Id", "shop");'),
    ("public", "events", ["user_id"], True,
     'CREATE INDEX IF NOT EXISTS "ix_events_user_id" ON "public"."events" ("user_id");'),
])
def test_create_index_sql(schema, table, columns, partitioned, expected):
    assert create_index_sql(schema, table, columns, partitioned) == expected


def test_index_name_fits_in_63_bytes():
    statement = create_index_sql("public", "t" * 80, ["c" * 80])
    name = statement.split('"')[1]
    assert len(name.encode()) == 63


# ------------------------------------------------------------------- slow_statements

def stmt(query, mean, calls=3, peak=None):
    return (1, query, calls, mean, peak if peak is not None else mean, mean * calls, calls)


@pytest.mark.parametrize(("rows", "threshold", "status", "slow", "fragment"), [
    ([], 500, "pass", 0, "no statements in this database yet"),
    ([stmt("SELECT 1", 0.5)], 500, "pass", 0, "0.5 ms on average, within 500 ms"),
    ([stmt("SELECT pg_sleep($1)", 301.25, calls=3, peak=305.5), stmt("SELECT 1", 0.5)], 100,
     "warn", 1, "1 of the 2 slowest statements take more than 100 ms on average; the slowest:"
     " 301.25 ms mean, 305.5 ms max over 3 calls: SELECT pg_sleep($1)"),
    ([stmt("a", 200), stmt("b", 150)], 100, "warn", 2, "2 of the 2"),
    ([stmt("a", 100)], 100, "pass", 0, "within 100 ms"),
])
def test_slow_statements(rows, threshold, status, slow, fragment):
    result = judge_slow_statements("public", "1.10", "pg_stat_statements", rows,
                                   Settings(slow_statement_ms=threshold))
    assert result.status == status
    assert result.data["slow"] == slow
    assert len(result.data["statements"]) == len(rows)
    assert fragment in result.message


@pytest.mark.parametrize(("preload", "preloaded", "fragment"), [
    ("pg_stat_statements", True, "run CREATE EXTENSION pg_stat_statements"),
    ("auto_explain, pg_stat_statements", True, "run CREATE EXTENSION"),
    ("", False, "add pg_stat_statements to shared_preload_libraries and restart"),
    (None, None, "make sure shared_preload_libraries contains pg_stat_statements"),
])
def test_slow_statements_not_installed(preload, preloaded, fragment):
    result = judge_slow_statements(None, None, preload, [], Settings(), database="app")
    assert result.status == "skip"
    assert result.message == "pg_stat_statements is not installed in database app"
    assert fragment in result.remediation
    assert result.data == {"installed": False, "preloaded": preloaded}


@pytest.mark.parametrize(("version", "column"), [("1.10", "mean_exec_time"),
                                                 ("1.8", "mean_exec_time"),
                                                 ("1.7", "mean_time")])
def test_statements_query_columns(version, column):
    query = statements_query('my"schema', version, 5)
    assert f"ORDER BY {column} DESC LIMIT 5" in query
    assert 'FROM "my""schema".pg_stat_statements' in query


@pytest.mark.parametrize(("text", "expected"), [
    ("ALTER ROLE app PASSWORD 'hunter2'", "ALTER ROLE app PASSWORD '********'"),
    ("alter user x with encrypted password 'a''b'", "alter user x with encrypted password"
     " '********'"),
    ("CREATE ROLE x LOGIN PASSWORD $$s3cr$et$$", "CREATE ROLE x LOGIN PASSWORD '********'"),
    ("SELECT   *\n  FROM users\tWHERE id = $1", "SELECT * FROM users WHERE id = $1"),
    (f"SELECT '{CANARY}'", "SELECT '********'"),
    ("SELECT " + "x" * 300, "SELECT " + "x" * 190 + "..."),
])
def test_redact_query(text, expected):
    assert redact_query(text, 200, STRONG) == expected


# ------------------------------------------------------------------------- passwords

@pytest.mark.parametrize(("password", "user", "status", "fragment"), [
    (None, "app", "warn", "no password is configured, yet the server let this user in"),
    ("", "app", "fail", "the configured password is empty"),
    ("postgres", "app", "fail", "well-known default"),
    ("Password", "app", "fail", "well-known default"),
    ("changeme", "app", "fail", "well-known default"),
    ("ADMIN", "app", "fail", "well-known default"),
    ("secret", "app", "fail", "well-known default"),
    ("billing_app", "billing_app", "fail", "well-known default"),
    ("${DB_PASSWORD}", "app", "fail", "unfilled template placeholder"),
    ("P@ssw0rd", "app", "fail", "well-known default, example or placeholder"),
    ("xK9#mQ2v", "app", "warn", "is 8 characters long; at least 16 are required"),
    (CANARY, "app", "pass", "is 43 characters long and not a known default"),
])
def test_configured_password(password, user, status, fragment):
    found, message = configured_password_findings(password, user)
    assert (found, fragment in message) == (status, True), message
    if password:
        assert password not in message


def test_client_certificate_without_password_passes():
    assert configured_password_findings(None, "app", client_cert=True)[0] == "pass"


@pytest.mark.parametrize(("params", "roles", "status", "fragments"), [
    (STRONG, None, "pass", ["login roles not checked: pg_authid is readable by superusers"]),
    (STRONG, [("app", False, False), ("postgres", False, False)], "pass",
     ["all 2 login roles have SCRAM password hashes"]),
    (STRONG, [("app", False, False), ("legacy", False, True), ("nopass", True, False)],
     "warn", ["login roles without a password: nopass",
              "login roles with an MD5 password hash: legacy"]),
    (ConnParams(host="db", user="app", password="changeme", dbname="app"),
     [("legacy", False, True)], "fail", ["well-known default", "MD5 password hash: legacy"]),
])
def test_passwords(params, roles, status, fragments):
    result = judge_passwords(params, roles)
    assert result.status == status
    for fragment in fragments:
        assert fragment in result.message
    assert result.data["roles_checked"] is (roles is not None)
    assert bool(result.remediation) == (status != "pass")


# ------------------------------------------------------------------- the whole run

def answers(**override: Any) -> dict[str, Any]:
    base = {
        "pg_stat_ssl": [(True, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256)],
        "max_connections": [conn_row()],
        "c.contype = 'f'": [fk("orders", "orders_user_fk", ["user_id"])],
        "FROM pg_index": [],
        "FROM pg_extension": [("public", "1.10", "pg_stat_statements")],
        ".pg_stat_statements": [stmt("ALTER ROLE app PASSWORD 'x'", 900.0)],
        "has_table_privilege": [(False,)],
    }
    base.update(override)
    return base


def test_run_all_checks_in_order():
    conn = FakeConn(answers())
    db = Db(conn)
    results = run_checks(db, STRONG, Settings())
    assert [(r.id, r.status) for r in results] == [
        ("tls", "pass"), ("connections", "pass"), ("fk_indexes", "warn"),
        ("slow_statements", "warn"), ("passwords", "pass")]
    assert results[3].data["statements"][0]["query"] == "ALTER ROLE app PASSWORD '********'"
    assert len(db.queries) == len(conn.executed) == 7
    assert all("\n" not in q for q in db.queries)
    assert CANARY not in repr([r.as_dict() for r in results])


def test_run_a_subset_keeps_the_canonical_order():
    conn = FakeConn(answers())
    results = run_checks(Db(conn), STRONG, Settings(), ["passwords", "tls"])
    assert [r.id for r in results] == ["tls", "passwords"]
    assert len(conn.executed) == 2


def test_sslmode_comes_from_the_connection():
    conn = FakeConn(answers(), sslmode="prefer")
    [result] = run_checks(Db(conn), STRONG, Settings(), ["tls"])
    assert (result.status, result.data["sslmode"]) == ("fail", "prefer")


def test_extension_missing_skips():
    conn = FakeConn(answers(**{"FROM pg_extension": [],
                               "current_database()": [("pg_stat_statements", "app")]}))
    [result] = run_checks(Db(conn), STRONG, Settings(), ["slow_statements"])
    assert result.status == "skip"
    assert "CREATE EXTENSION pg_stat_statements" in result.remediation


def test_extension_not_loaded_skips_with_the_error():
    error = psycopg2.errors.ObjectNotInPrerequisiteState(
        "pg_stat_statements must be loaded via shared_preload_libraries")
    conn = FakeConn(answers(**{".pg_stat_statements": error,
                               "FROM pg_extension": [("public", "1.10", "")]}))
    [result] = run_checks(Db(conn), STRONG, Settings(), ["slow_statements"])
    assert result.status == "skip"
    assert "must be loaded via shared_preload_libraries" in result.message
    assert "add pg_stat_statements to shared_preload_libraries" in result.remediation


def test_superuser_roles_are_checked():
    conn = FakeConn(answers(**{"has_table_privilege": [(True,)],
                               "FROM pg_catalog.pg_authid": [("app", False, False),
                                                             ("old", False, True)]}))
    [result] = run_checks(Db(conn), STRONG, Settings(), ["passwords"])
    assert result.status == "warn"
    assert result.data["roles_with_md5"] == ["old"]
    # the hash itself is never selected
    assert "rolpassword IS NULL" in conn.executed[-1]
    assert "SELECT rolname, rolpassword," not in conn.executed[-1]


def test_a_failing_statement_fails_its_check_only():
    error = psycopg2.errors.InsufficientPrivilege(f"permission denied for {CANARY}")
    conn = FakeConn(answers(**{"c.contype = 'f'": error}))
    results = run_checks(Db(conn), STRONG, Settings())
    by_id = {r.id: r for r in results}
    assert by_id["fk_indexes"].status == "fail"
    assert by_id["fk_indexes"].message \
        == "the check could not run: permission denied for ********"
    assert by_id["passwords"].status == "pass"


def test_a_lost_connection_is_a_typed_error():
    conn = FakeConn(answers(**{"pg_stat_ssl": psycopg2.OperationalError(
        "server closed the connection unexpectedly")}), close_on_error=True)
    with pytest.raises(PgUnreachableError, match="server closed the connection"):
        run_checks(Db(conn), STRONG, Settings())


def test_unknown_check():
    with pytest.raises(CheckInputError, match="unknown checks nope"):
        run_checks(Db(FakeConn({})), STRONG, Settings(), ["nope"])


def result(check_id: str, status: str) -> CheckResult:
    return CheckResult(check_id, status, "m")


@pytest.mark.parametrize(("statuses", "fail_on", "fails"), [
    (["pass", "pass"], "fail", False),
    (["pass", "warn", "skip"], "fail", False),
    (["pass", "warn", "skip"], "warn", True),
    (["fail", "pass"], "fail", True),
    (["fail", "warn"], "never", False),
    (["skip"], "warn", False),
])
def test_summarize(statuses, fail_on, fails):
    results = [result(f"c{i}", s) for i, s in enumerate(statuses)]
    verdict = summarize(results, fail_on)
    assert verdict["fails"] is fails
    assert verdict["summary"] == {s: statuses.count(s) for s in checks.STATUSES}
    assert verdict["failed"] == [f"c{i}" for i, s in enumerate(statuses) if s == "fail"]
    assert verdict["warned"] == [f"c{i}" for i, s in enumerate(statuses) if s == "warn"]


class _Exit(Exception):
    pass


class _Module:
    """Records what finish() tells the module; fail_json/exit_json end the call as Ansible's
    do."""

    def __init__(self) -> None:
        self.warnings: list[str] = []
        self.outcome: tuple[str, dict] | None = None

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def fail_json(self, **kwargs: Any) -> None:
        self.outcome = ("fail", kwargs)
        raise _Exit

    def exit_json(self, **kwargs: Any) -> None:
        self.outcome = ("exit", kwargs)
        raise _Exit


@pytest.mark.parametrize(("fails", "fail_on", "outcome", "named"), [
    (True, "fail", "fail", "Checks failed: a (A broke)"),
    (True, "warn", "fail", "Checks failed: a (A broke); b (B is odd)"),
    (False, "never", "exit", None),
])
def test_finish_warns_then_fails_naming_the_checks(fails: bool, fail_on: str, outcome: str,
                                                   named: str | None) -> None:
    result = {"checks": [{"id": "a", "message": "A broke"}, {"id": "b", "message": "B is odd"}],
              "failed_checks": ["a"], "warned_checks": ["b"]}
    module = _Module()
    with pytest.raises(_Exit):
        checks.finish(module, result, fails, fail_on, "x_check", "Checks failed")
    assert module.warnings == ["x_check b: B is odd"]
    assert module.outcome[0] == outcome
    assert module.outcome[1].get("msg") == named
    assert module.outcome[1]["checks"] == result["checks"]
