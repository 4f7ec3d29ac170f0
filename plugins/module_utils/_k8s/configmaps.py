# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The ConfigMap requests of the deploy lock and the release record, and the names they use.

`ConfigMaps` is the small interface the logic (`lock`, `record`) talks to: JSON dicts in and
out, None for an object that does not exist, and the typed errors of `watch` -
`KubeApiError` (the server answered with an error status) and `ApiUnreachable` (it did not
answer). `ClientConfigMaps` implements it with the `kubernetes` client and records each
request in `requests`, so a module can report what it did; unit tests use a fake.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any, Protocol

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    HAS_KUBERNETES,
    KubeApiError,
    raw_request,
    start_client,
)

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "prodready.deploy"

# A DNS-1123 subdomain (what a ConfigMap name must be) of at most 63 characters (what a label
# value may hold): the app is both, in <app>-deploy-lock and app.kubernetes.io/name=<app>.
_APP = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
APP_MAX = 63
APP_RULE = ("lowercase letters, digits, '-' and '.', starting and ending with a letter or"
            f" digit, at most {APP_MAX} characters (it names ConfigMaps and is a label value)")


class InvalidInput(ValueError):
    """An option that cannot name or label a Kubernetes object; raised before any request."""


def validate_app(app: str) -> None:
    if not _APP.fullmatch(app or "") or len(app) > APP_MAX:
        raise InvalidInput(f"app {app!r} is not valid: {APP_RULE}")


def labels(app: str, **extra: str) -> dict[str, str]:
    return {NAME_LABEL: app, MANAGED_BY_LABEL: MANAGED_BY, **extra}


def configmap(namespace: str, name: str, labels: dict[str, str], data: dict[str, str]
              ) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
            "data": dict(data)}


def diff_text(data: dict[str, Any] | None) -> str:
    """A document as the diff shows it: sorted, indented JSON; "" for none."""
    if data is None:
        return ""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


class ConfigMaps(Protocol):
    """The requests the lock and the record make. Objects are JSON dicts; errors are
    KubeApiError (the server answered with an error status) or ApiUnreachable."""

    host: str
    requests: list[str]

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The ConfigMap; None when it does not exist."""

    def list(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST: KubeApiError 409 when a ConfigMap of that name exists."""

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        """PUT of `body`, whose metadata.resourceVersion makes it conditional (409 when the
        object changed since it was read)."""

    def delete(self, namespace: str, name: str, uid: str | None = None,
               resource_version: str | None = None) -> bool:
        """DELETE, conditional on uid and resourceVersion when given (409 when the object
        changed since it was read); False when it did not exist."""


def connect(factory: Callable[[], Any], requests: list[str] | None = None,
            request_timeout: tuple[float, float] = (10.0, 30.0)) -> ClientConfigMaps:
    """ClientConfigMaps over the ApiClient that `factory` makes, e.g.
    `lambda: get_api_client(module=module)` (kubernetes.core's K8SClient, whose creation
    already asks the API server for its version and resources): its network and status
    errors become ApiUnreachable and KubeApiError."""
    return ClientConfigMaps(start_client(factory), requests, request_timeout)


class ClientConfigMaps:
    """`ConfigMaps` over the kubernetes ApiClient; answers as raw JSON.

    Plain requests through the ApiClient (`watch.raw_request`) rather than the typed
    CoreV1Api, which loads every API and model class for the five ConfigMap calls needed
    here."""

    def __init__(self, api_client: Any, requests: list[str] | None = None,
                 request_timeout: tuple[float, float] = (10.0, 30.0)) -> None:
        if not HAS_KUBERNETES:
            raise ImportError("the kubernetes Python library is required")
        self.host = str(api_client.configuration.host)
        self.requests = requests if requests is not None else []
        self._client = api_client
        self._timeout = request_timeout

    def _call(self, what: str, method: str, path: str, query: list[tuple[str, str]] | None = None,
              body: dict[str, Any] | None = None) -> Any:
        self.requests.append(what)
        return json.loads(raw_request(self._client, method, path, query, body,
                                      timeout=self._timeout).data)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call(f"GET v1 ConfigMap {namespace}/{name}", "GET",
                              f"/api/v1/namespaces/{namespace}/configmaps/{name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._call(f"LIST v1 ConfigMap {namespace} labelSelector={selector}", "GET",
                          f"/api/v1/namespaces/{namespace}/configmaps",
                          query=[("labelSelector", selector)]).get("items") or []

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._call(f"POST v1 ConfigMap {namespace}/{body['metadata']['name']}", "POST",
                          f"/api/v1/namespaces/{namespace}/configmaps", body=body)

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        version = (body.get("metadata") or {}).get("resourceVersion")
        return self._call(f"PUT v1 ConfigMap {namespace}/{name} (resourceVersion {version})",
                          "PUT", f"/api/v1/namespaces/{namespace}/configmaps/{name}", body=body)

    def delete(self, namespace: str, name: str, uid: str | None = None,
               resource_version: str | None = None) -> bool:
        preconditions = {key: value for key, value in
                         (("uid", uid), ("resourceVersion", resource_version)) if value}
        what = f"DELETE v1 ConfigMap {namespace}/{name}"
        if preconditions:
            what += " (if " + ", ".join(f"{k} {v}" for k, v in preconditions.items()) + ")"
        try:
            self._call(what, "DELETE", f"/api/v1/namespaces/{namespace}/configmaps/{name}",
                       body={"apiVersion": "v1", "kind": "DeleteOptions",
                             "preconditions": preconditions})
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True
