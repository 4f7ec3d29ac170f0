# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""One HTTP request through ansible's ``open_url``: no redirect followed (the checks judge
redirects themselves), TLS verified against an optional CA file, a timeout on every request,
the body decoded from gzip/deflate (and br when the brotli library is there) while the
received ``Content-Encoding`` is kept for the compression check.

The client's own headers (``Authorization`` and the like) are secrets: they are sent, never
returned or put into a message.
"""

from __future__ import annotations

import email.utils
import gzip
import json
import re
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urljoin, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url

try:
    import brotli  # type: ignore[import-not-found]

    HAS_BROTLI = True
except ImportError:  # pragma: no cover - br bodies are then judged by their headers only
    HAS_BROTLI = False

AGENT = "prodready.deploy-http_check"
_NETWORK_ERRORS = (URLError, SSLValidationError, UrlConnectionError, OSError)


class HttpInputError(ValueError):
    """An option is unusable; nothing was sent. Never holds a secret."""


class HttpRequestError(Exception):
    """The request got no HTTP answer (refused, timed out, TLS failure); names URL and cause."""


def redact(url: str) -> str:
    """The URL without userinfo (credentials never reach a message)."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


@dataclass
class Response:
    method: str
    url: str
    status: int
    headers: list[tuple[str, str]]
    raw: bytes
    body: bytes
    elapsed_ms: float
    decoded: bool = True

    def header(self, name: str) -> str | None:
        """All values of a header joined by ", " (RFC 9110), or None when absent."""
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None

    def header_map(self) -> dict[str, str]:
        """Lower-cased names -> joined values."""
        names = dict.fromkeys(k.lower() for k, _v in self.headers)
        return {name: self.header(name) or "" for name in names}

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return json.loads(self.body.decode("utf-8"))

    def describe(self) -> str:
        return f"{self.method} {redact(self.url)}"


def decode_body(raw: bytes, encoding: str | None) -> tuple[bytes, bool]:
    """(body, decoded) for a Content-Encoding; an encoding that cannot be undone leaves the
    raw bytes with decoded False."""
    codings = [c.strip().lower() for c in (encoding or "").split(",") if c.strip()]
    body = raw
    for coding in reversed(codings):
        try:
            if coding in ("gzip", "x-gzip"):
                body = gzip.decompress(body)
            elif coding == "deflate":
                try:
                    body = zlib.decompress(body)
                except zlib.error:
                    body = zlib.decompress(body, -zlib.MAX_WBITS)
            elif coding == "br" and HAS_BROTLI:
                body = brotli.decompress(body)
            elif coding != "identity":
                return raw, False
        except (OSError, EOFError, zlib.error):
            return raw, False
    return body, True


@dataclass
class Client:
    base_url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    ca_path: str | None = None
    validate_certs: bool = True
    timeout: float = 10.0
    # How long `patient_request` waits out 429 answers in all, as their Retry-After asks.
    rate_limited_wait: float = 0.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise HttpInputError(f"option base_url: {redact(self.base_url or '')!r} is not an"
                                 " http(s) URL")
        if self.timeout <= 0:
            raise HttpInputError("option timeout must be more than 0 seconds")
        if self.rate_limited_wait < 0:
            raise HttpInputError("option rate_limited_wait must be 0 or more seconds")
        self.headers = {str(k): str(v) for k, v in (self.headers or {}).items()}

    def url(self, path: str) -> str:
        """An absolute URL as is; a path relative to base_url (``/health`` replaces the base
        URL's path; ``health`` appends to it)."""
        if "://" in path:
            return path
        base = self.base_url if self.base_url.endswith("/") else self.base_url + "/"
        return urljoin(base, path)

    def request(self, method: str, path: str, headers: Mapping[str, str] | None = None,
                body: bytes | None = None, timeout: float | None = None,
                auth: bool = True) -> Response:
        """Send one request; an HTTP error status is returned as a Response, a network or
        TLS failure raises HttpRequestError. ``auth`` False leaves the client's headers out
        (e.g. for a URL on another host, such as a CDN)."""
        url = self.url(path)
        sent = {**(self.headers if auth else {}), **(headers or {})}
        started = time.perf_counter()
        try:
            answer = open_url(url, data=body, headers=sent, method=method.upper(),
                              timeout=timeout or self.timeout,
                              validate_certs=self.validate_certs, ca_path=self.ca_path,
                              http_agent=AGENT, follow_redirects="none", use_netrc=False,
                              decompress=False, force=True)
            status, header_list, raw = answer.status, list(answer.headers.items()), \
                answer.read()
        except HTTPError as exc:
            status = exc.code
            header_list = list(exc.headers.items()) if exc.headers else []
            try:
                raw = exc.read() if exc.fp is not None else b""
            except OSError:
                raw = b""
        except _NETWORK_ERRORS as exc:
            reason = getattr(exc, "reason", None) or exc
            reason = getattr(reason, "strerror", None) or reason
            raise HttpRequestError(f"{method.upper()} {redact(url)} got no answer:"
                                   f" {reason}") from None
        elapsed = (time.perf_counter() - started) * 1000.0
        encoding = next((v for k, v in header_list if k.lower() == "content-encoding"), None)
        decoded, ok = decode_body(raw, encoding)
        return Response(method.upper(), url, status, header_list, raw, decoded,
                        round(elapsed, 2), ok)

    def patient_request(self, method: str, path: str,
                        sleep: Callable[[float], None] | None = None,
                        **kwargs: Any) -> Response:
        """`request`, sent again after a 429 whose Retry-After (at least a second) fits in
        what is left of `rate_limited_wait` - the time of the requests counts too: the
        application's rate limiter may still count this host's earlier traffic (a load
        stage, an earlier check), which says nothing about the release. Anything else, or a
        429 that asks for longer, is returned as it came."""
        left = self.rate_limited_wait
        while True:
            started = time.monotonic()
            resp = self.request(method, path, **kwargs)
            left -= time.monotonic() - started
            delay = retry_after_seconds(resp.header("Retry-After")) \
                if resp.status == 429 else None
            if delay is None:
                return resp
            delay = max(delay, 1.0)  # "0" or a date just passed must not spin
            if delay > left:
                return resp
            (sleep or time.sleep)(delay)
            left -= delay


def retry_after_seconds(value: str | None, now: Callable[[], float] = time.time
                        ) -> float | None:
    """Seconds a Retry-After asks for (delta-seconds or an HTTP date); None when absent or
    invalid."""
    if value is None:
        return None
    value = value.strip()
    if re.fullmatch(r"[0-9]{1,9}", value):
        return float(int(value))
    parsed = email.utils.parsedate_tz(value)
    if parsed is None:
        return None
    return max(0.0, email.utils.mktime_tz(parsed) - now())
