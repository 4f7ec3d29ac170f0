# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Opening and closing a release (lock + record in one call each) on an in-memory ConfigMap
API (k8s_configmap_fakes): what a first run, a re-run and a concurrent run see and leave."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from k8s_configmap_fakes import FakeConfigMaps, Unconnectable

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    InvalidInput,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.lock import LockHeld
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.session import run
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import KubeApiError

NS = "shop"
LOCK = (NS, "web-deploy-lock")
T0, T1 = "2026-11-29T10:00:00Z", "2026-11-29T11:00:00Z"


def session(api: Any, state: str, release_id: str = "web-2", now: str = T0,
            check_mode: bool = False, **kwargs: Any) -> Any:
    return run(lambda: api, NS, "web", state, release_id, "ci@runner", 4242, now,
               check_mode=check_mode, **kwargs)


def stored(api: FakeConfigMaps, release_id: str) -> dict[str, Any] | None:
    obj = api.objects.get((NS, f"web-release-{release_id}"))
    return json.loads(obj["data"]["release.json"]) if obj else None


@pytest.fixture
def api() -> FakeConfigMaps:
    return FakeConfigMaps()


def released_before(api: FakeConfigMaps, release_id: str = "web-1") -> None:
    session(api, "opened", release_id, record={"version": "1"})
    session(api, "closed", release_id, record={"finished_at": T0}, outcome="succeeded")


def test_opening_takes_the_lock_records_the_start_and_names_the_previous(
        api: FakeConfigMaps) -> None:
    released_before(api)
    opened = session(api, "opened", now=T1, record={"version": "2"})
    assert opened.changed
    assert opened.previous["release_id"] == "web-1" and opened.existing is None
    assert opened.lock["release_id"] == "web-2"
    assert stored(api, "web-2") == {"app": "web", "release_id": "web-2", "version": "2",
                                    "started_at": T1, "outcome": "in_progress",
                                    "previous": "web-1"}
    assert api.objects[LOCK]["data"]["release_id"] == "web-2"


def test_closing_records_the_outcome_copies_it_and_gives_the_lock_back(
        api: FakeConfigMaps, tmp_path: Path) -> None:
    session(api, "opened", record={"version": "2"})
    artifacts = tmp_path / "artifacts"
    closed = session(api, "closed", record={"finished_at": T1}, outcome="rolled_back",
                     artifacts_dir=str(artifacts))
    assert closed.changed and closed.lock["release_id"] == "web-2"
    assert LOCK not in api.objects
    assert stored(api, "web-2")["outcome"] == "rolled_back"
    copy = artifacts / "release-web-2.json"
    assert closed.artifact == str(copy)
    assert json.loads(copy.read_text()) == stored(api, "web-2")
    assert stat.S_IMODE(copy.stat().st_mode) == 0o640
    assert stat.S_IMODE(artifacts.stat().st_mode) == 0o750


def test_a_rerun_of_a_succeeded_release_changes_nothing(api: FakeConfigMaps,
                                                        tmp_path: Path) -> None:
    released_before(api, "web-2")
    session(api, "closed", "web-2", outcome="succeeded", artifacts_dir=str(tmp_path))
    api.requests.clear()
    opened = session(api, "opened", now=T1)
    closed = session(api, "closed", outcome="succeeded", artifacts_dir=str(tmp_path))
    assert (opened.changed, closed.changed) == (False, False)
    assert opened.existing["outcome"] == "succeeded" and opened.previous is None
    assert stored(api, "web-2")["started_at"] == T0
    # only the lock was written (taken and given back)
    assert api.writes() == [f"POST {NS}/web-deploy-lock", f"DELETE {NS}/web-deploy-lock"]


def test_another_release_holding_the_lock_is_named_and_nothing_is_written(
        api: FakeConfigMaps) -> None:
    session(api, "opened", "web-7")
    api.requests.clear()
    with pytest.raises(LockHeld, match="held by release web-7 .holder ci@runner"):
        session(api, "opened")
    assert api.writes() == [] and stored(api, "web-2") is None


def test_a_failure_after_the_lock_gives_it_back(api: FakeConfigMaps) -> None:
    def refuse(verb: str, name: str) -> None:
        if verb == "POST" and name == "web-release-web-2":
            raise KubeApiError(403, "configmaps is forbidden")

    api.before = refuse
    with pytest.raises(KubeApiError, match="403"):
        session(api, "opened")
    assert LOCK not in api.objects


def test_a_give_back_that_fails_too_leaves_the_first_error(api: FakeConfigMaps) -> None:
    def refuse(verb: str, name: str) -> None:
        if verb == "POST" and name == "web-release-web-2":
            raise KubeApiError(403, "configmaps is forbidden")
        if verb == "DELETE":
            raise KubeApiError(503, "the API is going away")

    api.before = refuse
    with pytest.raises(KubeApiError, match="403"):
        session(api, "opened")
    assert api.requests[-1] == f"DELETE {NS}/web-deploy-lock"


def test_a_rerun_after_a_crash_keeps_its_own_lock_and_start(api: FakeConfigMaps) -> None:
    session(api, "opened")  # the run that died: lock held, record in progress
    opened = session(api, "opened", now=T1)
    assert not opened.changed and opened.existing["outcome"] == "in_progress"
    assert stored(api, "web-2")["started_at"] == T0


def test_check_mode_writes_nothing(api: FakeConfigMaps, tmp_path: Path) -> None:
    opened = session(api, "opened", check_mode=True, record={"version": "2"})
    closed = session(api, "closed", check_mode=True, outcome="succeeded",
                     artifacts_dir=str(tmp_path / "a"))
    assert opened.changed and opened.after["outcome"] == "in_progress"
    assert closed.artifact is None and not (tmp_path / "a").exists()
    assert api.writes() == []


@pytest.mark.parametrize(("state", "kwargs", "message"), [
    ("closed", {"outcome": "done"}, "outcome must be one of succeeded, failed, rolled_back,"
                                    " rollback_failed when state=closed, got 'done'"),
    ("opened", {"record": {"outcome": "succeeded"}}, "record.outcome is set by state=opened"),
    ("opened", {"limit": 0}, "limit must be 1 or more, got 0"),
    ("opened", {"release_id": "Web 2"}, "release id 'Web 2' is not valid"),
])
def test_bad_options_are_refused_before_any_request(state: str, kwargs: dict[str, Any],
                                                    message: str) -> None:
    options = {"release_id": "web-2", **kwargs}
    release_id = options.pop("release_id")
    with pytest.raises(InvalidInput, match=message):
        run(Unconnectable(), NS, "web", state, release_id, "ci@runner", 1, T0, **options)
