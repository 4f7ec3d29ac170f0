# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The revision history of a Deployment or StatefulSet, and the plan of a rollback.

Pure logic over the API objects as dicts (what `kubectl get -o json` prints): no client,
no I/O, so every decision is unit-tested on captured objects.

A Deployment's history is its ReplicaSets (owned through ownerReferences), each numbered by
the annotation deployment.kubernetes.io/revision; a StatefulSet's history is its
ControllerRevisions, numbered by their `revision` field. Rolling back is what
`kubectl rollout undo` does: put the target's pod template back into the workload's
spec.template (for a Deployment without the pod-template-hash label the controller adds).
The controller then adopts the old ReplicaSet or ControllerRevision again and gives it the
next revision number.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

REVISION_ANNOTATION = "deployment.kubernetes.io/revision"
CHANGE_CAUSE = "kubernetes.io/change-cause"
RELEASE_ID = "prodready.io/release-id"
HASH_LABEL = "pod-template-hash"
ROLLBACK_PREFIX = "rollback to "
DEFAULT_HISTORY_LIMIT = 10
KINDS = ("Deployment", "StatefulSet")
# The objects in which each kind's controller keeps its revisions.
HISTORY_KIND = {"Deployment": "ReplicaSet", "StatefulSet": "ControllerRevision"}


class HistoryError(Exception):
    """The rollback cannot be planned; nothing was changed."""


class RevisionNotFoundError(HistoryError):
    """The revision asked for is not in the history the controller kept."""


class ReleaseNotFoundError(HistoryError):
    """No kept revision carries the release id asked for."""


class NoPreviousRevisionError(HistoryError):
    """The workload has never run another pod template (or its history was pruned)."""


class RollbackRefusedError(HistoryError):
    """The workload is in a state where a rollback would not take effect."""


@dataclass(frozen=True)
class Revision:
    """One kept revision: a ReplicaSet of a Deployment or a ControllerRevision of a
    StatefulSet."""

    revision: int
    name: str
    release_id: str | None
    images: list[str]
    created: str | None
    replicas: int | None
    template: dict[str, Any] = field(repr=False, compare=False)

    def summary(self) -> dict[str, Any]:
        return {"revision": self.revision, "release_id": self.release_id,
                "images": list(self.images)}

    def describe(self) -> dict[str, Any]:
        return {**self.summary(), "name": self.name, "created": self.created,
                "replicas": self.replicas}

    def label(self) -> str:
        """How a rollback to this revision is named in the change-cause."""
        return self.release_id if self.release_id else f"revision {self.revision}"


@dataclass(frozen=True)
class History:
    """The workload as it is now, and the revisions its controller kept."""

    kind: str
    namespace: str
    name: str
    resource_version: str | None
    template: dict[str, Any] = field(repr=False)
    annotations: dict[str, str]
    revision_history_limit: int
    paused: bool
    revisions: list[Revision]
    current_revision: int | None

    @property
    def ref(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}"

    @property
    def current(self) -> Revision | None:
        """The kept revision whose pod template the workload runs now, if any."""
        for rev in reversed(self.revisions):
            if rev.template == self.template:
                return rev
        return None

    def kept(self) -> str:
        return ", ".join(str(rev.revision) for rev in self.revisions) or "none"


@dataclass(frozen=True)
class RollbackPlan:
    """What the rollback does; `patch` is empty when the workload already runs the target."""

    history: History
    target: Revision
    previous: dict[str, Any]
    from_revision: int | None
    to_revision: int
    change_cause: str | None
    patch: list[dict[str, Any]]
    diff: dict[str, Any]

    @property
    def changed(self) -> bool:
        return bool(self.patch)


def _meta(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("metadata") or {}


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def label_selector(selector: dict[str, Any] | None) -> str:
    """A LabelSelector object (matchLabels, matchExpressions) as the string the API takes."""
    selector = selector or {}
    terms = [f"{key}={value}" for key, value in sorted((selector.get("matchLabels") or {})
                                                       .items())]
    for expr in selector.get("matchExpressions") or []:
        key, operator = expr.get("key"), expr.get("operator")
        values = ",".join(expr.get("values") or [])
        terms.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})",
                      "Exists": f"{key}", "DoesNotExist": f"!{key}"}[operator])
    return ",".join(terms)


def owned_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    """True when `obj` is controlled by `owner` (same uid), as the controllers decide it;
    a name or label match is not enough, since another workload may share the labels."""
    uid = _meta(owner).get("uid")
    return any(ref.get("uid") == uid and ref.get("controller")
               for ref in _meta(obj).get("ownerReferences") or [])


def strip_template(template: dict[str, Any] | None, kind: str) -> dict[str, Any]:
    """The pod template as the workload's spec.template would hold it: a ReplicaSet's
    copy carries the pod-template-hash label, a ControllerRevision's a `$patch` directive."""
    result = copy.deepcopy(template or {})
    if kind == "Deployment":
        labels = (result.get("metadata") or {}).get("labels")
        if labels and HASH_LABEL in labels:
            del labels[HASH_LABEL]
    else:
        result.pop("$patch", None)
    return result


def template_images(template: dict[str, Any]) -> list[str]:
    """The images of a pod template's init containers, then of its containers."""
    spec = template.get("spec") or {}
    return [c.get("image", "") for key in ("initContainers", "containers")
            for c in spec.get(key) or []]


def release_id_of(template: dict[str, Any], annotations: dict[str, str] | None) -> str | None:
    """The release id the rollout role stamped: the pod template's annotation or label,
    else the change-cause the controller copied from the workload (a change-cause this
    module wrote, `rollback to <release id>`, names the release it restored)."""
    meta = template.get("metadata") or {}
    for source in (meta.get("annotations") or {}, meta.get("labels") or {}):
        if source.get(RELEASE_ID):
            return str(source[RELEASE_ID])
    cause = (annotations or {}).get(CHANGE_CAUSE)
    if not cause:
        return None
    if cause.startswith(ROLLBACK_PREFIX):
        restored = cause[len(ROLLBACK_PREFIX):]
        return None if restored.startswith("revision ") else restored
    return cause


def _revision(obj: dict[str, Any], kind: str) -> Revision | None:
    meta = _meta(obj)
    if kind == "Deployment":
        number = _int((meta.get("annotations") or {}).get(REVISION_ANNOTATION))
        template = strip_template((obj.get("spec") or {}).get("template"), kind)
        replicas = _int((obj.get("spec") or {}).get("replicas"))
    else:
        number = _int(obj.get("revision"))
        template = strip_template(((obj.get("data") or {}).get("spec") or {}).get("template"),
                                  kind)
        replicas = None
    if number is None:
        return None
    return Revision(revision=number, name=meta.get("name", ""),
                    release_id=release_id_of(template, meta.get("annotations")),
                    images=template_images(template), created=meta.get("creationTimestamp"),
                    replicas=replicas, template=template)


def build_history(kind: str, workload: dict[str, Any], owned: list[dict[str, Any]]
                  ) -> History:
    """The history of a Deployment from its ReplicaSets, or of a StatefulSet from its
    ControllerRevisions. `owned` may hold objects of other workloads: only those the
    workload controls count."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    meta = _meta(workload)
    spec = workload.get("spec") or {}
    revisions = sorted(
        (rev for rev in (_revision(obj, kind) for obj in owned if owned_by(obj, workload))
         if rev is not None),
        key=lambda rev: rev.revision)
    annotations = dict(meta.get("annotations") or {})
    template = strip_template(spec.get("template"), kind)
    if kind == "Deployment":
        current_revision = _int(annotations.get(REVISION_ANNOTATION))
    else:
        update = (workload.get("status") or {}).get("updateRevision")
        current_revision = next((r.revision for r in revisions if r.name == update), None)
    limit = _int(spec.get("revisionHistoryLimit"))
    history = History(
        kind=kind, namespace=meta.get("namespace", ""), name=meta.get("name", ""),
        resource_version=meta.get("resourceVersion"), template=template,
        annotations=annotations,
        revision_history_limit=DEFAULT_HISTORY_LIMIT if limit is None else limit,
        paused=bool(spec.get("paused")), revisions=revisions,
        current_revision=current_revision)
    if history.current_revision is None and history.current is not None:
        history = dataclasses.replace(history, current_revision=history.current.revision)
    return history


def pick_target(history: History, revision: int | None = None,
                release_id: str | None = None) -> Revision:
    """The revision to roll back to: the one numbered `revision`, the newest one carrying
    `release_id`, or else the previous one (the newest whose pod template differs from the
    one the workload runs now)."""
    if revision is not None and release_id is not None:
        raise ValueError("give revision or release_id, not both")
    limits = f"revisions kept: {history.kept()}; revisionHistoryLimit " \
             f"{history.revision_history_limit}"
    if revision is not None:
        for rev in history.revisions:
            if rev.revision == revision:
                return rev
        raise RevisionNotFoundError(
            f"{history.ref} has no revision {revision} in its history ({limits})")
    if release_id is not None:
        matches = [rev for rev in history.revisions if rev.release_id == release_id]
        if matches:
            return matches[-1]
        known = ", ".join(f"{rev.release_id} (revision {rev.revision})"
                          for rev in history.revisions if rev.release_id) or "none"
        raise ReleaseNotFoundError(
            f"no {HISTORY_KIND[history.kind]} of {history.ref} carries release id "
            f"{release_id}; known: {known}")
    for rev in reversed(history.revisions):
        if rev.template != history.template:
            return rev
    raise NoPreviousRevisionError(
        f"{history.ref} has no previous revision to roll back to ({limits})")


def _escape(key: str) -> str:
    """A map key as one JSON Pointer token (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _state(template: dict[str, Any], summary: dict[str, Any], annotations: dict[str, str]
           ) -> dict[str, Any]:
    return {**summary, "change_cause": annotations.get(CHANGE_CAUSE),
            "template": template}


def plan_rollback(history: History, target: Revision) -> RollbackPlan:
    """The JSON patch (RFC 6902) that rolls the workload back to `target`, and the diff.

    A JSON patch, as `kubectl rollout undo` sends: it replaces spec.template whole, where a
    merge patch would keep keys that only the current template has. Its first operation
    sets the resourceVersion that was read, so a change made by someone else in between
    makes the API server answer 409 Conflict instead of overwriting that change.
    """
    current = history.current
    previous = current.summary() if current else {
        "revision": history.current_revision,
        "release_id": release_id_of(history.template, history.annotations),
        "images": template_images(history.template)}
    change_cause = f"{ROLLBACK_PREFIX}{target.label()}"
    annotations = {CHANGE_CAUSE: change_cause}
    if target.release_id:
        annotations[RELEASE_ID] = target.release_id
    changed = target.template != history.template
    patch: list[dict[str, Any]] = []
    after_annotations = dict(history.annotations)
    if changed:
        after_annotations.update(annotations)
        patch.append({"op": "replace", "path": "/metadata/resourceVersion",
                      "value": history.resource_version})
        patch.append({"op": "replace", "path": "/spec/template",
                      "value": copy.deepcopy(target.template)})
        if history.annotations:
            patch.extend({"op": "add", "path": f"/metadata/annotations/{_escape(key)}",
                          "value": value} for key, value in annotations.items())
        else:
            patch.append({"op": "add", "path": "/metadata/annotations", "value": annotations})
    kept = [rev.revision for rev in history.revisions if rev.revision != target.revision]
    if history.current_revision is not None:
        kept.append(history.current_revision)
    # Both controllers give the restored revision the next number: max of the others + 1.
    to_revision = max(kept) + 1 if changed and kept else (
        history.current_revision if history.current_revision is not None
        else target.revision)
    diff = {
        "before": _state(history.template, previous, history.annotations),
        "after": _state(target.template if changed else history.template,
                        target.summary() if changed else previous, after_annotations),
    }
    return RollbackPlan(history=history, target=target, previous=previous,
                        from_revision=history.current_revision, to_revision=to_revision,
                        change_cause=change_cause if changed else None, patch=patch,
                        diff=diff)


def plan(kind: str, workload: dict[str, Any], owned: list[dict[str, Any]],
         revision: int | None = None, release_id: str | None = None) -> RollbackPlan:
    """Read the history, refuse what cannot be done, and plan the rollback: every check
    happens here, before anything is written."""
    history = build_history(kind, workload, owned)
    target = pick_target(history, revision=revision, release_id=release_id)
    result = plan_rollback(history, target)
    if result.changed and history.paused:
        raise RollbackRefusedError(
            f"{history.ref} is paused: the controller would not roll out revision "
            f"{target.revision}; resume it first (kubectl rollout resume) and run again")
    return result


def check_waitable(kind: str, workload: dict[str, Any]) -> None:
    """Refuse, before anything is written, a wait that could never end."""
    strategy = ((workload.get("spec") or {}).get("updateStrategy") or {}).get("type")
    if kind == "StatefulSet" and strategy == "OnDelete":
        meta = _meta(workload)
        raise RollbackRefusedError(
            f"StatefulSet {meta.get('namespace')}/{meta.get('name')} uses the OnDelete update "
            f"strategy: its pods take the restored template only when they are deleted, so "
            f"the rollback cannot be waited for; set wait to false")


def statefulset_rollout(statefulset: dict[str, Any]) -> tuple[bool, str]:
    """Whether a StatefulSet's rolling update is complete, and what it waits for, as
    `kubectl rollout status` decides it."""
    meta, spec = _meta(statefulset), statefulset.get("spec") or {}
    status = statefulset.get("status") or {}
    observed = status.get("observedGeneration") or 0
    if not observed or (meta.get("generation") or 0) > observed:
        return False, "waiting for the StatefulSet controller to observe the update"
    replicas = 1 if spec.get("replicas") is None else int(spec["replicas"])
    ready = int(status.get("readyReplicas") or 0)
    if ready < replicas:
        return False, f"{ready} of {replicas} pods ready"
    rolling = (spec.get("updateStrategy") or {}).get("rollingUpdate") or {}
    updated = int(status.get("updatedReplicas") or 0)
    if rolling.get("partition") is not None:
        wanted = replicas - int(rolling["partition"])
        if updated < wanted:
            return False, f"{updated} of {wanted} pods updated"
        return True, f"{updated} of {replicas} pods updated (partition {rolling['partition']})"
    if status.get("updateRevision") != status.get("currentRevision"):
        return False, f"{updated} of {replicas} pods at revision {status.get('updateRevision')}"
    return True, f"{replicas} pods at revision {status.get('updateRevision')}"
