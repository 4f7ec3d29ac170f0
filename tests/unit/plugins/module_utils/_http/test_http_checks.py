# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The contract checks on a scripted client: health backoff, version, metrics, redirects,
assets, CORS, rate limiting, probes and the phases of the run."""

from __future__ import annotations

import gzip
import json
from typing import Any
from urllib.parse import unquote_plus

import pytest
from http_fakes import FakeClient, response, unreachable

from ansible_collections.prodready.deploy.plugins.module_utils._http import checks
from ansible_collections.prodready.deploy.plugins.module_utils._http import client as client_module
from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    HttpInputError,
    Response,
)

HEALTH = {"path": "/health", "status": [200], "json": {"status": "ok"}, "budget": 10.0,
          "initial_delay": 0.5, "max_delay": 2.0}


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_health_retries_with_backoff_until_healthy() -> None:
    answers = [unreachable("x"), response(503, {"status": "fail"}),
               response(503, {"status": "fail"}), response(200, {"status": "ok"})]
    client = FakeClient(lambda *_a: answers.pop(0))
    clock = Clock()
    result = checks.check_health(client, HEALTH, clock.sleep, clock)
    assert result.status == "pass"
    assert clock.sleeps == [0.5, 1.0, 2.0]
    assert result.message == "GET http://app.test/health is healthy after 4 attempts (3.5 s)"


def test_health_gives_up_after_the_budget_and_names_the_last_answer() -> None:
    client = FakeClient(lambda *_a: response(503, {"status": "fail",
                                                   "checks": {"fault": "X"}}))
    clock = Clock()
    result = checks.check_health(client, {**HEALTH, "budget": 5.0}, clock.sleep, clock)
    assert result.status == "fail"
    assert clock.sleeps == [0.5, 1.0, 2.0, 1.5]  # capped at max_delay, then the remainder
    assert result.message == ("GET http://app.test/health was not healthy within 5 s"
                              " (5 attempts); last answer: HTTP 503 (want 200);"
                              ' status: expected "ok", got "fail"')


def test_health_not_json() -> None:
    problems = checks.judge_health(response(200, b"<html>ok</html>"), [200], {"status": "ok"})
    assert problems == ["the body is not JSON ('<html>ok</html>')"]


VERSION = {"path": "/version", "expected_version": "1.2.0",
           "expected_digest": "reg.test/app@sha256:" + "a" * 64,
           "version_query": "version", "digest_query": "image_digest"}


@pytest.mark.parametrize(("body", "status", "message"), [
    ({"version": "1.2.0", "image_digest": "sha256:" + "a" * 64}, "pass",
     "GET http://app.test/version reports the deployed version 1.2.0, image_digest sha256:aaa"),
    ({"version": "1.1.9", "image_digest": "sha256:" + "b" * 64}, "fail",
     "GET http://app.test/version reports another release: version is 1.1.9, deployed"
     " 1.2.0; image_digest is sha256:bbbb"),
])
def test_version(body: dict[str, Any], status: str, message: str) -> None:
    result = checks.check_version(FakeClient(lambda *_a: response(200, body)), VERSION)
    assert result.status == status
    assert result.message.startswith(message)


def _limited_then(answers: list[Any]) -> FakeClient:
    """Answers from the list in turn (the last one for good)."""
    queue = list(answers)
    return FakeClient(lambda *_a: queue.pop(0) if len(queue) > 1 else queue[0])


def test_version_waits_out_a_rate_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """A load stage left this host over the app's limit: waited out, then judged."""
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    client = _limited_then([response(429, {"error": "slow down"}, {"Retry-After": "2"}),
                            response(429, {}, {"Retry-After": "3"}),
                            response(200, {"version": "1.2.0",
                                           "image_digest": "sha256:" + "a" * 64})])
    client.rate_limited_wait = 30
    result = checks.check_version(client, VERSION)
    assert result.status == "pass", result.message
    assert slept == [2.0, 3.0] and len(client.sent) == 3


def test_version_judges_a_429_that_asks_for_too_long(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    client = _limited_then([response(429, {}, {"Retry-After": "20"}),
                            response(429, {}, {"Retry-After": "20"})])
    client.rate_limited_wait = 30
    result = checks.check_version(client, VERSION)
    assert (result.status, result.message) == (
        "fail", "GET http://app.test/version answered HTTP 429 (rate-limited, Retry-After 20)"
                " beyond rate_limited_wait of 30 s")
    assert "exempt the checking host" in result.remediation
    assert slept == [20.0] and len(client.sent) == 2
    # 0 judges the first answer; a 429 without a usable Retry-After is not waited for.
    for wait, retry_after in ((0, "1"), (30, "soon")):
        client = _limited_then([response(429, {}, {"Retry-After": retry_after})])
        client.rate_limited_wait = wait
        assert checks.check_version(client, VERSION).status == "fail"
        assert len(client.sent) == 1
    client = _limited_then([response(429, {})])
    assert checks.check_version(client, VERSION).message.endswith(
        "answered HTTP 429 (rate-limited, without Retry-After, so not waited for)")


def test_a_retry_after_of_zero_cannot_spin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retry-After 0 (or a date just passed) for ever: a second per try, within the wait."""
    slept: list[float] = []
    monkeypatch.setattr(client_module.time, "sleep", slept.append)
    client = _limited_then([response(429, {}, {"Retry-After": "0"})])
    client.rate_limited_wait = 5
    assert checks.check_version(client, VERSION).status == "fail"
    assert slept == [1.0] * 4 and len(client.sent) == 5


def test_version_error_status() -> None:
    result = checks.check_version(FakeClient(lambda *_a: response(500, {"error": "x"})),
                                  VERSION)
    assert (result.status, result.message) == (
        "fail", "GET http://app.test/version answered HTTP 500")


METRICS_TEXT = b"""# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{method="GET",status="200"} 3.0
# HELP up Up.
# TYPE up gauge
up 1
"""


@pytest.mark.parametrize(("body", "required", "status", "message"), [
    (METRICS_TEXT, ["http_requests_total", "up", "http_requests"], "pass",
     "GET http://app.test/metrics parses: 2 families, 2 samples, all 3 required present"),
    (METRICS_TEXT, ["up", "refapp_build_info", "queue_depth"], "fail",
     "GET http://app.test/metrics lacks the required metrics refapp_build_info, queue_depth"
     " (2 families present)"),
    (b"this is { not metrics", [], "fail",
     "GET http://app.test/metrics is not Prometheus text exposition"),
    (b"", [], "fail", "GET http://app.test/metrics holds no metrics"),
])
def test_metrics(body: bytes, required: list[str], status: str, message: str) -> None:
    client = FakeClient(lambda *_a: response(200, body, {"Content-Type": "text/plain"}))
    result = checks.check_metrics(client, {"path": "/metrics", "required": required})
    assert result.status == status
    assert result.message.startswith(message)


def test_metrics_without_the_library(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "HAS_PROMETHEUS", False)
    result = checks.check_metrics(FakeClient(lambda *_a: response()),
                                  {"path": "/metrics", "required": []})
    assert result.status == "fail"
    assert "prometheus_client is missing" in result.message


@pytest.mark.parametrize(("status", "location", "verdict", "message"), [
    (301, "https://app.test/", "pass", "GET http://app.test/ redirects to HTTPS (HTTP 301"),
    (308, "https://app.test/x", "pass", "GET http://app.test/ redirects to HTTPS (HTTP 308"),
    (302, "https://app.test/", "warn", "GET http://app.test/ redirects to HTTPS with a"
     " temporary HTTP 302"),
    (301, "/login", "fail", "GET http://app.test/ redirects (HTTP 301) to http://app.test/login,"
     " not to HTTPS"),
    (200, None, "fail", "GET http://app.test/ does not redirect to HTTPS: it answered HTTP 200"
     " over plain HTTP"),
])
def test_https_redirect(status: int, location: str | None, verdict: str, message: str) -> None:
    headers = {"Location": location} if location else {}
    client = FakeClient(lambda *_a: response(status, b"", headers))
    result, target = checks.check_https_redirect(client, "http://app.test/")
    assert (result.status, result.message[:len(message)]) == (verdict, message)
    assert (target is not None) == (verdict != "fail")
    assert "Authorization" not in client.sent[0][2]


def test_https_redirect_needs_http_url() -> None:
    with pytest.raises(HttpInputError, match="not an http:// URL"):
        checks.check_https_redirect(FakeClient(lambda *_a: response()), "https://app.test/")


BIG_JS = b"function f(){}\n" * 200


@pytest.mark.parametrize(("headers", "body", "status", "problem"), [
    ({"Content-Type": "application/javascript", "Content-Encoding": "gzip",
      "Cache-Control": "public, max-age=31536000, immutable", "ETag": '"x"'}, None, "pass", ""),
    ({"Content-Type": "application/javascript", "Cache-Control": "max-age=60",
      "ETag": '"x"'}, BIG_JS, "fail", "is not compressed (application/javascript, 3000 bytes"),
    ({"Content-Type": "image/png", "Cache-Control": "max-age=60", "ETag": '"x"'}, BIG_JS,
     "pass", ""),  # binary: nothing to gain
    ({"Content-Type": "text/css", "Content-Encoding": "br"}, None, "fail",
     "has no caching headers"),
    ({"Content-Type": "text/css", "Content-Encoding": "br", "ETag": '"1"'}, None, "warn",
     "has a validator but no Cache-Control max-age"),
    ({"Content-Type": "text/css", "Content-Encoding": "br", "Cache-Control": "max-age=60"},
     None, "warn", "has max-age=60 but no ETag"),
    ({"Content-Type": "text/css", "Content-Encoding": "br", "Cache-Control": "no-store",
      "ETag": '"1"'}, None, "fail", "is not cacheable (Cache-Control: no-store)"),
])
def test_judge_asset(headers: dict[str, str], body: bytes | None, status: str,
                     problem: str) -> None:
    raw = body if body is not None else gzip.compress(BIG_JS)
    resp = Response("GET", "http://app.test/a.js", 200, list(headers.items()), raw,
                    body if body is not None else BIG_JS, 3.0)
    found, problems, data = checks.judge_asset(resp, 1024)
    assert found == status
    assert (problems[0] if problems else "").startswith(problem)
    assert data["bytes"] == len(BIG_JS)


def test_cdn_gets_no_credentials() -> None:
    client = FakeClient(lambda *_a: response(200, b"x", {"Cache-Control": "max-age=9",
                                                         "ETag": '"1"'}))
    checks.check_asset(client, "cdn", "https://cdn.test/app.js", 1024)
    checks.check_asset(client, "asset:/a.js", "/a.js", 1024)
    assert "Authorization" not in client.sent[0][2]
    assert client.sent[1][2]["Authorization"] == "Bearer canary-token"
    assert client.sent[0][2]["Accept-Encoding"] == "gzip, br"


CORS = {"path": "/api", "origin": "https://shop.test", "method": "PUT",
        "request_headers": ["X-Token"], "allowed": True, "credentials": False}


@pytest.mark.parametrize(("case", "headers", "status", "message"), [
    (CORS, {"Access-Control-Allow-Origin": "https://shop.test", "Vary": "Origin",
            "Access-Control-Allow-Methods": "GET, PUT", "Access-Control-Allow-Headers":
            "x-token"}, "pass", "allowed as configured"),
    (CORS, {"Access-Control-Allow-Origin": "https://shop.test",
            "Access-Control-Allow-Methods": "PUT", "Access-Control-Allow-Headers": "X-Token"},
     "warn", "allowed, but the echoed origin comes without Vary: Origin"),
    (CORS, {"Access-Control-Allow-Origin": "https://shop.test", "Vary": "Origin",
            "Access-Control-Allow-Methods": "GET"}, "fail",
     "PUT is not in Access-Control-Allow-Methods (GET); request headers X-Token not allowed"),
    (CORS, {}, "fail", "the origin is not allowed (Access-Control-Allow-Origin: absent)"),
    ({**CORS, "allowed": False}, {}, "pass", "not allowed, as configured"),
    ({**CORS, "allowed": False}, {"Access-Control-Allow-Origin": "*"}, "fail",
     "the origin is allowed (Access-Control-Allow-Origin: *), expected refused"),
    ({**CORS, "allowed": False}, {"Access-Control-Allow-Origin": "*",
                                  "Access-Control-Allow-Credentials": "true"}, "fail",
     "Access-Control-Allow-Origin * together with Access-Control-Allow-Credentials: true"),
    ({**CORS, "method": "GET", "request_headers": [], "credentials": True},
     {"Access-Control-Allow-Origin": "https://shop.test", "Vary": "Origin"}, "fail",
     "Access-Control-Allow-Credentials is not true"),
])
def test_cors(case: dict[str, Any], headers: dict[str, str], status: str,
              message: str) -> None:
    client = FakeClient(lambda *_a: response(204, b"", headers))
    result = checks.check_cors(client, case)
    assert result.status == status, result.message
    assert message in result.message
    method, _url, sent, _body = client.sent[0]
    assert method == "OPTIONS"
    assert sent["Origin"] == case["origin"]
    assert sent["Access-Control-Request-Method"] == case["method"]


@pytest.mark.parametrize(("value", "valid"), [("30", True), ("0", True), (None, False),
                                              ("soon", False), ("-1", False),
                                              ("Wed, 21 Oct 2026 07:28:00 GMT", True)])
def test_retry_after(value: str | None, valid: bool) -> None:
    assert checks.valid_retry_after(value) is valid


RATE = {"path": "/api", "method": "GET", "requests": 50, "concurrency": 5}


def test_rate_limit_stops_at_the_first_429() -> None:
    count = {"n": 0}

    def script(*_a: Any) -> Response:
        count["n"] += 1
        return response(429, {"error": "x"}, {"Retry-After": "42"}) if count["n"] > 12 \
            else response(200, {})

    result = checks.check_rate_limit(FakeClient(script), RATE)
    assert result.status == "pass"
    assert result.message.startswith("429 with Retry-After: 42 within 15 GET")
    assert result.data["sent"] == 15  # the batch that saw the 429 completes


@pytest.mark.parametrize(("answer", "message"), [
    (response(200, {}), "no 429 after 50 GET http://app.test/api"),
    (response(429, {}), "but without Retry-After"),
    (response(429, {}, {"Retry-After": "later"}), "with an invalid Retry-After 'later'"),
])
def test_rate_limit_failures(answer: Response, message: str) -> None:
    result = checks.check_rate_limit(FakeClient(lambda *_a: answer), RATE)
    assert result.status == "fail"
    assert message in result.message


PROBES = {"path": "/api/users", "method": "POST", "fields": ["email", "name"],
          "query_params": ["q"]}


@pytest.mark.parametrize(("status", "verdict", "message"), [
    (400, "pass", "POST http://app.test/api/users with malformed JSON: HTTP 400"),
    (500, "fail", "answered HTTP 500 (a server error; want 4xx)"),
    (201, "fail", "accepted malformed JSON (HTTP 201; want 4xx)"),
])
def test_malformed_json(status: int, verdict: str, message: str) -> None:
    client = FakeClient(lambda *_a: response(status, {}))
    result = checks.check_malformed_json(client, PROBES)
    assert result.status == verdict
    assert message in result.message
    assert client.sent[0][3] == checks.MALFORMED_JSON


def test_sql_injection_probe_sends_query_and_body() -> None:
    client = FakeClient(lambda *_a: response(422, {"error": "validation_failed"}))
    result = checks.check_injection(client, PROBES, "sql_injection")
    assert result.status == "pass"
    assert len(client.sent) == 2 * len(checks.SQLI_PAYLOADS)
    assert client.sent[0][1] == "http://app.test/api/users?q=%27+OR+%271%27%3D%271%27+--"
    assert client.sent[1][3] == b'{"email": "\' OR \'1\'=\'1\' --", "name": "\' OR \'1\'=\'1\' --"}'


def test_sql_injection_probe_sees_5xx_and_database_errors() -> None:
    def script(method: str, *_a: Any) -> Response:
        if method == "GET":
            return response(500, b"internal error")
        return response(400, b'psycopg2.errors.SyntaxError: syntax error at or near "OR"')

    result = checks.check_injection(FakeClient(script), PROBES, "sql_injection")
    assert result.status == "fail"
    assert result.message.startswith("SQL injection probes: GET http://app.test/api/users"
                                     " (query) answered HTTP 500 to \"' OR '1'='1' --\"")
    assert "POST http://app.test/api/users (JSON body) shows a database error" in result.message


@pytest.mark.parametrize(("headers", "verdict"), [
    ({"Content-Type": "text/html"}, "fail"),
    ({}, "fail"),
    ({"Content-Type": "application/json"}, "warn"),
    ({"Content-Type": "application/json", "X-Content-Type-Options": "nosniff"}, "pass"),
])
def test_xss_reflection(headers: dict[str, str], verdict: str) -> None:
    def script(_m: str, url: str, _h: Any, body: bytes | None) -> Response:
        sent = (body or b"").decode() + unquote_plus(url)
        echoed = [p for p in checks.XSS_PAYLOADS if p in sent or json.dumps(p)[1:-1] in sent]
        return response(400, f"bad input: {echoed[0]}".encode(), headers)

    result = checks.check_injection(FakeClient(script), PROBES, "xss")
    assert result.status == verdict, result.message
    if verdict == "fail":
        assert "reflects '<script>alert(\"prodready-xss\")</script>' unescaped" in result.message


def params(**overrides: Any) -> dict[str, Any]:
    base = {
        "health": HEALTH, "version": {**VERSION, "expected_version": None,
                                      "expected_digest": None},
        "metrics": {"path": "/metrics", "required": []},
        "security_headers": {"path": "/", "min_grade": "A", "hsts_min_seconds": 31536000},
        "https": {"http_url": None, "https_url": None, "cert_warn_days": 30},
        "caching": {"assets": [], "cdn_url": None, "compress_min_bytes": 1024},
        "cors": [], "rate_limit": {**RATE, "requests": 0},
        "probes": {**PROBES, "path": None}, "skip": [], "workers": 4,
    }
    base.update(overrides)
    return base


def test_run_orders_phases_and_reports_skips() -> None:
    def script(_m: str, url: str, *_a: Any) -> Response:
        if url.endswith("/health"):
            return response(200, {"status": "ok"})
        if url.endswith("/metrics"):
            return response(200, METRICS_TEXT, {"Content-Type": "text/plain"})
        if "/api" in url:
            return response(429, {}, {"Retry-After": "1"})
        return response(404, {}, {"X-Powered-By": "PHP/8.1"})

    client = FakeClient(script)
    results = checks.run_checks(client, params(
        rate_limit={**RATE, "requests": 3}, skip=["security_headers"]))
    assert [(r.id, r.status) for r in results] == [
        ("health", "pass"), ("version", "skip"), ("metrics", "pass"),
        ("security_headers", "skip"), ("https.redirect", "skip"),
        ("https.certificate", "skip"), ("cdn", "skip"), ("probe.malformed_json", "skip"),
        ("probe.sql_injection", "skip"), ("probe.xss", "skip"), ("rate_limit", "pass")]
    assert client.sent[0][1] == "http://app.test/health"
    assert client.sent[-1][1] == "http://app.test/api"
    assert results[1].message == "no version.expected_version or expected_digest given"


def test_run_refuses_bad_options_before_sending() -> None:
    client = FakeClient(lambda *_a: response())
    with pytest.raises(HttpInputError, match="health.json"):
        checks.run_checks(client, params(health={**HEALTH, "json": {"a[": 1}}))
    assert client.sent == []


def test_a_broken_check_does_not_hide_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_a: Any) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(checks, "check_metrics", boom)
    results = checks.run_checks(FakeClient(lambda *_a: response(200, {"status": "ok"})),
                                params(skip=["health"]))
    by_id = {r.id: r for r in results}
    assert by_id["metrics"].message == "the check could not run: KeyError: 'oops'"
    assert by_id["security_headers"].status == "fail"  # {} headers: grade F


def test_skip_prefixes() -> None:
    assert checks.skipped("probe.xss", ["probe"])
    assert checks.skipped("cors:https://a", ["cors"])
    assert not checks.skipped("probes", ["probe"])
