# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The HTTP/1.1 the load generator speaks: requests prebuilt as bytes, responses framed by
Content-Length, chunked encoding or the end of the connection, and every failure given a
stable class name for the report.

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

import errno
import socket
import ssl
from dataclasses import dataclass, field
from urllib.parse import urlsplit

USER_AGENT = "prodready-load-test/1"
UNTIL_CLOSE = -1
CHUNKED = -2


class LoadTestError(Exception):
    """The load test cannot run as asked; the message names the input and the cause."""


class ProtocolError(Exception):
    """The server's answer is not HTTP/1.x as this client understands it."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str
    port: int

    @property
    def netloc(self) -> str:
        default = 443 if self.scheme == "https" else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == default else f"{host}:{self.port}"


@dataclass
class Endpoint:
    """One kind of request: its weight is its share of all requests."""

    name: str
    method: str
    path: str
    weight: int = 1
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    wire: bytes = b""

    @property
    def expects_body(self) -> bool:
        return self.method != "HEAD"


def parse_target(url: str) -> tuple[Target, str]:
    """(target, path with query) of an absolute http(s) URL."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise LoadTestError(f"{url!r} is not an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise LoadTestError(f"{parts.scheme}://{parts.hostname}: credentials in the URL are not"
                            " supported; pass an Authorization header")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise LoadTestError(f"{url!r}: {exc}") from None
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(parts.scheme, parts.hostname, port), path


def build_request(target: Target, endpoint: Endpoint, headers: dict[str, str]) -> bytes:
    """The request as sent on a keep-alive connection; common headers, then the endpoint's."""
    merged = {"Host": target.netloc, "User-Agent": USER_AGENT, "Accept": "*/*"}
    lower = {k.lower(): k for k in merged}
    for source in (headers, endpoint.headers):
        for name, value in source.items():
            if any(c in str(name) + str(value) for c in "\r\n"):
                raise LoadTestError(f"header {name!r} of {endpoint.name}: line breaks are not"
                                    " allowed in header names or values")
            merged.pop(lower.get(name.lower(), name), None)
            lower[name.lower()] = name
            merged[name] = str(value)
    if endpoint.body or endpoint.method in ("POST", "PUT", "PATCH"):
        merged.pop(lower.get("content-length", "Content-Length"), None)
        merged["Content-Length"] = str(len(endpoint.body))
    head = f"{endpoint.method} {endpoint.path} HTTP/1.1\r\n"
    head += "".join(f"{k}: {v}\r\n" for k, v in merged.items()) + "\r\n"
    return head.encode("latin-1") + endpoint.body


def parse_head(buf: bytes | bytearray, method_head: bool = False
               ) -> tuple[int, int, int, bool] | None:
    """(head length, status, body length or CHUNKED or UNTIL_CLOSE, keep-alive) of a response
    at the start of ``buf``; None while the head is incomplete. Interim 1xx answers (other
    than 101) are part of the head: the final answer after them is returned."""
    start = 0
    while True:
        end = buf.find(b"\r\n\r\n", start)
        if end < 0:
            if len(buf) - start > 65536:
                raise ProtocolError("response head longer than 64 KiB")
            return None
        head = bytes(buf[start:end])
        if not head.startswith(b"HTTP/1."):
            raise ProtocolError(f"not an HTTP/1.x status line: {head[:40]!r}")
        try:
            status = int(head[9:12])
        except ValueError:
            line = head.split(b"\r\n", 1)[0][:60]
            raise ProtocolError(f"bad status line: {line!r}") from None
        if 100 <= status < 200 and status != 101:
            start = end + 4
            continue
        lower = head.lower()
        keep_alive = not head.startswith(b"HTTP/1.0")
        if b"\r\nconnection:" in lower:
            value = lower.split(b"\r\nconnection:", 1)[1].split(b"\r\n", 1)[0]
            if b"close" in value:
                keep_alive = False
            elif b"keep-alive" in value:
                keep_alive = True
        if method_head or status in (204, 304):
            length = 0
        elif b"\r\ntransfer-encoding:" in lower and b"chunked" in lower.split(
                b"\r\ntransfer-encoding:", 1)[1].split(b"\r\n", 1)[0]:
            length = CHUNKED
        elif b"\r\ncontent-length:" in lower:
            raw = lower.split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0].strip()
            if not raw.isdigit():
                raise ProtocolError(f"bad Content-Length: {raw[:20]!r}")
            length = int(raw)
        else:
            length = UNTIL_CLOSE
            keep_alive = False
        return end + 4, status, length, keep_alive


def chunked_end(buf: bytes | bytearray, pos: int) -> int:
    """Index just past a chunked body starting at ``pos`` (trailers included); -1 while
    incomplete."""
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return -1
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size: {size_text[:20]!r}") from None
        if size == 0:
            # Trailer lines may follow; the body ends at the first empty line.
            pos = eol + 2
            while True:
                nxt = buf.find(b"\r\n", pos)
                if nxt < 0:
                    return -1
                if nxt == pos:
                    return pos + 2
                pos = nxt + 2
        pos = eol + 2 + size + 2
        if pos > len(buf):
            return -1


def classify_exception(exc: BaseException) -> str:
    """A stable name for a failure without a response, for ``errors_by_exception``."""
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection_refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError)):
        return "connection_reset"
    if isinstance(exc, socket.gaierror):
        return "name_resolution"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "tls_certificate"
    if isinstance(exc, ssl.SSLError):
        return "tls_error"
    if isinstance(exc, ProtocolError):
        return "protocol_error"
    if isinstance(exc, OSError) and exc.errno:
        if exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "unreachable"
        if exc.errno in (errno.EMFILE, errno.ENFILE):
            return "too_many_open_files"
        if exc.errno == errno.EADDRNOTAVAIL:
            return "no_local_ports"
        return errno.errorcode.get(exc.errno, f"errno_{exc.errno}").lower()
    return type(exc).__name__
