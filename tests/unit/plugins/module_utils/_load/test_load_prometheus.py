# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Prometheus gate: answers of the HTTP API, and no data never passing."""

from __future__ import annotations

import http.server
import json
import threading
from urllib.parse import parse_qs, urlsplit

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._load.prometheus import (
    PrometheusError,
    gate,
    http_fetch,
    parse_value,
    render,
)


def answer(kind="vector", result=None, status="success", **extra):
    return json.dumps({"status": status, "data": {"resultType": kind, "result": result},
                       **extra}).encode()


@pytest.mark.parametrize(("body", "want"), [
    (answer(result=[{"metric": {}, "value": [1700000000.1, "0.0004"]}]), 0.0004),
    (answer(kind="scalar", result=[1700000000.1, "12"]), 12.0),
    (answer(result=[]), None),
    (answer(result=[{"metric": {}, "value": [1, "NaN"]}]), None),
    (answer(result=[{"metric": {}, "value": [1, "+Inf"]}]), float("inf")),
])
def test_parse_value(body, want):
    assert parse_value(body, "q") == want


@pytest.mark.parametrize(("body", "message"), [
    (b"<html>", "not JSON"),
    (json.dumps({"status": "error", "errorType": "bad_data", "error": "parse error"}).encode(),
     "bad_data: parse error"),
    (answer(kind="matrix", result=[]), "result type 'matrix'"),
    (answer(result=[{"value": [1, "1"]}, {"value": [1, "2"]}]), "2 series; aggregate"),
    (answer(result=[{"value": [1, "x"]}]), "unreadable sample"),
])
def test_parse_value_refuses(body, message):
    with pytest.raises(PrometheusError, match=message):
        parse_value(body, "q")


@pytest.mark.parametrize(("window", "want"), [(93.2, "rate(x[94s])"), (0.2, "rate(x[1s])")])
def test_render_window(window, want):
    assert render("rate(x[$window])", window) == want


def test_gate_checks_each_query_and_no_data_fails():
    bodies = {
        "sum(rate(errors[61s]))": answer(result=[{"value": [1, "0.0001"]}]),
        "p99": answer(result=[{"value": [1, "1.7"]}]),
        "absent": answer(result=[]),
    }
    asked = []

    def fetch(url):
        query = parse_qs(urlsplit(url).query)
        asked.append((urlsplit(url).path, query["time"][0]))
        return bodies[query["query"][0]]

    def broken(url):
        raise PrometheusError("http://prom:9090: connection refused")

    queries = [{"name": "errors", "query": "sum(rate(errors[$window]))", "max": 0.001},
               {"name": "latency", "query": "p99", "max": 1.0},
               {"name": "nothing", "query": "absent", "max": 1.0}]
    checks, details = gate(fetch, "http://prom:9090/", queries, window_s=60.5, at=1700.0)
    assert [(c.name, c.measured, c.passed) for c in checks] == [
        ("prometheus:errors", 0.0001, True), ("prometheus:latency", 1.7, False),
        ("prometheus:nothing", None, False)]
    assert details[2]["error"] == "no data"
    assert details[0]["query"] == "sum(rate(errors[61s]))"
    assert asked[0] == ("/api/v1/query", "1700.000")
    assert "no data (limit < 1): FAIL" in checks[2].line()
    checks, details = gate(broken, "http://prom:9090", queries[:1], window_s=1, at=1.0)
    assert not checks[0].passed
    assert details[0]["error"] == "http://prom:9090: connection refused"


class FakePrometheus(http.server.BaseHTTPRequestHandler):
    """The query endpoint of Prometheus's HTTP API, as far as the gate uses it."""

    answers = {"up": answer(result=[{"value": [1, "0.5"]}]), "none": answer(result=[])}

    def log_message(self, *_args):
        pass

    def do_GET(self):  # noqa: N802 - the name http.server calls
        url = urlsplit(self.path)
        query = parse_qs(url.query).get("query", [""])[0]
        if url.path != "/api/v1/query" or self.headers.get("Authorization") != "Bearer t":
            self.send_response(401)
            self.end_headers()
            return
        if query not in self.answers:
            body = json.dumps({"status": "error", "errorType": "bad_data",
                               "error": "unknown"}).encode()
            self.send_response(400)
        else:
            body = self.answers[query]
            self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def test_gate_over_http():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakePrometheus)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        fetch = http_fetch(base, {"Authorization": "Bearer t"}, True, 5)
        queries = [{"name": "up", "query": "up", "max": 1}, {"name": "none", "query": "none",
                                                             "max": 1},
                   {"name": "bad", "query": "bad(", "max": 1}]
        checks, details = gate(fetch, base, queries, window_s=10, at=1.0)
        assert [(c.measured, c.passed) for c in checks] == [(0.5, True), (None, False),
                                                            (None, False)]
        assert details[1]["error"] == "no data"
        assert details[2]["error"] == "query 'bad(': bad_data: unknown"
        unauthorized = http_fetch(base, {}, True, 5)
        checks, details = gate(unauthorized, base, queries[:1], window_s=10, at=1.0)
        assert not checks[0].passed and "HTTP Error 401" in details[0]["error"]
    finally:
        server.shutdown()
        server.server_close()
