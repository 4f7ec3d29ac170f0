# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""redis.reachable: AUTH, SELECT and PING in the Redis protocol (RESP) over a plain or TLS
socket, so the host that runs the preflight needs no Redis library.

The password goes only into the AUTH command; Redis error replies never echo it, and
messages name the variable, never the value.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    CheckResult,
)

CHECK_ID = "redis.reachable"
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})


class RespError(Exception):
    """An error reply (``-ERR ...``) of the server."""


@dataclass(frozen=True)
class RedisTarget:
    host: str
    port: int = 6379
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    db: int = 0
    tls: bool = False
    source: str = "REDIS_HOST"

    def describe(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://{self.host}:{self.port}/{self.db}"


def target_from_env(env: Mapping[str, str | None], tls: bool | None = None
                    ) -> RedisTarget | None:
    """REDIS_URL when set, else REDIS_HOST/PORT/PASSWORD/DB (and REDIS_USERNAME, REDIS_SSL
    or REDIS_TLS). None when neither is set. Raises ValueError naming the variable."""
    url = (env.get("REDIS_URL") or "").strip()
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss"):
            raise ValueError("REDIS_URL is not a redis:// or rediss:// URL")
        try:
            port = parts.port or 6379
        except ValueError:
            raise ValueError("REDIS_URL has a port that is not a number") from None
        username, password = parts.username, parts.password
        if password is None and username:
            username, password = None, username
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ValueError("REDIS_URL has a database that is not a number")
        return RedisTarget(host=parts.hostname or "localhost", port=port,
                           username=unquote(username) if username else None,
                           password=unquote(password) if password else None,
                           db=int(path or 0),
                           tls=parts.scheme == "rediss" if tls is None else tls,
                           source="REDIS_URL")
    host = (env.get("REDIS_HOST") or "").strip()
    if not host:
        return None
    values = {}
    for name, default in (("REDIS_PORT", 6379), ("REDIS_DB", 0)):
        raw = (env.get(name) or "").strip()
        if raw and not raw.isdigit():
            raise ValueError(f"{name} is not a number")
        values[name] = int(raw) if raw else default
    if tls is None:
        tls = any((env.get(n) or "").strip().lower() in TRUE_WORDS
                  for n in ("REDIS_SSL", "REDIS_TLS"))
    return RedisTarget(host=host, port=values["REDIS_PORT"],
                       username=(env.get("REDIS_USERNAME") or None),
                       password=(env.get("REDIS_PASSWORD") or None), db=values["REDIS_DB"],
                       tls=tls, source="REDIS_HOST")


def encode(*args: str | bytes) -> bytes:
    """One command as a RESP array of bulk strings."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg.encode() if isinstance(arg, str) else arg
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


class Reader:
    """Reads RESP replies from a socket-like object with ``recv``."""

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.buffer = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buffer += chunk
        line, _sep, self.buffer = self.buffer.partition(b"\r\n")
        return line

    def _exact(self, size: int) -> bytes:
        while len(self.buffer) < size + 2:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
        return data

    def reply(self) -> Any:
        line = self._line()
        kind, rest = line[:1], line[1:].decode(errors="replace")
        if kind == b"+":
            return rest
        if kind == b"-":
            raise RespError(rest)
        if kind == b":":
            return int(rest)
        if kind == b"$":
            size = int(rest)
            return None if size < 0 else self._exact(size).decode(errors="replace")
        if kind == b"*":
            count = int(rest)
            return None if count < 0 else [self.reply() for _item in range(count)]
        raise ConnectionError("the server did not answer in the Redis protocol"
                              f" (first byte {kind!r})")


def conversation(target: RedisTarget) -> list[tuple[str, Sequence[str]]]:
    """(what to record, argv) of each command; the record never holds the password."""
    steps: list[tuple[str, Sequence[str]]] = []
    if target.password is not None:
        if target.username:
            steps.append((f"AUTH {target.username} ********",
                          ("AUTH", target.username, target.password)))
        else:
            steps.append(("AUTH ********", ("AUTH", target.password)))
    if target.db:
        steps.append((f"SELECT {target.db}", ("SELECT", str(target.db))))
    steps.append(("PING", ("PING",)))
    return steps


def _judge_error(target: RedisTarget, step: str, error: str) -> CheckResult:
    code = error.split(" ", 1)[0]
    data = {"target": target.describe(), "step": step.split(" ", 1)[0], "error": code}
    secret = "REDIS_URL" if target.source == "REDIS_URL" else "REDIS_PASSWORD"
    if code in ("WRONGPASS", "NOAUTH") or "invalid password" in error.lower() \
            or "invalid username-password" in error.lower():
        told = "refused the password in" if target.password is not None else \
            "requires a password, and none is set in"
        return CheckResult(CHECK_ID, "fail", f"Redis at {target.describe()} {told} {secret}"
                           f" ({code})", f"set {secret} to the server's requirepass (or the"
                           " ACL user's password)", data)
    if step.startswith("AUTH") and "without any password configured" in error:
        return CheckResult(CHECK_ID, "warn", f"Redis at {target.describe()} has no password"
                           " (AUTH is refused: no requirepass configured)",
                           "set requirepass (or ACL users) on the server", data)
    if step.startswith("SELECT"):
        return CheckResult(CHECK_ID, "fail", f"Redis at {target.describe()} refused SELECT"
                           f" {target.db}: {error}", "set REDIS_DB to a database the server"
                           " has (databases setting)", data)
    return CheckResult(CHECK_ID, "fail", f"Redis at {target.describe()} answered {step}"
                       f" with an error: {error}", "check the Redis server", data)


def check_redis(target: RedisTarget, timeout: float, ca_cert: str | None = None
                ) -> CheckResult:
    """Connect, AUTH (when a password is set), SELECT (db > 0), PING; judge the replies."""
    commands = [record for record, _argv in conversation(target)]
    try:
        raw = socket.create_connection((target.host, target.port), timeout=timeout)
    except OSError as exc:
        return CheckResult(CHECK_ID, "fail", f"cannot connect to Redis at {target.describe()}:"
                           f" {exc.strerror or exc}", "check REDIS_HOST and REDIS_PORT, and"
                           " that Redis listens there", {"target": target.describe(),
                                                         "commands": commands})
    try:
        sock: Any = raw
        if target.tls:
            context = ssl.create_default_context(cafile=ca_cert)
            try:
                sock = context.wrap_socket(raw, server_hostname=target.host)
            except (ssl.SSLError, OSError) as exc:
                return CheckResult(CHECK_ID, "fail", f"TLS with Redis at {target.describe()}"
                                   f" failed: {exc}", "check the server's certificate and the"
                                   " CA (redis_ca_cert)", {"target": target.describe()})
        reader = Reader(sock)
        for record, argv in conversation(target):
            sock.sendall(encode(*argv))
            try:
                answer = reader.reply()
            except RespError as exc:
                return _judge_error(target, record, str(exc))
        data = {"target": target.describe(), "commands": commands, "tls": target.tls}
        if answer != "PONG":
            return CheckResult(CHECK_ID, "fail", f"Redis at {target.describe()} answered PING"
                               " with something other than PONG", "check that REDIS_HOST"
                               " and REDIS_PORT point at Redis", data)
        auth = "with the password in " + ("REDIS_URL" if target.source == "REDIS_URL" else
                                          "REDIS_PASSWORD") if target.password else \
            "without a password"
        status = "pass" if target.password else "warn"
        return CheckResult(CHECK_ID, status, f"Redis at {target.describe()} answers PING"
                           f" {auth}", "" if target.password else
                           "set requirepass on the server and REDIS_PASSWORD in the app", data)
    except (OSError, ConnectionError) as exc:
        return CheckResult(CHECK_ID, "fail", f"Redis at {target.describe()} did not answer:"
                           f" {exc}", "check that REDIS_HOST and REDIS_PORT point at Redis",
                           {"target": target.describe(), "commands": commands})
    finally:
        raw.close()
