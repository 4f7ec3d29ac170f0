# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""prodready.deploy.deploy_lock and prodready.deploy.release_record through `ansible` against
the lab's cluster, as the least-privilege deployer, in the namespace prodready. Each test
uses its own app name (it-<random>) and deletes its ConfigMaps afterwards; every outcome is
checked again with kubectl."""

from __future__ import annotations

import json
import secrets
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from ansible_run import run_module
from kube import NS, kubectl

LABELS = "app.kubernetes.io/managed-by=prodready.deploy"


@pytest.fixture
def app(lab_env: dict[str, str]) -> Iterator[str]:
    name = f"it-{secrets.token_hex(4)}"
    yield name
    kubectl(lab_env, "delete", "configmap", "-l", f"app.kubernetes.io/name={name}",
            "--ignore-not-found", check=False)


def configmap(lab_env: dict[str, str], name: str) -> dict[str, Any] | None:
    """The ConfigMap as kubectl reads it; None when it does not exist."""
    proc = kubectl(lab_env, "get", "configmap", name, "-o", "json", check=False)
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return None
    return json.loads(proc.stdout)


def lock(lab_env: dict[str, str], app: str, *flags: str, **args: Any
         ) -> tuple[int, dict[str, Any]]:
    rc, result, _proc = run_module(lab_env, "deploy_lock", {"namespace": NS, "app": app,
                                                            **args}, *flags)
    return rc, result


def record(lab_env: dict[str, str], app: str, *flags: str, **args: Any
           ) -> tuple[int, dict[str, Any]]:
    rc, result, _proc = run_module(lab_env, "release_record", {"namespace": NS, "app": app,
                                                               **args}, *flags)
    return rc, result


def stored_record(lab_env: dict[str, str], app: str, release_id: str) -> dict[str, Any] | None:
    obj = configmap(lab_env, f"{app}-release-{release_id}")
    return json.loads(obj["data"]["release.json"]) if obj else None


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The deploy lock ----------------------------------------------------------------------------


def test_lock_acquire_refuse_reacquire_release_break(lab_env: dict[str, str], app: str
                                                     ) -> None:
    name = f"{app}-deploy-lock"

    rc, check = lock(lab_env, app, "--check", release_id="r1", holder="alice@ci-1")
    assert rc == 0, check
    assert check["changed"] is True
    assert check["lock"]["release_id"] == "r1"
    assert not any(r.startswith("POST") for r in check["requests"])
    assert configmap(lab_env, name) is None

    rc, first = lock(lab_env, app, release_id="r1", holder="alice@ci-1")
    assert rc == 0, first
    assert first["changed"] is True
    obj = configmap(lab_env, name)
    assert obj["data"] == first["lock"]
    assert (obj["data"]["release_id"], obj["data"]["holder"]) == ("r1", "alice@ci-1")
    assert obj["data"]["acquired_at"].endswith("Z")
    assert obj["metadata"]["labels"] == {"app.kubernetes.io/name": app,
                                         "app.kubernetes.io/managed-by": "prodready.deploy"}

    rc, again = lock(lab_env, app, release_id="r1", holder="alice@ci-2")
    assert rc == 0, again
    assert again["changed"] is False
    assert again["lock"] == first["lock"]
    assert configmap(lab_env, name)["metadata"]["resourceVersion"] == \
        obj["metadata"]["resourceVersion"]

    rc, refused = lock(lab_env, app, release_id="r2", holder="bob@ci-3")
    assert rc != 0
    assert refused["msg"] == (
        f"Cannot acquire the deploy lock {NS}/{name}: the deploy lock {NS}/{name} is held by"
        f" release r1 (holder alice@ci-1, pid {first['lock']['pid']}, since"
        f" {first['lock']['acquired_at']}); wait until that deploy ends, or if that run is"
        f" dead, break the lock with prodready.deploy.deploy_lock state=broken app={app}"
        f" namespace={NS}")
    assert configmap(lab_env, name)["data"]["release_id"] == "r1"

    rc, not_yours = lock(lab_env, app, release_id="r2", state="released")
    assert rc != 0
    assert "is held by release r1 (holder alice@ci-1" in not_yours["msg"]
    assert "not by release r2" in not_yours["msg"]
    assert not any(r.startswith("DELETE") for r in not_yours["requests"])
    assert configmap(lab_env, name)["data"]["release_id"] == "r1"

    rc, would_break = lock(lab_env, app, "--check", state="broken")
    assert rc == 0, would_break
    assert would_break["changed"] is True
    assert configmap(lab_env, name) is not None

    rc, broken = lock(lab_env, app, "--diff", state="broken")
    assert rc == 0, broken
    assert broken["changed"] is True
    assert broken["lock"] == first["lock"]
    assert json.loads(broken["diff"]["before"]) == first["lock"]
    assert broken["diff"]["after"] == ""
    assert configmap(lab_env, name) is None

    rc, nothing = lock(lab_env, app, state="broken")
    assert (rc, nothing["changed"], nothing["lock"]) == (0, False, None)
    rc, nothing = lock(lab_env, app, release_id="r1", state="released")
    assert (rc, nothing["changed"], nothing["lock"]) == (0, False, None)


def test_lock_released_by_its_holder_then_free_for_next(lab_env: dict[str, str],
                                                        app: str) -> None:
    assert lock(lab_env, app, release_id="r1")[0] == 0
    rc, released = lock(lab_env, app, release_id="r1", state="released")
    assert (rc, released["changed"], released["lock"]["release_id"]) == (0, True, "r1")
    assert configmap(lab_env, f"{app}-deploy-lock") is None
    rc, next_one = lock(lab_env, app, release_id="r2")
    assert (rc, next_one["changed"]) == (0, True)
    assert configmap(lab_env, f"{app}-deploy-lock")["data"]["release_id"] == "r2"


def test_lock_two_concurrent_acquires_one_wins(lab_env: dict[str, str], app: str) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(lambda rid: lock(lab_env, app, release_id=rid), ["ra", "rb"]))
    winners = [rid for rid, (rc, _r) in zip(["ra", "rb"], runs, strict=True) if rc == 0]
    assert len(winners) == 1, runs
    loser = next(result for rc, result in runs if rc != 0)
    assert f"is held by release {winners[0]} " in loser["msg"]
    assert configmap(lab_env, f"{app}-deploy-lock")["data"]["release_id"] == winners[0]


# The release record -------------------------------------------------------------------------


def test_record_present_check_apply_again_merge(lab_env: dict[str, str], app: str) -> None:
    doc = {"version": "1.0.0", "outcome": "running", "started_at": "2026-11-20T10:00:00Z",
           "error": "none yet"}

    rc, check = record(lab_env, app, "--check", "--diff", release_id="r1", record=doc)
    assert rc == 0, check
    assert check["changed"] is True
    assert check["diff"]["before"] == ""
    assert json.loads(check["diff"]["after"]) == {"app": app, "release_id": "r1", **doc}
    assert stored_record(lab_env, app, "r1") is None

    rc, first = record(lab_env, app, release_id="r1", record=doc)
    assert rc == 0, first
    assert first["changed"] is True
    assert stored_record(lab_env, app, "r1") == {"app": app, "release_id": "r1", **doc}
    labels = configmap(lab_env, f"{app}-release-r1")["metadata"]["labels"]
    assert labels == {"app.kubernetes.io/name": app,
                      "app.kubernetes.io/managed-by": "prodready.deploy",
                      "prodready.deploy/release-id": "r1"}
    version = configmap(lab_env, f"{app}-release-r1")["metadata"]["resourceVersion"]

    rc, second = record(lab_env, app, release_id="r1", record=doc)
    assert rc == 0, second
    assert second["changed"] is False
    assert not any(r.startswith(("PUT", "POST")) for r in second["requests"])
    assert configmap(lab_env, f"{app}-release-r1")["metadata"]["resourceVersion"] == version

    rc, closed = record(lab_env, app, "--diff", release_id="r1",
                        record={"outcome": "succeeded", "finished_at": "2026-11-20T10:05:00Z",
                                "error": None})
    assert rc == 0, closed
    assert closed["changed"] is True
    assert "error" in json.loads(closed["diff"]["before"])
    assert stored_record(lab_env, app, "r1") == {
        "app": app, "release_id": "r1", "version": "1.0.0", "outcome": "succeeded",
        "started_at": "2026-11-20T10:00:00Z", "finished_at": "2026-11-20T10:05:00Z"}


def test_record_query_previous_and_absent(lab_env: dict[str, str], app: str) -> None:
    for release_id, doc in (
        ("r1", {"outcome": "succeeded", "finished_at": "2026-11-20T10:05:00Z"}),
        ("r2", {"outcome": "failed", "finished_at": "2026-11-21T10:05:00Z"}),
        ("r3", {"outcome": "succeeded", "finished_at": "2026-11-22T10:05:00Z"}),
        ("r4", {"outcome": "running", "started_at": "2026-11-23T10:00:00Z"}),
    ):
        rc, result = record(lab_env, app, release_id=release_id, record=doc)
        assert rc == 0, result
    # The lock of the same app is labelled too, but is no release record.
    assert lock(lab_env, app, release_id="r4")[0] == 0

    rc, newest = record(lab_env, app, state="query")
    assert rc == 0, newest
    assert newest["changed"] is False
    assert [r["release_id"] for r in newest["records"]] == ["r4", "r3", "r2", "r1"]
    assert newest["record"]["release_id"] == "r4"
    assert newest["previous"]["release_id"] == "r3"

    rc, of_r3 = record(lab_env, app, state="query", release_id="r3")
    assert (rc, of_r3["record"]["release_id"], of_r3["previous"]["release_id"]) == (
        0, "r3", "r1")

    rc, succeeded = record(lab_env, app, state="query", outcome="succeeded", limit=1)
    assert rc == 0, succeeded
    assert [r["release_id"] for r in succeeded["records"]] == ["r3"]
    assert succeeded["previous"]["release_id"] == "r1"

    rc, missing = record(lab_env, app, state="query", release_id="r9")
    assert rc != 0
    assert missing["msg"] == (
        f"Cannot query the release record of r9 of {NS}/{app}: release r9 of {app} has no"
        f" record in namespace {NS} (no ConfigMap {app}-release-r9); releases recorded,"
        " newest first: r4, r3, r2, r1")

    rc, would = record(lab_env, app, "--check", state="absent", release_id="r2")
    assert (rc, would["changed"]) == (0, True)
    assert stored_record(lab_env, app, "r2") is not None
    rc, removed = record(lab_env, app, state="absent", release_id="r2")
    assert (rc, removed["changed"], removed["record"]["outcome"]) == (0, True, "failed")
    assert stored_record(lab_env, app, "r2") is None
    rc, again = record(lab_env, app, state="absent", release_id="r2")
    assert (rc, again["changed"]) == (0, False)
    out = kubectl(lab_env, "get", "configmap", "-l", f"app.kubernetes.io/name={app},{LABELS}",
                  "-o", "name").stdout.split()
    assert sorted(out) == sorted([f"configmap/{app}-deploy-lock", f"configmap/{app}-release-r1",
                                  f"configmap/{app}-release-r3", f"configmap/{app}-release-r4"])


# Errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize("release_id", ["1.4.2", "R1", "r" * 64])
def test_bad_release_id_refused_before_any_api_call(lab_env: dict[str, str], app: str,
                                                    release_id: str) -> None:
    """The host is a closed port: had the module asked the API anything, the error would be
    that it cannot reach it."""
    host = f"https://127.0.0.1:{closed_port()}"
    rc, result = record(lab_env, app, release_id=release_id, record={"a": 1}, host=host)
    assert rc != 0
    assert result["msg"].startswith(
        f"Invalid option: release id {release_id!r} is not valid: a release id must be a DNS"
        " label - lowercase letters, digits and '-'")
    assert result["requests"] == []
    assert kubectl(lab_env, "get", "configmap", "-l", f"app.kubernetes.io/name={app}", "-o",
                   "name").stdout == ""


def test_record_too_large_refused_before_any_api_call(lab_env: dict[str, str], app: str
                                                      ) -> None:
    host = f"https://127.0.0.1:{closed_port()}"
    # Templated by Ansible: a 900 KiB argument would exceed the kernel's limit for one
    # command-line argument.
    rc, result = record(lab_env, app, release_id="r1", record={"blob": "{{ 'x' * 921600 }}"},
                        host=host)
    assert rc != 0
    assert "bytes as JSON, more than the 921600 bytes (900 KiB)" in result["msg"]
    assert result["requests"] == []


def test_unreachable_api_names_the_server_and_the_cause(lab_env: dict[str, str], app: str
                                                        ) -> None:
    port = closed_port()
    rc, result = lock(lab_env, app, release_id="r1", host=f"https://127.0.0.1:{port}",
                      api_key="x")
    assert rc != 0
    assert result["msg"] == (
        f"Failed to acquire the deploy lock {NS}/{app}-deploy-lock (cannot reach the"
        f" Kubernetes API at https://127.0.0.1:{port}: [Errno 111] Connection refused)")


def test_namespace_the_deployer_may_not_touch(lab_env: dict[str, str], app: str) -> None:
    rc, result, _proc = run_module(lab_env, "deploy_lock", {"namespace": "kube-system",
                                                            "app": app, "release_id": "r1"})
    assert rc != 0
    assert result["msg"].startswith(
        f"Failed to acquire the deploy lock kube-system/{app}-deploy-lock (the Kubernetes API"
        " answered 403: configmaps")
    assert "is forbidden" in result["msg"]


# The release session (lock and record in one call each) ---------------------------------------


def session(lab_env: dict[str, str], app: str, *flags: str, **args: Any
            ) -> tuple[int, dict[str, Any]]:
    rc, result, _proc = run_module(lab_env, "release_session", {"namespace": NS, "app": app,
                                                                **args}, *flags)
    return rc, result


def test_session_opens_and_closes_a_release_and_a_rerun_changes_nothing(
        lab_env: dict[str, str], app: str, tmp_path: Any) -> None:
    rc, first = session(lab_env, app, release_id="r1", record={"version": "1"})
    assert rc == 0, first
    rc, closed = session(lab_env, app, release_id="r1", state="closed", outcome="succeeded",
                         artifacts_dir=str(tmp_path))
    assert rc == 0, closed

    rc, opened = session(lab_env, app, "--diff", release_id="r2", record={"version": "2"})
    assert rc == 0, opened
    assert opened["changed"] is True and opened["previous"]["release_id"] == "r1"
    assert opened["existing"] is None and '"outcome": "in_progress"' in opened["diff"]["after"]
    held = configmap(lab_env, f"{app}-deploy-lock")
    assert held is not None and held["data"]["release_id"] == "r2"

    rc, other = session(lab_env, app, release_id="r3")
    assert rc != 0 and "held by release r2" in other["msg"], other
    assert stored_record(lab_env, app, "r3") is None

    rc, closed = session(lab_env, app, release_id="r2", state="closed", outcome="succeeded",
                         record={"finished_at": "2026-11-29T10:00:00Z"},
                         artifacts_dir=str(tmp_path))
    assert rc == 0, closed
    assert configmap(lab_env, f"{app}-deploy-lock") is None
    assert stored_record(lab_env, app, "r2")["outcome"] == "succeeded"
    assert json.loads((tmp_path / "release-r2.json").read_text()) == closed["record"]

    for state, extra in (("opened", {}), ("closed", {"outcome": "succeeded"})):
        rc, again = session(lab_env, app, release_id="r2", state=state,
                            artifacts_dir=str(tmp_path), **extra)
        assert rc == 0 and again["changed"] is False, again
    assert configmap(lab_env, f"{app}-deploy-lock") is None
