# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Thresholds: the checklist's defaults, overrides, and nothing measured never passing."""

from __future__ import annotations

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._load.http import LoadTestError
from ansible_collections.prodready.deploy.plugins.module_utils._load.report import (
    DEFAULT_THRESHOLDS,
    evaluate,
    failure_message,
    headline,
    resolve_thresholds,
)


def summary(requests=10_000, errors=5, p50=20.0, p90=40.0, p95=60.0, p99=120.0, mx=300.0,
            rps=500.0):
    return {"requests": requests, "responses": requests, "errors": errors,
            "error_rate_pct": round(100 * errors / requests, 4) if requests else 0.0,
            "throughput_rps": rps,
            "latency_ms": {"min": 1.0, "mean": 25.0, "p50": p50, "p90": p90, "p95": p95,
                           "p99": p99, "max": mx}}


def verdicts(checks):
    return {c.name: (c.measured, c.passed) for c in checks}


def test_checklist_defaults():
    assert resolve_thresholds({}) == {"max_error_rate_pct": 0.1, "p95_ms": 500.0,
                                      "p99_ms": 1000.0}
    assert resolve_thresholds(None) == DEFAULT_THRESHOLDS


@pytest.mark.parametrize(("given", "want"), [
    ({"p95_ms": 250}, {"max_error_rate_pct": 0.1, "p95_ms": 250.0, "p99_ms": 1000.0}),
    ({"p99_ms": None, "min_throughput_rps": "100"},
     {"max_error_rate_pct": 0.1, "p95_ms": 500.0, "p99_ms": None, "min_throughput_rps": 100.0}),
])
def test_overrides(given, want):
    assert resolve_thresholds(given) == want


@pytest.mark.parametrize(("given", "message"), [
    ({"p42_ms": 1}, "threshold 'p42_ms' is not one of"),
    ({"p95_ms": "fast"}, "p95_ms: 'fast' is not a number"),
])
def test_bad_thresholds(given, message):
    with pytest.raises(LoadTestError, match=message):
        resolve_thresholds(given)


@pytest.mark.parametrize(("numbers", "thresholds", "want"), [
    # 5 errors in 10,000 = 0.05% < 0.1%: pass; latencies well under.
    ({}, {}, {"error_rate_pct": (0.05, True), "p95_ms": (60.0, True),
              "p99_ms": (120.0, True)}),
    # Exactly at the limit is a failure (the checklist says "under").
    ({"errors": 10}, {}, {"error_rate_pct": (0.1, False), "p95_ms": (60.0, True),
                          "p99_ms": (120.0, True)}),
    ({"p95": 500.0, "p99": 1500.0}, {}, {"error_rate_pct": (0.05, True),
                                         "p95_ms": (500.0, False), "p99_ms": (1500.0, False)}),
    ({"rps": 90.0}, {"min_throughput_rps": 100, "p95_ms": None, "p99_ms": None,
                     "max_error_rate_pct": None}, {"throughput_rps": (90.0, False)}),
    ({"mx": 2000.0, "p50": 10.0}, {"max_ms": 1000, "p50_ms": 15, "p95_ms": None,
                                   "p99_ms": None},
     {"error_rate_pct": (0.05, True), "p50_ms": (10.0, True), "max_ms": (2000.0, False)}),
])
def test_evaluate(numbers, thresholds, want):
    checks = evaluate(summary(**numbers), resolve_thresholds(thresholds))
    assert verdicts(checks) == want


def test_nothing_measured_fails():
    empty = summary(requests=0, errors=0, p50=0.0, p95=0.0, p99=0.0, mx=0.0)
    empty["responses"] = 0
    checks = evaluate(empty, resolve_thresholds({}))
    assert verdicts(checks) == {"error_rate_pct": (100.0, False), "p95_ms": (0.0, False),
                                "p99_ms": (0.0, False)}


def test_failure_message_names_the_numbers():
    numbers = summary(errors=150, p95=620.0)
    failed = [c for c in evaluate(numbers, resolve_thresholds({})) if not c.passed]
    message = failure_message("http://app:8000", numbers, failed)
    assert message == (
        "Load test of http://app:8000 failed its thresholds: error_rate_pct 1.5 (limit < 0.1):"
        " FAIL; p95_ms 620 (limit < 500): FAIL (10000 requests, 150 errors, 500 req/s,"
        " P50 20 ms, P95 620 ms, P99 120 ms)")


def test_headline_is_one_report_row():
    passing = summary()
    assert headline("100 users", passing, []) == (
        "load 100 users | PASS | 10000 requests, errors 0.05%, P50 20 ms, P95 60 ms,"
        " P99 120 ms, 500 req/s")
    failing = summary(p99=1500.0)
    failed = [c for c in evaluate(failing, resolve_thresholds({})) if not c.passed]
    assert headline("1000 users", failing, failed).endswith(
        "| FAIL | 10000 requests, errors 0.05%, P50 20 ms, P95 60 ms, P99 1500 ms, 500 req/s"
        " - p99_ms 1500 (limit < 1000): FAIL")
