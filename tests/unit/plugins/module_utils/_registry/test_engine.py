# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine client against a scripted engine on a real Unix socket."""

from __future__ import annotations

import base64
import http.server
import json
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._registry.engine import (
    Engine,
    EngineError,
    registry_auth,
)


class _Engine(http.server.BaseHTTPRequestHandler):
    seen: list[tuple[str, dict[str, str]]] = []
    push_body: list[bytes] = []

    def log_message(self, *_args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        _Engine.seen.append((self.path, dict(self.headers)))
        if "/tag?" in self.path:
            if self.path.startswith("/images/sha256:missing/"):
                self._send(404, b'{"message":"No such image: sha256:missing"}')
            else:
                self._send(201, b"")
            return
        # A chunked stream whose messages are cut across chunks, as the engine sends them.
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in _Engine.push_body:
            self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    path = str(tmp_path / "docker.sock")
    server = _UnixServer(path, _Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Engine.seen.clear()
    try:
        yield Engine(f"unix://{path}", timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_tag_names_the_image(engine: Engine) -> None:
    engine.tag("sha256:" + "a" * 64, "reg.test:5000/shop/web", "1.4.0")
    path, _headers = _Engine.seen[-1]
    assert path == f"/images/sha256:{'a' * 64}/tag?repo=reg.test%3A5000%2Fshop%2Fweb&tag=1.4.0"
    with pytest.raises(EngineError, match="could not tag sha256:missing as r/x:1: 404 No such"
                                          " image: sha256:missing"):
        engine.tag("sha256:missing", "r/x", "1")


def test_push_streams_and_returns_the_digest(engine: Engine) -> None:
    lines = [{"status": "The push refers to repository [reg.test:5000/shop/web]"},
             {"status": "Pushed", "id": "abc"},
             {"status": "1.4.0: digest: sha256:d1 size: 1988"},
             {"progressDetail": {}, "aux": {"Tag": "1.4.0", "Digest": "sha256:d1", "Size": 1}}]
    stream = "\r\n".join(json.dumps(line) for line in lines).encode()
    _Engine.push_body[:] = [stream[:17], stream[17:90], stream[90:]]
    seen: list[dict[str, Any]] = []
    auth = registry_auth("deploy", "canary-Secret-4711", "reg.test:5000")
    assert engine.push("reg.test:5000/shop/web", "1.4.0", auth, progress=seen.append) == \
        "sha256:d1"
    assert seen == lines
    path, headers = _Engine.seen[-1]
    assert path == "/images/reg.test:5000/shop/web/push?tag=1.4.0"
    sent = json.loads(base64.urlsafe_b64decode(headers["X-Registry-Auth"]))
    assert sent == {"username": "deploy", "password": "canary-Secret-4711",
                    "serveraddress": "reg.test:5000"}


def test_a_character_split_across_chunks_and_a_broken_end(engine: Engine) -> None:
    line = json.dumps({"status": "Pushing \u00e9t\u00e9", "aux": {"Digest": "sha256:d2"}},
                      ensure_ascii=False).encode()
    cut = line.index("\u00e9".encode()) + 1  # inside the two bytes of the first "e acute"
    _Engine.push_body[:] = [line[:cut], line[cut:]]
    seen: list[dict[str, Any]] = []
    assert engine.push("r/x", "1", "e30=", progress=seen.append) == "sha256:d2"
    assert seen[0]["status"] == "Pushing \u00e9t\u00e9"
    _Engine.push_body[:] = [b'{"status": "Pushing"}\n<html>502 Bad Gateway</html>']
    with pytest.raises(EngineError, match="ended with an answer that is not JSON: <html>502"):
        engine.push("r/x", "1", "e30=")


def test_an_error_in_the_stream_fails_the_push(engine: Engine) -> None:
    _Engine.push_body[:] = [json.dumps({"status": "Preparing"}).encode() + b"\n",
                            json.dumps({"errorDetail": {"message": "unauthorized: authentication"
                                                                   " required"},
                                        "error": "unauthorized: authentication required"}
                                       ).encode()]
    with pytest.raises(EngineError, match=r"^the push of r/x:1 failed: unauthorized:"
                                          " authentication required$"):
        engine.push("r/x", "1", registry_auth(None, None, "r"))


def test_anonymous_auth_is_an_empty_object() -> None:
    assert json.loads(base64.urlsafe_b64decode(registry_auth(None, "x", "reg"))) == {}


def test_unreachable_engine_and_bad_hosts(tmp_path: Path) -> None:
    engine = Engine(f"unix://{tmp_path}/nothing.sock", timeout=2)
    with pytest.raises(EngineError, match=f"cannot reach the Docker engine at unix://{tmp_path}"
                                          "/nothing.sock: No such file or directory"):
        engine.tag("sha256:x", "r/x", "1")
    with pytest.raises(EngineError, match="is not unix:///path or tcp://host:port; for ssh://"):
        Engine("ssh://builder@host")
    assert Engine(env={}).host == "unix:///var/run/docker.sock"
    assert Engine(env={"DOCKER_HOST": "tcp://127.0.0.1:2375"}).host == "tcp://127.0.0.1:2375"
    with pytest.raises(EngineError, match="has no valid port"):
        Engine("tcp://127.0.0.1:docker")
    # DOCKER_TLS alone: encrypted without checking the engine, no client files needed.
    Engine("tcp://127.0.0.1:2376", env={"DOCKER_TLS": "1", "DOCKER_CERT_PATH": str(tmp_path)})
    with pytest.raises(EngineError, match="cannot load the Docker TLS files"):
        Engine("tcp://127.0.0.1:2376", env={"DOCKER_TLS_VERIFY": "0",  # set is set
                                            "DOCKER_CERT_PATH": str(tmp_path)})
