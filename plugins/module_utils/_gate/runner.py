# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Run the gate: the tools concurrently, then every enabled gate, then the evidence.

Private to this collection (leading underscore): the API may change without notice.

The tools write into a private temporary directory; the evidence directory receives their
reports, normalised, only when they differ from what it holds and not in check mode. The
source tree is only read: the default test command keeps pytest's cache, bytecode and
coverage data out of it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import bandit as bandit_gate
from . import deps, evidence, reports, secretscan
from .model import FAIL, GATE_IDS, SKIP, WARN, Gate, GateError, InputError, ReportError

DEFAULT_TEST_COMMAND = (
    "{python}", "-m", "pytest", "-q", "-p", "no:cacheprovider",
    # xunit1 keeps each test's file and line in the report.
    "-o", "junit_family=xunit1", "--junitxml={junit_xml}",
    "--cov={src}", "--cov-report=xml:{coverage_xml}", "--cov-report=term",
)
DEFAULT_BANDIT_EXCLUDE = ("./tests", "./.venv", "./venv", "./.git", "./.tox", "./node_modules",
                          "./build", "./dist", "__pycache__")


@dataclass
class Options:
    src: str
    evidence_dir: str
    gates: list[str] = field(default_factory=lambda: list(GATE_IDS))
    test_command: list[str] | None = None
    test_args: list[str] = field(default_factory=list)
    coverage_min: float = 80.0
    bandit_severity: str = "high"
    bandit_confidence: str = "low"
    bandit_exclude: list[str] = field(default_factory=lambda: list(DEFAULT_BANDIT_EXCLUDE))
    requirements: list[str] = field(default_factory=lambda: ["requirements.txt"])
    osv_path: str | None = None
    pip_audit: bool = False
    pip_audit_service: str = "pypi"
    vuln_ignore: list[str] = field(default_factory=list)
    secrets_baseline: str | None = None
    secrets_exclude: list[str] = field(default_factory=list)
    timeout: int = 1800
    check_mode: bool = False
    python: str = sys.executable


@dataclass
class Ran:
    """A finished tool run."""

    name: str
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float

    def tail(self, lines: int = 5) -> str:
        text = (self.stderr.strip() or self.stdout.strip()).splitlines()
        return " | ".join(text[-lines:])


class ToolError(GateError):
    """A tool could not be run (missing program, timeout)."""


def run_tool(name: str, argv: list[str], cwd: str, env: dict[str, str],
             timeout: int) -> Ran:
    """One tool, as an argument list (subprocess rather than run_command: the tools run
    in threads side by side and each needs a timeout)."""
    started = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                              errors="replace", stdin=subprocess.DEVNULL, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired as exc:
        raise ToolError(f"{name} did not finish within {timeout} s") from exc
    except OSError as exc:
        raise ToolError(f"cannot run {name} ({exc.strerror}: {argv[0]})") from exc
    return Ran(name, argv, proc.returncode, proc.stdout, proc.stderr,
               round(time.monotonic() - started, 2))


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _inside(path: str, root: str) -> str | None:
    rel = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
    return None if rel == os.pardir or rel.startswith(os.pardir + os.sep) else rel


class QualityGate:
    """One evaluation; `which(name)` finds a tool's program (None when missing)."""

    def __init__(self, options: Options, which: Callable[[str], str | None]) -> None:
        self.opt = options
        self.which = which
        self.src = os.path.abspath(options.src)
        self.work = ""
        self.runs: dict[str, Ran] = {}
        self.files: dict[str, bytes] = {}

    # --- argument lists ---------------------------------------------------------------------

    def _program(self, name: str) -> str:
        found = self.which(name)
        if not found:
            raise ToolError(f"{name} is not installed (not found beside {self.opt.python} "
                            f"nor on the PATH)")
        return found

    def test_argv(self) -> list[str]:
        values = {"{python}": self.opt.python, "{src}": self.src,
                  "{junit_xml}": os.path.join(self.work, "junit.xml"),
                  "{coverage_xml}": os.path.join(self.work, "coverage.xml")}
        template = list(self.opt.test_command or DEFAULT_TEST_COMMAND)
        if not self.opt.test_command:
            template += self.opt.test_args
        argv = []
        for word in template:
            for placeholder, value in values.items():
                word = word.replace(placeholder, value)
            argv.append(word)
        return argv

    def _tree_excludes(self) -> list[str]:
        """Paths inside the tree the scanners skip: the evidence directory, if it is in it."""
        rel = _inside(self.opt.evidence_dir, self.src)
        return [rel] if rel and rel != "." else []

    def bandit_argv(self) -> list[str]:
        excludes = list(self.opt.bandit_exclude) + [f"./{rel}" for rel in self._tree_excludes()]
        argv = [self._program("bandit"), "-r", ".", "-f", "json", "-q",
                "-o", os.path.join(self.work, "bandit.json")]
        return argv + (["-x", ",".join(excludes)] if excludes else [])

    def baseline_path(self) -> str | None:
        if self.opt.secrets_baseline:
            return os.path.join(self.src, self.opt.secrets_baseline)
        default = os.path.join(self.src, ".secrets.baseline")
        return default if os.path.isfile(default) else None

    def secrets_argv(self) -> list[str]:
        excludes = list(secretscan.DEFAULT_EXCLUDES) + list(self.opt.secrets_exclude)
        excludes += [secretscan.directory_exclude(rel) for rel in self._tree_excludes()]
        baseline = self.baseline_path()
        copy = None
        if baseline:
            rel = _inside(baseline, self.src)
            if rel:
                excludes.append(secretscan.baseline_exclude(rel))
            copy = os.path.join(self.work, "baseline.json")
        return secretscan.scan_argv(self._program("detect-secrets"), copy, excludes)

    def requirement_paths(self) -> list[str]:
        return [os.path.join(self.src, path) for path in self.opt.requirements]

    def pip_audit_argv(self) -> list[str]:
        return deps.pip_audit_argv(self._program("pip-audit"), self.requirement_paths(),
                                   self.opt.pip_audit_service,
                                   os.path.join(self.work, "pip-audit.json"))

    # --- running ----------------------------------------------------------------------------

    def _jobs(self) -> dict[str, Callable[[], Ran]]:
        enabled = set(self.opt.gates)
        env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1",
               "COVERAGE_FILE": os.path.join(self.work, ".coverage")}
        timeout = self.opt.timeout
        jobs: dict[str, Callable[[], Ran]] = {}

        def job(name: str, build: Callable[[], list[str]]) -> Callable[[], Ran]:
            return lambda: run_tool(name, build(), self.src, env, timeout)

        if enabled & {"tests", "coverage"}:
            jobs["tests"] = job("the test command", self.test_argv)
        if "bandit" in enabled:
            jobs["bandit"] = job("bandit", self.bandit_argv)
        if "secrets" in enabled:
            baseline = self.baseline_path()
            if baseline:
                try:
                    shutil.copyfile(baseline, os.path.join(self.work, "baseline.json"))
                except OSError as exc:
                    jobs["secrets"] = _raiser(InputError(
                        f"cannot read the secrets baseline {baseline} ({exc.strerror})"))
            jobs.setdefault("secrets", job("detect-secrets", self.secrets_argv))
        if "dependencies" in enabled and self.opt.pip_audit:
            jobs["pip-audit"] = job("pip-audit", self.pip_audit_argv)
        return jobs

    def run(self) -> dict[str, Any]:
        if not os.path.isdir(self.src):
            raise InputError(f"the source tree {self.src} is not a directory")
        self.work = tempfile.mkdtemp(prefix="quality-gate-")
        try:
            return self._run()
        finally:
            shutil.rmtree(self.work, ignore_errors=True)

    def _run(self) -> dict[str, Any]:
        jobs = self._jobs()
        outcomes: dict[str, Ran | GateError] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(jobs))) as pool:
            futures = {name: pool.submit(func) for name, func in jobs.items()}
            for name, future in futures.items():
                try:
                    outcomes[name] = future.result()
                except GateError as exc:
                    outcomes[name] = exc
        gates = [self._evaluate(gate_id, outcomes) for gate_id in GATE_IDS]
        summary = {
            "src": self.src,
            "gates": [gate.as_dict() for gate in gates],
            "failed_checks": [gate.id for gate in gates if gate.status == FAIL],
            "warned_checks": [gate.id for gate in gates if gate.status == WARN],
            "commands": [self._shown(ran.argv) for ran in self._runs(outcomes)],
        }
        self.files["quality-gate.json"] = evidence.dump_json(summary)
        changes = evidence.plan_and_write(self.opt.evidence_dir, self.files,
                                          write=not self.opt.check_mode)
        return {**summary, "evidence_changes": changes,
                "evidence_files": sorted(self.files),
                "durations": {ran.name: ran.seconds for ran in self._runs(outcomes)}}

    @staticmethod
    def _runs(outcomes: dict[str, Ran | GateError]) -> list[Ran]:
        return [ran for ran in outcomes.values() if isinstance(ran, Ran)]

    def _shown(self, argv: list[str]) -> str:
        """The command as run, with the private work directory shown as the evidence
        directory (where its reports end up)."""
        return shlex.join(argv).replace(self.work, self.opt.evidence_dir)

    def _evaluate(self, gate_id: str, outcomes: dict[str, Ran | GateError]) -> Gate:
        if gate_id not in self.opt.gates:
            return Gate(gate_id, SKIP, "not enabled")
        try:
            return getattr(self, f"_gate_{gate_id}")(outcomes)
        except GateError as exc:
            return Gate(gate_id, FAIL, str(exc))

    @staticmethod
    def _outcome(outcomes: dict[str, Ran | GateError], name: str) -> Ran:
        outcome = outcomes[name]
        if isinstance(outcome, GateError):
            raise outcome
        return outcome

    def _gate_tests(self, outcomes: dict[str, Ran | GateError]) -> Gate:
        ran = self._outcome(outcomes, "tests")
        text = _read(os.path.join(self.work, "junit.xml"))
        junit = None
        if text is not None:
            junit = reports.parse_junit(text)
            self.files["junit.xml"] = evidence.normalise_xml(text)
        return reports.tests_gate(junit, ran.returncode, ran.tail())

    def _gate_coverage(self, outcomes: dict[str, Ran | GateError]) -> Gate:
        self._outcome(outcomes, "tests")
        text = _read(os.path.join(self.work, "coverage.xml"))
        coverage = None
        if text is not None:
            coverage = reports.parse_cobertura(text, self.src)
            self.files["coverage.xml"] = evidence.normalise_xml(text)
        return reports.coverage_gate(coverage, self.opt.coverage_min)

    def _gate_bandit(self, outcomes: dict[str, Ran | GateError]) -> Gate:
        ran = self._outcome(outcomes, "bandit")
        text = _read(os.path.join(self.work, "bandit.json"))
        if text is None or ran.returncode not in (0, 1):
            raise ReportError(f"bandit failed (exit code {ran.returncode}): {ran.tail()}")
        report = bandit_gate.parse(text)
        self.files["bandit.json"] = evidence.dump_json(report)
        return bandit_gate.gate(report, self.opt.bandit_severity, self.opt.bandit_confidence)

    def _gate_secrets(self, outcomes: dict[str, Ran | GateError]) -> Gate:
        ran = self._outcome(outcomes, "secrets")
        if ran.returncode != 0:
            raise ReportError(f"detect-secrets failed (exit code {ran.returncode}): "
                              f"{ran.tail()}")
        baseline_path = self.baseline_path()
        baseline = secretscan.load_baseline(baseline_path) if baseline_path else None
        if baseline is not None:
            text = _read(os.path.join(self.work, "baseline.json")) or ""
            scan = secretscan.load(text, "the detect-secrets scan")
        else:
            scan = secretscan.load(ran.stdout, "the detect-secrets scan")
        scan = secretscan.sanitise(scan)
        self.files["detect-secrets.json"] = evidence.dump_json(scan)
        return secretscan.gate(scan, baseline)

    def _gate_dependencies(self, outcomes: dict[str, Ran | GateError]) -> Gate:
        pins: list[deps.Pin] = []
        for path in self.requirement_paths():
            pins += deps.parse_requirements(path, self.src)
        vulns: list[deps.Vulnerability] = []
        warnings = []
        sources = []
        if self.opt.osv_path:
            vulns += deps.match(pins, deps.load_advisories(self.opt.osv_path))
            sources.append(f"OSV advisories {self.opt.osv_path}")
        if self.opt.pip_audit:
            ran = self._outcome(outcomes, "pip-audit")
            text = _read(os.path.join(self.work, "pip-audit.json"))
            if text is None or ran.returncode not in (0, 1):
                raise ReportError(f"pip-audit failed (exit code {ran.returncode}): "
                                  f"{ran.tail()}")
            found, skipped = deps.parse_pip_audit(text, pins)
            vulns += found
            warnings += skipped
            self.files["pip-audit.json"] = text.encode("utf-8")
            sources.append(f"pip-audit ({self.opt.pip_audit_service})")
        return deps.gate(pins, vulns, self.opt.vuln_ignore, sources, warnings)


def _raiser(error: GateError) -> Callable[[], Ran]:
    def fail() -> Ran:
        raise error
    return fail
