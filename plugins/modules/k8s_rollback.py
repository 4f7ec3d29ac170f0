#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_rollback
short_description: Roll a Deployment or StatefulSet back to a chosen release and wait for health
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Rolls a Deployment (or a StatefulSet) back to the previous release, to a chosen revision
    number, or to a chosen release id, the way C(kubectl rollout undo) does - it puts the pod
    template of the chosen ReplicaSet (ControllerRevision for a StatefulSet) back into the
    workload's C(spec.template) - and then waits until the rollback is healthy, failing fast
    with a diagnosis when the restored release crash-loops, cannot pull its image, is
    OOM-killed or never becomes ready.
  - Why not M(kubernetes.core.k8s_rollback) - it only goes back to the revision numbered one
    less than the current one (which no longer exists after a first rollback), replaces all
    the workload's annotations, cannot target a release, does not support StatefulSets, and
    does not wait.
  - The release id is what the role C(prodready.deploy.k8s_rollout) stamps - the pod template
    annotation (or label) C(prodready.io/release-id), else the C(kubernetes.io/change-cause)
    annotation the Deployment controller copies onto each ReplicaSet.
  - Every check happens before anything is written - an unknown revision or release id, a
    workload without a previous revision, a paused Deployment, or a missing workload fail the
    task and change nothing.
  - The rollback is one JSON patch that replaces C(spec.template), sets the annotation
    C(kubernetes.io/change-cause) to V(rollback to <release id>) (or V(rollback to revision
    <n>) when the target has no release id) and C(prodready.io/release-id) to the target's
    release id. It carries the C(resourceVersion) that was read, so a change made by someone
    else in between is never overwritten - the API server refuses the patch and the task
    fails.
  - Idempotent when the target is named - when the workload already runs the target's pod
    template, nothing is written and RV(ignore:changed) is V(false). The default target, the
    previous revision, is relative to the current one, so a second run rolls back again (as
    C(kubectl rollout undo) does); name O(release_id) for a task that can run twice.
  - The controller gives the restored ReplicaSet or ControllerRevision the next revision
    number; RV(to_revision) reports it.
options:
  name:
    description: Name of the Deployment or StatefulSet.
    type: str
    required: true
  namespace:
    description: Namespace of the workload.
    type: str
    required: true
  kind:
    description: Kind of the workload.
    type: str
    choices: [Deployment, StatefulSet]
    default: Deployment
  revision:
    description:
      - Roll back to this revision number - the C(deployment.kubernetes.io/revision)
        annotation of a ReplicaSet, or the C(revision) of a ControllerRevision, as
        C(kubectl rollout history) lists them.
      - Mutually exclusive with O(release_id). Without either, the target is the previous
        revision - the newest one whose pod template differs from the one the workload runs.
    type: int
  release_id:
    description:
      - Roll back to the newest revision that carries this release id.
      - Mutually exclusive with O(revision).
    type: str
  wait:
    description:
      - Wait until the rollback is complete - every replica updated, ready and available -
        and fail fast when it cannot become healthy.
      - A Deployment is watched by the rollout watcher of
        M(prodready.deploy.k8s_rollout_status), which fails within seconds on
        C(CrashLoopBackOff), C(ImagePullBackOff), C(CreateContainerConfigError), an OOM kill,
        a container that keeps exiting, a pod not ready after O(ready_timeout), an
        unschedulable pod, or a passed progress deadline.
      - A StatefulSet is polled until its rolling update is complete, as
        C(kubectl rollout status) decides it; it fails only when O(timeout) runs out. A
        StatefulSet with the C(OnDelete) update strategy is refused, since its pods take the
        restored template only when deleted - set O(wait=false) for it.
      - Also waits, and so checks the health of the release, when the workload already ran the
        target.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for the rollback to complete before failing.
    type: int
    default: 600
  ready_timeout:
    description:
      - Seconds a container of a new pod may run without becoming ready before the rollback
        is declared failed, even when O(timeout) has not run out. Deployments only.
    type: int
    default: 120
  api_grace:
    description:
      - Seconds to keep trying while the Kubernetes API is unreachable or answers 429/5xx,
        at the start and during the wait (once a second). A rollback is what restores the
        service, so it rides out an API server restart instead of failing at the first
        refused connection. V(0) fails at once.
    type: int
    default: 60
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the history and reports the target, the revisions and the diff; writes nothing.
  diff_mode:
    support: full
    details: Before and after of the pod template, with its release id, images and change-cause.
  platform:
    platforms: all
requirements:
  - kubernetes >= 24.2.0 (Python library)
  - PyYAML >= 3.11
notes:
  - The identity needs C(get) and C(patch) on the workload and C(list) on ReplicaSets (or
    C(list) and C(get) on ControllerRevisions); waiting on a Deployment also lists pods and
    events and reads C(pods/log).
seealso:
  - module: prodready.deploy.k8s_rollout_status
  - module: kubernetes.core.k8s_rollback
  - name: kubectl rollout undo
    description: The command whose mechanics this module follows.
    link: https://kubernetes.io/docs/reference/kubectl/generated/kubectl_rollout/kubectl_rollout_undo/
"""

EXAMPLES = r"""
---
- name: Roll the web Deployment back to the previous release and wait until it is healthy
  prodready.deploy.k8s_rollback:
    name: web
    namespace: shop

- name: Roll back to a known good release (idempotent)
  prodready.deploy.k8s_rollback:
    name: web
    namespace: shop
    release_id: r-2026.11.27-1
  register: rollback

- name: Show where it went
  ansible.builtin.debug:
    msg: >-
      {{ rollback.previous.release_id }} -> {{ rollback.target.release_id }}
      in {{ rollback.elapsed }} s

- name: Roll a StatefulSet back to revision 4 without waiting
  prodready.deploy.k8s_rollback:
    kind: StatefulSet
    name: queue
    namespace: shop
    revision: 4
    wait: false
    kubeconfig: /etc/deploy/kubeconfig
"""

RETURN = r"""
kind:
  description: Kind of the workload.
  returned: always
  type: str
  sample: Deployment
from_revision:
  description: Revision number the workload ran before the rollback.
  returned: when the history could be read
  type: int
  sample: 3
to_revision:
  description:
    - Revision number the workload has after the rollback. The controller numbers the restored
      ReplicaSet anew, so this is not the target's old number.
    - In check mode, and when the controller has not yet observed the change, the number it
      will give (the highest kept revision plus one).
  returned: when the history could be read
  type: int
  sample: 4
target:
  description: The revision rolled back to, as it was before the rollback.
  returned: when the history could be read
  type: dict
  contains:
    revision:
      description: Its revision number.
      type: int
      sample: 2
    release_id:
      description: Its release id, null when it carries none.
      type: str
      sample: r2
    images:
      description: Images of its init containers, then of its containers.
      type: list
      elements: str
      sample: ["registry.example/web@sha256:4f1c..."]
previous:
  description: The revision the workload ran before the rollback; same keys as RV(target).
  returned: when the history could be read
  type: dict
  sample: {"revision": 3, "release_id": r3, "images": ["registry.example/web@sha256:9ab0..."]}
change_cause:
  description: The change-cause annotation the rollback sets; null when nothing is written.
  returned: when the history could be read
  type: str
  sample: rollback to r2
history:
  description: The revisions the controller kept, oldest first, as read before the rollback.
  returned: when the history could be read
  type: list
  elements: dict
  sample:
    - {"revision": 2, "release_id": r2, "images": ["web:2"], "name": web-6c9f7d8b5d,
       "created": "2026-11-27T10:00:00Z", "replicas": 0}
requests:
  description: The API requests the module made, in order.
  returned: always
  type: list
  elements: str
  sample:
    - GET apps/v1 Deployment shop/web
    - LIST apps/v1 ReplicaSet shop labelSelector=app=web
    - PATCH apps/v1 Deployment shop/web (application/json-patch+json)
    - WATCH apps/v1 Deployment shop/web (rollout watcher)
status:
  description: V(complete) when the rollback became healthy, V(failed) when it did not.
  returned: when O(wait) is true and not in check mode
  type: str
  sample: complete
elapsed:
  description: Seconds from the write of the rollback (or from the start of the wait when
    nothing was written) until it was healthy or declared failed.
  returned: when O(wait) is true and not in check mode
  type: float
  sample: 4.2
reason:
  description: Why the rollback was declared failed, in one sentence from the watcher.
  returned: when the wait failed
  type: str
  sample: "pod web-6c9f7d8b5d-x2x4q container web CrashLoopBackOff (exit code 1, 3 restarts):
    KeyError: 'DB_URL'"
diagnosis:
  description:
    - The rollout watcher's diagnosis of the failure, as M(prodready.deploy.k8s_rollout_status)
      returns it in its C(failure) - the reason, the pod and container, the image, the exit code
      and restart count, hints, the last events of the pod and the last lines of its log.
    - Null for a StatefulSet, whose wait only times out.
  returned: when the wait failed
  type: dict
  sample: {"reason": CrashLoopBackOff, "pod": web-6c9f7d8b5d-x2x4q, "container": web,
           "exit_code": 1, "restart_count": 3, "events": [], "logs": ["KeyError: 'DB_URL'"]}
ready_pods:
  description:
    - The target revision's pods that were Ready, addressed and not being deleted when the
      wait ended - C(name) and C(ip), as M(prodready.deploy.k8s_rollout_status) returns them. A
      check that the rolled-back release serves can go to them at once.
  returned: when O(wait) is true, not in check mode, and O(kind=Deployment)
  type: list
  elements: dict
  sample: [{"name": web-5b8c6d7f9a-q7m2z, "ip": 10.244.0.12}]
timeline:
  description: What the rollout watcher saw, with seconds since the wait began.
  returned: when O(wait) is true, not in check mode, and O(kind=Deployment)
  type: list
  elements: dict
  sample:
    - {"t": 0.03, "event": "new ReplicaSet web-6c9f7d8b5d (revision 4)"}
    - {"t": 1.05, "event": "rollout complete"}
"""

import json
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
    CoreException,
)

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.history import (
    HISTORY_KIND,
    REVISION_ANNOTATION,
    HistoryError,
    check_waitable,
    label_selector,
    plan,
    statefulset_rollout,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.rollout import (
    Policy,
    PolicyError,
    RolloutError,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    TRANSIENT_STATUSES,
    ApiUnreachable,
    ClientApi,
    KubeApiError,
    WatchOptions,
    connection_reason,
    pool_url,
    ride_out,
    watch,
)

try:
    from kubernetes.dynamic.exceptions import DynamicApiError
    from urllib3.exceptions import HTTPError
except ImportError:  # AnsibleK8SModule reports the missing library

    class DynamicApiError(Exception):  # type: ignore[no-redef]
        """Stands in for the client's error class; never raised."""

    class HTTPError(Exception):  # type: ignore[no-redef]
        """Stands in for urllib3's error class; never raised."""

JSON_PATCH = "application/json-patch+json"


class ApiFailure(Exception):
    """An API request failed; the message says which and why."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class WorkloadMissingError(ApiFailure):
    """The workload to roll back does not exist."""


class Api:
    """The few requests a rollback makes, each recorded in `requests`."""

    def __init__(self, client: Any, namespace: str, requests: list[str]) -> None:
        self.client = client
        self.namespace = namespace
        self.requests = requests

    def _call(self, what: str, func: Any, *args: Any, record: bool = True, **kwargs: Any
              ) -> dict[str, Any]:
        if record:
            self.requests.append(what)
        try:
            return func(*args, **kwargs).to_dict()
        except DynamicApiError as exc:
            raise ApiFailure(f"{what}: {exc.status} {exc.reason}: {_api_message(exc)}",
                             exc.status) from exc

    def get(self, kind: str, name: str, record: bool = True) -> dict[str, Any]:
        """One object; `record=False` for the polls of a wait, which say so once."""
        resource = self.client.resource(kind, "apps/v1")
        return self._call(f"GET apps/v1 {kind} {self.namespace}/{name}", self.client.get,
                          resource, name=name, namespace=self.namespace, record=record)

    def list(self, kind: str, selector: str) -> list[dict[str, Any]]:
        resource = self.client.resource(kind, "apps/v1")
        found = self._call(f"LIST apps/v1 {kind} {self.namespace} labelSelector={selector}",
                           self.client.get, resource, namespace=self.namespace,
                           label_selector=selector)
        return found.get("items") or []

    def patch(self, kind: str, name: str, patch: list[dict[str, Any]]) -> dict[str, Any]:
        resource = self.client.resource(kind, "apps/v1")
        return self._call(f"PATCH apps/v1 {kind} {self.namespace}/{name} ({JSON_PATCH})",
                          self.client.patch, resource, patch, name=name,
                          namespace=self.namespace, content_type=JSON_PATCH)


def _api_message(exc: Any) -> str:
    """The API server's own message (its Status object), else the client's text."""
    try:
        return json.loads(exc.body)["message"]
    except (TypeError, ValueError, KeyError, AttributeError):
        return str(exc.summary() if hasattr(exc, "summary") else exc)


def observed_revision(api: Api, kind: str, name: str, generation: int | None,
                      deadline: float) -> int | None:
    """The revision number the controller gave the workload once it observed `generation`;
    None when it has not done so before `deadline`."""
    api.requests.append(f"POLL apps/v1 {kind} {api.namespace}/{name} until generation "
                        f"{generation} is observed")
    while True:
        workload = api.get(kind, name, record=False)
        status = workload.get("status") or {}
        if generation is None or (status.get("observedGeneration") or 0) >= generation:
            if kind == "Deployment":
                annotations = (workload.get("metadata") or {}).get("annotations") or {}
                value = annotations.get(REVISION_ANNOTATION)
                return int(value) if value else None
            update = status.get("updateRevision")
            return int(api.get("ControllerRevision", update).get("revision")) if update \
                else None
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.5)


def wait_for_deployment(api: Api, name: str, options: WatchOptions) -> dict[str, Any]:
    """The rollout watcher of k8s_rollout_status: fails as soon as a new pod shows
    CrashLoopBackOff, ImagePullBackOff, an OOM kill, repeated exits or no readiness."""
    api.requests.append(f"WATCH apps/v1 Deployment {api.namespace}/{name} (rollout watcher)")
    # The watcher takes the plain ApiClient that kubernetes.core's dynamic client wraps.
    outcome = watch(ClientApi(api.client.client.client), api.namespace, name, options)
    prefix = f"Rollout of Deployment {api.namespace}/{name} failed: "
    return {"status": outcome.status, "revision": outcome.revision,
            "reason": outcome.message.removeprefix(prefix) if outcome.failed else None,
            "diagnosis": outcome.failure, "timeline": outcome.timeline,
            "ready_pods": outcome.ready_pods}


def wait_for_statefulset(api: Api, name: str, timeout: int) -> dict[str, Any]:
    """Poll the StatefulSet until its rolling update is complete, as kubectl rollout status
    decides it; the rollout watcher covers Deployments only, so no failure is told early."""
    api.requests.append(f"POLL apps/v1 StatefulSet {api.namespace}/{name} until rolled out")
    deadline = time.monotonic() + timeout
    while True:
        done, progress = statefulset_rollout(api.get("StatefulSet", name, record=False))
        if done:
            return {"status": "complete"}
        if time.monotonic() >= deadline:
            return {"status": "failed", "reason": f"not complete after {timeout} s: {progress}"}
        time.sleep(1)


def connect(module: Any, kind: str, name: str, requests: list[str]) -> tuple[Api, dict[str, Any]]:
    """The client and the workload. An API that does not answer, or answers 429/5xx, raises
    ApiUnreachable or KubeApiError, which `ride_out` retries."""
    namespace = module.params["namespace"]
    try:
        api = Api(get_api_client(module=module), namespace, requests)
        return api, api.get(kind, name)
    except HTTPError as exc:
        raise ApiUnreachable(pool_url(exc) or "the address the kubeconfig names",
                             connection_reason(exc)) from None
    except ApiFailure as exc:
        if exc.status == 404:
            raise WorkloadMissingError(
                f"it does not exist in namespace {namespace} ({exc})") from exc
        if exc.status in TRANSIENT_STATUSES:
            raise KubeApiError(exc.status, str(exc)) from None
        raise


def run(module: Any, result: dict[str, Any]) -> None:
    params = module.params
    kind, name = params["kind"], params["name"]
    # Built first: a bad timeout fails before anything is read or written.
    options = WatchOptions(timeout=float(params["timeout"]),
                           api_grace=float(params["api_grace"]),
                           policy=Policy(ready_timeout=float(params["ready_timeout"])))
    api, workload = ride_out(lambda: connect(module, kind, name, result["requests"]),
                             options.api_grace)
    owned = api.list(HISTORY_KIND[kind], label_selector((workload.get("spec") or {})
                                                        .get("selector")))
    rollback = plan(kind, workload, owned, revision=params["revision"],
                    release_id=params["release_id"])
    if params["wait"]:
        check_waitable(kind, workload)
    result.update(
        changed=rollback.changed, from_revision=rollback.from_revision,
        to_revision=rollback.to_revision, target=rollback.target.summary(),
        previous=rollback.previous, change_cause=rollback.change_cause,
        history=[rev.describe() for rev in rollback.history.revisions])
    if module._diff:
        result["diff"] = rollback.diff
    if module.check_mode:
        return
    started = time.monotonic()
    generation = None
    if rollback.changed:
        try:
            patched = api.patch(kind, name, rollback.patch)
        except ApiFailure as exc:
            if exc.status == 409:
                raise ApiFailure(f"it changed after it was read, so nothing was written; run "
                                 f"again to plan from its new state ({exc})", 409) from exc
            raise
        generation = (patched.get("metadata") or {}).get("generation")
    revision = None
    if params["wait"]:
        outcome = (wait_for_deployment(api, name, options) if kind == "Deployment" else
                   wait_for_statefulset(api, name, params["timeout"]))
        result.update(status=outcome["status"], elapsed=round(time.monotonic() - started, 1))
        for key in ("timeline", "ready_pods"):
            if outcome.get(key) is not None:
                result[key] = outcome[key]
        if outcome["status"] != "complete":
            result.update(reason=outcome.get("reason"), diagnosis=outcome.get("diagnosis"))
        revision = outcome.get("revision")
    if revision is None and rollback.changed:
        revision = observed_revision(api, kind, name, generation,
                                     time.monotonic() + min(params["timeout"], 30))
    if revision is not None:
        result["to_revision"] = revision


def main() -> None:
    argument_spec = {
        **AUTH_ARG_SPEC,
        "name": {"type": "str", "required": True},
        "namespace": {"type": "str", "required": True},
        "kind": {"type": "str", "default": "Deployment",
                 "choices": ["Deployment", "StatefulSet"]},
        "revision": {"type": "int"},
        "release_id": {"type": "str"},
        "wait": {"type": "bool", "default": True},
        "timeout": {"type": "int", "default": 600},
        "ready_timeout": {"type": "int", "default": 120},
        "api_grace": {"type": "int", "default": 60},
    }
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec,
                              mutually_exclusive=[("revision", "release_id")],
                              supports_check_mode=True)
    params = module.params
    ref = f"{params['kind']} {params['namespace']}/{params['name']}"
    result: dict[str, Any] = {"changed": False, "kind": params["kind"], "requests": []}
    try:
        run(module, result)
    except (HistoryError, WorkloadMissingError, PolicyError) as exc:
        module.fail_json(msg=f"Cannot roll back {ref}: {exc}", **result)
    except (ApiFailure, ApiUnreachable, KubeApiError) as exc:
        module.fail_json(msg=f"Failed to roll back {ref} ({exc})", **result)
    except RolloutError as exc:
        module.fail_json(msg=f"Failed to roll back {ref} (the rollout watcher: {exc})",
                         **result)
    except HTTPError as exc:
        module.fail_json(msg=f"Failed to roll back {ref} (cannot reach the Kubernetes API: "
                             f"{connection_reason(exc)})", **result)
    except CoreException as exc:
        module.fail_json(msg=f"Failed to roll back {ref} ({exc})", **result)
    if result.get("status") == "failed":
        target = result["target"]
        label = (f"{target['release_id']} (revision {target['revision']})"
                 if target["release_id"] else f"revision {target['revision']}")
        module.fail_json(msg=f"Rollback of {ref} to {label} failed: {result.get('reason')}",
                         **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
