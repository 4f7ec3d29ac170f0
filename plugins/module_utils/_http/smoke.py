# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Smoke suites: steps of requests and expectations (status, headers, JMESPath over the JSON
body, a latency budget), values saved from one answer and used by later steps as
``{{ saved.<name> }}``, run in order; the report as JUnit XML, one testcase per step.

A suite is a mapping ``{name, steps: [...]}`` (or just the list of steps). A step::

    name: export returns the user's data
    method: GET                      # default GET
    path: /api/users/{{ saved.id }}/export
    headers: {Accept: application/json}
    json: {...}                      # a JSON body (or body: raw text)
    expect:
      status: 200                    # or a list
      headers: {Cache-Control: no-store, Location: true, X-Powered-By: false}
      json: {user.email: "{{ saved.email }}", "length(audit_log) > `0`": true}
    latency_ms: 500
    save: {id: user.id}              # name -> JMESPath over the JSON body
"""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._http.assertions import (
    MissingValueError,
    compile_expressions,
    evaluate,
    placeholders,
    search,
    substitute,
)
from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    Client,
    HttpInputError,
    HttpRequestError,
    Response,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - inline steps need no YAML
    HAS_YAML = False

STEP_KEYS = frozenset({"name", "method", "path", "headers", "json", "body", "expect",
                       "latency_ms", "save"})
EXPECT_KEYS = frozenset({"status", "headers", "json"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OUTCOMES = ("passed", "failed", "error", "skipped")


@dataclass
class Step:
    index: int
    name: str
    method: str
    path: str
    headers: dict[str, Any]
    json: Any
    body: str | None
    status: list[Any]
    expect_headers: dict[str, Any]
    expect_json: dict[str, Any]
    latency_ms: float | None
    save: dict[str, str]
    has_json: bool = False

    @property
    def label(self) -> str:
        return f"step {self.index + 1} ({self.name})"


@dataclass
class StepResult:
    name: str
    method: str
    path: str
    outcome: str
    status: int | None = None
    elapsed_ms: float | None = None
    failures: list[str] = field(default_factory=list)
    message: str = ""
    saved: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "method": self.method, "path": self.path,
                "outcome": self.outcome, "status": self.status, "elapsed_ms": self.elapsed_ms,
                "failures": self.failures, "message": self.message, "saved": self.saved}


def load_suite(path: str) -> dict[str, Any]:
    if not HAS_YAML:
        raise HttpInputError("reading a suite file needs PyYAML")
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.safe_load(handle)
    except OSError as exc:
        raise HttpInputError(f"cannot read the suite {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise HttpInputError(f"the suite {path} is not valid YAML: {exc}") from None
    if isinstance(data, list):
        data = {"steps": data}
    if not isinstance(data, dict) or not isinstance(data.get("steps"), list):
        raise HttpInputError(f"the suite {path} is neither a list of steps nor a mapping"
                             " with steps")
    return data


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise HttpInputError(f"{what} must be a mapping")
    return value


def parse_steps(raw: Sequence[Any], default_latency_ms: float | None = None) -> list[Step]:
    """Validate the steps; errors name the step. Placeholders stay for run time."""
    steps = []
    names: set[str] = set()
    for index, item in enumerate(raw):
        where = f"step {index + 1}"
        if not isinstance(item, dict):
            raise HttpInputError(f"{where} is not a mapping")
        unknown = sorted(set(item) - STEP_KEYS)
        if unknown:
            raise HttpInputError(f"{where}: unknown keys {', '.join(unknown)} (known:"
                                 f" {', '.join(sorted(STEP_KEYS))})")
        if not isinstance(item.get("path"), str) or not item["path"]:
            raise HttpInputError(f"{where} has no path")
        method = str(item.get("method", "GET")).upper()
        name = str(item.get("name") or f"{method} {item['path']}")
        where = f"step {index + 1} ({name})"
        if name in names:
            raise HttpInputError(f"{where}: another step has the same name (JUnit needs"
                                 " distinct testcase names)")
        names.add(name)
        if "json" in item and "body" in item:
            raise HttpInputError(f"{where}: give json or body, not both")
        expect = _mapping(item.get("expect"), f"{where}: expect")
        unknown = sorted(set(expect) - EXPECT_KEYS)
        if unknown:
            raise HttpInputError(f"{where}: unknown expect keys {', '.join(unknown)}")
        status = expect.get("status", [200])
        status = status if isinstance(status, list) else [status]
        for value in status:
            if not (isinstance(value, int) or (isinstance(value, str) and "{{" in value)):
                raise HttpInputError(f"{where}: expect.status {value!r} is not a number")
        expect_json = _mapping(expect.get("json"), f"{where}: expect.json")
        compile_expressions(expect_json, f"{where} expect.json")
        save = {str(k): str(v) for k, v in _mapping(item.get("save"), f"{where}: save").items()}
        compile_expressions(dict.fromkeys(save.values()), f"{where} save")
        latency = item.get("latency_ms", default_latency_ms)
        if latency is not None and (not isinstance(latency, (int, float)) or latency <= 0):
            raise HttpInputError(f"{where}: latency_ms must be a positive number")
        for namespace, ref in placeholders(item):
            if namespace == "saved" and not any(ref in s.save for s in steps):
                raise HttpInputError(f"{where} uses {{{{ saved.{ref} }}}}, which no earlier"
                                     " step saves")
        steps.append(Step(index, name, method, item["path"],
                          _mapping(item.get("headers"), f"{where}: headers"), item.get("json"),
                          None if item.get("body") is None else str(item["body"]), status,
                          _mapping(expect.get("headers"), f"{where}: expect.headers"),
                          expect_json, latency, save, has_json="json" in item))
    if not steps:
        raise HttpInputError("the suite has no steps")
    return steps


def judge(step: Step, resp: Response, scopes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Expected vs actual, one line per difference."""
    failures = []
    statuses = [int(s) for s in substitute(step.status, scopes)]
    if resp.status not in statuses:
        failures.append(f"status: expected {' or '.join(map(str, statuses))}, got"
                        f" {resp.status}")
    for name, expected in substitute(step.expect_headers, scopes).items():
        actual = resp.header(name)
        if expected is True and actual is None:
            failures.append(f"header {name}: expected present, got absent")
        elif expected is False and actual is not None:
            failures.append(f"header {name}: expected absent, got {actual!r}")
        elif not isinstance(expected, bool) and actual != str(expected):
            failures.append(f"header {name}: expected {str(expected)!r}, got"
                            f" {'absent' if actual is None else repr(actual)}")
    if step.expect_json:
        try:
            document = resp.json()
        except ValueError:
            failures.append(f"json: expected a JSON body, got {resp.header('Content-Type')}"
                            f" ({len(resp.body)} bytes)")
        else:
            expected = substitute(step.expect_json, scopes)
            failures.extend(f"json {m.describe()}"
                            for m in evaluate(expected, document, f"{step.label} expect.json"))
    if step.latency_ms is not None and resp.elapsed_ms > step.latency_ms:
        failures.append(f"latency: expected at most {step.latency_ms:g} ms, got"
                        f" {resp.elapsed_ms:.0f} ms")
    return failures


def _save(step: Step, resp: Response, saved: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(names saved, failures) from the JSON body."""
    if not step.save:
        return [], []
    try:
        document = resp.json()
    except ValueError:
        return [], [f"save {', '.join(step.save)}: the body is not JSON"]
    names, failures = [], []
    for name, expression in step.save.items():
        value = search(expression, document, f"{step.label} save")
        if value is None:
            failures.append(f"save {name}: {expression} found nothing in the body")
        else:
            saved[name] = value
            names.append(name)
    return names, failures


def run_suite(client: Client, steps: Sequence[Step], variables: Mapping[str, Any],
              run_id: str, check_mode: bool = False) -> tuple[list[StepResult], dict[str, Any]]:
    """Run the steps in order; a step whose placeholders have no value (its source step
    failed or was skipped) is skipped, the others still run."""
    saved: dict[str, Any] = {}
    scopes = {"saved": saved, "vars": dict(variables), "run": {"id": run_id}}
    results = []
    for step in steps:
        result = StepResult(step.name, step.method, step.path, "passed")
        results.append(result)
        try:
            path = substitute(step.path, scopes)
            headers = {str(k): str(v) for k, v in substitute(step.headers, scopes).items()}
            body = None
            if step.has_json:
                body = _json_bytes(substitute(step.json, scopes))
                headers.setdefault("Content-Type", "application/json")
            elif step.body is not None:
                body = str(substitute(step.body, scopes)).encode()
        except MissingValueError as exc:
            result.outcome = "skipped"
            result.message = (f"needs {{{{ {exc.namespace}.{exc.name} }}}}, which an earlier"
                              " step did not save (it failed or was skipped)")
            continue
        result.path = str(path)
        if check_mode and step.method not in SAFE_METHODS:
            result.outcome = "skipped"
            result.message = f"check mode: {step.method} not sent"
            continue
        try:
            resp = client.request(step.method, str(path), headers=headers, body=body)
        except HttpRequestError as exc:
            result.outcome = "error"
            result.message = str(exc)
            continue
        result.status, result.elapsed_ms = resp.status, resp.elapsed_ms
        try:
            failures = judge(step, resp, scopes)
        except MissingValueError as exc:
            failures = [f"expect uses {{{{ {exc.namespace}.{exc.name} }}}}, which has no value"]
        result.saved, save_failures = _save(step, resp, saved)
        result.failures = failures + save_failures
        if result.failures:
            result.outcome = "failed"
            result.message = "; ".join(result.failures)
        else:
            result.message = f"HTTP {resp.status} in {resp.elapsed_ms:.0f} ms"
    return results, saved


def _json_bytes(value: Any) -> bytes:
    return json.dumps(value).encode()


def summarize(results: Sequence[StepResult]) -> dict[str, int]:
    return {outcome: sum(r.outcome == outcome for r in results) for outcome in OUTCOMES}


def junit_xml(suite: str, results: Sequence[StepResult], started: datetime.datetime,
              elapsed_s: float) -> bytes:
    """JUnit XML (the schema Jenkins, GitLab and GitHub read): one testcase per step; a
    failure holds expected vs actual, one line each."""
    counts = summarize(results)
    attrs = {"name": suite, "tests": str(len(results)), "failures": str(counts["failed"]),
             "errors": str(counts["error"]), "skipped": str(counts["skipped"]),
             "time": f"{elapsed_s:.3f}"}
    root = ET.Element("testsuites", attrs)
    testsuite = ET.SubElement(root, "testsuite", {
        **attrs, "timestamp": started.strftime("%Y-%m-%dT%H:%M:%S")})
    classname = "smoke." + "".join(c if c.isalnum() else "_" for c in suite).strip("_")
    for result in results:
        case = ET.SubElement(testsuite, "testcase", {
            "classname": classname, "name": result.name,
            "time": f"{(result.elapsed_ms or 0) / 1000:.3f}"})
        request = f"{result.method} {result.path}"
        if result.outcome == "failed":
            failure = ET.SubElement(case, "failure", {"message": result.failures[0],
                                                      "type": "AssertionError"})
            failure.text = "\n".join([request, *result.failures])
        elif result.outcome == "error":
            error = ET.SubElement(case, "error", {"message": result.message,
                                                  "type": "HttpRequestError"})
            error.text = f"{request}\n{result.message}"
        elif result.outcome == "skipped":
            ET.SubElement(case, "skipped", {"message": result.message})
        out = ET.SubElement(case, "system-out")
        out.text = f"{request} -> " + (f"HTTP {result.status} in {result.elapsed_ms:.0f} ms"
                                       if result.status is not None else result.outcome)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


def write_atomic(path: str, data: bytes) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".junit-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def now() -> tuple[datetime.datetime, float]:
    return datetime.datetime.now(datetime.UTC), time.monotonic()
