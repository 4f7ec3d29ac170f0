# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Watch a Deployment's rollout until it completes, fails, or the time is up.

The loop polls the Deployment, its ReplicaSets and the pods of the new ReplicaSet, hands
them to `rollout.evaluate`, and on a failure gathers what explains it: the last events of
the failing pod and the last lines of its container's log. It talks to the API through the
small `KubeApi` interface (JSON dicts in, typed errors out) and reads time from a `Clock`,
so unit tests drive it with fakes; `ClientApi` implements the interface with the
`kubernetes` client.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.rollout import (
    COMPLETE,
    FAILED,
    HASH_LABEL,
    PROGRESSING,
    Failure,
    Policy,
    PolicyError,
    RolloutError,
    Verdict,
    evaluate,
    explains,
    find_new_replicaset,
    image_digests,
    images,
    name_of,
    parse_time,
    pod_state,
    pods_of,
    ready_pods,
    replica_counts,
    selector_string,
    summary,
    timeout_failure,
)

try:
    # Only the exceptions here: the typed APIs (kubernetes.client.api) load every API and
    # model class, about a second, so ClientApi imports them when it is made and modules
    # that only need the helpers below (deploy_lock, release_record) never pay for them.
    from kubernetes.client.exceptions import ApiException

    HAS_KUBERNETES = True
except ImportError:
    HAS_KUBERNETES = False

try:
    from urllib3.exceptions import HTTPError as Urllib3Error
except ImportError:
    Urllib3Error = OSError

# Transient API trouble (a restart of the API server, a failover, throttling) is retried once
# a second by `ride_out`, for `WatchOptions.api_grace` seconds once the Deployment has been
# read; a first read that fails fails at once (bad address, bad credentials).
OUTAGE_POLL_INTERVAL = 1.0
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
T = TypeVar("T")
TIMELINE_LIMIT = 100
LOG_LINE_LIMIT = 1000
LOG_READ_MIN = 200


# Errors ----------------------------------------------------------------------------------


class KubeApiError(RolloutError):
    """The API server answered with an error status."""

    def __init__(self, status: int, message: str, subject: str = "") -> None:
        self.status = status
        self.api_message = message
        self.subject = subject
        prefix = f"{subject}: " if subject else ""
        super().__init__(f"{prefix}the Kubernetes API answered {status}: {message}")


class ApiUnreachable(RolloutError):
    """No answer from the API server (connection refused, TLS, DNS, timeout)."""

    def __init__(self, host: str, reason: str, subject: str = "") -> None:
        self.host = host
        self.reason = reason
        self.subject = subject
        prefix = f"{subject}: " if subject else ""
        super().__init__(f"{prefix}cannot reach the Kubernetes API at {host}: {reason}")


class NotFound(RolloutError):
    """The Deployment does not exist."""


class AccessDenied(RolloutError):
    """The credentials may not read what the watch needs (or the namespace does not exist)."""


# The interfaces --------------------------------------------------------------------------


class KubeApi(Protocol):
    """The calls the watcher makes. Objects are JSON dicts; errors are KubeApiError (the
    server answered with an error status) or ApiUnreachable (it did not answer)."""

    host: str

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any]: ...

    def list_replicasets(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]: ...

    def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]: ...

    def read_log(self, namespace: str, pod: str, container: str, previous: bool,
                 tail_lines: int) -> str: ...

    def server_time(self) -> float | None:
        """The API server's clock (its last Date header, epoch seconds), None if unknown."""


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clocks: monotonic for durations, wall time for the API's timestamps."""

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


def status_message(exc: Any) -> str:
    try:
        body = json.loads(exc.body)
    except (TypeError, ValueError):
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return str(getattr(exc, "reason", None) or exc)


_CONNECTION_PREFIX = re.compile(r"^<?\w*Connection(?:Pool)?\b[^:]*\)?>?: ")


def connection_reason(exc: BaseException) -> str:
    """The cause of a urllib3/socket failure without the pool's boilerplate."""
    reason: Any = getattr(exc, "reason", None) or exc
    # SSLError(SSLCertVerificationError(1, '[SSL: ...] certificate verify failed: ...'))
    while isinstance(reason, BaseException) and len(reason.args) == 1 and \
            isinstance(reason.args[0], BaseException):
        reason = reason.args[0]
    if isinstance(reason, BaseException) and len(reason.args) == 2 and \
            isinstance(reason.args[1], str) and reason.args[1].startswith("["):
        text = reason.args[1]
    else:
        text = str(reason)
    text = _CONNECTION_PREFIX.sub("", text)
    text = text.replace("Failed to establish a new connection: ", "")
    return text or type(reason).__name__


def pool_url(exc: BaseException) -> str | None:
    """scheme://host:port of the connection pool a urllib3 error came from."""
    pool = getattr(exc, "pool", None)
    if pool is None or not getattr(pool, "host", None):
        return None
    port = f":{pool.port}" if getattr(pool, "port", None) else ""
    return f"{getattr(pool, 'scheme', 'https')}://{pool.host}{port}"


def start_client(factory: Any) -> Any:
    """The kubernetes ApiClient under what ``factory`` makes - kubernetes.core's
    ``get_api_client(module=...)``, whose K8SClient already asks the API server for its
    version and resources while it is made (unless a discovery cache answers). Its network
    and status errors become ApiUnreachable and KubeApiError, like every later request's."""
    try:
        client = factory()
    except ApiException as exc:
        raise KubeApiError(int(exc.status or 0), status_message(exc)) from None
    except (Urllib3Error, OSError) as exc:
        raise ApiUnreachable(pool_url(exc) or "the address the kubeconfig names",
                             connection_reason(exc)) from None
    # K8SClient -> K8SDynamicClient -> kubernetes.client.ApiClient
    while hasattr(client, "client") and not hasattr(client, "call_api"):
        client = client.client
    return client


def outlasted(exc: ApiUnreachable | KubeApiError, seconds: float, grace: float
              ) -> RolloutError:
    """`exc` again, saying that the outage lasted longer than api_grace."""
    lasted = f" (for {seconds:.1f} s, longer than api_grace of {grace:g} s)"
    if isinstance(exc, ApiUnreachable):
        return ApiUnreachable(exc.host, exc.reason + lasted, exc.subject)
    return KubeApiError(exc.status, exc.api_message + lasted, exc.subject)


def ride_out(call: Callable[[], T], grace: float, clock: Clock | None = None,
             on_retry: Callable[[RolloutError], None] | None = None) -> T:
    """`call()`, retried once a second for `grace` seconds while the API is unreachable or
    answers 429/5xx (an API server restart); then the last error, saying how long it lasted.
    For a step that must not give up at the first refused connection: a rollback."""
    clock = clock or SystemClock()
    start = clock.monotonic()
    while True:
        try:
            return call()
        except (ApiUnreachable, KubeApiError) as exc:
            if isinstance(exc, KubeApiError) and exc.status not in TRANSIENT_STATUSES:
                raise
            waited = clock.monotonic() - start
            if waited + OUTAGE_POLL_INTERVAL > grace:
                if waited == 0:
                    raise
                raise outlasted(exc, waited, grace) from None
            if on_retry is not None:
                on_retry(exc)
            clock.sleep(OUTAGE_POLL_INTERVAL)


@dataclass(frozen=True)
class RawResponse:
    status: int
    data: bytes
    date: float | None  # the server's clock (its Date header), when it sent one


def raw_request(api_client: Any, method: str, path: str,
                query: list[tuple[str, str]] | None = None, body: Any = None,
                timeout: tuple[float, float] = (10.0, 30.0),
                content_type: str = "application/json", accept: str | None = None,
                ) -> RawResponse:
    """One request through the kubernetes ApiClient (its auth, TLS and proxy settings),
    without the typed APIs: importing kubernetes.client.api loads every API and model class,
    about half a second per module run here, for the handful of calls a module makes. A
    status outside 2xx raises KubeApiError with the server's message; no answer raises
    ApiUnreachable. Clients older than the generator with ``param_serialize`` use their
    ``call_api(resource_path, method, ...)``."""
    host = str(api_client.configuration.host)
    headers = {"Accept": accept or "application/json, */*", "Content-Type": content_type}
    try:
        if hasattr(api_client, "param_serialize"):
            method, url, headers, data, post = api_client.param_serialize(
                method=method, resource_path=path, query_params=query or [],
                header_params=headers, body=body, auth_settings=["BearerToken"])
            response = api_client.call_api(method, url, header_params=headers, body=data,
                                           post_params=post, _request_timeout=timeout)
            payload = response.read()
            status, reason = response.status, response.reason
            date_header = response.getheader("Date")
        else:  # the older generator: call_api(resource_path, method, ...)
            response = api_client.call_api(
                path, method, query_params=query or [], body=body, header_params=headers,
                auth_settings=["BearerToken"], _preload_content=False,
                _request_timeout=timeout, _return_http_data_only=True)
            payload, status, reason = response.data, response.status, response.reason
            date_header = response.headers.get("Date")
    except ApiException as exc:
        raise KubeApiError(int(exc.status or 0), status_message(exc)) from None
    except (Urllib3Error, OSError) as exc:
        raise ApiUnreachable(host, connection_reason(exc)) from None
    if not 200 <= int(status) < 300:
        exc = ApiException(status=status, reason=reason or "")
        exc.body = payload.decode("utf-8", "replace")
        raise KubeApiError(int(status), status_message(exc))
    date = None
    if date_header:
        try:
            date = email.utils.parsedate_to_datetime(date_header).timestamp()
        except (TypeError, ValueError):
            date = None
    return RawResponse(int(status), payload, date)


class ClientApi:
    """`KubeApi` over the kubernetes ApiClient in plain requests (`raw_request`); answers as
    raw JSON."""

    def __init__(self, api_client: Any, request_timeout: tuple[float, float] = (10.0, 30.0),
                 ) -> None:
        if not HAS_KUBERNETES:
            raise RolloutError("the kubernetes Python library is required")
        self.host = str(api_client.configuration.host)
        self._client = api_client
        self._timeout = request_timeout
        self._date: float | None = None

    def _get(self, path: str, **query: Any) -> bytes:
        params = [(key, str(value).lower() if isinstance(value, bool) else str(value))
                  for key, value in query.items() if value is not None]
        response = raw_request(self._client, "GET", path, params, timeout=self._timeout)
        self._date = response.date
        return response.data

    def _items(self, path: str, **query: Any) -> list[dict[str, Any]]:
        return json.loads(self._get(path, **query)).get("items") or []

    def read_deployment(self, namespace: str, name: str) -> dict[str, Any]:
        return json.loads(self._get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"))

    def list_replicasets(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._items(f"/apis/apps/v1/namespaces/{namespace}/replicasets",
                           labelSelector=selector)

    def list_pods(self, namespace: str, selector: str) -> list[dict[str, Any]]:
        return self._items(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)

    def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        selector = f"involvedObject.kind={kind},involvedObject.name={name}"
        return self._items(f"/api/v1/namespaces/{namespace}/events", fieldSelector=selector)

    def read_log(self, namespace: str, pod: str, container: str, previous: bool,
                 tail_lines: int) -> str:
        data = self._get(f"/api/v1/namespaces/{namespace}/pods/{pod}/log",
                         container=container, previous=previous, tailLines=tail_lines)
        return data.decode("utf-8", "replace")

    def server_time(self) -> float | None:
        return self._date


# Options and result ----------------------------------------------------------------------


@dataclass(frozen=True)
class WatchOptions:
    timeout: float = 600.0
    poll_interval: float = 0.25
    api_grace: float = 30.0
    event_lines: int = 10
    log_lines: int = 20
    policy: Policy = field(default_factory=Policy)

    def __post_init__(self) -> None:
        if self.timeout <= 0:
            raise PolicyError(f"timeout must be more than 0 seconds, got {self.timeout}")
        if self.poll_interval <= 0:
            raise PolicyError(f"poll_interval must be more than 0 seconds, got"
                              f" {self.poll_interval}")
        for name in ("api_grace", "event_lines", "log_lines"):
            if getattr(self, name) < 0:
                raise PolicyError(f"{name} must be 0 or more, got {getattr(self, name)}")


@dataclass
class RolloutResult:
    """What the module returns (`to_dict`) and its one-line message."""

    status: str
    deployment: str
    namespace: str
    message: str
    revision: int | None = None
    previous_revision: int | None = None
    new_replicaset: str | None = None
    images: list[str] = field(default_factory=list)
    image_digests: list[str] = field(default_factory=list)
    replicas: dict[str, int] = field(default_factory=dict)
    elapsed: float = 0.0
    polls: int = 0
    failure: dict[str, Any] | None = None
    timeline: list[dict[str, Any]] = field(default_factory=list)
    ready_pods: list[dict[str, str]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.status == FAILED

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "deployment": self.deployment,
            "namespace": self.namespace,
            "revision": self.revision,
            "previous_revision": self.previous_revision,
            "new_replicaset": self.new_replicaset,
            "images": list(self.images),
            "image_digests": list(self.image_digests),
            "replicas": dict(self.replicas),
            "elapsed": self.elapsed,
            "polls": self.polls,
            "failure": self.failure,
            "timeline": list(self.timeline),
            "ready_pods": [dict(pod) for pod in self.ready_pods],
        }


class Timeline:
    """What happened, with seconds since the start; the middle is dropped past `limit`."""

    def __init__(self, limit: int = TIMELINE_LIMIT) -> None:
        self._head_size = limit // 2
        self._head: list[dict[str, Any]] = []
        self._tail: deque[dict[str, Any]] = deque(maxlen=max(limit - self._head_size - 1, 1))
        self._dropped = 0
        self._dropped_at: float | None = None

    def add(self, t: float, event: str) -> None:
        entry = {"t": round(t, 2), "event": event}
        if len(self._head) < self._head_size:
            self._head.append(entry)
            return
        if len(self._tail) == self._tail.maxlen:
            dropped = self._tail[0]
            self._dropped += 1
            if self._dropped_at is None:
                self._dropped_at = dropped["t"]
        self._tail.append(entry)

    def entries(self) -> list[dict[str, Any]]:
        middle = []
        if self._dropped:
            middle = [{"t": self._dropped_at, "event": f"({self._dropped} entries left out)"}]
        return [*self._head, *middle, *self._tail]


# Diagnosis helpers -----------------------------------------------------------------------


def _event_time(event: dict[str, Any]) -> str:
    return (event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp")
            or (event.get("metadata") or {}).get("creationTimestamp") or "")


def event_lines(events: list[dict[str, Any]], limit: int) -> list[str]:
    """The last `limit` events, oldest first, one line each."""
    ordered = sorted(events, key=lambda e: parse_time(_event_time(e)) or 0.0)
    lines = []
    for event in ordered[-limit:] if limit else []:
        count = event.get("count") or (event.get("series") or {}).get("count") or 1
        line = (f"{_event_time(event)} {event.get('type', 'Normal')} {event.get('reason', '')}:"
                f" {(event.get('message') or '').strip()}")
        lines.append(line + (f" (x{count})" if count > 1 else ""))
    return lines


def _log_lines(text: str) -> list[str]:
    lines = [line[:LOG_LINE_LIMIT] for line in text.splitlines()]
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def log_read_lines(limit: int) -> int:
    """How many lines to read for an excerpt of `limit` lines: the exception that killed a
    process often sits above a longer shutdown traceback (gunicorn's master re-raising
    HaltServer after its worker's exception is 30 lines), so a wider window is read."""
    return max(limit * 10, LOG_READ_MIN) if limit else 0


def log_excerpt(text: str, limit: int) -> list[str]:
    """The last `limit` lines of a log; when they hold no exception line but earlier lines
    do, the lines ending at the last exception line come first (half of `limit`), then a
    marker of how many lines were left out, then the end of the log - so the why of a
    crash and its last words both fit in `limit` + 1 lines."""
    if limit <= 0:
        return []
    lines = _log_lines(text)
    tail = lines[-limit:]
    if len(lines) <= limit or explains(tail):
        return tail
    telling = [i for i, line in enumerate(lines) if explains([line])]
    if not telling:
        return tail
    head_end = telling[-1] + 1
    head = lines[max(0, head_end - max(1, limit // 2)):head_end]
    tail = lines[len(lines) - (limit - len(head)):] if limit > len(head) else []
    skipped = len(lines) - head_end - len(tail)
    return head + [f"[... {skipped} lines left out ...]"] + tail


# The watch -------------------------------------------------------------------------------


@dataclass
class _Observation:
    deployment: dict[str, Any]
    replicasets: list[dict[str, Any]]
    pods: list[dict[str, Any]]
    now: float


class Watcher:
    """Watch one Deployment's rollout: `run()` returns a RolloutResult or raises
    NotFound, AccessDenied, ApiUnreachable or KubeApiError."""

    def __init__(self, api: KubeApi, namespace: str, name: str,
                 options: WatchOptions | None = None, clock: Clock | None = None) -> None:
        self.api = api
        self.namespace = namespace
        self.name = name
        self.options = options or WatchOptions()
        self.clock = clock or SystemClock()
        self._timeline = Timeline()
        self._start = 0.0
        self._seen_rs: str | None = None
        self._seen_counts: str | None = None
        self._seen_pods: dict[str, str] = {}
        self._previous_revision: int | None = None

    @property
    def subject(self) -> str:
        return f"Deployment {self.namespace}/{self.name}"

    # -- API calls with errors that name what failed

    def _call(self, what: str, func: Any, *args: Any) -> Any:
        try:
            return func(*args)
        except KubeApiError as exc:
            if exc.status == 404 and what == "read":
                raise NotFound(f"{self.subject} not found") from None
            if exc.status == 403:
                target = self.subject if what == "read" else \
                    f"the {what} of {self.subject}"
                raise AccessDenied(f"Cannot read {target}: namespace missing or access denied:"
                                   f" {exc.api_message}") from None
            if exc.status == 401:
                raise AccessDenied(f"Cannot read {self.subject}: the Kubernetes API refused the"
                                   f" credentials: {exc.api_message}") from None
            raise KubeApiError(exc.status, exc.api_message,
                               f"Cannot watch {self.subject}") from None
        except ApiUnreachable as exc:
            raise ApiUnreachable(exc.host, exc.reason, f"Cannot watch {self.subject}") from None

    def _observe(self) -> _Observation:
        deployment = self._call("read", self.api.read_deployment, self.namespace, self.name)
        try:
            selector = selector_string((deployment.get("spec") or {}).get("selector"))
        except RolloutError as exc:
            raise RolloutError(f"Cannot watch {self.subject}: {exc}") from None
        replicasets = self._call("ReplicaSets", self.api.list_replicasets, self.namespace,
                                 selector)
        new_rs = find_new_replicaset(deployment, replicasets)
        pods: list[dict[str, Any]] = []
        if new_rs is not None:
            template_hash = ((new_rs.get("metadata") or {}).get("labels") or {}).get(HASH_LABEL)
            pod_selector = f"{selector},{HASH_LABEL}={template_hash}" if template_hash else selector
            pods = self._call("pods", self.api.list_pods, self.namespace, pod_selector)
        now = self.api.server_time() or self.clock.now()
        return _Observation(deployment, replicasets, pods, now)

    # -- the loop

    def _elapsed(self) -> float:
        return self.clock.monotonic() - self._start

    def run(self) -> RolloutResult:
        self._start = self.clock.monotonic()
        deadline = self._start + self.options.timeout
        polls = 0
        observation: _Observation | None = None
        verdict: Verdict | None = None
        while True:
            try:
                # A first read that fails fails at once (a wrong address or credentials);
                # later ones ride out an outage of up to api_grace, which may run past the
                # timeout by as much.
                observation = self._observe() if observation is None else \
                    self._observe_through_outage()
            except NotFound:
                if observation is not None:
                    raise NotFound(f"{self.subject} not found: it was deleted during the"
                                   " watch") from None
                raise
            polls += 1
            verdict = evaluate(observation.deployment, observation.replicasets,
                               observation.pods, observation.now, self.options.policy)
            self._note(observation, verdict)
            if verdict.state != PROGRESSING:
                break
            remaining = deadline - self.clock.monotonic()
            if remaining <= 0:
                verdict = self._timed_out(observation, verdict)
                break
            self.clock.sleep(min(self.options.poll_interval, remaining))
        return self._result(observation, verdict, polls)

    def _observe_through_outage(self) -> _Observation:
        """`_observe` through `ride_out`; the timeline notes each new API error once and how
        long the outage lasted."""
        outage: dict[str, Any] = {}

        def noted(exc: RolloutError) -> None:
            outage.setdefault("since", self.clock.monotonic())
            if str(exc) != outage.get("last"):
                self._timeline.add(self._elapsed(), f"API error, retrying: {exc}")
                outage["last"] = str(exc)

        observation = ride_out(self._observe, self.options.api_grace, self.clock, noted)
        if outage:
            self._timeline.add(self._elapsed(), "API answers again after"
                               f" {self.clock.monotonic() - outage['since']:.1f} s")
        return observation

    def _timed_out(self, observation: _Observation, verdict: Verdict | None) -> Verdict:
        failure = timeout_failure(observation.deployment, observation.replicasets,
                                  observation.pods, self.options.timeout)
        verdict = verdict or evaluate(observation.deployment, observation.replicasets,
                                      observation.pods, observation.now, self.options.policy)
        verdict.state = FAILED
        verdict.failure = failure
        verdict.message = failure.message
        self._timeline.add(self._elapsed(), f"timeout after {self.options.timeout:g} s")
        return verdict

    def _note(self, observation: _Observation, verdict: Verdict) -> None:
        t = self._elapsed()
        deployment = observation.deployment
        if self._seen_counts is None:
            meta = deployment.get("metadata") or {}
            self._timeline.add(t, f"watching {self.subject} (generation"
                                  f" {meta.get('generation')}, {verdict.replicas['desired']}"
                                  " replicas desired)")
        if self._previous_revision is None:
            self._previous_revision = verdict.previous_revision
        if verdict.new_replicaset and verdict.new_replicaset != self._seen_rs:
            self._seen_rs = verdict.new_replicaset
            self._timeline.add(t, f"new ReplicaSet {verdict.new_replicaset} (revision"
                                  f" {verdict.revision})")
        counts = replica_counts(deployment)
        old = int((deployment.get("status") or {}).get("replicas") or 0) - counts["updated"]
        text = (f"{counts['ready']}/{counts['desired']} ready, {counts['updated']} updated,"
                f" {counts['available']} available"
                + (f", {old} old pending termination" if old > 0 else ""))
        if text != self._seen_counts:
            self._seen_counts = text
            self._timeline.add(t, text)
        new_rs = find_new_replicaset(deployment, observation.replicasets)
        for pod in pods_of(new_rs, observation.pods):
            name = name_of(pod) or ""
            state = pod_state(pod)
            if self._seen_pods.get(name) != state:
                self._seen_pods[name] = state
                self._timeline.add(t, f"pod {name} {state}")
        if verdict.state == COMPLETE:
            self._timeline.add(t, "rollout complete")
        elif verdict.state == FAILED and verdict.failure:
            self._timeline.add(t, f"rollout failed: {verdict.failure.reason}")

    # -- the result

    def _diagnose(self, failure: Failure) -> tuple[dict[str, Any], list[str]]:
        diagnosis = failure.to_dict()
        diagnosis.update(events=[], events_error=None, logs=[], logs_error=None)
        if failure.involved and self.options.event_lines:
            kind, name = failure.involved
            try:
                events = self.api.list_events(self.namespace, kind, name)
                diagnosis["events"] = event_lines(events, self.options.event_lines)
            except (KubeApiError, ApiUnreachable) as exc:
                diagnosis["events_error"] = f"events unavailable: {exc}"
        if failure.pod and failure.container and self.options.log_lines:
            if failure.log_source is None:
                diagnosis["logs_error"] = "logs unavailable: the container has not started"
            else:
                diagnosis["logs"], diagnosis["logs_error"] = self._logs(failure)
        return diagnosis, diagnosis["logs"]

    def _logs(self, failure: Failure) -> tuple[list[str], str | None]:
        """The log of the run that failed. A crashed container may restart between the
        observation and the read, so when the log read first does not explain an exit, the
        other instance's log is read too, and the one with the exception wins."""
        if failure.log_source == "previous":
            order = [True, False]
        else:
            order = [False, True] if failure.exit_code is not None else [False]
        first_error = None
        fallback: list[str] | None = None
        for previous in order:
            try:
                text = self.api.read_log(self.namespace, failure.pod or "",
                                         failure.container or "", previous,
                                         log_read_lines(self.options.log_lines))
            except (KubeApiError, ApiUnreachable) as exc:
                first_error = first_error or exc
                continue
            lines = log_excerpt(text, self.options.log_lines)
            if explains(lines):
                return lines, None
            if not fallback:
                fallback = lines
        if fallback is not None:
            return fallback, None
        return [], f"logs unavailable: {first_error}"

    def _result(self, observation: _Observation, verdict: Verdict, polls: int) -> RolloutResult:
        deployment = observation.deployment
        new_rs = find_new_replicaset(deployment, observation.replicasets)
        result = RolloutResult(
            status=COMPLETE if verdict.state == COMPLETE else FAILED,
            deployment=self.name,
            namespace=self.namespace,
            message=verdict.message,
            revision=verdict.revision,
            previous_revision=self._previous_revision or verdict.previous_revision,
            new_replicaset=verdict.new_replicaset,
            images=images(deployment),
            image_digests=image_digests(deployment, pods_of(new_rs, observation.pods)),
            replicas=dict(verdict.replicas),
            polls=polls,
            ready_pods=ready_pods(pods_of(new_rs, observation.pods)),
        )
        if verdict.failure is not None:
            result.failure, logs = self._diagnose(verdict.failure)
            result.message = (f"Rollout of {self.subject} failed:"
                              f" {summary(verdict.failure, logs)}")
        else:
            result.message = f"Rollout of {self.subject} complete: {verdict.message}"
        result.elapsed = round(self._elapsed(), 3)
        result.timeline = self._timeline.entries()
        return result


def watch(api: KubeApi, namespace: str, name: str, options: WatchOptions | None = None,
          clock: Clock | None = None) -> RolloutResult:
    """Watch the rollout of Deployment namespace/name (see Watcher)."""
    return Watcher(api, namespace, name, options, clock).run()
