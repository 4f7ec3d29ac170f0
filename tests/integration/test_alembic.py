# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The alembic module against the lab's PostgreSQL, with copies of the reference app's
migrations (plus revisions written by the tests)."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from ansible_run import ANSIBLE, ansible_env, run_module
from pgutil import connect, copy_refapp_migrations, db_url, schema_dump, scratch_db

HEAD = "0003_backfill_email_domain"
CHAIN = ["0001_initial", "0002_users_email_idx", HEAD]
CANARY = "canary-Pw-7f3e91c2d4"


@pytest.fixture
def db(lab_env: dict[str, str]):
    with scratch_db(lab_env, "mg2") as name:
        yield name


@pytest.fixture
def app(tmp_path: Path) -> Path:
    """A copy of the reference app's alembic.ini and migrations the test may add to."""
    return copy_refapp_migrations(tmp_path / "app")


def add_revision(app: Path, rev: str, down: str | tuple[str, ...], upgrade: str,
                 downgrade: str | None = "op.execute('SELECT 1')") -> Path:
    """Write migrations/versions/<rev>.py; ``downgrade=None`` leaves the function out; a
    tuple ``down`` makes a merge revision."""
    body = "\n".join([
        f'"""Test revision {rev}."""', "import os", "import sys", "import sqlalchemy as sa",
        "from alembic import op", "",
        f"revision = {rev!r}", f"down_revision = {down!r}", "branch_labels = None",
        "depends_on = None", "", "", "def upgrade():",
        textwrap.indent(textwrap.dedent(upgrade).strip(), "    "), ""])
    if downgrade is not None:
        body += "\n\ndef downgrade():\n" + textwrap.indent(
            textwrap.dedent(downgrade).strip(), "    ") + "\n"
    path = app / "migrations" / "versions" / f"{rev}.py"
    path.write_text(body)
    return path


def alembic(lab_env: dict[str, str], app: Path, db: str | None, *flags: str, **args: Any
            ) -> tuple[int, dict[str, Any], Any]:
    module_args = {"config": str(app / "alembic.ini"), **args}
    if db is not None:
        module_args.setdefault("url", db_url(lab_env, db))
    if "-vvvv" not in flags:
        return run_module(lab_env, "alembic", module_args, *flags)
    # run_module() reads stdout as JSON; at -vvvv ansible prints its banner first.
    proc = subprocess.run([str(ANSIBLE), "localhost", "-m", "prodready.deploy.alembic",
                           "-a", json.dumps(module_args), *flags], capture_output=True,
                          text=True, env=ansible_env(lab_env), timeout=900, check=False)
    start = proc.stdout.index("\n{\n") + 1
    result = json.loads(proc.stdout[start:])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode, result, proc


def version(lab_env: dict[str, str], db: str, admin: bool = False) -> list[str] | None:
    """alembic_version read independently; None when the table does not exist."""
    conn = connect(db_url(lab_env, db, admin=admin))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT version_num FROM alembic_version ORDER BY 1")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def schema(lab_env: dict[str, str], db: str) -> list[tuple[Any, ...]]:
    conn = connect(db_url(lab_env, db))
    try:
        return schema_dump(conn)
    finally:
        conn.close()


def upgrade_to(lab_env: dict[str, str], app: Path, db: str, target: str = "head") -> None:
    rc, result, proc = alembic(lab_env, app, db, target=target)
    assert rc == 0, proc.stdout + proc.stderr
    assert result["changed"] is True


def test_upgrade_check_apply_again(lab_env, app, db):
    empty = schema(lab_env, db)
    rc, check, proc = alembic(lab_env, app, db, "--check", "--diff")
    assert rc == 0, proc.stdout + proc.stderr
    assert check["changed"] is True
    assert check["pending"] == CHAIN
    assert [item["revision"] for item in check["sql"]] == CHAIN
    assert "CREATE TABLE users" in check["sql"][0]["sql"]
    assert "CREATE UNIQUE INDEX CONCURRENTLY users_email_idx" in check["sql"][1]["sql"]
    assert "ADD COLUMN email_domain" in check["sql"][2]["sql"]
    assert check["lint"] == []
    assert check["from_revision"] is None and check["to_revision"] == HEAD
    assert check["script_heads"] == [HEAD]
    assert check["diff"] == {"before": "revision: base\n", "after": f"revision: {HEAD}\n"}
    assert version(lab_env, db) is None, "check mode must not touch the database"
    assert schema(lab_env, db) == empty

    rc, first, proc = alembic(lab_env, app, db)
    assert rc == 0, proc.stdout + proc.stderr
    assert first["changed"] is True
    assert first["revisions"] == CHAIN and first["pending"] == CHAIN
    assert (first["from_revision"], first["to_revision"], first["current"]) == (None, HEAD, HEAD)
    assert first["compensated"] is False
    assert first["script_heads"] == [HEAD]
    assert any(cmd.endswith(f"upgrade {HEAD}") for cmd in first["commands"])
    assert any(f"Running upgrade 0002_users_email_idx -> {HEAD}" in line
               for line in first["log"]), first["log"]

    rc, again, proc = alembic(lab_env, app, db)
    assert rc == 0, proc.stdout + proc.stderr
    assert again["changed"] is False
    assert again["pending"] == [] and again["revisions"] == []
    assert again["from_revision"] == again["to_revision"] == HEAD
    assert not any(" upgrade " in cmd for cmd in again["commands"])

    assert version(lab_env, db) == [HEAD]
    columns = {(row[2], row[3]) for row in schema(lab_env, db) if row[0] == "column"}
    assert ("users", "email_domain") in columns


def test_upgrade_to_a_target_then_current(lab_env, app, db):
    upgrade_to(lab_env, app, db, "0001_initial")
    assert version(lab_env, db) == ["0001_initial"]
    rc, current, proc = alembic(lab_env, app, db, action="current")
    assert rc == 0, proc.stdout + proc.stderr
    assert current["changed"] is False
    assert current["current"] == "0001_initial"
    assert current["pending"] == CHAIN[1:]
    assert current["heads"] == current["script_heads"] == [HEAD]


def test_downgrade_check_apply_again(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    rc, check, proc = alembic(lab_env, app, db, "--check", action="downgrade",
                              target="0001_initial")
    assert rc == 0, proc.stdout + proc.stderr
    assert check["changed"] is True
    assert check["pending"] == [HEAD, "0002_users_email_idx"]
    assert "DROP COLUMN email_domain" in check["sql"][0]["sql"]
    assert "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx" in check["sql"][1]["sql"]
    assert version(lab_env, db) == [HEAD]

    rc, first, proc = alembic(lab_env, app, db, action="downgrade", target="0001_initial")
    assert rc == 0, proc.stdout + proc.stderr
    assert first["changed"] is True
    assert (first["from_revision"], first["to_revision"]) == (HEAD, "0001_initial")
    assert first["revisions"] == [HEAD, "0002_users_email_idx"]

    rc, again, proc = alembic(lab_env, app, db, action="downgrade", target="0001_initial")
    assert rc == 0, proc.stdout + proc.stderr
    assert again["changed"] is False
    assert version(lab_env, db) == ["0001_initial"]
    indexes = {row[3] for row in schema(lab_env, db) if row[0] == "index"}
    assert "users_email_idx" not in indexes


def test_downgrade_to_base(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    rc, result, proc = alembic(lab_env, app, db, action="downgrade", target="base")
    assert rc == 0, proc.stdout + proc.stderr
    assert result["to_revision"] is None and result["current"] is None
    assert version(lab_env, db) == []
    assert {row[2] for row in schema(lab_env, db) if row[0] != "constraint"} == {
        "alembic_version"}


@pytest.mark.parametrize("downgrade", [
    None, "pass", '"""Irreversible."""', "...",
    "raise NotImplementedError('data is gone')",
])
def test_downgrade_through_a_revision_without_one_is_refused(lab_env, app, db, downgrade):
    path = add_revision(app, "0004_irreversible", HEAD,
                        "op.add_column('users', sa.Column('flag', sa.Boolean()))", downgrade)
    upgrade_to(lab_env, app, db)
    before = schema(lab_env, db)
    for flags in (("--check",), ()):
        rc, result, proc = alembic(lab_env, app, db, *flags, action="downgrade",
                                   target="0002_users_email_idx")
        assert rc != 0, proc.stdout
        assert "revision 0004_irreversible" in result["msg"]
        assert str(path) in result["msg"]
        assert "has no downgrade step" in result["msg"]
        assert not any(" downgrade " in cmd and "--sql" not in cmd
                       for cmd in result["commands"])
    assert version(lab_env, db) == ["0004_irreversible"]
    assert schema(lab_env, db) == before


def test_guarded_downgrade_runs_or_hands_over_to_the_backup(lab_env, app, db):
    """The rollback's one call: the guard plans in the same read the downgrade uses."""
    upgrade_to(lab_env, app, db)
    backup = {"backup_id": "pre-0002", "alembic_revision": "0002_users_email_idx",
              "sha256": "0" * 64, "path": "/backups/pre-0002.json"}
    rc, result, proc = alembic(lab_env, app, db, action="downgrade",
                               target="0002_users_email_idx",
                               guard={"backup": backup, "prefer": "restore"})
    assert rc == 0, proc.stdout + proc.stderr
    assert result["plan"]["action"] == "restore" and result["plan"]["backup_id"] == "pre-0002"
    assert result["changed"] is False and version(lab_env, db) == [HEAD]
    assert not any(" downgrade " in cmd for cmd in result["commands"])

    rc, result, proc = alembic(lab_env, app, db, action="downgrade",
                               target="0002_users_email_idx", guard={"backup": backup})
    assert rc == 0, proc.stdout + proc.stderr
    assert result["plan"]["action"] == "downgrade" and result["plan"]["steps"] == [HEAD]
    assert (result["changed"], result["from_revision"], result["to_revision"]) == (
        True, HEAD, "0002_users_email_idx")
    assert version(lab_env, db) == ["0002_users_email_idx"]

    rc, again, proc = alembic(lab_env, app, db, action="downgrade",
                              target="0002_users_email_idx", guard={})
    assert rc == 0, proc.stdout + proc.stderr
    assert again["plan"]["action"] == "none" and again["changed"] is False


def test_guarded_downgrade_without_a_way_back_is_blocked(lab_env, app, db):
    add_revision(app, "0004_irreversible", HEAD,
                 "op.add_column('users', sa.Column('flag', sa.Boolean()))", None)
    upgrade_to(lab_env, app, db)
    before = schema(lab_env, db)
    rc, result, proc = alembic(lab_env, app, db, action="downgrade", target=HEAD, guard={})
    assert rc != 0, proc.stdout
    assert result["plan"]["action"] == "blocked"
    assert ("the schema rollback to 0003_backfill_email_domain is blocked: live revision"
            " 0004_irreversible is unknown to the target release") in result["msg"]
    assert "no backup was given" in result["msg"]
    assert version(lab_env, db) == ["0004_irreversible"] and schema(lab_env, db) == before


def test_guard_refuses_a_database_never_migrated(lab_env, app, db):
    """An empty version table and none at all read the same through Alembic; the helper
    tells them apart, so a wrong database is not taken for a schema at base."""
    rc, result, proc = alembic(lab_env, app, db, action="downgrade",
                               target="0002_users_email_idx", guard={})
    assert rc != 0, proc.stdout
    assert ("the version table alembic_version does not exist in the search path: the"
            " database was never migrated with Alembic, or this is the wrong database"
            ) in result["msg"]
    assert version(lab_env, db) is None


def test_guard_is_for_downgrades_only(lab_env, app, db):
    rc, result, _proc = alembic(lab_env, app, db, action="upgrade", guard={})
    assert rc != 0
    assert result["msg"] == ("guard applies to action=downgrade only, not upgrade: remove"
                             " guard, or use action=downgrade")


def failing_chain(app: Path, position: str) -> None:
    """0004 ok (a table), 0005 adds a column then fails, 0006 ok - or the failure first."""
    fail = """
        op.add_column('users', sa.Column('nickname', sa.String(50)))
        op.execute('SELECT 1 / 0')
    """
    if position == "first":
        add_revision(app, "0004_fails", HEAD, fail)
        add_revision(app, "0005_ok", "0004_fails",
                     "op.create_table('t5', sa.Column('id', sa.Integer, primary_key=True))",
                     "op.drop_table('t5')")
        return
    add_revision(app, "0004_ok", HEAD,
                 "op.create_table('t4', sa.Column('id', sa.Integer, primary_key=True))",
                 "op.drop_table('t4')")
    add_revision(app, "0005_fails", "0004_ok", fail, "op.drop_column('users', 'nickname')")
    add_revision(app, "0006_ok", "0005_fails",
                 "op.create_table('t6', sa.Column('id', sa.Integer, primary_key=True))",
                 "op.drop_table('t6')")


@pytest.mark.parametrize("position", ["middle", "first"])
def test_failure_in_revision_n_leaves_the_database_as_before(lab_env, app, db, position):
    upgrade_to(lab_env, app, db)
    failing_chain(app, position)
    before = schema(lab_env, db)
    rc, result, proc = alembic(lab_env, app, db)
    assert rc != 0, proc.stdout
    failed = "0005_fails" if position == "middle" else "0004_fails"
    assert result["failed_revision"] == failed
    assert "division by zero" in result["msg"]
    assert f"in revision {failed}" in result["msg"]
    assert result["from_revision"] == HEAD
    assert result["current"] == HEAD
    assert result["revisions"] == []
    if position == "middle":
        assert result["compensated"] is True
        assert "downgraded again" in result["msg"]
        assert any(cmd.endswith(f"downgrade {HEAD}") for cmd in result["commands"])
    else:
        assert result["compensated"] is False
        assert "nothing was committed" in result["msg"]
    assert version(lab_env, db) == [HEAD]
    assert schema(lab_env, db) == before


def test_failure_after_a_revision_without_downgrade_names_the_revision(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    add_revision(app, "0004_oneway", HEAD,
                 "op.create_table('t4', sa.Column('id', sa.Integer, primary_key=True))",
                 "pass")
    add_revision(app, "0005_fails", "0004_oneway", "op.execute('SELECT 1 / 0')")
    rc, check, proc = alembic(lab_env, app, db, "--check")
    assert rc == 0, proc.stdout + proc.stderr
    assert [(f["rule"], f["revision"]) for f in check["lint"]] == [
        ("no-downgrade", "0004_oneway")]
    rc, result, proc = alembic(lab_env, app, db)
    assert rc != 0
    assert result["compensated"] is False
    assert "the database is now at revision 0004_oneway" in result["msg"]
    assert "revision 0004_oneway" in result["msg"] and "no downgrade step" in result["msg"]
    assert version(lab_env, db) == ["0004_oneway"]


def test_lock_timeout_stops_a_migration_waiting_for_a_lock(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    add_revision(app, "0004_alter_users", HEAD,
                 "op.add_column('users', sa.Column('flag', sa.Boolean()))",
                 "op.drop_column('users', 'flag')")
    before = schema(lab_env, db)
    holder = connect(db_url(lab_env, db))
    holder.autocommit = False
    try:
        with holder.cursor() as cur:
            cur.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        rc, result, proc = alembic(lab_env, app, db, lock_timeout="1s")
        elapsed = time.monotonic() - started
    finally:
        holder.rollback()
        holder.close()
    assert rc != 0, proc.stdout
    assert "lock timeout" in result["msg"]
    assert "lock_timeout=1s" in result["msg"]
    assert result["failed_revision"] == "0004_alter_users"
    assert elapsed < 30
    assert version(lab_env, db) == [HEAD]
    assert schema(lab_env, db) == before


def test_statement_timeout_stops_a_long_statement(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    add_revision(app, "0004_slow", HEAD, "op.execute('SELECT pg_sleep(5)')")
    rc, result, proc = alembic(lab_env, app, db, statement_timeout="500ms")
    assert rc != 0, proc.stdout
    assert "statement timeout" in result["msg"]
    assert version(lab_env, db) == [HEAD]


def write_risky_revision(app: Path) -> None:
    add_revision(app, "0004_risky", HEAD, """
        op.create_table('fresh', sa.Column('id', sa.Integer, primary_key=True),
                        sa.Column('v', sa.Integer, nullable=False))
        op.create_index('ix_fresh_v', 'fresh', ['v'])
        op.create_index('ix_users_name', 'users', ['name'])
        op.alter_column('users', 'name', type_=sa.Text())
        op.drop_column('users', 'email_domain')
    """, """
        op.add_column('users', sa.Column('email_domain', sa.String(253)))
        op.alter_column('users', 'name', type_=sa.String(200))
        op.drop_index('ix_users_name', 'users')
        op.drop_table('fresh')
    """)


def test_lint_reports_risky_operations(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    write_risky_revision(app)
    rc, result, proc = alembic(lab_env, app, db, action="check")
    assert rc == 0, proc.stdout + proc.stderr
    assert result["changed"] is False
    assert result["pending"] == ["0004_risky"]
    rules = [(f["rule"], f["policy"]) for f in result["lint"]]
    assert rules == [("create-index-blocking", "warn"), ("alter-column-type", "warn"),
                     ("drop-column", "warn")]
    assert result["lint"][0]["statement"] == "CREATE INDEX ix_users_name ON users (name)"
    assert result["lint"][0]["file"].endswith("0004_risky.py")
    assert "migration lint: 3 finding(s)" in " ".join(result.get("warnings", []))
    assert version(lab_env, db) == [HEAD]


def test_lint_fail_policy_stops_before_anything_runs(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    write_risky_revision(app)
    before = schema(lab_env, db)
    rc, result, proc = alembic(lab_env, app, db, lint_policy={"drop-column": "fail",
                                                              "alter-column-type": "ignore"})
    assert rc != 0, proc.stdout
    assert "drop-column in revision 0004_risky" in result["msg"]
    assert [f["rule"] for f in result["lint"]] == ["create-index-blocking", "drop-column"]
    assert not any(cmd.endswith("upgrade 0004_risky") for cmd in result["commands"])
    assert version(lab_env, db) == [HEAD]
    assert schema(lab_env, db) == before


def test_multiple_heads_are_named(lab_env, app, db):
    add_revision(app, "0004_left", HEAD, "op.execute('SELECT 1')")
    add_revision(app, "0004_right", HEAD, "op.execute('SELECT 1')")
    for action in ("upgrade", "check", "heads"):
        rc, result, proc = alembic(lab_env, app, db, action=action)
        assert rc != 0, proc.stdout
        assert "2 heads (0004_left, 0004_right)" in result["msg"], action
        assert result["heads"] == ["0004_left", "0004_right"]
    assert version(lab_env, db) is None


def test_history_lists_revisions_for_the_schema_guard(lab_env, app):
    add_revision(app, "0004_irreversible", HEAD, "op.execute('SELECT 1')", "pass")
    rc, result, proc = alembic(lab_env, app, None, action="history")
    assert rc == 0, proc.stdout + proc.stderr
    history = result["history"]
    assert [h["revision"] for h in history] == [*CHAIN, "0004_irreversible"]
    assert history[0]["down_revisions"] == [] and history[1]["down_revisions"] == [CHAIN[0]]
    assert [h["has_downgrade"] for h in history] == [True, True, True, False]
    assert [h["is_head"] for h in history] == [False, False, False, True]
    assert history[0]["path"] == str(app / "migrations/versions/0001_initial.py")
    assert history[0]["doc"] == "Create users and audit_log."
    assert {"revision", "down_revisions", "has_downgrade", "is_head", "path",
            "doc"} <= set(history[0])


def test_unknown_target_is_named(lab_env, app, db):
    rc, result, proc = alembic(lab_env, app, db, target="0099_nope")
    assert rc != 0
    assert "cannot upgrade to '0099_nope'" in result["msg"]
    assert "0001_initial" in result["msg"]
    assert version(lab_env, db) is None


def test_database_ahead_of_the_migrations_is_named(lab_env, app, db):
    path = add_revision(app, "0004_newer", HEAD, "op.execute('SELECT 1')")
    upgrade_to(lab_env, app, db)
    path.unlink()
    for action in ("upgrade", "current"):
        rc, result, proc = alembic(lab_env, app, db, action=action)
        assert rc != 0, proc.stdout
        assert "the database is at revision 0004_newer, which these migrations do not" \
               " contain" in result["msg"]
    assert version(lab_env, db) == ["0004_newer"]


def test_missing_config_is_named(lab_env, app, db):
    rc, result, proc = alembic(lab_env, app, db, config=str(app / "nope.ini"))
    assert rc != 0
    assert f"the Alembic config {app / 'nope.ini'} does not exist" in result["msg"]


def with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{password}@{host}"


def test_wrong_password_is_clear_and_never_shown(lab_env, app, db):
    url = with_password(db_url(lab_env, db), CANARY)
    rc, result, proc = alembic(lab_env, app, db, "-vvvv", url=url)
    assert rc != 0
    assert "password authentication failed" in result["msg"]
    assert "check the password" in result["msg"]
    assert CANARY not in proc.stdout + proc.stderr
    assert version(lab_env, db) is None


def test_canary_password_never_shows_in_a_failed_run(lab_env, app):
    """The password of a working URL stays hidden even when env.py and a migration fail."""
    admin = connect(lab_env["LAB_PG_ADMIN_URL"])
    role = "mg2_canary_role"
    with admin.cursor() as cur:
        cur.execute(f"DROP ROLE IF EXISTS {role}")
        cur.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{CANARY}'")
    try:
        with scratch_db(lab_env, "mg2", owner=role) as name:
            add_revision(app, "0004_fails", HEAD, "op.execute('SELECT 1 / 0')")
            url = with_password(db_url(lab_env, name), CANARY).replace(
                f"{lab_env['LAB_PG_APP_USER']}:", f"{role}:", 1)
            rc, result, proc = alembic(lab_env, app, None, "-vvvv", url=url)
            assert rc != 0
            assert "division by zero" in result["msg"]
            assert result["compensated"] is True
            assert CANARY not in proc.stdout + proc.stderr
            assert version(lab_env, name, admin=True) == []
    finally:
        with admin.cursor() as cur:
            cur.execute(f"DROP ROLE IF EXISTS {role}")
        admin.close()


def test_missing_database_is_clear(lab_env, app):
    rc, result, proc = alembic(lab_env, app, "mg2_does_not_exist")
    assert rc != 0
    assert 'database "mg2_does_not_exist" does not exist' in result["msg"]
    assert "create the database" in result["msg"]


def test_unreachable_server_is_clear(lab_env, app, db):
    rc, result, proc = alembic(lab_env, app, db, login_port=1, connect_timeout=3)
    assert rc != 0
    assert "127.0.0.1:1/" in result["msg"]
    assert "check host and port" in result["msg"]


def tables(lab_env: dict[str, str], db: str) -> set[str]:
    return {row[2] for row in schema(lab_env, db) if row[0] == "column"}


def branch_and_merge(app: Path) -> None:
    """0004_x and 0004_y both on the head, each with its own table; 0005_m merges them."""
    for rev in ("0004_x", "0004_y"):
        table = f"t_{rev[-1]}"
        add_revision(app, rev, HEAD,
                     f"op.create_table('{table}', sa.Column('id', sa.Integer,"
                     " primary_key=True))", f"op.drop_table('{table}')")
    add_revision(app, "0005_m", ("0004_x", "0004_y"), "pass", "op.execute('SELECT 2')")


def test_downgrade_from_a_merge_stops_at_its_target(lab_env, app, db):
    branch_and_merge(app)
    upgrade_to(lab_env, app, db)
    assert version(lab_env, db) == ["0005_m"]
    assert {"users", "t_x", "t_y"} <= tables(lab_env, db)

    rc, check, proc = alembic(lab_env, app, db, "--check", "--diff", action="downgrade",
                              target="0004_x")
    assert rc == 0, proc.stdout + proc.stderr
    assert check["changed"] is True and check["pending"] == ["0005_m"]
    # Alembic's own resolution: removing the merge leaves the heads of both branches.
    assert (check["from_revision"], check["to_revision"]) == ("0005_m", "0004_x,0004_y")
    assert check["diff"]["after"] == "revision: 0004_x,0004_y\n"
    assert version(lab_env, db) == ["0005_m"]

    rc, first, proc = alembic(lab_env, app, db, action="downgrade", target="0004_x")
    assert rc == 0, proc.stdout + proc.stderr
    assert first["changed"] is True and first["revisions"] == ["0005_m"]
    assert first["to_revision"] == first["current"] == "0004_x,0004_y"
    assert any(cmd.endswith(" downgrade 0004_x") for cmd in first["commands"])

    rc, again, proc = alembic(lab_env, app, db, action="downgrade", target="0004_x")
    assert rc == 0, proc.stdout + proc.stderr
    assert again["changed"] is False and again["pending"] == []
    assert version(lab_env, db) == ["0004_x", "0004_y"]
    assert {"users", "t_x", "t_y"} <= tables(lab_env, db), "nothing below the target goes"

    rc, down, proc = alembic(lab_env, app, db, action="downgrade", target=HEAD)
    assert rc == 0, proc.stdout + proc.stderr
    assert sorted(down["revisions"]) == ["0004_x", "0004_y"]
    assert (down["from_revision"], down["to_revision"]) == ("0004_x,0004_y", HEAD)
    assert version(lab_env, db) == [HEAD]
    found = tables(lab_env, db)
    assert "users" in found and not {"t_x", "t_y"} & found


def add_online_only_revision(app: Path) -> None:
    """A data migration that reads a result through op.get_bind(): no offline SQL."""
    add_revision(app, "0004_data", HEAD, """
        count = op.get_bind().execute(sa.text('SELECT count(*) FROM users')).scalar()
        op.execute(sa.text(f'DROP TABLE IF EXISTS audit_log_{int(count)}'))
    """)


def test_online_only_migration_cannot_bypass_a_fail_policy(lab_env, app, db):
    upgrade_to(lab_env, app, db)
    add_online_only_revision(app)
    before = schema(lab_env, db)
    for flags in (("--check",), ()):
        rc, result, proc = alembic(lab_env, app, db, *flags,
                                   lint_policy={"drop-table": "fail"})
        assert rc != 0, proc.stdout
        assert "cannot lint revision 0004_data: " in result["msg"]
        assert "'NoneType' object has no attribute 'scalar'" in result["msg"]
        assert "Set those policies to warn" in result["msg"]
        assert "offline-capable" in result["msg"]
        assert not any(cmd.endswith("upgrade 0004_data") for cmd in result["commands"])
    assert version(lab_env, db) == [HEAD]
    assert schema(lab_env, db) == before

    rc, result, proc = alembic(lab_env, app, db, lint_policy={"no-downgrade": "fail"})
    assert rc == 0, proc.stdout + proc.stderr
    assert result["changed"] is True and result["revisions"] == ["0004_data"]
    assert any("revision 0004_data and the pending revisions after it could not be"
               " generated" in w for w in result["warnings"])
    assert version(lab_env, db) == ["0004_data"]


def test_short_env_secret_never_shows(lab_env, app, db):
    canary = "Qz7"
    upgrade_to(lab_env, app, db)
    add_revision(app, "0004_pin", HEAD, """
        print('env.py sees PIN=' + os.environ['PIN'], file=sys.stderr)
        raise RuntimeError('wrong PIN ' + os.environ['PIN'])
    """)
    rc, result, proc = alembic(lab_env, app, db, "-vvvv", env={"PIN": canary})
    assert rc != 0
    assert "RuntimeError: wrong PIN ********" in result["msg"]
    assert "env.py sees PIN=********" in result["log"]
    assert canary not in proc.stdout + proc.stderr
    assert version(lab_env, db) == [HEAD]
