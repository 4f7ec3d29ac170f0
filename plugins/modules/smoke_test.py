#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: smoke_test
short_description: Run a smoke suite of HTTP steps against a release and write JUnit XML
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Runs the steps of a smoke suite in order - each a request (method, path, headers, a
    JSON or text body) and its expectations (status, headers, JMESPath expressions over the
    JSON body with their expected values, a latency budget) - and writes the results as
    JUnit XML, one testcase per step, a failure holding expected vs actual.
  - A step may C(save) values of its answer (JMESPath over the JSON body), e.g. the id of
    the user it created; later steps use them as C({{ saved.<name> }}). O(vars) are
    C({{ vars.<name> }}) and C({{ run.id }}) is a random id of this run (for unique
    e-mail addresses and the like). This is a lookup, not a template engine - anything else
    between double braces is refused. A placeholder that is the whole value keeps the
    value's type (an id stays a number).
  - When a step fails, the steps that need its saved values are skipped and named; the
    others still run. The module fails after returning every result.
  - The suite format is described in the notes. The collection ships the GDPR suite of the
    reference app as C(roles/verify/files/smoke/refapp-gdpr.yml).
  - Why a module of its own, not part of M(prodready.deploy.http_check) - the checks there
    are independent, read-only and run concurrently; smoke steps run in order, carry state
    from one step to the next, may change data (create, delete), and produce a file (the
    JUnit report) - a different contract for check mode, changed and the arguments.
options:
  base_url:
    description: The service; step paths are relative to it.
    type: str
    required: true
  suite:
    description:
      - A YAML file with the suite - a mapping with C(name) and C(steps), or a list of steps.
    type: path
  steps:
    description: The steps inline, instead of O(suite).
    type: list
    elements: dict
  name:
    description: Name of the suite in the report; default the suite's C(name), else the file name.
    type: str
  vars:
    description: Values for C({{ vars.<name> }}) placeholders.
    type: dict
    default: {}
  headers:
    description: Headers sent with every step (e.g. C(Authorization)); never returned.
    type: dict
    default: {}
  no_log_saves:
    description: Saved values that are secrets (tokens) - masked in the whole result.
    type: list
    elements: str
    default: []
  latency_ms:
    description: Latency budget of every step without its own C(latency_ms), in milliseconds.
    type: float
  junit_path:
    description: Where to write the JUnit XML (the directory is created); none writes no file.
    type: path
  ca_path:
    description: CA certificates (PEM) to verify TLS against; default the system's trust store.
    type: path
  validate_certs:
    description: Verify TLS certificates.
    type: bool
    default: true
  timeout:
    description: Seconds each request may take.
    type: float
    default: 10
  fail_on:
    description: V(fail) - fail after returning the results when a step failed or had no
      answer; V(never) - only report.
    type: str
    choices: [fail, never]
    default: fail
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: partial
    details: In check mode only the C(GET), C(HEAD) and C(OPTIONS) steps are sent (others
      are skipped, and so are the steps that need their saved values), and no JUnit file is
      written.
  diff_mode:
    support: none
  idempotent:
    description: Running it again with the same parameters changes nothing further.
    support: none
    details: The steps may create and delete data in the service, and the JUnit file is
      written on every run (RV(ignore:changed) is V(true) when it was).
  platform:
    platforms: posix
requirements:
  - jmespath (Python library)
  - PyYAML to read O(suite)
notes:
  - "A step's keys - C(name) (default C(METHOD path); unique in the suite), C(method)
    (default C(GET)), C(path), C(headers), C(json) (a body sent as JSON) or C(body) (text),
    C(expect) with C(status) (a number or a list; default 200), C(headers) (name to an
    exact value, V(true) for present, V(false) for absent) and C(json) (JMESPath expression
    to the expected value), C(latency_ms) (the budget of this step) and C(save) (name to a
    JMESPath expression over the JSON body)."
  - Placeholders may appear in paths, headers, bodies and expected values.
  - Ansible templates module arguments, so inline O(steps) with placeholders must be marked
    C(!unsafe) (or wrapped in C({% raw %})); a suite file is read by the module and needs
    neither.
seealso:
  - module: prodready.deploy.http_check
"""

EXAMPLES = r"""
---
- name: Run the GDPR smoke suite and keep its JUnit report
  prodready.deploy.smoke_test:
    base_url: https://shop.example.com
    suite: "{{ role_path }}/files/smoke/refapp-gdpr.yml"
    junit_path: /var/lib/deploy/evidence/smoke-gdpr.xml
    latency_ms: 500

- name: A suite inline (!unsafe, so that Ansible leaves the placeholders to the module)
  prodready.deploy.smoke_test:
    base_url: http://127.0.0.1:8000
    name: users
    steps: !unsafe
      - name: create
        method: POST
        path: /api/users
        json: {email: "smoke-{{ run.id }}@example.com", name: Smoke}
        expect: {status: 201, headers: {Location: true}}
        save: {id: id}
      - name: read
        path: /api/users/{{ saved.id }}
        expect: {json: {email: "smoke-{{ run.id }}@example.com"}}
"""

RETURN = r"""
suite:
  description: Name of the suite.
  returned: always
  type: str
  sample: refapp GDPR
steps:
  description: One result per step, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The step's name.
      type: str
    method:
      description: The method.
      type: str
    path:
      description: The path with placeholders replaced.
      type: str
      sample: /api/users/42/export
    outcome:
      description: V(passed), V(failed), V(error) (no answer) or V(skipped).
      type: str
    status:
      description: The HTTP status; null without an answer.
      type: int
    elapsed_ms:
      description: Time to the whole answer, in milliseconds.
      type: float
    failures:
      description: Expected vs actual, one line per difference.
      type: list
      elements: str
      sample: ["status: expected 404, got 200"]
    message:
      description: A one-line account of the step.
      type: str
    saved:
      description: Names of the values the step saved.
      type: list
      elements: str
summary:
  description: Steps per outcome.
  returned: always
  type: dict
  sample: {"passed": 7, "failed": 0, "error": 0, "skipped": 0}
failed_steps:
  description: Names of the steps that failed or had no answer.
  returned: always
  type: list
  elements: str
saved:
  description: The values saved by the steps (those of O(no_log_saves) masked).
  returned: always
  type: dict
  sample: {"id": 42}
junit_path:
  description: The JUnit file written; null when none was.
  returned: always
  type: str
table:
  description: The results as text lines - C(name | OUTCOME | message).
  returned: always
  type: list
  elements: str
elapsed:
  description: Seconds the suite took.
  returned: always
  type: float
"""

import os
import time
import uuid

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.prodready.deploy.plugins.module_utils._http import assertions, smoke
from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    Client,
    HttpInputError,
    redact,
)


def table(results: list[smoke.StepResult], summary: dict[str, int]) -> list[str]:
    width = max([len("STEP")] + [len(r.name) for r in results])
    rule = f"{'-' * width}-+---------+--------"
    lines = [f"{'STEP':<{width}} | OUTCOME | MESSAGE", rule]
    lines += [f"{r.name:<{width}} | {r.outcome.upper():<7} | {' '.join(r.message.split())}"
              for r in results]
    lines += [rule, ", ".join(f"{summary[o]} {o}" for o in smoke.OUTCOMES)]
    return lines


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_url": {"type": "str", "required": True},
            "suite": {"type": "path"},
            "steps": {"type": "list", "elements": "dict"},
            "name": {"type": "str"},
            "vars": {"type": "dict", "default": {}},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "no_log_saves": {"type": "list", "elements": "str", "default": [], "no_log": False},
            "latency_ms": {"type": "float"},
            "junit_path": {"type": "path"},
            "ca_path": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
            "timeout": {"type": "float", "default": 10},
            "fail_on": {"type": "str", "choices": ["fail", "never"], "default": "fail"},
        },
        mutually_exclusive=[("suite", "steps")],
        required_one_of=[("suite", "steps")],
        supports_check_mode=True,
    )
    params = module.params
    if not assertions.HAS_JMESPATH:
        module.fail_json(msg=missing_required_lib("jmespath"))
    where = redact(params["base_url"])
    started, clock = smoke.now()
    try:
        if params["suite"]:
            suite = smoke.load_suite(params["suite"])
            default_name = os.path.splitext(os.path.basename(params["suite"]))[0]
        else:
            suite, default_name = {"steps": params["steps"]}, "smoke"
        name = params["name"] or str(suite.get("name") or default_name)
        steps = smoke.parse_steps(suite["steps"], params["latency_ms"])
        client = Client(params["base_url"], params["headers"], params["ca_path"],
                        params["validate_certs"], params["timeout"])
        results, saved = smoke.run_suite(client, steps, params["vars"], uuid.uuid4().hex[:12],
                                         module.check_mode)
    except HttpInputError as exc:
        module.fail_json(msg=f"Cannot run the smoke suite against {where}: {exc}",
                         changed=False)
    for key in params["no_log_saves"]:
        if saved.get(key) not in (None, ""):
            module.no_log_values.add(str(saved[key]))
    elapsed = time.monotonic() - clock
    summary = smoke.summarize(results)
    written = None
    if params["junit_path"] and not module.check_mode:
        try:
            smoke.write_atomic(params["junit_path"],
                               smoke.junit_xml(name, results, started, elapsed))
        except OSError as exc:
            module.fail_json(msg=f"Cannot write the JUnit report {params['junit_path']}:"
                             f" {exc.strerror}", changed=False)
        written = params["junit_path"]
    failed = [r.name for r in results if r.outcome in ("failed", "error")]
    result = {"changed": bool(params["junit_path"]), "suite": name,
              "steps": [r.as_dict() for r in results], "summary": summary,
              "failed_steps": failed, "saved": saved, "junit_path": written,
              "table": table(results, summary), "elapsed": round(elapsed, 3)}
    if failed and params["fail_on"] == "fail":
        detail = "; ".join(f"{r.name} ({r.message})" for r in results
                           if r.outcome in ("failed", "error"))
        module.fail_json(msg=f"Smoke suite {name} against {where} failed: {detail}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
