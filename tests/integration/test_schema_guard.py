# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema_guard module through Ansible, with the live revision read from a scratch
database migrated by the reference app's own Alembic setup."""

from __future__ import annotations

import ast
import copy
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory
from ansible_run import run_module
from pgutil import connect, db_url, scratch_db

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "tests" / "app"
ALEMBIC = REPO / ".venv" / "bin" / "alembic"
R1, R2, R3 = "0001_initial", "0002_users_email_idx", "0003_backfill_email_domain"
CANARY = "canary-Sg-91d4e7b2a6c3"


def alembic(lab_env: dict[str, str], name: str, *args: str) -> str:
    proc = subprocess.run([str(ALEMBIC), "-c", str(APP / "alembic.ini"), *args],
                          capture_output=True, text=True, cwd=APP, timeout=120, check=False,
                          env={**os.environ, "DATABASE_URL": db_url(lab_env, name)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _has_downgrade(path: str) -> bool:
    """Whether the module's downgrade() does more than `pass` (as the alembic module says)."""
    tree = ast.parse(Path(path).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "downgrade":
            body = [n for n in node.body if not (isinstance(n, ast.Expr)
                                                 and isinstance(n.value, ast.Constant))]
            return not all(isinstance(n, ast.Pass) for n in body)
    return False


def history() -> list[dict[str, Any]]:
    """The refapp's revision graph in the shape of the alembic module's `history` action."""
    script = ScriptDirectory.from_config(Config(str(APP / "alembic.ini")))
    revisions = []
    for rev in script.walk_revisions():
        down = rev.down_revision
        down = [] if down is None else [down] if isinstance(down, str) else list(down)
        revisions.append({"revision": rev.revision, "down_revisions": down,
                          "has_downgrade": _has_downgrade(rev.path), "is_head": rev.is_head,
                          "path": rev.path, "doc": rev.doc})
    return revisions


def without_downgrade(revisions: list[dict[str, Any]], revision: str) -> list[dict[str, Any]]:
    changed = copy.deepcopy(revisions)
    for rev in changed:
        if rev["revision"] == revision:
            rev["has_downgrade"] = False
    return changed


@pytest.fixture
def migrated(lab_env: dict[str, str]) -> Iterator[str]:
    """A scratch database at the refapp's head (0003), migrated by its own Alembic."""
    with scratch_db(lab_env, "ck") as name:
        alembic(lab_env, name, "upgrade", "head")
        yield name


def guard(lab_env: dict[str, str], args: dict[str, Any], *flags: str,
          ) -> tuple[int, dict[str, Any], Any]:
    return run_module(lab_env, "schema_guard", args, *flags)


def test_refapp_history_has_three_revisions_with_downgrades():
    revisions = history()
    assert [r["revision"] for r in revisions] == [R3, R2, R1]
    assert all(r["has_downgrade"] for r in revisions)
    assert [r["down_revisions"] for r in revisions] == [[R2], [R1], []]


def test_live_0003_target_0002_downgrades_then_nothing_to_do(lab_env, migrated):
    args = {"url": db_url(lab_env, migrated), "target_head": R2, "revisions": history()}
    rc, checked, _proc = guard(lab_env, args, "--check", "--diff")
    rc2, result, _proc = guard(lab_env, args)
    assert rc == rc2 == 0
    assert checked["plan"] == result["plan"]
    assert result["changed"] is False
    assert result["live_revision"] == R3
    assert result["plan"] == {
        "action": "downgrade", "from_revision": R3, "to_revision": R2, "backup_id": None,
        "steps": [R3],
        "reason": f"live revision {R3} is unknown to the target release (head {R2}); {R3} has"
                  f" a downgrade step; downgrade {R3} -> {R2}"}
    assert result["queries"] == [
        """SELECT to_regclass('"alembic_version"') IS NOT NULL""",
        'SELECT version_num FROM "alembic_version" ORDER BY version_num']

    # The guard only decided: the schema is still at 0003 (an independent read).
    conn = connect(db_url(lab_env, migrated))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            assert cur.fetchall() == [(R3,)]
    finally:
        conn.close()

    # Carry the plan out with the refapp's Alembic; the guard then has nothing to do.
    alembic(lab_env, migrated, "downgrade", result["plan"]["to_revision"])
    rc, result, _proc = guard(lab_env, args)
    assert rc == 0
    assert (result["live_revision"], result["plan"]["action"]) == (R2, "none")

    # And rolling forward again to a release at 0003 is an upgrade, no downgrade.
    rc, result, _proc = guard(lab_env, {**args, "target_head": R3})
    assert rc == 0
    assert result["plan"]["action"] == "upgrade"
    assert result["plan"]["steps"] == [R3]
    assert "no downgrade is needed" in result["plan"]["reason"]


def test_step_without_downgrade_restores_the_backup(lab_env, migrated):
    backup = {"backup_id": "app-2026-11-27T10-00-00Z", "alembic_revision": R2,
              "sha256": "ab" * 32, "path": "/var/backups/app-2026-11-27T10-00-00Z.dump"}
    rc, result, _proc = guard(lab_env, {"url": db_url(lab_env, migrated), "target_head": R2,
                                        "revisions": without_downgrade(history(), R3),
                                        "backup": backup}, "--check")
    assert rc == 0
    assert result["plan"]["action"] == "restore"
    assert result["plan"]["backup_id"] == "app-2026-11-27T10-00-00Z"
    assert result["plan"]["steps"] == []
    assert result["plan"]["reason"] == (
        f"live revision {R3} is unknown to the target release (head {R2}); {R3} has no"
        f" downgrade step, so it cannot be downgraded; restore backup"
        f" app-2026-11-27T10-00-00Z (taken at revision {R2})")


def test_prefer_restore_with_a_matching_backup(lab_env, migrated):
    rc, result, _proc = guard(lab_env, {"url": db_url(lab_env, migrated), "target_head": R2,
                                        "revisions": history(), "prefer": "restore",
                                        "backup": {"backup_id": "b2", "alembic_revision": R2}})
    assert rc == 0
    assert (result["plan"]["action"], result["plan"]["backup_id"]) == ("restore", "b2")
    assert "but restore is preferred" in result["plan"]["reason"]


@pytest.mark.parametrize("backup", [None, {"backup_id": "b1", "alembic_revision": R1}])
def test_step_without_downgrade_and_no_usable_backup_is_blocked(lab_env, migrated, backup):
    args = {"url": db_url(lab_env, migrated), "target_head": R2,
            "revisions": without_downgrade(history(), R3)}
    if backup:
        args["backup"] = backup
    rc, result, _proc = guard(lab_env, args)
    assert rc != 0
    assert result["plan"]["action"] == "blocked"
    have = "no backup was given" if backup is None else \
        f"backup b1 is at revision {R1}, not at {R2}"
    assert result["msg"] == (
        f"Schema rollback to {R2} is blocked: live revision {R3} is unknown to the target"
        f" release (head {R2}); {R3} has no downgrade step, so it cannot be downgraded;"
        f" {have}. To roll back, supply the verified pre-release backup taken at revision"
        f" {R2}, or add the missing downgrade step to {R3}")


def test_multiple_heads_are_an_error_naming_them(lab_env):
    with scratch_db(lab_env, "ck") as name:
        conn = connect(db_url(lab_env, name))
        try:
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY)")
                cur.execute("INSERT INTO alembic_version VALUES ('0002a'), ('0002b')")
        finally:
            conn.close()
        rc, result, _proc = guard(lab_env, {"url": db_url(lab_env, name), "target_head": R2,
                                            "revisions": history()})
    assert rc != 0
    assert result["msg"] == (
        f"Cannot decide the schema plan for a rollback to {R2}: the version table"
        " alembic_version holds 2 revisions (0002a, 0002b): several heads are applied;"
        " merge them (alembic merge) before rolling back")
    assert "plan" not in result


def test_unmigrated_database_is_an_error(lab_env):
    with scratch_db(lab_env, "ck") as name:
        rc, result, _proc = guard(lab_env, {"url": db_url(lab_env, name), "target_head": R2,
                                            "revisions": history()})
    assert rc != 0
    assert "the version table alembic_version does not exist in the search path" \
        in result["msg"]


def test_empty_version_table_is_base(lab_env, migrated):
    alembic(lab_env, migrated, "downgrade", "base")
    rc, result, _proc = guard(lab_env, {"url": db_url(lab_env, migrated), "target_head": R2,
                                        "revisions": history()})
    assert rc == 0
    assert result["live_revision"] is None
    assert result["plan"]["action"] == "upgrade"
    assert result["plan"]["steps"] == [R1, R2]


def test_live_revision_given_needs_no_database(lab_env):
    rc, result, _proc = guard(lab_env, {"live_revision": "0004_future", "target_head": R2,
                                        "revisions": history()})
    assert rc != 0
    assert result["queries"] == []
    assert result["plan"]["action"] == "blocked"
    assert "live revision 0004_future is not in the revision graph" in result["msg"]


def test_live_revision_and_url_are_exclusive(lab_env):
    rc, result, _proc = guard(lab_env, {"live_revision": R3, "url": lab_env["DATABASE_URL"],
                                        "target_head": R2, "revisions": history()})
    assert rc != 0
    assert "mutually exclusive: live_revision|url" in result["msg"]


@pytest.mark.parametrize(("args", "fragment"), [
    ({"login_password": CANARY}, 'password authentication failed for user "app"'),
    ({"login_port": 1}, "check host and port"),
    ({"database": "ck_missing_db"}, 'database "ck_missing_db" does not exist'),
])
def test_connection_errors(lab_env, args, fragment):
    rc, result, proc = guard(lab_env, {"url": lab_env["DATABASE_URL"], "target_head": R2,
                                       "revisions": history(), **args})
    assert rc != 0
    assert result["msg"].startswith(f"Cannot decide the schema plan for a rollback to {R2}:"
                                    " cannot connect to PostgreSQL at")
    assert fragment in result["msg"]
    assert CANARY not in proc.stdout + proc.stderr
