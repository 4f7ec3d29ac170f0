# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg_check module through Ansible against the lab's PostgreSQL: each check passes on a
healthy scratch database and fails (or warns) for a real reason made there - a plain-text
connection, a foreign key without an index, a pool larger than the server allows, slow
statements, weak passwords and roles without SCRAM hashes."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from ansible_run import run_module
from pgutil import connect, db_url, fingerprint, schema_dump, scratch_db
from psycopg2 import sql

CANARY = "canary-Pc-5b7e2d9f41a3c8e6"


@pytest.fixture
def scratch(lab_env: dict[str, str]) -> Iterator[str]:
    with scratch_db(lab_env, "ck") as name:
        yield name


def check(lab_env: dict[str, str], args: dict[str, Any], *flags: str,
          ) -> tuple[int, dict[str, Any], Any]:
    return run_module(lab_env, "pg_check", args, *flags)


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result["checks"]}


@contextlib.contextmanager
def login_role(lab_env: dict[str, str], password: str | None, name: str | None = None,
               encryption: str = "scram-sha-256") -> Iterator[str]:
    """A LOGIN role (``ck_`` prefix) with ``password`` hashed with ``encryption``."""
    name = name or f"ck_role_{uuid.uuid4().hex[:8]}"
    admin = connect(lab_env["LAB_PG_ADMIN_URL"])
    try:
        with admin.cursor() as cur:
            cur.execute("SET password_encryption = %s", (encryption,))
            if password is None:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(name)))
            else:
                cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(name), sql.Literal(password)))
        yield name
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
        admin.close()


def state(lab_env: dict[str, str], name: str) -> tuple[Any, Any]:
    conn = connect(db_url(lab_env, name, admin=True))
    try:
        return fingerprint(conn), schema_dump(conn)
    finally:
        conn.close()


# ---------------------------------------------------------------- the app database


def test_app_database_current_state(lab_env):
    rc, result, _proc = check(lab_env, {"url": lab_env["DATABASE_URL"]})
    checks = by_id(result)
    assert list(checks) == ["tls", "connections", "fk_indexes", "slow_statements",
                            "passwords"]
    assert rc == 0, result["msg"]
    assert result["changed"] is False
    assert result["failed_checks"] == []
    assert result["server"]["database"] == "app"
    assert result["server"]["superuser"] is False
    tls = checks["tls"]
    assert tls["status"] == "pass"
    assert tls["data"]["ssl"] is True
    assert tls["data"]["sslmode"] == "verify-full"
    assert tls["data"]["version"].startswith("TLSv1.")
    connections = checks["connections"]
    assert connections["status"] == "pass"
    assert connections["data"]["pool_demand"] == 15
    assert connections["data"]["available"] == (
        connections["data"]["max_connections"]
        - connections["data"]["superuser_reserved_connections"]
        - connections["data"]["reserved_connections"])
    # The refapp's schema has no foreign keys (audit_log deliberately has none).
    assert checks["fk_indexes"]["status"] == "pass"
    assert checks["fk_indexes"]["data"]["foreign_keys"] == 0
    # The lab installs pg_stat_statements in the app database.
    slow = checks["slow_statements"]
    assert slow["status"] in ("pass", "warn")
    assert slow["data"]["installed"] is True
    assert 1 <= len(slow["data"]["statements"]) <= 10
    passwords = checks["passwords"]
    assert passwords["status"] == "pass"
    assert passwords["data"] == {"configured_password": "pass", "roles_checked": False}
    assert "pg_authid is readable by superusers only" in passwords["message"]
    assert result["summary"]["fail"] == 0
    assert result["summary"]["pass"] + result["summary"]["warn"] == 5


def test_app_database_as_superuser_checks_the_login_roles(lab_env):
    rc, result, _proc = check(lab_env, {"url": lab_env["LAB_PG_ADMIN_URL"], "database": "app",
                                        "checks": ["passwords", "slow_statements"]})
    checks = by_id(result)
    assert list(checks) == ["slow_statements", "passwords"]
    assert checks["passwords"]["data"]["roles_checked"] is True
    assert checks["passwords"]["data"]["login_roles"] >= 2
    # The superuser may read shared_preload_libraries; the lab preloads the library.
    assert checks["slow_statements"]["data"]["installed"] is True
    assert rc == 0


# ---------------------------------------------------------------------------- tls


def test_tls_fails_on_a_plain_connection_and_passes_on_verify_full(lab_env, scratch):
    url = db_url(lab_env, scratch)
    # The lab's pg_hba.conf also has a plain `host` line for 127.0.0.1: a real finding.
    rc, result, _proc = check(lab_env, {"url": url, "ssl_mode": "disable"})
    tls = by_id(result)["tls"]
    assert rc != 0
    assert result["failed_checks"] == ["tls"]
    assert tls["status"] == "fail"
    assert tls["data"] == {"ssl": False, "version": None, "cipher": None, "bits": None,
                           "sslmode": "disable"}
    assert "sslmode=verify-full" in tls["remediation"]
    assert result["msg"].startswith(
        f"Database checks of app@127.0.0.1:{lab_env['LAB_PG_PORT']}/{scratch} failed: tls"
        " (the connection is not encrypted (pg_stat_ssl.ssl is false, sslmode=disable))")
    # The other checks still ran and are returned.
    assert [c["id"] for c in result["checks"]] == ["tls", "connections", "fk_indexes",
                                                   "slow_statements", "passwords"]

    rc, result, _proc = check(lab_env, {"url": url, "ssl_mode": "disable", "fail_on": "never"})
    assert rc == 0
    assert result["failed_checks"] == ["tls"]

    rc, result, _proc = check(lab_env, {"url": url, "ssl_mode": "prefer", "checks": ["tls"]})
    tls = by_id(result)["tls"]
    assert rc != 0
    assert (tls["status"], tls["data"]["ssl"]) == ("fail", True)
    assert "sslmode=prefer would fall back" in tls["message"]

    rc, result, _proc = check(lab_env, {"url": url, "ssl_mode": "require", "checks": ["tls"]})
    assert rc == 0
    assert by_id(result)["tls"]["status"] == "pass"
    assert "does not check the server's host name" in by_id(result)["tls"]["message"]

    rc, result, _proc = check(lab_env, {"url": url, "checks": ["tls"]})
    assert rc == 0
    assert by_id(result)["tls"]["message"].endswith("sslmode=verify-full")


# -------------------------------------------------------------------- connections


def test_pool_that_does_not_fit_fails(lab_env, scratch):
    url = db_url(lab_env, scratch)
    rc, result, _proc = check(lab_env, {"url": url, "checks": ["connections"]})
    assert rc == 0
    data = by_id(result)["connections"]["data"]
    assert by_id(result)["connections"]["status"] == "pass"

    # (5 + 10) x 20 = 300 connections against max_connections 100.
    rc, result, _proc = check(lab_env, {"url": url, "checks": ["connections"],
                                        "app_processes": 20})
    connections = by_id(result)["connections"]
    assert rc != 0
    assert connections["status"] == "fail"
    assert connections["data"]["pool_demand"] == 300
    assert ("needs up to 300 connections (DB_POOL_SIZE 5 + DB_MAX_OVERFLOW 10) x 20"
            " processes but only") in connections["message"]
    assert "PgBouncer" in connections["remediation"]

    # Fits, but above the threshold.
    rc, result, _proc = check(lab_env, {"url": url, "checks": ["connections"], "pool_size": 2,
                                        "max_overflow": 1, "connection_usage_warn_percent": 1})
    connections = by_id(result)["connections"]
    assert rc == 0
    assert connections["status"] == "warn"
    assert result["warned_checks"] == ["connections"]
    assert "above the 1% threshold" in connections["message"]
    rc, result, _proc = check(lab_env, {"url": url, "checks": ["connections"], "pool_size": 2,
                                        "max_overflow": 1, "connection_usage_warn_percent": 1,
                                        "fail_on": "warn"})
    assert rc != 0
    assert result["msg"].startswith(f"Database checks of app@127.0.0.1:"
                                    f"{lab_env['LAB_PG_PORT']}/{scratch} failed: connections")
    assert data["max_connections"] == connections["data"]["max_connections"]


def test_database_connection_limit_is_the_binding_limit(lab_env, scratch):
    admin = connect(lab_env["LAB_PG_ADMIN_URL"])
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("ALTER DATABASE {} CONNECTION LIMIT 10").format(
                sql.Identifier(scratch)))
    finally:
        admin.close()
    rc, result, _proc = check(lab_env, {"url": db_url(lab_env, scratch),
                                        "checks": ["connections"]})
    connections = by_id(result)["connections"]
    assert rc != 0
    assert connections["data"]["datconnlimit"] == 10
    assert connections["data"]["free"] == 10
    assert f"the connection limit of database {scratch}: 10" in connections["message"]


# --------------------------------------------------------------------- fk_indexes


def test_foreign_key_without_index_warns_and_the_suggestion_fixes_it(lab_env, scratch):
    url = db_url(lab_env, scratch)
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute('CREATE TABLE "Customers" (id bigint PRIMARY KEY)')
            cur.execute('CREATE TABLE "Order Items" (id bigint PRIMARY KEY,'
                        ' "Customer Id" bigint REFERENCES "Customers" (id),'
                        ' note text)')
            cur.execute('INSERT INTO "Customers" VALUES (1), (2)')
            cur.execute('INSERT INTO "Order Items" VALUES (1, 1, \'a\'), (2, 2, \'b\')')
            # An index where the FK column is not the leading one does not count.
            cur.execute('CREATE INDEX ix_note_customer ON "Order Items" (note, "Customer Id")')
    finally:
        conn.close()
    before = state(lab_env, scratch)

    rc, result, _proc = check(lab_env, {"url": url, "checks": ["fk_indexes"]}, "--check")
    fk = by_id(result)["fk_indexes"]
    assert rc == 0
    assert result["changed"] is False
    assert fk["status"] == "warn"
    assert result["warned_checks"] == ["fk_indexes"]
    [missing] = fk["data"]["missing"]
    assert missing["table"] == "Order Items"
    assert missing["columns"] == ["Customer Id"]
    assert missing["references"] == '"Customers"'
    assert missing["suggestion"] == (
        'CREATE INDEX CONCURRENTLY IF NOT EXISTS "ix_order_items_customer_id" ON'
        ' "public"."Order Items" ("Customer Id");')
    assert 'public.Order Items.Order Items_Customer Id_fkey (Customer Id)' in fk["message"]
    assert state(lab_env, scratch) == before

    rc, result, _proc = check(lab_env, {"url": url, "checks": ["fk_indexes"], "fail_on": "warn"})
    assert rc != 0
    assert "fk_indexes (1 of 1 foreign keys have no index" in result["msg"]

    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(missing["suggestion"])
    finally:
        conn.close()
    rc, result, _proc = check(lab_env, {"url": url, "checks": ["fk_indexes"], "fail_on": "warn"})
    fk = by_id(result)["fk_indexes"]
    assert rc == 0
    assert fk["status"] == "pass"
    assert fk["data"] == {"foreign_keys": 1, "missing": []}


# ---------------------------------------------------------------- slow_statements


def test_slow_statements_skip_warn_and_pass(lab_env, scratch):
    url = db_url(lab_env, scratch)
    rc, result, _proc = check(lab_env, {"url": url, "checks": ["slow_statements"]})
    slow = by_id(result)["slow_statements"]
    assert rc == 0
    assert slow["status"] == "skip"
    assert slow["message"] == f"pg_stat_statements is not installed in database {scratch}"
    assert "CREATE EXTENSION pg_stat_statements" in slow["remediation"]
    # The app role may not read shared_preload_libraries: it says so.
    assert slow["data"] == {"installed": False, "preloaded": None}
    rc, result, _proc = check(lab_env, {"url": db_url(lab_env, scratch, admin=True),
                                        "checks": ["slow_statements"]})
    assert by_id(result)["slow_statements"]["data"] == {"installed": False, "preloaded": True}

    # Only in this scratch database; the app database's extension is not touched.
    admin = connect(db_url(lab_env, scratch, admin=True))
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE EXTENSION pg_stat_statements")
    finally:
        admin.close()
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            for _round in range(3):
                cur.execute("SELECT pg_sleep(0.2)")
            cur.execute("SELECT 1")
    finally:
        conn.close()

    rc, result, _proc = check(lab_env, {"url": url, "checks": ["slow_statements"],
                                        "slow_statement_ms": 150, "slow_statements_count": 3})
    slow = by_id(result)["slow_statements"]
    assert rc == 0
    assert slow["status"] == "warn"
    assert len(slow["data"]["statements"]) <= 3
    top = slow["data"]["statements"][0]
    assert top["query"] == "SELECT pg_sleep($1)"
    assert top["calls"] == 3
    assert 200 <= top["mean_ms"] < 1000
    assert top["max_ms"] >= top["mean_ms"]
    assert slow["message"].startswith("1 of the 3 slowest statements take more than 150 ms")

    rc, result, _proc = check(lab_env, {"url": url, "checks": ["slow_statements"],
                                        "slow_statement_ms": 5000})
    slow = by_id(result)["slow_statements"]
    assert rc == 0
    assert slow["status"] == "pass"
    assert slow["data"]["statements"][0]["query"] == "SELECT pg_sleep($1)"


# ---------------------------------------------------------------------- passwords


@pytest.mark.parametrize("weak", ["changeme", "same-as-user"])
def test_weak_configured_password_fails(lab_env, scratch, weak):
    name = f"ck_weak_{uuid.uuid4().hex[:8]}"
    password = name if weak == "same-as-user" else weak
    with login_role(lab_env, password, name):
        rc, result, proc = check(lab_env, {"url": db_url(lab_env, scratch),
                                           "login_user": name, "login_password": password,
                                           "checks": ["passwords", "tls"]})
    passwords = by_id(result)["passwords"]
    assert rc != 0
    assert result["failed_checks"] == ["passwords"]
    assert passwords["status"] == "fail"
    assert passwords["message"].startswith(
        "the configured password is a well-known default or the user name")
    assert "openssl rand" in passwords["remediation"]
    if weak == "changeme":
        assert weak not in proc.stdout + proc.stderr


def test_roles_without_password_or_with_md5_hashes_warn(lab_env, scratch):
    md5_password = f"Md5-{uuid.uuid4().hex}"
    with login_role(lab_env, md5_password, encryption="md5") as md5_role, \
            login_role(lab_env, None) as no_password_role:
        rc, result, proc = check(lab_env, {"url": db_url(lab_env, scratch, admin=True),
                                           "checks": ["passwords"]}, "-vvvv")
    passwords = by_id(result)["passwords"]
    assert rc == 0
    assert passwords["status"] == "warn"
    assert md5_role in passwords["data"]["roles_with_md5"]
    assert no_password_role in passwords["data"]["roles_without_password"]
    assert "login roles with an MD5 password hash: " in passwords["message"]
    assert md5_role in passwords["message"]
    assert no_password_role in passwords["message"]
    assert "app" not in passwords["data"]["roles_with_md5"]
    md5_hash = "md5" + hashlib.md5((md5_password + md5_role).encode()).hexdigest()
    output = proc.stdout + proc.stderr
    assert md5_password not in output
    assert md5_hash not in output
    assert "SCRAM-SHA-256$" not in output


# ------------------------------------------------- check mode, read-only, errors, canary


def test_check_mode_gives_the_same_result_and_nothing_changes(lab_env, scratch):
    url = db_url(lab_env, scratch)
    conn = connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE parent (id int PRIMARY KEY)")
            cur.execute("CREATE TABLE child (id int PRIMARY KEY, p int REFERENCES parent)")
    finally:
        conn.close()
    before = state(lab_env, scratch)
    rc_check, checked, _proc = check(lab_env, {"url": url}, "--check", "--diff")
    rc_run, ran, _proc = check(lab_env, {"url": url})
    assert rc_check == rc_run == 0
    assert checked["changed"] is ran["changed"] is False
    assert [(c["id"], c["status"]) for c in checked["checks"]] == \
        [(c["id"], c["status"]) for c in ran["checks"]] == [
            ("tls", "pass"), ("connections", "pass"), ("fk_indexes", "warn"),
            ("slow_statements", "skip"), ("passwords", "pass")]
    assert checked["queries"] == ran["queries"]
    assert ran["queries"][0] == "SET default_transaction_read_only = on"
    assert state(lab_env, scratch) == before


@pytest.mark.parametrize(("args", "fragment"), [
    ({"login_password": CANARY},
     "password authentication failed for user \"app\"; check the password"),
    ({"login_port": 1}, "check host and port"),
    ({"database": "ck_missing_db"},
     'database "ck_missing_db" does not exist; check the database name'),
    ({"login_user": "ck_no_such_role", "login_password": CANARY},
     "password authentication failed for user \"ck_no_such_role\""),
])
def test_connection_errors_are_clear_and_never_show_the_password(lab_env, args, fragment):
    rc, result, proc = check(lab_env, {"url": lab_env["DATABASE_URL"], **args}, "-vvvv")
    assert rc != 0
    assert result["msg"].startswith("Cannot check ")
    assert "cannot connect to PostgreSQL at" in result["msg"]
    assert fragment in result["msg"]
    assert "checks" not in result
    assert CANARY not in proc.stdout + proc.stderr
    assert lab_env["LAB_PG_APP_PASSWORD"] not in proc.stdout + proc.stderr


def test_canary_password_of_a_working_role_never_shows(lab_env, scratch):
    with login_role(lab_env, CANARY) as role:
        rc, result, proc = check(lab_env, {"url": db_url(lab_env, scratch),
                                           "login_user": role, "login_password": CANARY},
                                 "-vvvv")
    assert rc == 0, result.get("msg")
    assert result["server"]["user"] == role
    assert by_id(result)["passwords"]["status"] == "pass"
    assert CANARY not in proc.stdout + proc.stderr


def test_bad_options_fail_before_connecting(lab_env):
    rc, result, _proc = check(lab_env, {"url": lab_env["DATABASE_URL"], "pool_size": 0})
    assert rc != 0
    assert result["msg"].endswith("option pool_size must be at least 1, got 0")
    assert result["queries"] == []
