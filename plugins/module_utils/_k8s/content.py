# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""A Deployment's Secrets and ConfigMaps under names that carry a hash of their content.

A pod template that names ``app-secret-5f0c1d2e3a`` keeps naming that content when a later
release ships other content under ``app-secret-9b8a7c6d5e``: rolling the template back to an
earlier ReplicaSet's brings back that release's settings too, which one shared, overwritten
``app-secret`` cannot do. The objects are immutable; an object whose content-of label names
the Deployment and that no pod template of the Deployment or of its ReplicaSets refers to
any more (the controller keeps ``revisionHistoryLimit`` of them) is deleted.

`plan` decides from plain JSON dicts; `ConfigObjects` reads and writes through the small
`ContentApi` interface, so unit tests drive it with fakes and `ClientContentApi` talks to the
API server in plain requests (`watch.raw_request`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.rollout import (
    RolloutError,
    selector_string,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    KubeApiError,
    raw_request,
)

CONTENT_LABEL = "prodready.io/content-of"
KINDS = ("Secret", "ConfigMap")
HASH_LENGTH = 10
_PATHS = {"Secret": "secrets", "ConfigMap": "configmaps"}
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
# The longest base name: the hash suffix ("-" + 10) must still fit in 253 characters.
MAX_BASE = 253 - 1 - HASH_LENGTH
_METADATA_ONLY = "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"


class ContentError(RolloutError):
    """Bad input, or an object the module cannot create or delete."""


def content_hash(deployment: str, kind: str, data: dict[str, str]) -> str:
    """The first HASH_LENGTH hex digits of the sha256 of the Deployment's name, the kind and
    the sorted data: two Deployments that ship the same base name never share an object."""
    canonical = json.dumps({"of": deployment, "kind": kind, "data": data}, sort_keys=True,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:HASH_LENGTH]


def hashed_name(deployment: str, base: str, kind: str, data: dict[str, str]) -> str:
    return f"{base}-{content_hash(deployment, kind, data)}"


def normalize(objects: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Integers become their text, as a YAML inventory's ``PORT: 6379`` means; anything else
    is left for `check_inputs` to judge (a float such as 1.10 has no single spelling)."""
    def text(value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value
    return {kind: {base: ({key: text(value) for key, value in data.items()}
                          if isinstance(data, dict) else data)
                   for base, data in (named or {}).items()}
            for kind, named in objects.items()}


def check_inputs(objects: dict[str, dict[str, dict[str, Any]]], deployment: str = "x",
                 ) -> list[str]:
    """Problems with the Deployment's name and the wanted objects (kind -> base name ->
    data), each naming the fix."""
    problems = []
    if not _NAME.match(deployment) or len(deployment) > 63:
        problems.append(f"deployment {deployment!r} cannot be the value of the"
                        f" {CONTENT_LABEL} label: lower-case letters, digits, '-' and '.',"
                        " at most 63 characters")
    for kind, named in objects.items():
        for base, data in named.items():
            if not _NAME.match(base) or len(base) > MAX_BASE:
                problems.append(
                    f"{kind} name {base!r} is not a valid base name: lower-case letters,"
                    f" digits, '-' and '.', starting and ending with a letter or digit, at"
                    f" most {MAX_BASE} characters (a {HASH_LENGTH}-digit hash is appended)")
            if not isinstance(data, dict):
                problems.append(f"{kind} {base}: the data must be a mapping of key to text")
                continue
            for key, value in data.items():
                if not re.match(r"^[-._a-zA-Z0-9]+$", str(key)) or len(str(key)) > 253:
                    problems.append(f"{kind} {base}: key {key!r} is not a valid key (letters,"
                                    " digits, '-', '_' and '.')")
                if not isinstance(value, str):
                    problems.append(f"{kind} {base}: the value of key {key!r} must be text"
                                    f" or an integer, not a {type(value).__name__}; quote it")
    return problems


def referenced(pod_spec: dict[str, Any]) -> set[tuple[str, str]]:
    """The (kind, name) of every Secret and ConfigMap a pod spec refers to: volumes
    (projected ones too), envFrom and env of every container, imagePullSecrets."""
    refs: set[tuple[str, str]] = set()

    def add(kind: str, name: Any) -> None:
        if name:
            refs.add((kind, str(name)))

    for volume in pod_spec.get("volumes") or []:
        add("Secret", (volume.get("secret") or {}).get("secretName"))
        add("ConfigMap", (volume.get("configMap") or {}).get("name"))
        for source in (volume.get("projected") or {}).get("sources") or []:
            add("Secret", (source.get("secret") or {}).get("name"))
            add("ConfigMap", (source.get("configMap") or {}).get("name"))
    for group in ("initContainers", "containers", "ephemeralContainers"):
        for container in pod_spec.get(group) or []:
            for source in container.get("envFrom") or []:
                add("Secret", (source.get("secretRef") or {}).get("name"))
                add("ConfigMap", (source.get("configMapRef") or {}).get("name"))
            for var in container.get("env") or []:
                value_from = var.get("valueFrom") or {}
                add("Secret", (value_from.get("secretKeyRef") or {}).get("name"))
                add("ConfigMap", (value_from.get("configMapKeyRef") or {}).get("name"))
    for secret in pod_spec.get("imagePullSecrets") or []:
        add("Secret", secret.get("name"))
    return refs


def in_use(deployment: dict[str, Any] | None, replicasets: list[dict[str, Any]],
           ) -> set[tuple[str, str]]:
    """What the Deployment's template and its ReplicaSets' templates refer to."""
    refs: set[tuple[str, str]] = set()
    for workload in ([deployment] if deployment else []) + replicasets:
        refs |= referenced(((workload.get("spec") or {}).get("template") or {}).get("spec") or {})
    return refs


@dataclass
class Plan:
    names: dict[str, dict[str, str]] = field(default_factory=dict)  # kind -> base -> name
    create: list[tuple[str, str, str]] = field(default_factory=list)  # kind, base, name
    prune: list[tuple[str, str]] = field(default_factory=list)  # kind, name


def plan(deployment: str, objects: dict[str, dict[str, dict[str, str]]],
         existing: set[tuple[str, str]], candidates: set[tuple[str, str]],
         used: set[tuple[str, str]] | None) -> Plan:
    """What to create (wanted, not in ``existing``) and, when ``used`` is given, what to
    delete: the ``candidates`` (this Deployment's labelled content, and objects of an earlier
    layout) that are neither wanted now nor referred to by a template in ``used``."""
    result = Plan()
    wanted: set[tuple[str, str]] = set()
    for kind in KINDS:
        for base, data in sorted((objects.get(kind) or {}).items()):
            name = hashed_name(deployment, base, kind, data)
            result.names.setdefault(kind, {})[base] = name
            wanted.add((kind, name))
            if (kind, name) not in existing:
                result.create.append((kind, base, name))
    if used is not None:
        result.prune = sorted(candidates - wanted - used)
    return result


def parse_named(items: list[str]) -> tuple[list[tuple[str, str]], list[str]]:
    """``Kind/name`` strings as (kind, name), and a problem for each one that is not a
    Secret or ConfigMap."""
    named, problems = [], []
    for item in items:
        kind, _sep, name = item.partition("/")
        if kind in KINDS and name:
            named.append((kind, name))
        else:
            problems.append(f"prune_named: {item!r} is not Secret/<name> or ConfigMap/<name>")
    return named, problems


class ContentApi(Protocol):
    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None: ...

    def list_replicasets(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def list_metadata(self, kind: str, namespace: str, selector: str | None,
                      ) -> list[dict[str, Any]]: ...

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> bool: ...

    def delete(self, kind: str, namespace: str, name: str) -> bool: ...


@dataclass
class Outcome:
    names: dict[str, dict[str, str]]
    created: list[str]
    pruned: list[str]
    kept: list[str]
    warnings: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.pruned)

    def to_dict(self) -> dict[str, Any]:
        return {"names": self.names, "created": self.created, "pruned": self.pruned,
                "kept": self.kept}


class ConfigObjects:
    """Create the wanted objects that are missing and prune the unused ones."""

    def __init__(self, api: ContentApi, namespace: str, deployment: str,
                 labels: dict[str, str] | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.deployment = deployment
        self.base_labels = dict(labels or {})
        self.labels = {**self.base_labels, CONTENT_LABEL: deployment}
        self.warnings: list[str] = []

    def _used(self) -> set[tuple[str, str]] | None:
        """What the Deployment's template and the ReplicaSets its selector matches (owned
        or not yet adopted: the careful reading) refer to; None when the selector cannot be
        read, so that nothing is pruned."""
        deployment = self.api.read_deployment(self.namespace, self.deployment)
        if deployment is None:
            return set()
        try:  # the watcher's reading of the selector, matchExpressions included
            selector = selector_string((deployment.get("spec") or {}).get("selector"))
        except RolloutError as exc:
            self.warnings.append(
                f"not pruning: the selector of Deployment {self.namespace}/{self.deployment}"
                f" cannot be read as a label query ({exc}), so the ReplicaSets that may need"
                " the content are unknown")
            return None
        return in_use(deployment, self.api.list_replicasets(self.namespace, selector))

    def body(self, kind: str, name: str, data: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "apiVersion": "v1", "kind": kind, "immutable": True,
            "metadata": {"name": name, "namespace": self.namespace, "labels": self.labels},
        }
        if kind == "Secret":
            body.update(type="Opaque", stringData=data)
        else:
            body["data"] = data
        return body

    def _named(self, named: list[tuple[str, str]]) -> set[tuple[str, str]]:
        """Those of `named` that exist and carry every label the objects are given."""
        query = ",".join(f"{key}={value}" for key, value in sorted(self.base_labels.items()))
        found: set[tuple[str, str]] = set()
        for kind in sorted({kind for kind, _name in named}):
            present = {item["metadata"]["name"]
                       for item in self.api.list_metadata(kind, self.namespace, query or None)}
            found |= {(k, name) for k, name in named if k == kind and name in present}
        return found

    def apply(self, objects: dict[str, dict[str, dict[str, str]]], prune: bool = True,
              check_mode: bool = False, prune_named: list[str] | None = None) -> Outcome:
        """Every input is checked (ContentError naming each problem) before the API is asked
        anything. ``prune_named``: ``Kind/name`` of objects an earlier layout kept."""
        named, named_problems = parse_named(prune_named or [])
        problems = check_inputs(objects, self.deployment) + named_problems
        if problems:
            raise ContentError("; ".join(problems))
        labelled: set[tuple[str, str]] = set()
        mine = f"{CONTENT_LABEL}={self.deployment}"
        for kind in KINDS:
            for item in self.api.list_metadata(kind, self.namespace, mine):
                labelled.add((kind, item["metadata"]["name"]))
        # Objects of an earlier layout (fixed names), pruned by the same rule.
        candidates = labelled | (self._named(named) if prune and named else set())
        decided = plan(self.deployment, objects, labelled, candidates,
                       self._used() if prune else None)
        created, pruned = [], []
        for kind, base, name in decided.create:
            # A 409 means the name exists without the label (made by other hands): with the
            # hash in the name, that is this content.
            if check_mode or self.api.create(kind, self.namespace,
                                             self.body(kind, name, objects[kind][base])):
                created.append(f"{kind}/{name}")
        for kind, name in decided.prune:
            if not check_mode:
                self.api.delete(kind, self.namespace, name)
            pruned.append(f"{kind}/{name}")
        kept = sorted(f"{kind}/{name}" for kind, name in candidates
                      if f"{kind}/{name}" not in pruned)
        return Outcome(decided.names, created, pruned, kept, self.warnings)


class ClientContentApi:
    """`ContentApi` over the kubernetes ApiClient in plain requests. Lists read metadata
    only: the module never reads a Secret's data. The client is made at the first request
    (``client_factory``), so bad input is refused before the API server is contacted."""

    def __init__(self, client_factory: Callable[[], Any],
                 request_timeout: tuple[float, float] = (10.0, 30.0)) -> None:
        self._factory = client_factory
        self._client: Any = None
        self._timeout = request_timeout

    def _request(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
                 body: Any = None, accept: str | None = None) -> Any:
        if self._client is None:
            self._client = self._factory()
        response = raw_request(self._client, method, path, query, body=body,
                               timeout=self._timeout, accept=accept)
        return json.loads(response.data or b"{}")

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._request("GET", f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list_replicasets(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        answer = self._request("GET", f"/apis/apps/v1/namespaces/{namespace}/replicasets",
                               [("labelSelector", selector)])
        return answer.get("items") or []

    def list_metadata(self, kind: str, namespace: str, selector: str | None,
                      ) -> list[dict[str, Any]]:
        query = [("labelSelector", selector)] if selector else []
        answer = self._request("GET", f"/api/v1/namespaces/{namespace}/{_PATHS[kind]}", query,
                               accept=_METADATA_ONLY)
        return answer.get("items") or []

    def create(self, kind: str, namespace: str, body: dict[str, Any]) -> bool:
        try:
            self._request("POST", f"/api/v1/namespaces/{namespace}/{_PATHS[kind]}", body=body)
        except KubeApiError as exc:
            if exc.status == 409:  # made in the meantime: same name, same content
                return False
            raise
        return True

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        try:
            self._request("DELETE", f"/api/v1/namespaces/{namespace}/{_PATHS[kind]}/{name}")
        except KubeApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True
