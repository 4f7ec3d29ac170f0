# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A scripted stand-in for the HTTP client (unit tests only)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    Client,
    HttpRequestError,
    Response,
)


def response(status: int = 200, body: Any = b"", headers: dict[str, str] | None = None,
             method: str = "GET", url: str = "http://app.test/", elapsed_ms: float = 5.0
             ) -> Response:
    if not isinstance(body, bytes):
        body = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(headers or {})}
    return Response(method, url, status, list((headers or {}).items()), body, body,
                    elapsed_ms)


class FakeClient(Client):
    """Answers from ``script(method, url, headers, body)``; records every request."""

    def __init__(self, script: Callable[..., Response | Exception],
                 base_url: str = "http://app.test") -> None:
        super().__init__(base_url, {"Authorization": "Bearer canary-token"})
        self.script = script
        self.sent: list[tuple[str, str, dict[str, str], bytes | None]] = []

    def request(self, method: str, path: str, headers: dict[str, str] | None = None,
                body: bytes | None = None, timeout: float | None = None,
                auth: bool = True) -> Response:
        url = self.url(path)
        sent = {**(self.headers if auth else {}), **(headers or {})}
        self.sent.append((method, url, sent, body))
        answer = self.script(method, url, sent, body)
        if isinstance(answer, Exception):
            raise answer
        answer.method, answer.url = method, url
        return answer


def unreachable(url: str) -> HttpRequestError:
    return HttpRequestError(f"GET {url} got no answer: Connection refused")
