# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""rollout.evaluate and its helpers on objects captured from the lab's cluster.

Every fixture rollout_*.json holds a Deployment, its ReplicaSets and pods exactly as
`kubectl get -o json` printed them (managedFields removed) at `captured_at`; its
`description` says how the state was produced (kwok fault labels, the reference app's
FAULT_* switches on the real node, a missing image digest...).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.rollout import (
    COMPLETE,
    FAILED,
    PROGRESSING,
    Failure,
    Policy,
    PolicyError,
    RolloutError,
    evaluate,
    find_new_replicaset,
    find_previous_replicaset,
    image_digests,
    images,
    is_complete,
    parse_time,
    pod_state,
    pods_of,
    ready_pods,
    selector_string,
    summary,
    telling_line,
    timeout_failure,
)

FIXTURES = Path(__file__).parent / "fixtures"
REFAPP = ("127.0.0.1:5000/refapp@sha256:"
          "d4a214bdbb8ac8926b36b64740ab830ebe89d52a7e34ead082464f75a783c907")


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"rollout_{name}.json").read_text(encoding="utf-8"))


def judge(snap: dict[str, Any], after: float = 0.0, **policy: Any):
    now = parse_time(snap["captured_at"]) + after
    return evaluate(snap["deployment"], snap["replicasets"], snap["pods"], now, Policy(**policy))


def started_at(snap: dict[str, Any]) -> float:
    """When the first new pod's first container started (second resolution, as the API)."""
    new = find_new_replicaset(snap["deployment"], snap["replicasets"])
    status = pods_of(new, snap["pods"])[0]["status"]["containerStatuses"][0]
    return parse_time(status["state"]["running"]["startedAt"])


# The verdict on each captured state ----------------------------------------------------

VERDICTS = [
    # fixture, seconds after capture, policy, state, reason, container, exit code, restarts
    pytest.param("kwok_complete", 0, {}, COMPLETE, None, None, None, None, id="kwok-complete"),
    pytest.param("kwok_zero", 0, {}, COMPLETE, None, None, None, None, id="zero-replicas"),
    pytest.param("real_complete", 0, {}, COMPLETE, None, None, None, None, id="real-complete"),
    pytest.param("kwok_progressing", 0, {}, PROGRESSING, None, None, None, None,
                 id="kwok-surge-not-ready-yet"),
    pytest.param("real_progressing", 0, {}, PROGRESSING, None, None, None, None,
                 id="real-old-pod-pending-termination"),
    pytest.param("kwok_crashloop", 0, {}, FAILED, "CrashLoopBackOff", "app", 1, 3,
                 id="kwok-crashloop"),
    pytest.param("kwok_oomkilled", 0, {}, FAILED, "OOMKilled", "app", 137, 3,
                 id="kwok-oomkilled-beats-crashloop"),
    pytest.param("kwok_unpullable", 0, {}, FAILED, "ImagePullBackOff", "app", None, 0,
                 id="kwok-unpullable"),
    pytest.param("kwok_config_error", 0, {}, FAILED, "CreateContainerConfigError", "app", None,
                 0, id="kwok-config-error"),
    pytest.param("kwok_progress_deadline", 0, {}, FAILED, "ProgressDeadlineExceeded", "app",
                 None, 0, id="kwok-progress-deadline"),
    pytest.param("kwok_paused", 0, {}, FAILED, "Paused", None, None, None, id="kwok-paused"),
    pytest.param("real_crashloop", 0, {}, FAILED, "CrashLoopBackOff", "app", 3, 1,
                 id="real-crashloop"),
    pytest.param("real_image_pull", 0, {}, FAILED, "ErrImagePull", "app", None, 0,
                 id="real-err-image-pull"),
    pytest.param("real_crash_first_exit", 0, {}, PROGRESSING, None, None, None, None,
                 id="real-first-exit-below-threshold"),
    pytest.param("real_crash_first_exit", 0, {"crash_threshold": 1}, FAILED,
                 "CrashThresholdReached", "app", 3, 0, id="real-first-exit-threshold-1"),
    pytest.param("kwok_crashloop", 0, {"fail_reasons": []}, FAILED, "CrashThresholdReached",
                 "app", 1, 3, id="crash-threshold-without-fail-reasons"),
    pytest.param("kwok_unpullable", 0, {"fail_reasons": ["CrashLoopBackOff"]}, PROGRESSING,
                 None, None, None, None, id="reason-not-in-fail-reasons"),
    pytest.param("kwok_unschedulable", 0, {}, PROGRESSING, None, None, None, None,
                 id="unschedulable-within-schedule-timeout"),
    pytest.param("kwok_unschedulable", 61, {}, FAILED, "Unschedulable", None, None, None,
                 id="unschedulable-past-schedule-timeout"),
    pytest.param("kwok_failed_create", 0, {}, PROGRESSING, None, None, None, None,
                 id="failed-create-within-schedule-timeout"),
    pytest.param("kwok_failed_create", 61, {}, FAILED, "FailedCreate", None, None, None,
                 id="failed-create-past-schedule-timeout"),
    pytest.param("kwok_failed_create", 0, {"schedule_timeout": 0}, FAILED, "FailedCreate", None,
                 None, None, id="failed-create-schedule-timeout-0"),
    pytest.param("kwok_never_ready", 0, {}, PROGRESSING, None, None, None, None,
                 id="kwok-never-ready-within-ready-timeout"),
    pytest.param("kwok_never_ready", 125, {}, FAILED, "ReadinessTimeout", "app", None, 0,
                 id="kwok-never-ready-past-ready-timeout"),
    pytest.param("real_never_ready", 0, {"ready_timeout": 3}, FAILED, "ReadinessTimeout", "app",
                 None, 0, id="real-never-ready-small-ready-timeout"),
    pytest.param("kwok_progressing", 130, {}, FAILED, "ReadinessTimeout", "app", None, 0,
                 id="surge-pod-never-ready"),
]


@pytest.mark.parametrize(
    ("fixture", "after", "policy", "state", "reason", "container", "exit_code", "restarts"),
    VERDICTS)
def test_verdict_on_captured_state(fixture: str, after: float, policy: dict[str, Any],
                                   state: str, reason: str | None, container: str | None,
                                   exit_code: int | None, restarts: int | None) -> None:
    verdict = judge(load(fixture), after, **policy)
    assert verdict.state == state, verdict.message
    if reason is None:
        assert verdict.failure is None
        return
    failure = verdict.failure
    assert (failure.reason, failure.container, failure.exit_code, failure.restart_count) == (
        reason, container, exit_code, restarts)
    assert verdict.message == failure.message


def test_a_secret_cache_not_synced_yet_is_waited_for_not_failed() -> None:
    """The kubelet's "failed to sync secret cache" is CreateContainerConfigError too, but it
    retries on its own (seen on the lab's real node under load): not a failure."""
    snap = load("kwok_config_error")
    new = find_new_replicaset(snap["deployment"], snap["replicasets"])
    waiting = [pod["status"]["containerStatuses"][0]["state"]["waiting"]
               for pod in pods_of(new, snap["pods"])]
    for state in waiting:
        state["message"] = "failed to sync secret cache: timed out waiting for the condition"
    assert judge(snap).state == PROGRESSING
    waiting[-1]["message"] = 'secret "app-secret" not found'
    assert judge(snap).failure.reason == "CreateContainerConfigError"


NEW_AND_PREVIOUS = [
    # fixture, new ReplicaSet, its revision, previous revision
    ("kwok_complete", "rs-fx-complete-5897844f86", 2, 1),
    ("kwok_progressing", "rs-fx-progressing-79b9f575dd", 2, 1),
    ("real_complete", "rs-fx-real-ok-5457dd66", 2, 1),
    ("real_progressing", "rs-fx-real-ok-5457dd66", 2, 1),
    ("kwok_crashloop", "rs-fx-crashloop-555bf6c794", 1, None),
    ("kwok_zero", "rs-fx-zero-855c755d4", 1, None),
    # Paused after the template changed: the controller made no ReplicaSet for it.
    ("kwok_paused", None, None, 1),
]


@pytest.mark.parametrize(("fixture", "new", "revision", "previous"), NEW_AND_PREVIOUS)
def test_new_replicaset_and_revisions(fixture: str, new: str | None, revision: int | None,
                                      previous: int | None) -> None:
    verdict = judge(load(fixture))
    assert (verdict.new_replicaset, verdict.revision, verdict.previous_revision) == (
        new, revision, previous)


def test_messages_name_the_cause() -> None:
    assert judge(load("kwok_config_error")).message == 'secret "missing" not found'
    assert judge(load("kwok_progressing")).message == "1 of 3 new replicas updated"
    assert judge(load("real_progressing")).message == "1 old replica pending termination"
    assert judge(load("kwok_never_ready")).message == "0 of 2 updated replicas available"
    assert judge(load("kwok_complete")).message == (
        "Deployment prodready/rs-fx-complete successfully rolled out (3 replicas)")
    assert judge(load("kwok_paused")).message == (
        "Deployment prodready/rs-fx-paused is paused (spec.paused is true), so its rollout"
        " cannot complete")
    unschedulable = judge(load("kwok_unschedulable"), 61).failure
    assert unschedulable.message.startswith("0/5 nodes are available: 5 node(s) didn't match")
    assert unschedulable.hints == [
        "no node fits the pod: check its nodeSelector (type=nowhere), tolerations, affinity and"
        " resource requests against the nodes"]
    created = judge(load("kwok_failed_create"), 61).failure
    assert 'serviceaccount "rs-missing" not found' in created.message
    assert created.involved == ("ReplicaSet", "rs-fx-failedcreate-86b968b4c5")


def test_readiness_timeout_is_counted_from_the_container_start() -> None:
    snap = load("real_never_ready")
    start = started_at(snap)
    deployment, rss, pods = snap["deployment"], snap["replicasets"], snap["pods"]
    assert evaluate(deployment, rss, pods, start + 10, Policy(ready_timeout=10)).state == \
        PROGRESSING
    failure = evaluate(deployment, rss, pods, start + 10.5, Policy(ready_timeout=10)).failure
    assert failure.reason == "ReadinessTimeout"
    assert failure.message == ("container app has been running for 10 s without becoming ready"
                               " (ready_timeout 10 s)")
    assert failure.hints == ["readiness probe: HTTP GET /health on port 8000 every 1 s, after 0 s,"
                             " 3 failures allowed"]
    assert failure.log_source == "current"


@pytest.mark.parametrize(("fixture", "after", "policy", "log_source"), [
    ("real_crashloop", 0, {}, "previous"),  # waiting after a restart: the previous instance
    ("real_crash_first_exit", 0, {"crash_threshold": 1}, "current"),  # still terminated
    ("kwok_oomkilled", 0, {}, "previous"),
    ("real_image_pull", 0, {}, None),  # never ran: no log to read
    ("kwok_config_error", 0, {}, None),
    ("kwok_never_ready", 125, {}, "current"),
    ("kwok_progress_deadline", 0, {}, "current"),
])
def test_log_source(fixture: str, after: float, policy: dict[str, Any],
                    log_source: str | None) -> None:
    assert judge(load(fixture), after, **policy).failure.log_source == log_source


@pytest.mark.parametrize(("fixture", "after", "involved"), [
    ("real_crashloop", 0, ("Pod", "rs-fx-real-crash-5d9dd8686-6fkr7")),
    ("kwok_progress_deadline", 0, ("Pod", "rs-fx-deadline-8644759658-59hp6")),
    ("kwok_paused", 0, ("Deployment", "rs-fx-paused")),
    ("kwok_unschedulable", 61, ("Pod", "rs-fx-unschedulable-5cfdcb9565-ctm9g")),
])
def test_failure_names_the_object_whose_events_explain_it(
        fixture: str, after: float, involved: tuple[str, str]) -> None:
    assert judge(load(fixture), after).failure.involved == involved


# Synthetic variations of captured objects ---------------------------------------------


def _new_pod(snap: dict[str, Any]) -> dict[str, Any]:
    new = find_new_replicaset(snap["deployment"], snap["replicasets"])
    return pods_of(new, snap["pods"])[0]


def test_generation_not_observed_yet_is_progressing_even_with_failing_pods() -> None:
    snap = load("kwok_crashloop")
    snap["deployment"]["metadata"]["generation"] = 2
    verdict = judge(snap)
    assert verdict.state == PROGRESSING
    assert verdict.message == ("waiting for the Deployment controller to observe generation 2"
                               " (observed 1)")


def test_oomkilled_in_the_current_state() -> None:
    snap = load("real_crash_first_exit")
    status = _new_pod(snap)["status"]["containerStatuses"][0]
    status["state"]["terminated"].update(reason="OOMKilled", exitCode=137)
    failure = judge(snap).failure
    assert (failure.reason, failure.exit_code, failure.log_source) == ("OOMKilled", 137, "current")
    assert failure.message == "container app was killed for running out of memory (exit code 137)"


def test_crash_threshold_while_the_container_runs_again() -> None:
    snap = load("real_crash_first_exit")
    status = _new_pod(snap)["status"]["containerStatuses"][0]
    status["lastState"] = {"terminated": status["state"].pop("terminated")}
    status["state"] = {"running": {"startedAt": snap["captured_at"]}}
    status["restartCount"] = 2
    failure = judge(snap).failure
    assert (failure.reason, failure.exit_code, failure.restart_count, failure.log_source) == (
        "CrashThresholdReached", 3, 2, "previous")
    assert failure.message == ("container app exited with code 3; it has terminated 2 times"
                               " (crash_threshold 2)")
    status["restartCount"] = 1
    assert judge(snap).state == PROGRESSING


def test_clean_exits_do_not_count_as_crashes() -> None:
    snap = load("real_crash_first_exit")
    status = _new_pod(snap)["status"]["containerStatuses"][0]
    status["state"]["terminated"].update(exitCode=0, reason="Completed")
    status["restartCount"] = 5
    assert judge(snap, crash_threshold=1).state == PROGRESSING


def test_a_ready_container_is_not_failed_by_its_past() -> None:
    snap = load("kwok_crashloop")
    for pod in snap["pods"]:
        status = pod["status"]["containerStatuses"][0]
        status["ready"] = True
        status["state"] = {"running": {"startedAt": snap["captured_at"]}}
    assert judge(snap, crash_threshold=1).state == PROGRESSING


def test_init_container_failure() -> None:
    snap = load("kwok_config_error")
    pod = _new_pod(snap)
    pod["spec"]["initContainers"] = [{"name": "migrate", "image": "busybox:1"}]
    pod["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "PodInitializing"}}
    pod["status"]["initContainerStatuses"] = [{
        "name": "migrate", "ready": False, "restartCount": 2, "image": "busybox:1",
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 20s"}},
        "lastState": {"terminated": {"exitCode": 2, "reason": "Error"}}}]
    failure = judge(snap).failure
    assert (failure.reason, failure.container, failure.exit_code, failure.image) == (
        "CrashLoopBackOff", "migrate", 2, "busybox:1")
    assert pod_state(pod) == "Init:CrashLoopBackOff"


def test_pods_of_other_replicasets_and_terminating_pods_are_ignored() -> None:
    snap = load("kwok_progressing")
    new = find_new_replicaset(snap["deployment"], snap["replicasets"])
    for pod in snap["pods"]:
        status = pod["status"]["containerStatuses"][0]
        if pods_of(new, [pod]):
            pod["metadata"]["deletionTimestamp"] = snap["captured_at"]
        status.update(ready=False, state={"waiting": {"reason": "CrashLoopBackOff"}})
    assert judge(snap).state == PROGRESSING
    assert pods_of(new, snap["pods"]) == []


def test_ready_pods_are_ready_addressed_and_not_leaving() -> None:
    def pod(name: str, ready: str, ip: str | None, leaving: bool = False) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if leaving:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        status: dict[str, Any] = {"conditions": [{"type": "Ready", "status": ready}]}
        if ip:
            status["podIP"] = ip
        return {"metadata": meta, "status": status}

    pods = [pod("a", "True", "10.0.0.1"), pod("b", "False", "10.0.0.2"),
            pod("c", "True", None), pod("d", "True", "10.0.0.4", leaving=True),
            {"metadata": {"name": "e"}, "status": {"podIP": "10.0.0.5"}},
            pod("f", "True", "10.0.0.6")]
    assert ready_pods(pods) == [{"name": "a", "ip": "10.0.0.1"}, {"name": "f", "ip": "10.0.0.6"}]
    assert ready_pods([]) == []


def test_new_replicaset_by_revision_when_templates_differ() -> None:
    snap = load("kwok_complete")
    snap["deployment"]["spec"]["template"]["metadata"]["annotations"] = {"x": "defaulted"}
    assert find_new_replicaset(snap["deployment"], snap["replicasets"])["metadata"]["name"] == \
        "rs-fx-complete-5897844f86"
    snap["deployment"]["spec"]["paused"] = True
    assert find_new_replicaset(snap["deployment"], snap["replicasets"]) is None


def test_replicasets_of_another_owner_are_ignored() -> None:
    snap = load("kwok_complete")
    for rs in snap["replicasets"]:
        rs["metadata"]["ownerReferences"][0]["uid"] = "someone-else"
    assert find_new_replicaset(snap["deployment"], snap["replicasets"]) is None
    assert find_previous_replicaset(snap["deployment"], snap["replicasets"], None) is None


def test_previous_prefers_the_highest_revision_that_had_replicas() -> None:
    snap = load("kwok_progressing")
    deployment, rss = snap["deployment"], snap["replicasets"]
    new = find_new_replicaset(deployment, rss)
    old = next(rs for rs in rss if rs is not new)
    stale = copy.deepcopy(old)
    stale["metadata"].update(name="rs-fx-progressing-stale", annotations={
        "deployment.kubernetes.io/revision": "1"})
    old["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "0"
    stale["spec"]["replicas"], stale["status"]["replicas"] = 0, 0
    # revision 1 has no replicas, revision 0 still serves: 0 is what the rollout replaces.
    assert find_previous_replicaset(deployment, [*rss, stale], new)["metadata"]["name"] == \
        old["metadata"]["name"]
    old["spec"]["replicas"], old["status"]["replicas"] = 0, 0
    assert find_previous_replicaset(deployment, [*rss, stale], new)["metadata"]["name"] == \
        "rs-fx-progressing-stale"


def test_is_complete_needs_old_replicas_gone() -> None:
    snap = load("real_progressing")
    assert not is_complete(snap["deployment"])
    snap["deployment"]["status"]["replicas"] = 1
    snap["deployment"]["status"].pop("unavailableReplicas")
    assert is_complete(snap["deployment"])


# Images --------------------------------------------------------------------------------


def test_images_and_digests_from_the_real_node() -> None:
    snap = load("real_complete")
    new = find_new_replicaset(snap["deployment"], snap["replicasets"])
    pods = pods_of(new, snap["pods"])
    # The kubelet reports the repository digest as imageID and, for an image pinned by
    # digest, the local image ID (sha256:2a79..., no repository) as image: that one is skipped.
    status = pods[0]["status"]["containerStatuses"][0]
    assert (status["imageID"], status["image"][:11]) == (REFAPP, "sha256:2a79")
    assert images(snap["deployment"]) == [REFAPP]
    assert image_digests(snap["deployment"], pods) == [REFAPP]


@pytest.mark.parametrize(("template_image", "image_id", "expected"), [
    ("web:1", "docker-pullable://reg/web@sha256:" + "a" * 64, ["reg/web@sha256:" + "a" * 64]),
    ("web:1", "reg/web@sha256:" + "b" * 64, ["reg/web@sha256:" + "b" * 64]),
    ("web:1", "sha256:" + "c" * 64, []),
    ("web:1", "", []),
    ("reg/web@sha256:" + "d" * 64, "", ["reg/web@sha256:" + "d" * 64]),
])
def test_image_digests(template_image: str, image_id: str, expected: list[str]) -> None:
    snap = load("kwok_complete")
    deployment = snap["deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = template_image
    pod = _new_pod(snap)
    pod["status"]["containerStatuses"][0].update(image=template_image, imageID=image_id)
    assert image_digests(deployment, [pod]) == expected


# Small helpers -------------------------------------------------------------------------


@pytest.mark.parametrize(("selector", "expected"), [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "canary", "operator": "DoesNotExist"},
        {"key": "team", "operator": "Exists"}]},
     "app=web,tier in (a,b),env notin (dev),!canary,team"),
])
def test_selector_string(selector: dict[str, Any], expected: str) -> None:
    assert selector_string(selector) == expected


@pytest.mark.parametrize(("selector", "message"), [
    ({}, "the Deployment has an empty selector"),
    (None, "the Deployment has an empty selector"),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     "unsupported label selector operator 'Gt' for key 'a'"),
])
def test_selector_string_rejects(selector: Any, message: str) -> None:
    with pytest.raises(RolloutError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        selector_string(selector)


@pytest.mark.parametrize(("text", "expected"), [
    ("2026-11-27T18:24:48Z", 1795803888.0),
    ("2026-11-27T18:24:48.361830Z", 1795803888.36183),
    ("2026-11-27T18:24:48.5Z", 1795803888.5),
    ("2026-11-27T19:24:48+01:00", 1795803888.0),
    ("2026-11-27T18:24:48.123456789Z", 1795803888.123456),
    ("yesterday", None),
    (None, None),
    ("", None),
])
def test_parse_time(text: Any, expected: float | None) -> None:
    assert parse_time(text) == pytest.approx(expected) if expected else parse_time(text) is None


@pytest.mark.parametrize(("policy", "message"), [
    ({"ready_timeout": -1}, "ready_timeout must be 0 or more seconds, got -1"),
    ({"schedule_timeout": -0.5}, "schedule_timeout must be 0 or more seconds, got -0.5"),
    ({"crash_threshold": 0}, "crash_threshold must be 1 or more, got 0"),
])
def test_policy_rejects(policy: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy(**policy)
    assert str(info.value) == message


@pytest.mark.parametrize(("fixture", "states"), [
    ("kwok_complete", ["Ready", "Ready", "Ready"]),
    ("kwok_unpullable", ["ImagePullBackOff", "ImagePullBackOff"]),
    ("kwok_never_ready", ["Running, not ready", "Running, not ready"]),
    ("kwok_unschedulable", ["Unschedulable"]),
    ("real_crash_first_exit", ["Error"]),
    ("real_progressing", ["ContainerCreating", "Ready"]),
])
def test_pod_state(fixture: str, states: list[str]) -> None:
    assert [pod_state(p) for p in load(fixture)["pods"]] == states


def test_telling_line_prefers_the_exception() -> None:
    logs = load("real_crashloop")["logs"]["rs-fx-real-crash-5d9dd8686-6fkr7"]["previous"]
    assert telling_line(logs.splitlines()) == (
        "refapp.app.StartupAbort: FAULT_EXIT_AT_START is set: refusing to start (injected fault)")
    assert telling_line(["starting", "listening on :8000", ""]) == "listening on :8000"
    assert telling_line(["goroutine 1", "panic: runtime error: index out of range"]) == \
        "panic: runtime error: index out of range"
    assert telling_line([]) is None


@pytest.mark.parametrize(("failure", "logs", "expected"), [
    (Failure("CrashLoopBackOff", "back-off 10s", pod="web-1", container="app", exit_code=1,
             restart_count=2, log_source="previous"),
     ["boot", "KeyError: 'DATABASE_URL'", "exiting"],
     "pod web-1 container app CrashLoopBackOff (exit code 1, 2 restarts): KeyError:"
     " 'DATABASE_URL'"),
    (Failure("CrashLoopBackOff", "back-off 10s", pod="web-1", container="app", exit_code=1,
             restart_count=1, log_source="previous"), [],
     "pod web-1 container app CrashLoopBackOff (exit code 1, 1 restart): back-off 10s"),
    (Failure("ImagePullBackOff", "Back-off pulling image", pod="web-1", container="app",
             restart_count=0), ["ignored"],
     "pod web-1 container app ImagePullBackOff: Back-off pulling image"),
    (Failure("ReadinessTimeout", "not ready for 12 s", pod="web-1", container="app",
             exit_code=0, restart_count=0, log_source="current"), ["GET /health 503"],
     "pod web-1 container app ReadinessTimeout: not ready for 12 s"),
    (Failure("Paused", "Deployment a/b is paused"), None, "Paused: Deployment a/b is paused"),
])
def test_summary(failure: Failure, logs: list[str] | None, expected: str) -> None:
    assert summary(failure, logs) == expected


def test_timeout_failure_points_at_an_unready_pod() -> None:
    snap = load("kwok_never_ready")
    failure = timeout_failure(snap["deployment"], snap["replicasets"], snap["pods"], 30)
    assert (failure.reason, failure.pod, failure.container, failure.log_source) == (
        "Timeout", "rs-fx-never-ready-74d8bb9b4-5qwsn", "app", "current")
    assert failure.message == "not complete after 30 s: 0 of 2 updated replicas available"
    assert failure.involved == ("Pod", "rs-fx-never-ready-74d8bb9b4-5qwsn")


def test_failure_to_dict_keys() -> None:
    failure = judge(load("real_crashloop")).failure
    assert failure.to_dict() == {
        "reason": "CrashLoopBackOff",
        "message": failure.message,
        "pod": "rs-fx-real-crash-5d9dd8686-6fkr7",
        "container": "app",
        "image": REFAPP,
        "exit_code": 3,
        "restart_count": 1,
        "hints": ["the container exits soon after it starts: its last log lines say why"],
    }
