# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""An in-memory `ConfigMaps` with the API server's rules the lock and the record rely on:
POST refused with 409 when the name exists, PUT and DELETE refused with 409 when the
resourceVersion (or uid) given is not the current one, 404 as None/False."""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import KubeApiError

WRITES = ("POST", "PUT", "DELETE")


class FakeConfigMaps:
    host = "https://api.test:6443"

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.requests: list[str] = []
        self._versions = itertools.count(100)
        self._uids = itertools.count(1)
        self._seconds = itertools.count(0)
        # Called with (verb, name) before a request is served: lets a test act as another
        # writer between this run's read and its write.
        self.before: Callable[[str, str], None] | None = None

    # -- what a test sets up and inspects

    def put_object(self, namespace: str, name: str, data: dict[str, str],
                   labels: dict[str, str] | None = None, created: str | None = None,
                   ) -> dict[str, Any]:
        second = next(self._seconds)
        obj = {"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                            "uid": f"uid-{next(self._uids)}",
                            "resourceVersion": str(next(self._versions)),
                            "creationTimestamp": created or
                            f"2026-01-01T00:{second // 60:02d}:{second % 60:02d}Z"},
               "data": dict(data)}
        self.objects[(namespace, name)] = obj
        return copy.deepcopy(obj)

    def writes(self) -> list[str]:
        return [r for r in self.requests if r.split()[0] in WRITES]

    def _hook(self, verb: str, name: str) -> None:
        if self.before is not None:
            self.before(verb, name)

    # -- the ConfigMaps interface

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.requests.append(f"GET {namespace}/{name}")
        self._hook("GET", name)
        obj = self.objects.get((namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def list(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.requests.append(f"LIST {namespace} {selector}")
        wanted = [term.partition("=") for term in selector.split(",")]
        found = []
        for (ns, _name), obj in sorted(self.objects.items()):
            have = obj["metadata"]["labels"]
            if ns == namespace and all(key in have and (not sep or have[key] == value)
                                       for key, sep, value in wanted):
                found.append(copy.deepcopy(obj))
        return found

    def create(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        self.requests.append(f"POST {namespace}/{name}")
        self._hook("POST", name)
        if (namespace, name) in self.objects:
            raise KubeApiError(409, f'configmaps "{name}" already exists')
        return self.put_object(namespace, name, body.get("data") or {},
                               body["metadata"].get("labels"))

    def replace(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self.requests.append(f"PUT {namespace}/{name}")
        self._hook("PUT", name)
        current = self.objects.get((namespace, name))
        if current is None:
            raise KubeApiError(404, f'configmaps "{name}" not found')
        if body["metadata"].get("resourceVersion") != current["metadata"]["resourceVersion"]:
            raise KubeApiError(409, "the object has been modified")
        obj = copy.deepcopy(body)
        obj["metadata"]["resourceVersion"] = str(next(self._versions))
        self.objects[(namespace, name)] = obj
        return copy.deepcopy(obj)

    def delete(self, namespace: str, name: str, uid: str | None = None,
               resource_version: str | None = None) -> bool:
        self.requests.append(f"DELETE {namespace}/{name}")
        self._hook("DELETE", name)
        current = self.objects.get((namespace, name))
        if current is None:
            return False
        meta = current["metadata"]
        if (uid and uid != meta["uid"]) or (resource_version and
                                            resource_version != meta["resourceVersion"]):
            raise KubeApiError(409, "Precondition failed")
        del self.objects[(namespace, name)]
        return True


class Unconnectable:
    """A `connect` that fails the test when called: the options should have been refused
    before any request."""

    def __call__(self) -> Any:
        raise AssertionError("connect() was called")
