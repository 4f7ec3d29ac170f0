# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Request bytes, response framing and the classification of failures."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._load.http import (
    CHUNKED,
    UNTIL_CLOSE,
    Endpoint,
    LoadTestError,
    ProtocolError,
    build_request,
    chunked_end,
    classify_exception,
    parse_head,
    parse_target,
)

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@pytest.mark.parametrize(("raw", "method_head", "want"), [
    (OK, False, (38, 200, 2, True)),
    (b"HTTP/1.1 500 X\r\ncontent-length:  7\r\n\r\n", False, (38, 500, 7, True)),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", False,
     (57, 200, 0, False)),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", False, (38, 200, 0, False)),
    (b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", False,
     (62, 200, 0, True)),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", False, (47, 200, CHUNKED, True)),
    (b"HTTP/1.1 200 OK\r\n\r\n", False, (19, 200, UNTIL_CLOSE, False)),
    (b"HTTP/1.1 204 No Content\r\n\r\n", False, (27, 204, 0, True)),
    (b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", True, (39, 200, 0, True)),
    (b"HTTP/1.1 100 Continue\r\n\r\n" + OK, False, (25 + 38, 200, 2, True)),
    (b"HTTP/1.1 200 OK\r\nContent-Len", False, None),
])
def test_parse_head(raw, method_head, want):
    assert parse_head(raw, method_head) == want
    assert parse_head(bytearray(raw), method_head) == want


@pytest.mark.parametrize(("raw", "message"), [
    (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x status line"),
    (b"HTTP/1.1 2x0 OK\r\n\r\n", "bad status line"),
    (b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "bad Content-Length"),
    (b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000, "longer than 64 KiB"),
])
def test_parse_head_refuses(raw, message):
    with pytest.raises(ProtocolError, match=message):
        parse_head(raw)


@pytest.mark.parametrize(("body", "want"), [
    (b"2\r\nok\r\n0\r\n\r\n", 12),
    (b"2;ext=1\r\nok\r\n3\r\nabc\r\n0\r\n\r\nextra", 26),
    (b"2\r\nok\r\n0\r\nTrailer: x\r\n\r\n", 24),
    (b"2\r\nok\r\n0\r\n", -1),
    (b"2\r\no", -1),
    (b"", -1),
])
def test_chunked_end(body, want):
    assert chunked_end(b"HEAD" + body, 4) == (want + 4 if want >= 0 else -1)


def test_chunked_bad_size():
    with pytest.raises(ProtocolError, match="bad chunk size"):
        chunked_end(b"zz\r\n", 0)


@pytest.mark.parametrize(("exc", "name"), [
    (TimeoutError(), "timeout"),
    (ConnectionRefusedError(), "connection_refused"),
    (ConnectionResetError(), "connection_reset"),
    (BrokenPipeError(), "connection_reset"),
    (socket.gaierror(-2, "Name or service not known"), "name_resolution"),
    (ssl.SSLError(), "tls_error"),
    (ProtocolError("x"), "protocol_error"),
    (OSError(errno.EHOSTUNREACH, "x"), "unreachable"),
    (OSError(errno.EMFILE, "x"), "too_many_open_files"),
    (OSError(errno.EADDRNOTAVAIL, "x"), "no_local_ports"),
    (OSError(errno.EPERM, "x"), "eperm"),
    (ValueError("x"), "ValueError"),
])
def test_classify_exception(exc, name):
    assert classify_exception(exc) == name


def test_build_request_merges_headers_and_sets_length():
    target, path = parse_target("http://example.test:8080/api?x=1")
    endpoint = Endpoint("post", "POST", path, headers={"content-type": "application/json",
                                                       "host": "override.test"},
                        body=b'{"a":1}')
    wire = build_request(target, endpoint, {"Authorization": "Bearer t", "Accept": "text/x"})
    head, body = wire.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /api?x=1 HTTP/1.1"
    assert sorted(lines[1:]) == sorted([
        "User-Agent: prodready-load-test/1", "Accept: text/x", "Authorization: Bearer t",
        "content-type: application/json", "host: override.test", "Content-Length: 7"])
    assert body == b'{"a":1}'


def test_build_request_refuses_header_injection():
    target, path = parse_target("http://example.test/")
    with pytest.raises(LoadTestError, match="line breaks"):
        build_request(target, Endpoint("x", "GET", path), {"X-A": "1\r\nX-B: 2"})


@pytest.mark.parametrize(("url", "want"), [
    ("http://h/", ("http", "h", 80, "h", "/")),
    ("http://h:8080", ("http", "h", 8080, "h:8080", "/")),
    ("https://h/a?b=c", ("https", "h", 443, "h", "/a?b=c")),
    ("http://[::1]:81/x", ("http", "::1", 81, "[::1]:81", "/x")),
])
def test_parse_target(url, want):
    target, path = parse_target(url)
    assert (target.scheme, target.host, target.port, target.netloc, path) == want


@pytest.mark.parametrize(("url", "message"), [
    ("ftp://h/", "not an absolute http"),
    ("/relative", "not an absolute http"),
    ("http://user:pw@h/", "credentials in the URL"),
    ("http://h:99999/", "out of range"),
])
def test_parse_target_refuses(url, message):
    with pytest.raises(LoadTestError, match=message):
        parse_target(url)
