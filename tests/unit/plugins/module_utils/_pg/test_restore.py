# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The restore's decisions, its SQL and its pipeline, without a server: the pipeline runs
against small stand-in programs for pg_restore and psql (the integration tests use the
real ones against the lab)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg import archive, restore
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import ConnParams

SHA = "ab" * 32
MANIFEST = {"backup_id": "shop-1", "sha256": SHA,
            "tables": {"public.alembic_version": 1, "public.users": 10, "s.t": 0},
            "alembic_revision": "0003"}
PARAMS = ConnParams(host="127.0.0.1", port=5432, user="app", password="canary-pw-1f3",
                    dbname="shop")


def state(**changes: Any) -> dict[str, Any]:
    base = {"marker": {"backup_id": "shop-1", "sha256": SHA},
            "tables": dict(MANIFEST["tables"]), "alembic_revision": "0003"}
    base.update(changes)
    return base


@pytest.mark.parametrize(("current", "why"), [
    (state(), []),
    (state(marker=None), ["the target was not restored from this backup (marker: none)"]),
    (state(marker={"backup_id": "shop-1", "sha256": "cd" * 32}),
     ["the target was not restored from this backup (marker: shop-1)"]),
    (state(tables={"public.alembic_version": 1, "public.users": 11, "s.t": 0}),
     ["table public.users has 11 rows, the backup 10"]),
    (state(tables={"public.alembic_version": 1, "public.users": 10}), ["table s.t is missing"]),
    (state(tables={**MANIFEST["tables"], "public.new": 0}),
     ["table public.new is not in the backup"]),
    (state(alembic_revision="0004"), ["Alembic revision is 0004, the backup's 0003"]),
])
def test_differences(current: dict[str, Any], why: list[str]) -> None:
    assert restore.differences(current, MANIFEST) == why


@pytest.mark.parametrize(("comment", "marker"), [
    (None, None),
    ("", None),
    ("a human comment", None),
    (restore.MARKER_PREFIX + "{broken", None),
    (restore.MARKER_PREFIX + "[1]", None),
    (restore.MARKER_PREFIX + '{"backup_id": "x", "sha256": "y"}', {"backup_id": "x",
                                                                   "sha256": "y"}),
])
def test_parse_marker(comment: str | None, marker: dict[str, str] | None) -> None:
    assert restore.parse_marker(comment) == marker


@pytest.mark.parametrize(("revision", "text"), [
    (None, None), ([], None), ("0003", "0003"), (["b2", "a1"], "a1,b2"),
])
def test_revision_text(revision: Any, text: str | None) -> None:
    assert restore.revision_text(revision) == text


@pytest.mark.parametrize(("tables", "where"), [
    ({"public.alembic_version": 1, "app.alembic_version": 1}, "public.alembic_version"),
    ({"app.alembic_version": 1, "public.t": 0}, "app.alembic_version"),
    ({"public.t": 0}, None),
    ({}, None),
])
def test_alembic_table(tables: dict[str, int], where: str | None) -> None:
    assert restore.alembic_table({"tables": tables}) == where


@pytest.mark.parametrize(("no_owner", "no_privileges", "options"), [
    (True, True, ["--no-owner", "--no-privileges"]),
    (False, True, ["--no-privileges"]),
    (False, False, []),
])
def test_restore_options(no_owner: bool, no_privileges: bool, options: list[str]) -> None:
    spec = restore.RestoreSpec(backup="x", no_owner=no_owner, no_privileges=no_privileges)
    assert restore.restore_options(spec) == options


def test_check_sql_quotes_table_names_as_literals() -> None:
    manifest = {**MANIFEST, "tables": {"public.it's": 2}}
    text = restore.check_sql(manifest, "prodready_x")
    assert """'{"public.it''s": 2}'::jsonb""" in text
    assert text.count("$prodready_x$") == 2
    assert "'0003'" in text


def test_check_sql_without_alembic_skips_the_revision_check() -> None:
    text = restore.check_sql({"tables": {"public.t": 1}, "alembic_revision": None}, "t1")
    assert "got_rev IS DISTINCT" not in text


def test_check_sql_expects_no_revision_when_the_backup_had_an_empty_table() -> None:
    text = restore.check_sql({"tables": {"public.alembic_version": 0},
                              "alembic_revision": None}, "t1")
    assert "got_rev IS DISTINCT FROM NULL" in text


def test_marker_sql_holds_id_and_sha256() -> None:
    text = restore.marker_sql(MANIFEST, "2026-11-27T10:00:00.000Z", "t1")
    marker = restore.MARKER_PREFIX + json.dumps({"backup_id": "shop-1", "sha256": SHA,
                                                 "restored_at": "2026-11-27T10:00:00.000Z"},
                                                sort_keys=True)
    assert f"'{marker}'" in text
    assert restore.parse_marker(marker)["backup_id"] == "shop-1"


def test_prelude_drops_every_user_schema_and_recreates_public() -> None:
    text = restore.prelude_sql("t1")
    assert "DROP SCHEMA %I CASCADE" in text
    assert "nspname !~ '^pg_'" in text
    assert "CREATE SCHEMA public;" in text
    assert "lo_unlink" in text


@pytest.mark.parametrize(("stderr", "message"), [
    ("psql:<stdin>:42: ERROR:  invalid input syntax for type integer: \"12x\"\n"
     "CONTEXT:  COPY t, line 3\n",
     'archive SQL line 42: ERROR:  invalid input syntax for type integer: "12x"'),
    ("psql:/tmp/p/checks.sql:30: ERROR:  prodready: table public.t has 3 rows after the"
     " restore, 4 in the backup\nCONTEXT:  PL/pgSQL function inline_code_block\n",
     "the check line 30: table public.t has 3 rows after the restore, 4 in the backup"),
    ("psql:/tmp/p/prelude.sql:5: ERROR:  must be owner of schema locked\n",
     "the prelude line 5: ERROR:  must be owner of schema locked"),
    ("psql: error: connection to server failed\n", "psql: error: connection to server failed"),
    ("", ""),
])
def test_psql_error(stderr: str, message: str) -> None:
    names = {"<stdin>": "archive SQL", "/tmp/p/checks.sql": "the check",
             "/tmp/p/prelude.sql": "the prelude"}
    assert restore.psql_error(stderr, names) == message


def test_first_error_keeps_the_detail() -> None:
    text = "NOTICE: x\nERROR:  duplicate key\nDETAIL:  Key (a)=(1) already exists.\n"
    assert restore._first_error(text) == ("ERROR:  duplicate key DETAIL:  Key (a)=(1) already"
                                          " exists.")


# -- checks before anything changes ---------------------------------------------------------


def write_backup(tmp_path: Path, payload: bytes = b"PGDMP archive") -> dict[str, Any]:
    path = tmp_path / "shop-1.dump"
    path.write_bytes(payload)
    archive.write_json_atomic(str(tmp_path / "shop-1.manifest.json"), {
        "manifest_version": 1, "backup_id": "shop-1", "database": "shop", "format": "custom",
        "archive": path.name, "sha256": hashlib.sha256(payload).hexdigest(),
        "tables": {"public.t": 1}, "alembic_revision": None})
    return archive.read_manifest(str(path))


def test_a_flipped_byte_refuses_the_restore_before_connecting(tmp_path: Path) -> None:
    manifest = write_backup(tmp_path)
    data = bytearray(Path(manifest["archive_path"]).read_bytes())
    data[3] ^= 0x80
    Path(manifest["archive_path"]).write_bytes(bytes(data))
    result: dict[str, Any] = {}
    with pytest.raises(restore.RestoreRefused) as info:
        # A server that does not exist: reaching it would be a different error.
        restore.restore(ConnParams(host="127.0.0.1", port=1, dbname="x"),
                        restore.RestoreSpec(backup=str(tmp_path / "shop-1"),
                                            safety_backup=False), result=result)
    actual = hashlib.sha256(bytes(data)).hexdigest()
    assert str(info.value).startswith(f"sha256 mismatch: expected {manifest['sha256'][:12]}..,"
                                      f" got {actual[:12]}..")
    assert result["backup_id"] == "shop-1"
    assert result["commands"] == []  # not even pg_restore --list ran


@pytest.mark.parametrize(("spec", "match"), [
    (restore.RestoreSpec(backup="x", jobs=0), "jobs must be at least 1"),
    (restore.RestoreSpec(backup="x"), "safety_backup_dir is required"),
    (restore.RestoreSpec(backup="/nonexistent/b", safety_backup=False),
     "no backup manifest found"),
])
def test_refusals_before_anything_runs(spec: restore.RestoreSpec, match: str) -> None:
    with pytest.raises(restore.RestoreRefused, match=match):
        restore.restore(PARAMS, spec)


def test_directory_mismatch_names_the_file(tmp_path: Path) -> None:
    root = tmp_path / "shop-2.dir"
    root.mkdir()
    (root / "toc.dat").write_bytes(b"toc")
    (root / "3001.dat.gz").write_bytes(b"data")
    sha, files = archive.archive_sha256(str(root))
    archive.write_json_atomic(str(tmp_path / "shop-2.manifest.json"), {
        "manifest_version": 1, "backup_id": "shop-2", "format": "directory",
        "archive": root.name, "sha256": sha, "files": files, "tables": {}})
    (root / "3001.dat.gz").write_bytes(b"dat4")
    with pytest.raises(restore.RestoreRefused, match=r"sha256 mismatch: expected \w{12}\.\.,"
                       r" got \w{12}\.\. in .*shop-2.dir/3001.dat.gz"):
        restore.verify_backup(archive.read_manifest(str(root)))


# -- the single-transaction pipeline, with stand-in programs ---------------------------------


def program(path: Path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


@pytest.fixture
def fakes(tmp_path: Path) -> dict[str, Any]:
    """psql that records what it read and 'commits' only when its input ends (as the real
    one sends COMMIT only after its last --file); pg_restore that prints the archive."""
    log = tmp_path / "psql.log"
    psql = program(tmp_path / "psql", f"""
for a in "$@"; do case "$a" in --file=-) cat >> {log};; --file=*) cat "${{a#--file=}}" >> {log};;
esac; done
if grep -q FAILME {log}; then echo 'psql:<stdin>:7: ERROR:  boom' >&2; exit 3; fi
echo COMMITTED >> {log}
""")
    return {"log": log, "psql": psql, "tmp": tmp_path}


def run_pipeline(fakes: dict[str, Any], pg_restore_body: str, archive_text: bytes = b"x"
                 ) -> None:
    manifest = write_backup(fakes["tmp"], archive_text)
    programs = {"pg_restore": program(fakes["tmp"] / "pg_restore", pg_restore_body),
                "psql": fakes["psql"]}
    restore.run_single_transaction(PARAMS, restore.RestoreSpec(backup="x"), manifest,
                                   programs, [], "2026-11-27T10:00:00.000Z")


def test_pipeline_commits_prelude_archive_and_checks_in_order(fakes: dict[str, Any]) -> None:
    run_pipeline(fakes, 'echo "CREATE TABLE t();"\n')
    log = fakes["log"].read_text()
    assert log.index("DROP SCHEMA") < log.index("CREATE TABLE t();") < \
        log.index("jsonb_each_text") < log.index("COMMENT ON DATABASE")
    assert log.endswith("COMMITTED\n")


def test_pipeline_kills_psql_when_pg_restore_fails_midway(fakes: dict[str, Any]) -> None:
    with pytest.raises(restore.RestoreFailed) as info:
        run_pipeline(fakes, 'echo "CREATE TABLE t();"\n'
                            'echo "pg_restore: error: could not uncompress data" >&2\nexit 1\n')
    assert "could not uncompress data" in str(info.value)
    assert "rolled back" in str(info.value)
    assert info.value.target_changed is False
    # psql never saw the end of its input, so it never got to its commit.
    assert "COMMITTED" not in (fakes["log"].read_text() if fakes["log"].exists() else "")


def test_pipeline_reports_psql_errors_as_rolled_back(fakes: dict[str, Any]) -> None:
    with pytest.raises(restore.RestoreFailed, match=r"archive SQL line 7: ERROR:  boom; the"
                       r" restore ran in one transaction, which was rolled back"):
        run_pipeline(fakes, 'echo "FAILME"\n')


def test_pipeline_gives_psql_the_password_in_a_passfile_only(fakes: dict[str, Any]) -> None:
    seen = fakes["tmp"] / "env"
    fakes["psql"] = program(fakes["tmp"] / "psql2", f"""
cat > /dev/null; env > {seen}; echo "$@" >> {seen}; cat "$PGPASSFILE" >> {seen}.pass
""")
    run_pipeline(fakes, 'echo "SELECT 1;"\n')
    assert PARAMS.password not in seen.read_text()
    assert PARAMS.password in Path(f"{seen}.pass").read_text()
    assert not os.path.exists(next(line.split("=", 1)[1] for line in
                                   seen.read_text().splitlines()
                                   if line.startswith("PGPASSFILE=")))


def test_a_missing_archive_is_refused_not_a_traceback(tmp_path: Path) -> None:
    manifest = {"backup_id": "b", "sha256": "00", "archive_path": str(tmp_path / "gone.dump")}
    with pytest.raises(restore.RestoreRefused, match="is missing"):
        restore.verify_backup(manifest)


def test_a_safety_backup_that_cannot_write_refuses_the_restore(monkeypatch: pytest.MonkeyPatch,
                                                               tmp_path: Path) -> None:
    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise PermissionError(13, "Permission denied", str(tmp_path))

    monkeypatch.setattr(restore.backup, "create_backup", fail)
    spec = restore.RestoreSpec(backup="x", safety_backup=True, safety_backup_dir=str(tmp_path))
    with pytest.raises(restore.RestoreRefused, match="safety backup .* Permission denied"):
        restore.take_safety_backup(ConnParams(host="h", dbname="d"), spec)
