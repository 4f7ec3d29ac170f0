# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""ClientConfigMaps through the real kubernetes client against a local HTTP server that
answers like the API server (the requests, their bodies, 404 and 409); connect()'s error
translation; the app name rule."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    ClientConfigMaps,
    InvalidInput,
    connect,
    diff_text,
    validate_app,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.lock import DeployLock
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    ApiUnreachable,
    KubeApiError,
)

PREFIX = "/api/v1/namespaces/shop/configmaps"


class _Server(http.server.ThreadingHTTPServer):
    objects: dict[str, dict[str, Any]]
    seen: list[tuple[str, str, Any]]
    version: int


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, reason: str, message: str) -> None:
        self._send(code, {"kind": "Status", "status": "Failure", "code": code,
                          "reason": reason, "message": message})

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length)) if length else None

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        body = self._body() if method in ("POST", "PUT", "DELETE") else None
        self.server.seen.append((method, self.path, body))
        if url.path.startswith("/api/v1/namespaces/kube-system/"):
            self._status(403, "Forbidden", 'configmaps is forbidden: User "deployer" cannot'
                         ' list resource "configmaps" in the namespace "kube-system"')
            return
        name = url.path.removeprefix(PREFIX).strip("/")
        objects = self.server.objects
        if method == "GET" and not name:
            selector = urllib.parse.parse_qs(url.query).get("labelSelector", [""])[0]
            items = [o for o in objects.values()
                     if all(key in o["metadata"].get("labels", {})
                            for key in (t.partition("=")[0] for t in selector.split(",")))]
            self._send(200, {"kind": "ConfigMapList", "items": items})
        elif method == "GET":
            if name in objects:
                self._send(200, objects[name])
            else:
                self._status(404, "NotFound", f'configmaps "{name}" not found')
        elif method == "POST":
            name = body["metadata"]["name"]
            if name in objects:
                self._status(409, "AlreadyExists", f'configmaps "{name}" already exists')
                return
            self.server.version += 1
            body["metadata"].update(uid=f"uid-{name}",
                                    resourceVersion=str(self.server.version))
            objects[name] = body
            self._send(201, body)
        elif method == "PUT":
            current = objects.get(name)
            if current is None:
                self._status(404, "NotFound", f'configmaps "{name}" not found')
            elif body["metadata"].get("resourceVersion") != \
                    current["metadata"]["resourceVersion"]:
                self._status(409, "Conflict", f'Operation cannot be fulfilled on configmaps'
                             f' "{name}": the object has been modified')
            else:
                self.server.version += 1
                body["metadata"]["resourceVersion"] = str(self.server.version)
                objects[name] = body
                self._send(200, body)
        elif method == "DELETE":
            current = objects.get(name)
            wanted = (body or {}).get("preconditions") or {}
            if current is None:
                self._status(404, "NotFound", f'configmaps "{name}" not found')
            elif any(current["metadata"].get(k) != v for k, v in wanted.items()):
                self._status(409, "Conflict", "Precondition failed")
            else:
                del objects[name]
                self._send(200, {"kind": "Status", "status": "Success"})

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        self._route("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._route("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._route("PUT")

    def do_DELETE(self) -> None:  # noqa: N802
        self._route("DELETE")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.objects, srv.seen, srv.version = {}, [], 10
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def _api_client(host: str) -> ApiClient:
    config = Configuration(host=host)
    config.retries = 0
    return ApiClient(config)


def _client(srv: _Server) -> ClientConfigMaps:
    return ClientConfigMaps(_api_client(f"http://127.0.0.1:{srv.server_address[1]}"),
                            request_timeout=(2, 5))


def test_crud_requests_bodies_and_answers(server: _Server) -> None:
    api = _client(server)
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-deploy-lock", "namespace": "shop",
                         "labels": {"app.kubernetes.io/name": "web"}},
            "data": {"release_id": "r1"}}
    assert api.get("shop", "web-deploy-lock") is None
    created = api.create("shop", body)
    assert created["metadata"]["uid"] == "uid-web-deploy-lock"
    with pytest.raises(KubeApiError) as info:
        api.create("shop", body)
    assert (info.value.status, info.value.api_message) == (
        409, 'configmaps "web-deploy-lock" already exists')

    read = api.get("shop", "web-deploy-lock")
    assert read["data"] == {"release_id": "r1"}
    assert [o["metadata"]["name"] for o in api.list("shop", "app.kubernetes.io/name=web")] == [
        "web-deploy-lock"]
    stale = {**read, "metadata": {**read["metadata"], "resourceVersion": "1"}}
    with pytest.raises(KubeApiError) as info:
        api.replace("shop", "web-deploy-lock", stale)
    assert info.value.status == 409
    read["data"] = {"release_id": "r2"}
    assert api.replace("shop", "web-deploy-lock", read)["data"] == {"release_id": "r2"}

    with pytest.raises(KubeApiError) as info:
        api.delete("shop", "web-deploy-lock", uid="uid-web-deploy-lock", resource_version="11")
    assert (info.value.status, info.value.api_message) == (409, "Precondition failed")
    version = api.get("shop", "web-deploy-lock")["metadata"]["resourceVersion"]
    assert api.delete("shop", "web-deploy-lock", uid="uid-web-deploy-lock",
                      resource_version=version) is True
    assert api.delete("shop", "web-deploy-lock") is False

    methods = [(m, p.split("?")[0]) for m, p, _b in server.seen]
    assert methods[:3] == [("GET", f"{PREFIX}/web-deploy-lock"), ("POST", PREFIX),
                           ("POST", PREFIX)]
    delete_bodies = [b for m, _p, b in server.seen if m == "DELETE"]
    assert delete_bodies[1]["preconditions"] == {"uid": "uid-web-deploy-lock",
                                                 "resourceVersion": version}
    assert delete_bodies[2]["preconditions"] == {}
    assert api.requests[:3] == ["GET v1 ConfigMap shop/web-deploy-lock",
                                "POST v1 ConfigMap shop/web-deploy-lock",
                                "POST v1 ConfigMap shop/web-deploy-lock"]
    assert api.requests[-2] == (f"DELETE v1 ConfigMap shop/web-deploy-lock (if uid"
                                f" uid-web-deploy-lock, resourceVersion {version})")


def test_lock_through_the_client(server: _Server) -> None:
    """The lock logic on the real client: acquire, refuse, release."""
    lock = DeployLock(_client(server), "shop", "web")
    assert lock.acquire("r1", "a@h", 1, "2026-11-27T10:00:00Z").changed is True
    assert lock.acquire("r1", "a@h", 2, "2026-11-27T10:01:00Z").changed is False
    assert lock.release("r1").changed is True
    assert server.objects == {}


def test_forbidden_is_a_status_error(server: _Server) -> None:
    api = _client(server)
    with pytest.raises(KubeApiError) as info:
        api.list("kube-system", "a=b")
    assert info.value.status == 403
    assert str(info.value) == (
        'the Kubernetes API answered 403: configmaps is forbidden: User "deployer" cannot list'
        ' resource "configmaps" in the namespace "kube-system"')


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_names_the_server_and_the_cause() -> None:
    port = _closed_port()
    api = ClientConfigMaps(_api_client(f"http://127.0.0.1:{port}"), request_timeout=(2, 5))
    with pytest.raises(ApiUnreachable) as info:
        api.get("shop", "web-deploy-lock")
    assert str(info.value) == (f"cannot reach the Kubernetes API at http://127.0.0.1:{port}:"
                               " [Errno 111] Connection refused")
    assert api.requests == ["GET v1 ConfigMap shop/web-deploy-lock"]


class _Wrapper:
    """kubernetes.core's K8SClient and K8SDynamicClient: each holds the next in `client`."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.configuration = getattr(client, "configuration", None)


def test_connect_unwraps_the_kubernetes_core_client() -> None:
    requests: list[str] = []
    inner = _api_client("https://api.test:6443")
    api = connect(lambda: _Wrapper(_Wrapper(inner)), requests)
    assert api.host == "https://api.test:6443"
    assert api.requests is requests


def test_connect_translates_a_failed_discovery() -> None:
    pool = HTTPSConnectionPool("10.0.0.1", 6443)
    refused = NewConnectionError(HTTPSConnection("10.0.0.1", 6443),
                                 "Failed to establish a new connection: [Errno 111] Connection"
                                 " refused")

    def unreachable() -> Any:
        raise MaxRetryError(pool, "/version", refused)

    with pytest.raises(ApiUnreachable) as info:
        connect(unreachable)
    assert str(info.value) == ("cannot reach the Kubernetes API at https://10.0.0.1:6443:"
                               " [Errno 111] Connection refused")

    def unauthorized() -> Any:
        exc = ApiException(status=401, reason="Unauthorized")
        exc.body = json.dumps({"kind": "Status", "code": 401, "message": "Unauthorized"})
        raise exc

    with pytest.raises(KubeApiError) as status:
        connect(unauthorized)
    assert (status.value.status, status.value.api_message) == (401, "Unauthorized")


@pytest.mark.parametrize(("app", "valid"), [
    ("web", True), ("web-1", True), ("shop.web", True), ("a" * 63, True), ("0", True),
    ("", False), ("Web", False), ("web_1", False), ("-web", False), ("web.", False),
    ("shop..web", False), ("a" * 64, False),
])
def test_app_rule(app: str, valid: bool) -> None:
    if valid:
        validate_app(app)
    else:
        with pytest.raises(InvalidInput, match=f"app {app!r} is not valid"):
            validate_app(app)


def test_diff_text() -> None:
    assert diff_text(None) == ""
    assert diff_text({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}\n'
