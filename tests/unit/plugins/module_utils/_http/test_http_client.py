# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""URL joining, redaction and body decoding of the HTTP client."""

from __future__ import annotations

import gzip
import zlib

import pytest
from http_fakes import response

from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    Client,
    HttpInputError,
    decode_body,
    redact,
    retry_after_seconds,
)


@pytest.mark.parametrize(("base", "path", "url"), [
    ("http://app.test", "/health", "http://app.test/health"),
    ("http://app.test/v1/", "/health", "http://app.test/health"),
    ("http://app.test/v1", "health", "http://app.test/v1/health"),
    ("http://app.test", "https://cdn.test/a.js", "https://cdn.test/a.js"),
    ("http://app.test", "/api?q=%27", "http://app.test/api?q=%27"),
])
def test_url(base: str, path: str, url: str) -> None:
    assert Client(base).url(path) == url


@pytest.mark.parametrize("base", ["app.test", "ftp://app.test", "", "http://"])
def test_base_url_must_be_http(base: str) -> None:
    with pytest.raises(HttpInputError, match="option base_url"):
        Client(base)


def test_redact_hides_userinfo() -> None:
    assert redact("https://user:canary@app.test/x") == "https://***@app.test/x"
    assert redact("https://app.test/x") == "https://app.test/x"


def test_secret_headers_not_in_repr() -> None:
    assert "canary" not in repr(Client("http://a.test", {"Authorization": "canary"}))


@pytest.mark.parametrize(("raw", "encoding", "body", "decoded"), [
    (gzip.compress(b"hello"), "gzip", b"hello", True),
    (zlib.compress(b"hello"), "deflate", b"hello", True),
    (zlib.compress(b"hello")[2:-4], "deflate", b"hello", True),  # raw deflate
    (b"hello", None, b"hello", True),
    (b"hello", "identity", b"hello", True),
    (b"\x00garbage", "gzip", b"\x00garbage", False),
    (b"zz", "compress", b"zz", False),
])
def test_decode_body(raw: bytes, encoding: str | None, body: bytes, decoded: bool) -> None:
    assert decode_body(raw, encoding) == (body, decoded)


def test_header_lookup_joins_repeats() -> None:
    resp = response(headers={"Vary": "Origin"})
    resp.headers.append(("vary", "Accept-Encoding"))
    assert resp.header("VARY") == "Origin, Accept-Encoding"
    assert resp.header("Server") is None
    assert resp.header_map()["vary"] == "Origin, Accept-Encoding"


def test_retry_after_seconds() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 0 ") == 0.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: 1445412490.0) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds("-5") is None
    assert retry_after_seconds("\u00b2") is None  # a digit to str.isdigit, not to int()
    assert retry_after_seconds("9" * 400) is None


def test_rate_limited_wait_must_not_be_negative() -> None:
    with pytest.raises(HttpInputError, match="rate_limited_wait must be 0 or more"):
        Client("http://app.test", rate_limited_wait=-1)
