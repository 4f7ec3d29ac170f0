# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The backup layout on disk: ids, sha256 of files and directories, manifests."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg import archive

WHEN = datetime(2026, 11, 27, 10, 0, 5, 123456, tzinfo=UTC)


def make_backup(tmp_path: Path, backup_id: str = "db-1", fmt: str = "custom",
                database: str = "db", finished_at: str = "2026-11-27T10:00:00.000Z",
                ) -> dict[str, Any]:
    """A complete backup (archive + manifest) in tmp_path; its manifest as read back."""
    path = Path(archive.archive_path(str(tmp_path), backup_id, fmt))
    if fmt == "custom":
        path.write_bytes(b"PGDMP" + bytes(range(256)) * 4)
    else:
        (path / "sub").mkdir(parents=True)
        (path / "toc.dat").write_bytes(b"toc" * 100)
        (path / "3001.dat.gz").write_bytes(b"rows" * 100)
        (path / "sub" / "x.dat").write_bytes(b"x")
    sha, files = archive.archive_sha256(str(path))
    archive.write_json_atomic(archive.manifest_path(str(tmp_path), backup_id), {
        "manifest_version": archive.MANIFEST_VERSION, "backup_id": backup_id,
        "database": database, "format": fmt, "archive": path.name, "sha256": sha,
        "files": files, "tables": {"public.t": 3}, "finished_at": finished_at})
    return archive.read_manifest(archive.manifest_path(str(tmp_path), backup_id))


@pytest.mark.parametrize(("database", "label", "expected"), [
    ("shop", None, "shop-20261127T100005123Z"),
    ("shop", "pre-release", "shop-20261127T100005123Z-pre-release"),
    ("my db/ü", None, "my_db__-20261127T100005123Z"),
])
def test_make_backup_id(database: str, label: str | None, expected: str) -> None:
    assert archive.make_backup_id(database, WHEN, label) == expected


@pytest.mark.parametrize("bad", ["", "-x", ".hidden", "a/b", "a b", "x.manifest.json", "ä"])
def test_check_backup_id_refuses(bad: str) -> None:
    with pytest.raises(archive.ArchiveError, match="invalid backup id"):
        archive.check_backup_id(bad)


def test_make_backup_id_refuses_a_bad_label() -> None:
    with pytest.raises(archive.ArchiveError):
        archive.make_backup_id("db", WHEN, "no spaces")


def test_iso_is_utc_with_milliseconds() -> None:
    assert archive.iso(WHEN) == "2026-11-27T10:00:05.123Z"


def test_file_sha256_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # more than one chunk
    (tmp_path / "f").write_bytes(data)
    assert archive.file_sha256(str(tmp_path / "f")) == hashlib.sha256(data).hexdigest()


def test_directory_sha256_is_the_sha256sum_listing(tmp_path: Path) -> None:
    manifest = make_backup(tmp_path, fmt="directory")
    root = Path(manifest["archive_path"])
    sums = {rel: hashlib.sha256((root / rel).read_bytes()).hexdigest()
            for rel in ("3001.dat.gz", "sub/x.dat", "toc.dat")}
    listing = "".join(f"{sums[rel]}  {rel}\n" for rel in sorted(sums))
    assert manifest["files"] == sums
    assert manifest["sha256"] == hashlib.sha256(listing.encode()).hexdigest()
    assert archive.archive_size(str(root)) == 300 + 400 + 1


def test_write_json_atomic_is_private_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    archive.write_json_atomic(str(target), {"b": 1, "a": [1, 2]})
    assert json.loads(target.read_text()) == {"a": [1, 2], "b": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


def test_write_json_atomic_keeps_the_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "m.json"
    archive.write_json_atomic(str(target), {"v": 1})
    with pytest.raises(TypeError):
        archive.write_json_atomic(str(target), {"v": object()})
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(os.listdir(tmp_path)) == ["m.json"]


@pytest.mark.parametrize("given", ["db-1.manifest.json", "db-1.dump", "db-1"])
def test_read_manifest_from_manifest_archive_or_id(tmp_path: Path, given: str) -> None:
    make_backup(tmp_path)
    manifest = archive.read_manifest(str(tmp_path / given))
    assert manifest["backup_id"] == "db-1"
    assert manifest["manifest_path"] == str(tmp_path / "db-1.manifest.json")
    assert manifest["archive_path"] == str(tmp_path / "db-1.dump")


def test_read_manifest_of_a_directory_archive(tmp_path: Path) -> None:
    make_backup(tmp_path, fmt="directory")
    assert archive.read_manifest(str(tmp_path / "db-1.dir"))["format"] == "directory"


def test_read_manifest_refuses_an_archive_without_manifest(tmp_path: Path) -> None:
    (tmp_path / "db-2.dump").write_bytes(b"PGDMP")
    with pytest.raises(archive.ArchiveError, match="no backup manifest found .* interrupted"):
        archive.read_manifest(str(tmp_path / "db-2.dump"))


@pytest.mark.parametrize(("content", "match"), [
    ("{not json", "cannot read the manifest"),
    ("[1, 2]", "is not a prodready.deploy backup manifest"),
    ('{"manifest_version": 99}', "manifest_version 1 expected"),
    # A tampered manifest must not point a restore at a file elsewhere.
    ('{"manifest_version": 1, "backup_id": "x", "sha256": "ab", "archive": "../etc/x.dump"}',
     "must be a file name in the same directory"),
    ('{"manifest_version": 1, "backup_id": "x", "sha256": "ab", "archive": "/tmp/x.dump"}',
     "must be a file name in the same directory"),
    ('{"manifest_version": 1, "backup_id": "x", "sha256": "ab", "archive": ".."}',
     "must be a file name in the same directory"),
    ('{"manifest_version": 1, "backup_id": "x", "sha256": "ab"}',
     "must be a file name in the same directory"),
    ('{"manifest_version": 1, "backup_id": "x", "archive": "x.dump"}', "has no sha256"),
])
def test_read_manifest_refuses_bad_manifests(tmp_path: Path, content: str, match: str) -> None:
    (tmp_path / "x.manifest.json").write_text(content)
    with pytest.raises(archive.ArchiveError, match=match):
        archive.read_manifest(str(tmp_path / "x"))


@pytest.mark.parametrize("fmt", ["custom", "directory"])
def test_verify_checksum_accepts_an_intact_archive(tmp_path: Path, fmt: str) -> None:
    archive.verify_checksum(make_backup(tmp_path, fmt=fmt))


def test_verify_checksum_detects_a_flipped_byte_in_a_file(tmp_path: Path) -> None:
    manifest = make_backup(tmp_path)
    path = Path(manifest["archive_path"])
    data = bytearray(path.read_bytes())
    data[100] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(archive.ChecksumMismatch) as info:
        archive.verify_checksum(manifest)
    assert info.value.expected == manifest["sha256"]
    assert info.value.actual == hashlib.sha256(bytes(data)).hexdigest()
    assert str(info.value) == (f"sha256 mismatch for {path}: expected"
                               f" {manifest['sha256'][:12]}.., got {info.value.actual[:12]}..")


@pytest.mark.parametrize(("change", "named"), [
    (lambda root: (root / "sub" / "x.dat").write_bytes(b"y"), "sub/x.dat"),
    (lambda root: (root / "toc.dat").unlink(), "toc.dat"),
    (lambda root: (root / "extra.dat").write_bytes(b""), "extra.dat"),
])
def test_verify_checksum_names_the_changed_file_of_a_directory(tmp_path: Path, change: Any,
                                                               named: str) -> None:
    manifest = make_backup(tmp_path, fmt="directory")
    change(Path(manifest["archive_path"]))
    with pytest.raises(archive.ChecksumMismatch, match=f"for .*db-1.dir/{named}:"):
        archive.verify_checksum(manifest)


def test_verify_checksum_of_a_missing_archive(tmp_path: Path) -> None:
    manifest = make_backup(tmp_path)
    os.unlink(manifest["archive_path"])
    with pytest.raises(archive.ArchiveError, match="of backup db-1 is missing"):
        archive.verify_checksum(manifest)


def test_list_backups_complete_ones_oldest_first(tmp_path: Path) -> None:
    make_backup(tmp_path, "db-b", finished_at="2026-11-27T12:00:00.000Z")
    make_backup(tmp_path, "db-a", finished_at="2026-11-27T11:00:00.000Z")
    make_backup(tmp_path, "other-1", database="other")
    (tmp_path / "db-c.dump").write_bytes(b"PGDMP")  # interrupted: no manifest
    (tmp_path / "broken.manifest.json").write_text("{")
    assert [m["backup_id"] for m in archive.list_backups(str(tmp_path), "db")] == ["db-a",
                                                                                   "db-b"]
    assert len(archive.list_backups(str(tmp_path))) == 3
    assert archive.list_backups(str(tmp_path / "absent")) == []
