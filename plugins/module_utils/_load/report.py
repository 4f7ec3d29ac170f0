# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The measured numbers of a load test and their verdict against the thresholds.

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .engine import SECOND, Stats
from .http import Endpoint, LoadTestError

# The release checklist's numbers.
DEFAULT_THRESHOLDS = {"max_error_rate_pct": 0.1, "p95_ms": 500.0, "p99_ms": 1000.0}
LATENCY_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms")


@dataclass(frozen=True)
class Check:
    name: str
    measured: float | None
    limit: float
    op: str
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "measured": self.measured, "limit": self.limit,
                "op": self.op, "passed": self.passed}

    def line(self) -> str:
        verdict = "pass" if self.passed else "FAIL"
        measured = "no data" if self.measured is None else f"{self.measured:g}"
        return f"{self.name} {measured} (limit {self.op} {self.limit:g}): {verdict}"


def summarize(stats: Stats, endpoints: list[Endpoint]) -> dict[str, Any]:
    """The result the module returns (without the verdict)."""
    elapsed = max(stats.finished - stats.started, 1) / SECOND
    merged = stats.merged()
    latency = merged.summary_ms()
    per_endpoint = {}
    for i, endpoint in enumerate(endpoints):
        requests = stats.ep_requests[i]
        per_endpoint[endpoint.name] = {
            "requests": requests, "errors": stats.ep_errors[i],
            "error_rate_pct": round(100 * stats.ep_errors[i] / requests, 4) if requests else 0.0,
            "latency_ms": stats.hist[i].summary_ms()}
    return {
        "requests": stats.requests,
        "responses": merged.total,
        "errors": stats.errors,
        "error_rate_pct": round(100 * stats.errors / stats.requests, 4) if stats.requests else 0.0,
        "errors_by_status": {str(k): v for k, v in sorted(stats.error_statuses.items())},
        "errors_by_exception": dict(sorted(stats.exceptions.items())),
        "status_codes": {str(k): v for k, v in sorted(stats.statuses.items())},
        "duration_s": round(elapsed, 3),
        "throughput_rps": round(stats.requests / elapsed, 1),
        "latency_ms": latency,
        "endpoints": per_endpoint,
        "max_open_connections": stats.max_open,
    }


def resolve_thresholds(given: dict[str, Any] | None) -> dict[str, float | None]:
    """The checklist's defaults overridden by ``given``; None leaves a limit out."""
    allowed = ("max_error_rate_pct", *LATENCY_KEYS, "min_throughput_rps")
    out: dict[str, float | None] = dict(DEFAULT_THRESHOLDS)
    for key, value in (given or {}).items():
        if key not in allowed:
            raise LoadTestError(f"threshold {key!r} is not one of {', '.join(allowed)}")
        if value is None:
            out[key] = None
            continue
        try:
            out[key] = float(value)
        except (TypeError, ValueError):
            raise LoadTestError(f"threshold {key}: {value!r} is not a number") from None
    return out


def evaluate(summary: dict[str, Any], thresholds: dict[str, float | None]) -> list[Check]:
    """One check per threshold that is set; no requests at all fails the error-rate check
    (nothing measured is never a pass)."""
    checks = []
    rate_limit = thresholds.get("max_error_rate_pct")
    if rate_limit is not None:
        measured = summary["error_rate_pct"] if summary["requests"] else 100.0
        checks.append(Check("error_rate_pct", measured, rate_limit, "<",
                            summary["requests"] > 0 and measured < rate_limit))
    latency = summary["latency_ms"]
    for key in LATENCY_KEYS:
        limit = thresholds.get(key)
        if limit is None:
            continue
        measured = latency[key.removesuffix("_ms")]
        checks.append(Check(key, measured, limit, "<",
                            summary["responses"] > 0 and measured < limit))
    minimum = thresholds.get("min_throughput_rps")
    if minimum is not None:
        checks.append(Check("throughput_rps", summary["throughput_rps"], minimum, ">=",
                            summary["throughput_rps"] >= minimum))
    return checks


def failure_message(target: str, summary: dict[str, Any], failed: list[Check]) -> str:
    """One line: which thresholds failed, with the numbers, and what was measured."""
    lat = summary["latency_ms"]
    return (f"Load test of {target} failed its thresholds: "
            + "; ".join(c.line() for c in failed)
            + f" ({summary['requests']} requests, {summary['errors']} errors,"
              f" {summary['throughput_rps']:g} req/s, P50 {lat['p50']:g} ms,"
              f" P95 {lat['p95']:g} ms, P99 {lat['p99']:g} ms)")


def headline(load: str, summary: dict[str, Any], failed: list[Check]) -> str:
    """One report row - what was run, the verdict, the numbers a reader asks for first and
    the failed checks - in the same ``name | OUTCOME | message`` shape as the other checks'
    tables."""
    lat = summary["latency_ms"]
    row = (f"load {load} | {'FAIL' if failed else 'PASS'} | {summary['requests']} requests,"
           f" errors {summary['error_rate_pct']:g}%, P50 {lat['p50']:g} ms,"
           f" P95 {lat['p95']:g} ms, P99 {lat['p99']:g} ms,"
           f" {summary['throughput_rps']:g} req/s")
    return row + (" - " + "; ".join(c.line() for c in failed) if failed else "")
