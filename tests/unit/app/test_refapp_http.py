# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP behaviour of the reference app: headers, errors, gzip, health, version, metrics."""

from __future__ import annotations

import gzip
import json
import re
import time

import pytest
from prometheus_client.parser import text_string_to_metric_families

EXPECTED_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Referrer-Policy": "no-referrer",
}


# --- security headers --------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/version", 200),
        ("GET", "/health", 200),
        ("GET", "/metrics", 200),
        ("GET", "/no/such/page", 404),
        ("POST", "/version", 405),
        ("GET", "/api/users/1", 404),
    ],
)
@pytest.mark.parametrize("fault_off", [True, False], ids=["headers-on", "fault-no-headers"])
def test_security_headers_follow_fault_switch(make_client, method, path, status, fault_off):
    env = {} if fault_off else {"FAULT_NO_SECURITY_HEADERS": "1"}
    response = make_client(env).open(path, method=method)
    assert response.status_code == status
    for name, value in EXPECTED_SECURITY_HEADERS.items():
        if fault_off:
            assert response.headers.get(name) == value
        else:
            assert name not in response.headers
    assert "Server" not in response.headers
    assert "X-Powered-By" not in response.headers


def test_api_responses_are_not_cacheable(client):
    assert client.get("/api/users/1").headers["Cache-Control"] == "no-store"


# --- errors as JSON ----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "error"),
    [
        ("GET", "/nope", {}, 404, "not_found"),
        ("DELETE", "/version", {}, 405, "method_not_allowed"),
        ("GET", "/api/users/abc", {}, 404, "not_found"),
        ("GET", f"/api/users/{2**70}", {}, 404, "not_found"),
        ("DELETE", f"/api/users/{2**70}", {}, 404, "not_found"),
        (
            "POST",
            "/api/users",
            {"data": "{not json", "content_type": "application/json"},
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/users",
            {"data": "", "content_type": "application/json"},
            400,
            "bad_request",
        ),
        (
            "POST",
            "/api/users",
            {"data": "email=a@b.c", "content_type": "text/plain"},
            415,
            "unsupported_media_type",
        ),
        (
            "POST",
            "/api/users",
            {"data": "x" * (65 * 1024), "content_type": "application/json"},
            413,
            "request_entity_too_large",
        ),
    ],
)
def test_errors_are_json(client, method, path, kwargs, status, error):
    response = client.open(path, method=method, **kwargs)
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert body["error"] == error
    assert body["status"] == status


def test_malformed_json_is_explained(client):
    response = client.post("/api/users", data='{"email": ', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["message"].startswith("malformed JSON body:")


def test_405_keeps_allow_header(client):
    response = client.post("/health")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]


def test_unhandled_exception_is_json_500_without_details(make_app):
    app = make_app()

    @app.get("/boom")
    def boom():
        raise RuntimeError("password=hunter2 leaked in a message")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal_server_error",
        "message": "internal server error",
        "status": 500,
    }
    assert b"hunter2" not in response.data


# --- gzip --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "accept_encoding", "compressed"),
    [
        ("/metrics", "gzip", True),
        ("/metrics", "gzip, deflate, br", True),
        ("/metrics", "br;q=1.0, gzip;q=0.5", True),
        ("/metrics", "*", True),
        ("/metrics", "gzip;q=0", False),
        ("/metrics", "identity", False),
        ("/metrics", None, False),
        ("/version", "gzip", False),  # below the size threshold
    ],
)
def test_gzip(client, path, accept_encoding, compressed):
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
    response = client.get(path, headers=headers)
    assert response.status_code == 200
    assert "Accept-Encoding" in response.headers.get("Vary", "")
    if compressed:
        assert response.headers["Content-Encoding"] == "gzip"
        assert int(response.headers["Content-Length"]) == len(response.data)
        plain = gzip.decompress(response.data)
        assert len(plain) > len(response.data)
    else:
        assert "Content-Encoding" not in response.headers
        plain = response.data
    if path == "/metrics":
        assert b"http_requests_total" in plain
    else:
        json.loads(plain)


# --- /version ----------------------------------------------------------------


def test_version_reports_build(make_client, refapp_pkg):
    env = {"APP_VERSION": "1.4.2", "GIT_SHA": "0123abcd", "IMAGE_DIGEST": "sha256:" + "ab" * 32}
    body = make_client(env).get("/version").get_json()
    assert body == {
        "version": "1.4.2",
        "git_sha": "0123abcd",
        "image_digest": "sha256:" + "ab" * 32,
        "alembic_head": refapp_pkg.ALEMBIC_HEAD,
    }


def test_version_defaults(client, refapp_pkg):
    body = client.get("/version").get_json()
    assert body == {
        "version": refapp_pkg.__version__,
        "git_sha": "unknown",
        "image_digest": "unknown",
        "alembic_head": refapp_pkg.ALEMBIC_HEAD,
    }


def test_version_line_is_readable_by_the_lab_tooling(app_dir, refapp_pkg):
    # Same regex as tests/lab/labctl/app.py:app_version().
    text = (app_dir / "refapp" / "__init__.py").read_text()
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', text, re.M)
    assert match and match.group(1) == refapp_pkg.__version__


# --- /health -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_down", "redis_down", "env", "status", "checks"),
    [
        (False, False, {}, 200, {"database": "ok", "redis": "ok"}),
        (True, False, {}, 503, {"database": "fail", "redis": "ok"}),
        (False, True, {}, 503, {"database": "ok", "redis": "fail"}),
        (True, True, {}, 503, {"database": "fail", "redis": "fail"}),
        (
            False,
            False,
            {"FAULT_NEVER_HEALTHY": "1"},
            503,
            {"database": "ok", "redis": "ok", "fault": "FAULT_NEVER_HEALTHY"},
        ),
    ],
)
def test_health(make_client, broken_engine, fake_redis, db_down, redis_down, env, status, checks):
    fake_redis.down = redis_down
    overrides = {"engine": broken_engine} if db_down else {}
    env = {
        "REDIS_PASSWORD": "redis-secret-value",
        "DATABASE_URL": "postgresql://app:db-secret-value@db:5432/app",
        **env,
    }
    response = make_client(env, **overrides).get("/health")
    assert response.status_code == status
    assert response.get_json() == {
        "status": "ok" if status == 200 else "fail",
        "checks": checks,
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert b"secret-value" not in response.data


# --- /metrics ----------------------------------------------------------------


def _samples(text: str) -> dict[str, list]:
    families = {f.name: f for f in text_string_to_metric_families(text)}
    return {name: fam.samples for name, fam in families.items()}


def _request_count(samples, method, endpoint, status) -> float:
    for sample in samples.get("http_requests", []):
        labels = sample.labels
        if sample.name == "http_requests_total" and labels == {
            "method": method,
            "endpoint": endpoint,
            "status": status,
        }:
            return sample.value
    return 0.0


def test_metrics_parse_and_count_requests(client):
    before = _samples(client.get("/metrics").get_data(as_text=True))
    client.get("/version")
    client.get("/api/users/424242")
    client.get("/api/users/434343")
    client.get("/definitely/not/here")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    after = _samples(response.get_data(as_text=True))

    def delta(method, endpoint, status):
        return _request_count(after, method, endpoint, status) - _request_count(
            before, method, endpoint, status
        )

    assert delta("GET", "/version", "200") == 1
    # Route templates, not raw paths, so ids do not create new series.
    assert delta("GET", "/api/users/<int:user_id>", "404") == 2
    assert delta("GET", "<unmatched>", "404") == 1

    assert "http_request_duration_seconds" in after
    buckets = [
        s
        for s in after["http_request_duration_seconds"]
        if s.name == "http_request_duration_seconds_bucket"
        and s.labels.get("endpoint") == "/version"
    ]
    assert buckets and {s.labels["le"] for s in buckets} >= {"0.005", "+Inf"}


def test_metrics_bucket_unknown_methods(client):
    before = _samples(client.get("/metrics").get_data(as_text=True))
    # Routing failed (405), so there is no route template either.
    client.open("/version", method="BREW")
    after = _samples(client.get("/metrics").get_data(as_text=True))
    assert (
        _request_count(after, "OTHER", "<unmatched>", "405")
        - _request_count(before, "OTHER", "<unmatched>", "405")
        == 1
    )


def test_build_info_metric(make_client):
    text = make_client({"APP_VERSION": "9.9.9", "GIT_SHA": "feedbeef"}).get("/metrics").text
    samples = _samples(text)["refapp_build_info"]
    assert any(
        s.labels == {"version": "9.9.9", "git_sha": "feedbeef"} and s.value == 1 for s in samples
    )


# --- rate limiting -----------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(make_client):
    client = make_client({"RATE_LIMIT_PER_MINUTE": "3"})
    statuses = [client.get("/version").status_code for _attempt in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    response = client.get("/version")
    assert response.status_code == 429
    retry_after = int(response.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    body = response.get_json()
    assert body["error"] == "too_many_requests"
    assert body["retry_after"] == retry_after
    # Security headers apply to rejections too.
    assert response.headers["X-Frame-Options"] == "DENY"


def test_rate_limit_is_per_client_ip(make_client):
    client = make_client({"RATE_LIMIT_PER_MINUTE": "1"})
    assert client.get("/version", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 200
    assert client.get("/version", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 429
    assert client.get("/version", environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code == 200


def test_forwarded_for_is_ignored_unless_proxies_are_trusted(make_client):
    spoof = {"X-Forwarded-For": "203.0.113.9"}
    client = make_client({"RATE_LIMIT_PER_MINUTE": "1"})
    assert client.get("/version").status_code == 200
    assert client.get("/version", headers=spoof).status_code == 429

    client = make_client({"RATE_LIMIT_PER_MINUTE": "1", "TRUSTED_PROXY_COUNT": "1"})
    assert client.get("/version", headers={"X-Forwarded-For": "203.0.113.10"}).status_code == 200
    assert client.get("/version", headers={"X-Forwarded-For": "203.0.113.11"}).status_code == 200


@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_probes_are_not_rate_limited(make_client, path):
    client = make_client({"RATE_LIMIT_PER_MINUTE": "1"})
    assert [client.get(path).status_code for _attempt in range(4)] == [200] * 4


def test_rate_limit_disabled_with_zero(make_client, fake_redis):
    client = make_client({"RATE_LIMIT_PER_MINUTE": "0"})
    assert all(client.get("/version").status_code == 200 for _attempt in range(20))
    assert fake_redis.data == {}


def test_rate_limit_fails_open_when_redis_is_down(make_client, fake_redis):
    fake_redis.down = True
    client = make_client({"RATE_LIMIT_PER_MINUTE": "1"})
    assert [client.get("/version").status_code for _attempt in range(3)] == [200] * 3


# --- fault switches ----------------------------------------------------------


@pytest.mark.parametrize(
    ("rate", "low", "high"),
    [("0", 0, 0), ("100", 400, 400), ("25", 60, 140), ("2.5", 1, 25)],
)
def test_fault_error_rate(make_client, rate, low, high):
    client = make_client({"FAULT_ERROR_RATE": rate, "RATE_LIMIT_PER_MINUTE": "0"})
    errors = 0
    for _attempt in range(400):
        response = client.get("/version")
        if response.status_code == 500:
            errors += 1
            assert response.headers["X-Fault-Injected"] == "error-rate"
            assert response.get_json()["error"] == "internal_server_error"
        else:
            assert response.status_code == 200
    assert low <= errors <= high


@pytest.mark.parametrize("path", ["/health", "/metrics"])
def test_fault_error_rate_spares_probes(make_client, path):
    client = make_client({"FAULT_ERROR_RATE": "100"})
    assert client.get(path).status_code == 200


def test_fault_latency(make_client):
    client = make_client({"FAULT_LATENCY_MS": "120"})
    started = time.perf_counter()
    client.get("/version")
    assert time.perf_counter() - started >= 0.12
    started = time.perf_counter()
    client.get("/metrics")
    assert time.perf_counter() - started < 0.12


def test_fault_exit_at_start(make_app):
    with pytest.raises(RuntimeError, match="FAULT_EXIT_AT_START"):
        make_app({"FAULT_EXIT_AT_START": "1"})
