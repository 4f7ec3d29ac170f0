# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""http_check and smoke_test against the reference app - the lab's container and our own
containers of its image with fault switches - and against loopback servers of this test
(an HTTP->HTTPS redirector, a TLS server with the lab certificates, static assets, CORS)."""

from __future__ import annotations

import contextlib
import gzip
import http.server
import json
import re
import ssl
import threading
import time
import urllib.error
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_run import REPO, run_module
from imageutil import docker, free_port
from pgutil import connect

GDPR_SUITE = REPO / "roles" / "verify" / "files" / "smoke" / "refapp-gdpr.yml"
CANARY = "Bearer canary-7f3a9c2e51"
# Each of our containers counts its rate-limit windows in a Redis database of its own, so
# no burst eats into the window of the lab's app or of another container (all see the
# client as 127.0.0.1).
REDIS_DBS = {"slow": "9", "broken": "10", "limited": "11"}


def wait_healthy(base: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            # /metrics is exempt from every fault switch.
            with urllib.request.urlopen(f"{base}/metrics", timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"{base} did not start within {timeout} s")


@pytest.fixture(scope="module")
def faulty(lab_env: dict[str, str], refapp: dict[str, str], tmp_path_factory: Any
           ) -> Iterator[dict[str, str]]:
    """Our own containers of the reference app's image, each with fault switches; name ->
    base URL. Removed afterwards."""
    variants = {
        "slow": {"FAULT_LATENCY_MS": "300"},
        "broken": {"FAULT_ERROR_RATE": "100", "FAULT_NO_SECURITY_HEADERS": "1",
                   "FAULT_NEVER_HEALTHY": "1"},
        "limited": {"RATE_LIMIT_PER_MINUTE": "10"},
    }
    lab_file = Path(lab_env["PRODREADY_LAB_DIR"], "refapp.env").read_text()
    base_env = dict(line.split("=", 1) for line in lab_file.splitlines() if "=" in line)
    ca = lab_env["LAB_CA_CERT"]
    suffix = uuid.uuid4().hex[:6]
    started: dict[str, str] = {}
    names = []
    try:
        for variant, faults in variants.items():
            port = free_port()
            env = {**base_env, "PORT": str(port), "REDIS_DB": REDIS_DBS[variant],
                   "GUNICORN_WORKERS": "1", **faults}
            env_file = tmp_path_factory.mktemp("env") / f"{variant}.env"
            env_file.touch(mode=0o600)
            env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
            name = f"http-test-{variant}-{suffix}"
            names.append(name)
            docker(lab_env, "run", "-d", "--name", name, "--label", "prodready.lab=1",
                   "--network", "host", "--read-only", "--tmpfs", "/tmp",
                   "--env-file", str(env_file), "-v", f"{ca}:/etc/prodready/ca.crt:ro",
                   refapp["image"])
            started[variant] = f"http://127.0.0.1:{port}"
        for base in started.values():
            wait_healthy(base)
        yield started
    finally:
        for name in names:
            docker(lab_env, "rm", "-f", name, check=False)


# ---------------------------------------------------------------------------------------
# loopback servers of the test


BIG_JS = b"export function f(x) { return x * 2; }\n" * 100


class Handler(http.server.BaseHTTPRequestHandler):
    redirect_to = ""

    def log_message(self, *_args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        if self.redirect_to:
            self._send(301, Location=self.redirect_to + self.path)
        elif self.path == "/static/app.js":
            self._send(200, gzip.compress(BIG_JS), Content_Type="application/javascript",
                       Content_Encoding="gzip", Cache_Control="public, max-age=31536000",
                       ETag='"app-1"', Vary="Accept-Encoding")
        elif self.path == "/static/plain.js":
            self._send(200, BIG_JS, Content_Type="application/javascript")
        else:
            self._send(200, b'{"status":"ok"}', Content_Type="application/json")

    def do_OPTIONS(self) -> None:  # noqa: N802
        origin = self.headers.get("Origin", "")
        if origin == "https://shop.example":
            self._send(204, Access_Control_Allow_Origin=origin,
                       Access_Control_Allow_Methods="GET, POST, PUT",
                       Access_Control_Allow_Headers="Content-Type", Vary="Origin")
        elif origin == "https://any.example":
            self._send(204, Access_Control_Allow_Origin="*",
                       Access_Control_Allow_Credentials="true")
        else:
            self._send(204)


@contextlib.contextmanager
def serve(tls: tuple[str, str] | None = None, redirect_to: str = "") -> Iterator[str]:
    handler = type("H", (Handler,), {"redirect_to": redirect_to})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result["checks"]}


# ---------------------------------------------------------------------------------------
# the lab's reference app


def test_the_reference_app_passes_its_contract(lab_env: dict[str, str],
                                               refapp: dict[str, str]) -> None:
    digest = refapp["image"]
    version = (REPO / "tests" / "app" / "refapp" / "__init__.py").read_text() \
        .split('__version__ = "')[1].split('"')[0]
    rc, result, proc = run_module(lab_env, "http_check", {
        "base_url": refapp["base"],
        "headers": {"Authorization": CANARY},
        "health": {"json": {"status": "ok", "checks.database": "ok", "checks.redis": "ok"},
                   "budget": 30},
        "version": {"expected_version": version, "expected_digest": digest},
        "metrics": {"required": ["http_requests_total", "http_request_duration_seconds",
                                 "refapp_build_info"]},
        "security_headers": {"path": "/api/users/1"},
        "cors": [{"path": "/api/users", "origin": "https://evil.example", "method": "POST",
                  "allowed": False}],
        "probes": {"path": "/api/users", "fields": ["email", "name"]},
    }, "--check")
    assert rc == 0, result.get("msg")
    checks = by_id(result)
    assert {i: c["status"] for i, c in checks.items()} == {
        "health": "pass", "version": "pass", "metrics": "pass", "security_headers": "pass",
        "https.redirect": "skip", "https.certificate": "skip", "cdn": "skip",
        "cors:https://evil.example": "pass", "probe.malformed_json": "pass",
        "probe.sql_injection": "pass", "probe.xss": "pass", "rate_limit": "skip"}
    assert result["grade"] == "A"
    assert result["changed"] is False
    assert checks["version"]["data"]["actual"]["image_digest"] == digest.split("@")[1]
    assert checks["probe.malformed_json"]["data"]["status"] == 400
    assert CANARY not in proc.stdout + proc.stderr


def test_a_wrong_version_and_no_https_redirect_fail_with_their_reasons(
        lab_env: dict[str, str], refapp: dict[str, str]) -> None:
    rc, result, _proc = run_module(lab_env, "http_check", {
        "base_url": refapp["base"], "version": {"expected_version": "9.9.9"},
        "https": {"http_url": refapp["base"] + "/health"},
        "skip": ["metrics", "security_headers"]})
    assert rc != 0
    checks = by_id(result)
    running = checks["version"]["data"]["actual"]["version"]
    assert checks["version"]["message"].endswith(
        f"reports another release: version is {running}, deployed 9.9.9")
    assert checks["https.redirect"]["message"] == (
        f"GET {refapp['base']}/health does not redirect to HTTPS: it answered HTTP 200 over"
        " plain HTTP")
    assert result["failed_checks"] == ["version", "https.redirect"]
    assert result["msg"].startswith(f"HTTP checks of {refapp['base']} failed: version (")


def test_compression_and_caching_of_a_non_static_path(lab_env: dict[str, str],
                                                      refapp: dict[str, str]) -> None:
    rc, result, _proc = run_module(lab_env, "http_check", {
        "base_url": refapp["base"], "caching": {"assets": ["/metrics"],
                                                "compress_min_bytes": 500},
        "skip": ["health", "metrics", "security_headers"], "fail_on": "never"})
    assert rc == 0
    asset = by_id(result)["asset:/metrics"]
    assert asset["status"] == "fail"
    assert asset["data"]["content_encoding"] == "gzip"  # compressed, but not cacheable
    assert asset["message"] == (f"GET {refapp['base']}/metrics has no caching headers"
                                " (Cache-Control max-age, ETag or Last-Modified)")


# ---------------------------------------------------------------------------------------
# faults


def test_a_broken_release_fails_every_check_that_sees_it(lab_env: dict[str, str],
                                                         faulty: dict[str, str]) -> None:
    base = faulty["broken"]
    rc, result, _proc = run_module(lab_env, "http_check", {
        "base_url": base, "health": {"budget": 2, "initial_delay": 0.2},
        "version": {"expected_version": "1.0.0"},
        "probes": {"path": "/api/users", "fields": ["email"]}})
    assert rc != 0
    checks = by_id(result)
    assert checks["health"]["status"] == "fail"
    assert checks["health"]["message"].startswith(f"GET {base}/health was not healthy within"
                                                  " 2 s (")
    assert checks["health"]["message"].endswith("last answer: HTTP 503 (want 200)")
    assert checks["health"]["data"]["attempts"] >= 3
    assert checks["version"]["message"] == f"GET {base}/version answered HTTP 500"
    assert checks["metrics"]["status"] == "pass"  # /metrics is exempt from the faults
    assert checks["probe.malformed_json"]["message"] == (
        f"POST {base}/api/users with malformed JSON answered HTTP 500 (a server error;"
        " want 4xx)")
    assert "answered HTTP 500 to" in checks["probe.sql_injection"]["message"]
    headers = checks["security_headers"]
    assert result["grade"] == headers["data"]["grade"] == "F"
    assert headers["data"]["missing"] == ["Content-Security-Policy",
                                          "Strict-Transport-Security", "X-Frame-Options",
                                          "X-Content-Type-Options", "Referrer-Policy"]
    assert headers["message"].startswith(
        f"GET {base}/: grade F (score 10/100), under the required A: Content-Security-Policy"
        " missing; Strict-Transport-Security missing; X-Frame-Options missing")
    assert set(result["failed_checks"]) == {"health", "version", "security_headers",
                                            "probe.malformed_json", "probe.sql_injection",
                                            "probe.xss"}


def test_rate_limiting_answers_429_with_retry_after(lab_env: dict[str, str],
                                                    faulty: dict[str, str]) -> None:
    base = faulty["limited"]
    rc, result, _proc = run_module(lab_env, "http_check", {
        "base_url": base, "skip": ["metrics", "security_headers"],
        "rate_limit": {"path": "/version", "requests": 40, "concurrency": 5}})
    assert rc == 0, result.get("msg")
    rate = by_id(result)["rate_limit"]
    assert rate["status"] == "pass"
    assert rate["data"]["statuses"].get("200", 0) <= 10
    assert rate["data"]["statuses"]["429"] >= 1
    assert 0 < int(rate["data"]["retry_after"]) <= 60
    # the lab's app, 600 a minute, does not limit a burst of 40
    rc, result, _proc = run_module(lab_env, "http_check", {
        "base_url": faulty["slow"], "skip": ["health", "metrics", "security_headers"],
        "rate_limit": {"path": "/version", "requests": 12, "concurrency": 6}})
    assert rc != 0
    assert by_id(result)["rate_limit"]["message"].startswith(
        f"no 429 after 12 GET {faulty['slow']}/version in ")


def _exhaust(base: str) -> None:
    """Send requests to /version until one gets 429: over the limit for this window."""
    for _request in range(30):
        try:
            with urllib.request.urlopen(f"{base}/version", timeout=5):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code == 429:
                return
            raise
    pytest.fail(f"{base} never answered 429")


def test_version_check_waits_out_the_rate_limiter(lab_env: dict[str, str],
                                                  refapp: dict[str, str],
                                                  faulty: dict[str, str]) -> None:
    """A load stage or a burst leaves this host over the app's limit: the version check
    waits for the window (Retry-After) instead of failing a release that serves."""
    base = faulty["limited"]
    with urllib.request.urlopen(f"{refapp['base']}/version", timeout=5) as resp:
        version = json.load(resp)["version"]  # the same image, not rate-limited here
    args = {"base_url": base, "skip": ["health", "metrics", "security_headers"],
            "version": {"expected_version": version}}
    for _attempt in range(2):  # the window may end between the burst and the check
        _exhaust(base)
        rc, judged, _proc = run_module(lab_env, "http_check", {**args, "rate_limited_wait": 0})
        if rc != 0:
            break
    assert rc != 0
    assert re.fullmatch(rf"GET {base}/version answered HTTP 429 \(rate-limited, Retry-After"
                        r" \d+\) beyond rate_limited_wait of 0 s",
                        by_id(judged)["version"]["message"])
    started = time.monotonic()
    rc, result, _proc = run_module(lab_env, "http_check", {**args, "rate_limited_wait": 65})
    assert rc == 0, result.get("msg")
    assert by_id(result)["version"]["status"] == "pass"
    print(f"\nwaited {time.monotonic() - started:.1f} s for the rate limiter's window")


def test_slow_responses_break_the_latency_budget_of_the_named_step(
        lab_env: dict[str, str], faulty: dict[str, str], tmp_path: Path) -> None:
    junit = tmp_path / "slow.xml"
    rc, result, _proc = run_module(lab_env, "smoke_test", {
        "base_url": faulty["slow"], "name": "latency", "junit_path": str(junit),
        "steps": [{"name": "version within 200 ms", "path": "/version", "latency_ms": 200},
                  {"name": "metrics within 200 ms", "path": "/metrics", "latency_ms": 200}]})
    assert rc != 0
    steps = {s["name"]: s for s in result["steps"]}
    assert steps["version within 200 ms"]["outcome"] == "failed"
    assert steps["version within 200 ms"]["failures"][0].startswith(
        "latency: expected at most 200 ms, got 3")
    assert steps["metrics within 200 ms"]["outcome"] == "passed"  # /metrics is not delayed
    assert result["failed_steps"] == ["version within 200 ms"]
    assert result["msg"].startswith(f"Smoke suite latency against {faulty['slow']} failed:"
                                    " version within 200 ms (latency: expected at most 200 ms")
    failure = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert failure is not None
    assert failure.get("message", "").startswith("latency: expected at most 200 ms, got ")


# ---------------------------------------------------------------------------------------
# HTTPS, assets and CORS against the test's own loopback servers


def test_https_redirect_certificate_assets_and_cors(lab_env: dict[str, str]) -> None:
    tls = (lab_env["LAB_TLS_CERT"], lab_env["LAB_TLS_KEY"])
    expiring = (lab_env["LAB_TLS_EXPIRING_CERT"], lab_env["LAB_TLS_EXPIRING_KEY"])
    with serve(tls) as https_base, serve(redirect_to=https_base) as http_base, \
            serve(expiring) as expiring_base:
        rc, result, _proc = run_module(lab_env, "http_check", {
            "base_url": https_base, "ca_path": lab_env["LAB_CA_CERT"],
            "headers": {"Authorization": CANARY},
            "https": {"http_url": http_base + "/"},
            "caching": {"assets": ["/static/app.js", "/static/plain.js"],
                        "cdn_url": https_base + "/static/app.js"},
            "cors": [{"path": "/api", "origin": "https://shop.example", "method": "PUT",
                      "request_headers": ["Content-Type"], "allowed": True},
                     {"path": "/api", "origin": "https://evil.example", "allowed": False},
                     {"path": "/api", "origin": "https://any.example", "allowed": True}],
            "skip": ["metrics", "security_headers"], "fail_on": "never"})
        assert rc == 0
        checks = by_id(result)
        assert checks["https.redirect"]["status"] == "pass"
        assert checks["https.redirect"]["message"] == (
            f"GET {http_base}/ redirects to HTTPS (HTTP 301 to {https_base}/)")
        assert checks["https.certificate"]["status"] == "pass"
        assert checks["https.certificate"]["data"]["days_left"] > 300
        assert checks["asset:/static/app.js"]["status"] == "pass"
        assert checks["asset:/static/plain.js"]["status"] == "fail"
        assert checks["asset:/static/plain.js"]["message"].startswith(
            f"GET {https_base}/static/plain.js is not compressed (application/javascript,"
            f" {len(BIG_JS)} bytes, no gzip/br Content-Encoding); has no caching headers")
        assert checks["cdn"]["status"] == "pass"
        assert checks["cors:https://shop.example"]["status"] == "pass"
        assert checks["cors:https://evil.example"]["status"] == "pass"
        assert checks["cors:https://any.example"]["message"].endswith(
            "Access-Control-Allow-Origin * together with Access-Control-Allow-Credentials: true")

        rc, result, _proc = run_module(lab_env, "http_check", {
            "base_url": expiring_base, "ca_path": lab_env["LAB_CA_CERT"],
            "skip": ["metrics", "security_headers"]})
        assert rc == 0, result.get("msg")
        cert = by_id(result)["https.certificate"]
        assert cert["status"] == "warn"
        assert "expires in" in cert["message"] and "under the 30-day threshold" in \
            cert["message"]

        rc, result, _proc = run_module(lab_env, "http_check", {
            "base_url": https_base, "skip": ["metrics", "security_headers", "https"],
            "health": {"budget": 0}})
        assert rc != 0  # without the lab CA the certificate is not trusted
        assert "CERTIFICATE_VERIFY_FAILED" in by_id(result)["health"]["message"] or \
            "certificate verify failed" in by_id(result)["health"]["message"]


# ---------------------------------------------------------------------------------------
# the GDPR smoke suite


def test_gdpr_suite_exports_erases_and_leaves_an_audit_trail(
        lab_env: dict[str, str], refapp: dict[str, str], tmp_path: Path) -> None:
    junit = tmp_path / "evidence" / "gdpr.xml"
    args = {"base_url": refapp["base"], "suite": str(GDPR_SUITE), "junit_path": str(junit),
            "latency_ms": 2000}
    rc, result, _proc = run_module(lab_env, "smoke_test", args, "--check")
    assert rc == 0, result.get("msg")
    assert [s["outcome"] for s in result["steps"]] == ["skipped"] * 8
    assert result["steps"][0]["message"] == "check mode: POST not sent"
    assert not junit.exists()

    rc, result, _proc = run_module(lab_env, "smoke_test", args)
    assert rc == 0, result.get("msg")
    assert result["summary"] == {"passed": 8, "failed": 0, "error": 0, "skipped": 0}
    assert result["changed"] is True and result["junit_path"] == str(junit)
    user_id = result["saved"]["id"]
    assert result["steps"][4]["path"] == f"/api/users/{user_id}"

    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert (suite.get("name"), suite.get("tests"), suite.get("failures"),
            suite.get("errors")) == ("refapp GDPR", "8", "0", "0")
    assert [c.get("name") for c in suite.findall("testcase")][-3:] == [
        "the user is gone", "nothing left to export", "a second erasure finds nothing"]

    conn = connect(lab_env["DATABASE_URL"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM users WHERE id = %s", (user_id,))
            assert cur.fetchone()[0] == 0
            cur.execute("SELECT action FROM audit_log WHERE subject_user_id = %s ORDER BY id",
                        (user_id,))
            assert [r[0] for r in cur.fetchall()] == ["create", "export", "export", "delete"]
    finally:
        conn.close()


def test_a_failing_smoke_step_names_expected_and_actual(lab_env: dict[str, str],
                                                        refapp: dict[str, str],
                                                        tmp_path: Path) -> None:
    junit = tmp_path / "fail.xml"
    # A file: Ansible would template {{ saved.id }} in the module's arguments.
    suite = tmp_path / "wrong.yml"
    suite.write_text(json.dumps({"name": "wrong", "steps": [
        {"name": "missing user", "path": "/api/users/999999999",
         "expect": {"status": 200, "json": {"error": "nope"}}, "save": {"id": "id"}},
        {"name": "uses it", "path": "/api/users/{{ saved.id }}"}]}))
    rc, result, _proc = run_module(lab_env, "smoke_test", {
        "base_url": refapp["base"], "junit_path": str(junit), "suite": str(suite)})
    assert rc != 0
    first, second = result["steps"]
    assert first["failures"] == ["status: expected 200, got 404",
                                 'json error: expected "nope", got "not_found"',
                                 "save id: id found nothing in the body"]
    assert second["outcome"] == "skipped"
    case = ET.parse(junit).getroot().find("testsuite/testcase/failure")
    assert case is not None
    assert case.text == ("GET /api/users/999999999\nstatus: expected 200, got 404\n"
                         'json error: expected "nope", got "not_found"\n'
                         "save id: id found nothing in the body")


def test_bad_options_are_refused_before_anything_is_sent(lab_env: dict[str, str],
                                                         refapp: dict[str, str],
                                                         tmp_path: Path) -> None:
    rc, result, _proc = run_module(lab_env, "http_check", {
        "base_url": refapp["base"], "health": {"json": {"checks.[": "ok"}}})
    assert rc != 0
    assert result["msg"].startswith(f"Cannot check {refapp['base']}: option health.json:"
                                    " 'checks.[' is not a JMESPath expression")
    suite = tmp_path / "jinja.yml"
    suite.write_text("- path: /x/{{ lookup('env', 'HOME') }}\n")
    rc, result, _proc = run_module(lab_env, "smoke_test", {
        "base_url": refapp["base"], "suite": str(suite)})
    assert rc != 0
    assert result["msg"] == (f"Cannot run the smoke suite against {refapp['base']}:"
                             " \"{{ lookup('env', 'HOME') }}\" is not a placeholder: write"
                             " {{ saved.<name> }}, {{ vars.<name> }} or {{ run.id }} (no"
                             " expressions)")


def test_concurrent_checks_take_about_as_long_as_the_slowest(
        lab_env: dict[str, str], faulty: dict[str, str]) -> None:
    # Eight requests delayed 300 ms each (version, security headers, six CORS preflights)
    # take at least 2.4 s one after another.
    rc, result, _proc = run_module(lab_env, "http_check", {
        "base_url": faulty["slow"], "skip": ["health", "metrics"],
        "version": {"expected_version": "0"}, "fail_on": "never",
        "cors": [{"path": "/api/users", "origin": f"https://o{i}.example",
                  "allowed": False} for i in range(6)]})
    assert rc == 0
    assert len([c for c in result["checks"] if c["id"].startswith("cors:")]) == 6
    assert result["elapsed"] < 8 * 0.3
