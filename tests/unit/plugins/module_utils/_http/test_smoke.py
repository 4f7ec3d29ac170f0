# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Smoke suites: step validation, saved values across steps, skips of dependent steps,
check mode, latency budgets and the JUnit report."""

from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from http_fakes import FakeClient, response, unreachable

from ansible_collections.prodready.deploy.plugins.module_utils._http import smoke
from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    HttpInputError,
    Response,
)

SUITE = [
    {"name": "create", "method": "POST", "path": "/api/users",
     "json": {"email": "u-{{ run.id }}@example.com", "tier": "{{ vars.tier }}"},
     "expect": {"status": 201, "headers": {"Location": True, "X-Powered-By": False}},
     "save": {"id": "id"}},
    {"name": "read", "path": "/api/users/{{ saved.id }}",
     "expect": {"json": {"id": "{{ saved.id }}", "email": "u-{{ run.id }}@example.com"}}},
    {"name": "health", "path": "/health"},
]


def app(create_status: int = 201, latency: float = 5.0) -> FakeClient:
    def script(method: str, url: str, _h: Any, body: bytes | None) -> Response:
        if method == "POST":
            sent = json.loads(body or b"{}")
            return response(create_status, {"id": 7, **sent}, {"Location": "/api/users/7"},
                            elapsed_ms=latency)
        if url.endswith("/api/users/7"):
            return response(200, {"id": 7, "email": "u-r1@example.com"}, elapsed_ms=latency)
        return response(200, {"status": "ok"}, elapsed_ms=latency)

    return FakeClient(script)


def test_saved_values_flow_into_later_steps() -> None:
    client = app()
    results, saved = smoke.run_suite(client, smoke.parse_steps(SUITE), {"tier": "gold"}, "r1")
    assert [r.outcome for r in results] == ["passed", "passed", "passed"]
    assert saved == {"id": 7}
    assert results[1].path == "/api/users/7"
    assert json.loads(client.sent[0][3]) == {"email": "u-r1@example.com", "tier": "gold"}
    assert client.sent[0][2]["Content-Type"] == "application/json"


def test_a_failed_step_still_saves_what_it_found() -> None:
    results, saved = smoke.run_suite(app(create_status=409), smoke.parse_steps(SUITE),
                                     {"tier": "x"}, "r1")
    assert [r.outcome for r in results] == ["failed", "passed", "passed"]
    assert results[0].failures == ["status: expected 201, got 409"]
    assert saved == {"id": 7}


def test_missing_save_skips_dependents() -> None:
    client = FakeClient(lambda m, *_a: response(500, {"error": "x"}) if m == "POST"
                        else response(200, {"status": "ok"}))
    results, saved = smoke.run_suite(client, smoke.parse_steps(SUITE), {"tier": "x"}, "r1")
    assert [r.outcome for r in results] == ["failed", "skipped", "passed"]
    assert results[0].failures == ["status: expected 201, got 500",
                                   "header Location: expected present, got absent",
                                   "save id: id found nothing in the body"]
    assert results[1].message == ("needs {{ saved.id }}, which an earlier step did not save"
                                  " (it failed or was skipped)")
    assert saved == {}


def test_check_mode_sends_only_safe_methods() -> None:
    client = app()
    results, _saved = smoke.run_suite(client, smoke.parse_steps(SUITE), {"tier": "x"}, "r1",
                                      check_mode=True)
    assert [r.outcome for r in results] == ["skipped", "skipped", "passed"]
    assert results[0].message == "check mode: POST not sent"
    assert [s[0] for s in client.sent] == ["GET"]


def test_latency_budget() -> None:
    steps = smoke.parse_steps([{"name": "slow", "path": "/health", "latency_ms": 100}])
    results, _s = smoke.run_suite(app(latency=250.0), steps, {}, "r")
    assert results[0].failures == ["latency: expected at most 100 ms, got 250 ms"]
    steps = smoke.parse_steps([{"path": "/health"}], default_latency_ms=300)
    assert smoke.run_suite(app(latency=250.0), steps, {}, "r")[0][0].outcome == "passed"


def test_no_answer_is_an_error() -> None:
    client = FakeClient(lambda *_a: unreachable("http://app.test/health"))
    results, _s = smoke.run_suite(client, smoke.parse_steps([{"path": "/health"}]), {}, "r")
    assert results[0].outcome == "error"
    assert "Connection refused" in results[0].message


def test_header_and_json_mismatches_say_expected_and_actual() -> None:
    client = FakeClient(lambda *_a: response(200, {"status": "fail"},
                                             {"Cache-Control": "public"}))
    steps = smoke.parse_steps([{"path": "/x", "expect": {
        "headers": {"Cache-Control": "no-store", "X-Id": True},
        "json": {"status": "ok", "missing": None}}}])
    results, _s = smoke.run_suite(client, steps, {}, "r")
    assert results[0].failures == ["header Cache-Control: expected 'no-store', got 'public'",
                                   "header X-Id: expected present, got absent",
                                   'json status: expected "ok", got "fail"']


@pytest.mark.parametrize(("steps", "message"), [
    ([], "the suite has no steps"),
    ([{"method": "GET"}], "step 1 has no path"),
    ([{"path": "/", "bogus": 1}], "step 1: unknown keys bogus"),
    ([{"path": "/", "json": {}, "body": "x"}], "give json or body, not both"),
    ([{"path": "/", "expect": {"status": "ok"}}], "expect.status 'ok' is not a number"),
    ([{"path": "/", "expect": {"json": {"a[": 1}}}], "is not a JMESPath expression"),
    ([{"path": "/a/{{ saved.id }}"}], "step 1 (GET /a/{{ saved.id }}) uses {{ saved.id }},"
     " which no earlier step saves"),
    ([{"path": "/"}, {"path": "/"}], "another step has the same name"),
    ([{"path": "/", "latency_ms": -1}], "latency_ms must be a positive number"),
])
def test_invalid_steps(steps: list[dict[str, Any]], message: str) -> None:
    with pytest.raises(HttpInputError) as info:
        smoke.parse_steps(steps)
    assert message in str(info.value)


def test_load_suite(tmp_path: Path) -> None:
    path = tmp_path / "s.yml"
    path.write_text("name: x\nsteps:\n  - path: /health\n")
    assert smoke.load_suite(str(path))["name"] == "x"
    path.write_text("- path: /health\n")
    assert smoke.load_suite(str(path)) == {"steps": [{"path": "/health"}]}
    path.write_text("steps: {\n")
    with pytest.raises(HttpInputError, match="is not valid YAML"):
        smoke.load_suite(str(path))
    with pytest.raises(HttpInputError, match="cannot read the suite"):
        smoke.load_suite(str(tmp_path / "none.yml"))


def test_junit_report(tmp_path: Path) -> None:
    results = [
        smoke.StepResult("create", "POST", "/api/users", "passed", 201, 12.0),
        smoke.StepResult("gone", "GET", "/api/users/7", "failed", 200, 8.0,
                         ["status: expected 404, got 200"], "status: expected 404, got 200"),
        smoke.StepResult("read", "GET", "/api/users/{{ saved.id }}", "skipped",
                         message="needs {{ saved.id }}"),
        smoke.StepResult("down", "GET", "/health", "error", message="no answer"),
    ]
    started = datetime.datetime(2026, 11, 27, 10, 0, tzinfo=datetime.UTC)
    path = tmp_path / "evidence" / "junit.xml"
    smoke.write_atomic(str(path), smoke.junit_xml("refapp GDPR", results, started, 0.5))
    root = ET.parse(path).getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped", "timestamp")} \
        == {"tests": "4", "failures": "1", "errors": "1", "skipped": "1",
            "timestamp": "2026-11-27T10:00:00"}
    cases = suite.findall("testcase")
    assert [c.get("name") for c in cases] == ["create", "gone", "read", "down"]
    assert cases[0].get("classname") == "smoke.refapp_GDPR"
    failure = cases[1].find("failure")
    assert failure is not None and failure.get("message") == "status: expected 404, got 200"
    assert failure.text == "GET /api/users/7\nstatus: expected 404, got 200"
    assert cases[2].find("skipped") is not None
    assert cases[3].find("error") is not None
    assert [p.name for p in path.parent.iterdir()] == ["junit.xml"]  # no temporary left


@pytest.mark.parametrize(("step", "message"), [
    ({"path": "/x/{{ lookup('env', 'HOME') }}"}, "is not a placeholder"),
    ({"path": "/x", "headers": {"X": "{{ env.HOME }}"}}, "unknown placeholder {{ env.HOME }}"),
    ({"path": "/x", "json": {"a": "{{ saved.id | int }}"}}, "is not a placeholder"),
])
def test_expressions_are_refused_before_anything_is_sent(step: dict[str, Any],
                                                         message: str) -> None:
    with pytest.raises(HttpInputError, match=message.replace("{", r"\{").replace("|", r"\|")):
        smoke.parse_steps([{"path": "/first"}, step])
