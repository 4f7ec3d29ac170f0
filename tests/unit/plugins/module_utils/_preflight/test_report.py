# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight report: concurrency, hung and broken probes, the table."""

from __future__ import annotations

import threading
import time

from ansible_collections.prodready.deploy.plugins.module_utils._preflight import report
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    CheckResult,
    render_table,
    run_concurrently,
)


def test_probes_run_at_the_same_time_and_keep_their_order(monkeypatch):
    barrier = threading.Barrier(3, timeout=5)

    def probe(name):
        def run():
            barrier.wait()  # only returns when all three run at once
            return CheckResult(name, "pass", name)
        return run

    results = run_concurrently([(n, probe(n)) for n in ("a", "b", "c")], timeout=5)
    assert [r.id for r in results] == ["a", "b", "c"]


def test_a_hung_probe_fails_alone_and_a_broken_one_names_the_error(monkeypatch):
    monkeypatch.setattr(report, "GRACE_SECONDS", 0.1)
    release = threading.Event()

    def hang():
        release.wait(5)
        return CheckResult("slow", "pass", "late")

    def broken():
        raise ValueError("no such thing")

    started = time.monotonic()
    results = run_concurrently([("slow", hang), ("broken", broken),
                                ("fine", lambda: [CheckResult("fine", "pass", "ok"),
                                                  CheckResult("fine.more", "warn", "hm")])],
                               timeout=0.2)
    release.set()
    assert time.monotonic() - started < 2
    assert [(r.id, r.status) for r in results] == [
        ("slow", "fail"), ("broken", "fail"), ("fine", "pass"), ("fine.more", "warn")]
    assert results[0].message == "no answer within 0.2 s (+0.1 s)"
    assert results[1].message == "the check could not run: ValueError: no such thing"


def test_table_is_fixed_width_with_a_summary():
    results = [CheckResult("env.required", "pass", "all set"),
               CheckResult("tls.example.com:443", "fail", "expired\non 2026-01-01")]
    lines = render_table(results, {"pass": 1, "warn": 0, "fail": 1, "skip": 0})
    assert lines == [
        "CHECK               | STATUS | MESSAGE",
        "--------------------+--------+--------",
        "env.required        | PASS   | all set",
        "tls.example.com:443 | FAIL   | expired on 2026-01-01",
        "--------------------+--------+--------",
        "1 pass, 0 warn, 1 fail, 0 skip",
    ]
    long = render_table([CheckResult("x", "warn", "y" * 500)], {}, width=20)
    assert long[2] == "x     | WARN   | " + "y" * 17 + "..."


def test_report_fails_by_fail_on():
    results = [CheckResult("a", "warn", "w"), CheckResult("b", "pass", "p")]
    assert report.report(results, "fail")["fails"] is False
    assert report.report(results, "warn")["fails"] is True
    verdict = report.report(results + [CheckResult("c", "fail", "f")], "never")
    assert verdict["fails"] is False
    assert verdict["failed_checks"] == ["c"] and verdict["warned_checks"] == ["a"]
