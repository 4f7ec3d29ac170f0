# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Is a Deployment's rollout complete, still progressing, or already failed?

Pure logic over the API objects as JSON dicts (camelCase keys, what `kubectl get -o json`
prints and what the API server sends): no client, no clock, no I/O. The watcher
(``watch.py``) fetches the objects and passes the time; everything decided here is
unit-tested on objects captured from a real cluster.

Kubernetes itself only calls a rollout failed when the Deployment's progress deadline
passes (``progressDeadlineSeconds``, 600 s by default). The pods of the new ReplicaSet
usually tell much sooner: a container in CrashLoopBackOff or ImagePullBackOff, an
OOM kill, a container that keeps exiting, one that never gets ready, a pod that no node
takes. `evaluate` reads those signs under a `Policy` and returns a `Verdict`.
"""

from __future__ import annotations

import copy
import datetime
import re
from dataclasses import dataclass, field
from typing import Any

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"

COMPLETE = "complete"
PROGRESSING = "progressing"
FAILED = "failed"

DEFAULT_FAIL_REASONS = (
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
)

# Reasons this module gives itself (the others are the kubelet's waiting reasons).
OOM_KILLED = "OOMKilled"
CRASH_THRESHOLD = "CrashThresholdReached"
READINESS_TIMEOUT = "ReadinessTimeout"
UNSCHEDULABLE = "Unschedulable"
FAILED_CREATE = "FailedCreate"
DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
PAUSED = "Paused"
TIMEOUT = "Timeout"

# Waiting reasons after which the container never ran: it has no logs to read.
_NEVER_STARTED = frozenset({
    "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
    "CreateContainerConfigError", "CreateContainerError", "ContainerCreating",
    "PodInitializing",
})

# A waiting reason the kubelet gives while it retries on its own: the Secret or ConfigMap
# exists, its watch cache has not synced yet (a busy or freshly started kubelet).
_KUBELET_RETRIES = re.compile(r"failed to sync (secret|configmap) cache")

# Failures whose best explanation is the end of the container's log.
_CRASHES = frozenset({"CrashLoopBackOff", CRASH_THRESHOLD, "RunContainerError"})

# The final line of a traceback or a Go panic: the most telling line of a crash's log.
_TELLING_LINE = re.compile(
    r"^(?:[A-Za-z_][\w.]*(?:Error|Exception|Abort|Exit|Interrupt|Failure)|panic|fatal error"
    r"|FATAL|Error): \S"
)
_RFC3339 = re.compile(
    r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$"
)
_PINNED = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")


class RolloutError(Exception):
    """Base of the errors of the rollout watcher; the message names the object and cause."""


class PolicyError(RolloutError, ValueError):
    """A policy value is out of range (for example a negative timeout)."""


@dataclass(frozen=True)
class Policy:
    """When the state of the new pods means the rollout has failed (seconds, counts)."""

    ready_timeout: float = 120.0
    crash_threshold: int = 2
    schedule_timeout: float = 60.0
    fail_reasons: frozenset[str] = frozenset(DEFAULT_FAIL_REASONS)

    def __post_init__(self) -> None:
        for name in ("ready_timeout", "schedule_timeout"):
            if getattr(self, name) < 0:
                raise PolicyError(f"{name} must be 0 or more seconds, got {getattr(self, name)}")
        if self.crash_threshold < 1:
            raise PolicyError(f"crash_threshold must be 1 or more, got {self.crash_threshold}")
        object.__setattr__(self, "fail_reasons", frozenset(self.fail_reasons))


@dataclass
class Failure:
    """Why the rollout failed, and where to look (pod, container, logs, events)."""

    reason: str
    message: str
    pod: str | None = None
    container: str | None = None
    image: str | None = None
    exit_code: int | None = None
    restart_count: int | None = None
    hints: list[str] = field(default_factory=list)
    # The object whose events explain the failure: ("Pod", name), ("ReplicaSet", name)...
    involved: tuple[str, str] | None = None
    # Which container instance has the telling log: "previous" (it restarted since),
    # "current", or None when the container never ran.
    log_source: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "message": self.message,
            "pod": self.pod,
            "container": self.container,
            "image": self.image,
            "exit_code": self.exit_code,
            "restart_count": self.restart_count,
            "hints": list(self.hints),
        }


@dataclass
class Verdict:
    """The state of a rollout at one moment."""

    state: str
    message: str
    failure: Failure | None = None
    new_replicaset: str | None = None
    revision: int | None = None
    previous_revision: int | None = None
    replicas: dict[str, int] = field(default_factory=dict)


# Reading the objects ---------------------------------------------------------------------


def parse_time(value: Any) -> float | None:
    """Seconds since the epoch of an API timestamp (RFC 3339), or None when absent/invalid."""
    if not isinstance(value, str):
        return None
    match = _RFC3339.match(value.strip())
    if not match:
        return None
    base, fraction, zone = match.groups()
    # Six fraction digits exactly: what datetime.fromisoformat takes before Python 3.11.
    micros = (fraction or ".").ljust(7, "0")[:7]
    text = base + micros + ("+00:00" if zone == "Z" else zone)
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except ValueError:
        return None


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


def _spec(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("spec") or {}


def name_of(obj: dict[str, Any] | None) -> str | None:
    return _meta(obj).get("name") if obj else None


def revision_of(obj: dict[str, Any] | None) -> int | None:
    """The deployment.kubernetes.io/revision annotation as an int, None when absent."""
    if not obj:
        return None
    value = (_meta(obj).get("annotations") or {}).get(REVISION_ANNOTATION)
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def desired_replicas(deployment: dict[str, Any]) -> int:
    replicas = _spec(deployment).get("replicas")
    return 1 if replicas is None else int(replicas)


def replica_counts(deployment: dict[str, Any]) -> dict[str, int]:
    """desired (spec) and updated/ready/available (status) replicas of the Deployment."""
    status = _status(deployment)
    return {
        "desired": desired_replicas(deployment),
        "updated": int(status.get("updatedReplicas") or 0),
        "ready": int(status.get("readyReplicas") or 0),
        "available": int(status.get("availableReplicas") or 0),
    }


def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for condition in _status(obj).get("conditions") or []:
        if condition.get("type") == kind:
            return condition
    return None


def selector_string(selector: dict[str, Any] | None) -> str:
    """A label selector (matchLabels, matchExpressions) as the API's query syntax."""
    selector = selector or {}
    parts = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, operator = expr.get("key"), expr.get("operator")
        values = ",".join(expr.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
        else:
            raise RolloutError(f"unsupported label selector operator {operator!r} for key {key!r}")
    if not parts:
        # An empty selector would match every pod of the namespace; apps/v1 forbids it.
        raise RolloutError("the Deployment has an empty selector")
    return ",".join(parts)


def _owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    uid = _meta(owner).get("uid")
    refs = _meta(obj).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def _without_hash(template: dict[str, Any] | None) -> dict[str, Any]:
    template = copy.deepcopy(template or {})
    labels = (template.get("metadata") or {}).get("labels")
    if labels:
        labels.pop(HASH_LABEL, None)
    return template


def _by_age(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(objs, key=lambda o: (parse_time(_meta(o).get("creationTimestamp")) or 0.0,
                                       _meta(o).get("name") or ""))


def owned_replicasets(deployment: dict[str, Any],
                      replicasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ReplicaSets the Deployment controls (a selector can match foreign ones)."""
    return [rs for rs in replicasets if _owned_by(rs, deployment)]


def find_new_replicaset(deployment: dict[str, Any],
                        replicasets: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ReplicaSet of the Deployment's current pod template, None until it exists.

    As the controller does: the oldest owned ReplicaSet whose template equals the
    Deployment's without the pod-template-hash label. The hash itself cannot be recomputed
    outside Go, so when no template matches (a field defaulted differently) the ReplicaSet
    with the Deployment's revision stands in, once the controller has observed the current
    generation and unless the Deployment is paused (then the revision is the old one's).
    """
    owned = _by_age(owned_replicasets(deployment, replicasets))
    wanted = _without_hash(_spec(deployment).get("template"))
    for rs in owned:
        if _without_hash(_spec(rs).get("template")) == wanted:
            return rs
    if _spec(deployment).get("paused") or not _observed(deployment):
        return None
    revision = revision_of(deployment)
    matches = [rs for rs in owned if revision is not None and revision_of(rs) == revision]
    return matches[0] if matches else None


def _has_replicas(rs: dict[str, Any]) -> bool:
    return bool(_spec(rs).get("replicas") or _status(rs).get("replicas"))


def find_previous_replicaset(deployment: dict[str, Any], replicasets: list[dict[str, Any]],
                             new_rs: dict[str, Any] | None) -> dict[str, Any] | None:
    """The revision the rollout replaces: the highest revision below the new one that still
    has replicas, else the highest revision below the new one (None for a first rollout)."""
    new_name = name_of(new_rs)
    new_revision = revision_of(new_rs)
    older = [rs for rs in owned_replicasets(deployment, replicasets)
             if name_of(rs) != new_name and revision_of(rs) is not None
             and (new_revision is None or revision_of(rs) < new_revision)]
    if not older:
        return None
    with_replicas = [rs for rs in older if _has_replicas(rs)]
    return max(with_replicas or older, key=lambda rs: revision_of(rs) or 0)


def pods_of(rs: dict[str, Any] | None, pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ReplicaSet's pods that are not being deleted, oldest first."""
    if rs is None:
        return []
    return _by_age([p for p in pods if _owned_by(p, rs) and not _meta(p).get("deletionTimestamp")])


def ready_pods(pods: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Name and IP of the pods that are Ready, have an IP and are not being deleted - where a
    check of the release can go straight away, without listing the pods again."""
    ready = []
    for pod in pods:
        condition = _condition(pod, "Ready")
        ip = _status(pod).get("podIP")
        if (ip and condition and condition.get("status") == "True"
                and not _meta(pod).get("deletionTimestamp")):
            ready.append({"name": name_of(pod) or "", "ip": ip})
    return ready


def images(deployment: dict[str, Any]) -> list[str]:
    """The images of the pod template's containers (init containers first), without repeats."""
    pod_spec = _spec(_spec(deployment).get("template") or {})
    found: list[str] = []
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        image = container.get("image")
        if image and image not in found:
            found.append(image)
    return found


def _pinned(reference: str | None) -> str | None:
    if not reference:
        return None
    reference = reference.split("://", 1)[-1]  # docker-pullable://repo@sha256:...
    return reference if _PINNED.match(reference) else None


def image_digests(deployment: dict[str, Any], pods: list[dict[str, Any]]) -> list[str]:
    """Digest-pinned references (``repository@sha256:...``) of what the new pods run.

    Per template container: the imageID the kubelet reports when it names a repository
    digest, else the container status' image or the template's image when pinned by digest.
    A bare local image ID (``sha256:...`` without a repository, which the kubelet may report
    in either field) is no registry's digest and is skipped. Containers whose digest nobody
    knows yet (a tag not pulled yet) are left out.
    """
    pod_spec = _spec(_spec(deployment).get("template") or {})
    found: list[str] = []
    for container in [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]:
        name = container.get("name")
        digest = None
        for pod in pods:
            status = _status(pod)
            for cs in [*(status.get("initContainerStatuses") or []),
                       *(status.get("containerStatuses") or [])]:
                if cs.get("name") == name:
                    digest = digest or _pinned(cs.get("imageID")) or _pinned(cs.get("image"))
        digest = digest or _pinned(container.get("image"))
        if digest and digest not in found:
            found.append(digest)
    return found


# Judging the pods -------------------------------------------------------------------------


def _terminated(cs: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    return ((cs.get("state") or {}).get("terminated"),
            (cs.get("lastState") or {}).get("terminated"))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _probe_text(probe: dict[str, Any] | None) -> str | None:
    if not probe:
        return None
    if "httpGet" in probe:
        get = probe["httpGet"]
        what = f"HTTP GET {get.get('path', '/')} on port {get.get('port')}"
    elif "tcpSocket" in probe:
        what = f"TCP connect to port {probe['tcpSocket'].get('port')}"
    elif "grpc" in probe:
        what = f"gRPC health check on port {probe['grpc'].get('port')}"
    elif "exec" in probe:
        what = "command " + " ".join(probe["exec"].get("command") or [])
    else:
        return None
    return (f"{what} every {probe.get('periodSeconds', 10)} s, after "
            f"{probe.get('initialDelaySeconds', 0)} s, {probe.get('failureThreshold', 3)} failures"
            " allowed")


def _hints(reason: str, container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    pod_spec = _spec(pod)
    if reason in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
        secrets = [s.get("name") for s in pod_spec.get("imagePullSecrets") or []]
        return [f"check that the image {container.get('image')} exists in its registry and that"
                " the node can pull it (imagePullSecrets: "
                f"{', '.join(secrets) if secrets else 'none'})"]
    if reason in ("CreateContainerConfigError", "CreateContainerError"):
        return ["a Secret, ConfigMap or key that the container references is missing or invalid:"
                " the message names it"]
    if reason == OOM_KILLED:
        limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
        return [f"the container used more memory than its limit ({limit or 'no limit set'}):"
                " raise resources.limits.memory or find what uses the memory"]
    if reason in ("CrashLoopBackOff", CRASH_THRESHOLD, "RunContainerError"):
        return ["the container exits soon after it starts: its last log lines say why"]
    if reason == READINESS_TIMEOUT:
        probe = _probe_text(container.get("readinessProbe"))
        return [f"readiness probe: {probe}" if probe else
                "the container has no readiness probe but is not ready: see its events"]
    if reason == UNSCHEDULABLE:
        selector = ", ".join(f"{k}={v}" for k, v in sorted(
            (pod_spec.get("nodeSelector") or {}).items())) or "none"
        return [f"no node fits the pod: check its nodeSelector ({selector}), tolerations,"
                " affinity and resource requests against the nodes"]
    return []


def _container_failure(pod: dict[str, Any], cs: dict[str, Any], spec: dict[str, Any],
                       init: bool, now: float, policy: Policy) -> Failure | None:
    if cs.get("ready"):
        return None
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    running = state.get("running") or {}
    current, last = _terminated(cs)
    restarts = int(cs.get("restartCount") or 0)
    exit_code = (current or last or {}).get("exitCode")
    # The log of the run that crashed: the current instance while it is still terminated,
    # else the previous one once the container has restarted.
    log_source = "current" if current else ("previous" if restarts else "current")
    base = {"pod": name_of(pod), "container": cs.get("name"), "image": spec.get("image"),
            "exit_code": exit_code, "restart_count": restarts,
            "involved": ("Pod", name_of(pod) or "")}
    kind = "init container" if init else "container"

    if OOM_KILLED in ((current or {}).get("reason"), (last or {}).get("reason")):
        return Failure(OOM_KILLED, f"{kind} {cs.get('name')} was killed for running out of"
                       f" memory (exit code {exit_code})", hints=_hints(OOM_KILLED, spec, pod),
                       log_source=log_source, **base)
    reason = waiting.get("reason")
    if reason and reason in policy.fail_reasons and not _KUBELET_RETRIES.search(
            waiting.get("message") or ""):
        return Failure(reason, waiting.get("message") or reason, hints=_hints(reason, spec, pod),
                       log_source=None if reason in _NEVER_STARTED else log_source, **base)
    crashes = restarts + (1 if current and current.get("exitCode") else 0)
    if exit_code and crashes >= policy.crash_threshold:
        return Failure(CRASH_THRESHOLD, f"{kind} {cs.get('name')} exited with code {exit_code};"
                       f" it has terminated {_plural(crashes, 'time')} (crash_threshold"
                       f" {policy.crash_threshold})", hints=_hints(CRASH_THRESHOLD, spec, pod),
                       log_source=log_source, **base)
    started = parse_time(running.get("startedAt"))
    if not init and started is not None and now - started > policy.ready_timeout:
        waited = int(now - started)
        startup = "" if cs.get("started", True) else " (its startup probe has not passed)"
        return Failure(READINESS_TIMEOUT, f"container {cs.get('name')} has been running for"
                       f" {waited} s without becoming ready{startup} (ready_timeout"
                       f" {policy.ready_timeout:g} s)", hints=_hints(READINESS_TIMEOUT, spec, pod),
                       log_source="current", **base)
    return None


def _pod_failure(pod: dict[str, Any], now: float, policy: Policy) -> Failure | None:
    pod_spec, status = _spec(pod), _status(pod)
    specs = {c.get("name"): c for c in
             [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]}
    for init, key in ((True, "initContainerStatuses"), (False, "containerStatuses")):
        for cs in status.get(key) or []:
            failure = _container_failure(pod, cs, specs.get(cs.get("name")) or {}, init, now,
                                         policy)
            if failure:
                return failure
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False" and \
            scheduled.get("reason") == UNSCHEDULABLE:
        since = parse_time(scheduled.get("lastTransitionTime")) or \
            parse_time(_meta(pod).get("creationTimestamp"))
        if since is not None and now - since > policy.schedule_timeout:
            return Failure(UNSCHEDULABLE, scheduled.get("message") or "no node fits the pod",
                           pod=name_of(pod), hints=_hints(UNSCHEDULABLE, {}, pod),
                           involved=("Pod", name_of(pod) or ""))
    return None


def _laggard(pods: list[dict[str, Any]]) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The first pod (and container) of the new ReplicaSet that is not ready, if any."""
    for pod in pods:
        statuses = _status(pod).get("containerStatuses") or []
        for cs in statuses:
            if not cs.get("ready"):
                return pod, cs
        if not statuses:
            return pod, None
    return None


def _pointing_at(failure: Failure, pods: list[dict[str, Any]]) -> Failure:
    """Aim a failure that names no pod at the first unready new pod, for events and logs."""
    laggard = _laggard(pods)
    if failure.pod or laggard is None:
        return failure
    pod, cs = laggard
    failure.pod = name_of(pod)
    failure.involved = ("Pod", failure.pod or "")
    if cs:
        current, last = _terminated(cs)
        started = (cs.get("state") or {}).get("running") or current or last
        failure.container = cs.get("name")
        failure.image = cs.get("image")
        failure.restart_count = int(cs.get("restartCount") or 0)
        failure.exit_code = (current or last or {}).get("exitCode")
        if started:
            failure.log_source = "previous" if failure.restart_count and not current else "current"
    return failure


# The verdict ------------------------------------------------------------------------------


def _observed(deployment: dict[str, Any]) -> bool:
    generation = _meta(deployment).get("generation") or 0
    return (_status(deployment).get("observedGeneration") or 0) >= generation


def is_complete(deployment: dict[str, Any]) -> bool:
    """kubectl rollout status' test, stricter: every replica updated, available, no old one."""
    status = _status(deployment)
    desired = desired_replicas(deployment)
    counts = replica_counts(deployment)
    return (_observed(deployment)
            and counts["updated"] == desired == counts["available"]
            and int(status.get("replicas") or 0) == counts["updated"]
            and not status.get("unavailableReplicas"))


def progress_text(deployment: dict[str, Any]) -> str:
    """What the rollout waits for, in kubectl rollout status' words."""
    meta, status = _meta(deployment), _status(deployment)
    if not _observed(deployment):
        return (f"waiting for the Deployment controller to observe generation"
                f" {meta.get('generation')} (observed {status.get('observedGeneration', 0)})")
    desired = desired_replicas(deployment)
    counts = replica_counts(deployment)
    old = int(status.get("replicas") or 0) - counts["updated"]
    if counts["updated"] < desired:
        return f"{counts['updated']} of {desired} new replicas updated"
    if old > 0:
        return f"{_plural(old, 'old replica')} pending termination"
    if counts["available"] < counts["updated"]:
        return f"{counts['available']} of {counts['updated']} updated replicas available"
    return "waiting for the Deployment status to settle"


def evaluate(deployment: dict[str, Any], replicasets: list[dict[str, Any]],
             pods: list[dict[str, Any]], now: float, policy: Policy) -> Verdict:
    """Judge the rollout at time ``now`` (seconds since the epoch, the API server's clock).

    ``replicasets``: those the Deployment's selector matches; ``pods``: those of the new
    ReplicaSet (others are ignored). Failed when a pod of the new ReplicaSet shows a
    failure of the policy, the new ReplicaSet cannot create pods for schedule_timeout, the
    progress deadline has passed, or the Deployment is paused before its rollout completed.
    """
    ns = _meta(deployment).get("namespace")
    name = _meta(deployment).get("name")
    new_rs = find_new_replicaset(deployment, replicasets)
    previous = find_previous_replicaset(deployment, replicasets, new_rs)
    verdict = Verdict(PROGRESSING, progress_text(deployment), new_replicaset=name_of(new_rs),
                      revision=revision_of(new_rs), previous_revision=revision_of(previous),
                      replicas=replica_counts(deployment))
    if not _observed(deployment):
        return verdict
    if is_complete(deployment) or desired_replicas(deployment) == 0:
        verdict.state = COMPLETE
        verdict.message = (f"Deployment {ns}/{name} successfully rolled out"
                           f" ({_plural(desired_replicas(deployment), 'replica')})")
        return verdict

    new_pods = pods_of(new_rs, pods)
    failure = None
    for pod in new_pods:
        failure = _pod_failure(pod, now, policy)
        if failure:
            break
    replica_failure = _condition(new_rs, "ReplicaFailure") if new_rs else None
    if failure is None and replica_failure and replica_failure.get("status") == "True":
        since = parse_time(replica_failure.get("lastTransitionTime"))
        if since is not None and now - since > policy.schedule_timeout:
            failure = Failure(FAILED_CREATE, replica_failure.get("message") or FAILED_CREATE,
                              hints=[f"ReplicaSet {name_of(new_rs)} cannot create pods: the"
                                     " message says what refused them (admission, quota,"
                                     " ServiceAccount)"],
                              involved=("ReplicaSet", name_of(new_rs) or ""))
    progressing = _condition(deployment, "Progressing")
    if failure is None and progressing and progressing.get("status") == "False" and \
            progressing.get("reason") == DEADLINE_EXCEEDED:
        failure = _pointing_at(Failure(
            DEADLINE_EXCEEDED, progressing.get("message") or DEADLINE_EXCEEDED,
            hints=[f"progressDeadlineSeconds is "
                   f"{_spec(deployment).get('progressDeadlineSeconds', 600)}; the new pods"
                   " showed no failure this module knows: see the events"],
            involved=("Deployment", name or "")), new_pods)
    if failure is None and _spec(deployment).get("paused"):
        failure = Failure(PAUSED, f"Deployment {ns}/{name} is paused (spec.paused is true), so"
                          " its rollout cannot complete",
                          hints=[f"resume it (kubectl rollout resume deployment/{name} -n {ns})"
                                 " or set spec.paused to false, then wait again"],
                          involved=("Deployment", name or ""))
    if failure:
        verdict.state = FAILED
        verdict.failure = failure
        verdict.message = failure.message
    return verdict


def timeout_failure(deployment: dict[str, Any], replicasets: list[dict[str, Any]],
                    pods: list[dict[str, Any]], timeout: float) -> Failure:
    """The failure to report when the watch's own timeout ends a rollout still progressing."""
    new_pods = pods_of(find_new_replicaset(deployment, replicasets), pods)
    return _pointing_at(Failure(
        TIMEOUT, f"not complete after {timeout:g} s: {progress_text(deployment)}",
        hints=["raise timeout if the rollout is slow but healthy; the events say what it waits"
               " for"], involved=("Deployment", name_of(deployment) or "")), new_pods)


# Words for people --------------------------------------------------------------------------


def pod_state(pod: dict[str, Any]) -> str:
    """A pod's state in one word or two, as kubectl's STATUS column would show it."""
    if _meta(pod).get("deletionTimestamp"):
        return "Terminating"
    status = _status(pod)
    scheduled = _condition(pod, "PodScheduled")
    if scheduled and scheduled.get("status") == "False":
        return scheduled.get("reason") or "Pending"
    for key, prefix in (("initContainerStatuses", "Init:"), ("containerStatuses", "")):
        for cs in status.get(key) or []:
            if cs.get("ready"):
                continue
            state = cs.get("state") or {}
            current = state.get("terminated")
            if prefix and current and current.get("exitCode") == 0:
                continue
            if state.get("waiting"):
                return prefix + (state["waiting"].get("reason") or "Waiting")
            if current:
                return prefix + (current.get("reason") or "Terminated")
            if state.get("running"):
                return prefix + "Running" if prefix else "Running, not ready"
    if status.get("containerStatuses"):
        return "Ready"
    return status.get("phase") or "Pending"


def explains(lines: list[str]) -> bool:
    """Whether a log holds an exception or panic line - the why of a crash."""
    return any(_TELLING_LINE.match(line.strip()) for line in lines)


def telling_line(lines: list[str]) -> str | None:
    """The line of a log that best says why a container died: the last exception or panic
    line, else the last non-empty line."""
    stripped = [line.strip() for line in lines if line.strip()]
    for line in reversed(stripped):
        if _TELLING_LINE.match(line):
            return line
    return stripped[-1] if stripped else None


def summary(failure: Failure, logs: list[str] | None = None) -> str:
    """One line: ``pod P container C REASON (exit code N, K restarts): detail``."""
    where = []
    if failure.pod:
        where.append(f"pod {failure.pod}")
    if failure.container:
        where.append(f"container {failure.container}")
    where.append(failure.reason)
    facts = []
    if failure.exit_code is not None and failure.reason not in (READINESS_TIMEOUT,):
        facts.append(f"exit code {failure.exit_code}")
    if failure.restart_count:
        facts.append(_plural(failure.restart_count, "restart"))
    # A crash's log says why; for other failures the API's message says more.
    detail = telling_line(logs or []) if failure.reason in _CRASHES else None
    text = " ".join(where) + (f" ({', '.join(facts)})" if facts else "")
    return f"{text}: {detail or failure.message}"
