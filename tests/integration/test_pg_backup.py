# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pg_backup module through Ansible against the lab's PostgreSQL: scratch databases
named bk_<random>, backups in pytest's tmp_path, every result checked by an independent read
(hashlib, pg_restore --list, row counts, pg_database)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ansible_run import ANSIBLE, ansible_env, run_module
from pgutil import connect, db_url, fingerprint, scratch_db
from psycopg2 import sql

PG_DUMP = shutil.which("pg_dump") or "/usr/bin/pg_dump"
PG_RESTORE = shutil.which("pg_restore") or "/usr/bin/pg_restore"
T1_ROWS = 5000


def populate(url: str) -> None:
    conn = connect(url)
    with conn.cursor() as cur:
        cur.execute(f"""
            CREATE TABLE t1 (id int PRIMARY KEY, v text);
            INSERT INTO t1 SELECT g, md5(g::text) FROM generate_series(1, {T1_ROWS}) g;
            CREATE TABLE empty_t (id int);
            CREATE SCHEMA other;
            CREATE TABLE other."Odd Name" (x int);
            INSERT INTO other."Odd Name" VALUES (1), (2), (3);
            CREATE TABLE alembic_version (version_num varchar(32) PRIMARY KEY);
            INSERT INTO alembic_version VALUES ('0002_rev');
            ANALYZE""")
    conn.close()


EXPECTED_TABLES = {"public.t1": T1_ROWS, "public.empty_t": 0, "other.Odd Name": 3,
                   "public.alembic_version": 1}


@pytest.fixture
def db(lab_env: dict[str, str]) -> Iterator[str]:
    with scratch_db(lab_env, "bk") as name:
        populate(db_url(lab_env, name))
        yield name


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def backup(lab_env: dict[str, str], db: str, dest: Path, *flags: str, admin: bool = False,
           **args: Any) -> tuple[int, dict[str, Any], subprocess.CompletedProcess]:
    return run_module(lab_env, "pg_backup",
                      {"url": db_url(lab_env, db, admin=admin), "dest": str(dest), **args},
                      *flags)


def entries(path: Path) -> list[str]:
    return sorted(os.listdir(path)) if path.exists() else []


def restore_list(path: str) -> str:
    proc = subprocess.run([PG_RESTORE, "--list", path], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def db_exists(lab_env: dict[str, str], name: str) -> bool:
    admin = connect(lab_env["LAB_PG_ADMIN_URL"])
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            return cur.fetchone() is not None
    finally:
        admin.close()


def live_counts(lab_env: dict[str, str], db: str) -> dict[str, int]:
    conn = connect(db_url(lab_env, db))
    try:
        return {name: rows for name, (rows, _md5) in fingerprint(conn).items()}
    finally:
        conn.close()


def test_check_mode_then_backup_then_idempotent_rerun(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, "--check", "--diff", backup_id="b1")
    assert rc == 0, res
    assert res["changed"] is True
    assert res["plan"]["database"] == db
    assert res["plan"]["server_version"].startswith("15.")
    assert set(res["plan"]["tables"]) == set(EXPECTED_TABLES)
    assert res["plan"]["tables"]["public.t1"] == T1_ROWS  # reltuples after ANALYZE
    assert res["plan"]["alembic_revision"] == "0002_rev"
    assert res["commands"] == [f"{PG_DUMP} --format=custom --no-password"
                               f" '--snapshot=<exported snapshot>' --file={dest}/.b1.dump.partial"]
    assert res["diff"]["before"] == "" and res["diff"]["after"] == "b1\n"
    assert not dest.exists(), "check mode created the backup directory"

    rc, res, _proc = backup(lab_env, db, dest, "--diff", backup_id="b1")
    assert rc == 0, res
    assert res["changed"] is True
    assert res["diff"]["after"] == "b1\n"
    assert entries(dest) == ["b1.dump", "b1.manifest.json"]
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    assert stat.S_IMODE((dest / "b1.dump").stat().st_mode) == 0o600
    first_sha = hashlib.sha256((dest / "b1.dump").read_bytes()).hexdigest()
    assert res["sha256"] == first_sha
    mtime = (dest / "b1.dump").stat().st_mtime_ns

    rc, res, _proc = backup(lab_env, db, dest, "--check", backup_id="b1")
    assert rc == 0 and res["changed"] is False and res["commands"] == []
    rc, res, _proc = backup(lab_env, db, dest, backup_id="b1")
    assert rc == 0, res
    assert res["changed"] is False
    assert res["commands"] == []
    assert res["sha256"] == first_sha
    assert entries(dest) == ["b1.dump", "b1.manifest.json"]
    assert (dest / "b1.dump").stat().st_mtime_ns == mtime, "the backup was dumped again"


def test_manifest_describes_the_archive(lab_env, db, dest):
    rc, res, proc = backup(lab_env, db, dest, label="r42")
    assert rc == 0, res
    manifest = json.loads(Path(res["manifest_path"]).read_text())
    assert manifest == res["manifest"]
    assert res["backup_id"].startswith(f"{db}-") and res["backup_id"].endswith("-r42")
    assert manifest["manifest_version"] == 1
    assert manifest["database"] == db
    assert manifest["host"] == lab_env["LAB_PG_HOST"]
    assert manifest["port"] == int(lab_env["LAB_PG_PORT"])
    assert manifest["server_version"].startswith("15.")
    assert manifest["pg_dump_version"].startswith("15.")
    assert manifest["alembic_revision"] == "0002_rev"
    assert manifest["format"] == "custom" and manifest["files"] is None
    assert manifest["compression"] == {"method": "gzip", "level": None}
    assert manifest["archive"] == f"{res['backup_id']}.dump"
    archive_path = dest / manifest["archive"]
    data = archive_path.read_bytes()
    assert manifest["size_bytes"] == len(data) == res["size_bytes"]
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest()
    assert manifest["tables"] == EXPECTED_TABLES == live_counts(lab_env, db)
    assert manifest["started_at"] <= manifest["finished_at"]
    assert manifest["duration_s"] == res["duration_s"] > 0
    assert manifest["command"][0] == PG_DUMP
    assert f"--snapshot={manifest['snapshot']}" in manifest["command"]
    assert manifest["verified"] is True and res["verified"] is True
    assert manifest["verification"]["list_ok"] is True
    assert manifest["verification"]["test_restore"] is None
    assert res["verify_duration_s"] == manifest["verification"]["duration_s"]
    password = lab_env["LAB_PG_APP_PASSWORD"]
    assert password not in (dest / f"{res['backup_id']}.manifest.json").read_text()
    assert password not in json.dumps(res["commands"]) + proc.stdout + proc.stderr
    listing = restore_list(str(archive_path))
    for table in ("public t1", "public empty_t", "other Odd Name", "public alembic_version"):
        assert f" TABLE DATA {table} " in listing


def copy_rows(archive_path: str, table: str) -> int:
    """Rows of ``table`` in an archive, read with pg_restore's script output."""
    proc = subprocess.run([PG_RESTORE, "--data-only", f"--table={table}", "--file=-",
                           archive_path], capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("COPY "))
    return lines.index("\\.", start) - start - 1


def test_counts_and_archive_come_from_one_snapshot(lab_env, db, dest):
    """Rows committed while pg_dump runs are neither in the archive nor in the counts. A
    lock held on empty_t makes pg_dump (and the counting) wait after the snapshot was
    taken; ten rows are committed into t1 meanwhile."""
    blocker = connect(db_url(lab_env, db))
    blocker.autocommit = False
    writer = connect(db_url(lab_env, db))
    with blocker.cursor() as cur:
        cur.execute("LOCK TABLE empty_t IN ACCESS EXCLUSIVE MODE")
    holder: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: holder.update(
        out=backup(lab_env, db, dest, backup_id="snap")))
    thread.start()
    try:
        with writer.cursor() as cur:
            for _attempt in range(600):
                cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_database d"
                            " ON d.oid = l.database WHERE d.datname = %s AND NOT l.granted",
                            (db,))
                if cur.fetchone()[0]:
                    break
                time.sleep(0.05)
            else:
                pytest.fail("pg_dump never waited for the lock")
            cur.execute("INSERT INTO t1 SELECT g, 'late' FROM generate_series(100001, 100010) g")
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(300)
        writer.close()
    rc, res, _proc = holder["out"]
    assert rc == 0, res
    assert res["manifest"]["tables"]["public.t1"] == T1_ROWS
    assert copy_rows(res["path"], "t1") == T1_ROWS
    assert live_counts(lab_env, db)["public.t1"] == T1_ROWS + 10


def test_every_run_without_backup_id_makes_a_new_backup(lab_env, db, dest):
    ids = []
    for _attempt in range(2):
        rc, res, _proc = backup(lab_env, db, dest)
        assert rc == 0, res
        assert res["changed"] is True
        ids.append(res["backup_id"])
    assert ids[0] != ids[1]
    assert entries(dest) == sorted(f"{i}{s}" for i in ids for s in (".dump", ".manifest.json"))


def test_test_restore_compares_counts_and_drops_the_scratch_database(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, admin=True, backup_id="tr", test_restore=True)
    assert rc == 0, res
    restored = res["manifest"]["verification"]["test_restore"]
    assert restored["ok"] is True
    assert restored["database"].startswith(f"{db}_verify_")
    assert len(restored["database"]) == len(db) + len("_verify_") + 8
    assert restored["duration_s"] > 0
    assert not db_exists(lab_env, restored["database"]), "the scratch database was left"
    assert any("--single-transaction" in c and "--exit-on-error" in c for c in res["commands"])


def test_test_restore_needs_createdb(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, backup_id="tr", test_restore=True)
    assert rc != 0
    assert "test_restore needs the CREATEDB privilege" in res["msg"]
    assert res["msg"].startswith(f"Failed to back up database {db} on ")
    assert entries(dest) == []


def test_directory_format_with_two_jobs(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, admin=True, format="directory", jobs=2,
                            compression_level=1, backup_id="d2", test_restore=True)
    assert rc == 0, res
    assert entries(dest) == ["d2.dir", "d2.manifest.json"]
    manifest = res["manifest"]
    assert manifest["format"] == "directory" and manifest["jobs"] == 2
    assert manifest["compression"] == {"method": "gzip", "level": 1}
    assert "--jobs=2" in manifest["command"] and "--compress=1" in manifest["command"]
    root = dest / "d2.dir"
    sums = {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}
    assert manifest["files"] == sums and "toc.dat" in sums
    listing = "".join(f"{sums[k]}  {k}\n" for k in sorted(sums))
    assert manifest["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert manifest["size_bytes"] == sum((root / k).stat().st_size for k in sums)
    assert " TABLE DATA public t1 " in restore_list(str(root))
    assert manifest["verification"]["test_restore"]["ok"] is True
    assert any("--jobs=2" in c for c in res["commands"] if "pg_restore" in c)


@pytest.mark.parametrize("mode", [(), ("--check",)])
def test_unsupported_compression_is_refused_before_anything_runs(lab_env, db, dest, mode):
    rc, res, _proc = backup(lab_env, db, dest, *mode, compression="lz4")
    assert rc != 0
    assert "pg_dump 15." in res["msg"]
    assert "does not support lz4 compression" in res["msg"]
    assert "choose one of none, gzip" in res["msg"]
    assert res["commands"] == []
    assert not dest.exists()


def test_no_compression(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, compression="none", backup_id="plain")
    assert rc == 0, res
    assert res["manifest"]["compression"] == {"method": "none", "level": None}
    assert "--compress=0" in res["manifest"]["command"]
    # Uncompressed table data: the md5 strings of t1 are in the archive as they are.
    assert hashlib.md5(b"4999").hexdigest().encode() in (dest / "plain.dump").read_bytes()


def test_pg_dump_that_writes_an_error_and_exits_0_fails(lab_env, db, dest, tmp_path):
    # Fault injector: runs the real pg_dump, then writes an error and exits 0 - what
    # ../shared/LAB.md says pg_dump can do. The backup must fail and leave no files.
    wrapper = tmp_path / "pg_dump_fault"
    wrapper.write_text("#!/bin/sh\n"
                       f'"{PG_DUMP}" "$@"\n'
                       'echo "pg_dump: error: query failed: injected fault" >&2\n'
                       "exit 0\n")
    wrapper.chmod(0o755)
    rc, res, _proc = backup(lab_env, db, dest, backup_id="bad", pg_dump_path=str(wrapper))
    assert rc != 0
    assert "pg_dump wrote errors although it exited 0" in res["msg"]
    assert "injected fault" in res["msg"]
    assert dest.exists() and entries(dest) == []


def test_failed_pg_dump_leaves_no_files(lab_env, db, dest, tmp_path):
    wrapper = tmp_path / "pg_dump_dies"
    wrapper.write_text("#!/bin/sh\n"
                       'case "$1" in --version) exec "' + PG_DUMP + '" "$@";; esac\n'
                       '"' + PG_DUMP + '" "$@" | head -c 100\n'
                       'echo "pg_dump: error: injected crash" >&2\nexit 1\n')
    wrapper.chmod(0o755)
    rc, res, _proc = backup(lab_env, db, dest, format="custom", pg_dump_path=str(wrapper))
    assert rc != 0
    assert "pg_dump exited with 1" in res["msg"] and "injected crash" in res["msg"]
    assert entries(dest) == []


def test_stale_partials_of_a_crashed_run_are_removed(lab_env, db, dest):
    dest.mkdir()
    (dest / ".old.dump.partial").write_bytes(b"PGDMP half")
    (dest / ".old2.dir.partial").mkdir()
    (dest / ".old2.dir.partial" / "toc.dat").write_bytes(b"x")
    rc, res, _proc = backup(lab_env, db, dest, "--check", backup_id="s1")
    assert res["stale_removed"] == [".old.dump.partial", ".old2.dir.partial"]
    assert (dest / ".old.dump.partial").exists()
    rc, res, _proc = backup(lab_env, db, dest, backup_id="s1")
    assert rc == 0, res
    assert res["stale_removed"] == [".old.dump.partial", ".old2.dir.partial"]
    assert entries(dest) == ["s1.dump", "s1.manifest.json"]


def test_existing_but_corrupt_backup_id_fails_and_names_it(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, backup_id="c1")
    assert rc == 0, res
    path = dest / "c1.dump"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    rc, res, _proc = backup(lab_env, db, dest, backup_id="c1")
    assert rc != 0
    assert "backup c1 already exists" in res["msg"]
    assert "sha256 mismatch" in res["msg"]
    assert entries(dest) == ["c1.dump", "c1.manifest.json"]


def age_manifest(dest: Path, backup_id: str, days: float) -> None:
    path = dest / f"{backup_id}.manifest.json"
    manifest = json.loads(path.read_text())
    when = datetime.now(UTC) - timedelta(days=days)
    manifest["finished_at"] = when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    path.write_text(json.dumps(manifest))


def test_retention_by_count(lab_env, db, dest):
    for i, days in enumerate((4, 3, 2)):
        rc, res, _proc = backup(lab_env, db, dest, backup_id=f"k{i}")
        assert rc == 0, res
        age_manifest(dest, f"k{i}", days)
    # Another database's backup in the same directory never counts.
    (dest / "zz.manifest.json").write_text(json.dumps({
        "manifest_version": 1, "backup_id": "zz", "database": "other", "archive": "zz.dump",
        "finished_at": "2020-01-01T00:00:00.000Z", "verified": True, "sha256": "0"}))
    rc, res, _proc = backup(lab_env, db, dest, "--check", "--diff", backup_id="k3",
                            retention_count=2)
    assert rc == 0, res
    assert res["deleted"] == ["k0", "k1"]
    assert res["diff"]["before"] == "k0\nk1\nk2\n" and res["diff"]["after"] == "k2\nk3\n"
    assert "k0.dump" in entries(dest)
    rc, res, _proc = backup(lab_env, db, dest, backup_id="k3", retention_count=2)
    assert rc == 0, res
    assert res["deleted"] == ["k0", "k1"]
    assert entries(dest) == ["k2.dump", "k2.manifest.json", "k3.dump", "k3.manifest.json",
                             "zz.manifest.json"]
    rc, res, _proc = backup(lab_env, db, dest, backup_id="k3", retention_count=2)
    assert rc == 0 and res["changed"] is False and res["deleted"] == []


def test_retention_by_age_keeps_the_newest_verified(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, backup_id="v-old")
    assert rc == 0 and res["verified"] is True
    age_manifest(dest, "v-old", 10)
    rc, res, _proc = backup(lab_env, db, dest, backup_id="u-mid", verify=False)
    assert rc == 0 and res["verified"] is False
    age_manifest(dest, "u-mid", 5)
    rc, res, _proc = backup(lab_env, db, dest, "--check", backup_id="u-new", verify=False,
                            retention_max_age="1d")
    assert rc == 0 and res["deleted"] == ["u-mid"]
    rc, res, _proc = backup(lab_env, db, dest, backup_id="u-new", verify=False,
                            retention_max_age="1d", retention_count=1)
    assert rc == 0, res
    # u-mid is too old and beyond the newest one; v-old is older still but the newest
    # verified backup, so it stays.
    assert res["deleted"] == ["u-mid"]
    assert {r["backup_id"] for r in res["retention"]} == {"u-mid"}
    assert entries(dest) == ["u-new.dump", "u-new.manifest.json", "v-old.dump",
                             "v-old.manifest.json"]


def test_bad_retention_age_is_refused_before_anything_runs(lab_env, db, dest):
    rc, res, _proc = backup(lab_env, db, dest, retention_max_age="7 days")
    assert rc != 0 and "cannot read the age '7 days'" in res["msg"]
    assert not dest.exists()


@pytest.mark.parametrize("case", ["password", "unreachable", "database"])
def test_connection_errors_are_clear_and_write_nothing(lab_env, db, dest, case):
    args: dict[str, Any] = {"url": db_url(lab_env, db), "dest": str(dest)}
    if case == "password":
        args["login_password"] = "wrong-" + uuid.uuid4().hex
        expected = "password authentication failed"
    elif case == "unreachable":
        args["login_port"] = 1
        expected = "check host and port"
    else:
        args["database"] = f"bk_missing_{uuid.uuid4().hex[:8]}"
        expected = f'database "{args["database"]}" does not exist'
    for flags in ((), ("--check",)):
        rc, res, proc = run_module(lab_env, "pg_backup", args, *flags)
        assert rc != 0
        assert res["msg"].startswith("Failed to back up database ")
        assert "cannot connect to PostgreSQL" in res["msg"]
        assert expected in res["msg"]
        assert lab_env["LAB_PG_APP_PASSWORD"] not in proc.stdout + proc.stderr
        assert not dest.exists()


@pytest.fixture
def canary_role(lab_env: dict[str, str]) -> Iterator[tuple[str, str]]:
    """A login role whose password is a canary value, owning its scratch database."""
    role, password = f"bk_canary_{uuid.uuid4().hex[:8]}", f"canary-{uuid.uuid4()}"
    admin = connect(lab_env["LAB_PG_ADMIN_URL"])
    with admin.cursor() as cur:
        cur.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(role)),
                    (password,))
    try:
        yield role, password
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


def test_canary_password_never_appears_at_vvvv(lab_env, canary_role, tmp_path):
    """A playbook whose secrets come from the environment, as a deployment's come from a
    vault (the ad hoc CLI would echo its own -a argument at -vvvv, which is not a leak of
    the module's). Successful, check-mode, diff and failing runs."""
    role, password = canary_role
    with scratch_db(lab_env, "bk", owner=role) as name:
        tail = db_url(lab_env, name).split("@", 1)[1]
        runs = [
            ({"url": "{{ lookup('env', 'BK_URL') }}"}, ("--check", "--diff")),
            ({"url": "{{ lookup('env', 'BK_URL') }}"}, ("--diff",)),
            ({"url": f"postgresql://{role}@{tail}",
              "login_password": "{{ lookup('env', 'BK_PASSWORD') }}"}, ()),
            ({"url": "{{ lookup('env', 'BK_URL') }}", "database": "bk_missing_canary"}, ()),
            ({"url": "{{ lookup('env', 'BK_URL') }}", "compression": "zstd"}, ()),
        ]
        for i, (args, flags) in enumerate(runs):
            dest = tmp_path / f"b{i}"
            playbook = tmp_path / f"canary{i}.yml"
            playbook.write_text(json.dumps([{
                "name": "Canary", "hosts": "localhost", "gather_facts": False,
                "tasks": [{"name": "Back up", "prodready.deploy.pg_backup":
                           {**args, "dest": str(dest)}}]}]))
            env = ansible_env(lab_env, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.default",
                              BK_URL=f"postgresql://{role}:{password}@{tail}",
                              BK_PASSWORD=password)
            proc = subprocess.run([str(ANSIBLE) + "-playbook", str(playbook), "-vvvv", *flags],
                                  capture_output=True, text=True, check=False, timeout=300,
                                  env=env)
            assert (proc.returncode == 0) == (i < 3), proc.stdout[-3000:]
            assert password not in proc.stdout + proc.stderr, f"run {i} leaked the password"
            assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in proc.stdout
            for path in dest.rglob("*") if dest.exists() else []:
                if path.is_file():
                    assert password.encode() not in path.read_bytes(), path


def test_custom_archive_restores_in_parallel(lab_env, db, dest):
    """The custom archive restores with `pg_restore -j` (pg_dump writes the file itself, so
    its table of contents keeps the data offsets the workers seek to)."""
    rc, res, _proc = backup(lab_env, db, dest, backup_id="par")
    assert rc == 0, res
    with scratch_db(lab_env, "bk") as copy:
        url = db_url(lab_env, copy)
        proc = subprocess.run([PG_RESTORE, "--jobs=2", "--exit-on-error", "--no-owner",
                               "--dbname", url, res["path"]],
                              capture_output=True, text=True, check=False)
        assert proc.returncode == 0, proc.stderr
        assert live_counts(lab_env, copy) == EXPECTED_TABLES
