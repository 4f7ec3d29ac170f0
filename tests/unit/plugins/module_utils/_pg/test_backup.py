# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup's decisions without a server: compression arguments per pg_dump version,
spec checks, stderr classification, pg_restore --list parsing, retention, the directory
lock and the clean-up of a failed dump."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg import archive, backup
from ansible_collections.prodready.deploy.plugins.module_utils._pg.backup import (
    BackupBusyError,
    BackupInputError,
    BackupSpec,
    ExistingBackupError,
    UnsupportedCompressionError,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    ConnParams,
    PgError,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(("text", "major", "version"), [
    ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", 15,
     "15.18 (Debian 15.18-0+deb12u1)"),
    ("pg_dump (PostgreSQL) 16.4\n", 16, "16.4"),
    ("pg_dump (PostgreSQL) 17beta2\n", 17, "17beta2"),
    ("pg_dump (PostgreSQL) 9.6.24\n", 9, "9.6.24"),
])
def test_parse_pg_dump_version(text, major, version):
    assert backup.parse_pg_dump_version(text) == (major, version)


def test_parse_pg_dump_version_refuses_other_text():
    with pytest.raises(BackupInputError, match="cannot read the version"):
        backup.parse_pg_dump_version("bash: pg_dump: command not found")


@pytest.mark.parametrize(("method", "level", "major", "args", "recorded"), [
    (None, None, 15, [], {"method": "gzip", "level": None}),
    (None, 5, 15, ["--compress=5"], {"method": "gzip", "level": 5}),
    ("gzip", None, 15, [], {"method": "gzip", "level": None}),
    ("gzip", 9, 15, ["--compress=9"], {"method": "gzip", "level": 9}),
    ("none", None, 15, ["--compress=0"], {"method": "none", "level": None}),
    ("none", None, 16, ["--compress=none"], {"method": "none", "level": None}),
    ("gzip", 3, 16, ["--compress=gzip:3"], {"method": "gzip", "level": 3}),
    ("lz4", None, 16, ["--compress=lz4"], {"method": "lz4", "level": None}),
    ("zstd", 19, 17, ["--compress=zstd:19"], {"method": "zstd", "level": 19}),
    (None, None, 16, [], {"method": "gzip", "level": None}),
])
def test_compression_args(method, level, major, args, recorded):
    assert backup.compression_args(method, level, major) == (args, recorded)


@pytest.mark.parametrize(("method", "level", "major", "message"), [
    ("lz4", None, 15, "pg_dump 15.18 does not support lz4 compression: pg_dump before 16"
                      " compresses the custom and directory formats with gzip only; choose one"
                      " of none, gzip here"),
    ("zstd", 3, 14, "does not support zstd compression"),
    ("gzip", 0, 15, r"compression_level 0 is out of range for gzip: use 1-9 \(or compression"
                    " 'none'"),
    ("gzip", 10, 16, "out of range for gzip: use 1-9"),
    ("lz4", 13, 16, "out of range for lz4: use 1-12"),
    ("zstd", 23, 16, "out of range for zstd: use 1-22"),
    ("brotli", None, 16, "unknown compression 'brotli'"),
])
def test_compression_refused(method, level, major, message):
    with pytest.raises(UnsupportedCompressionError, match=message):
        backup.compression_args(method, level, major, "15.18" if major == 15 else "")


def test_no_level_with_none():
    with pytest.raises(BackupInputError, match="cannot be combined with compression 'none'"):
        backup.compression_args("none", 3, 16)


@pytest.mark.parametrize(("changes", "message"), [
    ({"format": "tar"}, "unknown format 'tar'"),
    ({"jobs": 0}, "jobs must be at least 1"),
    ({"jobs": 2}, "jobs=2 needs format 'directory'"),
    ({"backup_id": "../etc/passwd"}, "invalid backup id"),
    ({"label": "a b"}, "invalid backup id 'a b'"),
    ({"dest": ""}, "dest .* is required"),
])
def test_check_spec_refuses(changes, message):
    spec = BackupSpec(**{"dest": "/backups", **changes})
    with pytest.raises(BackupInputError, match=message):
        backup.check_spec(spec)


def test_errors_are_pg_errors():
    """pg_restore's safety backup catches PgError for connection and backup failures alike."""
    assert issubclass(backup.BackupError, PgError)
    assert issubclass(backup.TestRestoreError, backup.VerifyError)


def prepared(major: int = 15, compress: list[str] | None = None) -> Any:
    return backup._Prepared("/usr/bin/pg_dump", "/usr/bin/pg_restore", f"{major}.1", major,
                            compress or [], {"method": "gzip", "level": None})


@pytest.mark.parametrize(("spec", "argv"), [
    (BackupSpec(dest="/b"), ["/usr/bin/pg_dump", "--format=custom", "--no-password",
                             "--snapshot=S", "--file=/b/.x.dir.partial"]),
    (BackupSpec(dest="/b", format="directory", jobs=3),
     ["/usr/bin/pg_dump", "--format=directory", "--no-password", "--snapshot=S",
      "--jobs=3", "--file=/b/.x.dir.partial"]),
])
def test_dump_command_holds_no_connection_settings(spec, argv):
    assert backup.dump_command(prepared(), spec, "S", "/b/.x.dir.partial") == argv


@pytest.mark.parametrize(("value", "seconds"), [
    ("7d", 7 * 86400), ("12h", 43200), ("30m", 1800), ("45s", 45), ("2w", 1209600),
    ("3600", 3600), (90, 90), ("1.5h", 5400), (None, None), ("", None), (" 7D ", 604800),
])
def test_parse_age(value, seconds):
    assert backup.parse_age(value) == seconds


@pytest.mark.parametrize("value", ["7 days", "d", "-1h", "0", "1y"])
def test_parse_age_refuses(value):
    with pytest.raises(BackupInputError):
        backup.parse_age(value)


@pytest.mark.parametrize(("stderr", "errors", "warnings"), [
    ("", [], []),
    ("pg_dump: warning: there are circular foreign-key constraints on this table:\n"
     "pg_dump: detail: t\n",
     [], ["pg_dump: warning: there are circular foreign-key constraints on this table:"
          " pg_dump: detail: t"]),
    ("pg_dump: error: query failed: ERROR:  permission denied for table t\n"
     "pg_dump: detail: Query was: LOCK TABLE public.t IN ACCESS SHARE MODE\n",
     ["pg_dump: error: query failed: ERROR:  permission denied for table t pg_dump: detail:"
      " Query was: LOCK TABLE public.t IN ACCESS SHARE MODE"], []),
    ("pg_dump: last built-in OID is 16383\npg_dump: error: injected\n",
     ["pg_dump: error: injected"], []),
])
def test_error_lines(stderr, errors, warnings):
    assert backup._error_lines(stderr, "pg_dump") == (errors, warnings)


LISTING = """;
; Archive created at 2026-11-27 20:53:33 UTC
;
215; 1259 16390 TABLE public t1 app
3355; 0 16390 TABLE DATA public t1 app
3356; 0 16395 TABLE DATA public empty_t app
3357; 0 16399 TABLE DATA other Odd Name app
3358; 0 16401 TABLE DATA My Schema t.2 Jane Doe
3190; 2606 16394 CONSTRAINT public t1 t1_pkey app
"""


@pytest.mark.parametrize(("tables", "missing"), [
    (["public.t1", "public.empty_t", "other.Odd Name", "My Schema.t.2"], []),
    (["public.t1", "public.gone"], ["public.gone"]),
    # The owner is not part of the table name: "public.t1 app" is not listed.
    (["public.t1 app"], ["public.t1 app"]),
    (["public.t2"], ["public.t2"]),
])
def test_missing_table_data_copes_with_spaces_and_dots(tables, missing):
    assert backup.missing_table_data(LISTING, tables) == missing


def test_scratch_name_is_a_safe_identifier():
    name = backup.scratch_name('we"ird-db name' + "x" * 80)
    assert name.startswith("we_ird_db_name") and len(name) <= 63
    assert name[-16:-8] == "_verify_" and int(name[-8:], 16) >= 0


def manifest(backup_id: str, age_h: float, verified: bool = True, db: str = "app"
             ) -> dict[str, Any]:
    return {"backup_id": backup_id, "database": db, "verified": verified,
            "archive": f"{backup_id}.dump",
            "finished_at": archive.iso(NOW - timedelta(hours=age_h))}


@pytest.mark.parametrize(("backups", "keep", "max_age_h", "deleted"), [
    # keep N: the oldest go
    ([("a", 30), ("b", 20), ("c", 10)], 2, None, ["a"]),
    ([("a", 30), ("b", 20), ("c", 10)], 5, None, []),
    # max age
    ([("a", 30), ("b", 20), ("c", 10)], None, 24, ["a"]),
    # both limits apply
    ([("a", 30), ("b", 20), ("c", 10), ("d", 1)], 3, 15, ["a", "b"]),
    # no limit: nothing
    ([("a", 3000)], None, None, []),
    # the newest verified backup stays even when beyond the count and too old
    ([("a", 30, True), ("b", 20, False), ("c", 10, False)], 1, None, ["b"]),
    ([("a", 300, True), ("b", 200, False)], None, 1, ["b"]),
    # an older verified one is not protected once a newer verified one exists
    ([("a", 30, True), ("b", 20, True), ("c", 10, False)], 1, None, ["a"]),
])
def test_retention_plan(backups, keep, max_age_h, deleted):
    manifests = [manifest(b[0], b[1], *b[2:]) for b in backups]
    plan = backup.retention_plan(manifests, keep,
                                 None if max_age_h is None else max_age_h * 3600, NOW)
    assert [d["backup_id"] for d in plan] == deleted
    assert all(d["reason"] for d in plan)


def test_retention_refuses_zero():
    with pytest.raises(BackupInputError, match="retention_count must be at least 1"):
        backup.retention_plan([], 0, None)


def write_backup(dest: Path, m: dict[str, Any]) -> None:
    (dest / m["archive"]).write_bytes(b"PGDMP" + m["backup_id"].encode())
    full = {**m, "manifest_version": 1,
            "sha256": archive.file_sha256(str(dest / m["archive"]))}
    (dest / f"{m['backup_id']}.manifest.json").write_text(json.dumps(full))


def test_apply_retention_deletes_only_complete_backups_of_the_database(tmp_path):
    for m in (manifest("a", 30), manifest("b", 20), manifest("c", 10),
              manifest("o", 99, db="other")):
        write_backup(tmp_path, m)
    (tmp_path / "orphan.dump").write_bytes(b"no manifest")  # incomplete: never counted
    dry = backup.apply_retention(str(tmp_path), "app", 1, None, now=NOW, dry_run=True)
    assert [d["backup_id"] for d in dry] == ["a", "b"]
    assert len(os.listdir(tmp_path)) == 9
    done = backup.apply_retention(str(tmp_path), "app", 1, None, now=NOW)
    assert done == dry
    assert sorted(os.listdir(tmp_path)) == ["c.dump", "c.manifest.json", "o.dump",
                                            "o.manifest.json", "orphan.dump"]


def test_existing_backup_is_checked(tmp_path):
    write_backup(tmp_path, manifest("a", 1))
    assert backup._existing(str(tmp_path), "a", "app")["backup_id"] == "a"
    assert backup._existing(str(tmp_path), "missing", "app") is None
    with pytest.raises(ExistingBackupError, match="for database 'app', not 'other'"):
        backup._existing(str(tmp_path), "a", "other")
    (tmp_path / "a.dump").write_bytes(b"flipped")
    with pytest.raises(ExistingBackupError, match=r"backup a already exists .*\(sha256 mismatch"):
        backup._existing(str(tmp_path), "a", "app")


def test_dest_lock_is_exclusive_and_leaves_no_file(tmp_path):
    with backup.dest_lock(str(tmp_path)), \
            pytest.raises(BackupBusyError, match="another backup is running"), \
            backup.dest_lock(str(tmp_path)):
        pass
    with backup.dest_lock(str(tmp_path)):
        pass
    assert os.listdir(tmp_path) == []


def test_stale_partials(tmp_path):
    (tmp_path / ".a.dump.partial").write_bytes(b"")
    (tmp_path / ".b.dir.partial").mkdir()
    (tmp_path / "c.dump").write_bytes(b"")
    (tmp_path / "visible.partial").write_bytes(b"")
    assert backup.stale_partials(str(tmp_path)) == [".a.dump.partial", ".b.dir.partial"]
    assert backup.stale_partials(str(tmp_path / "missing")) == []


class FakeCursor:
    def __init__(self, script: dict[str, Any]) -> None:
        self.script, self.last = script, None

    def __enter__(self) -> FakeCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def execute(self, query: Any, args: Any = None) -> None:
        self.last = str(query)

    def fetchone(self) -> Any:
        for key, value in self.script.items():
            if key in self.last:
                return value
        return (1,)

    def fetchall(self) -> Any:
        return self.script.get("fetchall", [])


class FakeConn:
    def __init__(self, script: dict[str, Any]) -> None:
        self.script = script

    def cursor(self) -> FakeCursor:
        return FakeCursor(self.script)

    def set_session(self, **_kw: Any) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def cancel(self) -> None:
        pass


@pytest.fixture
def fake_server(monkeypatch, tmp_path):
    script = {"server_version": ("15.18", 150018), "pg_export_snapshot": ("SNAP-1",),
              "rolcreatedb": (False,), "to_regclass": (False,)}
    monkeypatch.setattr(backup, "connect", lambda *_a, **_k: FakeConn(script))
    monkeypatch.setattr(backup, "pg_dump_version", lambda _p: (15, "15.18"))
    monkeypatch.setattr(backup, "find_program", lambda name, explicit=None: explicit or name)
    return script


def test_test_restore_without_createdb_writes_nothing(fake_server, tmp_path):
    spec = BackupSpec(dest=str(tmp_path / "b"), test_restore=True)
    with pytest.raises(backup.BackupPrivilegeError, match="needs the CREATEDB privilege"):
        backup.create_backup(ConnParams(host="h", dbname="app"), spec)
    assert not (tmp_path / "b").exists()


def test_server_newer_than_pg_dump_is_refused(fake_server, tmp_path):
    fake_server["server_version"] = ("16.2", 160002)
    with pytest.raises(BackupInputError, match="pg_dump 15.18 cannot dump a PostgreSQL 16.2"):
        backup.create_backup(ConnParams(host="h", dbname="app"),
                             BackupSpec(dest=str(tmp_path / "b")))
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize(("script", "message"), [
    ("echo 'pg_dump: error: connection lost' >&2; exit 1",
     "pg_dump exited with 1: pg_dump: error: connection lost"),
    ("printf PGDMP; echo 'pg_dump: error: injected' >&2; exit 0",
     "pg_dump wrote errors although it exited 0: pg_dump: error: injected"),
])
def test_failed_dump_removes_its_partial(fake_server, tmp_path, script, message):
    fake = tmp_path / "pg_dump"
    fake.write_text(f"#!/bin/sh\n{script}\n")
    fake.chmod(0o755)
    dest = tmp_path / "b"
    dest.mkdir()
    (dest / ".crashed.dump.partial").write_bytes(b"old")
    progress: list[str] = []
    with pytest.raises(backup.DumpError, match=message):
        backup.create_backup(ConnParams(host="h", dbname="app"),
                             BackupSpec(dest=str(dest), pg_dump=str(fake), backup_id="x"),
                             progress.append)
    assert os.listdir(dest) == []
    assert "removing .crashed.dump.partial, left by an interrupted backup" in progress
