# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Opening and closing a release in one module call each: the deploy lock (`lock`) and the
release record (`record`) composed, so deploy.yml pays Ansible's per-task cost twice instead
of seven times.

Opening takes the lock, reads the app's records and writes this release's record as started
(keeping what a re-run finds: its start time and outcome); when anything after the lock
fails, the lock it took is given back. Closing merges the outcome into the record, copies it
into the run's artifacts directory and gives the lock back.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    ConfigMaps,
    InvalidInput,
    diff_text,
    validate_app,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.lock import DeployLock
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.record import (
    SUCCEEDED,
    ReleaseRecords,
    validate_record,
    validate_release_id,
)

OPENED = "opened"
CLOSED = "closed"
STATES = (OPENED, CLOSED)
IN_PROGRESS = "in_progress"
OUTCOMES = ("succeeded", "failed", "rolled_back", "rollback_failed")
DEFAULT_LIMIT = 200


@dataclass
class SessionResult:
    """What the module returns. `changed` is the record's change (and the artifact's): the
    lock is taken and given back by the same run, so it leaves no change behind."""

    changed: bool
    msg: str
    lock: dict[str, str] | None
    record: dict[str, Any] | None
    previous: dict[str, Any] | None = None
    existing: dict[str, Any] | None = None
    artifact: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None

    def diff(self, header: str) -> dict[str, str]:
        return {"before": diff_text(self.before), "after": diff_text(self.after),
                "before_header": header, "after_header": header}


def validate(app: str, state: str, release_id: str, record: dict[str, Any],
             outcome: str | None, limit: int) -> None:
    """InvalidInput for options that cannot work, before anything is asked of the API."""
    validate_app(app)
    if state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}, got {state!r}")
    validate_release_id(app, release_id)
    validate_record(app, release_id, record)
    for key in ("outcome", "started_at", "previous"):
        if key in record and state == OPENED:
            raise InvalidInput(f"record.{key} is set by state=opened itself; leave it out")
    if state == CLOSED and outcome not in OUTCOMES:
        raise InvalidInput(f"outcome must be one of {', '.join(OUTCOMES)} when state=closed,"
                           f" got {outcome!r}")
    if limit < 1:
        raise InvalidInput(f"limit must be 1 or more, got {limit}")


def open_release(api: ConfigMaps, namespace: str, app: str, release_id: str, holder: str,
                 pid: int, now: str, record: dict[str, Any], limit: int = DEFAULT_LIMIT,
                 check_mode: bool = False) -> SessionResult:
    """Take the lock, find this release's record and the previous succeeded release among the
    newest `limit` records, and write the record as started. A re-run of the same release
    keeps its start time and outcome, so it changes nothing."""
    lock = DeployLock(api, namespace, app, check_mode)
    taken = lock.acquire(release_id, holder, pid, now)
    try:
        records = ReleaseRecords(api, namespace, app, check_mode)
        history = records.query(limit=limit).records or []
        existing = next((r for r in history if r.get("release_id") == release_id), None)
        previous = next((r for r in history if r.get("outcome") == SUCCEEDED
                         and r.get("release_id") != release_id), None)
        started = records.put(release_id, {
            **record,
            "started_at": (existing or {}).get("started_at") or now,
            "outcome": (existing or {}).get("outcome") or IN_PROGRESS,
            "previous": (previous or {}).get("release_id")})
    except BaseException:
        if taken.changed and not check_mode:
            # Give back what this run took, then fail with the error that stopped it; when
            # the give-back fails too (the API went away), that error still explains the run.
            with contextlib.suppress(Exception):
                lock.release(release_id)
        raise
    back = f"; previous succeeded release: {previous['release_id'] if previous else 'none'}"
    return SessionResult(
        changed=started.changed, msg=f"{taken.msg}. {started.msg}{back}", lock=taken.lock,
        record=started.record, previous=previous, existing=existing, before=started.before,
        after=started.after)


def write_artifact(directory: str, release_id: str, document: dict[str, Any]) -> tuple[str, bool]:
    """<directory>/release-<id>.json (0640, the directory 0750); (path, whether it changed)."""
    os.makedirs(directory, mode=0o750, exist_ok=True)
    path = os.path.join(directory, f"release-{release_id}.json")
    text = json.dumps(document, indent=4, sort_keys=True, ensure_ascii=False) + "\n"
    try:
        with open(path, encoding="utf-8") as handle:
            if handle.read() == text:
                return path, False
    except FileNotFoundError:
        pass
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(path + ".tmp", path)
    return path, True


def close_release(api: ConfigMaps, namespace: str, app: str, release_id: str,
                  record: dict[str, Any], outcome: str, artifacts_dir: str | None = None,
                  check_mode: bool = False) -> SessionResult:
    """Merge `record` and the outcome into the release's record, copy it into
    `artifacts_dir`, then give the lock back (only this release's lock; never another's)."""
    written = ReleaseRecords(api, namespace, app, check_mode).put(
        release_id, {**record, "outcome": outcome})
    artifact, artifact_changed = None, False
    if artifacts_dir and not check_mode:
        artifact, artifact_changed = write_artifact(artifacts_dir, release_id,
                                                    written.record or {})
    released = DeployLock(api, namespace, app, check_mode).release(release_id)
    return SessionResult(
        changed=written.changed or artifact_changed,
        msg=f"{written.msg}. {released.msg}", lock=released.lock, record=written.record,
        artifact=artifact, before=written.before, after=written.after)


def run(connect: Callable[[], ConfigMaps], namespace: str, app: str, state: str,
        release_id: str, holder: str, pid: int, now: str, record: dict[str, Any] | None = None,
        outcome: str | None = None, artifacts_dir: str | None = None,
        limit: int = DEFAULT_LIMIT, check_mode: bool = False) -> SessionResult:
    """The module's one entry. The options are checked before `connect` makes the client,
    so a bad one fails without any request."""
    record = record or {}
    validate(app, state, release_id, record, outcome, limit)
    api = connect()
    if state == OPENED:
        return open_release(api, namespace, app, release_id, holder, pid, now, record, limit,
                            check_mode)
    return close_release(api, namespace, app, release_id, record, outcome or "",
                         artifacts_dir, check_mode)
