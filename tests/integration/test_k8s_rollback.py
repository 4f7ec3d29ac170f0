# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_rollback module through Ansible against the lab's cluster, as the least-privilege
deployer: Deployments (and a StatefulSet) with releases r1, r2, r3 on the kwok nodes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kube import NS, kubectl

REPO = Path(__file__).resolve().parents[2]
IMAGE = "127.0.0.1:5000/rb/app:"
FAULT_LABEL = "kwok.prodready.lab/fault"


def get(lab_env: dict[str, str], kind: str, name: str) -> dict[str, Any]:
    return json.loads(kubectl(lab_env, "get", kind, name, "-o", "json").stdout)


def manifest(kind: str, name: str, release: str, fault: str | None = None) -> dict[str, Any]:
    """What the k8s_rollout role stamps: the release id as the change-cause and as pod
    template annotation and label; kwok nodes; `fault` makes kwok fail the pods."""
    labels = {"app.kubernetes.io/name": name, "prodready.io/release-id": release}
    if fault:
        labels[FAULT_LABEL] = fault
    spec: dict[str, Any] = {
        "replicas": 2, "revisionHistoryLimit": 10,
        "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
        "template": {
            "metadata": {"labels": labels, "annotations": {"prodready.io/release-id": release}},
            "spec": {"nodeSelector": {"type": "kwok"},
                     "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists",
                                      "effect": "NoSchedule"}],
                     "containers": [{"name": "app", "image": IMAGE + release,
                                     "env": [{"name": "RELEASE", "value": release}]}]}},
    }
    if kind == "Deployment":
        spec["strategy"] = {"type": "RollingUpdate",
                            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    else:
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": NS,
                         "annotations": {"kubernetes.io/change-cause": release,
                                         "prodready.io/release-id": release}},
            "spec": spec}


def release(lab_env: dict[str, str], kind: str, name: str, release_id: str, revision: int,
            fault: str | None = None) -> None:
    """Apply one release as the role does (server-side apply) and wait until the controller
    recorded it; a good release also until its rollout completed."""
    definition = json.dumps(manifest(kind, name, release_id, fault))
    kubectl(lab_env, "apply", "--server-side", "--field-manager=prodready.deploy",
            "--force-conflicts", "-f", "-", stdin=definition)
    if fault is None:
        kubectl(lab_env, "rollout", "status", f"{kind.lower()}/{name}", "--timeout=120s")
        return
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        obj = get(lab_env, kind, name)
        if obj["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == \
                str(revision):
            return
        time.sleep(0.5)
    pytest.fail(f"{kind} {name} never reached revision {revision}")


def rollback(lab_env: dict[str, str], *flags: str, **args: Any) -> tuple[int, dict[str, Any]]:
    """Run the module once through `ansible` (ad hoc); its exit code and the task result."""
    env = {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible"), "localhost", "-m",
                           "prodready.deploy.k8s_rollback", "-a",
                           json.dumps({"namespace": NS, **args}), *flags],
                          capture_output=True, text=True, env=env, timeout=900, check=False)
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"no task result from ansible:\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, result


def running(lab_env: dict[str, str], kind: str, name: str) -> dict[str, Any]:
    """What the workload runs, read independently of the module."""
    obj = get(lab_env, kind, name)
    template = obj["spec"]["template"]
    return {"generation": obj["metadata"]["generation"], "template": template,
            "release_id": template["metadata"]["annotations"]["prodready.io/release-id"],
            "image": template["spec"]["containers"][0]["image"],
            "change_cause": obj["metadata"]["annotations"].get("kubernetes.io/change-cause"),
            "revision": obj["metadata"]["annotations"].get("deployment.kubernetes.io/revision"),
            "status": obj.get("status") or {}}


Factory = Callable[..., str]


@pytest.fixture
def workload(lab_env: dict[str, str], request: pytest.FixtureRequest) -> Iterator[Factory]:
    """Make a Deployment (or StatefulSet) named rb-<test> with the given releases, in order;
    delete it afterwards."""
    made: list[tuple[str, str]] = []
    base = "rb-" + request.node.name.split("[")[0].removeprefix("test_")[:30].replace("_", "-")
    if "[" in request.node.name:
        base = f"{base.rstrip('-')}-{zlib.crc32(request.node.name.encode()) % 10000}"

    def make(*releases: str | tuple[str, str], kind: str = "Deployment") -> str:
        name = base.rstrip("-")
        kubectl(lab_env, "delete", kind.lower(), name, "--ignore-not-found", "--wait=true")
        made.append((kind.lower(), name))
        for number, item in enumerate(releases, start=1):
            release_id, fault = item if isinstance(item, tuple) else (item, None)
            release(lab_env, kind, name, release_id, number, fault)
        return name

    yield make
    for kind, name in made:
        kubectl(lab_env, "delete", kind, name, "--ignore-not-found", "--wait=false", check=False)


def test_rollback_to_previous_release_then_again_by_release_id(lab_env: dict[str, str],
                                                               workload: Factory) -> None:
    name = workload("r1", "r2", "r3")
    before = running(lab_env, "deploy", name)

    rc, check = rollback(lab_env, "--check", "--diff", name=name)
    assert rc == 0, check
    assert check["changed"] is True
    assert check["target"] == {"revision": 2, "release_id": "r2", "images": [IMAGE + "r2"]}
    assert check["previous"] == {"revision": 3, "release_id": "r3", "images": [IMAGE + "r3"]}
    assert (check["from_revision"], check["to_revision"]) == (3, 4)
    assert check["diff"]["before"]["release_id"] == "r3"
    assert check["diff"]["after"]["release_id"] == "r2"
    assert check["diff"]["after"]["template"]["spec"]["containers"][0]["image"] == IMAGE + "r2"
    assert "status" not in check
    assert not any(r.startswith("PATCH") for r in check["requests"])
    assert running(lab_env, "deploy", name)["template"] == before["template"]
    assert running(lab_env, "deploy", name)["generation"] == before["generation"]

    rc, applied = rollback(lab_env, name=name)
    assert rc == 0, applied
    assert applied["changed"] is True
    assert applied["status"] == "complete"
    assert (applied["from_revision"], applied["to_revision"]) == (3, 4)
    assert applied["target"]["release_id"] == "r2"
    assert applied["change_cause"] == "rollback to r2"
    assert sum(r.startswith("PATCH") for r in applied["requests"]) == 1
    now = running(lab_env, "deploy", name)
    assert (now["release_id"], now["image"], now["revision"], now["change_cause"]) == (
        "r2", IMAGE + "r2", "4", "rollback to r2")
    assert now["status"]["availableReplicas"] == now["status"]["updatedReplicas"] == 2
    print(f"\nrollback to previous release: {applied['elapsed']} s")

    rc, again = rollback(lab_env, name=name, release_id="r2")
    assert rc == 0, again
    assert again["changed"] is False
    assert again["change_cause"] is None
    assert again["status"] == "complete"
    assert (again["from_revision"], again["to_revision"]) == (4, 4)
    assert not any(r.startswith("PATCH") for r in again["requests"])
    after = running(lab_env, "deploy", name)
    assert (after["template"], after["generation"]) == (now["template"], now["generation"])


def test_rollback_to_release_id_and_to_revision_number(lab_env: dict[str, str],
                                                       workload: Factory) -> None:
    name = workload("r1", "r2", "r3")
    rc, to_r1 = rollback(lab_env, name=name, release_id="r1")
    assert rc == 0, to_r1
    assert (to_r1["changed"], to_r1["status"]) == (True, "complete")
    assert to_r1["target"] == {"revision": 1, "release_id": "r1", "images": [IMAGE + "r1"]}
    assert (to_r1["from_revision"], to_r1["to_revision"]) == (3, 4)
    assert running(lab_env, "deploy", name)["image"] == IMAGE + "r1"
    print(f"\nrollback to release id r1: {to_r1['elapsed']} s")

    # r2 kept its number; r1 is revision 4 now and revision 1 is gone.
    rc, to_2 = rollback(lab_env, name=name, revision=2)
    assert rc == 0, to_2
    assert (to_2["changed"], to_2["status"]) == (True, "complete")
    assert to_2["target"]["release_id"] == "r2"
    assert to_2["previous"]["release_id"] == "r1"
    assert (to_2["from_revision"], to_2["to_revision"]) == (4, 5)
    now = running(lab_env, "deploy", name)
    assert (now["image"], now["revision"], now["change_cause"]) == (
        IMAGE + "r2", "5", "rollback to r2")


@pytest.mark.parametrize(("args", "message"), [
    ({"revision": 7}, "Cannot roll back Deployment prodready/{name}: Deployment "
     "prodready/{name} has no revision 7 in its history (revisions kept: 1, 2, 3; "
     "revisionHistoryLimit 10)"),
    ({"release_id": "r-2026-01"}, "Cannot roll back Deployment prodready/{name}: no "
     "ReplicaSet of Deployment prodready/{name} carries release id r-2026-01; known: "
     "r1 (revision 1), r2 (revision 2), r3 (revision 3)"),
])
def test_target_outside_the_history_fails_and_changes_nothing(
        lab_env: dict[str, str], workload: Factory, args: dict, message: str) -> None:
    name = workload("r1", "r2", "r3")
    before = running(lab_env, "deploy", name)
    rc, result = rollback(lab_env, name=name, **args)
    assert rc != 0
    assert result["failed"] is True
    assert result["msg"] == message.format(name=name)
    assert result["changed"] is False
    assert not any(r.startswith("PATCH") for r in result["requests"])
    after = running(lab_env, "deploy", name)
    assert (after["template"], after["generation"]) == (before["template"], before["generation"])


def test_no_previous_revision_fails(lab_env: dict[str, str], workload: Factory) -> None:
    name = workload("r1")
    rc, result = rollback(lab_env, name=name)
    assert rc != 0
    assert result["msg"] == (f"Cannot roll back Deployment prodready/{name}: Deployment "
                             f"prodready/{name} has no previous revision to roll back to "
                             f"(revisions kept: 1; revisionHistoryLimit 10)")


def test_missing_deployment_gives_a_clear_error(lab_env: dict[str, str]) -> None:
    rc, result = rollback(lab_env, name="rb-does-not-exist", release_id="r1")
    assert rc != 0
    assert result["msg"] == (
        "Cannot roll back Deployment prodready/rb-does-not-exist: it does not exist in "
        "namespace prodready (GET apps/v1 Deployment prodready/rb-does-not-exist: 404 Not "
        "Found: deployments.apps \"rb-does-not-exist\" not found)")
    assert result["requests"] == ["GET apps/v1 Deployment prodready/rb-does-not-exist"]


def test_rollback_onto_a_crashing_release_fails_fast(lab_env: dict[str, str],
                                                     workload: Factory) -> None:
    name = workload("r1", ("r2", "crashloop"), "r3")
    started = time.monotonic()
    rc, result = rollback(lab_env, name=name, release_id="r2")
    took = time.monotonic() - started
    assert rc != 0
    assert result["changed"] is True
    assert result["status"] == "failed"
    assert result["msg"].startswith(f"Rollback of Deployment prodready/{name} to r2 "
                                    f"(revision 2) failed: ")
    assert "CrashLoopBackOff" in result["msg"]
    assert "CrashLoopBackOff" in result["reason"]
    assert result["diagnosis"]
    assert result["elapsed"] < 30, result["elapsed"]
    assert took < 60, took
    # The rollback was written (the Deployment now runs r2), it just is not healthy.
    assert running(lab_env, "deploy", name)["release_id"] == "r2"
    print(f"\nrollback onto a crash-looping release failed after {result['elapsed']} s")


def test_rollback_from_a_crashing_release_to_the_previous_one(lab_env: dict[str, str],
                                                              workload: Factory) -> None:
    """The usual emergency: r3 crash-loops mid-rollout; the default target is r2."""
    name = workload("r1", "r2", ("r3", "crashloop"))
    rc, result = rollback(lab_env, name=name)
    assert rc == 0, result
    assert (result["changed"], result["status"]) == (True, "complete")
    assert result["previous"]["release_id"] == "r3"
    assert result["target"]["release_id"] == "r2"
    assert (result["from_revision"], result["to_revision"]) == (3, 4)
    now = running(lab_env, "deploy", name)
    assert (now["release_id"], now["revision"]) == ("r2", "4")
    assert now["status"]["availableReplicas"] == now["status"]["replicas"] == 2
    # The pods of r2 that were ready when the wait ended, where a check can go at once.
    assert len(result["ready_pods"]) == 2, result["ready_pods"]
    assert all(pod["name"].startswith(name) and pod["ip"] for pod in result["ready_pods"])
    print(f"\nrollback from a crash-looping release: {result['elapsed']} s")


def test_statefulset_rollback_to_release_id(lab_env: dict[str, str],
                                            workload: Factory) -> None:
    name = workload("r1", "r2", "r3", kind="StatefulSet")
    rc, check = rollback(lab_env, "--check", name=name, kind="StatefulSet", release_id="r1")
    assert rc == 0, check
    assert (check["changed"], check["target"]["revision"]) == (True, 1)
    assert running(lab_env, "sts", name)["release_id"] == "r3"

    rc, applied = rollback(lab_env, name=name, kind="StatefulSet", release_id="r1")
    assert rc == 0, applied
    assert (applied["changed"], applied["status"]) == (True, "complete")
    assert (applied["from_revision"], applied["to_revision"]) == (3, 4)
    now = running(lab_env, "sts", name)
    assert (now["release_id"], now["image"], now["change_cause"]) == (
        "r1", IMAGE + "r1", "rollback to r1")
    assert now["status"]["updateRevision"] == now["status"]["currentRevision"]
    print(f"\nStatefulSet rollback to release id r1: {applied['elapsed']} s")

    rc, again = rollback(lab_env, name=name, kind="StatefulSet", release_id="r1")
    assert rc == 0, again
    assert again["changed"] is False
    assert running(lab_env, "sts", name)["generation"] == now["generation"]
