# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The load generator: one thread, non-blocking sockets and epoll (poll where there is no
epoll), HTTP/1.1 keep-alive connections.

Why not asyncio: a minimal asyncio client (Protocol callbacks, its cheapest API, no
statistics) was measured against this loop, one core each, same nginx, 64 connections:
about 30,000 requests/s at 75% CPU against 50,000 at 50% - two to two and a half times the
CPU per request. The generator must stay cheap for its numbers to be about the server.
Reads are 64 KiB: a 256 KiB read buffer crosses glibc's mmap threshold, and the
mmap/munmap per read cost a third of the throughput.

Closed model: ``users`` connections, each sending its next request as soon as the previous
answer is in; the users start evenly over ``ramp_up`` seconds. Open model: requests are due
at a constant ``rate`` (the k-th at start + k / rate) whether or not earlier ones have been
answered; a due request takes an idle connection or opens one (up to ``max_connections``)
or waits in a queue, and its latency runs from the time it was DUE, not from when it was
sent - a stalled server shows as latency instead of as fewer requests (no coordinated
omission).

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import resource
import select
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .histogram import Histogram
from .http import (
    CHUNKED,
    UNTIL_CLOSE,
    Endpoint,
    LoadTestError,
    ProtocolError,
    Target,
    build_request,
    chunked_end,
    classify_exception,
    parse_head,
)

IN, OUT, ERR, HUP = 0x001, 0x004, 0x008, 0x010
CONNECTING, WAITING, IDLE, HANDSHAKE = 1, 2, 3, 4
SECOND = 1_000_000_000


@dataclass
class Plan:
    target: Target
    endpoints: list[Endpoint]
    model: str = "closed"
    users: int = 10
    ramp_up: float = 0.0
    rate: float = 0.0
    max_connections: int = 1000
    duration: float = 0.0
    requests: int = 0
    timeout: float = 10.0
    success_statuses: frozenset[int] = field(default_factory=lambda: frozenset(range(200, 400)))
    headers: dict[str, str] = field(default_factory=dict)
    progress_interval: float = 1.0
    tls: ssl.SSLContext | None = None

    def validate(self) -> None:
        if self.model not in ("closed", "open"):
            raise LoadTestError(f"model {self.model!r}: must be closed or open")
        if not self.endpoints:
            raise LoadTestError("no endpoints to load")
        if (self.duration > 0) == (self.requests > 0):
            raise LoadTestError("give either a duration or a number of requests, not both")
        if self.model == "closed" and self.users < 1:
            raise LoadTestError(f"users={self.users}: the closed model needs at least one user")
        if self.model == "open" and self.rate <= 0:
            raise LoadTestError(f"rate={self.rate}: the open model needs a rate above 0")
        if self.max_connections < 1 or self.timeout <= 0:
            raise LoadTestError("max_connections and timeout must be positive")
        for endpoint in self.endpoints:
            if endpoint.weight < 1:
                raise LoadTestError(f"endpoint {endpoint.name}: weight {endpoint.weight} is"
                                    " not a positive integer")


def weighted_cycle(weights: list[int], limit: int = 100_000) -> list[int]:
    """Endpoint indexes in smooth weighted round-robin order (nginx's): each endpoint gets
    exactly its share over one cycle, spread out rather than in runs."""
    total = sum(weights)
    if total > limit:
        raise LoadTestError(f"endpoint weights add up to {total}; keep them under {limit}"
                            " (they are proportions)")
    current = [0] * len(weights)
    order = []
    for _step in range(total):
        for i, weight in enumerate(weights):
            current[i] += weight
        best = max(range(len(weights)), key=current.__getitem__)
        current[best] -= total
        order.append(best)
    return order


def due_times(start: int, rate: float, count: int) -> list[int]:
    """The intended send times (ns) of the first ``count`` requests of the open model."""
    return [start + round(k * SECOND / rate) for k in range(count)]


def raise_fd_limit(connections: int) -> tuple[int, int]:
    """Lift the soft limit of open files (often 1024) towards the hard one so that the
    connections fit; (soft before, soft after). Connections beyond it fail as
    too_many_open_files."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 64
    if soft != resource.RLIM_INFINITY and soft < wanted:
        new = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
            return soft, new
    return soft, soft


class Conn:
    __slots__ = ("sock", "fd", "state", "buf", "ep", "due", "head", "need", "reused",
                 "retried", "out", "got")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.state = CONNECTING
        self.buf = bytearray()
        self.ep = -1
        self.due = 0
        self.head: tuple[int, int, int, bool] | None = None
        self.need = 0
        self.reused = False
        self.retried = False
        self.out = b""
        self.got = 0


class Stats:
    """What was measured: per-endpoint histograms and counts."""

    def __init__(self, endpoints: list[Endpoint]) -> None:
        self.hist = [Histogram() for _endpoint in endpoints]
        self.ep_requests = [0] * len(endpoints)
        self.ep_errors = [0] * len(endpoints)
        self.statuses: collections.Counter[int] = collections.Counter()
        self.error_statuses: collections.Counter[int] = collections.Counter()
        self.exceptions: collections.Counter[str] = collections.Counter()
        self.requests = 0
        self.errors = 0
        self.started = 0
        self.finished = 0
        self.max_open = 0

    def merged(self) -> Histogram:
        total = Histogram()
        for hist in self.hist:
            total.merge(hist)
        return total


class Runner:
    def __init__(self, plan: Plan, progress: Callable[[dict[str, Any]], None] | None = None,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        plan.validate()
        self.plan = plan
        self.tls = None
        if plan.target.scheme == "https":
            self.tls = plan.tls or ssl.create_default_context()
        self.progress = progress
        self.clock = clock
        self.wires = [build_request(plan.target, ep, plan.headers) for ep in plan.endpoints]
        self.heads = [ep.method == "HEAD" for ep in plan.endpoints]
        self.cycle = weighted_cycle([ep.weight for ep in plan.endpoints])
        self.next_ep = 0
        self.stats = Stats(plan.endpoints)
        self.conns: dict[int, Conn] = {}
        self.idle: list[Conn] = []
        self.queue: collections.deque[int] = collections.deque()
        self.issued = 0
        self.restart = 0
        self.success = plan.success_statuses
        raise_fd_limit(plan.users if plan.model == "closed" else plan.max_connections)
        infos = socket.getaddrinfo(plan.target.host, plan.target.port, type=socket.SOCK_STREAM)
        self.family, _type, _proto, _name, self.addr = infos[0]
        if hasattr(select, "epoll"):
            self.poller = select.epoll()
            self.poll = self.poller.poll
        else:  # pragma: no cover - non-Linux targets
            self.poller = select.poll()
            self.poll = lambda timeout: self.poller.poll(timeout * 1000)

    # -- requests --------------------------------------------------------------------------
    def may_issue(self, now: int) -> bool:
        if self.plan.requests:
            return self.issued < self.plan.requests
        return now < self.end

    def pick(self) -> int:
        ep = self.cycle[self.next_ep]
        self.next_ep = (self.next_ep + 1) % len(self.cycle)
        return ep

    def open_conn(self) -> Conn:
        sock = socket.socket(self.family, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(sock)
        code = sock.connect_ex(self.addr)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            sock.close()
            raise OSError(code, errno.errorcode.get(code, str(code)))
        self.conns[conn.fd] = conn
        self.poller.register(conn.fd, OUT)
        if len(self.conns) > self.stats.max_open:
            self.stats.max_open = len(self.conns)
        return conn

    def start(self, conn: Conn | None, ep: int, due: int) -> None:
        """Send request ``ep`` (due at ``due``) on ``conn``, or on a new connection."""
        if conn is None:
            try:
                conn = self.open_conn()
            except OSError as exc:
                self.fail_request(ep, classify_exception(exc))
                if self.plan.model == "closed":
                    self.restart += 1
                return
            conn.ep, conn.due = ep, due
            return
        conn.ep, conn.due = ep, due
        conn.head, conn.need, conn.got = None, 0, 0
        self.send(conn)

    def send(self, conn: Conn) -> None:
        wire = self.wires[conn.ep]
        try:
            sent = conn.sock.send(wire)
        except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        except OSError as exc:
            self.conn_failed(conn, exc)
            return
        conn.state = WAITING
        if sent < len(wire):
            conn.out = wire[sent:]
            self.poller.modify(conn.fd, IN | OUT)

    def fail_request(self, ep: int, kind: str) -> None:
        stats = self.stats
        stats.requests += 1
        stats.errors += 1
        stats.ep_requests[ep] += 1
        stats.ep_errors[ep] += 1
        stats.exceptions[kind] += 1
        stats.finished = self.clock()

    def close(self, conn: Conn) -> None:
        self.conns.pop(conn.fd, None)
        with contextlib.suppress(OSError, ValueError, KeyError):
            self.poller.unregister(conn.fd)
        conn.sock.close()
        if conn.state == IDLE and conn in self.idle:
            self.idle.remove(conn)

    def conn_failed(self, conn: Conn, exc: BaseException) -> None:
        """A connection broke while a request was on it."""
        ep, due = conn.ep, conn.due
        self.close(conn)
        stale = (conn.reused and not conn.retried and conn.got == 0
                 and isinstance(exc, (ConnectionResetError, BrokenPipeError, EOFError,
                                      ssl.SSLEOFError, ssl.SSLZeroReturnError)))
        if stale:
            # The server closed a keep-alive connection as the request went out; like
            # browsers, send it again once on a fresh connection (the clock keeps running).
            try:
                fresh = self.open_conn()
            except OSError as err:
                self.fail_request(ep, classify_exception(err))
                self.after(None)
                return
            fresh.ep, fresh.due, fresh.retried = ep, due, True
            return
        self.fail_request(ep, classify_exception(exc) if not isinstance(exc, EOFError)
                          else "connection_closed")
        self.after(None)

    def complete(self, conn: Conn, status: int, keep_alive: bool) -> None:
        now = self.clock()
        stats = self.stats
        ep = conn.ep
        stats.hist[ep].record((now - conn.due) // 1000)
        stats.requests += 1
        stats.ep_requests[ep] += 1
        stats.statuses[status] += 1
        if status not in self.success:
            stats.errors += 1
            stats.ep_errors[ep] += 1
            stats.error_statuses[status] += 1
        stats.finished = now
        conn.head, conn.need, conn.retried = None, 0, False
        if keep_alive:
            conn.state = IDLE
            conn.reused = True
            self.after(conn, now)
        else:
            self.close(conn)
            self.after(None, now)

    def after(self, conn: Conn | None, now: int = 0) -> None:
        """A connection (or, with None, a slot) became free."""
        now = now or self.clock()
        if self.plan.model == "closed":
            if conn is None:
                # The user's connection is gone; the loop gives it a new one (not here, so
                # that a server refusing connections cannot recurse).
                self.restart += 1
            elif self.may_issue(now):
                self.issued += 1
                self.start(conn, self.pick(), now)
            else:
                self.close(conn)
            return
        if self.queue:
            self.start(conn, self.pick(), self.queue.popleft())
        elif conn is not None:
            self.idle.append(conn)

    # -- events ----------------------------------------------------------------------------
    def handshake(self, conn: Conn) -> None:
        """One step of the TLS handshake of a connected socket."""
        try:
            conn.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.poller.modify(conn.fd, IN)
            return
        except ssl.SSLWantWriteError:
            self.poller.modify(conn.fd, OUT)
            return
        except (OSError, ValueError) as exc:
            self.conn_failed(conn, exc)
            return
        self.poller.modify(conn.fd, IN)
        conn.head, conn.need, conn.got = None, 0, 0
        self.send(conn)

    def on_event(self, conn: Conn, mask: int) -> None:
        if conn.state == HANDSHAKE:
            self.handshake(conn)
            return
        if conn.state == CONNECTING:
            code = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                self.conn_failed(conn, OSError(code, errno.errorcode.get(code, str(code))))
                return
            if self.tls is not None:
                try:
                    conn.sock = self.tls.wrap_socket(conn.sock, do_handshake_on_connect=False,
                                                     server_hostname=self.plan.target.host)
                except (OSError, ValueError) as exc:
                    self.conn_failed(conn, exc)
                    return
                conn.state = HANDSHAKE
                self.handshake(conn)
                return
            self.poller.modify(conn.fd, IN)
            conn.head, conn.need, conn.got = None, 0, 0
            self.send(conn)
            return
        if mask & OUT and conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError):
                return
            except OSError as exc:
                self.conn_failed(conn, exc)
                return
            conn.out = conn.out[sent:]
            if not conn.out:
                self.poller.modify(conn.fd, IN)
            return
        try:
            data = conn.sock.recv(65536)
            if self.tls is not None and data:
                # Decrypted bytes the TLS layer holds make no poll event: take them now.
                while conn.sock.pending():
                    data += conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except OSError as exc:
            if conn.state == IDLE:
                self.close(conn)
            else:
                self.conn_failed(conn, exc)
            return
        if conn.state != WAITING:
            # An idle keep-alive connection closed by the server (or unexpected bytes).
            self.close(conn)
            return
        if not data:
            if conn.head is not None and conn.head[2] == UNTIL_CLOSE:
                conn.buf.clear()
                self.complete(conn, conn.head[1], False)
            else:
                self.conn_failed(conn, EOFError())
            return
        conn.got += len(data)
        # Most answers arrive whole in one read: parse the bytes as they came and touch the
        # connection's buffer only for the rest.
        if conn.buf:
            conn.buf += data
            buf = conn.buf
        else:
            buf = data
        try:
            head = conn.head
            if head is None:
                head = parse_head(buf, self.heads[conn.ep])
                if head is None:
                    if buf is data:
                        conn.buf += data
                    return
                conn.head = head
                if head[2] >= 0:
                    conn.need = head[0] + head[2]
            if head[2] >= 0:
                end = conn.need if len(buf) >= conn.need else -1
            elif head[2] == CHUNKED:
                end = chunked_end(buf, head[0])
            else:
                end = -1
        except ProtocolError as exc:
            self.conn_failed(conn, exc)
            return
        if end < 0:
            if buf is data:
                conn.buf += data
            return
        if buf is data:
            if end < len(data):
                conn.buf += data[end:]
        else:
            del conn.buf[:end]
        self.complete(conn, head[1], head[3])

    # -- the loop --------------------------------------------------------------------------
    def expire(self, now: int) -> None:
        limit = int(self.plan.timeout * SECOND)
        for conn in [c for c in self.conns.values() if c.state != IDLE]:
            if now - conn.due > limit:
                ep = conn.ep
                self.close(conn)
                self.fail_request(ep, "timeout")
                self.after(None)
        while self.queue and now - self.queue[0] > limit:
            self.queue.popleft()
            self.fail_request(self.pick(), "timeout")

    def snapshot(self, now: int, last: tuple[int, int]) -> dict[str, Any]:
        stats = self.stats
        elapsed = (now - self.t0) / SECOND
        window = (now - last[0]) / SECOND or 1e-9
        merged = stats.merged()
        return {"elapsed_s": round(elapsed, 1), "requests": stats.requests,
                "errors": stats.errors,
                "error_rate_pct": round(100 * stats.errors / stats.requests, 4)
                if stats.requests else 0.0,
                "rps_now": round((stats.requests - last[1]) / window, 1),
                "in_flight": sum(1 for c in self.conns.values() if c.state != IDLE),
                "queued": len(self.queue), "open_connections": len(self.conns),
                "p50_ms": round(merged.percentile(50) / 1000, 3),
                "p95_ms": round(merged.percentile(95) / 1000, 3),
                "p99_ms": round(merged.percentile(99) / 1000, 3)}

    def run(self) -> Stats:
        plan = self.plan
        self.t0 = t0 = self.clock()
        self.stats.started = t0
        self.end = t0 + int(plan.duration * SECOND) if plan.duration else 1 << 62
        hard_stop = (self.end if plan.duration else 1 << 62) + int(plan.timeout * SECOND)
        users_started = 0
        ramp = int(plan.ramp_up * SECOND)
        interval = SECOND / plan.rate if plan.model == "open" else 0
        next_due_k = 0
        next_check = t0 + SECOND // 20
        next_progress = t0 + int(plan.progress_interval * SECOND)
        last = (t0, 0)
        conns = self.conns
        on_event = self.on_event
        while True:
            now = self.clock()
            if plan.model == "closed":
                while users_started < plan.users and (
                        ramp == 0 or now >= t0 + ramp * users_started // plan.users):
                    users_started += 1
                    if not self.may_issue(now):
                        break
                    self.issued += 1
                    self.start(None, self.pick(), now)
                for _user in range(self.restart):
                    self.restart -= 1
                    if not self.may_issue(now):
                        break
                    self.issued += 1
                    self.start(None, self.pick(), now)
                wake = (t0 + ramp * users_started // plan.users
                        if users_started < plan.users else next_check)
            else:
                due = t0 + int(next_due_k * interval)
                while due <= now and self.may_issue(due):
                    self.issued += 1
                    next_due_k += 1
                    if self.idle:
                        self.start(self.idle.pop(), self.pick(), due)
                    elif len(conns) < plan.max_connections:
                        self.start(None, self.pick(), due)
                    else:
                        self.queue.append(due)
                    due = t0 + int(next_due_k * interval)
                wake = due if self.may_issue(due) else next_check
            if now >= next_check:
                self.expire(now)
                next_check = now + SECOND // 20
            if self.progress and now >= next_progress:
                self.progress(self.snapshot(now, last))
                last = (now, self.stats.requests)
                next_progress = now + int(plan.progress_interval * SECOND)
            if not self.may_issue(now) and not self.queue and all(
                    c.state == IDLE for c in conns.values()):
                break
            if now >= hard_stop:
                for conn in list(conns.values()):
                    if conn.state != IDLE:
                        ep = conn.ep
                        self.close(conn)
                        self.fail_request(ep, "timeout")
                break
            timeout = max(0.0, (min(wake, next_check) - self.clock()) / SECOND)
            for fd, mask in self.poll(timeout):
                conn = conns.get(fd)
                if conn is not None:
                    on_event(conn, mask)
        for conn in list(conns.values()):
            self.close(conn)
        self.poller.close()
        if not self.stats.finished:
            self.stats.finished = self.clock()
        return self.stats
