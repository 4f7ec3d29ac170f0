# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The dependency gate: pinned requirements matched against OSV advisories, offline.

Private to this collection (leading underscore): the API may change without notice.

Requirements are pip's requirements-file format (requirements.txt, pip-tools lock files,
constraints files); `-r` and `-c` are followed. A requirement is pinned when its only
specifier is `==` or `===` with an exact version; others cannot be audited offline and
warn. Names are compared normalised as PEP 503 says.

Advisories are OSV JSON (https://ossf.github.io/osv-schema/): one file, a directory of
files (searched recursively) or a zip such as OSV's `PyPI/all.zip`. An advisory applies
to an `affected[]` entry whose package is in the PyPI ecosystem with the same normalised
name, when the version is in its `versions` list or in one of its ECOSYSTEM or SEMVER
ranges (`introduced`, `fixed`, `last_affected` events, compared as PEP 440 versions).
GIT ranges name commits, not releases, and are ignored. Withdrawn advisories are ignored.

pip-audit (`pip-audit -r <file> --no-deps --disable-pip -f json`) asks an online service
instead; its JSON report is mapped back onto the same requirement lines.
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from dataclasses import dataclass, field
from typing import Any

from .model import FAIL, PASS, WARN, Finding, Gate, InputError, ReportError, first_lines

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.version import InvalidVersion, Version

    HAS_PACKAGING = True
except ImportError:  # the module reports the missing library
    HAS_PACKAGING = False

_NAME_SEPARATORS = re.compile(r"[-_.]+")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s+|=)(?P<path>\S+)")
_OPTION_HASH = re.compile(r"\s--hash[=\s]\S+")


def normalise_name(name: str) -> str:
    """PEP 503: lowercase, runs of `-`, `_` and `.` become one `-`."""
    return _NAME_SEPARATORS.sub("-", name).lower()


@dataclass(frozen=True)
class Pin:
    """One requirement line: `version` is None when it is not pinned to an exact version."""

    name: str
    version: str | None
    file: str
    line: int
    text: str

    @property
    def key(self) -> str:
        return normalise_name(self.name)


def _logical_lines(text: str) -> list[tuple[int, str]]:
    """(first physical line number, text) with `\\` continuations joined, comments cut."""
    lines: list[tuple[int, str]] = []
    buffer, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        stripped = re.sub(r"(^|\s)#.*$", "", raw)
        if stripped.rstrip().endswith("\\"):
            buffer += stripped.rstrip()[:-1] + " "
            continue
        buffer += stripped
        if buffer.strip():
            lines.append((start, buffer.strip()))
        buffer = ""
    if buffer.strip():
        lines.append((start, buffer.strip()))
    return lines


def parse_requirements(path: str, src: str, _seen: set[str] | None = None) -> list[Pin]:
    """Every requirement of a requirements file and of the files it includes, with the
    file (relative to `src` when inside it) and line it was written on."""
    seen = _seen if _seen is not None else set()
    real = os.path.realpath(path)
    if real in seen:
        return []
    seen.add(real)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise InputError(f"cannot read the requirements file {path} ({exc.strerror})") from exc
    shown = os.path.relpath(path, src) if not os.path.relpath(path, src).startswith("..") \
        else path
    pins: list[Pin] = []
    for number, line in _logical_lines(text):
        include = _INCLUDE.match(line)
        if include:
            target = os.path.join(os.path.dirname(path), include.group("path"))
            pins += parse_requirements(target, src, seen)
            continue
        if line.startswith("-"):
            continue  # --index-url, -e (editable installs are not release pins), ...
        line = _OPTION_HASH.sub("", " " + line).strip()
        try:
            req = Requirement(line)
        except InvalidRequirement:
            pins.append(Pin(line.split()[0], None, shown, number, line))
            continue
        specs = list(req.specifier)
        version = None
        if (len(specs) == 1 and specs[0].operator in ("==", "===")
                and "*" not in specs[0].version and not req.url):
            version = specs[0].version
        pins.append(Pin(req.name, version, shown, number, line))
    return pins


# --- OSV advisories ------------------------------------------------------------------------

@dataclass
class Advisory:
    id: str
    aliases: list[str]
    summary: str
    severity: str
    affected: list[dict[str, Any]] = field(default_factory=list)


def _advisory_severity(data: dict[str, Any]) -> str:
    """GitHub's `database_specific.severity` (LOW..CRITICAL) when there is one, else the
    CVSS vector of `severity[]`, else `unknown`."""
    specific = data.get("database_specific") or {}
    if isinstance(specific, dict) and specific.get("severity"):
        return str(specific["severity"]).lower()
    for entry in data.get("severity") or []:
        if isinstance(entry, dict) and entry.get("score"):
            return f"{entry.get('type', 'CVSS')} {entry['score']}"
    return "unknown"


def _documents(data: Any) -> list[dict[str, Any]]:
    """One advisory, a list of them, or a `{"vulns": [...]}` query answer."""
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    if isinstance(data, dict) and isinstance(data.get("vulns"), list):
        return [item for item in data["vulns"] if isinstance(item, dict)]
    if isinstance(data, dict):
        return [data]
    return []


def _read_json(text: str | bytes, what: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise InputError(f"the advisory file {what} is not JSON ({exc})") from exc


def load_advisories(path: str) -> dict[str, list[Advisory]]:
    """PyPI advisories under `path`, by normalised package name."""
    raw: list[dict[str, Any]] = []
    if os.path.isdir(path):
        for folder, dirs, names in os.walk(path):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(".json"):
                    full = os.path.join(folder, name)
                    with open(full, "rb") as handle:
                        raw += _documents(_read_json(handle.read(), full))
    elif zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            for name in sorted(archive.namelist()):
                if name.endswith(".json"):
                    raw += _documents(_read_json(archive.read(name), f"{path}:{name}"))
    else:
        try:
            with open(path, "rb") as handle:
                raw = _documents(_read_json(handle.read(), path))
        except OSError as exc:
            raise InputError(f"cannot read the advisories {path} ({exc.strerror})") from exc
    index: dict[str, list[Advisory]] = {}
    for data in raw:
        if not data.get("id") or data.get("withdrawn"):
            continue
        text = str(data.get("summary") or data.get("details") or "").strip()
        advisory = Advisory(id=str(data["id"]), aliases=list(data.get("aliases") or []),
                            summary=text.splitlines()[0][:200] if text else "",
                            severity=_advisory_severity(data))
        for affected in data.get("affected") or []:
            package = affected.get("package") or {}
            if not str(package.get("ecosystem", "")).lower().startswith("pypi"):
                continue
            advisory.affected.append(affected)
            listed = index.setdefault(normalise_name(str(package.get("name", ""))), [])
            if not any(item is advisory for item in listed):
                listed.append(advisory)
    return index


def _version(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def range_match(version: Version, events: list[dict[str, str]]) -> tuple[bool, str | None]:
    """(affected, fixed version) for one ECOSYSTEM/SEMVER range, as the OSV schema's
    evaluation describes it: events in version order, the last one at or below the version
    decides. `introduced: "0"` is before every version. An unparsable event is ignored."""
    ordered: list[tuple[Version, int, str, str]] = []
    for event in events:
        for kind in ("introduced", "fixed", "last_affected"):
            if kind in event:
                value = str(event[kind])
                parsed = Version("0") if kind == "introduced" and value == "0" \
                    else _version(value)
                if parsed is not None:
                    # At one version: introduced first, then fixed / last_affected.
                    ordered.append((parsed, 0 if kind == "introduced" else 1, kind, value))
    ordered.sort(key=lambda item: (item[0], item[1]))
    affected = False
    for parsed, _order, kind, _value in ordered:
        if kind == "introduced" and version >= parsed:
            affected = True
        elif (kind == "fixed" and version >= parsed) or \
                (kind == "last_affected" and version > parsed):
            affected = False
    fixed = None
    if affected:
        later = [value for parsed, _order, kind, value in ordered
                 if kind == "fixed" and parsed > version]
        fixed = later[0] if later else None
    return affected, fixed


def affected_by(version_text: str, affected: dict[str, Any]) -> tuple[bool, str | None]:
    """(affected, fixed version or None) of a version for one `affected[]` entry."""
    version = _version(version_text)
    for listed in affected.get("versions") or []:
        other = _version(str(listed))
        if str(listed) == version_text or (version is not None and other == version):
            return True, _first_fixed(version, affected)
    if version is None:
        return False, None
    for entry in affected.get("ranges") or []:
        if str(entry.get("type", "")).upper() not in ("ECOSYSTEM", "SEMVER"):
            continue
        hit, fixed = range_match(version, entry.get("events") or [])
        if hit:
            return True, fixed
    return False, None


def _first_fixed(version: Version | None, affected: dict[str, Any]) -> str | None:
    """The lowest `fixed` event above the version in any range (for a `versions` match)."""
    if version is None:
        return None
    fixes = []
    for entry in affected.get("ranges") or []:
        for event in entry.get("events") or []:
            parsed = _version(str(event.get("fixed", ""))) if "fixed" in event else None
            if parsed is not None and parsed > version:
                fixes.append((parsed, str(event["fixed"])))
    return min(fixes)[1] if fixes else None


@dataclass(frozen=True)
class Vulnerability:
    pin: Pin
    id: str
    aliases: tuple[str, ...]
    fixed: str | None
    severity: str
    summary: str

    def finding(self, ignored: bool = False) -> Finding:
        names = self.id + (f" ({', '.join(self.aliases)})" if self.aliases else "")
        fix = f"fixed in {self.fixed}" if self.fixed else "no fixed version known"
        return Finding(
            file=self.pin.file, line=self.pin.line, rule=self.id,
            severity=self.severity,
            message=f"{self.pin.name}=={self.pin.version} is affected by {names}; {fix}"
                    + (f": {self.summary}" if self.summary else "")
                    + (" (ignored: accepted in vuln_ignore)" if ignored else ""))


def match(pins: list[Pin], advisories: dict[str, list[Advisory]]) -> list[Vulnerability]:
    found = []
    for pin in pins:
        if pin.version is None:
            continue
        for advisory in advisories.get(pin.key, []):
            for affected in advisory.affected:
                if normalise_name(str((affected.get("package") or {}).get("name", ""))) \
                        != pin.key:
                    continue
                hit, fixed = affected_by(pin.version, affected)
                if hit:
                    found.append(Vulnerability(pin, advisory.id, tuple(advisory.aliases),
                                               fixed, advisory.severity, advisory.summary))
                    break
    return found


# --- pip-audit ------------------------------------------------------------------------------

def pip_audit_argv(program: str, requirements: list[str], service: str,
                   output: str) -> list[str]:
    """pip-audit over the requirement files without resolving or installing anything
    (every requirement must be pinned), JSON written to `output`."""
    argv = [program]
    for path in requirements:
        argv += ["--requirement", path]
    return [*argv, "--no-deps", "--disable-pip", "--format", "json", "--output", output,
            "--progress-spinner", "off", "--vulnerability-service", service]


def parse_pip_audit(text: str, pins: list[Pin]) -> tuple[list[Vulnerability], list[Finding]]:
    """Vulnerabilities from pip-audit's JSON, each on the requirement line that pins the
    package; and the dependencies pip-audit skipped, as warnings."""
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise ReportError(f"pip-audit's JSON report cannot be parsed ({exc})") from exc
    deps = report.get("dependencies") if isinstance(report, dict) else None
    if not isinstance(deps, list):
        raise ReportError("pip-audit's JSON report has no `dependencies` list")
    by_name: dict[str, list[Pin]] = {}
    for pin in pins:
        by_name.setdefault(pin.key, []).append(pin)
    vulns: list[Vulnerability] = []
    skipped: list[Finding] = []
    for dep in deps:
        name = str(dep.get("name", "?"))
        where = by_name.get(normalise_name(name)) or \
            [Pin(name, dep.get("version"), "<pip-audit>", 0, name)]
        if dep.get("skip_reason"):
            skipped += [Finding(pin.file, pin.line, "pip-audit-skip", "low",
                                f"{name} not audited by pip-audit: {dep['skip_reason']}")
                        for pin in where]
            continue
        for vuln in dep.get("vulns") or []:
            fixes = [str(v) for v in vuln.get("fix_versions") or []]
            summary = str(vuln.get("description") or "").strip().splitlines()
            for pin in where:
                vulns.append(Vulnerability(
                    Pin(pin.name, str(dep.get("version", pin.version)), pin.file, pin.line,
                        pin.text),
                    str(vuln.get("id", "?")), tuple(vuln.get("aliases") or []),
                    fixes[0] if fixes else None, "unknown", summary[0][:200] if summary else ""))
    return vulns, skipped


# --- the gate -------------------------------------------------------------------------------

def gate(pins: list[Pin], vulns: list[Vulnerability], ignore: list[str],
         sources: list[str], extra_warnings: list[Finding] | None = None) -> Gate:
    """Fails on a vulnerable pin; warns on accepted advisories (`ignore`, by id or alias),
    requirements that are not pinned and what pip-audit skipped."""
    accepted = set(ignore)
    failing, warnings = [], []
    seen = set()
    for vuln in vulns:
        key = (vuln.pin.file, vuln.pin.line, vuln.id)
        if key in seen:
            continue
        seen.add(key)
        if accepted & {vuln.id, *vuln.aliases}:
            warnings.append(vuln.finding(ignored=True))
        else:
            failing.append(vuln.finding())
    for pin in pins:
        if pin.version is None:
            warnings.append(Finding(pin.file, pin.line, "unpinned", "low",
                                    f"{pin.text} is not pinned to one version; not audited"))
    warnings += extra_warnings or []
    pinned = sum(1 for pin in pins if pin.version is not None)
    details = {"requirements": len(pins), "pinned": pinned, "vulnerable": len(failing),
               "sources": sources}
    if not sources:
        return Gate("dependencies", WARN, "no advisory source: set an OSV advisory path or "
                                          "enable pip-audit", warnings, details)
    if failing:
        return Gate("dependencies", FAIL, f"{len(failing)} vulnerable pin(s) among {pinned} "
                                          f"pinned requirements: {first_lines(failing)}",
                    failing + warnings, details)
    if warnings:
        return Gate("dependencies", WARN, f"no known vulnerability in {pinned} pinned "
                                          f"requirements; {len(warnings)} warning(s): "
                                          f"{first_lines(warnings)}", warnings, details)
    return Gate("dependencies", PASS, f"no known vulnerability in {pinned} pinned "
                                      f"requirements ({', '.join(sources)})", details=details)
