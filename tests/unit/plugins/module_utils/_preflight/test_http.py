# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The HTTP checks of the preflight with the requests scripted: the registry's basic and
Bearer flows, the Kubernetes reviews, the CORS probe, and kubeconfig reading."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._preflight import http
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    PreflightInputError,
)

CANARY = "Canary-h-7e9a1c3e5b7d9f1a3c5e7b9d1f3a5c7e"


class Script:
    """Stands in for http.request: answers by (method, url prefix), records the calls."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, url, timeout, ca_path=None, method="GET", headers=None, data=None,
                 username=None, password=None, **kwargs):
        self.calls.append({"url": url, "method": method, "headers": headers or {},
                           "username": username, "password": password,
                           "body": json.loads(data) if data else None})
        for (verb, prefix), answer in self.answers.items():
            if verb == method and url.startswith(prefix):
                if isinstance(answer, Exception):
                    raise answer
                return answer(self.calls[-1]) if callable(answer) else answer
        raise AssertionError(f"unexpected {method} {url}")


@pytest.mark.parametrize(("header", "expected"), [
    ('Bearer realm="https://auth.example/token",service="registry",scope="a:b:pull"',
     ("bearer", {"realm": "https://auth.example/token", "service": "registry",
                 "scope": "a:b:pull"})),
    ('Basic realm="Registry Realm"', ("basic", {"realm": "Registry Realm"})),
])
def test_parse_challenge(header, expected):
    assert http.parse_challenge(header) == expected


def test_registry_basic_auth_passes(monkeypatch):
    script = Script({("GET", "https://reg/v2/"): (200, {}, b"{}")})
    monkeypatch.setattr(http, "request", script)
    result = http.check_registry("reg", "lab", CANARY, None, 5)
    assert result.status == "pass"
    assert result.message == "https://reg answers /v2/ as lab (basic auth)"
    assert script.calls[0]["username"] == "lab"


def test_registry_follows_a_bearer_challenge(monkeypatch):
    def v2(call):
        if call["headers"].get("Authorization") == "Bearer tok-1":
            return 200, {}, b"{}"
        return 401, {"WWW-Authenticate": 'Bearer realm="https://auth/token",service="reg"'}, b""

    script = Script({("GET", "https://reg/v2/"): v2,
                     ("GET", "https://auth/token"): (200, {}, b'{"token": "tok-1"}')})
    monkeypatch.setattr(http, "request", script)
    result = http.check_registry("https://reg", "lab", CANARY, None, 5)
    assert result.status == "pass", result.message
    assert result.data["auth"] == "bearer"
    assert script.calls[1]["url"] == "https://auth/token?service=reg&account=lab"
    assert result.data["requests"] == ["GET https://reg/v2/ (basic auth)",
                                       "GET https://auth/token (token)",
                                       "GET https://reg/v2/ (bearer token)"]
    assert CANARY not in json.dumps(result.as_dict())


@pytest.mark.parametrize(("answer", "text"), [
    ((401, {"WWW-Authenticate": 'Basic realm="r"'}, b""),
     "refused the credentials of registry_username/registry_password (HTTP 401)"),
    ((404, {}, b""), "answered /v2/ with HTTP 404"),
    (http.CheckFailure("cannot reach https://reg/v2/: Connection refused"),
     "the registry is unreachable: cannot reach https://reg/v2/: Connection refused"),
])
def test_registry_failures(monkeypatch, answer, text):
    monkeypatch.setattr(http, "request", Script({("GET", "https://reg/v2/"): answer}))
    result = http.check_registry("reg", "lab", CANARY, None, 5)
    assert result.status == "fail"
    assert text in result.message


@pytest.mark.parametrize(("text", "attrs"), [
    ("patch deployments.apps", {"verb": "patch", "resource": "deployments", "group": "apps"}),
    ("list pods", {"verb": "list", "resource": "pods", "group": ""}),
    ("get pods/log", {"verb": "get", "resource": "pods", "group": "", "subresource": "log"}),
])
def test_parse_permission(text, attrs):
    assert http.parse_permission(text) == attrs


def test_parse_permission_refuses_other_shapes():
    with pytest.raises(PreflightInputError, match="is not 'verb resource"):
        http.parse_permission("deployments")


def kubeconfig(tmp_path, user):
    config = {"current-context": "c", "contexts": [{"name": "c", "context": {
        "cluster": "k", "user": "u", "namespace": "shop"}}],
        "clusters": [{"name": "k", "cluster": {
            "server": "https://api:6443/",
            "certificate-authority-data": base64.b64encode(b"CA PEM").decode()}}],
        "users": [{"name": "u", "user": user}]}
    path = tmp_path / "config"
    path.write_text(json.dumps(config))
    return str(path)


def test_kube_target_writes_data_to_private_files_and_removes_them(tmp_path):
    path = kubeconfig(tmp_path, {"client-certificate-data": base64.b64encode(b"C").decode(),
                                 "client-key-data": base64.b64encode(b"K").decode()})
    with http.kube_target(path) as target:
        assert target.server == "https://api:6443"
        assert target.namespace == "shop"
        assert Path(target.ca_file).read_bytes() == b"CA PEM"
        assert os.stat(target.client_key).st_mode & 0o777 == 0o600
        tmpdir = os.path.dirname(target.client_key)
    assert not os.path.exists(tmpdir)


def test_kube_target_errors_name_the_kubeconfig(tmp_path):
    path = kubeconfig(tmp_path, {"token": CANARY})
    with pytest.raises(PreflightInputError, match="no context named 'other'"), \
            http.kube_target(path, context="other"):
        pass
    with pytest.raises(PreflightInputError, match="cannot read the kubeconfig"), \
            http.kube_target(str(tmp_path / "missing")):
        pass


def kube_script(allowed=True, version_status=200):
    def review(call):
        attrs = call["body"]["spec"]["resourceAttributes"]
        ok = allowed if isinstance(allowed, bool) else attrs["verb"] in allowed
        return 201, {}, json.dumps({"status": {"allowed": ok}}).encode()

    return Script({
        ("GET", "https://api:6443/version"): (version_status, {},
                                              b'{"gitVersion": "v1.34.4"}'),
        ("POST", "https://api:6443/apis/authentication.k8s.io/v1/selfsubjectreviews"):
            (201, {}, b'{"status": {"userInfo": {"username": "system:sa:deployer"}}}'),
        ("POST", "https://api:6443/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"):
            review,
    })


def test_kubernetes_passes_and_asks_each_permission_in_the_namespace(monkeypatch, tmp_path):
    script = kube_script()
    monkeypatch.setattr(http, "request", script)
    result = http.check_kubernetes(kubeconfig(tmp_path, {"token": CANARY}), None, None,
                                   ["get deployments.apps", "list pods"], 5)
    assert result.status == "pass", result.message
    assert result.message == ("Kubernetes v1.34.4 at https://api:6443 answers as"
                              " system:sa:deployer in namespace shop; may get deployments.apps,"
                              " list pods")
    assert script.calls[0]["headers"]["Authorization"] == f"Bearer {CANARY}"
    assert script.calls[2]["body"]["spec"]["resourceAttributes"] == {
        "verb": "get", "resource": "deployments", "group": "apps", "namespace": "shop"}
    assert CANARY not in json.dumps(result.as_dict())


def test_kubernetes_denied_permission_and_refused_token(monkeypatch, tmp_path):
    path = kubeconfig(tmp_path, {"token": CANARY})
    monkeypatch.setattr(http, "request", kube_script(allowed={"get"}))
    result = http.check_kubernetes(path, None, "other", ["get pods", "delete pods"], 5)
    assert result.status == "fail"
    assert result.message == "system:sa:deployer may not delete pods in namespace other"
    monkeypatch.setattr(http, "request", kube_script(version_status=401))
    result = http.check_kubernetes(path, None, None, [], 5)
    assert result.message == ("the API server https://api:6443 refused the credentials of user"
                              " 'u' (HTTP 401)")


@pytest.mark.parametrize(("headers", "status", "text"), [
    ({"Access-Control-Allow-Origin": "https://evil.invalid",
      "Access-Control-Allow-Credentials": "true"}, "fail",
     "allows the foreign origin https://evil.invalid with credentials"),
    ({"Access-Control-Allow-Origin": "https://evil.invalid"}, "warn", "reflects"),
    ({"Access-Control-Allow-Origin": "https://shop.example"}, "pass", "does not allow"),
    ({}, "pass", "does not allow the foreign origin https://evil.invalid with credentials"),
])
def test_cors_probe(monkeypatch, headers, status, text):
    script = Script({("OPTIONS", "https://shop.example/api"): (204, headers, b"")})
    monkeypatch.setattr(http, "request", script)
    result = http.check_cors_probe("https://shop.example/api", "https://evil.invalid", None, 5)
    assert result.status == status
    assert text in result.message
    assert script.calls[0]["headers"]["Origin"] == "https://evil.invalid"
