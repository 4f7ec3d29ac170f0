#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: load_test
short_description: Load an HTTP service and judge the error rate, latency percentiles and throughput
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Sends HTTP/1.1 requests over keep-alive connections from the target host and measures
    every answer - latency percentiles (P50, P90, P95, P99, max) from a log-linear histogram
    whose relative error is under 0.05%, the error rate by status and by exception,
    throughput, and the same per endpoint.
  - Closed model (O(model=closed)) - O(users) connections, each sending its next request as
    soon as the previous answer is in; the users start evenly over O(ramp_up) seconds.
  - Open model (O(model=open)) - a request is due every 1/O(rate) seconds whether or not the
    earlier ones were answered. Latency runs from the time a request was due, not from when
    a connection was free to send it, so a stalled server shows as latency rather than as
    fewer requests (no coordinated omission).
  - The thresholds give the verdict; the module fails, after returning every number, when one
    is not met (unless O(fail_on_threshold=false)).
  - Optional Prometheus gate - instant queries at the end of the run, over a window as long
    as the run; a query without data fails its check.
  - Progress - with O(progress_file) the module replaces that file with the latest numbers
    every O(progress_interval) seconds. Run the task with C(async) and C(poll=0) and read the
    file from a C(ansible.builtin.async_status) loop (see the examples), or watch it on the
    host with C(watch cat).
  - The generator is pure Python (one thread, non-blocking sockets, epoll); on one core it
    reaches 0.6 to 0.8x C(wrk)'s request rate against the same server, and holds 1000
    connections in flight (10,000 requests/s at 100 ms) on an eighth of a core (the
    collection's C(bench/load-rps) and C(bench/load-1000)).
options:
  url:
    description:
      - Base URL of the service, C(http://host:port/prefix). Endpoint paths that start with
        C(/) replace its path; relative ones are appended to it.
      - C(https://) URLs are loaded over TLS (HTTP/1.1 by ALPN); each connection makes one
        handshake, then keeps alive.
    type: str
    required: true
  validate_certs:
    description: Verify the service's TLS certificate and host name.
    type: bool
    default: true
  ca_path:
    description: CA certificate(s) (PEM) to verify the service with, instead of the system's.
    type: path
  endpoints:
    description: The requests to mix; empty for a C(GET) of O(url).
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Path (with query), relative to O(url) unless it starts with C(/).
        type: str
        required: true
      method:
        description: HTTP method.
        type: str
        default: GET
        choices: [GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS]
      weight:
        description: Share of all requests, as a whole number; requests are spread in
          smooth weighted round-robin order, so the shares are exact.
        type: int
        default: 1
      name:
        description: Name in the per-endpoint results; default C(<method> <path>).
        type: str
      headers:
        description: Headers of this endpoint's requests (over O(headers)).
        type: dict
        default: {}
      body:
        description: Request body; a dict or list is sent as JSON with C(Content-Type
          application/json).
        type: raw
  headers:
    description: Headers of every request, e.g. C(Authorization). Not logged.
    type: dict
    default: {}
  model:
    description: Closed (fixed number of users) or open (fixed arrival rate) model.
    type: str
    choices: [closed, open]
    default: closed
  users:
    description: Concurrent users (connections) of the closed model.
    type: int
    default: 10
  ramp_up:
    description: Seconds over which the closed model's users start, evenly.
    type: float
    default: 0
  rate:
    description: Requests per second of the open model.
    type: float
  max_connections:
    description:
      - Open model - most connections open at once. A due request that finds none free waits
        (its latency already running) and fails as C(timeout) after O(timeout).
    type: int
    default: 1000
  duration:
    description: Seconds to send requests for; then the answers still due are awaited.
    type: float
  requests:
    description: Number of requests to send, instead of O(duration).
    type: int
  timeout:
    description: Seconds a request may take (from when it was due) before it fails as C(timeout).
    type: float
    default: 10
  success_status:
    description: Status codes that count as success; empty for 200 to 399.
    type: list
    elements: int
    default: []
  thresholds:
    description:
      - Limits the run must stay under, by name - V(max_error_rate_pct) (highest error rate,
        percent of requests), V(p50_ms), V(p90_ms), V(p95_ms), V(p99_ms), V(max_ms) (highest
        latency, milliseconds) and V(min_throughput_rps) (lowest requests per second).
      - "The release checklist's limits apply unless overridden -
        C({max_error_rate_pct: 0.1, p95_ms: 500, p99_ms: 1000}). A limit set to V(null) is
        left out."
      - An error rate without any request, or a latency without any answer, fails - nothing
        measured is never a pass.
    type: dict
    default: {}
  fail_on_threshold:
    description: Fail the task when a threshold or a Prometheus check is not met.
    type: bool
    default: true
  progress_file:
    description: File replaced with the latest numbers (JSON) while the test runs.
    type: path
  progress_interval:
    description: Seconds between progress snapshots.
    type: float
    default: 1
  prometheus:
    description:
      - Prometheus gate, asked once the load is over.
    type: dict
    suboptions:
      url:
        description: Prometheus base URL (the HTTP API is under C(/api/v1/)).
        type: str
        required: true
      queries:
        description:
          - Instant queries; each must give one sample (aggregate with C(sum), C(max) or
            C(histogram_quantile)), which must be under C(max). C($window) in a query becomes
            the run's duration, e.g. C(rate(http_requests_total[$window])).
        type: list
        elements: dict
        required: true
        suboptions:
          name:
            description: Name of the check.
            type: str
            required: true
          query:
            description: PromQL.
            type: str
            required: true
          max:
            description: The value must be below this.
            type: float
            required: true
      delay:
        description: Seconds to wait before asking, so that the last scrape is in.
        type: float
        default: 0
      headers:
        description: Headers for Prometheus (e.g. Authorization). Not logged.
        type: dict
        default: {}
      validate_certs:
        description: Verify Prometheus's TLS certificate.
        type: bool
        default: true
      timeout:
        description: Seconds each query may take.
        type: float
        default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: partial
    details: Checks the options and resolves the host, and sends no request.
  diff_mode:
    support: none
  platform:
    platforms: posix
  idempotent:
    description: Whether a second run changes nothing.
    support: full
    details: The module changes nothing on the host (apart from the progress file) and
      reports no change.
requirements:
  - Python's standard library only
notes:
  - The module is needed because no collection shipped with Ansible generates load;
    C(ansible.builtin.uri) sends one request at a time.
  - Latency counts every answer, errors included; requests without an answer (timeouts,
    refused or reset connections) count as errors under RV(errors_by_exception) only.
  - A request sent on a keep-alive connection that the server closed at that moment is sent
    once more on a new connection, as browsers do; its latency keeps running.
  - The soft limit of open files is raised towards the hard one so that O(users) or
    O(max_connections) connections fit; beyond it connections fail as
    C(too_many_open_files).
seealso:
  - name: HdrHistogram
    description: The histogram design the percentiles follow.
    link: https://hdrhistogram.github.io/HdrHistogram/
  - name: How NOT to measure latency
    description: Coordinated omission, which the open model avoids.
    link: https://www.infoq.com/presentations/latency-response-time/
"""

EXAMPLES = r"""
---
- name: Load the new release with 100 users for two minutes, the checklist's thresholds
  prodready.deploy.load_test:
    url: http://10.0.3.15:8000
    users: 100
    ramp_up: 10
    duration: 120
    endpoints:
      - {path: /api/products, weight: 8}
      - {path: /api/cart, method: POST, body: {sku: A-1, qty: 1}, weight: 2}
  register: load

- name: An open-model test at 200 requests per second, in the background, with progress
  prodready.deploy.load_test:
    url: http://10.0.3.15:8000/health
    model: open
    rate: 200
    duration: 300
    progress_file: /tmp/load-test.progress.json
    thresholds: {p95_ms: 250, p99_ms: 800}
    prometheus:
      url: http://prometheus.monitoring:9090
      delay: 15
      queries:
        - name: server error rate
          query: >-
            sum(rate(http_requests_total{status=~"5.."}[$window]))
            / sum(rate(http_requests_total[$window]))
          max: 0.001
  async: 400
  poll: 0
  register: load_job

- name: Show the progress until the test is over
  ansible.builtin.async_status:
    jid: "{{ load_job.ansible_job_id }}"
  register: load_status
  until: load_status.finished
  retries: 80
  delay: 5
  changed_when: false
"""

RETURN = r"""
passed:
  description: Whether every threshold and Prometheus check passed.
  returned: success or threshold failure
  type: bool
  sample: true
checks:
  description: Each threshold with the measured value.
  returned: success or threshold failure
  type: list
  elements: dict
  sample: [{name: p95_ms, measured: 41.2, limit: 500, op: "<", passed: true}]
failed_checks:
  description: Names of the checks that failed.
  returned: success or threshold failure
  type: list
  elements: str
  sample: [error_rate_pct]
headline:
  description: One report row - the load, the verdict and the main numbers, then the failed
    checks.
  returned: success or threshold failure
  type: str
  sample: "load 100 users | PASS | 12000 requests, errors 0%, P50 3.1 ms, P95 9.8 ms,
    P99 15.2 ms, 1990 req/s"
summary:
  description: One line per check.
  returned: success or threshold failure
  type: list
  elements: str
  sample: ["error_rate_pct 0.02 (limit < 0.1): pass"]
requests:
  description: Requests finished (answered or failed).
  returned: success or threshold failure
  type: int
  sample: 12000
responses:
  description: Requests answered with a status (the latency sample size).
  returned: success or threshold failure
  type: int
  sample: 11998
errors:
  description: Requests that failed (status outside O(success_status), or no answer).
  returned: success or threshold failure
  type: int
  sample: 12
error_rate_pct:
  description: Errors per request, percent.
  returned: success or threshold failure
  type: float
  sample: 0.1
errors_by_status:
  description: Failed requests per status code.
  returned: success or threshold failure
  type: dict
  sample: {"500": 10}
errors_by_exception:
  description: Requests without an answer per cause (C(timeout), C(connection_refused),
    C(connection_reset), C(connection_closed), C(protocol_error), ...).
  returned: success or threshold failure
  type: dict
  sample: {timeout: 2}
status_codes:
  description: Answers per status code.
  returned: success or threshold failure
  type: dict
  sample: {"200": 11988, "500": 10}
duration_s:
  description: Seconds from the first request to the last answer.
  returned: success or threshold failure
  type: float
  sample: 60.02
throughput_rps:
  description: Requests per second over RV(duration_s).
  returned: success or threshold failure
  type: float
  sample: 199.9
latency_ms:
  description: Latency of the answers in milliseconds - min, mean, p50, p90, p95, p99, max.
  returned: success or threshold failure
  type: dict
  sample: {min: 1.2, mean: 14.1, p50: 11.0, p90: 25.3, p95: 31.9, p99: 48.0, max: 120.4}
endpoints:
  description: Per endpoint name - requests, errors, error_rate_pct, latency_ms.
  returned: success or threshold failure
  type: dict
  sample: {"GET /health": {requests: 100, errors: 0, error_rate_pct: 0.0, latency_ms: {p50: 1.1}}}
max_open_connections:
  description: Most connections open at once.
  returned: success or threshold failure
  type: int
  sample: 100
prometheus:
  description: Each Prometheus query as sent, its value (null without data) and verdict.
  returned: when O(prometheus) is set
  type: list
  elements: dict
  sample: [{name: server error rate, query: "...[61s]", value: 0.0004, max: 0.001,
            passed: true, error: null}]
plan:
  description: What was run - target, model, users or rate, duration or requests, endpoints.
  returned: always
  type: dict
  sample: {target: "http://10.0.3.15:8000", model: closed, users: 100, duration: 120}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._load.engine import Runner
from ansible_collections.prodready.deploy.plugins.module_utils._load.http import LoadTestError
from ansible_collections.prodready.deploy.plugins.module_utils._load.plan import (
    METHODS,
    ProgressFile,
    build_plan,
)
from ansible_collections.prodready.deploy.plugins.module_utils._load.prometheus import (
    gate,
    http_fetch,
)
from ansible_collections.prodready.deploy.plugins.module_utils._load.report import (
    evaluate,
    failure_message,
    headline,
    resolve_thresholds,
    summarize,
)


def main() -> None:
    argument_spec = {
        "url": {"type": "str", "required": True},
        "validate_certs": {"type": "bool", "default": True},
        "ca_path": {"type": "path"},
        "endpoints": {"type": "list", "elements": "dict", "default": [], "options": {
            "path": {"type": "str", "required": True},
            "method": {"type": "str", "default": "GET", "choices": list(METHODS)},
            "weight": {"type": "int", "default": 1},
            "name": {"type": "str"},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "body": {"type": "raw"},
        }},
        "headers": {"type": "dict", "default": {}, "no_log": True},
        "model": {"type": "str", "choices": ["closed", "open"], "default": "closed"},
        "users": {"type": "int", "default": 10},
        "ramp_up": {"type": "float", "default": 0},
        "rate": {"type": "float"},
        "max_connections": {"type": "int", "default": 1000},
        "duration": {"type": "float"},
        "requests": {"type": "int"},
        "timeout": {"type": "float", "default": 10},
        "success_status": {"type": "list", "elements": "int", "default": []},
        "thresholds": {"type": "dict", "default": {}},
        "fail_on_threshold": {"type": "bool", "default": True},
        "progress_file": {"type": "path"},
        "progress_interval": {"type": "float", "default": 1},
        "prometheus": {"type": "dict", "options": {
            "url": {"type": "str", "required": True},
            "queries": {"type": "list", "elements": "dict", "required": True, "options": {
                "name": {"type": "str", "required": True},
                "query": {"type": "str", "required": True},
                "max": {"type": "float", "required": True},
            }},
            "delay": {"type": "float", "default": 0},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "validate_certs": {"type": "bool", "default": True},
            "timeout": {"type": "float", "default": 10},
        }},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           mutually_exclusive=[("duration", "requests")],
                           required_one_of=[("duration", "requests")],
                           required_if=[("model", "open", ["rate"])])
    params = module.params
    try:
        plan = build_plan(params)
        thresholds = resolve_thresholds(params["thresholds"])
        progress = ProgressFile(params["progress_file"])
        runner = Runner(plan, progress=None)
    except (LoadTestError, OSError) as exc:
        module.fail_json(msg=f"Failed to prepare the load test of {params['url']} ({exc})")
    described = {"target": f"{plan.target.scheme}://{plan.target.netloc}", "model": plan.model,
                 "users" if plan.model == "closed" else "rate":
                     plan.users if plan.model == "closed" else plan.rate,
                 "duration" if plan.duration else "requests": plan.duration or plan.requests,
                 "endpoints": {e.name: e.weight for e in plan.endpoints}}
    if module.check_mode:
        module.exit_json(changed=False, plan=described,
                         msg="check mode: the options are valid and the host resolves; no"
                             " request was sent")

    def on_progress(snapshot: dict) -> None:
        progress.write({"state": "running", **snapshot})

    runner.progress = on_progress if params["progress_file"] else None
    try:
        stats = runner.run()
        summary = summarize(stats, plan.endpoints)
        progress.write({"state": "finished", "requests": summary["requests"],
                        "errors": summary["errors"], "error_rate_pct": summary["error_rate_pct"],
                        "latency_ms": summary["latency_ms"],
                        "throughput_rps": summary["throughput_rps"]})
    except LoadTestError as exc:
        module.fail_json(msg=f"Failed to run the load test of {described['target']} ({exc})",
                         plan=described)
    checks = evaluate(summary, thresholds)
    result = {"changed": False, "plan": described, **summary}
    prom = params["prometheus"]
    if prom:
        time.sleep(prom["delay"])
        fetch = http_fetch(prom["url"], prom["headers"], prom["validate_certs"], prom["timeout"])
        prom_checks, details = gate(fetch, prom["url"], prom["queries"],
                                    window_s=summary["duration_s"], at=time.time())
        checks += prom_checks
        result["prometheus"] = details
    failed = [c for c in checks if not c.passed]
    load = (f"{plan.users} users" if plan.model == "closed" else f"{plan.rate:g} req/s open")
    result.update(passed=not failed, checks=[c.as_dict() for c in checks],
                  failed_checks=[c.name for c in failed], summary=[c.line() for c in checks],
                  headline=headline(load, summary, failed))
    if failed and params["fail_on_threshold"]:
        module.fail_json(msg=failure_message(described["target"], summary, failed), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
