# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Open-model scheduling, weights, and the engine against a small loopback server: counting,
error classification and latency measured from the time a request was due."""

from __future__ import annotations

import datetime
import ipaddress
import resource
import socket
import socketserver
import ssl
import threading
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.prodready.deploy.plugins.module_utils._load.engine import (
    SECOND,
    Plan,
    Runner,
    due_times,
    raise_fd_limit,
    weighted_cycle,
)
from ansible_collections.prodready.deploy.plugins.module_utils._load.http import (
    Endpoint,
    LoadTestError,
    parse_target,
)
from ansible_collections.prodready.deploy.plugins.module_utils._load.plan import tls_context
from ansible_collections.prodready.deploy.plugins.module_utils._load.report import summarize


@pytest.mark.parametrize(("rate", "count", "want_ms"), [
    (1, 3, [0, 1000, 2000]),
    (3, 4, [0, 333.333333, 666.666667, 1000]),
    (1000, 3, [0, 1, 2]),
    (0.5, 2, [0, 2000]),
])
def test_due_times_are_start_plus_k_over_rate(rate, count, want_ms):
    start = 5 * SECOND
    got = due_times(start, rate, count)
    assert [(t - start) / 1e6 for t in got] == pytest.approx(want_ms, abs=1e-6)


def test_due_times_do_not_drift():
    times = due_times(0, 7, 7001)
    assert times[-1] == 1000 * SECOND
    gaps = {b - a for a, b in zip(times, times[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 1


@pytest.mark.parametrize("weights", [[1], [3, 1], [5, 1, 1], [1, 2, 3, 4], [100, 1]])
def test_weighted_cycle_gives_exact_shares_spread_out(weights):
    cycle = weighted_cycle(weights)
    assert len(cycle) == sum(weights)
    assert [cycle.count(i) for i in range(len(weights))] == weights
    heaviest = weights.index(max(weights))
    if len(weights) > 1:
        # Smooth: the lighter endpoints are not bunched at one end of the cycle.
        others = [i for i, ep in enumerate(cycle) if ep != heaviest]
        assert others[-1] - others[0] >= len(others) - 1


def test_weighted_cycle_limit():
    with pytest.raises(LoadTestError, match="add up to 200000"):
        weighted_cycle([100_000, 100_000])


def plan(url: str, **kw) -> Plan:
    target, path = parse_target(url)
    endpoints = kw.pop("endpoints", None) or [Endpoint("ok", "GET", path)]
    return Plan(target=target, endpoints=endpoints, **kw)


@pytest.mark.parametrize(("kw", "message"), [
    ({"model": "both", "requests": 1}, "must be closed or open"),
    ({"requests": 1, "duration": 1}, "either a duration or a number"),
    ({}, "either a duration or a number"),
    ({"users": 0, "requests": 1}, "at least one user"),
    ({"model": "open", "requests": 1}, "rate above 0"),
    ({"requests": 1, "timeout": 0}, "must be positive"),
    ({"requests": 1, "endpoints": [Endpoint("w", "GET", "/", weight=0)]}, "weight 0"),
])
def test_plan_refuses(kw, message):
    with pytest.raises(LoadTestError, match=message):
        plan("http://127.0.0.1:1/", **kw).validate()


class Handler(socketserver.BaseRequestHandler):
    """Keep-alive HTTP/1.1 by path: /ok, /err (500), /chunked, /close, /stall (the first
    request on the server sleeps 600 ms), /slow (50 ms each), /hang (never answers)."""

    def handle(self) -> None:
        buf = b""
        sock = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            while b"\r\n\r\n" not in buf:
                data = sock.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            path = head.split(b" ")[1].decode()
            server = self.server
            with server.lock:
                server.seen += 1
                first = server.seen == 1
            if path == "/hang":
                time.sleep(5)
                return
            if path == "/stall" and first:
                time.sleep(0.6)
            if path == "/slow":
                time.sleep(0.05)
            if path == "/err":
                sock.sendall(b"HTTP/1.1 500 Internal\r\nContent-Length: 3\r\n\r\nerr")
            elif path == "/chunked":
                sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                             b"2\r\nok\r\n")
                sock.sendall(b"0\r\n\r\n")
            elif path == "/big":
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 200000\r\n\r\n"
                             + b"x" * 200_000)
            elif path == "/close":
                sock.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2"
                             b"\r\n\r\nok")
                return
            else:
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock = threading.Lock()
        self.seen = 0
        self.tls = tls

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, addr


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and its key, made for this test."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "load-test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def serve(tls: ssl.SSLContext | None = None):
    srv = Server(tls)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    scheme = "https" if tls else "http"
    yield f"{scheme}://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def server():
    yield from serve()


@pytest.fixture
def tls_server(tmp_path):
    cert, key = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    for url in serve(context):
        yield url, cert


def test_closed_model_sends_exactly_the_requests_asked(server):
    endpoints = [Endpoint("ok", "GET", "/ok", weight=3), Endpoint("err", "GET", "/err")]
    stats = Runner(plan(server + "/", endpoints=endpoints, users=4, requests=400)).run()
    summary = summarize(stats, endpoints)
    assert summary["requests"] == summary["responses"] == 400
    assert summary["errors"] == 100
    assert summary["error_rate_pct"] == 25.0
    assert summary["errors_by_status"] == {"500": 100}
    assert summary["status_codes"] == {"200": 300, "500": 100}
    assert summary["endpoints"]["ok"]["requests"] == 300
    assert summary["endpoints"]["err"]["error_rate_pct"] == 100.0
    assert summary["max_open_connections"] == 4


@pytest.mark.parametrize("path", ["/chunked", "/close", "/big"])
def test_chunked_and_connection_close_answers(server, path):
    stats = Runner(plan(server + path, users=3, requests=60)).run()
    assert (stats.requests, stats.errors, dict(stats.statuses)) == (60, 0, {200: 60})


def test_success_statuses_decide_what_is_an_error(server):
    stats = Runner(plan(server + "/err", users=2, requests=10,
                        success_statuses=frozenset({500}))).run()
    assert (stats.requests, stats.errors) == (10, 0)


def test_refused_connections_are_classified():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    stats = Runner(plan(f"http://127.0.0.1:{port}/", users=2, requests=20)).run()
    assert stats.requests == stats.errors == 20
    assert dict(stats.exceptions) == {"connection_refused": 20}
    assert stats.merged().total == 0


def test_timeouts_are_errors_not_latency(server):
    started = time.monotonic()
    stats = Runner(plan(server + "/hang", users=2, requests=2, timeout=0.3)).run()
    assert time.monotonic() - started < 2
    assert dict(stats.exceptions) == {"timeout": 2}
    assert stats.merged().total == 0


def test_open_model_measures_from_the_due_time(server):
    """A 600 ms stall of the first request, 50 requests/s, one connection: every request due
    during the stall waits for it, and that wait is latency (no coordinated omission). A
    generator that started the clock when it sent would see the stall only once."""
    stats = Runner(plan(server + "/stall", model="open", rate=50, max_connections=1,
                        duration=1.0)).run()
    hist = stats.merged()
    assert stats.errors == 0
    assert 45 <= stats.requests <= 55
    # About 30 requests were due during the stall; the one due at t waited ~600 ms - t.
    assert hist.percentile(50) > 100_000
    assert hist.percentile(99) > 550_000
    assert hist.max < 900_000


def test_open_model_keeps_the_rate_with_enough_connections(server):
    started = time.monotonic()
    stats = Runner(plan(server + "/slow", model="open", rate=100, max_connections=50,
                        duration=1.0)).run()
    elapsed = time.monotonic() - started
    assert stats.errors == 0
    assert stats.requests == 100
    assert 1.0 <= elapsed < 1.6
    # 50 ms service time at 100/s needs about 5 connections, never all 50.
    assert 3 <= stats.max_open <= 20
    assert 50_000 <= stats.merged().percentile(50) < 150_000


def test_ramp_up_starts_users_evenly(server):
    snapshots = []
    Runner(plan(server + "/slow", users=10, ramp_up=1.0, duration=1.2,
                progress_interval=0.2), progress=snapshots.append).run()
    for snap in snapshots:
        if snap["elapsed_s"] < 1.0:
            # User i starts at i * 0.1 s.
            expected = min(10, int(snap["elapsed_s"] * 10) + 1)
            assert abs(snap["open_connections"] - expected) <= 1, snapshots
    assert max(s["open_connections"] for s in snapshots) == 10


def test_stale_keep_alive_is_retried_once(server):
    """A server that closes after each answer without saying so (as when a keep-alive
    timeout strikes just as the next request goes out): the request is sent again on a new
    connection, not counted as an error."""
    runner = Runner(plan(server + "/close", users=1, requests=5))
    original = runner.complete
    runner.complete = lambda conn, status, keep_alive: original(conn, status, True)
    stats = runner.run()
    assert (stats.requests, stats.errors, dict(stats.statuses)) == (5, 0, {200: 5})


@pytest.mark.parametrize("path", ["/ok", "/big", "/chunked"])
def test_tls_with_the_servers_ca(tls_server, path):
    url, cert = tls_server
    stats = Runner(plan(url + path, users=3, requests=30,
                        tls=tls_context(True, str(cert)))).run()
    assert (stats.requests, stats.errors, dict(stats.statuses)) == (30, 0, {200: 30})
    assert stats.max_open == 3


def test_tls_certificate_not_trusted_or_not_checked(tls_server):
    url, _cert = tls_server
    stats = Runner(plan(url + "/ok", users=2, requests=4, tls=tls_context(True, None))).run()
    assert dict(stats.exceptions) == {"tls_certificate": 4}
    stats = Runner(plan(url + "/ok", users=2, requests=4, tls=tls_context(False, None))).run()
    assert (stats.requests, stats.errors) == (4, 0)


def test_the_open_files_limit_is_raised_for_the_connections():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
        assert raise_fd_limit(1000) == (256, min(1064, hard))
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == min(1064, hard)
        assert raise_fd_limit(10) == (min(1064, hard),) * 2
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
