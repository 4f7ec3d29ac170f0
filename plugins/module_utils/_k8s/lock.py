# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deploy lock: one deploy of an application at a time.

The lock is the ConfigMap <app>-deploy-lock in the application's namespace; its data names
the release that holds it (release_id, holder, pid, acquired_at). Taking it is a POST, which
the API server refuses with 409 AlreadyExists when the ConfigMap exists, so two deploys can
never both hold it. Releasing and breaking it are DELETEs conditional on the uid and
resourceVersion that were read, so a lock that changed hands in between is never removed by
mistake.

Every operation reads first, decides, and writes only when `check_mode` is false: check mode
runs the same code and stops before the write.
"""

from __future__ import annotations

import getpass
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    ConfigMaps,
    InvalidInput,
    configmap,
    diff_text,
    labels,
    validate_app,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import KubeApiError

LOCK_SUFFIX = "-deploy-lock"
LOCK_KEYS = ("release_id", "holder", "pid", "acquired_at")
# A POST refused because the lock exists, whose holder then released it before it could be
# read, is tried again; more than this many such races in a row is reported, not looped on.
ATTEMPTS = 3

ACQUIRED = "acquired"
RELEASED = "released"
BROKEN = "broken"
STATES = (ACQUIRED, RELEASED, BROKEN)


class LockError(Exception):
    """The lock cannot be taken, released or broken; the message says why."""


class LockHeld(LockError):
    """Another release holds the lock."""


def lock_name(app: str) -> str:
    return f"{app}{LOCK_SUFFIX}"


def lock_data(obj: dict[str, Any] | None) -> dict[str, str] | None:
    """The lock's data (release_id, holder, pid, acquired_at); None when there is no lock."""
    if obj is None:
        return None
    data = obj.get("data") or {}
    return {key: str(data.get(key) or "") for key in LOCK_KEYS}


def default_holder() -> str:
    """`<user>@<host>` of this process, shown to whoever finds the lock held."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry and no LOGNAME/USER (some containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def describe(data: dict[str, str]) -> str:
    """`release r1 (holder alice@ci-1, pid 4242, since 2026-11-27T10:00:00Z)`."""
    release = data["release_id"] or "<none recorded>"
    return (f"release {release} (holder {data['holder'] or '<unknown>'}, pid"
            f" {data['pid'] or '<unknown>'}, since {data['acquired_at'] or '<unknown>'})")


@dataclass
class LockResult:
    """What the module returns: `lock` is the data of the lock the run took, found, released
    or broke (None when there was none)."""

    changed: bool
    lock: dict[str, str] | None
    msg: str
    before: dict[str, str] | None = None
    after: dict[str, str] | None = None
    requests: list[str] = field(default_factory=list)

    @property
    def diff(self) -> dict[str, str]:
        return {"before": diff_text(self.before), "after": diff_text(self.after)}


class DeployLock:
    """The deploy lock of `app` in `namespace`, through `api`."""

    def __init__(self, api: ConfigMaps, namespace: str, app: str, check_mode: bool = False
                 ) -> None:
        validate_app(app)
        self.api = api
        self.namespace = namespace
        self.app = app
        self.name = lock_name(app)
        self.check_mode = check_mode

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def _break_hint(self) -> str:
        return (f"if that run is dead, break the lock with prodready.deploy.deploy_lock"
                f" state=broken app={self.app} namespace={self.namespace}")

    def _result(self, changed: bool, lock: dict[str, str] | None, msg: str,
                before: dict[str, str] | None, after: dict[str, str] | None) -> LockResult:
        return LockResult(changed, lock, msg, before, after, self.api.requests)

    def _did(self, done: str, would: str) -> str:
        return would if self.check_mode else done

    def acquire(self, release_id: str, holder: str, pid: int, acquired_at: str) -> LockResult:
        """Take the lock for `release_id`; unchanged when it already holds it (a re-run of the
        same release converges); LockHeld when another release does."""
        if not release_id:
            raise InvalidInput("release_id is required to acquire the deploy lock")
        data = {"release_id": release_id, "holder": holder, "pid": str(pid),
                "acquired_at": acquired_at}
        for _attempt in range(ATTEMPTS):
            current = lock_data(self.api.get(self.namespace, self.name))
            if current is not None:
                if current["release_id"] == release_id:
                    return self._result(False, current, f"The deploy lock {self.ref} is already"
                                        f" held by {describe(current)}; nothing to do",
                                        current, current)
                raise LockHeld(f"the deploy lock {self.ref} is held by {describe(current)};"
                               f" wait until that deploy ends, or {self._break_hint()}")
            if not self.check_mode:
                body = configmap(self.namespace, self.name, labels(self.app), data)
                try:
                    self.api.create(self.namespace, body)
                except KubeApiError as exc:
                    if exc.status == 409:  # taken since the read: see by whom
                        continue
                    raise
            verb = self._did("Acquired", "Would acquire")
            return self._result(True, data, f"{verb} the deploy lock {self.ref} for"
                                f" {describe(data)}", None, data)
        raise LockError(f"the deploy lock {self.ref} was taken and released {ATTEMPTS} times"
                        " while this run tried to acquire it; try again")

    def release(self, release_id: str) -> LockResult:
        """Give the lock up; only the release that holds it may (never someone else's)."""
        if not release_id:
            raise InvalidInput("release_id is required to release the deploy lock")
        obj = self.api.get(self.namespace, self.name)
        current = lock_data(obj)
        if current is None:
            return self._result(False, None, f"The deploy lock {self.ref} is not held;"
                                " nothing to release", None, None)
        if current["release_id"] != release_id:
            raise LockHeld(f"the deploy lock {self.ref} is held by {describe(current)}, not by"
                           f" release {release_id}, and a release frees only its own lock;"
                           f" {self._break_hint()}")
        if not self.check_mode and not self._delete(obj):
            return self._result(False, None, f"The deploy lock {self.ref} was removed by"
                                " someone else meanwhile; nothing to release", current, None)
        verb = self._did("Released", "Would release")
        return self._result(True, current, f"{verb} the deploy lock {self.ref} held by"
                            f" {describe(current)}", current, None)

    def break_(self) -> LockResult:
        """Remove whatever lock there is (a deploy that died holding it); returns its data."""
        obj = self.api.get(self.namespace, self.name)
        current = lock_data(obj)
        if current is None:
            return self._result(False, None, f"The deploy lock {self.ref} is not held;"
                                " nothing to break", None, None)
        if not self.check_mode and not self._delete(obj):
            return self._result(False, None, f"The deploy lock {self.ref} was removed by"
                                " someone else meanwhile; nothing to break", current, None)
        verb = self._did("Broke", "Would break")
        return self._result(True, current, f"{verb} the deploy lock {self.ref} held by"
                            f" {describe(current)}", current, None)

    def _delete(self, obj: dict[str, Any]) -> bool:
        """Delete exactly the lock that was read; False when it is gone already."""
        meta = obj.get("metadata") or {}
        try:
            return self.api.delete(self.namespace, self.name, uid=meta.get("uid"),
                                   resource_version=meta.get("resourceVersion"))
        except KubeApiError as exc:
            if exc.status == 409:
                raise LockError(f"the deploy lock {self.ref} changed after it was read (now"
                                " held by another run?), so it was left in place; run again"
                                " to see who holds it") from None
            raise


def validate(app: str, state: str, release_id: str | None) -> None:
    """InvalidInput for options that cannot work, before anything is asked of the API."""
    validate_app(app)
    if state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}, got {state!r}")
    if state != BROKEN and not (release_id or "").strip():
        raise InvalidInput(f"release_id is required when state={state}")


def run(connect: Callable[[], ConfigMaps], namespace: str, app: str, state: str,
        release_id: str | None, holder: str, pid: int, acquired_at: str,
        check_mode: bool = False) -> LockResult:
    """The module's one entry: `state` is acquired, released or broken. The options are
    checked before `connect` makes the client, so a bad one fails without any request."""
    validate(app, state, release_id)
    lock = DeployLock(connect(), namespace, app, check_mode)
    if state == ACQUIRED:
        return lock.acquire(release_id or "", holder, pid, acquired_at)
    if state == RELEASED:
        return lock.release(release_id or "")
    return lock.break_()
