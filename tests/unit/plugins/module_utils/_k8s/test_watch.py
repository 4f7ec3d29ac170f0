# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The watch loop with a fake API (captured objects, scripted errors) and a fake clock;
ClientApi's error translation against a local HTTP server and a closed port."""

from __future__ import annotations

import copy
import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client import ApiClient, Configuration
from kubernetes.client.exceptions import ApiException
from urllib3.connection import HTTPSConnection
from urllib3.connectionpool import HTTPSConnectionPool
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError, SSLError

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.rollout import (
    Policy,
    PolicyError,
    RolloutError,
    parse_time,
    telling_line,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    AccessDenied,
    ApiUnreachable,
    ClientApi,
    KubeApiError,
    NotFound,
    Timeline,
    WatchOptions,
    connection_reason,
    event_lines,
    log_excerpt,
    log_read_lines,
    ride_out,
    start_client,
    watch,
)

FIXTURES = Path(__file__).parent / "fixtures"
NS = "prodready"


def load(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / f"rollout_{name}.json").read_text(encoding="utf-8"))


class FakeClock:
    """Time moves only when the watcher sleeps; wall time starts at `wall`."""

    def __init__(self, wall: float) -> None:
        self.t = 0.0
        self.wall = wall
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> float:
        return self.wall + self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds


class FakeApi:
    """Serves snapshots in turn (the last one again when they run out). A step may be an
    exception instead, raised by read_deployment at that poll."""

    host = "https://api.test:6443"

    def __init__(self, steps: list[Any], events: dict[str, list[dict]] | None = None,
                 logs: dict[tuple[str, bool], Any] | None = None,
                 server_time: float | None = None) -> None:
        self.steps = steps
        self.events = events or {}
        self.logs = logs or {}
        self.calls: list[tuple] = []
        self.index = -1
        self._server_time = server_time

    @property
    def snap(self) -> dict[str, Any]:
        return self.steps[min(self.index, len(self.steps) - 1)]

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        self.index += 1
        self.calls.append(("read_deployment", namespace, name))
        if isinstance(self.snap, Exception):
            raise self.snap
        return copy.deepcopy(self.snap["deployment"])

    def list_replicasets(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list_replicasets", namespace, selector))
        return copy.deepcopy(self.snap["replicasets"])

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        self.calls.append(("list_pods", namespace, selector))
        return copy.deepcopy(self.snap["pods"])

    def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        self.calls.append(("list_events", namespace, kind, name))
        found = self.events.get(name)
        if isinstance(found, Exception):
            raise found
        return copy.deepcopy(found or [])

    def read_log(self, namespace: str, pod: str, container: str, previous: bool,
                 tail_lines: int) -> str:
        self.calls.append(("read_log", pod, container, previous, tail_lines))
        found = self.logs.get((pod, previous))
        if isinstance(found, Exception):
            raise found
        if found is None:
            raise KubeApiError(400, f"previous terminated container {container!r} not found")
        return "".join(found.splitlines(keepends=True)[-tail_lines:])

    def server_time(self) -> float | None:
        return self._server_time

    def called(self, name: str) -> list[tuple]:
        return [c for c in self.calls if c[0] == name]


def run(api: FakeApi, wall: float, name: str = "web", **options: Any):
    policy = options.pop("policy", None) or Policy()
    clock = FakeClock(wall)
    result = watch(api, NS, name, WatchOptions(policy=policy, **options), clock)
    return result, clock


def wall_of(snap: dict[str, Any]) -> float:
    return parse_time(snap["captured_at"])


# Outcomes ------------------------------------------------------------------------------


def test_progressing_then_complete() -> None:
    progressing, complete = load("real_progressing"), load("real_complete")
    api = FakeApi([progressing, progressing, complete])
    result, clock = run(api, wall_of(progressing), "rs-fx-real-ok", poll_interval=2)
    out = result.to_dict()
    assert out["status"] == "complete"
    assert (out["polls"], out["elapsed"], clock.sleeps) == (3, 4.0, [2, 2])
    assert (out["revision"], out["previous_revision"], out["new_replicaset"]) == (
        2, 1, "rs-fx-real-ok-5457dd66")
    assert out["replicas"] == {"desired": 1, "updated": 1, "ready": 1, "available": 1}
    assert out["images"] == out["image_digests"] == [
        "127.0.0.1:5000/refapp@sha256:"
        "d4a214bdbb8ac8926b36b64740ab830ebe89d52a7e34ead082464f75a783c907"]
    assert out["failure"] is None
    # Where a check can go at once, without listing the pods again.
    assert out["ready_pods"] == [{"name": "rs-fx-real-ok-5457dd66-rkhvc", "ip": "10.244.0.143"}]
    assert out["timeline"] == [
        {"t": 0.0, "event": "watching Deployment prodready/rs-fx-real-ok (generation 2,"
                            " 1 replicas desired)"},
        {"t": 0.0, "event": "new ReplicaSet rs-fx-real-ok-5457dd66 (revision 2)"},
        {"t": 0.0, "event": "1/1 ready, 1 updated, 1 available, 1 old pending termination"},
        {"t": 0.0, "event": "pod rs-fx-real-ok-5457dd66-rkhvc ContainerCreating"},
        {"t": 4.0, "event": "1/1 ready, 1 updated, 1 available"},
        {"t": 4.0, "event": "pod rs-fx-real-ok-5457dd66-rkhvc Ready"},
        {"t": 4.0, "event": "rollout complete"},
    ]
    assert result.message == ("Rollout of Deployment prodready/rs-fx-real-ok complete:"
                              " Deployment prodready/rs-fx-real-ok successfully rolled out"
                              " (1 replica)")
    # Pods are listed by the Deployment's selector and the new template's hash only.
    assert api.called("list_pods")[0] == (
        "list_pods", NS, "app=rs-fx-real-ok,pod-template-hash=5457dd66")
    assert api.called("list_replicasets")[0] == ("list_replicasets", NS, "app=rs-fx-real-ok")
    assert not api.called("list_events") and not api.called("read_log")


def test_crashloop_fails_with_events_and_the_previous_log() -> None:
    snap = load("real_crashloop")
    pod = "rs-fx-real-crash-5d9dd8686-6fkr7"
    api = FakeApi([snap], events=snap["events"],
                  logs={(pod, True): snap["logs"][pod]["previous"]})
    result, _clock = run(api, wall_of(snap), "rs-fx-real-crash", event_lines=3, log_lines=5)
    out = result.to_dict()
    assert (out["status"], out["polls"], out["elapsed"]) == ("failed", 1, 0.0)
    failure = out["failure"]
    assert (failure["reason"], failure["pod"], failure["container"], failure["exit_code"],
            failure["restart_count"]) == ("CrashLoopBackOff", pod, "app", 3, 1)
    # the last three by time, oldest first, with their repeat counts
    assert failure["events"] == [
        "2026-11-27T18:24:52Z Warning Unhealthy: Readiness probe failed: Get"
        ' "http://10.244.0.144:8000/health": dial tcp 10.244.0.144:8000: connect: connection'
        " refused (x3)",
        "2026-11-27T18:24:53Z Warning MissingClusterDNS: pod:"
        ' "rs-fx-real-crash-5d9dd8686-6fkr7_prodready(6341a00f-b650-4e60-a5ee-cf51b2c69d56)".'
        " kubelet does not have ClusterDNS IP configured and cannot create Pod using"
        ' "ClusterFirst" policy. Falling back to "Default" policy. (x7)',
        "2026-11-27T18:24:53Z Warning BackOff: Back-off restarting failed container app in pod"
        " rs-fx-real-crash-5d9dd8686-6fkr7_prodready(6341a00f-b650-4e60-a5ee-cf51b2c69d56) (x2)",
    ]
    # Five lines: the last five hold no exception line, so the excerpt starts with the lines
    # ending at the worker's exception (read from a wider window), then the log's end.
    assert failure["logs"] == [
        '    raise StartupAbort("FAULT_EXIT_AT_START is set: refusing to start (injected fault)")',
        "refapp.app.StartupAbort: FAULT_EXIT_AT_START is set: refusing to start (injected fault)",
        "[... 3 lines left out ...]",
        "[2026-11-27 18:24:51 +0000] [1] [INFO] Worker (pid:6) was sent SIGTERM!",
        "[2026-11-27 18:24:51 +0000] [1] [ERROR] Shutting down: Master",
        "[2026-11-27 18:24:51 +0000] [1] [ERROR] Reason: Worker failed to boot.",
    ]
    assert (failure["logs_error"], failure["events_error"]) == (None, None)
    # The previous instance's log explains the exit: the current one is not read.
    assert api.called("read_log") == [("read_log", pod, "app", True, 200)]
    assert api.called("list_events") == [("list_events", NS, "Pod", pod)]
    assert result.message == (
        "Rollout of Deployment prodready/rs-fx-real-crash failed: pod"
        f" {pod} container app CrashLoopBackOff (exit code 3, 1 restart): refapp.app.StartupAbort:"
        " FAULT_EXIT_AT_START is set: refusing to start (injected fault)")
    assert out["timeline"][-2:] == [
        {"t": 0.0, "event": f"pod {pod} CrashLoopBackOff"},
        {"t": 0.0, "event": "rollout failed: CrashLoopBackOff"}]


def test_the_message_quotes_the_telling_log_line() -> None:
    snap = load("real_crashloop")
    pod = "rs-fx-real-crash-5d9dd8686-6fkr7"
    api = FakeApi([snap], logs={(pod, True): snap["logs"][pod]["previous"]})
    result, _clock = run(api, wall_of(snap), "rs-fx-real-crash", log_lines=20)
    assert result.message == (
        f"Rollout of Deployment prodready/rs-fx-real-crash failed: pod {pod} container app"
        " CrashLoopBackOff (exit code 3, 1 restart): refapp.app.StartupAbort:"
        " FAULT_EXIT_AT_START is set: refusing to start (injected fault)")
    assert len(result.failure["logs"]) == 20


def test_log_read_failures_are_reported_not_fatal() -> None:
    snap = load("kwok_crashloop")
    pod = "rs-fx-crashloop-555bf6c794-66246"
    refused = KubeApiError(500, 'Get "https://127.0.0.1:10250/containerLogs/...": dial tcp'
                                " 127.0.0.1:10250: connect: connection refused")
    api = FakeApi([snap], logs={(pod, True): refused, (pod, False): refused},
                  events={pod: KubeApiError(403, "events is forbidden")})
    result, _clock = run(api, wall_of(snap), "rs-fx-crashloop")
    failure = result.failure
    assert failure["reason"] == "CrashLoopBackOff"
    assert failure["logs"] == [] and failure["events"] == []
    assert failure["logs_error"] == (
        'logs unavailable: the Kubernetes API answered 500: Get "https://127.0.0.1:10250/'
        'containerLogs/...": dial tcp 127.0.0.1:10250: connect: connection refused')
    assert failure["events_error"] == ("events unavailable: the Kubernetes API answered 403:"
                                       " events is forbidden")
    # previous first (the container restarted), then the current instance
    assert [c[3] for c in api.called("read_log")] == [True, False]
    assert result.message.endswith("CrashLoopBackOff (exit code 1, 3 restarts): back-off 40s"
                                   f" restarting failed container=app pod={pod}_prodready")


def test_previous_log_gone_falls_back_to_the_current_one() -> None:
    snap = load("kwok_crashloop")
    pod = "rs-fx-crashloop-555bf6c794-66246"
    api = FakeApi([snap], logs={(pod, False): "starting\nValueError: bad config\n\n"})
    result, _clock = run(api, wall_of(snap), "rs-fx-crashloop")
    assert result.failure["logs"] == ["starting", "ValueError: bad config"]
    assert result.failure["logs_error"] is None
    assert result.message.endswith("(exit code 1, 3 restarts): ValueError: bad config")


def test_a_restart_between_the_watch_and_the_log_read_still_finds_the_crash() -> None:
    """Seen terminated (its first exit, crash_threshold 1), restarted before its log is read:
    the current log is the new instance's, without the crash, so the previous one is read
    and wins because it holds the exception."""
    snap = load("real_crash_first_exit")
    pod = "rs-fx-real-crash-5d9dd8686-6fkr7"
    api = FakeApi([snap], logs={
        (pod, False): "[INFO] Starting gunicorn 23.0.0\n[INFO] Booting worker with pid: 7\n",
        (pod, True): "Traceback (most recent call last):\n  File \"wsgi.py\", line 18\n"
                     "refapp.app.StartupAbort: FAULT_EXIT_AT_START is set\n"
                     "[ERROR] Reason: Worker failed to boot.\n"})
    result, _clock = run(api, wall_of(snap), "rs-fx-real-crash",
                         policy=Policy(crash_threshold=1))
    assert result.failure["reason"] == "CrashThresholdReached"
    assert [c[3] for c in api.called("read_log")] == [False, True]
    assert "refapp.app.StartupAbort: FAULT_EXIT_AT_START is set" in result.failure["logs"]
    assert result.message.endswith("refapp.app.StartupAbort: FAULT_EXIT_AT_START is set")


def test_container_that_never_started_has_no_log_to_read() -> None:
    snap = load("real_image_pull")
    api = FakeApi([snap], events=snap["events"])
    result, _clock = run(api, wall_of(snap), "rs-fx-real-pull")
    failure = result.failure
    assert failure["reason"] == "ErrImagePull"
    assert failure["logs_error"] == "logs unavailable: the container has not started"
    assert not api.called("read_log")
    assert "Error: ErrImagePull" in " ".join(failure["events"])


def test_zero_lines_read_nothing() -> None:
    snap = load("real_crashloop")
    api = FakeApi([snap], events=snap["events"])
    result, _clock = run(api, wall_of(snap), "rs-fx-real-crash", event_lines=0, log_lines=0)
    assert (result.failure["events"], result.failure["logs"]) == ([], [])
    assert not api.called("read_log") and not api.called("list_events")


def test_readiness_timeout_follows_the_clock() -> None:
    snap = load("kwok_never_ready")
    start = parse_time("2026-11-27T18:24:21Z")  # the containers' startedAt
    api = FakeApi([snap])
    result, clock = run(api, start, "rs-fx-never-ready", poll_interval=1,
                        policy=Policy(ready_timeout=5))
    # not ready 5 s after the start is allowed; the poll at 6 s fails it
    assert (result.status, result.failure["reason"], result.polls, clock.t) == (
        "failed", "ReadinessTimeout", 7, 6.0)
    assert result.failure["message"] == ("container app has been running for 6 s without"
                                         " becoming ready (ready_timeout 5 s)")


def test_the_api_servers_clock_wins_over_a_skewed_local_clock() -> None:
    snap = load("kwok_never_ready")
    start = parse_time("2026-11-27T18:24:21Z")
    api = FakeApi([snap], server_time=start + 200)
    result, _clock = run(api, start - 3600, "rs-fx-never-ready")  # local clock an hour behind
    assert (result.failure["reason"], result.polls) == ("ReadinessTimeout", 1)


def test_timeout() -> None:
    snap = load("kwok_unschedulable")
    api = FakeApi([snap], events={"rs-fx-unschedulable-5cfdcb9565-ctm9g": [{
        "type": "Warning", "reason": "FailedScheduling", "count": 4,
        "lastTimestamp": "2026-11-27T18:24:28Z",
        "message": "0/5 nodes are available: 5 node(s) didn't match Pod's node affinity"}]})
    result, clock = run(api, wall_of(snap), "rs-fx-unschedulable", timeout=2.5, poll_interval=1)
    assert (result.status, result.polls, clock.sleeps, result.elapsed) == (
        "failed", 4, [1, 1, 0.5], 2.5)
    failure = result.failure
    assert (failure["reason"], failure["pod"]) == (
        "Timeout", "rs-fx-unschedulable-5cfdcb9565-ctm9g")
    assert failure["message"] == "not complete after 2.5 s: 0 of 1 updated replicas available"
    assert failure["events"] == [
        "2026-11-27T18:24:28Z Warning FailedScheduling: 0/5 nodes are available: 5 node(s)"
        " didn't match Pod's node affinity (x4)"]
    assert result.message == (
        "Rollout of Deployment prodready/rs-fx-unschedulable failed: pod"
        " rs-fx-unschedulable-5cfdcb9565-ctm9g Timeout: not complete after 2.5 s: 0 of 1"
        " updated replicas available")
    assert result.timeline[-1] == {"t": 2.5, "event": "timeout after 2.5 s"}


# Errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("error", "kind", "message"), [
    (KubeApiError(404, 'deployments.apps "web" not found'), NotFound,
     "Deployment prodready/web not found"),
    (KubeApiError(403, 'deployments.apps "web" is forbidden: User "deployer" cannot get'
                       ' resource "deployments"'), AccessDenied,
     'Cannot read Deployment prodready/web: namespace missing or access denied:'
     ' deployments.apps "web" is forbidden: User "deployer" cannot get resource "deployments"'),
    (KubeApiError(401, "Unauthorized"), AccessDenied,
     "Cannot read Deployment prodready/web: the Kubernetes API refused the credentials:"
     " Unauthorized"),
    (ApiUnreachable("https://api.test:6443", "[Errno 111] Connection refused"), ApiUnreachable,
     "Cannot watch Deployment prodready/web: cannot reach the Kubernetes API at"
     " https://api.test:6443: [Errno 111] Connection refused"),
    (KubeApiError(503, "the server is currently unable to handle the request"), KubeApiError,
     "Cannot watch Deployment prodready/web: the Kubernetes API answered 503: the server is"
     " currently unable to handle the request"),
])
def test_a_first_read_that_fails_fails_at_once(error: Exception, kind: type,
                                               message: str) -> None:
    api = FakeApi([error])
    with pytest.raises(kind) as info:
        run(api, 0.0)
    assert str(info.value) == message
    assert len(api.called("read_deployment")) == 1


def test_listing_pods_forbidden_names_what() -> None:
    snap = load("kwok_complete")

    class NoPods(FakeApi):
        def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
            raise KubeApiError(403, 'pods is forbidden: User "x" cannot list resource "pods"')

    with pytest.raises(AccessDenied) as info:
        run(NoPods([snap]), wall_of(snap), "rs-fx-complete")
    assert str(info.value) == (
        "Cannot read the pods of Deployment prodready/rs-fx-complete: namespace missing or"
        ' access denied: pods is forbidden: User "x" cannot list resource "pods"')


def test_transient_errors_after_the_first_read_are_retried() -> None:
    progressing, complete = load("real_progressing"), load("real_complete")
    blip = ApiUnreachable("https://api.test:6443", "[Errno 111] Connection refused")
    api = FakeApi([progressing, blip, KubeApiError(503, "unavailable"), complete])
    result, _clock = run(api, wall_of(progressing), "rs-fx-real-ok")
    assert (result.status, result.polls) == ("complete", 2)
    events = [e["event"] for e in result.timeline]
    assert events.count(
        "API error, retrying: Cannot watch Deployment prodready/rs-fx-real-ok: cannot reach the"
        " Kubernetes API at https://api.test:6443: [Errno 111] Connection refused") == 1
    assert events.count(
        "API error, retrying: Cannot watch Deployment prodready/rs-fx-real-ok: the Kubernetes API"
        " answered 503: unavailable") == 1


def test_an_outage_within_api_grace_is_ridden_out_and_noted_once() -> None:
    progressing = load("real_progressing")
    blip = ApiUnreachable("https://api.test:6443", "[Errno 111] Connection refused")
    api = FakeApi([progressing, *[blip] * 8, load("real_complete")])
    result, clock = run(api, wall_of(progressing), "rs-fx-real-ok", api_grace=10.0)
    assert result.status == "complete"
    events = [e["event"] for e in result.timeline]
    assert sum(e.startswith("API error, retrying") for e in events) == 1
    assert "API answers again after 8.0 s" in events
    # polls once a second while the API is away, at poll_interval otherwise
    assert clock.sleeps[:9] == [0.25] + [1.0] * 8


def test_an_outage_longer_than_api_grace_fails_saying_how_long() -> None:
    progressing = load("real_progressing")
    blip = ApiUnreachable("https://api.test:6443", "timed out")
    api = FakeApi([progressing, *[blip] * 6, load("real_complete")])
    with pytest.raises(ApiUnreachable) as info:
        run(api, wall_of(progressing), "rs-fx-real-ok", api_grace=3.0)
    assert str(info.value) == (
        "Cannot watch Deployment prodready/rs-fx-real-ok: cannot reach the Kubernetes API at"
        " https://api.test:6443: timed out (for 3.0 s, longer than api_grace of 3 s)")
    # one read, then one a second until the next wait would pass api_grace
    assert len(api.called("read_deployment")) == 5


def test_without_api_grace_a_throttling_answer_fails_at_once_with_its_status() -> None:
    progressing = load("real_progressing")
    api = FakeApi([progressing, *[KubeApiError(429, "slow down")] * 3])
    with pytest.raises(KubeApiError) as info:
        run(api, wall_of(progressing), "rs-fx-real-ok", api_grace=0.0)
    assert info.value.status == 429
    assert str(info.value) == (
        "Cannot watch Deployment prodready/rs-fx-real-ok: the Kubernetes API answered 429: slow"
        " down")
    assert len(api.called("read_deployment")) == 2


def flaky(*outcomes: Any) -> Any:
    """A call that raises or returns the outcomes in turn."""
    pending = list(outcomes)

    def call() -> Any:
        outcome = pending.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return call


def test_ride_out_returns_once_the_api_answers_again() -> None:
    refused = ApiUnreachable("https://api.test:6443", "[Errno 111] Connection refused")
    clock, retried = FakeClock(0.0), []
    result = ride_out(flaky(refused, KubeApiError(503, "starting"), "answer"), 60, clock,
                      retried.append)
    assert result == "answer"
    assert clock.sleeps == [1.0, 1.0]
    assert [type(e).__name__ for e in retried] == ["ApiUnreachable", "KubeApiError"]


def test_ride_out_gives_up_after_grace_saying_how_long() -> None:
    refused = ApiUnreachable("https://api.test:6443", "[Errno 111] Connection refused")
    clock = FakeClock(0.0)
    with pytest.raises(ApiUnreachable) as info:
        ride_out(flaky(*[refused] * 10), 3, clock)
    assert str(info.value) == ("cannot reach the Kubernetes API at https://api.test:6443:"
                               " [Errno 111] Connection refused (for 3.0 s, longer than"
                               " api_grace of 3 s)")
    assert clock.sleeps == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("error", [KubeApiError(403, "forbidden"), KubeApiError(404, "gone"),
                                   RolloutError("not an API error")])
def test_ride_out_never_retries_a_real_answer(error: Exception) -> None:
    clock = FakeClock(0.0)
    with pytest.raises(type(error)) as info:
        ride_out(flaky(error, "never"), 60, clock)
    assert info.value is error and clock.sleeps == []


def test_ride_out_with_no_grace_fails_at_once_unchanged() -> None:
    refused = ApiUnreachable("https://api.test:6443", "refused")
    with pytest.raises(ApiUnreachable) as info:
        ride_out(flaky(refused), 0, FakeClock(0.0))
    assert info.value is refused


def test_a_bad_request_is_not_retried() -> None:
    progressing = load("real_progressing")
    api = FakeApi([progressing, KubeApiError(400, "bad selector")])
    with pytest.raises(KubeApiError, match="answered 400: bad selector$"):
        run(api, wall_of(progressing), "rs-fx-real-ok")


def test_deleted_during_the_watch() -> None:
    progressing = load("real_progressing")
    api = FakeApi([progressing, KubeApiError(404, "not found")])
    with pytest.raises(NotFound) as info:
        run(api, wall_of(progressing), "rs-fx-real-ok")
    assert str(info.value) == ("Deployment prodready/rs-fx-real-ok not found: it was deleted"
                               " during the watch")


def test_unsupported_selector_names_the_deployment() -> None:
    snap = load("kwok_complete")
    snap["deployment"]["spec"]["selector"] = {"matchExpressions": [
        {"key": "app", "operator": "Gt", "values": ["1"]}]}
    with pytest.raises(RolloutError) as info:
        run(FakeApi([snap]), wall_of(snap), "rs-fx-complete")
    assert str(info.value) == ("Cannot watch Deployment prodready/rs-fx-complete: unsupported"
                               " label selector operator 'Gt' for key 'app'")


@pytest.mark.parametrize(("options", "message"), [
    ({"timeout": 0}, "timeout must be more than 0 seconds, got 0"),
    ({"poll_interval": -1}, "poll_interval must be more than 0 seconds, got -1"),
    ({"event_lines": -1}, "event_lines must be 0 or more, got -1"),
    ({"log_lines": -2}, "log_lines must be 0 or more, got -2"),
])
def test_watch_options_reject(options: dict[str, Any], message: str) -> None:
    with pytest.raises(PolicyError) as info:
        WatchOptions(**options)
    assert str(info.value) == message


# Small parts ---------------------------------------------------------------------------


def test_timeline_keeps_head_and_tail() -> None:
    timeline = Timeline(limit=10)
    for i in range(25):
        timeline.add(i, f"e{i}")
    entries = timeline.entries()
    assert len(entries) == 10
    assert [e["event"] for e in entries] == [
        "e0", "e1", "e2", "e3", "e4", "(16 entries left out)", "e21", "e22", "e23", "e24"]
    assert entries[5]["t"] == 5


def test_timeline_of_a_long_watch_is_bounded() -> None:
    snap = load("kwok_never_ready")
    flapping = []
    for i in range(150):
        step = copy.deepcopy(snap)
        for pod in step["pods"]:
            pod["status"]["containerStatuses"][0]["state"] = (
                {"waiting": {"reason": f"Waiting{i}"}})
        flapping.append(step)
    api = FakeApi(flapping)
    result, _clock = run(api, wall_of(snap), "rs-fx-never-ready", timeout=149)
    assert len(result.timeline) == 100
    assert result.timeline[50]["event"].endswith("entries left out)")


def test_event_lines_order_and_limit() -> None:
    events = [
        {"type": "Normal", "reason": "B", "message": "second ",
         "lastTimestamp": "2026-01-01T00:00:02Z"},
        {"type": "Warning", "reason": "C", "message": "third",
         "eventTime": "2026-01-01T00:00:03.5Z", "series": {"count": 4}},
        {"type": "Normal", "reason": "A", "message": "first",
         "firstTimestamp": "2026-01-01T00:00:01Z", "count": 1},
    ]
    assert event_lines(events, 2) == ["2026-01-01T00:00:02Z Normal B: second",
                                      "2026-01-01T00:00:03.5Z Warning C: third (x4)"]
    assert event_lines(events, 0) == []


def test_log_excerpt_of_a_log_without_exceptions_is_its_tail() -> None:
    assert log_excerpt("a\nb\nc\n\n", 2) == ["b", "c"]
    assert log_excerpt("x" * 5000, 1) == ["x" * 1000]
    assert log_excerpt("a\n", 0) == []


def test_log_excerpt_keeps_the_exception_above_a_long_shutdown_traceback() -> None:
    """gunicorn 27's halt race: the worker's exception, then 30 lines of the master
    re-raising HaltServer (recorded from the reference image). The last 20 lines alone say
    only HaltServer."""
    text = (FIXTURES / "log_gunicorn_halt_race.txt").read_text()
    assert not any("StartupAbort" in line for line in text.splitlines()[-20:])
    lines = log_excerpt(text, 20)
    assert len(lines) == 21
    assert lines[9] == ("refapp.app.StartupAbort: FAULT_EXIT_AT_START is set: refusing to start"
                        " (injected fault)")
    assert lines[10] == "[... 23 lines left out ...]"
    assert lines[-10:] == text.splitlines()[-10:]
    assert telling_line(lines) == lines[9]
    assert log_excerpt(text, 1) == [lines[9], "[... 33 lines left out ...]"]
    assert log_excerpt(text, 0) == []


def test_log_excerpt_is_the_tail_when_it_explains_or_nothing_does() -> None:
    assert log_excerpt("ValueError: early\nx\nKeyError: late\ny\n", 2) == ["KeyError: late", "y"]
    assert log_excerpt("a\nb\nc\nd\n\n", 2) == ["c", "d"]
    assert log_excerpt("a\nValueError: v\n", 5) == ["a", "ValueError: v"]
    assert log_read_lines(20) == 200 and log_read_lines(50) == 500 and log_read_lines(0) == 0


def test_a_log_without_an_exception_reads_both_instances_and_keeps_the_first() -> None:
    snap = load("real_crashloop")
    pod = "rs-fx-real-crash-5d9dd8686-6fkr7"
    api = FakeApi([snap], logs={(pod, True): "booting\nReason: Worker failed to boot.\n",
                                (pod, False): "booting again\n"})
    result, _clock = run(api, wall_of(snap), "rs-fx-real-crash", log_lines=5)
    assert result.failure["logs"] == ["booting", "Reason: Worker failed to boot."]
    assert [c[3] for c in api.called("read_log")] == [True, False]
    assert result.message.endswith("(exit code 3, 1 restart): Reason: Worker failed to boot.")


@pytest.mark.parametrize(("exc", "expected"), [
    (MaxRetryError(None, "/apis", NewConnectionError(
        HTTPSConnection("127.0.0.1", 1),
        "Failed to establish a new connection: [Errno 111] Connection refused")),
     "[Errno 111] Connection refused"),
    (MaxRetryError(None, "/apis", SSLError(ValueError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed"
           " certificate in certificate chain (_ssl.c:1006)"))),
     "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in"
     " certificate chain (_ssl.c:1006)"),
    (ReadTimeoutError(HTTPSConnectionPool("api.test", 6443), "/apis",
                      "Read timed out. (read timeout=30)"),
     "Read timed out. (read timeout=30)"),
])
def test_connection_reason(exc: BaseException, expected: str) -> None:
    assert connection_reason(exc) == expected


class _Wrapper:
    """Stands for kubernetes.core's K8SClient -> DynamicClient chain around an ApiClient."""

    def __init__(self, inner: Any) -> None:
        self.client = inner


def test_start_client_unwraps_to_the_api_client() -> None:
    api_client = ApiClient(Configuration())
    assert start_client(lambda: _Wrapper(_Wrapper(api_client))) is api_client


def test_start_client_names_the_unreachable_server() -> None:
    """kubernetes.core's client asks for /version while it is made; without a discovery
    cache an unreachable server fails there, and must read like every later failure."""
    def refused() -> Any:
        raise MaxRetryError(HTTPSConnectionPool("127.0.0.1", 1), "/version", NewConnectionError(
            HTTPSConnection("127.0.0.1", 1),
            "Failed to establish a new connection: [Errno 111] Connection refused"))
    with pytest.raises(ApiUnreachable) as caught:
        start_client(refused)
    assert str(caught.value) == ("cannot reach the Kubernetes API at https://127.0.0.1:1:"
                                 " [Errno 111] Connection refused")


def test_start_client_reports_an_error_status() -> None:
    def forbidden() -> Any:
        raise ApiException(status=403, reason="Forbidden")
    with pytest.raises(KubeApiError) as caught:
        start_client(forbidden)
    assert caught.value.status == 403


# ClientApi against real sockets -------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    paths: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        _Handler.paths.append(self.path)
        if self.path.startswith("/apis/apps/v1/namespaces/kube-system/"):
            status, body = 403, {"kind": "Status", "code": 403, "reason": "Forbidden",
                                 "message": 'deployments.apps "web" is forbidden'}
        elif self.path.startswith("/apis/apps/v1/namespaces/prodready/deployments/web"):
            status, body = 200, {"kind": "Deployment", "metadata": {"name": "web"}}
        elif self.path.startswith("/api/v1/namespaces/prodready/pods/web-1/log"):
            status, body = 200, None
        else:
            status, body = 404, {"kind": "Status", "code": 404, "message": "not here"}
        data = b"line 1\nline 2\n" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def local_api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(host: str) -> ClientApi:
    config = Configuration(host=host)
    config.retries = 0
    return ClientApi(ApiClient(config), request_timeout=(2, 5))


def test_client_api_reads_json_and_the_server_clock(local_api: str) -> None:
    api = _client(local_api)
    assert api.read_deployment("prodready", "web") == {
        "kind": "Deployment", "metadata": {"name": "web"}}
    assert api.server_time() is not None
    assert api.read_log("prodready", "web-1", "app", True, 5) == "line 1\nline 2\n"
    # Plain requests, as the typed API would send them.
    assert _Handler.paths[-2:] == [
        "/apis/apps/v1/namespaces/prodready/deployments/web",
        "/api/v1/namespaces/prodready/pods/web-1/log?container=app&previous=true&tailLines=5"]
    with pytest.raises(KubeApiError):
        api.list_events("prodready", "Pod", "web-1")
    assert _Handler.paths[-1] == ("/api/v1/namespaces/prodready/events?fieldSelector="
                                  "involvedObject.kind%3DPod%2CinvolvedObject.name%3Dweb-1")


def test_client_api_error_statuses(local_api: str) -> None:
    api = _client(local_api)
    with pytest.raises(KubeApiError) as info:
        api.read_deployment("kube-system", "web")
    assert (info.value.status, info.value.api_message) == (
        403, 'deployments.apps "web" is forbidden')
    with pytest.raises(KubeApiError) as info:
        api.list_pods("prodready", "app=web")
    assert (info.value.status, info.value.api_message) == (404, "not here")


def test_client_api_unreachable() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    api = _client(f"http://127.0.0.1:{port}")
    with pytest.raises(ApiUnreachable) as info:
        api.read_deployment("prodready", "web")
    assert str(info.value) == (f"cannot reach the Kubernetes API at http://127.0.0.1:{port}:"
                               " [Errno 111] Connection refused")
