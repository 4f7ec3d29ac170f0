# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus metrics.

Metric objects are module-level because prometheus_client registers them
globally; creating them per app would fail on the second create_app() call.
Under gunicorn, gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR before any
worker imports this module, which switches prometheus_client to its mmap-file
storage so /metrics aggregates all workers rather than the one that answered.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by method, route and status code.",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time spent answering HTTP requests, by method and route.",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
BUILD_INFO = Gauge(
    "refapp_build_info",
    "Always 1; labels identify the running build.",
    ["version", "git_sha"],
    # Every worker reports the same value; "max" collapses them to one series.
    multiprocess_mode="max",
)
RATELIMIT_REJECTIONS = Counter(
    "refapp_ratelimit_rejections",
    "Requests answered 429 by the rate limiter.",
)

# Arbitrary client-chosen methods would otherwise create unbounded label sets.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "OTHER"


def exposition() -> tuple[bytes, str]:
    multiproc_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir:
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=multiproc_dir)
    else:
        registry = REGISTRY
    return generate_latest(registry), CONTENT_TYPE_LATEST
