#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: quality_gate
short_description: Run the tests, coverage, bandit, dependency and secret gates on a source tree
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Runs the release's quality and security gates against an application's source tree in one
    call and returns one report - each gate with a status (V(pass), V(warn), V(fail) or
    V(skip)), a message and findings that each name a file and a line.
  - The tools run side by side - the test command, C(bandit -f json), C(detect-secrets scan)
    and, when asked, C(pip-audit). The offline dependency audit is done in the module.
  - Gate V(tests) - the test command's JUnit XML report; fails on a failed or erroring test,
    on no tests at all, or on a non-zero exit code.
  - Gate V(coverage) - its Cobertura XML report (pytest-cov's C(--cov-report=xml)); fails
    under O(coverage_min) percent (statements, plus branches when measured, as
    C(coverage report) counts them). The findings are the files under the minimum, each at its
    first line not covered.
  - Gate V(bandit) - fails on a finding of at least O(bandit_severity) and
    O(bandit_confidence); warns on the others. Bandit quotes source code and, for its
    hardcoded-password tests, the value found; both are removed before anything is returned
    or written.
  - Gate V(dependencies) - pinned requirements (C(name==version), in O(requirements) and the
    files they include with C(-r) or C(-c)) against OSV advisories from O(osv_path), offline;
    and against pip-audit's online service when O(pip_audit=true). Fails on a known vulnerable
    pin, naming the requirement file and line, the advisory id and aliases, and the fixed
    version. Requirements that are not pinned warn - they cannot be audited.
  - Gate V(secrets) - C(detect-secrets scan) of every file of the tree (virtualenvs, caches
    and version control excluded) with the plugins and filters of the baseline file; fails on
    a secret the baseline does not list (same file, type and hash). Findings carry file, line
    and type only, never the value.
  - The evidence directory receives the reports (C(junit.xml), C(coverage.xml),
    C(bandit.json), C(detect-secrets.json), C(pip-audit.json)) and C(quality-gate.json), the
    summary. Timestamps, durations and host names are left out of them, so a second run over
    the same tree writes nothing and reports no change.
  - Fails, after returning the whole report, when a gate fails.
options:
  src:
    description: Root of the application's source tree. The tools run in it; it is only read.
    type: path
    required: true
  evidence_dir:
    description: Directory for the evidence files; created when missing.
    type: path
    required: true
  gates:
    description: The gates to run; the others are reported as V(skip).
    type: list
    elements: str
    choices: [tests, coverage, bandit, dependencies, secrets]
    default: [tests, coverage, bandit, dependencies, secrets]
  test_command:
    description:
      - The test command as an argument list, run in O(src). C({python}) is replaced by the
        module's Python, C({src}) by O(src), C({junit_xml}) and C({coverage_xml}) by where the
        command must write its JUnit XML and Cobertura XML reports.
      - Empty for the default, pytest with pytest-cov in the module's Python -
        C({python} -m pytest -q -p no:cacheprovider -o junit_family=xunit1
        --junitxml={junit_xml} --cov={src} --cov-report=xml:{coverage_xml}
        --cov-report=term) followed by O(test_args).
      - Every command gets C(PYTHONDONTWRITEBYTECODE=1) and C(COVERAGE_FILE) in a private
        directory, so neither bytecode nor coverage data is written into the tree.
    type: list
    elements: str
    default: []
  test_args:
    description: Arguments appended to the default test command, e.g. the test directory.
    type: list
    elements: str
    default: []
  coverage_min:
    description: Minimum total coverage in percent.
    type: float
    default: 80
  bandit_severity:
    description: Lowest bandit severity that fails the gate.
    type: str
    choices: [low, medium, high]
    default: high
  bandit_confidence:
    description: Lowest bandit confidence that fails the gate (with O(bandit_severity)).
    type: str
    choices: [low, medium, high]
    default: low
  bandit_exclude:
    description:
      - Paths bandit skips, relative to O(src) as C(./tests); bandit excludes a file whose
        path contains one of them or matches it as a glob.
    type: list
    elements: str
    default: [./tests, ./.venv, ./venv, ./.git, ./.tox, ./node_modules, ./build, ./dist,
              __pycache__]
  requirements:
    description:
      - Requirement files to audit (requirements, pip-tools lock or constraints files),
        relative to O(src).
    type: list
    elements: path
    default: [requirements.txt]
  osv_path:
    description:
      - OSV advisories for the offline audit - a JSON file (one advisory, a list, or an OSV
        C(querybatch)-style object with a C(vulns) list), a directory of them, or a zip such
        as OSV's C(PyPI/all.zip).
      - Without it and without O(pip_audit), the dependency gate warns that it has no source.
    type: path
  pip_audit:
    description:
      - Also ask pip-audit's online vulnerability service (C(--no-deps --disable-pip), so
        nothing is installed; every requirement must be pinned).
    type: bool
    default: false
  pip_audit_service:
    description: The service pip-audit asks.
    type: str
    choices: [pypi, osv]
    default: pypi
  vuln_ignore:
    description:
      - Advisory ids or aliases whose risk is accepted - reported as warnings, not failures.
    type: list
    elements: str
    default: []
  secrets_baseline:
    description:
      - detect-secrets baseline file, relative to O(src) (or absolute). It is never modified
        (the scan works on a private copy).
      - Empty to use C(.secrets.baseline) in O(src) when there is one; without a baseline
        every secret found fails.
    type: path
  secrets_exclude:
    description: Extra regular expressions of paths (relative to O(src)) the secret scan skips.
    type: list
    elements: str
    default: []
  timeout:
    description: Seconds each tool may run.
    type: int
    default: 1800
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Runs the tools (they only read the tree) and reports the gates; writes no evidence.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Whether a second run over the same tree changes nothing.
    support: full
    details: The evidence has no timestamps; the same tree gives the same files and no change.
requirements:
  - bandit, detect-secrets, pytest and pytest-cov (for the default test command), and
    pip-audit when O(pip_audit=true), beside the module's Python or on the C(PATH)
  - packaging (Python library)
notes:
  - The module is needed because no collection shipped with Ansible runs these tools and
    parses their reports.
  - pytest writes the line of a test's C(def) 0-based in JUnit XML; a failed test's finding
    takes the line from the traceback in the test's file, else that attribute plus one.
seealso:
  - name: OSV schema
    description: The advisory format the offline audit reads.
    link: https://ossf.github.io/osv-schema/
  - name: detect-secrets
    description: How to create and audit the baseline file.
    link: https://github.com/Yelp/detect-secrets
"""

EXAMPLES = r"""
---
- name: Run the quality and security gates with an offline advisory database
  prodready.deploy.quality_gate:
    src: /srv/build/shop
    evidence_dir: /srv/build/evidence/quality
    osv_path: /srv/advisories/PyPI
    test_args: [tests/unit]
  register: gate

- name: Show the failed gates
  ansible.builtin.debug:
    msg: "{{ gate.failed_checks }}"

- name: Test the application from another directory, and ask pip-audit too
  prodready.deploy.quality_gate:
    src: /srv/build/shop/app
    evidence_dir: /srv/build/evidence/quality
    test_command: ["{python}", -m, pytest, -q, "--junitxml={junit_xml}", --cov=app,
                   "--cov-report=xml:{coverage_xml}", ../tests]
    coverage_min: 85
    pip_audit: true
    secrets_baseline: ../.secrets.baseline
"""

RETURN = r"""
gates:
  description: Every gate in the order tests, coverage, bandit, dependencies, secrets.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The gate.
      type: str
      sample: coverage
    status:
      description: V(pass), V(warn), V(fail), or V(skip) when not enabled.
      type: str
      sample: fail
    message:
      description: One line - the counts, or what failed and the first findings.
      type: str
      sample: "72.5% covered, under the minimum of 80.0% (11 lines not covered): app.py:12 coverage"
    findings:
      description: What the gate found; the failing findings first.
      type: list
      elements: dict
      sample:
        - {file: app.py, line: 4, rule: B602 subprocess_popen_with_shell_equals_true,
           severity: high,
           message: "subprocess call with shell=True identified, security issue.
             (confidence high, CWE-78)"}
    details:
      description: The gate's counts and thresholds.
      type: dict
      sample: {percent: 72.5, minimum: 80.0, covered: 29, valid: 40}
failed_checks:
  description: Ids of the gates that failed.
  returned: always
  type: list
  elements: str
  sample: [coverage, secrets]
warned_checks:
  description: Ids of the gates that warned.
  returned: always
  type: list
  elements: str
  sample: [dependencies]
summary:
  description: "One line per gate: C(<id>: <status> - <message>)."
  returned: always
  type: list
  elements: str
  sample: ["tests: pass - 12 passed, 0 failed, 0 errors, 0 skipped"]
commands:
  description: The commands run, as shell-quoted lines (reports shown in the evidence directory).
  returned: always
  type: list
  elements: str
  sample: ["/venv/bin/bandit -r . -f json -q -o /evidence/bandit.json -x ./tests"]
evidence_files:
  description: The evidence files of this run, in O(evidence_dir).
  returned: always
  type: list
  elements: str
  sample: [bandit.json, coverage.xml, junit.xml, quality-gate.json]
evidence_changes:
  description: The evidence files written or removed (in check mode, that would be).
  returned: always
  type: list
  elements: str
  sample: [quality-gate.json]
durations:
  description: Seconds each tool ran.
  returned: always
  type: dict
  sample: {"the test command": 2.4, bandit: 0.8, detect-secrets: 1.1}
"""

import os
import sys
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.prodready.deploy.plugins.module_utils._gate.deps import HAS_PACKAGING
from ansible_collections.prodready.deploy.plugins.module_utils._gate.model import (
    GATE_IDS,
    SEVERITIES,
    GateError,
)
from ansible_collections.prodready.deploy.plugins.module_utils._gate.runner import (
    DEFAULT_BANDIT_EXCLUDE,
    Options,
    QualityGate,
)


def main() -> None:
    argument_spec = {
        "src": {"type": "path", "required": True},
        "evidence_dir": {"type": "path", "required": True},
        "gates": {"type": "list", "elements": "str", "choices": list(GATE_IDS),
                  "default": list(GATE_IDS)},
        "test_command": {"type": "list", "elements": "str", "default": []},
        "test_args": {"type": "list", "elements": "str", "default": []},
        "coverage_min": {"type": "float", "default": 80},
        "bandit_severity": {"type": "str", "choices": list(SEVERITIES), "default": "high"},
        "bandit_confidence": {"type": "str", "choices": list(SEVERITIES), "default": "low"},
        "bandit_exclude": {"type": "list", "elements": "str",
                           "default": list(DEFAULT_BANDIT_EXCLUDE)},
        "requirements": {"type": "list", "elements": "path", "default": ["requirements.txt"]},
        "osv_path": {"type": "path"},
        "pip_audit": {"type": "bool", "default": False},
        "pip_audit_service": {"type": "str", "choices": ["pypi", "osv"], "default": "pypi"},
        "vuln_ignore": {"type": "list", "elements": "str", "default": []},
        "secrets_baseline": {"type": "path", "no_log": False},
        "secrets_exclude": {"type": "list", "elements": "str", "default": [],
                            "no_log": False},
        "timeout": {"type": "int", "default": 1800},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    if not HAS_PACKAGING:
        module.fail_json(msg=missing_required_lib("packaging"))
    params = module.params
    options = Options(
        src=params["src"], evidence_dir=params["evidence_dir"], gates=params["gates"],
        test_command=params["test_command"] or None, test_args=params["test_args"],
        coverage_min=params["coverage_min"], bandit_severity=params["bandit_severity"],
        bandit_confidence=params["bandit_confidence"], bandit_exclude=params["bandit_exclude"],
        requirements=params["requirements"], osv_path=params["osv_path"],
        pip_audit=params["pip_audit"], pip_audit_service=params["pip_audit_service"],
        vuln_ignore=params["vuln_ignore"], secrets_baseline=params["secrets_baseline"],
        secrets_exclude=params["secrets_exclude"], timeout=params["timeout"],
        check_mode=module.check_mode, python=sys.executable)

    def which(name: str) -> str | None:
        return module.get_bin_path(name, opt_dirs=[os.path.dirname(sys.executable)])

    try:
        report = QualityGate(options, which).run()
    except GateError as exc:
        module.fail_json(msg=f"Cannot run the quality gate on {params['src']} ({exc})")
    except OSError as exc:
        module.fail_json(msg=f"Cannot write the evidence of the quality gate to "
                             f"{params['evidence_dir']} ({exc})")
    result: dict[str, Any] = {
        "changed": bool(report["evidence_changes"]),
        "gates": report["gates"], "failed_checks": report["failed_checks"],
        "warned_checks": report["warned_checks"],
        "summary": [f"{gate['id']}: {gate['status']} - {gate['message']}"
                    for gate in report["gates"]],
        "commands": report["commands"], "evidence_files": report["evidence_files"],
        "evidence_changes": report["evidence_changes"], "durations": report["durations"],
    }
    if report["failed_checks"]:
        reasons = "; ".join(f"{gate['id']}: {gate['message']}" for gate in report["gates"]
                            if gate["status"] == "fail")
        module.fail_json(msg=f"Quality gate failed for {params['src']} ({reasons})", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
