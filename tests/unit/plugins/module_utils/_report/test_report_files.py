# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the release report goes, and writing it: modes, whole files, errors by path."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._report.files import (
    ReportWriteError,
    report_directory,
    write_atomic,
    write_reports,
)
from ansible_collections.prodready.deploy.plugins.module_utils._report.steps import (
    StepResult,
    build_report,
)

REPORT = build_report([StepResult("backup", "pass", "1 task, 0 changed", tasks=1, started=1.0,
                                  finished=2.0)], 0.0, 3.0, release_id="r1", app="shop")
NAMES = ["release-report.json", "release-report.md", "release-report.xml"]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize(("configured", "environ", "expected"), [
    ("/srv/evidence", {"AWX_ISOLATED_DATA_DIR": "/runner/artifacts/1"}, "/srv/evidence"),
    ("evidence/r1", {}, "/work/ci/evidence/r1"),
    ("../evidence", {}, "/work/evidence"),
    (None, {"AWX_ISOLATED_DATA_DIR": "/pd/artifacts/abc"}, "/pd/artifacts/abc"),
    ("", {"AWX_ISOLATED_DATA_DIR": "/pd/artifacts/abc"}, "/pd/artifacts/abc"),
    (None, {"AWX_ISOLATED_DATA_DIR": ""}, "/work/ci/release-report"),
    (None, {}, "/work/ci/release-report"),
])
def test_report_directory(configured, environ, expected):
    assert report_directory(configured, environ, "/work/ci") == expected


def test_report_directory_expands_the_home_directory(monkeypatch):
    monkeypatch.setenv("HOME", "/home/deployer")
    assert report_directory("~/evidence", {}, "/work/ci") == "/home/deployer/evidence"


def test_writes_the_three_files_with_their_modes(tmp_path):
    old_umask = os.umask(0o077)  # the modes are the contract, whatever the umask
    try:
        directory = tmp_path / "a" / "release-report"
        paths = write_reports(str(directory), REPORT)
    finally:
        os.umask(old_umask)
    assert paths == [str(directory / n) for n in ("release-report.json", "release-report.xml",
                                                  "release-report.md")]
    assert sorted(p.name for p in directory.iterdir()) == NAMES  # no temporary file left
    assert mode(directory) == 0o750
    assert {p.name: mode(p) for p in directory.iterdir()} == dict.fromkeys(NAMES, 0o640)
    assert json.loads((directory / "release-report.json").read_text()) == REPORT
    assert (directory / "release-report.md").read_text().startswith(
        "# Release report shop r1: PASS\n")


def test_an_existing_directory_keeps_its_mode_and_old_files_are_replaced(tmp_path):
    directory = tmp_path / "artifacts"
    directory.mkdir(mode=0o700)
    directory.chmod(0o700)
    old = directory / "release-report.json"
    old.write_text("stale")
    old_inode = old.stat().st_ino
    write_reports(str(directory), REPORT)
    assert mode(directory) == 0o700
    assert json.loads(old.read_text()) == REPORT
    # A rename, not a rewrite in place: a reader never sees half a file.
    assert old.stat().st_ino != old_inode


def test_a_file_in_the_way_of_the_directory_is_named(tmp_path):
    blocker = tmp_path / "evidence"
    blocker.write_text("")
    with pytest.raises(ReportWriteError) as info:
        write_reports(str(blocker), REPORT)
    assert str(info.value) == f"Failed to create {blocker} (a file is in the way)"


def test_a_failed_write_names_the_file_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "release-report.json"
    target.mkdir()  # renaming a file over a directory fails
    with pytest.raises(ReportWriteError) as info:
        write_atomic(str(target), b"{}")
    assert str(info.value) == f"Failed to write {target} (Is a directory)"
    assert [p.name for p in tmp_path.iterdir()] == ["release-report.json"]


def test_a_directory_that_cannot_be_created_is_named(tmp_path):
    parent = tmp_path / "file"
    parent.write_text("")
    with pytest.raises(ReportWriteError) as info:
        write_reports(str(parent / "sub"), REPORT)
    assert str(info.value) == f"Failed to create {parent / 'sub'} (Not a directory)"
