# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backup -> change -> restore round trips against the lab's PostgreSQL, and flipped bytes.

Each round seeds different random data (several schemas; bytea, jsonb, unicode text,
NULLs, numeric, timestamps; an empty table; a large-ish one), backs it up, then changes the
database the way a bad release would (rows updated and deleted, a table dropped, a table
and a schema added, a column added, alembic_version moved on), restores, and compares the
content checksum (pgutil.fingerprint) and the schema (pgutil.schema_dump) with the
original's. Twenty rounds run through the Python API for speed; one runs through the
Ansible modules.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pgutil
import pytest
from ansible_run import REPO, ansible_env, run_module
from psycopg2 import sql
from psycopg2.extras import Json, execute_values

from ansible_collections.prodready.deploy.plugins.module_utils._pg import (
    archive,
    backup,
    conn,
    restore,
)

ROUNDS = 20
FLIPS = 20
UNICODE = "aZ09 ßäöü éè ñ ø Ω ж 中文 日本語 한국어 🙂🚀 \t\\ ' \" \n;--"


def random_text(rng: random.Random, longest: int = 40) -> str:
    return "".join(rng.choice(UNICODE) for _n in range(rng.randint(0, longest)))


def random_json(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.choice(["int", "str", "float", "bool", "null"] +
                      (["list", "dict"] if depth < 3 else []))
    if kind == "list":
        return [random_json(rng, depth + 1) for _n in range(rng.randint(0, 4))]
    if kind == "dict":
        return {random_text(rng, 8): random_json(rng, depth + 1) for _n in range(rng.randint(0, 4))}
    return {"int": lambda: rng.randint(-10**12, 10**12), "str": lambda: random_text(rng),
            "float": lambda: round(rng.uniform(-1e6, 1e6), 4), "bool": lambda: rng.random() < .5,
            "null": lambda: None}[kind]()


def maybe(rng: random.Random, value: Any) -> Any:
    """NULL one time in eight."""
    return None if rng.random() < 0.125 else value


def reset(cur: Any) -> None:
    """Drop every user schema; recreate an empty public (as a new database has it)."""
    cur.execute("SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_'"
                " AND nspname <> 'information_schema'")
    for (name,) in cur.fetchall():
        cur.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    cur.execute("CREATE SCHEMA public")
    cur.execute("ALTER SCHEMA public OWNER TO pg_database_owner")
    cur.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")


def seed(db: Any, round_no: int) -> dict[str, Any]:
    """Fresh random content for round ``round_no``; what was made."""
    rng = random.Random(round_no * 7919 + 1)
    schemas = ["public"] + [f"s{round_no}_{i}" for i in range(rng.randint(1, 3))]
    if round_no % 4 == 0:
        # Needs quoting, and the TOC line of pg_restore --list has spaces inside a name.
        schemas.append(f"Mixed Case.{round_no}")
    made: dict[str, Any] = {"schemas": schemas, "tables": []}
    with db.cursor() as cur:
        reset(cur)
        cur.execute("CREATE TABLE public.alembic_version (version_num varchar(32) PRIMARY KEY)")
        cur.execute("INSERT INTO public.alembic_version VALUES (%s)", (f"r{round_no:04d}",))
        for schema in schemas[1:]:
            cur.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        for n in range(rng.randint(2, 4)):
            schema = rng.choice(schemas)
            name = sql.Identifier(schema, f"items_{n}")
            cur.execute(sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, qty integer, big bigint,"
                " price numeric(20, 6), ratio double precision, title text NOT NULL,"
                " payload bytea, doc jsonb, created timestamptz, day date, flag boolean)"
            ).format(name))
            rows = [(maybe(rng, rng.randint(-2**31, 2**31 - 1)),
                     maybe(rng, rng.randint(-2**63, 2**63 - 1)),
                     maybe(rng, Decimal(rng.randint(-10**13, 10**13)) / 10**6),
                     maybe(rng, rng.uniform(-1e9, 1e9)), random_text(rng),
                     maybe(rng, bytes(rng.getrandbits(8) for _n in range(rng.randint(0, 64)))),
                     maybe(rng, Json(random_json(rng))),
                     maybe(rng, datetime(2020, 1, 1, tzinfo=UTC) +
                           timedelta(microseconds=rng.randint(0, 10**14))),
                     maybe(rng, (datetime(2000, 1, 1) + timedelta(days=rng.randint(0, 20000)))
                           .date()),
                     maybe(rng, rng.random() < 0.5)) for _n in range(rng.randint(1, 200))]
            execute_values(cur, sql.SQL(
                "INSERT INTO {} (qty, big, price, ratio, title, payload, doc, created, day,"
                " flag) VALUES %s").format(name).as_string(cur), rows)
            made["tables"].append((schema, f"items_{n}"))
        first = made["tables"][0]
        cur.execute(sql.SQL("CREATE INDEX ON {} (created)").format(sql.Identifier(*first)))
        cur.execute(sql.SQL("CREATE VIEW public.priced AS SELECT id, price FROM {}"
                            " WHERE price IS NOT NULL").format(sql.Identifier(*first)))
        cur.execute(sql.SQL("CREATE TABLE {} (id bigint PRIMARY KEY REFERENCES {} (id),"
                            " note text)").format(sql.Identifier(schemas[-1], "notes"),
                                                  sql.Identifier(*first)))
        cur.execute(sql.SQL("INSERT INTO {} SELECT id, title FROM {} WHERE id % 3 = 0").format(
            sql.Identifier(schemas[-1], "notes"), sql.Identifier(*first)))
        cur.execute(sql.SQL("CREATE TABLE {} (a int, b text)").format(
            sql.Identifier(rng.choice(schemas), "empty")))
        cur.execute("SELECT setseed(%s)", (rng.random() * 2 - 1,))
        cur.execute(sql.SQL(
            "CREATE TABLE {} AS SELECT g AS id, md5(random()::text) AS h,"
            " (random() * 1e6)::numeric(12, 3) AS amount, now() - random() * interval '900 days'"
            " AS at, CASE WHEN random() < 0.1 THEN NULL"
            " ELSE repeat(chr(20000 + (g %% 500)), g %% 7) END AS word"
            " FROM generate_series(1, %s) g").format(
                sql.Identifier(schemas[1], "big")), (20000 + rng.randint(0, 5000),))
    return made


def mutate(db: Any, made: dict[str, Any], round_no: int) -> None:
    """What a bad release does after the backup."""
    rng = random.Random(round_no)
    first, second = made["tables"][0], made["tables"][1]
    with db.cursor() as cur:
        cur.execute(sql.SQL("UPDATE {} SET title = title || '!' WHERE id % 2 = 0").format(
            sql.Identifier(*first)))
        cur.execute(sql.SQL("DELETE FROM {} WHERE id % 5 = 1").format(
            sql.Identifier(made["schemas"][1], "big")))
        cur.execute(sql.SQL("DROP TABLE {} CASCADE").format(sql.Identifier(*second)))
        cur.execute(sql.SQL("ALTER TABLE {} ADD COLUMN added int DEFAULT 7").format(
            sql.Identifier(*first)))
        cur.execute("CREATE TABLE public.later_migration (id int PRIMARY KEY)")
        cur.execute("INSERT INTO public.later_migration SELECT generate_series(1, %s)",
                    (rng.randint(1, 50),))
        cur.execute("CREATE SCHEMA added_later")
        cur.execute("CREATE TABLE added_later.t AS SELECT 1 AS x")
        cur.execute("UPDATE public.alembic_version SET version_num = 'r9999'")


def snapshot(db: Any) -> tuple[dict[str, Any], list[Any]]:
    return pgutil.fingerprint(db), pgutil.schema_dump(db)


@pytest.fixture(scope="module")
def target(lab_env: dict[str, str]) -> Any:
    with pgutil.scratch_db(lab_env, "rs") as name:
        url = pgutil.db_url(lab_env, name)
        db = pgutil.connect(url)
        try:
            yield {"name": name, "url": url, "db": db,
                   "params": conn.from_params({"url": url})}
        finally:
            db.close()


def test_twenty_round_trips_reproduce_content_and_schema(target: dict[str, Any],
                                                         tmp_path: Path) -> None:
    passed = 0
    for round_no in range(1, ROUNDS + 1):
        made = seed(target["db"], round_no)
        original = snapshot(target["db"])
        fmt = "directory" if round_no % 5 == 0 else "custom"
        made_backup = backup.create_backup(target["params"], backup.BackupSpec(
            dest=str(tmp_path / "backups"), format=fmt, label=f"round{round_no}"))
        assert made_backup["tables"] == {k: v[0] for k, v in original[0].items()}
        mutate(target["db"], made, round_no)
        assert snapshot(target["db"]) != original
        result = restore.restore(target["params"], restore.RestoreSpec(
            backup=made_backup["manifest_path"], safety_backup_dir=str(tmp_path / "safety"),
            jobs=2 if round_no == 10 else 1))
        assert result["restored"] is True
        assert result["single_transaction"] is (round_no != 10)
        after = snapshot(target["db"])
        assert after[0] == original[0], f"round {round_no}: content differs"
        assert after[1] == original[1], f"round {round_no}: schema differs"
        archive.verify_checksum(archive.read_manifest(result["safety_backup"]["manifest_path"]))
        passed += 1
    assert passed == ROUNDS


def test_restore_into_an_empty_database(lab_env: dict[str, str], target: dict[str, Any],
                                        tmp_path: Path) -> None:
    seed(target["db"], 101)
    original = snapshot(target["db"])
    made = backup.create_backup(target["params"], backup.BackupSpec(dest=str(tmp_path)))
    with pgutil.scratch_db(lab_env, "rs") as other:
        url = pgutil.db_url(lab_env, other)
        result = restore.restore(conn.from_params({"url": url}), restore.RestoreSpec(
            backup=made["manifest_path"], safety_backup=False))
        assert result["restored"] is True and result["safety_backup"] is None
        copy = pgutil.connect(url)
        try:
            assert snapshot(copy) == original
        finally:
            copy.close()


def test_round_trip_through_the_ansible_modules(lab_env: dict[str, str], target: dict[str, Any],
                                                tmp_path: Path) -> None:
    made = seed(target["db"], 202)
    original = snapshot(target["db"])
    rc, taken, _proc = run_module(lab_env, "pg_backup", {
        "url": target["url"], "dest": str(tmp_path / "backups"), "label": "ansible"})
    assert rc == 0, taken
    assert taken["changed"] is True
    mutate(target["db"], made, 202)
    rc, result, _proc = run_module(lab_env, "pg_restore", {
        "url": target["url"], "backup": taken["manifest_path"],
        "safety_backup_dir": str(tmp_path / "safety")})
    assert rc == 0, result
    assert result["changed"] is True and result["restored"] is True
    assert snapshot(target["db"]) == original


# -- flipped bytes --------------------------------------------------------------------------


def flip(path: str, position: int) -> None:
    with open(path, "r+b") as handle:
        handle.seek(position)
        byte = handle.read(1)[0]
        handle.seek(position)
        handle.write(bytes([byte ^ (1 << (position % 8))]))


def refusals(lab_env: dict[str, str], url: str, manifests: list[str], tmp_path: Path
             ) -> list[dict[str, Any]]:
    """pg_restore on each manifest, in one ansible-playbook run (a loop); the results."""
    # ignore_errors: every item is expected to fail (each backup is tampered with); the
    # loop must go on so that the caller can assert on every item's failure and message.
    playbook = tmp_path / "refuse.yml"
    playbook.write_text(json.dumps([{
        "name": "Restore tampered backups", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Restore", "prodready.deploy.pg_restore": {
            "url": url, "backup": "{{ item }}",
            "safety_backup_dir": str(tmp_path / "safety")},
            "loop": manifests, "ignore_errors": True}]}]))
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook)],
                          capture_output=True, text=True, env=ansible_env(lab_env),
                          timeout=900, check=False)
    try:
        task = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"no result from ansible-playbook:\n{proc.stdout}\n{proc.stderr}")
    return task["results"]


def tampered_copies(made: dict[str, Any], positions: list[tuple[str, int]], tmp_path: Path
                    ) -> list[str]:
    """One copy of the backup per (file, position), that byte flipped, manifest kept."""
    manifests = []
    for n, (rel, position) in enumerate(positions):
        backup_id = f"{made['backup_id']}-flip{n}"
        fmt = made["format"]
        dest = archive.archive_path(str(tmp_path / "tampered"), backup_id, fmt)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        (shutil.copytree if fmt == "directory" else shutil.copyfile)(made["archive_path"],
                                                                     dest)
        flip(os.path.join(dest, rel) if rel else dest, position)
        manifest = {k: v for k, v in made.items()
                    if k not in ("manifest_path", "archive_path", "changed", "stale_removed",
                                 "commands")}
        manifest.update(backup_id=backup_id, archive=os.path.basename(dest))
        path = archive.manifest_path(str(tmp_path / "tampered"), backup_id)
        archive.write_json_atomic(path, manifest)
        manifests.append(path)
    return manifests


@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_every_flipped_byte_is_detected_and_refused(lab_env: dict[str, str],
                                                    target: dict[str, Any], tmp_path: Path,
                                                    fmt: str) -> None:
    seed(target["db"], 303)
    made = backup.create_backup(target["params"], backup.BackupSpec(dest=str(tmp_path / "b"),
                                                                    format=fmt))
    with target["db"].cursor() as cur:  # the target now differs from the backup
        cur.execute("CREATE TABLE public.after_backup AS SELECT 1 AS x")
    before = snapshot(target["db"])
    rng = random.Random(f"flip-{fmt}")
    if fmt == "custom":
        size = os.path.getsize(made["archive_path"])
        positions = [("", p) for p in rng.sample(range(size), FLIPS)]
    else:
        # Distinct offsets into the files laid end to end, so every file can be hit.
        spans = [(rel, os.path.getsize(os.path.join(made["archive_path"], rel)))
                 for rel in sorted(made["files"])]
        positions = []
        for offset in rng.sample(range(sum(size for _rel, size in spans)), FLIPS):
            for rel, size in spans:
                if offset < size:
                    positions.append((rel, offset))
                    break
                offset -= size
    assert len(set(positions)) == FLIPS
    manifests = tampered_copies(made, positions, tmp_path)

    for (rel, _position), path in zip(positions, manifests, strict=True):
        manifest = archive.read_manifest(path)
        with pytest.raises(archive.ChecksumMismatch) as info:
            archive.verify_checksum(manifest)
        if rel:
            assert info.value.what.endswith(f"/{rel}")

    results = refusals(lab_env, target["url"], manifests, tmp_path)
    assert len(results) == FLIPS
    for (rel, position), result in zip(positions, results, strict=True):
        backup_id = os.path.basename(result["item"]).removesuffix(archive.MANIFEST_SUFFIX)
        assert result["failed"] is True, (rel, position)
        prefix = f"Refusing to restore backup {backup_id} (sha256 mismatch: expected "
        assert result["msg"].startswith(prefix), result["msg"]
        assert result["msg"].endswith("; the target is unchanged")
        assert result["changed"] is False and result["restored"] is False
        assert not any("psql" in c for c in result["commands"])
    assert snapshot(target["db"]) == before
    assert not (tmp_path / "safety").exists()  # refused before any safety backup
