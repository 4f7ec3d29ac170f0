# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prodready.deploy.quality_gate through Ansible, with the real tools, on small source trees.

The trees are written by the tests: a passing one and one variant per failing gate. The
planted secret is generated at test time, so the repository holds none.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
import subprocess
import sys
from pathlib import Path

import pytest
from ansible_run import ANSIBLE, REPO, ansible_env, run_module

FIXTURES = Path(__file__).parent / "fixtures" / "quality_gate"
OSV = str(FIXTURES / "osv")
NO_LAB: dict[str, str] = {}
MISSING_BASELINE = "missing.baseline"  # the gate needs no lab service

PASSING = {
    "app/__init__.py": "",
    "app/calc.py": '''"""Arithmetic."""


def add(a, b):
    return a + b


def ratio(a, b):
    if b == 0:
        return None
    return a / b
''',
    "tests/test_calc.py": '''from app.calc import add, ratio


def test_add():
    assert add(2, 3) == 5


def test_ratio():
    assert ratio(1, 2) == 0.5
    assert ratio(1, 0) is None
''',
    "requirements.txt": "# pinned\nsix==1.17.0\n",
}

# Eleven statements no test runs: total coverage drops under 80%.
UNTESTED = '''def report(rows):
    out = []
    for row in rows:
        if row:
            out.append(row)
        else:
            out.append(None)
    total = len(out)
    half = total // 2
    last = out[-1] if out else None
    print(total, half, last)
    return out
'''

SHELL = '''import subprocess


def run(command):
    return subprocess.call(command, shell=True)
'''
SHELL_TEST = '''from app.shell import run


def test_run():
    assert run("exit 0") == 0
'''


def make_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def tree_digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def canary_key() -> str:
    """An AWS-looking access key id, new for every run."""
    alphabet = string.ascii_uppercase + string.digits
    return "AKIA" + "".join(secrets.SystemRandom().choices(alphabet, k=16))


def gate(src: Path, evidence: Path, *flags: str, **args):
    module_args = {"src": str(src), "evidence_dir": str(evidence), "osv_path": OSV, **args}
    if "-vvvv" not in flags:
        return run_module(NO_LAB, "quality_gate", module_args, *flags)
    # run_module() reads stdout as JSON; at -vvvv ansible prints its banner first.
    proc = subprocess.run([str(ANSIBLE), "localhost", "-m", "prodready.deploy.quality_gate",
                           "-a", json.dumps(module_args), *flags], capture_output=True,
                          text=True, env=ansible_env(NO_LAB), timeout=900, check=False)
    start = proc.stdout.index("\n{\n") + 1
    result = json.loads(proc.stdout[start:])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode, result, proc


def by_id(result: dict) -> dict[str, dict]:
    return {g["id"]: g for g in result["gates"]}


def test_passing_tree_check_apply_idempotent(tmp_path):
    src = make_tree(tmp_path / "src", PASSING)
    evidence = tmp_path / "evidence"
    before = tree_digest(src)

    rc, result, _proc = gate(src, evidence, "--check")
    assert rc == 0, result
    assert result["changed"] is True
    assert result["failed_checks"] == [] and result["warned_checks"] == []
    assert [g["status"] for g in result["gates"]] == ["pass"] * 5
    assert not evidence.exists()

    rc, result, _proc = gate(src, evidence)
    assert rc == 0, result
    assert result["changed"] is True
    assert sorted(p.name for p in evidence.iterdir()) == [
        "bandit.json", "coverage.xml", "detect-secrets.json", "junit.xml", "quality-gate.json"]
    gates = by_id(result)
    assert gates["tests"]["message"] == "2 passed, 0 failed, 0 errors, 0 skipped"
    assert gates["coverage"]["details"]["percent"] == 100.0
    assert gates["dependencies"]["message"].startswith(
        "no known vulnerability in 1 pinned requirements")

    rc, again, _proc = gate(src, evidence)
    assert rc == 0
    assert again["changed"] is False and again["evidence_changes"] == []

    # independent reads: the summary on disk is the result; the tree was only read
    summary = json.loads((evidence / "quality-gate.json").read_text())
    assert summary["gates"] == result["gates"]
    assert summary["failed_checks"] == []
    assert tree_digest(src) == before
    assert not list(src.rglob("__pycache__")) and not (src / ".pytest_cache").exists()
    assert not (src / ".coverage").exists()


def test_coverage_drop_fails_the_coverage_gate(tmp_path):
    src = make_tree(tmp_path / "src", {**PASSING, "app/report.py": UNTESTED})
    rc, result, _proc = gate(src, tmp_path / "evidence")
    assert rc != 0
    assert result["failed_checks"] == ["coverage"]
    coverage = by_id(result)["coverage"]
    assert coverage["details"]["percent"] < 80
    assert coverage["findings"][0]["file"] == "app/report.py"
    assert coverage["findings"][0]["line"] == 1
    assert result["msg"].startswith(f"Quality gate failed for {src} (coverage: ")
    # the threshold is a variable
    rc, result, _proc = gate(src, tmp_path / "evidence", coverage_min=50)
    assert rc == 0 and result["failed_checks"] == []


def test_high_bandit_finding_fails_the_bandit_gate(tmp_path):
    src = make_tree(tmp_path / "src", {**PASSING, "app/shell.py": SHELL,
                                       "tests/test_shell.py": SHELL_TEST})
    rc, result, _proc = gate(src, tmp_path / "evidence")
    assert rc != 0
    assert result["failed_checks"] == ["bandit"]
    bandit = by_id(result)["bandit"]
    high = [f for f in bandit["findings"] if f["severity"] == "high"]
    assert [(f["file"], f["line"], f["rule"].split()[0]) for f in high] == [
        ("app/shell.py", 5, "B602")]
    assert "bandit: 1 finding(s) with severity >= high" in result["msg"]
    # only medium and above fail with bandit_severity=medium; the low B404 import warns
    rc, result, _proc = gate(src, tmp_path / "evidence", gates=["bandit"],
                             bandit_severity="medium")
    assert result["failed_checks"] == ["bandit"]


def test_vulnerable_pin_fails_the_dependencies_gate(tmp_path):
    src = make_tree(tmp_path / "src", {**PASSING,
                                       "requirements.txt": "# pinned\nsix==1.16.0\n"})
    rc, result, _proc = gate(src, tmp_path / "evidence")
    assert rc != 0
    assert result["failed_checks"] == ["dependencies"]
    [finding] = by_id(result)["dependencies"]["findings"]
    assert finding["file"] == "requirements.txt" and finding["line"] == 2
    assert finding["rule"] == "TEST-QG-0001"
    assert finding["message"].startswith(
        "six==1.16.0 is affected by TEST-QG-0001 (TEST-CVE-0000-0001); fixed in 1.17.0")
    assert finding["severity"] == "high"
    # accepted risk: a warning
    rc, result, _proc = gate(src, tmp_path / "evidence", vuln_ignore=["TEST-CVE-0000-0001"])
    assert rc == 0 and result["warned_checks"] == ["dependencies"]


def _planted(tmp_path: Path, key: str) -> Path:
    return make_tree(tmp_path / "src", {
        **PASSING,
        # B105 quotes a value assigned to a name with "secret" in it; detect-secrets finds
        # the AWS key.
        "app/settings.py": f'REGION = "eu"\nAWS_SECRET_KEY_ID = "{key}"\n',
        "tests/test_settings.py": "from app import settings\n\n\ndef test_region():\n"
                                  "    assert settings.REGION == 'eu'\n"})


def test_planted_secret_fails_the_secrets_gate_and_is_never_shown(tmp_path):
    key = canary_key()
    src = _planted(tmp_path, key)
    evidence = tmp_path / "evidence"
    rc, result, proc = gate(src, evidence, "-vvvv")
    assert rc != 0
    assert result["failed_checks"] == ["secrets"]
    secrets_gate = by_id(result)["secrets"]
    assert [(f["file"], f["line"], f["rule"]) for f in secrets_gate["findings"]] == [
        ("app/settings.py", 2, "AWS Access Key")]
    bandit = by_id(result)["bandit"]
    assert any(f["rule"].startswith("B105") and f["message"].startswith(
        "Possible hardcoded password (value not shown)") for f in bandit["findings"])
    assert key not in proc.stdout + proc.stderr
    assert key[4:] not in proc.stdout + proc.stderr
    for path in evidence.iterdir():
        assert key not in path.read_text(), path.name


def test_secret_in_the_baseline_passes(tmp_path):
    key = canary_key()
    src = _planted(tmp_path, key)
    scanner = Path(sys.executable).parent / "detect-secrets"
    baseline = subprocess.run([str(scanner), "scan", "--all-files", "."], cwd=src,
                              capture_output=True, text=True, check=True).stdout
    (src / ".secrets.baseline").write_text(baseline)
    before = tree_digest(src)
    rc, result, proc = gate(src, tmp_path / "evidence", "-vvvv")
    assert rc == 0, result
    secrets_gate = by_id(result)["secrets"]
    assert secrets_gate["status"] == "pass"
    assert secrets_gate["details"] == {"new": 0, "baselined": 1, "audited_real": 0,
                                       "baseline": True}
    assert tree_digest(src) == before  # the baseline is never rewritten
    assert key not in proc.stdout + proc.stderr
    # a second secret, not in the baseline, fails
    second = canary_key()
    (src / "app" / "more.py").write_text(f'OTHER = "{second}"\n')
    rc, result, proc = gate(src, tmp_path / "evidence", gates=["secrets"],
                            secrets_baseline=".secrets.baseline")
    assert result["failed_checks"] == ["secrets"]
    assert [f["file"] for f in by_id(result)["secrets"]["findings"]] == ["app/more.py"]
    assert second not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("args", "gate_id", "message"), [
    ({"secrets_baseline": MISSING_BASELINE, "gates": ["secrets"]}, "secrets",
     "cannot read the secrets baseline"),
    ({"requirements": ["nope.txt"], "gates": ["dependencies"]}, "dependencies",
     "cannot read the requirements file"),
    ({"test_command": ["false"], "gates": ["tests", "coverage"]}, "tests",
     "the test command (exit code 1) wrote no JUnit report"),
])
def test_unusable_inputs_fail_their_gate(tmp_path, args, gate_id, message):
    src = make_tree(tmp_path / "src", PASSING)
    rc, result, _proc = gate(src, tmp_path / "evidence", **args)
    assert rc != 0
    assert gate_id in result["failed_checks"]
    assert message in by_id(result)[gate_id]["message"]


def play_role(tmp_path: Path, role_vars: dict, *flags: str) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "gate.yml"
    playbook.write_text(json.dumps([{
        "name": "Gate", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Run the quality gate", "ansible.builtin.include_role": {
            "name": "prodready.deploy.quality_gate"}, "vars": role_vars}],
    }]))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def test_role_prints_every_gate_and_fails_on_a_failed_one(tmp_path):
    src = make_tree(tmp_path / "src", PASSING)
    evidence = tmp_path / "evidence"
    role_vars = {"quality_gate_src": str(src), "quality_gate_evidence_dir": str(evidence),
                 "quality_gate_osv_path": OSV}
    proc = play_role(tmp_path, role_vars, "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not evidence.exists()
    proc = play_role(tmp_path, role_vars)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (evidence / "quality-gate.json").is_file()
    said = " ".join(proc.stdout.split())  # the callback folds long lines
    for gate_id in ("tests", "coverage", "bandit", "dependencies", "secrets"):
        assert f"'{gate_id}: pass - " in said
    (src / "requirements.txt").write_text("six==1.16.0\n")
    proc = play_role(tmp_path, role_vars)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    said = " ".join(proc.stdout.split())
    assert "'dependencies: fail - 1 vulnerable pin(s) among 1 pinned requirements: " \
           "requirements.txt:1 TEST-QG-0001" in said
    assert "'tests: pass - " in said  # printed although the task failed
