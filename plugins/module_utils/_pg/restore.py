# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Restore a backup into a database so that the database equals the backup, or stays as it was.

Order - every check before anything changes:

1. read the manifest; recompute the archive's sha256 (a mismatch refuses the restore);
   ``pg_restore --list`` must read the archive's table of contents;
2. connect to the target and read its state (tables and row counts, Alembic revision, the
   restore marker); when it already holds this backup, stop (unchanged);
3. take a verified safety backup of the target (``backup.create_backup``);
4. overwrite, in ONE transaction: ``pg_restore -f -`` turns the archive into SQL, which is
   relayed into ``psql --single-transaction -v ON_ERROR_STOP=1`` between a prelude and a
   postlude:

   - the prelude drops every user schema of the target (and recreates ``public`` with its
     owner, privileges and comment), so objects created after the backup - a table a later
     migration added - do not survive next to an ``alembic_version`` that went back;
   - the postlude checks every table's row count and the Alembic revision against the
     manifest, then records the restore marker.

   Any error - in a statement, in the checks, or in ``pg_restore`` itself (psql is then
   killed before it could commit) - rolls the whole transaction back: the target is exactly
   as before. ``jobs`` > 1 uses ``pg_restore -j`` instead, which cannot run in one
   transaction; a failure then leaves a partial database and the safety backup is the way
   back.

The marker is the database's comment (``COMMENT ON DATABASE``) - a JSON document with the
backup id and sha256. It is not a row in any table, so it never shows in the row counts or
content of later backups, and pg_dump does not dump it (without ``--create``); it is
transactional, so it commits with the restore and only with it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._pg import archive, backup
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    ConnParams,
    PgError,
    connect,
    find_program,
    scrub,
)

MARKER_PREFIX = "prodready.deploy restore "
SAFETY_LABEL = "pre-restore"
_CHUNK = 1 << 16

MARKER_SQL = """
SELECT pg_catalog.shobj_description(oid, 'pg_database') FROM pg_catalog.pg_database
WHERE datname = pg_catalog.current_database()
"""


@dataclass
class RestoreSpec:
    """What to restore and how (the module's options without the connection)."""

    backup: str
    safety_backup: bool = True
    safety_backup_dir: str | None = None
    jobs: int = 1
    force: bool = False
    no_owner: bool = True
    no_privileges: bool = True
    pg_restore: str | None = None
    psql: str | None = None
    pg_dump: str | None = None


class RestoreError(Exception):
    """The restore did not happen or did not complete.

    ``target_changed`` says whether the target may differ from its state before the run.
    """

    target_changed = False


class RestoreRefused(RestoreError):
    """A check before the restore failed (bad input, checksum, archive): nothing changed."""


class RestoreFailed(RestoreError):
    """The restore itself failed."""

    def __init__(self, message: str, target_changed: bool) -> None:
        super().__init__(message)
        self.target_changed = target_changed


# -- the backup -------------------------------------------------------------------------


def load_backup(path: str) -> dict[str, Any]:
    """The manifest of ``path`` (manifest, archive or ``<dir>/<backup_id>``)."""
    try:
        return archive.read_manifest(path)
    except archive.ArchiveError as exc:
        raise RestoreRefused(str(exc)) from None


def verify_backup(manifest: dict[str, Any]) -> None:
    """Recompute the archive's sha256; a mismatch refuses the restore."""
    try:
        archive.verify_checksum(manifest)
    except OSError as exc:
        raise RestoreRefused(f"cannot read the archive {manifest['archive_path']}: {exc}"
                             ) from None
    except archive.ChecksumMismatch as exc:
        where = f" in {exc.what}" if exc.what != manifest["archive_path"] else ""
        raise RestoreRefused(f"sha256 mismatch: expected {exc.expected[:12]}.., got"
                             f" {exc.actual[:12]}..{where}; the archive changed after the"
                             " backup was taken") from None
    except archive.ArchiveError as exc:
        raise RestoreRefused(str(exc)) from None


def list_archive(pg_restore: str, manifest: dict[str, Any], commands: list[str]) -> int:
    """Number of entries in the archive's table of contents; refuses an unreadable one."""
    argv = [pg_restore, "--list", manifest["archive_path"]]
    commands.append(shlex.join(argv))
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RestoreRefused(f"pg_restore --list cannot read the archive:"
                             f" {_first_error(proc.stderr) or f'exit code {proc.returncode}'}")
    return sum(1 for line in proc.stdout.splitlines() if line.strip() and
               not line.startswith(";"))


def alembic_table(manifest: dict[str, Any]) -> str | None:
    """The ``schema.table`` key of the Alembic version table in the manifest."""
    keys = [k for k in manifest.get("tables") or {} if k.rsplit(".", 1)[-1] == "alembic_version"]
    if "public.alembic_version" in keys:
        return "public.alembic_version"
    return keys[0] if keys else None


def revision_text(revision: Any) -> str | None:
    """An Alembic revision as one string (several heads joined by ',')."""
    if revision is None or revision == []:
        return None
    if isinstance(revision, (list, tuple)):
        return ",".join(sorted(str(r) for r in revision))
    return str(revision)


# -- the target -------------------------------------------------------------------------


def read_state(conn: Any) -> dict[str, Any]:
    """Tables with row counts, Alembic revision and restore marker of the target - counted
    and read as a backup counts and reads them, so that the two compare."""
    with conn.cursor() as cur:
        tables = backup.count_rows(cur, [(s, t) for s, t, _est in backup.list_tables(cur)])
        revision = revision_text(backup.alembic_revision(cur))
        cur.execute(MARKER_SQL)
        comment = cur.fetchone()[0]
    return {"tables": tables, "alembic_revision": revision, "marker": parse_marker(comment)}


def parse_marker(comment: str | None) -> dict[str, Any] | None:
    if not comment or not comment.startswith(MARKER_PREFIX):
        return None
    try:
        marker = json.loads(comment[len(MARKER_PREFIX):])
    except ValueError:
        return None
    return marker if isinstance(marker, dict) else None


def differences(state: dict[str, Any], manifest: dict[str, Any]) -> list[str]:
    """Why the target does not hold this backup; empty when it does."""
    why = []
    marker = state.get("marker") or {}
    if (marker.get("backup_id"), marker.get("sha256")) != (manifest["backup_id"],
                                                           manifest["sha256"]):
        why.append(f"the target was not restored from this backup (marker: "
                   f"{marker.get('backup_id') or 'none'})")
    expected = manifest.get("tables") or {}
    current = state["tables"]
    for table in sorted(set(expected) | set(current)):
        if table not in current:
            why.append(f"table {table} is missing")
        elif table not in expected:
            why.append(f"table {table} is not in the backup")
        elif current[table] != expected[table]:
            why.append(f"table {table} has {current[table]} rows, the backup {expected[table]}")
    want = revision_text(manifest.get("alembic_revision"))
    if state.get("alembic_revision") != want:
        why.append(f"Alembic revision is {state.get('alembic_revision')}, the backup's {want}")
    return why


# -- SQL around the archive's SQL ---------------------------------------------------------


def prelude_sql(tag: str) -> str:
    """Drop every user schema and large object; recreate ``public`` as it was, empty.

    pg_dump never dumps ``public`` itself (PostgreSQL 15 creates it with every database), so
    it is recreated with the owner, privileges and comment it had.
    """
    return f"""SET standard_conforming_strings = on;
DO ${tag}$
DECLARE
  pub record;
  s record;
  g record;
BEGIN
  SELECT n.nspowner::pg_catalog.regrole::text AS owner, n.nspowner AS owner_oid,
         n.nspacl AS acl, pg_catalog.obj_description(n.oid, 'pg_namespace') AS comment
    INTO pub FROM pg_catalog.pg_namespace n WHERE n.nspname = 'public';
  FOR s IN SELECT nspname FROM pg_catalog.pg_namespace
           WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1 LOOP
    EXECUTE pg_catalog.format('DROP SCHEMA %I CASCADE', s.nspname);
  END LOOP;
  PERFORM pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;
  CREATE SCHEMA public;
  IF pub.owner IS NULL THEN
    ALTER SCHEMA public OWNER TO pg_database_owner;
    GRANT USAGE ON SCHEMA public TO PUBLIC;
    COMMENT ON SCHEMA public IS 'standard public schema';
  ELSE
    EXECUTE pg_catalog.format('ALTER SCHEMA public OWNER TO %s', pub.owner);
    FOR g IN SELECT a.grantee, a.privilege_type, a.is_grantable
             FROM pg_catalog.aclexplode(pub.acl) a WHERE a.grantee <> pub.owner_oid LOOP
      EXECUTE pg_catalog.format('GRANT %s ON SCHEMA public TO %s%s', g.privilege_type,
        CASE WHEN g.grantee = 0 THEN 'PUBLIC' ELSE g.grantee::pg_catalog.regrole::text END,
        CASE WHEN g.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
    END LOOP;
    EXECUTE pg_catalog.format('COMMENT ON SCHEMA public IS %L', pub.comment);
  END IF;
END
${tag}$;
"""


def check_sql(manifest: dict[str, Any], tag: str) -> str:
    """Fail the transaction unless every table's row count and the Alembic revision equal
    the manifest's. Tables are found by their ``schema.table`` key, never parsed."""
    expected = _literal(json.dumps(manifest.get("tables") or {}, sort_keys=True))
    revision = revision_text(manifest.get("alembic_revision"))
    where = alembic_table(manifest)
    alembic = ""
    if revision is not None or where is not None:
        alembic = f"""
  rel := NULL;
  SELECT c.oid INTO rel FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) c.relname
          = {_literal(where or "public.alembic_version")};
  got_rev := NULL;
  IF rel IS NOT NULL THEN
    EXECUTE pg_catalog.format(
      'SELECT pg_catalog.string_agg(version_num::text, '','' ORDER BY version_num::text) FROM %s',
      rel::pg_catalog.regclass) INTO got_rev;
  END IF;
  IF got_rev IS DISTINCT FROM {_literal(revision) if revision is not None else 'NULL'} THEN
    RAISE EXCEPTION 'prodready: Alembic revision is % after the restore, % in the backup',
      coalesce(got_rev, 'none'), {_literal(revision or 'none')};
  END IF;"""
    return f"""SET standard_conforming_strings = on;
DO ${tag}$
DECLARE
  expected jsonb := {expected}::jsonb;
  k text;
  want bigint;
  got bigint;
  rel oid;
  got_rev text;
BEGIN
  FOR k, want IN SELECT e.key, e.value::bigint FROM pg_catalog.jsonb_each_text(expected) e LOOP
    rel := NULL;
    SELECT c.oid INTO rel FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE n.nspname OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) c.relname = k
        AND c.relkind IN ('r', 'p');
    IF rel IS NULL THEN
      RAISE EXCEPTION 'prodready: table % of the backup is missing after the restore', k;
    END IF;
    EXECUTE pg_catalog.format('SELECT count(*) FROM %s', rel::pg_catalog.regclass) INTO got;
    IF got <> want THEN
      RAISE EXCEPTION 'prodready: table % has % rows after the restore, % in the backup',
        k, got, want;
    END IF;
  END LOOP;{alembic}
END
${tag}$;
"""


def marker_sql(manifest: dict[str, Any], restored_at: str, tag: str) -> str:
    marker = MARKER_PREFIX + json.dumps({"backup_id": manifest["backup_id"],
                                         "sha256": manifest["sha256"],
                                         "restored_at": restored_at}, sort_keys=True)
    return f"""DO ${tag}$
BEGIN
  EXECUTE pg_catalog.format('COMMENT ON DATABASE %I IS %L', pg_catalog.current_database(),
                            {_literal(marker)});
END
${tag}$;
"""


def _literal(text: str) -> str:
    """An SQL string literal (standard_conforming_strings is on in every script)."""
    return "'" + text.replace("'", "''") + "'"


# -- running the clients ----------------------------------------------------------------

_PSQL_WHERE = re.compile(r"^psql:(?P<file>[^:]*):(?P<line>\d+):\s*")


def _first_error(text: str) -> str:
    """The first ERROR (with its DETAIL) of a client's stderr, else its first line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if "ERROR:" in line or "error:" in line or "FATAL:" in line:
            found = [line]
            found += [nxt for nxt in lines[i + 1:i + 3] if nxt.startswith(("DETAIL:", "HINT:"))]
            return " ".join(found)
    return lines[0] if lines else ""


def psql_error(stderr: str, names: dict[str, str]) -> str:
    """psql's first error, with the script's file name replaced by what it is."""
    message = _first_error(stderr)
    match = _PSQL_WHERE.match(message)
    if match:
        what = names.get(match.group("file"), match.group("file"))
        message = f"{what} line {match.group('line')}: {message[match.end():]}"
    return re.sub(r"ERROR:\s+prodready: ", "", message)


def restore_options(spec: RestoreSpec) -> list[str]:
    options = []
    if spec.no_owner:
        options.append("--no-owner")
    if spec.no_privileges:
        options.append("--no-privileges")
    return options


def run_single_transaction(params: ConnParams, spec: RestoreSpec, manifest: dict[str, Any],
                           programs: dict[str, str], commands: list[str],
                           restored_at: str) -> None:
    """prelude + ``pg_restore -f -`` + checks + marker, in one psql transaction."""
    tag = "prodready_" + secrets.token_hex(4)
    with tempfile.TemporaryDirectory(prefix="prodready-restore-") as tmp:
        prelude = os.path.join(tmp, "prelude.sql")
        postlude = os.path.join(tmp, "checks.sql")
        _write(prelude, prelude_sql(tag))
        _write(postlude, check_sql(manifest, tag) + marker_sql(manifest, restored_at, tag))
        dump_argv = [programs["pg_restore"], "--file=-", *restore_options(spec),
                     manifest["archive_path"]]
        psql_argv = [programs["psql"], "--no-psqlrc", "--quiet", "--no-password",
                     "--set=ON_ERROR_STOP=1", "--single-transaction", f"--file={prelude}",
                     "--file=-", f"--file={postlude}"]
        commands.append(f"{shlex.join(dump_argv)} | {shlex.join(psql_argv)}")
        names = {prelude: "the prelude (drop the target's schemas)", "<stdin>": "archive SQL",
                 postlude: "the check against the manifest"}
        with params.client_env() as env, \
                tempfile.TemporaryFile(dir=tmp) as dump_err, \
                tempfile.TemporaryFile(dir=tmp) as psql_out:
            dump = subprocess.Popen(dump_argv, stdout=subprocess.PIPE, stderr=dump_err)
            psql = subprocess.Popen(psql_argv, stdin=subprocess.PIPE, stdout=psql_out,
                                    stderr=subprocess.STDOUT, env=env)
            psql_stopped = _relay(dump.stdout, psql.stdin)
            if psql_stopped:
                dump.kill()
            dump_rc = dump.wait()
            if dump_rc != 0 and not psql_stopped:
                # psql must never see the end of its input after a partial archive: it
                # would commit what it got. Killed, it drops the connection and the server
                # rolls the transaction back.
                psql.kill()
                psql.wait()
                dump_err.seek(0)
                raise RestoreFailed(
                    f"pg_restore failed while reading the archive"
                    f" ({_first_error(_text(dump_err)) or f'exit code {dump_rc}'}); psql was"
                    " stopped before it could commit, so the transaction was rolled back and"
                    " the target is unchanged", target_changed=False)
            with contextlib.suppress(BrokenPipeError):
                psql.stdin.close()
            psql_rc = psql.wait()
            psql_out.seek(0)
            output = scrub(_text(psql_out), params)
        if psql_rc != 0:
            raise RestoreFailed(
                f"{psql_error(output, names) or f'psql exit code {psql_rc}'}; the restore ran"
                " in one transaction, which was rolled back: the target is unchanged",
                target_changed=False)


def run_parallel(params: ConnParams, spec: RestoreSpec, manifest: dict[str, Any],
                 programs: dict[str, str], commands: list[str], restored_at: str,
                 safety: dict[str, Any] | None) -> None:
    """Drop, ``pg_restore -j``, check: three steps, not one transaction."""
    tag = "prodready_" + secrets.token_hex(4)
    way_back = (f"; restore the safety backup {safety['backup_id']} ({safety['manifest_path']})"
                " to go back" if safety else "; no safety backup was taken")
    with tempfile.TemporaryDirectory(prefix="prodready-restore-") as tmp:
        prelude = os.path.join(tmp, "prelude.sql")
        postlude = os.path.join(tmp, "checks.sql")
        _write(prelude, prelude_sql(tag))
        _write(postlude, check_sql(manifest, tag) + marker_sql(manifest, restored_at, tag))
        names = {prelude: "the prelude (drop the target's schemas)",
                 postlude: "the check against the manifest"}
        psql = [programs["psql"], "--no-psqlrc", "--quiet", "--no-password",
                "--set=ON_ERROR_STOP=1", "--single-transaction"]
        steps = [
            (psql + [f"--file={prelude}"], False),
            ([programs["pg_restore"], f"--dbname={params.dbname}", f"--jobs={spec.jobs}",
              "--exit-on-error", "--no-password", *restore_options(spec),
              manifest["archive_path"]], True),
            (psql + [f"--file={postlude}"], True),
        ]
        with params.client_env() as env:
            for argv, changed_before in steps:
                commands.append(shlex.join(argv))
                proc = subprocess.run(argv, capture_output=True, text=True, env=env,
                                      check=False)
                if proc.returncode != 0:
                    error = psql_error(scrub(proc.stderr, params), names) or \
                        f"exit code {proc.returncode}"
                    if not changed_before:
                        raise RestoreFailed(f"{error}; nothing was changed", False)
                    raise RestoreFailed(f"{error}; with jobs > 1 the restore is not one"
                                        f" transaction, so the target is partly restored"
                                        f"{way_back}", True)


def _relay(source: Any, sink: Any) -> bool:
    """Copy until the source ends; True when the sink (psql) stopped reading."""
    try:
        for chunk in iter(lambda: source.read(_CHUNK), b""):
            sink.write(chunk)
        sink.flush()
    except BrokenPipeError:
        return True
    finally:
        source.close()
    return False


def _write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def _text(handle: Any) -> str:
    return handle.read().decode("utf-8", "replace")


# -- the whole restore ------------------------------------------------------------------


def safety_summary(created: dict[str, Any]) -> dict[str, Any]:
    return {"taken": True, "backup_id": created["backup_id"],
            "manifest_path": created["manifest_path"],
            "archive_path": created["archive_path"], "sha256": created["sha256"],
            "verified": True}


def restore(params: ConnParams, spec: RestoreSpec, check_mode: bool = False,
            result: dict[str, Any] | None = None) -> dict[str, Any]:
    """Restore ``spec.backup`` into the database of ``params``; see the module docstring.

    ``result`` is filled as the run goes, so that a caller that catches an error still has
    the commands that ran. Raises RestoreRefused, RestoreFailed, conn.PgError.
    """
    started = time.monotonic()
    result = {} if result is None else result
    commands: list[str] = result.setdefault("commands", [])
    result.update(changed=False, restored=False, single_transaction=spec.jobs <= 1)
    if spec.jobs < 1:
        raise RestoreRefused("jobs must be at least 1")
    if spec.safety_backup and not spec.safety_backup_dir:
        raise RestoreRefused("safety_backup_dir is required when safety_backup is true")
    manifest = load_backup(spec.backup)
    result.update(backup_id=manifest["backup_id"], sha256=manifest["sha256"],
                  format=manifest.get("format"), source_database=manifest.get("database"),
                  tables=dict(manifest.get("tables") or {}),
                  alembic_revision=manifest.get("alembic_revision"))
    verify_backup(manifest)
    result.setdefault("checks", []).append("sha256 of the archive equals the manifest's")
    programs = {"pg_restore": find_program("pg_restore", spec.pg_restore),
                "psql": find_program("psql", spec.psql)}
    entries = list_archive(programs["pg_restore"], manifest, commands)
    result["checks"].append(f"pg_restore --list read {entries} entries")

    conn = connect(params)
    try:
        state = read_state(conn)
    finally:
        conn.close()
    why = differences(state, manifest)
    result["checks"].append("the target holds this backup" if not why else
                            "the target differs from the backup: " + "; ".join(why))
    result["diff"] = {
        "before": {"backup_id": (state["marker"] or {}).get("backup_id"),
                   "tables": state["tables"], "alembic_revision": state["alembic_revision"]},
        "after": {"backup_id": manifest["backup_id"], "tables": result["tables"],
                  "alembic_revision": revision_text(manifest.get("alembic_revision"))},
    }
    changed = bool(why) or spec.force
    result["changed"] = changed
    result["safety_backup"] = ({"taken": False, "dir": spec.safety_backup_dir}
                               if spec.safety_backup and changed else None)
    if not changed or check_mode:
        result["duration_s"] = round(time.monotonic() - started, 3)
        return result

    safety = None
    if spec.safety_backup:
        safety = take_safety_backup(params, spec)
        result["safety_backup"] = safety
    restored_at = archive.iso(archive.utc_now())
    try:
        if spec.jobs <= 1:
            run_single_transaction(params, spec, manifest, programs, commands, restored_at)
        else:
            run_parallel(params, spec, manifest, programs, commands, restored_at, safety)
    except OSError as exc:
        # Starting pg_restore or psql failed (or their temporary files): in one transaction
        # nothing was committed; a parallel restore may have changed the target already.
        raise RestoreFailed(f"cannot run the restore: {exc}",
                            target_changed=spec.jobs > 1) from None
    result["restored"] = True
    result["restored_at"] = restored_at

    # An independent read after the commit (the checks inside the transaction already
    # passed; this is what the caller can rely on).
    try:
        conn = connect(params)
        try:
            after = read_state(conn)
        finally:
            conn.close()
    except PgError as exc:
        raise RestoreFailed(f"the restore committed, but reading the target afterwards"
                            f" failed: {exc}", target_changed=True) from None
    why = differences(after, manifest)
    if why:
        raise RestoreFailed("after the restore " + "; ".join(why), target_changed=True)
    result["checks"].append("row counts and Alembic revision equal the manifest's")
    result["duration_s"] = round(time.monotonic() - started, 3)
    return result


def take_safety_backup(params: ConnParams, spec: RestoreSpec) -> dict[str, Any]:
    """A verified backup of the target as it is now, before it is overwritten."""
    try:
        created = backup.create_backup(params, backup.BackupSpec(
            dest=spec.safety_backup_dir, label=SAFETY_LABEL, verify=True,
            pg_dump=spec.pg_dump, pg_restore=spec.pg_restore))
    except (backup.BackupError, archive.ArchiveError, OSError) as exc:
        raise RestoreRefused(f"the safety backup of the target failed, so nothing was"
                             f" restored: {exc}") from None
    return safety_summary(created)
