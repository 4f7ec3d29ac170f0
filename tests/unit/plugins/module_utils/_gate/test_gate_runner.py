# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Argument lists of the runner, and gates that fail without aborting the others."""

from __future__ import annotations

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._gate.model import (
    FAIL,
    SKIP,
    InputError,
)
from ansible_collections.prodready.deploy.plugins.module_utils._gate.runner import (
    Options,
    QualityGate,
)


def _gate(tmp_path, **options):
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)
    gate = QualityGate(Options(src=str(src), evidence_dir=str(src / "out" / "ev"),
                               python="/py", **options), lambda name: f"/bin/{name}")
    gate.work = "/work"
    return gate


def test_default_test_command_with_extra_args(tmp_path):
    gate = _gate(tmp_path, test_args=["tests/unit"])
    src = str(tmp_path / "src")
    assert gate.test_argv() == [
        "/py", "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
        "--junitxml=/work/junit.xml", f"--cov={src}", "--cov-report=xml:/work/coverage.xml",
        "--cov-report=term", "tests/unit"]


def test_custom_test_command_placeholders(tmp_path):
    gate = _gate(tmp_path, test_command=["{python}", "-m", "pytest", "--junitxml={junit_xml}",
                                         "--cov-report=xml:{coverage_xml}", "{src}/t"],
                 test_args=["ignored"])
    assert gate.test_argv() == ["/py", "-m", "pytest", "--junitxml=/work/junit.xml",
                                "--cov-report=xml:/work/coverage.xml",
                                f"{tmp_path}/src/t"]


def test_scanners_skip_an_evidence_dir_inside_the_tree(tmp_path):
    gate = _gate(tmp_path, bandit_exclude=["./tests"])
    argv = gate.bandit_argv()
    assert argv[:8] == ["/bin/bandit", "-r", ".", "-f", "json", "-q", "-o", "/work/bandit.json"]
    assert argv[8:] == ["-x", "./tests,./out/ev"]
    assert "^out/ev/" in gate.secrets_argv()


def test_missing_tool_fails_its_gate_only(tmp_path):
    gate = QualityGate(Options(src=str(tmp_path), evidence_dir=str(tmp_path / "ev"),
                               gates=["bandit"], check_mode=True), lambda name: None)
    report = gate.run()
    statuses = {g["id"]: (g["status"], g["message"]) for g in report["gates"]}
    assert statuses["bandit"][0] == FAIL
    assert statuses["bandit"][1].startswith("bandit is not installed")
    assert statuses["tests"] == (SKIP, "not enabled")
    assert report["failed_checks"] == ["bandit"]
    assert not (tmp_path / "ev").exists()  # check mode


def test_missing_source_tree(tmp_path):
    with pytest.raises(InputError, match="is not a directory"):
        QualityGate(Options(src=str(tmp_path / "nope"), evidence_dir=str(tmp_path)),
                    lambda name: None).run()
