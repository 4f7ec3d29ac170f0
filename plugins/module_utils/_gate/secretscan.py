# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The secret gate: a detect-secrets scan of the tree compared with a baseline file.

Private to this collection (leading underscore): the API may change without notice.

detect-secrets reports a secret as its type, file, line and `hashed_secret` (a SHA-1),
never the value; the findings here carry only file, line and type. A secret is known when
the baseline lists the same file, type and hash (line numbers move as code changes, as in
`detect-secrets-hook`). Known secrets pass, unless an audit marked them as real
(`is_secret: true`), which warns; every other secret fails the gate.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .model import FAIL, PASS, WARN, Finding, Gate, InputError, ReportError, first_lines

# Never scanned: version control, virtualenvs, caches and build output.
DEFAULT_EXCLUDES = (
    r"(^|/)(\.git|\.hg|\.svn|\.venv|venv|\.tox|\.nox|node_modules|__pycache__"
    r"|\.pytest_cache|\.mypy_cache|\.ruff_cache|build|dist|[^/]+\.egg-info)/",
)


def scan_argv(program: str, baseline_copy: str | None, excludes: list[str]) -> list[str]:
    """`detect-secrets scan` of every file under the working directory. With a baseline,
    its plugins and filters apply and the merged result is written to `baseline_copy` (a
    private copy: detect-secrets rewrites the baseline it is given)."""
    argv = [program, "scan", "--all-files"]
    for pattern in excludes:
        argv += ["--exclude-files", pattern]
    if baseline_copy:
        argv += ["--baseline", baseline_copy]
    return [*argv, "."]


def baseline_exclude(relative_path: str) -> str:
    """The exclude pattern for the baseline file itself (it holds hashes, which look like
    high-entropy strings)."""
    return "^" + re.escape(relative_path.removeprefix("./")) + "$"


def directory_exclude(relative_path: str) -> str:
    """The exclude pattern for a directory inside the tree (the evidence directory)."""
    return "^" + re.escape(relative_path.removeprefix("./").rstrip("/")) + "/"


def load(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"{what} is not JSON ({exc})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ReportError(f"{what} has no `results` object (is it a detect-secrets baseline?)")
    return data


def load_baseline(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read the secrets baseline {path} ({exc.strerror})") from exc
    return load(text, f"the secrets baseline {path}")


def sanitise(report: dict[str, Any]) -> dict[str, Any]:
    """The scan without its timestamp, so the same tree gives the same evidence."""
    return {key: value for key, value in report.items() if key != "generated_at"}


def _entries(report: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for filename, items in sorted(report["results"].items()):
        for item in items or []:
            found.append({**item, "filename": item.get("filename") or filename})
    return found


def gate(scan: dict[str, Any], baseline: dict[str, Any] | None) -> Gate:
    """Compare the scan with the baseline (None: no baseline, every secret is new)."""
    known: dict[tuple[str, str, str], dict[str, Any]] = {}
    for item in _entries(baseline) if baseline else []:
        known[(item["filename"], item.get("type", ""), item.get("hashed_secret", ""))] = item
    new: list[Finding] = []
    audited_real: list[Finding] = []
    baselined = 0
    for item in _entries(scan):
        key = (item["filename"], item.get("type", ""), item.get("hashed_secret", ""))
        finding = Finding(file=item["filename"], line=int(item.get("line_number") or 0),
                          rule=item.get("type", "secret"), severity="high",
                          message=f"{item.get('type', 'secret')} (value not shown)")
        entry = known.get(key)
        if entry is None:
            new.append(Finding(finding.file, finding.line, finding.rule, "high",
                               f"{finding.rule} not in the baseline (value not shown)"))
        elif entry.get("is_secret") is True:
            audited_real.append(Finding(finding.file, finding.line, finding.rule, "medium",
                                        f"{finding.rule} in the baseline, audited as a real "
                                        f"secret (value not shown)"))
        else:
            baselined += 1
    details = {"new": len(new), "baselined": baselined + len(audited_real),
               "audited_real": len(audited_real), "baseline": baseline is not None}
    if new:
        return Gate("secrets", FAIL, f"{len(new)} secret(s) not in the "
                                     f"{'baseline' if baseline else 'baseline (none given)'}: "
                                     f"{first_lines(new)}", new + audited_real, details)
    if audited_real:
        return Gate("secrets", WARN, f"{len(audited_real)} baselined secret(s) audited as "
                                     f"real: {first_lines(audited_real)}", audited_real,
                    details)
    return Gate("secrets", PASS, f"no secrets outside the baseline ({baselined} baselined)",
                details=details)
