# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the db_backup role leaves on the host, read independently of the module's report."""

from __future__ import annotations

import json
import os

DEST = "/var/tmp/prodready-molecule/db_backup"
BACKUP_ID = "molecule-db-backup-1"
ARCHIVE = f"{DEST}/{BACKUP_ID}.dump"
MANIFEST = f"{DEST}/{BACKUP_ID}.manifest.json"


def manifest(host):
    return json.loads(host.file(MANIFEST).content_string)


def test_backup_directory_is_private(host):
    dest = host.file(DEST)
    assert dest.is_directory
    assert dest.mode == 0o700


def test_archive_and_manifest_are_private_files(host):
    for path in (ARCHIVE, MANIFEST):
        f = host.file(path)
        assert f.is_file, path
        assert f.mode == 0o600, path


def test_only_the_complete_backup_is_left(host):
    names = host.check_output(f"ls -A {DEST}").split()
    assert sorted(names) == sorted([f"{BACKUP_ID}.dump", f"{BACKUP_ID}.manifest.json"])


def test_manifest_describes_the_archive(host):
    data = manifest(host)
    assert data["backup_id"] == BACKUP_ID
    assert data["database"] == os.environ["LAB_PG_APP_DB"]
    assert data["format"] == "custom"
    assert data["verified"] is True
    assert data["verification"]["list_ok"] is True
    assert data["size_bytes"] == host.file(ARCHIVE).size
    sha = host.check_output(f"sha256sum {ARCHIVE}").split()[0]
    assert data["sha256"] == sha
    assert data["alembic_revision"].startswith("0003")
    assert {"public.users", "public.audit_log", "public.alembic_version"} <= set(data["tables"])
    assert data["tables"]["public.alembic_version"] == 1


def test_archive_lists_every_table_data(host):
    listing = host.check_output(f"pg_restore --list {ARCHIVE}")
    for table in manifest(host)["tables"]:
        schema, name = table.split(".")
        assert f"TABLE DATA {schema} {name} " in listing, table


def test_no_credentials_on_disk(host):
    password = os.environ["LAB_PG_APP_PASSWORD"]
    assert password not in host.file(MANIFEST).content_string
    assert "PGPASSWORD" not in host.file(MANIFEST).content_string
