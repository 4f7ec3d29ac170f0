# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The optional Prometheus gate: instant queries through the HTTP API (/api/v1/query) at the
end of the load test, each compared with a limit. A query that returns no sample, or NaN, or
an error fails its check: no data is never a pass.

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any
from urllib.error import HTTPError
from urllib.parse import urlencode

from ansible.module_utils.urls import open_url

from .report import Check


class PrometheusError(Exception):
    """Prometheus could not be asked; the message names the server and the cause."""


def render(query: str, window_s: float) -> str:
    """``$window`` in a query becomes the load test's duration in whole seconds (at least
    one), e.g. ``rate(http_requests_total[$window])`` -> ``rate(...[93s])``."""
    return query.replace("$window", f"{max(1, math.ceil(window_s))}s")


def parse_value(body: bytes, query: str) -> float | None:
    """The value of a query answer: the only sample of a vector or a scalar; None for no
    data. Several samples are an error (the query must aggregate)."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise PrometheusError(f"query {query!r}: the answer is not JSON ({exc})") from None
    if doc.get("status") != "success":
        raise PrometheusError(f"query {query!r}: {doc.get('errorType', 'error')}:"
                              f" {doc.get('error', 'no error text')}")
    data = doc.get("data") or {}
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        samples = [result]
    elif kind == "vector":
        samples = [item.get("value") for item in result or []]
    else:
        raise PrometheusError(f"query {query!r}: result type {kind!r}; use an instant vector"
                              " or a scalar")
    if not samples:
        return None
    if len(samples) > 1:
        raise PrometheusError(f"query {query!r}: {len(samples)} series; aggregate them to one"
                              " (sum, max, histogram_quantile over sum by (le))")
    try:
        value = float(samples[0][1])
    except (TypeError, ValueError, IndexError):
        raise PrometheusError(f"query {query!r}: unreadable sample {samples[0]!r}") from None
    return None if math.isnan(value) else value


def http_fetch(base_url: str, headers: dict[str, str], validate_certs: bool, timeout: float
               ) -> Callable[[str], bytes]:
    """A GET through Ansible's open_url; any transport or HTTP error becomes PrometheusError
    (a failed check, not a crash)."""
    def fetch(url: str) -> bytes:
        try:
            with open_url(url, headers=headers, validate_certs=validate_certs,
                          timeout=timeout) as resp:
                return resp.read()
        except HTTPError as exc:
            # Prometheus explains a bad query in a JSON body (400, 422, 503).
            body = exc.read() if exc.fp else b""
            if body.lstrip().startswith(b"{"):
                return body
            raise PrometheusError(f"{base_url}: {exc}") from None
        except Exception as exc:  # pylint: disable=broad-exception-caught
            raise PrometheusError(f"{base_url}: {exc}") from None
    return fetch


def gate(fetch: Callable[[str], bytes], base_url: str, queries: list[dict[str, Any]],
         window_s: float, at: float) -> tuple[list[Check], list[dict[str, Any]]]:
    """(checks, details) of each query {name, query, max}; ``fetch`` GETs a URL and returns
    the body (raising on transport errors)."""
    checks, details = [], []
    for item in queries:
        query = render(item["query"], window_s)
        url = (base_url.rstrip("/") + "/api/v1/query?"
               + urlencode({"query": query, "time": f"{at:.3f}"}))
        try:
            value = parse_value(fetch(url), query)
            error = None
        except PrometheusError as exc:
            value, error = None, str(exc)
        passed = value is not None and value < item["max"]
        checks.append(Check(f"prometheus:{item['name']}", value, item["max"], "<", passed))
        details.append({"name": item["name"], "query": query, "value": value,
                        "max": item["max"], "passed": passed,
                        "error": error or ("no data" if value is None else None)})
    return checks, details
