# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Backup archives on disk: names, checksums and manifests.

A backup is two entries in the backup directory:

- the archive - ``<backup_id>.dump`` (pg_dump custom format) or ``<backup_id>.dir/``
  (directory format);
- its manifest - ``<backup_id>.manifest.json``, written last: a backup without a manifest
  is incomplete and is never restored, listed as verified, or counted by retention.

The sha256 of a file archive is the sha256 of the file. The sha256 of a directory archive
is the sha256 of its ``sha256sum``-style listing (``<hex>  <relative path>\\n`` for each
file, sorted by path), and the manifest keeps the per-file sums in ``files`` so that a
mismatch can name the file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from datetime import UTC, datetime
from typing import Any

MANIFEST_SUFFIX = ".manifest.json"
FORMAT_SUFFIX = {"custom": ".dump", "directory": ".dir"}
MANIFEST_VERSION = 1
_CHUNK = 1 << 20
_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class ArchiveError(Exception):
    """An archive or manifest is missing, unreadable or does not match."""


class ChecksumMismatch(ArchiveError):
    def __init__(self, what: str, expected: str, actual: str) -> None:
        super().__init__(f"sha256 mismatch for {what}: expected {expected[:12]}..,"
                         f" got {actual[:12]}..")
        self.what, self.expected, self.actual = what, expected, actual


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make_backup_id(database: str, when: datetime, label: str | None = None) -> str:
    """``<database>-<YYYYmmddTHHMMSSmmmZ>[-<label>]``; sorts by time for one database."""
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S") + \
        f"{when.microsecond // 1000:03d}Z"
    safe_db = re.sub(r"[^A-Za-z0-9_-]", "_", database)
    backup_id = f"{safe_db}-{stamp}" + (f"-{label}" if label else "")
    check_backup_id(backup_id)
    return backup_id


def check_backup_id(backup_id: str) -> None:
    if not _ID_RE.match(backup_id) or backup_id.endswith(MANIFEST_SUFFIX):
        raise ArchiveError(f"invalid backup id {backup_id!r}: use letters, digits, '.', '_'"
                           " and '-', starting with a letter or digit")


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dir_file_sums(path: str) -> dict[str, str]:
    """sha256 of every regular file under ``path``, by relative POSIX path."""
    sums: dict[str, str] = {}
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path).replace(os.sep, "/")
            sums[rel] = file_sha256(full)
    return sums


def listing_sha256(sums: dict[str, str]) -> str:
    text = "".join(f"{sums[rel]}  {rel}\n" for rel in sorted(sums))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def archive_sha256(path: str) -> tuple[str, dict[str, str] | None]:
    """(sha256, per-file sums or None) of a file or directory archive."""
    if os.path.isdir(path):
        sums = dir_file_sums(path)
        return listing_sha256(sums), sums
    return file_sha256(path), None


def archive_size(path: str) -> int:
    if os.path.isdir(path):
        return sum(os.path.getsize(os.path.join(root, name))
                   for root, _dirs, files in os.walk(path) for name in files)
    return os.path.getsize(path)


def manifest_path(backup_dir: str, backup_id: str) -> str:
    return os.path.join(backup_dir, backup_id + MANIFEST_SUFFIX)


def archive_path(backup_dir: str, backup_id: str, fmt: str) -> str:
    return os.path.join(backup_dir, backup_id + FORMAT_SUFFIX[fmt])


def write_json_atomic(path: str, data: dict[str, Any], mode: int = 0o600) -> None:
    """Write JSON to a temporary file in the same directory, fsync, rename over ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
        fsync_dir(directory)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def fsync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_manifest(path: str) -> dict[str, Any]:
    """Load a manifest; ``path`` may be the manifest, the archive or ``<dir>/<backup_id>``."""
    candidates = [path]
    for suffix in FORMAT_SUFFIX.values():
        if path.endswith(suffix):
            candidates.insert(0, path[: -len(suffix)] + MANIFEST_SUFFIX)
    if not path.endswith(MANIFEST_SUFFIX):
        candidates.append(path + MANIFEST_SUFFIX)
    for candidate in candidates:
        if candidate.endswith(MANIFEST_SUFFIX) and os.path.isfile(candidate):
            try:
                with open(candidate, encoding="utf-8") as handle:
                    data = json.load(handle)
            except (OSError, ValueError) as exc:
                raise ArchiveError(f"cannot read the manifest {candidate}: {exc}") from None
            if not isinstance(data, dict) or data.get("manifest_version") != MANIFEST_VERSION:
                raise ArchiveError(f"{candidate} is not a prodready.deploy backup manifest"
                                   f" (manifest_version {MANIFEST_VERSION} expected)")
            name = data.get("archive")
            # The archive lives beside its manifest: a name with a directory part (a
            # tampered or hand-edited manifest) could point a restore at any file.
            if not isinstance(name, str) or not name or name != os.path.basename(name) \
                    or name in (".", ".."):
                raise ArchiveError(f"{candidate}: the manifest's archive must be a file name"
                                   " in the same directory")
            for key in ("backup_id", "sha256"):
                if not isinstance(data.get(key), str) or not data[key]:
                    raise ArchiveError(f"{candidate}: the manifest has no {key}")
            data["manifest_path"] = candidate
            data["archive_path"] = os.path.join(os.path.dirname(candidate), name)
            return data
    raise ArchiveError(f"no backup manifest found for {path}: a backup is complete only when"
                       f" its {MANIFEST_SUFFIX} exists (an interrupted backup has none)")


def verify_checksum(manifest: dict[str, Any]) -> None:
    """Recompute the archive's sha256 and compare with the manifest; raise on mismatch."""
    path = manifest["archive_path"]
    if not os.path.exists(path):
        raise ArchiveError(f"the archive {path} of backup {manifest['backup_id']} is missing")
    actual, sums = archive_sha256(path)
    if actual == manifest["sha256"]:
        return
    expected_files = manifest.get("files") or {}
    if sums is not None and expected_files:
        for rel in sorted(set(expected_files) | set(sums)):
            if expected_files.get(rel) != sums.get(rel):
                raise ChecksumMismatch(f"{path}/{rel}", expected_files.get(rel) or "(absent)",
                                       sums.get(rel) or "(absent)")
    raise ChecksumMismatch(path, manifest["sha256"], actual)


def list_backups(backup_dir: str, database: str | None = None) -> list[dict[str, Any]]:
    """Complete backups in ``backup_dir`` (those with a readable manifest), oldest first."""
    found = []
    if not os.path.isdir(backup_dir):
        return found
    for name in os.listdir(backup_dir):
        if not name.endswith(MANIFEST_SUFFIX) or name.startswith("."):
            continue
        try:
            manifest = read_manifest(os.path.join(backup_dir, name))
        except ArchiveError:
            continue
        if database is None or manifest.get("database") == database:
            found.append(manifest)
    found.sort(key=lambda m: (m.get("finished_at") or "", m["backup_id"]))
    return found
