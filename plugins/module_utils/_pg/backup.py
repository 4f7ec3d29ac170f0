# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Verified PostgreSQL backups with pg_dump: one consistent snapshot, atomic files, a manifest.

How a backup is made (``create_backup``):

1. Everything that can be refused is refused before anything runs: the spec, the client
   programs and their version (lz4/zstd need pg_dump 16), the connection (typed errors of
   ``conn.py``), pg_dump against a newer server, CREATEDB for a test restore.
2. A REPEATABLE READ, READ ONLY transaction exports its snapshot; pg_dump runs with
   ``--snapshot`` while the same transaction counts the rows of every table and reads
   ``alembic_version``. The counts therefore describe exactly what the archive holds.
3. pg_dump writes ``.<id>.dump.partial`` (custom) or ``.<id>.dir.partial`` (directory)
   itself - not through a pipe, so the custom format's table of contents keeps the data
   offsets that let pg_restore seek to each table (instead of scanning, per -j worker) -
   then fsync and the sha256 (per file for the directory format).
4. pg_dump failed when it exited non-zero *or* wrote ``pg_dump: error:`` (it can exit 0
   after writing errors). Its warnings are kept.
5. Verification of the partial archive: ``pg_restore --list`` must succeed and list the
   TABLE DATA of every counted table; optionally a test restore into a scratch database
   ``<db>_verify_<8 hex>`` (always dropped) whose row counts must equal the manifest's.
6. Only a verified archive is renamed to its final name; the manifest is written last
   (``archive.write_json_atomic``). Any failure removes what this run wrote.

One run at a time per backup directory (an exclusive, non-blocking ``flock`` on the
directory); under that lock, ``.partial`` entries left by a crashed run are removed and
reported.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._pg import archive
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    ConnParams,
    PgError,
    connect,
    find_program,
    scrub,
)

try:
    from psycopg2 import sql
except ImportError:  # pragma: no cover - conn.require_psycopg2() reports it
    sql = None

FORMATS = ("custom", "directory")
COMPRESSION_METHODS = ("none", "gzip", "lz4", "zstd")
# Levels pg_dump accepts for each method (pg_dump 16 docs; gzip 0 is "none").
COMPRESSION_LEVELS = {"gzip": (1, 9), "lz4": (1, 12), "zstd": (1, 22)}
# pg_dump learned --compress=METHOD[:LEVEL] with lz4 and zstd in PostgreSQL 16.
METHODS_SINCE = 16
SNAPSHOT_PLACEHOLDER = "<exported snapshot>"
_CHUNK = 1 << 20
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class BackupError(PgError):
    """A backup could not be planned, made or verified. Messages never hold a secret."""


class BackupInputError(BackupError):
    """The backup spec is wrong or not supported here; nothing ran."""


class UnsupportedCompressionError(BackupInputError):
    """The compression method or level is not supported by this pg_dump."""


class BackupPrivilegeError(BackupError):
    """The connecting role lacks a privilege the backup needs (CREATEDB for a test restore)."""


class BackupBusyError(BackupError):
    """Another backup holds the backup directory."""


class ExistingBackupError(BackupError):
    """A backup with the requested id exists but is corrupt or belongs to another database."""


class DumpError(BackupError):
    """pg_dump failed, or wrote errors although it exited 0."""


class VerifyError(BackupError):
    """The archive did not pass ``pg_restore --list``."""


class TestRestoreError(VerifyError):
    """The test restore failed, or its row counts differ from the manifest."""

    __test__ = False  # not a pytest test class


@dataclass
class BackupSpec:
    """What to back up where. See the module's documentation for each option."""

    dest: str
    format: str = "custom"
    compression: str | None = None
    compression_level: int | None = None
    jobs: int = 1
    backup_id: str | None = None
    label: str | None = None
    verify: bool = True
    test_restore: bool = False
    pg_dump: str | None = None
    pg_restore: str | None = None


@dataclass
class _Prepared:
    """What ``_prepare`` found out before anything runs."""

    pg_dump: str
    pg_restore: str | None
    pg_dump_version: str
    pg_dump_major: int
    compress_args: list[str]
    compression: dict[str, Any]


# ---------------------------------------------------------------------------- inputs


def parse_pg_dump_version(text: str) -> tuple[int, str]:
    """(major, version text) from ``pg_dump --version``: ``pg_dump (PostgreSQL) 15.18 (..)``."""
    match = re.search(r"\(PostgreSQL\)\s+((\d+)(?:\.\d+)*\S*(?:\s+\(.*\))?)", text)
    if not match:
        raise BackupInputError(f"cannot read the version of pg_dump from {text.strip()!r}")
    return int(match.group(2)), match.group(1).strip()


def pg_dump_version(program: str) -> tuple[int, str]:
    try:
        proc = subprocess.run([program, "--version"], capture_output=True, text=True,
                              timeout=30, check=False)
    except OSError as exc:
        raise BackupInputError(f"cannot run {program} --version: {exc}") from None
    if proc.returncode != 0:
        raise BackupInputError(f"{program} --version exited with {proc.returncode}:"
                               f" {proc.stderr.strip()[:200]}")
    return parse_pg_dump_version(proc.stdout)


def supported_methods(major: int) -> tuple[str, ...]:
    return COMPRESSION_METHODS if major >= METHODS_SINCE else ("none", "gzip")


def compression_args(method: str | None, level: int | None, major: int, version: str = ""
                     ) -> tuple[list[str], dict[str, Any]]:
    """pg_dump arguments and the manifest's ``compression`` for a method and level.

    ``method=None`` means pg_dump's default (gzip at zlib's default level for the custom
    and directory formats), or gzip at ``level`` when a level is given.
    """
    label = f"pg_dump {version or major}"
    if method is not None and method not in COMPRESSION_METHODS:
        raise UnsupportedCompressionError(
            f"unknown compression {method!r}: use one of {', '.join(COMPRESSION_METHODS)}")
    if method == "none":
        if level is not None:
            raise BackupInputError("compression_level cannot be combined with compression"
                                   " 'none'")
        return (["--compress=0"] if major < METHODS_SINCE else ["--compress=none"],
                {"method": "none", "level": None})
    effective = method or "gzip"
    if effective not in supported_methods(major):
        raise UnsupportedCompressionError(
            f"{label} does not support {effective} compression: pg_dump before"
            f" {METHODS_SINCE} compresses the custom and directory formats with gzip only;"
            f" choose one of {', '.join(supported_methods(major))} here, or point"
            f" pg_dump_path at pg_dump {METHODS_SINCE} or newer for lz4 and zstd")
    if level is not None:
        low, high = COMPRESSION_LEVELS[effective]
        if not low <= level <= high:
            raise UnsupportedCompressionError(
                f"compression_level {level} is out of range for {effective}: use {low}-{high}"
                + (" (or compression 'none' for no compression)" if effective == "gzip"
                   else ""))
    if method is None and level is None:
        return [], {"method": "gzip", "level": None}
    if major < METHODS_SINCE:
        return ([f"--compress={level}"] if level is not None else [],
                {"method": "gzip", "level": level})
    value = effective if level is None else f"{effective}:{level}"
    return [f"--compress={value}"], {"method": effective, "level": level}


def check_spec(spec: BackupSpec) -> None:
    if spec.format not in FORMATS:
        raise BackupInputError(f"unknown format {spec.format!r}: use custom or directory")
    if spec.jobs < 1:
        raise BackupInputError("jobs must be at least 1")
    if spec.jobs > 1 and spec.format != "directory":
        raise BackupInputError(f"jobs={spec.jobs} needs format 'directory': pg_dump dumps in"
                               " parallel only into a directory archive")
    if not spec.dest:
        raise BackupInputError("dest (the backup directory) is required")
    try:
        if spec.backup_id is not None:
            archive.check_backup_id(spec.backup_id)
        if spec.label is not None:
            archive.check_backup_id(spec.label)
    except archive.ArchiveError as exc:
        raise BackupInputError(str(exc)) from None


def _prepare(spec: BackupSpec) -> _Prepared:
    check_spec(spec)
    pg_dump = find_program("pg_dump", spec.pg_dump)
    pg_restore = (find_program("pg_restore", spec.pg_restore)
                  if spec.verify or spec.test_restore else None)
    major, version = pg_dump_version(pg_dump)
    args, compression = compression_args(spec.compression, spec.compression_level, major,
                                         version.split()[0])
    return _Prepared(pg_dump, pg_restore, version, major, args, compression)


def dump_command(prep: _Prepared, spec: BackupSpec, snapshot: str, target: str | None
                 ) -> list[str]:
    """pg_dump's argv. The connection comes from the environment (``client_env``), so the
    argv holds no host, user, password or connection string."""
    argv = [prep.pg_dump, f"--format={spec.format}", "--no-password",
            f"--snapshot={snapshot}", *prep.compress_args]
    if spec.format == "directory":
        argv.append(f"--jobs={spec.jobs}")
    # pg_dump writes the file itself, never to a pipe: a custom-format archive written to a
    # pipe has no data offsets in its table of contents, so pg_restore (each -j worker, or a
    # selective restore) must scan the archive for every table instead of seeking to it.
    argv.append(f"--file={target}")
    return argv


def backup_id_for(conn: ConnParams, spec: BackupSpec, now: datetime | None = None) -> str:
    if spec.backup_id:
        return spec.backup_id
    return archive.make_backup_id(conn.dbname or "db", now or archive.utc_now(), spec.label)


def partial_path(dest: str, backup_id: str, fmt: str) -> str:
    return os.path.join(dest, f".{backup_id}{archive.FORMAT_SUFFIX[fmt]}.partial")


def parse_age(value: str | float | int | None) -> float | None:
    """Seconds from ``7d``, ``12h``, ``30m``, ``45s``, ``2w`` or a number of seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", str(value).lower())
        if not match:
            raise BackupInputError(f"cannot read the age {value!r}: use a number of seconds or"
                                   " a number with s, m, h, d or w (e.g. 7d, 12h, 30m)")
        seconds = float(match.group(1)) * _AGE_UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise BackupInputError(f"the age {value!r} must be more than 0 seconds")
    return seconds


# ---------------------------------------------------------------------------- database


_TABLES_SQL = r"""
SELECT n.nspname, c.relname, c.reltuples::bigint
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype = 'e')
ORDER BY 1, 2
"""


def list_tables(cur: Any) -> list[tuple[str, str, int | None]]:
    """(schema, table, estimated rows or None) of every table whose data pg_dump dumps:
    ordinary tables outside the system schemas, not temporary, not part of an extension.
    Partitioned parents hold no rows of their own; their partitions are listed."""
    cur.execute(_TABLES_SQL)
    return [(schema, table, None if est is None or est < 0 else int(est))
            for schema, table, est in cur.fetchall()]


def count_rows(cur: Any, tables: list[tuple[str, str]], cancelled: threading.Event | None = None
               ) -> dict[str, int]:
    counts = {}
    for schema, table in tables:
        if cancelled is not None and cancelled.is_set():
            break
        cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(
            sql.Identifier(schema), sql.Identifier(table)))
        counts[f"{schema}.{table}"] = cur.fetchone()[0]
    return counts


def alembic_revision(cur: Any) -> str | list[str] | None:
    """``alembic_version.version_num`` on the search path: None when the table is absent or
    empty, a string for one row, a sorted list for several (branches)."""
    cur.execute("SELECT to_regclass('alembic_version') IS NOT NULL")
    if not cur.fetchone()[0]:
        return None
    cur.execute("SELECT version_num FROM alembic_version ORDER BY 1")
    rows = [row[0] for row in cur.fetchall()]
    if not rows:
        return None
    return rows[0] if len(rows) == 1 else rows


def _server_info(cur: Any) -> tuple[str, int]:
    cur.execute("SELECT current_setting('server_version'),"
                " current_setting('server_version_num')::int")
    version, num = cur.fetchone()
    return version, num


def _check_versions(prep: _Prepared, server_version: str, server_num: int) -> None:
    server_major = server_num // 10000 if server_num >= 100000 else server_num // 100
    if prep.pg_dump_major < server_major:
        raise BackupInputError(
            f"pg_dump {prep.pg_dump_version} cannot dump a PostgreSQL {server_version} server"
            f" (pg_dump refuses servers newer than itself): install the PostgreSQL"
            f" {server_major} client and set pg_dump_path and pg_restore_path")


def _check_createdb(cur: Any, conn: ConnParams) -> None:
    cur.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
    row = cur.fetchone()
    if not row or not row[0]:
        raise BackupPrivilegeError(
            f"test_restore needs the CREATEDB privilege to create a scratch database, and"
            f" {conn.user or 'the connecting role'} lacks it: ALTER ROLE ... CREATEDB, connect"
            f" as a role that has it, or set test_restore=false")


# ---------------------------------------------------------------------------- files


def stale_partials(dest: str) -> list[str]:
    """Names of ``.partial`` entries in ``dest`` (left by a crashed run)."""
    if not os.path.isdir(dest):
        return []
    return sorted(name for name in os.listdir(dest)
                  if name.startswith(".") and name.endswith(".partial"))


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    elif os.path.lexists(path):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _ensure_dest(dest: str) -> None:
    if os.path.isdir(dest):
        return
    if os.path.lexists(dest):
        raise BackupInputError(f"dest {dest} exists and is not a directory")
    try:
        os.makedirs(dest, mode=0o700)
        os.chmod(dest, 0o700)  # makedirs' mode is filtered by the umask
    except OSError as exc:
        raise BackupInputError(f"cannot create the backup directory {dest}: {exc}") from None


@contextlib.contextmanager
def dest_lock(dest: str) -> Iterator[None]:
    """An exclusive flock on the backup directory itself (no lock file is left behind)."""
    fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BackupBusyError(f"another backup is running in {dest}; try again when it has"
                                  " finished") from None
        yield
    finally:
        os.close(fd)


def _existing(dest: str, backup_id: str, database: str | None) -> dict[str, Any] | None:
    """The complete backup ``backup_id`` in ``dest`` after checking its sha256, or None."""
    path = archive.manifest_path(dest, backup_id)
    if not os.path.exists(path):
        return None
    try:
        manifest = archive.read_manifest(path)
        archive.verify_checksum(manifest)
    except archive.ArchiveError as exc:
        raise ExistingBackupError(f"backup {backup_id} already exists in {dest} but is not"
                                  f" usable ({exc}); remove it or choose another backup_id"
                                  ) from None
    if database is not None and manifest.get("database") != database:
        raise ExistingBackupError(f"backup {backup_id} already exists in {dest} for database"
                                  f" {manifest.get('database')!r}, not {database!r}; choose"
                                  " another backup_id")
    return manifest


def _fsync_tree(path: str) -> None:
    """fsync a file, or every file and directory under ``path``."""
    if not os.path.isdir(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    for root, _dirs, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        archive.fsync_dir(root)


# ---------------------------------------------------------------------------- processes


def _error_lines(stderr: str, program: str) -> tuple[list[str], list[str]]:
    """(errors, warnings) a client program wrote; ``detail``/``hint`` lines follow theirs."""
    errors: list[str] = []
    warnings: list[str] = []
    last: list[str] | None = None
    for raw in stderr.splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(f"{program}: error:") or line.startswith(f"{program}: fatal:"):
            errors.append(line)
            last = errors
        elif line.startswith(f"{program}: warning:"):
            warnings.append(line)
            last = warnings
        elif last is not None and (line.startswith(f"{program}: detail:")
                                   or line.startswith(f"{program}: hint:")
                                   or line.startswith(("DETAIL:", "HINT:", "LINE ", "Command"))):
            last[-1] += " " + line
        elif re.match(r"(ERROR|FATAL|PANIC):", line):
            errors.append(line)
            last = errors
        else:
            last = None
    return errors, warnings


def _drain(stream: Any, sink: list[bytes]) -> None:
    for chunk in iter(lambda: stream.read(65536), b""):
        sink.append(chunk)


def _run(argv: list[str], env: dict[str, str], conn: ConnParams, program: str,
         timeout: float | None = None) -> tuple[int, str, list[str], list[str]]:
    """(exit code, stdout, errors, warnings) of a client program; stderr scrubbed."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, env=env,
                              timeout=timeout, check=False)
    except OSError as exc:
        raise BackupError(f"cannot run {argv[0]}: {exc}") from None
    stderr = scrub(proc.stderr.decode("utf-8", "replace"), conn)
    errors, warnings = _error_lines(stderr, program)
    if proc.returncode != 0 and not errors:
        errors = [line for line in stderr.strip().splitlines()[-3:] if line.strip()] or \
            [f"{program} exited with {proc.returncode} and wrote nothing to stderr"]
    return proc.returncode, proc.stdout.decode("utf-8", "replace"), errors, warnings


# ---------------------------------------------------------------------------- the dump


def _dump(conn: ConnParams, prep: _Prepared, spec: BackupSpec, pgc: Any, partial: str,
          say: Callable[[str], None]) -> dict[str, Any]:
    """Run pg_dump in the exported snapshot while the same transaction counts the rows."""
    cur = pgc.cursor()
    # The exporting transaction must outlive pg_dump's import of its snapshot; it is idle
    # while pg_dump runs, so no server-side timeout may end it.
    cur.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
    cur.execute("SET LOCAL statement_timeout = 0")
    # The counts run beside pg_dump and the server's COPY, which already keep about two
    # cores busy: parallel workers and JIT compilation would take CPU from the dump itself
    # (measured: +10% dump time with them, +5% without).
    cur.execute("SET LOCAL max_parallel_workers_per_gather = 0")
    cur.execute("SET LOCAL jit = off")
    cur.execute("SELECT pg_export_snapshot()")
    snapshot = cur.fetchone()[0]
    tables = [(schema, table) for schema, table, _est in list_tables(cur)]
    argv = dump_command(prep, spec, snapshot, partial)
    say(f"pg_dump of {conn.dbname} ({len(tables)} tables) in snapshot {snapshot}")

    counted: dict[str, Any] = {}
    cancelled = threading.Event()

    def count() -> None:
        try:
            counted["tables"] = count_rows(cur, tables, cancelled)
            counted["alembic_revision"] = alembic_revision(cur)
        except Exception as exc:  # noqa: BLE001 - handed to the main thread below
            counted["error"] = exc

    stderr_chunks: list[bytes] = []
    with conn.client_env() as env:
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, env=env, umask=0o077,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
        except OSError as exc:
            raise DumpError(f"cannot run {argv[0]}: {exc}") from None
        stderr_reader = threading.Thread(target=_drain, args=(proc.stderr, stderr_chunks),
                                         daemon=True)
        counter = threading.Thread(target=count, daemon=True)
        stderr_reader.start()
        counter.start()
        try:
            proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.returncode != 0:
                # pg_dump is gone; the counts no longer matter.
                cancelled.set()
                with contextlib.suppress(Exception):
                    pgc.cancel()
            counter.join()
            stderr_reader.join()
            proc.stderr.close()

    stderr = scrub(b"".join(stderr_chunks).decode("utf-8", "replace"), conn)
    errors, warnings = _error_lines(stderr, "pg_dump")
    if proc.returncode != 0:
        detail = "; ".join(errors) or stderr.strip()[-500:] or "no message"
        raise DumpError(f"pg_dump exited with {proc.returncode}: {detail}")
    if errors:
        raise DumpError(f"pg_dump wrote errors although it exited 0: {'; '.join(errors)}")
    if "error" in counted:
        exc = counted["error"]
        raise DumpError(f"counting the rows in snapshot {snapshot} failed:"
                        f" {scrub(str(exc).strip(), conn)}")
    result: dict[str, Any] = {
        "command": argv, "snapshot": snapshot, "warnings": warnings,
        "tables": counted["tables"], "alembic_revision": counted["alembic_revision"],
    }
    _fsync_tree(partial)
    if spec.format == "custom":
        # Read back from the page cache: a compressed archive hashes at ~1 GB/s.
        result.update(sha256=archive.file_sha256(partial), size_bytes=os.path.getsize(partial),
                      files=None)
    else:
        sums = archive.dir_file_sums(partial)
        result.update(sha256=archive.listing_sha256(sums), size_bytes=archive.archive_size(partial),
                      files=sums)
    return result


# ---------------------------------------------------------------------------- verification


def table_data_entries(listing: str) -> list[str]:
    """The ``<schema> <table> <owner>`` part of every TABLE DATA line of ``pg_restore --list``."""
    entries = []
    for line in listing.splitlines():
        match = re.match(r"^\s*\d+;\s+\d+\s+\d+\s+TABLE DATA\s+(.*)$", line)
        if match:
            entries.append(match.group(1))
    return entries


def missing_table_data(listing: str, tables: Iterable[str]) -> list[str]:
    """The ``schema.table`` keys of ``tables`` that have no TABLE DATA line in ``listing``.

    The listing separates schema, table and owner by single spaces, and any of them may
    contain spaces (or dots), so each key is matched as a prefix in every way it can split.
    """
    entries = table_data_entries(listing)
    missing = []
    for key in tables:
        splits = [(key[:i], key[i + 1:]) for i, c in enumerate(key) if c == "."]
        if not any(entry.startswith(f"{schema} {table} ")
                   for schema, table in splits for entry in entries):
            missing.append(key)
    return sorted(missing)


def verify_list(prep: _Prepared, path: str, tables: dict[str, int], conn: ConnParams
                ) -> list[str]:
    """``pg_restore --list`` succeeds and lists TABLE DATA for every table; its argv."""
    argv = [prep.pg_restore, "--list", path]
    rc, out, errors, _warnings = _run(argv, dict(os.environ), conn, "pg_restore", timeout=600)
    if rc != 0 or errors:
        raise VerifyError(f"pg_restore --list failed (exit {rc}): {'; '.join(errors)}")
    missing = missing_table_data(out, tables)
    if missing:
        raise VerifyError(f"pg_restore --list lists no TABLE DATA for {', '.join(missing[:10])}"
                          + (f" and {len(missing) - 10} more" if len(missing) > 10 else ""))
    return argv


def scratch_name(database: str) -> str:
    safe = re.sub(r"[^A-Za-z0-9_]", "_", database)[:40]
    return f"{safe}_verify_{uuid.uuid4().hex[:8]}"


def run_test_restore(conn: ConnParams, prep: _Prepared, spec: BackupSpec, path: str,
                     tables: dict[str, int], server_num: int) -> dict[str, Any]:
    """Restore ``path`` into a scratch database, compare row counts, drop it (always)."""
    started = time.monotonic()
    scratch = scratch_name(conn.dbname or "db")
    admin = connect(conn, autocommit=True)
    argv = [prep.pg_restore, "--no-password", "--exit-on-error", "--no-owner",
            f"--dbname={scratch}"]
    argv += [f"--jobs={spec.jobs}"] if spec.jobs > 1 else ["--single-transaction"]
    argv.append(path)
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(
                sql.Identifier(scratch)))
        try:
            with conn.with_database(scratch).client_env() as env:
                rc, _out, errors, _warn = _run(argv, env, conn, "pg_restore")
            if rc != 0 or errors:
                raise TestRestoreError(f"test restore into {scratch} failed (pg_restore exit"
                                       f" {rc}): {'; '.join(errors)}")
            target = connect(conn.with_database(scratch))
            try:
                with target.cursor() as cur:
                    names = [tuple(name.split(".", 1)) for name in tables]
                    restored = count_rows(cur, names)  # type: ignore[arg-type]
            finally:
                target.close()
            diffs = [f"{name}: {tables[name]} in the manifest, {restored.get(name)} restored"
                     for name in sorted(tables) if restored.get(name) != tables[name]]
            if diffs:
                raise TestRestoreError(f"test restore into {scratch}: row counts differ from"
                                       f" the manifest: {'; '.join(diffs[:10])}")
        finally:
            with admin.cursor() as cur:
                force = " WITH (FORCE)" if server_num >= 130000 else ""
                cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}" + force).format(
                    sql.Identifier(scratch)))
    finally:
        admin.close()
    return {"database": scratch, "ok": True, "duration_s": round(time.monotonic() - started, 3),
            "command": argv}


# ---------------------------------------------------------------------------- public API


def plan_backup(conn: ConnParams, spec: BackupSpec) -> dict[str, Any]:
    """What a backup would do, for check mode. Reads only: never creates ``dest``."""
    prep = _prepare(spec)
    backup_id = backup_id_for(conn, spec)
    existing = _existing(spec.dest, backup_id, conn.dbname) if spec.backup_id else None
    pgc = connect(conn, autocommit=False)
    try:
        pgc.set_session(readonly=True)
        with pgc.cursor() as cur:
            server_version, server_num = _server_info(cur)
            _check_versions(prep, server_version, server_num)
            if spec.test_restore and existing is None:
                _check_createdb(cur, conn)
            tables = list_tables(cur)
            revision = alembic_revision(cur)
        pgc.rollback()
    finally:
        pgc.close()
    target = partial_path(spec.dest, backup_id, spec.format)
    return {
        "backup_id": backup_id, "database": conn.dbname, "host": conn.host, "port": conn.port,
        "server_version": server_version, "pg_dump_version": prep.pg_dump_version,
        "alembic_revision": revision, "format": spec.format,
        "compression": prep.compression, "jobs": spec.jobs,
        "tables": {f"{s}.{t}": est for s, t, est in tables},
        "command": dump_command(prep, spec, SNAPSHOT_PLACEHOLDER, target),
        "archive_path": archive.archive_path(spec.dest, backup_id, spec.format),
        "manifest_path": archive.manifest_path(spec.dest, backup_id),
        "exists": existing is not None, "existing": existing,
        "stale_partials": stale_partials(spec.dest),
    }


def create_backup(conn: ConnParams, spec: BackupSpec,
                  progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Make, verify and record one backup; see the module docstring for the steps.

    Returns the manifest as written plus ``manifest_path``, ``archive_path``, ``changed``
    (False when ``spec.backup_id`` names a complete backup whose sha256 verifies - it is
    returned as it is, nothing runs), ``stale_removed`` (names of ``.partial`` entries of
    crashed runs that were removed) and ``commands`` (argv lists). Raises ``BackupError``
    subclasses, or the connection errors of ``conn.py`` (all ``PgError``).
    """
    say = progress or (lambda _msg: None)
    prep = _prepare(spec)
    backup_id = backup_id_for(conn, spec)
    if spec.backup_id:
        existing = _existing(spec.dest, backup_id, conn.dbname)
        if existing is not None:
            say(f"backup {backup_id} exists and its sha256 verifies; nothing to do")
            return {**existing, "changed": False, "stale_removed": [], "commands": []}

    pgc = connect(conn, autocommit=False)
    try:
        pgc.set_session(isolation_level="REPEATABLE READ", readonly=True)
        with pgc.cursor() as cur:
            server_version, server_num = _server_info(cur)
            _check_versions(prep, server_version, server_num)
            if spec.test_restore:
                _check_createdb(cur, conn)
        _ensure_dest(spec.dest)
        with dest_lock(spec.dest):
            return _create_locked(conn, spec, prep, pgc, backup_id, server_version, server_num,
                                  say)
    finally:
        with contextlib.suppress(Exception):
            pgc.close()


def _create_locked(conn: ConnParams, spec: BackupSpec, prep: _Prepared, pgc: Any,
                   backup_id: str, server_version: str, server_num: int,
                   say: Callable[[str], None]) -> dict[str, Any]:
    dest = spec.dest
    stale = stale_partials(dest)
    for name in stale:
        say(f"removing {name}, left by an interrupted backup")
        _remove(os.path.join(dest, name))
    final = archive.archive_path(dest, backup_id, spec.format)
    manifest_file = archive.manifest_path(dest, backup_id)
    if os.path.exists(manifest_file):  # written by another run since the first look
        raise ExistingBackupError(f"backup {backup_id} appeared in {dest} during this run")
    for suffix in archive.FORMAT_SUFFIX.values():
        orphan = os.path.join(dest, backup_id + suffix)
        if os.path.lexists(orphan):  # an archive without manifest is incomplete
            say(f"removing {os.path.basename(orphan)}, an archive without a manifest")
            _remove(orphan)
            stale.append(os.path.basename(orphan))
    partial = partial_path(dest, backup_id, spec.format)
    written: list[str] = [partial]
    ok = False
    try:
        started_at = archive.utc_now()
        t0 = time.monotonic()
        dumped = _dump(conn, prep, spec, pgc, partial, say)
        pgc.rollback()  # the snapshot is no longer needed
        duration = time.monotonic() - t0
        finished_at = archive.utc_now()

        commands = [dumped["command"]]
        verification: dict[str, Any] | None = None
        if spec.verify or spec.test_restore:
            v0 = time.monotonic()
            say(f"verifying {os.path.basename(final)} with pg_restore --list")
            commands.append(verify_list(prep, partial, dumped["tables"], conn))
            restored = None
            if spec.test_restore:
                say("test restore into a scratch database")
                restored = run_test_restore(conn, prep, spec, partial, dumped["tables"], server_num)
                commands.append(restored.pop("command"))
            verification = {"list_ok": True, "test_restore": restored,
                            "duration_s": round(time.monotonic() - v0, 3)}

        if spec.format == "directory":
            os.chmod(partial, 0o700)
        os.rename(partial, final)
        written = [final, manifest_file]
        archive.fsync_dir(dest)
        manifest = {
            "manifest_version": archive.MANIFEST_VERSION, "backup_id": backup_id,
            "database": conn.dbname, "host": conn.host, "port": conn.port,
            "server_version": server_version, "pg_dump_version": prep.pg_dump_version,
            "alembic_revision": dumped["alembic_revision"], "format": spec.format,
            "compression": prep.compression, "jobs": spec.jobs,
            "archive": os.path.basename(final), "size_bytes": dumped["size_bytes"],
            "sha256": dumped["sha256"], "files": dumped["files"], "tables": dumped["tables"],
            "started_at": archive.iso(started_at), "finished_at": archive.iso(finished_at),
            "duration_s": round(duration, 3), "command": dumped["command"],
            "snapshot": dumped["snapshot"], "label": spec.label,
            "verification": verification, "verified": verification is not None,
            "warnings": dumped["warnings"],
        }
        archive.write_json_atomic(manifest_file, manifest)
        ok = True
        say(f"backup {backup_id} written: {manifest['size_bytes']} bytes in"
            f" {manifest['duration_s']} s")
        return {**manifest, "manifest_path": manifest_file, "archive_path": final,
                "changed": True, "stale_removed": stale, "commands": commands}
    finally:
        if not ok:
            with contextlib.suppress(Exception):
                pgc.rollback()
            for path in written:
                _remove(path)
            with contextlib.suppress(OSError):
                archive.fsync_dir(dest)


# ---------------------------------------------------------------------------- retention


def _parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def retention_plan(backups: list[dict[str, Any]], keep: int | None, max_age_s: float | None,
                   now: datetime | None = None) -> list[dict[str, Any]]:
    """Which of ``backups`` (complete ones of one database) retention deletes, oldest first.

    Both limits apply: a backup goes when it is not among the ``keep`` newest, or when it is
    older than ``max_age_s``. The newest verified backup always stays, whatever its age or
    rank. With neither limit nothing is deleted.
    """
    if keep is not None and keep < 1:
        raise BackupInputError("retention_count must be at least 1")
    if keep is None and max_age_s is None:
        return []
    now = now or archive.utc_now()
    ordered = sorted(backups, key=lambda m: (m.get("finished_at") or "", m["backup_id"]))
    verified = [m for m in ordered if m.get("verified")]
    protected = verified[-1]["backup_id"] if verified else None
    doomed = []
    for rank, manifest in enumerate(reversed(ordered)):  # rank 0 is the newest
        if manifest["backup_id"] == protected:
            continue
        reasons = []
        if keep is not None and rank >= keep:
            reasons.append(f"not among the {keep} newest")
        finished = _parse_iso(manifest.get("finished_at"))
        if max_age_s is not None and finished is not None:
            age = (now - finished).total_seconds()
            if age > max_age_s:
                reasons.append(f"{age / 3600:.1f} h old, more than {max_age_s / 3600:.1f} h")
        if reasons:
            doomed.append({"backup_id": manifest["backup_id"],
                           "finished_at": manifest.get("finished_at"),
                           "archive": manifest.get("archive"),
                           "verified": bool(manifest.get("verified")),
                           "reason": "; ".join(reasons)})
    doomed.reverse()
    return doomed


def delete_backup(dest: str, manifest: dict[str, Any]) -> None:
    """Manifest first: a backup without manifest is incomplete and never used."""
    _remove(archive.manifest_path(dest, manifest["backup_id"]))
    archive.fsync_dir(dest)
    if manifest.get("archive"):
        _remove(os.path.join(dest, os.path.basename(manifest["archive"])))


def apply_retention(dest: str, database: str, keep: int | None, max_age_s: float | None,
                    now: datetime | None = None, dry_run: bool = False) -> list[dict[str, Any]]:
    """Delete the complete backups of ``database`` in ``dest`` that retention does not keep
    (see ``retention_plan``); return what was (``dry_run``: would be) deleted."""
    doomed = retention_plan(archive.list_backups(dest, database), keep, max_age_s, now)
    if not dry_run:
        for manifest in doomed:
            delete_backup(dest, manifest)
        if doomed:
            archive.fsync_dir(dest)
    return doomed


def backup_ids(dest: str, database: str | None = None) -> list[str]:
    """Ids of the complete backups in ``dest``, oldest first (diff mode)."""
    return [m["backup_id"] for m in archive.list_backups(dest, database)]


def command_line(argv: list[str]) -> str:
    return shlex.join(argv)
