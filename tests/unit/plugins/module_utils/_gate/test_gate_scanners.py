# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The bandit and secret gates: thresholds, sanitising, baselines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._gate import bandit, secretscan
from ansible_collections.prodready.deploy.plugins.module_utils._gate.model import (
    FAIL,
    PASS,
    WARN,
    InputError,
    ReportError,
)

FIXTURES = Path(__file__).parent / "fixtures"
CANARY = "canary-" + "Vx7" * 6  # never in any output


def _result(test_id, severity, confidence, text="issue", line=4):
    return {"test_id": test_id, "test_name": "name", "issue_severity": severity,
            "issue_confidence": confidence, "issue_text": text, "filename": "./app.py",
            "line_number": line, "code": f"{line} password = '{CANARY}'\n",
            "issue_cwe": {"id": 78}}


def test_bandit_fixture():
    report = bandit.parse((FIXTURES / "bandit.json").read_text())
    gate = bandit.gate(report)
    assert gate.status == FAIL
    assert gate.findings[0].as_dict() == {
        "file": "calc.py", "line": 9, "rule": "B602 subprocess_popen_with_shell_equals_true",
        "severity": "high",
        "message": "subprocess call with shell=True identified, security issue. "
                   "(confidence high, CWE-78)"}
    assert "generated_at" not in report


def test_bandit_sanitise_drops_code_and_quoted_values():
    report = bandit.sanitise({"generated_at": "now", "errors": [], "metrics": {"./app.py": {}},
                              "results": [_result("B105", "LOW", "MEDIUM",
                                                  f"Possible hardcoded password: '{CANARY}'")]})
    assert CANARY not in json.dumps(report)
    assert report["results"][0]["issue_text"] == "Possible hardcoded password (value not shown)"
    assert report["results"][0]["filename"] == "app.py"
    assert list(report["metrics"]) == ["app.py"]


# (severity, confidence of the finding, threshold severity, threshold confidence, status)
THRESHOLDS = [
    ("HIGH", "HIGH", "high", "low", FAIL),
    ("HIGH", "LOW", "high", "low", FAIL),
    ("HIGH", "LOW", "high", "medium", WARN),
    ("MEDIUM", "HIGH", "high", "low", WARN),
    ("MEDIUM", "HIGH", "medium", "low", FAIL),
    ("LOW", "HIGH", "low", "high", FAIL),
    ("UNDEFINED", "HIGH", "low", "low", WARN),
]


@pytest.mark.parametrize(("sev", "conf", "min_sev", "min_conf", "status"), THRESHOLDS)
def test_bandit_thresholds(sev, conf, min_sev, min_conf, status):
    report = bandit.sanitise({"results": [_result("B999", sev, conf)]})
    gate = bandit.gate(report, min_sev, min_conf)
    assert gate.status == status
    assert gate.findings[0].where() == "app.py:4"


def test_bandit_no_findings_and_errors():
    assert bandit.gate({"results": [], "errors": []}).status == PASS
    gate = bandit.gate(bandit.sanitise({"results": [], "errors": [
        {"filename": "./broken.py", "reason": "syntax error while parsing AST from file"}]}))
    assert (gate.status, gate.findings[0].file, gate.findings[0].rule) == (
        WARN, "broken.py", "bandit-error")


@pytest.mark.parametrize("text", ["nope", "[]", '{"errors": []}'])
def test_bandit_parse_errors(text):
    with pytest.raises(ReportError, match="bandit's JSON report"):
        bandit.parse(text)


def _scan(*entries):
    results: dict = {}
    for filename, kind, digest, line in entries:
        results.setdefault(filename, []).append({"type": kind, "filename": filename,
                                                 "hashed_secret": digest, "is_verified": False,
                                                 "line_number": line})
    return {"version": "1.5.0", "results": results, "generated_at": "now"}


def test_secrets_gate_baseline():
    scan = _scan(("conf.py", "AWS Access Key", "aa", 3), ("old.py", "Secret Keyword", "bb", 9))
    baseline = _scan(("old.py", "Secret Keyword", "bb", 7))  # the line moved: still known
    gate = secretscan.gate(scan, baseline)
    assert gate.status == FAIL
    assert gate.message == "1 secret(s) not in the baseline: conf.py:3 AWS Access Key"
    assert [f.as_dict() for f in gate.findings] == [
        {"file": "conf.py", "line": 3, "rule": "AWS Access Key", "severity": "high",
         "message": "AWS Access Key not in the baseline (value not shown)"}]
    assert gate.details == {"new": 1, "baselined": 1, "audited_real": 0, "baseline": True}
    # the same hash in another file is a new secret
    moved = secretscan.gate(_scan(("new.py", "Secret Keyword", "bb", 1)), baseline)
    assert moved.status == FAIL


def test_secrets_gate_all_known_audited_and_no_baseline():
    scan = _scan(("a.py", "Secret Keyword", "aa", 1))
    assert secretscan.gate(scan, scan).status == PASS
    audited = json.loads(json.dumps(scan))
    audited["results"]["a.py"][0]["is_secret"] = True
    assert secretscan.gate(scan, audited).status == WARN
    none = secretscan.gate(scan, None)
    assert none.message == "1 secret(s) not in the baseline (none given): a.py:1 Secret Keyword"
    assert secretscan.gate(_scan(), None).status == PASS


def test_secrets_argv_and_patterns():
    assert secretscan.scan_argv("ds", "/w/b.json", ["x"]) == [
        "ds", "scan", "--all-files", "--exclude-files", "x", "--baseline", "/w/b.json", "."]
    assert secretscan.scan_argv("ds", None, []) == ["ds", "scan", "--all-files", "."]
    assert secretscan.baseline_exclude("./.secrets.baseline") == r"^\.secrets\.baseline$"
    assert secretscan.directory_exclude("out/evidence/") == "^out/evidence/"
    assert "generated_at" not in secretscan.sanitise(_scan())


def test_secrets_baseline_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read the secrets baseline"):
        secretscan.load_baseline(str(tmp_path / "missing"))
    (tmp_path / "b").write_text("[]")
    with pytest.raises(ReportError, match="is it a detect-secrets baseline"):
        secretscan.load_baseline(str(tmp_path / "b"))
