#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: http_check
short_description: Contract checks of a released HTTP service in one call
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Proves after a rollout that the release serves - healthy, the version that was shipped,
    metrics, security headers, HTTPS, compression and caching, CORS, rate limiting and safe
    answers to hostile input - and returns one report - per check an id, a status
    (V(pass), V(warn), V(fail) or V(skip)), a message, a remediation and the data it judged -
    with counts, a text table and the security headers' grade.
  - Runs in three phases - V(health) first, retried with exponential backoff while the
    release warms up; then the independent checks at the same time in a thread pool; then
    the V(rate_limit) burst alone, because it uses up this host's rate-limit window.
  - V(health) - GET O(health.path) answers one of O(health.status) and every JMESPath
    expression of O(health.json) has its expected value.
  - V(version) - GET O(version.path) reports O(version.expected_version) and
    O(version.expected_digest) (an image reference pinned by digest or the bare digest).
  - V(metrics) - GET O(metrics.path) parses as Prometheus text exposition (with
    C(prometheus_client)'s parser) and holds every name of O(metrics.required) (a family or
    a sample name such as C(http_requests_total)).
  - V(security_headers) - the OWASP recommended set on GET O(security_headers.path) -
    C(Content-Security-Policy), C(X-Frame-Options) (or CSP C(frame-ancestors)),
    C(X-Content-Type-Options) set to V(nosniff), C(Strict-Transport-Security) with C(max-age) of at
    least a year, C(Referrer-Policy); no version in C(Server), no C(X-Powered-By). Each item
    weighs points of 100; the grade is V(A) (90+), V(B) (80+), V(C), V(D), V(E) or V(F)
    (under 50). Fails under O(security_headers.min_grade), warns when items are missing
    above it, and names the items.
  - V(https.redirect) - O(https.http_url) redirects to an https URL (301/308 pass, 302/307
    warn as temporary). V(https.certificate) - the certificate of O(https.https_url) (else
    the redirect's target, else O(base_url) when it is https) verifies against O(ca_path)
    and has at least O(https.cert_warn_days) days left.
  - V(asset:<url>) for each of O(caching.assets), and V(cdn) for O(caching.cdn_url) - the
    answer is compressed (gzip, br, zstd or deflate C(Content-Encoding)) when it is text of
    at least O(caching.compress_min_bytes) bytes, and cacheable (C(Cache-Control) max-age
    and an C(ETag) or C(Last-Modified); one of them only warns; C(no-store) fails).
  - V(cors:<origin>) for each case of O(cors) - a CORS preflight (C(OPTIONS) with C(Origin)
    and C(Access-Control-Request-Method)) is allowed or refused as configured; a wildcard
    origin with credentials always fails.
  - V(rate_limit) - a burst of O(rate_limit.requests) requests gets a 429 with a valid
    C(Retry-After).
  - V(probe.malformed_json), V(probe.sql_injection), V(probe.xss) - malformed JSON sent to
    O(probes.path) gets a 4xx; SQL injection and XSS payloads in the query
    (O(probes.query_params)) and in the JSON fields O(probes.fields) get no 5xx, no
    database error text, and are not reflected unescaped (a JSON answer with C(nosniff) is
    not a reflection a browser runs).
  - HTTP goes through ansible's C(open_url), redirects are never followed, TLS is verified
    (against O(ca_path) when given), every request has O(timeout).
  - Why a module instead of C(ansible.builtin.uri) tasks - each task costs a module start,
    runs one request at a time, and a failed one hides the results of the others; the
    judging (grades, preflight semantics, reflection) would be Jinja spread over many
    tasks.
options:
  base_url:
    description: The service, e.g. V(https://shop.example.com); paths are relative to it.
    type: str
    required: true
  headers:
    description:
      - Headers sent with every request to the service's own host (never to other hosts,
        such as the CDN) - e.g. C(Authorization). Never returned.
    type: dict
    default: {}
  ca_path:
    description: CA certificates (PEM) to verify TLS against; default the system's trust store.
    type: path
  validate_certs:
    description: Verify TLS certificates. Leave on outside a lab.
    type: bool
    default: true
  timeout:
    description: Seconds each request may take (connect and answer).
    type: float
    default: 10
  rate_limited_wait:
    description:
      - Seconds the version, metrics and security-header checks wait in all for the
        application's rate limiter - a 429 whose C(Retry-After) fits in what is left is waited
        out and the request sent again - before they judge the answer. The limiter may still
        count this host's earlier requests (a load stage, a burst), which says nothing about
        the release. V(0) judges the first answer.
      - The health check retries on its own within O(health.budget); the rate-limit check
        wants its 429.
    type: float
    default: 30
  workers:
    description: Checks that run at the same time.
    type: int
    default: 8
  health:
    description: The health check.
    type: dict
    default: {}
    suboptions:
      path:
        description: Path of the health endpoint.
        type: str
        default: /health
      status:
        description: Statuses that count as healthy.
        type: list
        elements: int
        default: [200]
      json:
        description:
          - JMESPath expression over the JSON body -> expected value, for example
            V(checks.database) -> V(ok).
        type: dict
        default: {}
      budget:
        description: Seconds to keep retrying while the release warms up; V(0) tries once.
        type: float
        default: 60
      initial_delay:
        description: Seconds before the second attempt; doubles each time.
        type: float
        default: 0.5
      max_delay:
        description: Longest wait between two attempts, in seconds.
        type: float
        default: 8
  version:
    description: The version check; skipped without an expected version or digest.
    type: dict
    default: {}
    suboptions:
      path:
        description: Path of the version endpoint.
        type: str
        default: /version
      expected_version:
        description: The version that was deployed.
        type: str
      expected_digest:
        description:
          - The image digest that was deployed - V(sha256:...) or a reference pinned by
            digest (V(registry/app@sha256:...)).
        type: str
      version_query:
        description: JMESPath of the version in the body.
        type: str
        default: version
      digest_query:
        description: JMESPath of the image digest in the body.
        type: str
        default: image_digest
  metrics:
    description: The metrics check.
    type: dict
    default: {}
    suboptions:
      path:
        description: Path of the Prometheus endpoint.
        type: str
        default: /metrics
      required:
        description: Metric names that must exist (family or sample names).
        type: list
        elements: str
        default: []
  security_headers:
    description: The security headers check.
    type: dict
    default: {}
    suboptions:
      path:
        description: Path whose answer is judged.
        type: str
        default: /
      min_grade:
        description: The lowest grade that passes.
        type: str
        choices: [A, B, C, D, E, F]
        default: A
      hsts_min_seconds:
        description: Minimum C(max-age) of C(Strict-Transport-Security).
        type: int
        default: 31536000
  https:
    description: The HTTPS checks.
    type: dict
    default: {}
    suboptions:
      http_url:
        description: A plain C(http://) URL of the service, which must redirect to HTTPS.
        type: str
      https_url:
        description: The C(https://) URL whose certificate to check.
        type: str
      cert_warn_days:
        description: Warn when the certificate has fewer days left.
        type: int
        default: 30
  caching:
    description: Compression and caching of static assets and the CDN.
    type: dict
    default: {}
    suboptions:
      assets:
        description: Paths or URLs of static assets.
        type: list
        elements: str
        default: []
      cdn_url:
        description: URL of an asset on the CDN (no O(headers) are sent there).
        type: str
      compress_min_bytes:
        description: Text bodies at least this large must be compressed.
        type: int
        default: 1024
  cors:
    description: CORS preflight cases.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path the preflight is sent to.
        type: str
        required: true
      origin:
        description: The C(Origin) of the preflight.
        type: str
        required: true
      method:
        description: C(Access-Control-Request-Method).
        type: str
        default: GET
      request_headers:
        description: C(Access-Control-Request-Headers).
        type: list
        elements: str
        default: []
      allowed:
        description: Whether the origin must be allowed (V(true)) or refused (V(false)).
        type: bool
        required: true
      credentials:
        description: With O(cors[].allowed), also require C(Access-Control-Allow-Credentials).
        type: bool
        default: false
  rate_limit:
    description: The rate-limit burst; skipped while O(rate_limit.requests) is V(0).
    type: dict
    default: {}
    suboptions:
      path:
        description: Path of the burst (a rate-limited one).
        type: str
        default: /
      method:
        description: Method of the burst.
        type: str
        default: GET
      requests:
        description: Most requests to send; the burst stops at the first 429.
        type: int
        default: 0
      concurrency:
        description: Requests in flight at once.
        type: int
        default: 10
  probes:
    description:
      - Input probes; skipped without O(probes.path). Payloads that pass the endpoint's
        validation are processed like any request, so point them at an endpoint that
        validates (or that only reads).
    type: dict
    default: {}
    suboptions:
      path:
        description: Path of an endpoint that takes JSON.
        type: str
      method:
        description: Method for the JSON bodies.
        type: str
        default: POST
      fields:
        description: JSON fields that carry the payloads (all at once); none sends no JSON probes.
        type: list
        elements: str
        default: []
      query_params:
        description: Query parameters that carry the payloads (with GET).
        type: list
        elements: str
        default: [q]
  skip:
    description:
      - Check ids to skip (reported as V(skip)); a prefix such as V(probe), V(https) or
        V(cors) skips all its checks.
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - When the module fails after returning the whole report - V(fail) when a check fails,
        V(warn) when a check warns or fails, V(never) to only report.
    type: str
    choices: [fail, warn, never]
    default: fail
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module changes nothing itself, so check mode runs every check. The input
      probes and the rate-limit burst are real requests in check mode too.
  diff_mode:
    support: none
  idempotent:
    description: Running it again with the same parameters changes nothing further.
    support: full
    details: Read-only; RV(ignore:changed) is always V(false).
  platform:
    platforms: posix
requirements:
  - jmespath (Python library) for O(health.json) and the version queries
  - prometheus_client (Python library) for V(metrics); without it that check fails and
    says so
  - cryptography (Python library) for V(https.certificate)
seealso:
  - module: prodready.deploy.smoke_test
  - module: ansible.builtin.uri
"""

EXAMPLES = r"""
---
- name: Verify the release of the shop
  prodready.deploy.http_check:
    base_url: https://shop.example.com
    headers:
      Authorization: "Bearer {{ vault_probe_token }}"
    health:
      json: {status: ok, checks.database: ok}
      budget: 120
    version:
      expected_version: "{{ release_version }}"
      expected_digest: "{{ release_image }}"      # registry/shop@sha256:...
    metrics:
      required: [http_requests_total, http_request_duration_seconds]
    https:
      http_url: http://shop.example.com/
    caching:
      assets: [/static/app.js, /static/app.css]
      cdn_url: https://cdn.example.com/shop/app.js
    cors:
      - {path: /api/orders, origin: "https://shop.example.com", method: POST, allowed: true}
      - {path: /api/orders, origin: "https://evil.example", method: POST, allowed: false}
    probes:
      path: /api/users
      fields: [email, name]
    rate_limit:
      path: /api/users/1
      requests: 700
  register: verify

- name: Print the report
  ansible.builtin.debug:
    msg: "{{ verify.table }}"
"""

RETURN = r"""
checks:
  description: One result per check, in the order health, version, metrics, security_headers,
    https, assets, cdn, cors, probes, rate_limit.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The check (stable), e.g. V(health), V(asset:/static/app.js), V(cors:https://evil.example).
      type: str
      sample: security_headers
    status:
      description: V(pass), V(warn), V(fail) or V(skip).
      type: str
      sample: fail
    message:
      description: What was found.
      type: str
      sample: "GET http://127.0.0.1:8000/: grade F (score 10/100), under the required A: ..."
    remediation:
      description: What to do about it; empty when the check passes.
      type: str
      sample: set the missing headers in the app or the ingress ...
    data:
      description: What the check judged (statuses, headers, counts; never the sent headers).
      type: dict
      sample: {"grade": "F", "score": 10, "missing": ["Content-Security-Policy"]}
summary:
  description: How many checks ended in each status.
  returned: always
  type: dict
  sample: {"pass": 9, "warn": 1, "fail": 1, "skip": 3}
failed_checks:
  description: Ids of the checks that failed. (Not C(failed), which Ansible reserves.)
  returned: always
  type: list
  elements: str
  sample: [security_headers]
warned_checks:
  description: Ids of the checks that warned.
  returned: always
  type: list
  elements: str
  sample: ["asset:/static/app.js"]
grade:
  description: The security headers' grade, V(A) to V(F); null when that check did not run.
  returned: always
  type: str
  sample: A
table:
  description: The report as fixed-width text lines - C(id | STATUS | message), a summary last.
  returned: always
  type: list
  elements: str
  sample: ["CHECK  | STATUS | MESSAGE", "health | PASS   | GET http://.../health is healthy"]
elapsed:
  description: Seconds the checks took.
  returned: always
  type: float
  sample: 1.37
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.prodready.deploy.plugins.module_utils._http import assertions
from ansible_collections.prodready.deploy.plugins.module_utils._http.checks import run_checks
from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    Client,
    HttpInputError,
    redact,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.checks import FAIL_ON, finish
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import report


def argument_spec() -> dict[str, Any]:
    def sub(options: dict[str, Any]) -> dict[str, Any]:
        return {"type": "dict", "default": {}, "options": options}

    return {
        "base_url": {"type": "str", "required": True},
        "headers": {"type": "dict", "default": {}, "no_log": True},
        "ca_path": {"type": "path"},
        "validate_certs": {"type": "bool", "default": True},
        "timeout": {"type": "float", "default": 10},
        "rate_limited_wait": {"type": "float", "default": 30},
        "workers": {"type": "int", "default": 8},
        "health": sub({
            "path": {"type": "str", "default": "/health"},
            "status": {"type": "list", "elements": "int", "default": [200]},
            "json": {"type": "dict", "default": {}},
            "budget": {"type": "float", "default": 60},
            "initial_delay": {"type": "float", "default": 0.5},
            "max_delay": {"type": "float", "default": 8},
        }),
        "version": sub({
            "path": {"type": "str", "default": "/version"},
            "expected_version": {"type": "str"},
            "expected_digest": {"type": "str"},
            "version_query": {"type": "str", "default": "version"},
            "digest_query": {"type": "str", "default": "image_digest"},
        }),
        "metrics": sub({
            "path": {"type": "str", "default": "/metrics"},
            "required": {"type": "list", "elements": "str", "default": []},
        }),
        "security_headers": sub({
            "path": {"type": "str", "default": "/"},
            "min_grade": {"type": "str", "choices": ["A", "B", "C", "D", "E", "F"],
                          "default": "A"},
            "hsts_min_seconds": {"type": "int", "default": 31536000},
        }),
        "https": sub({
            "http_url": {"type": "str"},
            "https_url": {"type": "str"},
            "cert_warn_days": {"type": "int", "default": 30},
        }),
        "caching": sub({
            "assets": {"type": "list", "elements": "str", "default": []},
            "cdn_url": {"type": "str"},
            "compress_min_bytes": {"type": "int", "default": 1024},
        }),
        "cors": {"type": "list", "elements": "dict", "default": [], "options": {
            "path": {"type": "str", "required": True},
            "origin": {"type": "str", "required": True},
            "method": {"type": "str", "default": "GET"},
            "request_headers": {"type": "list", "elements": "str", "default": []},
            "allowed": {"type": "bool", "required": True},
            "credentials": {"type": "bool", "default": False},
        }},
        "rate_limit": sub({
            "path": {"type": "str", "default": "/"},
            "method": {"type": "str", "default": "GET"},
            "requests": {"type": "int", "default": 0},
            "concurrency": {"type": "int", "default": 10},
        }),
        "probes": sub({
            "path": {"type": "str"},
            "method": {"type": "str", "default": "POST"},
            "fields": {"type": "list", "elements": "str", "default": []},
            "query_params": {"type": "list", "elements": "str", "default": ["q"]},
        }),
        "skip": {"type": "list", "elements": "str", "default": []},
        "fail_on": {"type": "str", "choices": list(FAIL_ON), "default": "fail"},
    }


def main() -> None:
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if not assertions.HAS_JMESPATH:
        module.fail_json(msg=missing_required_lib("jmespath"))
    where = redact(params["base_url"])
    started = time.monotonic()
    try:
        client = Client(params["base_url"], params["headers"], params["ca_path"],
                        params["validate_certs"], params["timeout"],
                        rate_limited_wait=params["rate_limited_wait"])
        results = run_checks(client, params)
    except HttpInputError as exc:
        module.fail_json(msg=f"Cannot check {where}: {exc}", changed=False)
    verdict = report(results, params["fail_on"])
    fails = verdict.pop("fails")
    grade = next((r.data.get("grade") for r in results
                  if r.id == "security_headers" and r.status != "skip"), None)
    result = {"changed": False, **verdict, "grade": grade,
              "elapsed": round(time.monotonic() - started, 3)}
    finish(module, result, fails, params["fail_on"], "http_check",
           f"HTTP checks of {where} failed")


if __name__ == "__main__":
    main()
