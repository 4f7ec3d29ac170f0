# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The checks that speak HTTP, through ansible's ``open_url``: registry.reachable (GET /v2/
with basic auth, following a Bearer token challenge), kubernetes.reachable (GET /version,
SelfSubjectReview, SelfSubjectAccessReviews in the namespace) and cors.probe (a CORS
preflight request from a foreign origin).

Credentials go only into request headers or private temporary files (client certificates
from a kubeconfig); messages name the option or kubeconfig entry, never a value.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import SSLValidationError, open_url

from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    CheckResult,
    PreflightInputError,
)

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - JSON kubeconfigs still load
    HAS_YAML = False

AGENT = "prodready.deploy-env_check"
_NETWORK_ERRORS = (URLError, SSLValidationError, UrlConnectionError, OSError)


class CheckFailure(Exception):
    """A request failed; ``str()`` says what and why (no secret)."""

    def __init__(self, message: str, status: int | None = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    return str(getattr(reason, "strerror", None) or reason)


def request(url: str, timeout: float, ca_path: str | None = None, method: str = "GET",
            headers: dict[str, str] | None = None, data: bytes | None = None,
            username: str | None = None, password: str | None = None,
            client_cert: str | None = None, client_key: str | None = None,
            validate_certs: bool = True) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body); an HTTP error status is returned, not raised; a network or
    TLS failure raises CheckFailure."""
    try:
        response = open_url(url, data=data, headers=headers or {}, method=method,
                            timeout=timeout, validate_certs=validate_certs, ca_path=ca_path,
                            url_username=username, url_password=password,
                            force_basic_auth=bool(username), http_agent=AGENT,
                            client_cert=client_cert, client_key=client_key,
                            follow_redirects="none", use_proxy=True, use_netrc=False)
        return response.status, dict(response.headers.items()), response.read()
    except HTTPError as exc:
        body = exc.read() if exc.fp is not None else b""
        return exc.code, dict(exc.headers.items()) if exc.headers else {}, body
    except _NETWORK_ERRORS as exc:
        raise CheckFailure(f"cannot reach {url}: {_reason(exc)}") from None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {realm, service, ...})."""
    scheme, _sep, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


# ---------------------------------------------------------------------------------------
# registry.reachable


def registry_base(url: str) -> str:
    value = url.strip().rstrip("/")
    if not value:
        raise PreflightInputError("option registry_url is empty")
    return value if "://" in value else f"https://{value}"


def check_registry(url: str, username: str | None, password: str | None,
                   ca_path: str | None, timeout: float) -> CheckResult:
    base = registry_base(url)
    endpoint = f"{base}/v2/"
    requests = [f"GET {endpoint}" + (" (basic auth)" if username else "")]
    data: dict[str, Any] = {"url": endpoint, "requests": requests, "username": username}
    cid = "registry.reachable"
    try:
        status, headers, _body = request(endpoint, timeout, ca_path, username=username,
                                         password=password)
        auth = "basic"
        if status == 401:
            scheme, params = parse_challenge(_header(headers, "WWW-Authenticate"))
            if scheme == "bearer" and params.get("realm"):
                auth = "bearer"
                token = _bearer_token(params, username, password, ca_path, timeout, requests)
                requests.append(f"GET {endpoint} (bearer token)")
                status, headers, _body = request(endpoint, timeout, ca_path,
                                                 headers={"Authorization": f"Bearer {token}"})
    except CheckFailure as exc:
        return CheckResult(cid, "fail", f"the registry is unreachable: {exc}",
                           "check registry_url, that the registry is up, and the CA"
                           " (registry_ca_cert)", data)
    data.update(status=status, auth=auth, api_version=_header(headers,
                                                              "Docker-Distribution-API-Version"))
    if status == 200:
        who = f"as {username}" if username else "anonymously"
        return CheckResult(cid, "pass", f"{base} answers /v2/ {who} ({auth} auth)", "", data)
    if status in (401, 403):
        told = ("refused the credentials of registry_username/registry_password"
                if username else "requires credentials (registry_username/registry_password)")
        return CheckResult(cid, "fail", f"{base} {told} (HTTP {status})",
                           "check the registry user and password (from the vault)", data)
    return CheckResult(cid, "fail", f"{base} answered /v2/ with HTTP {status}",
                       "check that registry_url points at a Docker/OCI registry", data)


def _header(headers: Mapping[str, str], name: str) -> str:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), "")


def _bearer_token(params: dict[str, str], username: str | None, password: str | None,
                  ca_path: str | None, timeout: float, requests: list[str]) -> str:
    query = {k: params[k] for k in ("service", "scope") if params.get(k)}
    if username:
        query["account"] = username
    realm = params["realm"]
    url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}" if query else realm
    requests.append(f"GET {realm} (token)")
    status, _headers, body = request(url, timeout, ca_path, username=username,
                                     password=password)
    if status != 200:
        raise CheckFailure(f"the token service {realm} answered HTTP {status}", status)
    try:
        answer = json.loads(body)
        return answer.get("token") or answer["access_token"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckFailure(f"the token service {realm} sent no token") from None


# ---------------------------------------------------------------------------------------
# kubernetes.reachable


@dataclass
class KubeTarget:
    server: str
    namespace: str
    context: str
    user: str
    ca_file: str | None = None
    insecure: bool = False
    token: str | None = field(default=None, repr=False)
    client_cert: str | None = None
    client_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)


def _named(items: Any, name: str, what: str, path: str) -> dict[str, Any]:
    for item in items or []:
        if isinstance(item, dict) and item.get("name") == name:
            return item.get(what) or {}
    raise PreflightInputError(f"kubeconfig {path}: no {what} named {name!r}")


def _relative(path: str | None, base: str) -> str | None:
    if not path:
        return None
    return path if os.path.isabs(path) else os.path.join(os.path.dirname(base), path)


def load_kubeconfig(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        raise PreflightInputError(f"cannot read the kubeconfig {path}:"
                                  f" {exc.strerror}") from None
    try:
        config = yaml.safe_load(text) if HAS_YAML else json.loads(text)
    except Exception:  # pylint: disable=broad-exception-caught
        # yaml and json raise different classes; the text may hold tokens, so no detail.
        raise PreflightInputError(f"the kubeconfig {path} is not valid YAML") from None
    if not isinstance(config, dict):
        raise PreflightInputError(f"the kubeconfig {path} is not a mapping")
    return config


@contextlib.contextmanager
def kube_target(path: str, context: str | None = None, namespace: str | None = None,
                timeout: float = 10) -> Iterator[KubeTarget]:
    """The server and credentials of a kubeconfig context. Certificate and key data go to
    a private 0700 directory that is removed when the block ends."""
    config = load_kubeconfig(path)
    name = context or config.get("current-context")
    if not name:
        raise PreflightInputError(f"kubeconfig {path}: no current-context; set"
                                  " kubernetes_context")
    ctx = _named(config.get("contexts"), name, "context", path)
    cluster = _named(config.get("clusters"), ctx.get("cluster"), "cluster", path)
    user = _named(config.get("users"), ctx.get("user"), "user", path)
    if not cluster.get("server"):
        raise PreflightInputError(f"kubeconfig {path}: cluster {ctx.get('cluster')!r} has no"
                                  " server")
    tmpdir = tempfile.mkdtemp(prefix="prodready-kube-")
    try:
        def from_data(key: str, file_key: str) -> str | None:
            for source in (cluster, user):
                if source.get(key):
                    target = os.path.join(tmpdir, key)
                    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                    with os.fdopen(fd, "wb") as handle:
                        handle.write(base64.b64decode(source[key]))
                    return target
                if source.get(file_key):
                    return _relative(source[file_key], path)
            return None

        token = user.get("token")
        if not token and user.get("tokenFile"):
            with open(_relative(user["tokenFile"], path) or "", encoding="utf-8") as handle:
                token = handle.read().strip()
        target = KubeTarget(
            server=cluster["server"].rstrip("/"),
            namespace=namespace or ctx.get("namespace") or "default", context=name,
            user=str(ctx.get("user")), ca_file=from_data("certificate-authority-data",
                                                         "certificate-authority"),
            insecure=bool(cluster.get("insecure-skip-tls-verify")), token=token,
            client_cert=from_data("client-certificate-data", "client-certificate"),
            client_key=from_data("client-key-data", "client-key"),
            username=user.get("username"), password=user.get("password"))
        if user.get("exec") and not (target.token or target.client_cert):
            _exec_credentials(user["exec"], target, tmpdir, timeout)
        yield target
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _exec_credentials(spec: dict[str, Any], target: KubeTarget, tmpdir: str,
                      timeout: float) -> None:
    """Run a client-go credential plugin (exec) and take its token or client certificate."""
    command = spec.get("command")
    if not command:
        raise PreflightInputError("kubeconfig: the user's exec has no command")
    env = dict(os.environ)
    for item in spec.get("env") or []:
        env[str(item.get("name"))] = str(item.get("value"))
    env["KUBERNETES_EXEC_INFO"] = json.dumps({
        "apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1"),
        "kind": "ExecCredential", "spec": {"interactive": False}})
    try:
        proc = subprocess.run([command, *[str(a) for a in spec.get("args") or []]], env=env,
                              capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CheckFailure(f"the kubeconfig's credential plugin {command} did not run:"
                           f" {exc}") from None
    if proc.returncode != 0:
        raise CheckFailure(f"the kubeconfig's credential plugin {command} exited"
                           f" {proc.returncode}")
    try:
        status = json.loads(proc.stdout)["status"]
    except (ValueError, KeyError, TypeError):
        raise CheckFailure(f"the kubeconfig's credential plugin {command} printed no"
                           " ExecCredential") from None
    target.token = status.get("token")
    for key, attr in (("clientCertificateData", "client_cert"),
                      ("clientKeyData", "client_key")):
        if status.get(key):
            out = os.path.join(tmpdir, attr)
            fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(status[key])
            setattr(target, attr, out)


def parse_permission(text: str) -> dict[str, str]:
    """``verb resource[.group][/subresource]`` -> resourceAttributes (namespace added later)."""
    words = text.split()
    if len(words) != 2:
        raise PreflightInputError(f"option kubernetes_permissions: {text!r} is not"
                                  " 'verb resource[.group]' (e.g. 'patch deployments.apps')")
    verb, what = words
    what, _slash, sub = what.partition("/")
    resource, _dot, group = what.partition(".")
    attrs = {"verb": verb, "resource": resource, "group": group}
    if sub:
        attrs["subresource"] = sub
    return attrs


def check_kubernetes(path: str, context: str | None, namespace: str | None,
                     permissions: Sequence[str], timeout: float) -> CheckResult:
    cid = "kubernetes.reachable"
    wanted = [(p, parse_permission(p)) for p in permissions]
    requests: list[str] = []
    data: dict[str, Any] = {"requests": requests}
    try:
        with kube_target(path, context, namespace, timeout) as target:
            data.update(server=target.server, context=target.context,
                        namespace=target.namespace)
            return _kube_checks(target, wanted, timeout, requests, data)
    except CheckFailure as exc:
        return CheckResult(cid, "fail", str(exc), "check the kubeconfig and that the API"
                           " server is up", data)
    except PreflightInputError as exc:  # the kubeconfig itself
        return CheckResult(cid, "fail", str(exc), "fix the kubeconfig (option kubeconfig,"
                           " kubernetes_context)", data)
    except (OSError, ValueError) as exc:  # token file, base64 data
        return CheckResult(cid, "fail", f"cannot use the kubeconfig {path}:"
                           f" {type(exc).__name__}", "check its certificate and token"
                           " entries", data)


def _kube_checks(target: KubeTarget, wanted: Sequence[tuple[str, dict[str, str]]],
                 timeout: float, requests: list[str], data: dict[str, Any]) -> CheckResult:
    cid = "kubernetes.reachable"
    headers = {"Accept": "application/json"}
    if target.token:
        headers["Authorization"] = f"Bearer {target.token}"
    common = {"ca_path": target.ca_file, "client_cert": target.client_cert,
              "client_key": target.client_key, "username": target.username,
              "password": target.password, "validate_certs": not target.insecure}

    def call(method: str, api: str, body: dict[str, Any] | None = None
             ) -> tuple[int, dict[str, Any]]:
        requests.append(f"{method} {api}")
        status, _h, raw = request(f"{target.server}{api}", timeout, method=method,
                                  headers={**headers, "Content-Type": "application/json"},
                                  data=json.dumps(body).encode() if body else None, **common)
        try:
            return status, json.loads(raw or b"{}")
        except ValueError:
            return status, {}

    status, version = call("GET", "/version")
    if status in (401, 403):
        return CheckResult(cid, "fail", f"the API server {target.server} refused the"
                           f" credentials of user {target.user!r} (HTTP {status})",
                           "renew the token or client certificate in the kubeconfig", data)
    if status != 200:
        return CheckResult(cid, "fail", f"the API server {target.server} answered /version"
                           f" with HTTP {status}", "check the kubeconfig's server", data)
    data["version"] = version.get("gitVersion")
    status, review = call("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                          {"apiVersion": "authentication.k8s.io/v1",
                           "kind": "SelfSubjectReview"})
    identity = ((review.get("status") or {}).get("userInfo") or {}).get("username") \
        if status == 201 else None
    if status == 401:
        return CheckResult(cid, "fail", f"the API server {target.server} refused the"
                           f" credentials of user {target.user!r} (HTTP 401)",
                           "renew the token or client certificate in the kubeconfig", data)
    data["identity"] = identity
    denied: list[str] = []
    allowed: list[str] = []
    for text, attrs in wanted:
        status, answer = call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
                              {"apiVersion": "authorization.k8s.io/v1",
                               "kind": "SelfSubjectAccessReview",
                               "spec": {"resourceAttributes": {
                                   **attrs, "namespace": target.namespace}}})
        if status == 401:
            return CheckResult(cid, "fail", f"the API server {target.server} refused the"
                               f" credentials of user {target.user!r} (HTTP 401)",
                               "renew the token or client certificate in the kubeconfig",
                               data)
        ok = status == 201 and bool((answer.get("status") or {}).get("allowed"))
        (allowed if ok else denied).append(text)
    data.update(allowed=allowed, denied=denied)
    who = identity or target.user
    if denied:
        return CheckResult(cid, "fail", f"{who} may not {', '.join(denied)} in namespace"
                           f" {target.namespace}", "grant them in the deployer's Role (RBAC)",
                           data)
    granted = f"; may {', '.join(allowed)}" if allowed else ""
    return CheckResult(cid, "pass", f"Kubernetes {data['version']} at {target.server}"
                       f" answers as {who} in namespace {target.namespace}{granted}", "", data)


# ---------------------------------------------------------------------------------------
# cors.probe


def cors_probe_target(url: str) -> str:
    """The probe's URL, refused unless it is http(s) with a host."""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise PreflightInputError("option cors_probe_url must be an http(s) URL with a host")
    return url


def check_cors_probe(url: str, origin: str, ca_path: str | None, timeout: float
                     ) -> CheckResult:
    """An OPTIONS preflight from a foreign origin: the server must not allow it with
    credentials (a reflected origin or '*')."""
    cid = "cors.probe"
    cors_probe_target(url)
    data: dict[str, Any] = {"url": url, "origin": origin}
    try:
        status, headers, _body = request(url, timeout, ca_path, method="OPTIONS", headers={
            "Origin": origin, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization"})
    except CheckFailure as exc:
        return CheckResult(cid, "fail", str(exc), "check cors_probe_url", data)
    allow = _header(headers, "Access-Control-Allow-Origin").strip()
    credentials = _header(headers, "Access-Control-Allow-Credentials").strip().lower() == "true"
    data.update(status=status, allow_origin=allow, allow_credentials=credentials)
    foreign = allow == "*" or allow == origin or allow.lower() == "null"
    if foreign and credentials:
        return CheckResult(cid, "fail", f"{url} allows the foreign origin {origin} with"
                           f" credentials (Access-Control-Allow-Origin: {allow})",
                           "allow only the app's own origins; never reflect the Origin header"
                           " when credentials are allowed", data)
    if allow == origin:
        return CheckResult(cid, "warn", f"{url} reflects the foreign origin {origin}"
                           " (without credentials)", "allow only the app's own origins", data)
    return CheckResult(cid, "pass", f"{url} does not allow the foreign origin {origin} with"
                       " credentials" + (f" (Access-Control-Allow-Origin: {allow})"
                                         if allow else ""), "", data)
