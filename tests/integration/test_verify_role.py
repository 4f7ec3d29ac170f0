# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verify role through ansible-playbook against the reference app: the contract checks
and the GDPR suite pass and leave a JUnit file; a release without security headers fails
after the whole report was printed, and the credentials never show."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CANARY = "Bearer canary-verify-4d1e88b0"


def play(lab_env: dict[str, str], tmp_path: Path, role_vars: dict, *flags: str
         ) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "verify.yml"
    playbook.write_text(json.dumps([{
        "name": "Verify", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Verify the release", "ansible.builtin.include_role": {
            "name": "prodready.deploy.verify"}, "vars": role_vars}],
    }]))
    env = {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def test_role_passes_against_the_reference_app(lab_env: dict[str, str],
                                               refapp: dict[str, str], tmp_path: Path) -> None:
    evidence = tmp_path / "evidence"
    proc = play(lab_env, tmp_path, {
        "verify_base_url": refapp["base"], "verify_headers": {"Authorization": CANARY},
        "verify_health_json": {"status": "ok"},
        "verify_expected_digest": refapp["image"],
        "verify_metrics_required": ["http_requests_total", "refapp_build_info"],
        "verify_security_headers_path": "/api/users/1",
        "verify_probes_path": "/api/users", "verify_probes_fields": ["email", "name"],
        "verify_smoke_suites": ["refapp-gdpr.yml"], "verify_smoke_latency_ms": 2000,
        "verify_evidence_dir": str(evidence),
        # The checklist's stages are 100, 500 and 1000 users for 30 s; short ones here.
        "verify_load_enabled": True, "verify_load_users": [4, 16], "verify_load_duration": 2,
        "verify_load_ramp_up": 0})
    out = " ".join((proc.stdout + proc.stderr).split())  # the callback folds long lines
    assert proc.returncode == 0, out
    assert re.search(r"security_headers +\| PASS +\| GET", out)
    assert re.search(r"probe\.xss +\| PASS", out)
    assert "8 passed, 0 failed, 0 error, 0 skipped" in out
    for users in (4, 16):
        row = re.search(rf"load {users} users \| PASS \| (\d+) requests, errors 0%", out)
        assert row and int(row[1]) > 0, out
    assert CANARY not in out
    suite = ET.parse(evidence / "smoke-refapp-gdpr.xml").getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("8", "0")
    assert oct((evidence).stat().st_mode & 0o777) == "0o750"


def test_role_prints_the_report_then_fails(lab_env: dict[str, str], refapp: dict[str, str],
                                           tmp_path: Path) -> None:
    proc = play(lab_env, tmp_path, {
        "verify_base_url": refapp["base"], "verify_headers": {"Authorization": CANARY},
        "verify_expected_version": "0.0.0-not-deployed",
        "verify_skip": ["metrics"],
        "verify_load_enabled": True, "verify_load_users": [3], "verify_load_duration": 1,
        "verify_load_thresholds": {"p50_ms": 0.001}})
    out = " ".join((proc.stdout + proc.stderr).split())  # the callback folds long lines
    assert proc.returncode != 0
    assert re.search(r"version +\| FAIL +\| GET", out)  # the table was printed first
    assert re.search(r"load 3 users \| FAIL \| \d+ requests.* - p50_ms [\d.]+ \(limit < 0.001\)"
                     r": FAIL", out), out
    assert f"Verification of {refapp['base']} failed: version, load at 3 users" in out
    assert CANARY not in out
