# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The deploy lock's states on an in-memory ConfigMap API (k8s_configmap_fakes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from k8s_configmap_fakes import FakeConfigMaps, Unconnectable

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    InvalidInput,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.lock import (
    LockError,
    LockHeld,
    run,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    ApiUnreachable,
    KubeApiError,
)

NS = "shop"
NAME = "web-deploy-lock"
HELD_BY_R1 = {"release_id": "r1", "holder": "alice@ci-1", "pid": "4242",
              "acquired_at": "2026-11-27T10:00:00Z"}
LABELS = {"app.kubernetes.io/name": "web", "app.kubernetes.io/managed-by": "prodready.deploy"}


def lock(api: FakeConfigMaps, state: str, release_id: str | None = "r2",
         check_mode: bool = False, app: str = "web") -> Any:
    return run(lambda: api, NS, app, state, release_id, "bob@ci-2", 77,
               "2026-11-27T11:00:00Z", check_mode=check_mode)


def stored(api: FakeConfigMaps) -> dict[str, str] | None:
    obj = api.objects.get((NS, NAME))
    return obj["data"] if obj else None


@pytest.fixture
def api() -> FakeConfigMaps:
    return FakeConfigMaps()


@pytest.fixture
def held(api: FakeConfigMaps) -> FakeConfigMaps:
    api.put_object(NS, NAME, HELD_BY_R1, LABELS)
    return api


# acquired -----------------------------------------------------------------------------------


def test_acquire_free_lock_creates_it_with_labels_and_holder(api: FakeConfigMaps) -> None:
    result = lock(api, "acquired")
    assert result.changed is True
    assert result.lock == {"release_id": "r2", "holder": "bob@ci-2", "pid": "77",
                           "acquired_at": "2026-11-27T11:00:00Z"}
    assert stored(api) == result.lock
    assert api.objects[(NS, NAME)]["metadata"]["labels"] == LABELS
    assert api.requests == [f"GET {NS}/{NAME}", f"POST {NS}/{NAME}"]
    assert result.msg == ("Acquired the deploy lock shop/web-deploy-lock for release r2 (holder"
                          " bob@ci-2, pid 77, since 2026-11-27T11:00:00Z)")
    assert result.diff == {"before": "", "after": json.dumps(result.lock, indent=2,
                                                             sort_keys=True) + "\n"}


def test_acquire_held_by_same_release_is_ok_and_unchanged(held: FakeConfigMaps) -> None:
    result = lock(held, "acquired", "r1")
    assert result.changed is False
    assert result.lock == HELD_BY_R1  # the first run's holder and time are kept
    assert held.writes() == []
    assert "already held by release r1 (holder alice@ci-1" in result.msg


def test_acquire_held_by_another_release_names_it_and_how_to_break(held: FakeConfigMaps
                                                                   ) -> None:
    with pytest.raises(LockHeld) as info:
        lock(held, "acquired", "r2")
    assert str(info.value) == (
        "the deploy lock shop/web-deploy-lock is held by release r1 (holder alice@ci-1, pid"
        " 4242, since 2026-11-27T10:00:00Z); wait until that deploy ends, or if that run is"
        " dead, break the lock with prodready.deploy.deploy_lock state=broken app=web"
        " namespace=shop")
    assert held.writes() == []
    assert stored(held) == HELD_BY_R1


def test_acquire_race_lost_after_the_read_reports_the_winner(api: FakeConfigMaps) -> None:
    """The POST is what makes the lock exclusive: another run that creates it between this
    run's GET and POST wins, and this run names it."""

    def other_run_wins(verb: str, name: str) -> None:
        if verb == "POST" and stored(api) is None:
            api.put_object(NS, NAME, HELD_BY_R1, LABELS)

    api.before = other_run_wins
    with pytest.raises(LockHeld, match="held by release r1 "):
        lock(api, "acquired", "r2")
    assert api.requests == [f"GET {NS}/{NAME}", f"POST {NS}/{NAME}", f"GET {NS}/{NAME}"]
    assert stored(api) == HELD_BY_R1


def test_acquire_gives_up_after_repeated_races(api: FakeConfigMaps) -> None:
    def taken_then_freed(verb: str, name: str) -> None:
        if verb == "POST":
            api.put_object(NS, NAME, HELD_BY_R1, LABELS)
        elif verb == "GET":
            api.objects.pop((NS, NAME), None)

    api.before = taken_then_freed
    with pytest.raises(LockError, match="taken and released 3 times"):
        lock(api, "acquired")
    assert len(api.writes()) == 3


def test_acquire_in_check_mode_reports_and_writes_nothing(api: FakeConfigMaps) -> None:
    result = lock(api, "acquired", check_mode=True)
    assert (result.changed, result.lock["release_id"]) == (True, "r2")
    assert result.msg.startswith("Would acquire the deploy lock shop/web-deploy-lock")
    assert api.writes() == []
    assert stored(api) is None


def test_acquire_in_check_mode_fails_where_a_real_run_would(held: FakeConfigMaps) -> None:
    with pytest.raises(LockHeld):
        lock(held, "acquired", "r2", check_mode=True)


def test_api_errors_pass_through_typed(api: FakeConfigMaps) -> None:
    def forbidden(verb: str, name: str) -> None:
        raise KubeApiError(403, 'configmaps "web-deploy-lock" is forbidden')

    api.before = forbidden
    with pytest.raises(KubeApiError) as info:
        lock(api, "acquired")
    assert info.value.status == 403


def test_unreachable_api_names_the_server() -> None:
    def connect() -> Any:
        raise ApiUnreachable("https://10.0.0.1:6443", "[Errno 111] Connection refused")

    with pytest.raises(ApiUnreachable) as info:
        run(connect, NS, "web", "acquired", "r2", "bob@ci-2", 77, "2026-11-27T11:00:00Z")
    assert str(info.value) == ("cannot reach the Kubernetes API at https://10.0.0.1:6443:"
                               " [Errno 111] Connection refused")


# released -----------------------------------------------------------------------------------


def test_release_own_lock_deletes_exactly_what_was_read(held: FakeConfigMaps) -> None:
    result = lock(held, "released", "r1")
    assert (result.changed, result.lock) == (True, HELD_BY_R1)
    assert stored(held) is None
    assert held.writes() == [f"DELETE {NS}/{NAME}"]
    assert result.diff == {"before": json.dumps(HELD_BY_R1, indent=2, sort_keys=True) + "\n",
                           "after": ""}


def test_release_absent_lock_is_unchanged(api: FakeConfigMaps) -> None:
    result = lock(api, "released", "r1")
    assert (result.changed, result.lock) == (False, None)
    assert result.msg == "The deploy lock shop/web-deploy-lock is not held; nothing to release"
    assert api.writes() == []


def test_release_by_another_release_never_deletes(held: FakeConfigMaps) -> None:
    with pytest.raises(LockHeld) as info:
        lock(held, "released", "r2")
    assert str(info.value).startswith(
        "the deploy lock shop/web-deploy-lock is held by release r1 (holder alice@ci-1, pid"
        " 4242, since 2026-11-27T10:00:00Z), not by release r2, and a release frees only its"
        " own lock;")
    assert held.writes() == []
    assert stored(held) == HELD_BY_R1


def test_release_of_a_lock_that_changed_hands_after_the_read_is_refused(
        held: FakeConfigMaps) -> None:
    def broken_and_retaken(verb: str, name: str) -> None:
        if verb == "DELETE":
            held.put_object(NS, NAME, {**HELD_BY_R1, "release_id": "r3"}, LABELS)

    held.before = broken_and_retaken
    with pytest.raises(LockError, match="changed after it was read"):
        lock(held, "released", "r1")
    assert stored(held)["release_id"] == "r3"


def test_release_in_check_mode_writes_nothing(held: FakeConfigMaps) -> None:
    result = lock(held, "released", "r1", check_mode=True)
    assert result.changed is True
    assert result.msg.startswith("Would release the deploy lock")
    assert held.writes() == []
    assert stored(held) == HELD_BY_R1


# broken -------------------------------------------------------------------------------------


def test_break_removes_any_lock_and_returns_its_holder(held: FakeConfigMaps) -> None:
    result = lock(held, "broken", None)
    assert (result.changed, result.lock) == (True, HELD_BY_R1)
    assert result.msg == ("Broke the deploy lock shop/web-deploy-lock held by release r1"
                          " (holder alice@ci-1, pid 4242, since 2026-11-27T10:00:00Z)")
    assert stored(held) is None


def test_break_absent_lock_is_unchanged(api: FakeConfigMaps) -> None:
    result = lock(api, "broken", None)
    assert (result.changed, result.lock) == (False, None)
    assert api.writes() == []


def test_break_in_check_mode_writes_nothing(held: FakeConfigMaps) -> None:
    result = lock(held, "broken", None, check_mode=True)
    assert (result.changed, result.lock) == (True, HELD_BY_R1)
    assert held.writes() == []
    assert stored(held) == HELD_BY_R1


def test_break_a_foreign_configmap_without_lock_data(api: FakeConfigMaps) -> None:
    api.put_object(NS, NAME, {"note": "made by hand"})
    with pytest.raises(LockHeld, match=r"held by release <none recorded> \(holder <unknown>"):
        lock(api, "acquired")
    result = lock(api, "broken", None)
    assert result.changed is True
    assert stored(api) is None


# options, refused before any request --------------------------------------------------------


@pytest.mark.parametrize(("app", "state", "release_id", "message"), [
    ("Web", "acquired", "r1", "app 'Web' is not valid: lowercase letters, digits, '-' and"
     " '.', starting and ending with a letter or digit, at most 63 characters"),
    ("web-", "acquired", "r1", "app 'web-' is not valid"),
    ("w" * 64, "acquired", "r1", "at most 63 characters"),
    ("web", "acquired", None, "release_id is required when state=acquired"),
    ("web", "released", " ", "release_id is required when state=released"),
    ("web", "held", "r1", "state must be one of acquired, released, broken, got 'held'"),
])
def test_bad_options_fail_before_any_request(app: str, state: str, release_id: str | None,
                                             message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        run(Unconnectable(), NS, app, state, release_id, "bob@ci-2", 77, "t")
    assert message in str(info.value)


def test_broken_needs_no_release_id(api: FakeConfigMaps) -> None:
    assert lock(api, "broken", None).changed is False
