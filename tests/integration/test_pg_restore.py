# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prodready.deploy.pg_restore and the db_restore role against the lab's PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pgutil
import pytest
from ansible_run import REPO, ansible_env, run_module

from ansible_collections.prodready.deploy.plugins.module_utils._pg import (
    archive,
    backup,
    conn,
    restore,
)

CANARY = "canary-pw-7c41e0d2"


def seed(db: Any) -> None:
    with db.cursor() as cur:
        cur.execute("CREATE SCHEMA s1")
        cur.execute("CREATE TABLE public.t (id int PRIMARY KEY, v text)")
        cur.execute("INSERT INTO public.t SELECT g, 'row ' || g FROM generate_series(1, 999) g")
        cur.execute("INSERT INTO public.t VALUES (1000, '123456789')")
        cur.execute("CREATE TABLE s1.u (id serial PRIMARY KEY, doc jsonb, blob bytea)")
        cur.execute("""INSERT INTO s1.u (doc, blob) SELECT jsonb_build_object('g', g, 'ü', 'ß'),
                       decode(md5(g::text), 'hex') FROM generate_series(1, 50) g""")
        cur.execute("CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY)")
        cur.execute("INSERT INTO public.alembic_version VALUES ('0002')")


def release(db: Any) -> None:
    """What a later release does: a migration adds a table, rows change."""
    with db.cursor() as cur:
        cur.execute("CREATE TABLE public.audit (id int)")
        cur.execute("INSERT INTO public.audit VALUES (1), (2)")
        cur.execute("DELETE FROM public.t WHERE id <= 10")
        cur.execute("UPDATE public.alembic_version SET version_num = '0003'")


def comment(db: Any) -> str | None:
    with db.cursor() as cur:
        cur.execute(restore.MARKER_SQL)
        return cur.fetchone()[0]


@pytest.fixture
def target(lab_env: dict[str, str], tmp_path: Path) -> Any:
    """A seeded database, its verified backup, then the release applied on top."""
    with pgutil.scratch_db(lab_env, "rs") as name:
        url = pgutil.db_url(lab_env, name)
        db = pgutil.connect(url)
        try:
            seed(db)
            original = pgutil.fingerprint(db)
            params = conn.from_params({"url": url})
            made = backup.create_backup(params, backup.BackupSpec(
                dest=str(tmp_path / "backups"), compression="none"))
            release(db)
            yield {"name": name, "url": url, "db": db, "params": params, "backup": made,
                   "original": original, "safety": str(tmp_path / "safety")}
        finally:
            db.close()


def args(target: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"url": target["url"], "backup": target["backup"]["manifest_path"],
            "safety_backup_dir": target["safety"], **extra}


def safety_backups(target: dict[str, Any]) -> list[dict[str, Any]]:
    return archive.list_backups(target["safety"])


def test_check_then_restore_then_nothing_then_force(lab_env: dict[str, str],
                                                    target: dict[str, Any]) -> None:
    released = pgutil.fingerprint(target["db"])
    assert "public.audit" in released

    rc, check, _proc = run_module(lab_env, "pg_restore", args(target), "--check", "--diff")
    assert rc == 0, check
    assert check["changed"] is True and check["restored"] is False
    assert check["safety_backup"] == {"taken": False, "dir": target["safety"]}
    assert check["diff"]["before"]["alembic_revision"] == "0003"
    assert check["diff"]["before"]["tables"]["public.audit"] == 2
    assert check["diff"]["after"] == {"backup_id": target["backup"]["backup_id"],
                                      "alembic_revision": "0002",
                                      "tables": target["backup"]["tables"]}
    assert check["tables"] == {"public.alembic_version": 1, "public.t": 1000, "s1.u": 50}
    assert pgutil.fingerprint(target["db"]) == released
    assert not os.path.exists(target["safety"])
    assert comment(target["db"]) is None

    rc, first, _proc = run_module(lab_env, "pg_restore", args(target))
    assert rc == 0, first
    assert first["changed"] is True and first["restored"] is True
    assert first["single_transaction"] is True
    assert first["backup_id"] == target["backup"]["backup_id"]
    assert first["sha256"] == target["backup"]["sha256"]
    assert first["alembic_revision"] == "0002"
    assert any("--single-transaction" in c and "ON_ERROR_STOP=1" in c
               for c in first["commands"])
    # Independent reads: content as at the backup, the later table gone, the marker set.
    assert pgutil.fingerprint(target["db"]) == target["original"]
    marker = restore.parse_marker(comment(target["db"]))
    assert (marker["backup_id"], marker["sha256"]) == (first["backup_id"], first["sha256"])
    # The safety backup holds the released state and verifies.
    safety = first["safety_backup"]
    assert safety["taken"] is True and safety["verified"] is True
    saved = archive.read_manifest(safety["manifest_path"])
    archive.verify_checksum(saved)
    assert saved["sha256"] == safety["sha256"]
    assert saved["tables"] == {k: v[0] for k, v in released.items()}
    assert saved["alembic_revision"] == "0003"

    rc, again, _proc = run_module(lab_env, "pg_restore", args(target), "--diff")
    assert rc == 0, again
    assert again["changed"] is False and again["restored"] is False
    assert again["safety_backup"] is None
    assert len(safety_backups(target)) == 1
    assert again["diff"]["before"]["tables"] == again["diff"]["after"]["tables"]
    assert again["diff"]["before"]["backup_id"] == again["diff"]["after"]["backup_id"]

    rc, forced, _proc = run_module(lab_env, "pg_restore", args(target, force=True))
    assert rc == 0, forced
    assert forced["changed"] is True and forced["restored"] is True
    assert len(safety_backups(target)) == 2
    assert pgutil.fingerprint(target["db"]) == target["original"]


def test_a_row_added_after_the_restore_makes_it_restore_again(lab_env: dict[str, str],
                                                              target: dict[str, Any]) -> None:
    rc, first, _proc = run_module(lab_env, "pg_restore", args(target, safety_backup=False))
    assert rc == 0 and first["changed"] is True, first
    with target["db"].cursor() as cur:
        cur.execute("INSERT INTO public.t VALUES (5000, 'late')")
    rc, again, _proc = run_module(lab_env, "pg_restore", args(target, safety_backup=False))
    assert rc == 0 and again["changed"] is True, again
    assert any("public.t has 1001 rows, the backup 1000" in c for c in again["checks"])
    assert pgutil.fingerprint(target["db"]) == target["original"]


def tamper(made: dict[str, Any], old: bytes, new: bytes) -> None:
    """Change the archive and record its new sha256, as if the backup had been made so."""
    path = made["archive_path"]
    data = Path(path).read_bytes()
    assert data.count(old) == 1
    Path(path).write_bytes(data.replace(old, new))
    manifest = archive.read_manifest(made["manifest_path"])
    manifest["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    for key in ("manifest_path", "archive_path"):
        manifest.pop(key)
    archive.write_json_atomic(made["manifest_path"], manifest)


def assert_unchanged_failure(result: dict[str, Any], target: dict[str, Any],
                             before: dict[str, Any], *fragments: str) -> None:
    assert result["failed"] is True
    assert result["changed"] is False and result["target_changed"] is False
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert pgutil.fingerprint(target["db"]) == before


def test_a_statement_failing_midway_leaves_the_target_unchanged(
        lab_env: dict[str, str], target: dict[str, Any]) -> None:
    # Uncompressed archive: the COPY data of public.t is plain text; its last row gets an
    # id that is no integer, so the COPY fails after the schema and other data went in.
    tamper(target["backup"], b"1000\t123456789", b"10x0\t123456789")
    before = pgutil.fingerprint(target["db"])
    rc, result, _proc = run_module(lab_env, "pg_restore", args(target))
    assert rc != 0
    assert_unchanged_failure(
        result, target, before,
        f"Failed to restore backup {target['backup']['backup_id']} into app@",
        'archive SQL line', 'invalid input syntax for type integer: "10x0"',
        "the restore ran in one transaction, which was rolled back: the target is unchanged")
    # The safety backup was taken before the attempt, and verifies.
    assert result["safety_backup"]["taken"] is True
    archive.verify_checksum(archive.read_manifest(result["safety_backup"]["manifest_path"]))
    assert comment(target["db"]) is None


def test_pg_restore_failing_midway_leaves_the_target_unchanged(
        lab_env: dict[str, str], target: dict[str, Any], tmp_path: Path) -> None:
    # A compressed archive whose data block is damaged after its sha256 was recorded:
    # pg_restore --list still reads the table of contents, pg_restore -f - fails while
    # psql already holds part of the SQL; psql must be stopped before it commits.
    made = backup.create_backup(target["params"], backup.BackupSpec(
        dest=str(tmp_path / "gz"), compression="gzip", label="gz"))
    path = Path(made["archive_path"])
    data = bytearray(path.read_bytes())
    middle = len(data) * 2 // 3
    data[middle:middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    manifest = {k: v for k, v in archive.read_manifest(made["manifest_path"]).items()
                if k not in ("manifest_path", "archive_path")}
    manifest["sha256"] = hashlib.sha256(bytes(data)).hexdigest()
    archive.write_json_atomic(made["manifest_path"], manifest)
    before = pgutil.fingerprint(target["db"])
    rc, result, _proc = run_module(lab_env, "pg_restore", args(
        target, backup=made["manifest_path"], safety_backup=False))
    assert rc != 0
    assert_unchanged_failure(result, target, before, "pg_restore failed while reading the"
                             " archive", "psql was stopped before it could commit")


def test_a_schema_the_user_cannot_drop_fails_with_nothing_changed(
        lab_env: dict[str, str], target: dict[str, Any]) -> None:
    admin = pgutil.connect(pgutil.db_url(lab_env, target["name"], admin=True))
    try:
        with admin.cursor() as cur:
            cur.execute("CREATE SCHEMA locked")
            cur.execute("CREATE TABLE locked.keep AS SELECT 1 AS x")
            # Readable (for the fingerprint), not droppable, by the app user.
            cur.execute("GRANT USAGE ON SCHEMA locked TO app")
            cur.execute("GRANT SELECT ON locked.keep TO app")
        before = pgutil.fingerprint(target["db"])
        rc, result, _proc = run_module(lab_env, "pg_restore", args(target, safety_backup=False))
        assert rc != 0
        assert_unchanged_failure(result, target, before, "the prelude (drop the target's"
                                 " schemas)", "must be owner of schema locked",
                                 "rolled back: the target is unchanged")
    finally:
        with admin.cursor() as cur:
            cur.execute("DROP SCHEMA locked CASCADE")
        admin.close()


def test_row_counts_unlike_the_manifest_roll_the_restore_back(
        lab_env: dict[str, str], target: dict[str, Any]) -> None:
    manifest = {k: v for k, v in archive.read_manifest(
        target["backup"]["manifest_path"]).items() if k not in ("manifest_path",
                                                                "archive_path")}
    manifest["tables"]["public.t"] = 1001
    archive.write_json_atomic(target["backup"]["manifest_path"], manifest)
    before = pgutil.fingerprint(target["db"])
    rc, result, _proc = run_module(lab_env, "pg_restore", args(target, safety_backup=False))
    assert rc != 0
    assert_unchanged_failure(result, target, before, "the check against the manifest line",
                             "table public.t has 1000 rows after the restore, 1001 in the"
                             " backup", "rolled back: the target is unchanged")


def test_parallel_restore_of_a_directory_backup(lab_env: dict[str, str], target: dict[str, Any],
                                                tmp_path: Path) -> None:
    with target["db"].cursor() as cur:
        cur.execute("DROP TABLE public.audit")
        cur.execute("UPDATE public.alembic_version SET version_num = '0002'")
        cur.execute("INSERT INTO public.t SELECT g, 'again' FROM generate_series(1, 10) g")
    at_backup = pgutil.fingerprint(target["db"])
    made = backup.create_backup(target["params"], backup.BackupSpec(
        dest=str(tmp_path / "dir"), format="directory", jobs=2))
    release(target["db"])
    rc, result, _proc = run_module(lab_env, "pg_restore", args(
        target, backup=made["manifest_path"], jobs=2))
    assert rc == 0, result
    assert result["changed"] is True and result["single_transaction"] is False
    assert any("--jobs=2" in c and "--exit-on-error" in c for c in result["commands"])
    assert pgutil.fingerprint(target["db"]) == at_backup


@pytest.mark.parametrize(("change", "fragments"), [
    ({"login_password": CANARY}, ["password authentication failed"]),
    ({"login_host": "127.0.0.1", "login_port": 1}, ["Connection refused", "check host and"
                                                    " port"]),
    ({"database": "rs_missing_db"}, ['database "rs_missing_db" does not exist']),
])
def test_connection_errors_change_nothing(lab_env: dict[str, str], target: dict[str, Any],
                                          change: dict[str, Any], fragments: list[str]) -> None:
    before = pgutil.fingerprint(target["db"])
    rc, result, _proc = run_module(lab_env, "pg_restore", args(target, **change))
    assert rc != 0
    assert result["msg"].startswith(f"Failed to restore backup {target['backup']['backup_id']}"
                                    " into app@")
    assert result["msg"].endswith("; the target is unchanged")
    for fragment in fragments:
        assert fragment in result["msg"], result["msg"]
    assert result["changed"] is False and result["restored"] is False
    assert pgutil.fingerprint(target["db"]) == before
    assert not os.path.exists(target["safety"])
    # The same at -vvvv (module arguments and the result printed): no password anywhere.
    verbose = subprocess.run([str(Path(sys.executable).parent / "ansible"), "localhost", "-m",
                              "prodready.deploy.pg_restore", "-a",
                              json.dumps(args(target, **change)), "-vvvv"],
                             capture_output=True, text=True, env=ansible_env(lab_env),
                             timeout=600, check=False)
    assert verbose.returncode != 0
    assert json.dumps(fragments[0])[1:-1] in verbose.stdout
    assert CANARY not in verbose.stdout + verbose.stderr
    assert lab_env["LAB_PG_APP_PASSWORD"] not in verbose.stdout + verbose.stderr


def play(lab_env: dict[str, str], tmp_path: Path, role_vars: dict[str, Any], *flags: str
         ) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "restore.yml"
    playbook.write_text(json.dumps([{
        "name": "Restore", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Restore the database", "ansible.builtin.include_role": {
            "name": "prodready.deploy.db_restore"}, "vars": role_vars},
            {"name": "Show the result", "ansible.builtin.debug": {
                "msg": "{{ db_restore_result.backup_id }} changed={{ db_restore_result.changed }}"
                       " restored={{ db_restore_result.restored }}"}}],
    }]))
    env = {**ansible_env(lab_env), "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def test_role_checks_restores_then_changes_nothing(lab_env: dict[str, str],
                                                   target: dict[str, Any],
                                                   tmp_path: Path) -> None:
    role_vars = {"db_restore_url": target["url"],
                 "db_restore_backup": target["backup"]["manifest_path"],
                 "db_restore_safety_backup_dir": target["safety"]}
    released = pgutil.fingerprint(target["db"])
    backup_id = target["backup"]["backup_id"]
    secret = lab_env["LAB_PG_APP_PASSWORD"]

    check = play(lab_env, tmp_path, role_vars, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"{backup_id} changed=True restored=False" in check.stdout
    assert pgutil.fingerprint(target["db"]) == released

    first = play(lab_env, tmp_path, role_vars, "-vvvv")
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"{backup_id} changed=True restored=True" in first.stdout
    assert secret not in first.stdout + first.stderr
    assert pgutil.fingerprint(target["db"]) == target["original"]

    again = play(lab_env, tmp_path, role_vars)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"{backup_id} changed=False restored=False" in again.stdout
    assert len(safety_backups(target)) == 1


def test_role_fails_with_the_module_message(lab_env: dict[str, str], target: dict[str, Any],
                                            tmp_path: Path) -> None:
    flip = Path(target["backup"]["archive_path"])
    data = bytearray(flip.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flip.write_bytes(bytes(data))
    proc = play(lab_env, tmp_path, {"db_restore_url": target["url"],
                                    "db_restore_backup": target["backup"]["manifest_path"],
                                    "db_restore_safety_backup": False}, "-vvvv")
    assert proc.returncode != 0
    assert (f"Refusing to restore backup {target['backup']['backup_id']} (sha256 mismatch:"
            in proc.stdout), proc.stdout
    assert lab_env["LAB_PG_APP_PASSWORD"] not in proc.stdout + proc.stderr
