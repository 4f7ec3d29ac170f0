# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""prodready.deploy.k8s_rollout_status through ansible-playbook against the lab's cluster,
as the least-privilege deployer: good rollouts, every kwok fault, and the reference app on
the real node crashing, never getting ready and failing to pull its image.

Each test creates its own Deployments (rs-it-<case>-<random>) and deletes them afterwards.
The module watches a Deployment right after it was applied, so `elapsed` is the time the
module needed to tell.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kube import NS, apply_real_app_config, kubectl, real_deployment

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KWOK_IMAGE = "127.0.0.1:5000/refapp:1.0.0"
DEPLOYER = "system:serviceaccount:prodready:prodready-deployer"


def kwok_deployment(name: str, replicas: int = 2, fault: str | None = None, release: str = "1",
                    **spec: Any) -> dict[str, Any]:
    labels = {"app": name, **({"kwok.prodready.lab/fault": fault} if fault else {})}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "nodeSelector": {"type": "kwok"},
                         "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists",
                                          "effect": "NoSchedule"}],
                         "containers": [{"name": "app", "image": KWOK_IMAGE,
                                         "env": [{"name": "RELEASE", "value": release}]}],
                     }}, **spec}}


@pytest.fixture
def deploy(lab_env: dict[str, str]) -> Iterator[Callable[..., str]]:
    """Apply a Deployment (kwok by default, `real=True` for the reference app with its
    Secret and CA); everything is deleted afterwards."""
    created: list[tuple[str, str]] = []

    def make(case: str, manifest: Callable[[str], dict[str, Any]], real: bool = False) -> str:
        name = f"rs-it-{case}-{secrets.token_hex(3)}"
        if real:
            created.extend(apply_real_app_config(lab_env, name))
        created.append(("deployment", name))
        kubectl(lab_env, "apply", "-f", "-", stdin=json.dumps(manifest(name)))
        return name

    yield make
    for kind, name in reversed(created):
        kubectl(lab_env, "delete", kind, name, "--wait=false", "--ignore-not-found", check=False)


@pytest.fixture(scope="module")
def refapp_image(refapp: dict[str, str]) -> str:
    return refapp["image"]


def rollout_status(lab_env: dict[str, str], tmp_path: Path, check: bool = False,
                   env: dict[str, str] | None = None, **args: Any
                   ) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run the module in a playbook; its registered result (also when it failed) is saved by
    an `always` task, as a rescue block in a real playbook would read it."""
    out = tmp_path / f"result-{secrets.token_hex(3)}.json"
    play = [{"name": "Watch a rollout", "hosts": "localhost", "gather_facts": False, "tasks": [{
        "name": "Watch and record", "block": [{
            "name": "Watch the rollout", "prodready.deploy.k8s_rollout_status": args,
            "register": "rollout"}],
        "always": [{"name": "Save the result", "check_mode": False,
                    "ansible.builtin.copy": {"content": "{{ rollout | to_json }}",
                                             "dest": str(out), "mode": "0600"}}]}]}]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    full_env = {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
                "K8S_AUTH_KUBECONFIG": lab_env["LAB_KUBECONFIG_DEPLOYER"], **(env or {})}
    full_env = {key: value for key, value in full_env.items() if value is not None}
    proc = subprocess.run([str(BIN / "ansible-playbook"), str(playbook),
                           *(["--check"] if check else [])], cwd=REPO, env=full_env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text()), proc


def assert_failed(result: dict[str, Any], proc: subprocess.CompletedProcess[str], name: str,
                  reason: str) -> dict[str, Any]:
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert result["failed"] is True and result["changed"] is False
    assert result["status"] == "failed"
    failure = result["failure"]
    assert failure["reason"] == reason, result["msg"]
    assert result["msg"].startswith(f"Rollout of Deployment {NS}/{name} failed: pod {name}-")
    assert failure["pod"].startswith(f"{name}-")
    return failure


# Good rollouts ---------------------------------------------------------------------------


def test_good_rollout_then_update_then_check_mode(lab_env: dict[str, str], tmp_path: Path,
                                                  deploy: Callable[..., str]) -> None:
    name = deploy("good", lambda n: kwok_deployment(n, replicas=3))
    first, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (first["status"], first["changed"], first["failure"]) == ("complete", False, None)
    assert (first["revision"], first["previous_revision"]) == (1, None)
    assert first["replicas"] == {"desired": 3, "updated": 3, "ready": 3, "available": 3}
    assert first["images"] == [KWOK_IMAGE]
    assert first["image_digests"] == []  # kwok pulls nothing and the tag is not pinned
    assert first["elapsed"] < 15
    assert first["timeline"][-1]["event"] == "rollout complete"

    kubectl(lab_env, "apply", "-f", "-",
            stdin=json.dumps(kwok_deployment(name, replicas=3, release="2")))
    second, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (second["status"], second["revision"], second["previous_revision"]) == (
        "complete", 2, 1)
    assert second["new_replicaset"] != first["new_replicaset"]
    assert second["new_replicaset"].startswith(f"{name}-")
    live = json.loads(kubectl(lab_env, "get", "deploy", name, "-o", "json").stdout)
    assert live["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"

    checked, proc = rollout_status(lab_env, tmp_path, check=True, name=name, namespace=NS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {k: checked[k] for k in ("status", "changed", "revision", "previous_revision",
                                    "new_replicaset", "replicas", "images")} == \
        {k: second[k] for k in ("status", "changed", "revision", "previous_revision",
                                "new_replicaset", "replicas", "images")}


def test_good_rollout_on_the_real_node_reports_the_digest(
        lab_env: dict[str, str], tmp_path: Path, deploy: Callable[..., str],
        refapp_image: str) -> None:
    name = deploy("real-ok", lambda n: real_deployment(n, refapp_image), real=True)
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (result["status"], result["revision"]) == ("complete", 1)
    assert result["image_digests"] == [refapp_image]
    assert result["replicas"] == {"desired": 1, "updated": 1, "ready": 1, "available": 1}
    assert result["elapsed"] < 60


def test_zero_replicas_complete_at_once(lab_env: dict[str, str], tmp_path: Path,
                                        deploy: Callable[..., str]) -> None:
    name = deploy("zero", lambda n: kwok_deployment(n, replicas=0))
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["status"] == "complete"
    assert result["replicas"]["desired"] == 0
    assert result["elapsed"] < 5


# Failures on kwok nodes ------------------------------------------------------------------


@pytest.mark.parametrize(("fault", "args", "reason", "exit_code"), [
    ("crashloop", {}, "CrashLoopBackOff", 1),
    ("oomkilled", {}, "OOMKilled", 137),
    ("unpullable", {}, "ImagePullBackOff", None),
    ("config-error", {}, "CreateContainerConfigError", None),
    ("never-ready", {"ready_timeout": 3}, "ReadinessTimeout", None),
])
def test_kwok_fault_fails_fast(lab_env: dict[str, str], tmp_path: Path,
                               deploy: Callable[..., str], fault: str, args: dict[str, Any],
                               reason: str, exit_code: int | None) -> None:
    name = deploy(fault, lambda n: kwok_deployment(n, fault=fault))
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS, **args)
    failure = assert_failed(result, proc, name, reason)
    assert failure["container"] == "app"
    assert failure["exit_code"] == exit_code
    assert result["elapsed"] < 15
    assert result["timeline"][-1]["event"] == f"rollout failed: {reason}"
    # kwok pods have no logs: reported, never fatal
    if reason in ("CrashLoopBackOff", "OOMKilled", "ReadinessTimeout"):
        assert failure["logs"] == []
        assert failure["logs_error"].startswith("logs unavailable: the Kubernetes API answered")
    else:
        assert failure["logs_error"] == "logs unavailable: the container has not started"
    assert any(" Normal Scheduled: Successfully assigned" in e for e in failure["events"])


def test_check_mode_fails_the_same_way(lab_env: dict[str, str], tmp_path: Path,
                                       deploy: Callable[..., str]) -> None:
    name = deploy("check", lambda n: kwok_deployment(n, fault="crashloop"))
    normal, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS)
    assert_failed(normal, proc, name, "CrashLoopBackOff")
    checked, proc = rollout_status(lab_env, tmp_path, check=True, name=name, namespace=NS)
    assert_failed(checked, proc, name, "CrashLoopBackOff")
    assert checked["msg"] == normal["msg"]
    assert checked["failure"]["pod"] == normal["failure"]["pod"]


def test_progress_deadline(lab_env: dict[str, str], tmp_path: Path,
                           deploy: Callable[..., str]) -> None:
    name = deploy("deadline", lambda n: kwok_deployment(n, replicas=1, fault="never-ready",
                                                        progressDeadlineSeconds=3))
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS)
    failure = assert_failed(result, proc, name, "ProgressDeadlineExceeded")
    assert failure["message"].endswith("has timed out progressing.")
    assert result["elapsed"] < 20


def test_unschedulable_and_own_timeout(lab_env: dict[str, str], tmp_path: Path,
                                       deploy: Callable[..., str]) -> None:
    def nowhere(name: str) -> dict[str, Any]:
        manifest = kwok_deployment(name, replicas=1)
        manifest["spec"]["template"]["spec"]["nodeSelector"] = {"type": "nowhere"}
        return manifest

    name = deploy("nowhere", nowhere)
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS,
                                  schedule_timeout=2)
    failure = assert_failed(result, proc, name, "Unschedulable")
    assert "didn't match Pod's node affinity/selector" in failure["message"]
    assert result["elapsed"] < 10  # counted from the pod's condition, set before the watch

    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS, timeout=2)
    failure = assert_failed(result, proc, name, "Timeout")
    assert failure["message"] == "not complete after 2 s: 0 of 1 updated replicas available"
    assert 2 <= result["elapsed"] < 4


def test_failed_create(lab_env: dict[str, str], tmp_path: Path,
                       deploy: Callable[..., str]) -> None:
    def no_account(name: str) -> dict[str, Any]:
        manifest = kwok_deployment(name, replicas=1)
        manifest["spec"]["template"]["spec"]["serviceAccountName"] = "rs-it-missing"
        return manifest

    name = deploy("no-sa", no_account)
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS,
                                  schedule_timeout=1)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert result["failure"]["reason"] == "FailedCreate"
    assert 'serviceaccount "rs-it-missing" not found' in result["msg"]
    assert result["elapsed"] < 15


def test_paused(lab_env: dict[str, str], tmp_path: Path, deploy: Callable[..., str]) -> None:
    name = deploy("paused", lambda n: kwok_deployment(n, replicas=1, paused=True))
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert result["failure"]["reason"] == "Paused"
    assert result["msg"] == (f"Rollout of Deployment {NS}/{name} failed: Paused: Deployment"
                             f" {NS}/{name} is paused (spec.paused is true), so its rollout"
                             " cannot complete")


# Failures of the reference app on the real node ----------------------------------------


def test_real_crash_at_start_carries_the_log(lab_env: dict[str, str], tmp_path: Path,
                                             deploy: Callable[..., str],
                                             refapp_image: str) -> None:
    name = deploy("crash", lambda n: real_deployment(n, refapp_image,
                                                     {"FAULT_EXIT_AT_START": "1"}), real=True)
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    failure = result["failure"]
    assert failure["reason"] in ("CrashLoopBackOff", "CrashThresholdReached"), result["msg"]
    assert failure["exit_code"] in (1, 3)  # gunicorn: 3, or 1 when workers race (README)
    assert failure["logs_error"] is None
    assert any("FAULT_EXIT_AT_START is set: refusing to start" in line
               for line in failure["logs"]), failure["logs"]
    assert result["msg"].endswith(
        ": refapp.app.StartupAbort: FAULT_EXIT_AT_START is set: refusing to start (injected"
        " fault)")
    assert result["elapsed"] < 45


def test_real_never_ready(lab_env: dict[str, str], tmp_path: Path, deploy: Callable[..., str],
                          refapp_image: str) -> None:
    name = deploy("unready", lambda n: real_deployment(n, refapp_image,
                                                       {"FAULT_NEVER_HEALTHY": "1"}), real=True)
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS, ready_timeout=5,
                                  timeout=120)
    failure = assert_failed(result, proc, name, "ReadinessTimeout")
    assert failure["hints"] == ["readiness probe: HTTP GET /health on port 8000 every 1 s,"
                                " after 0 s, 3 failures allowed"]
    assert any("Readiness probe failed: HTTP probe failed with statuscode: 503" in event
               for event in failure["events"])
    assert failure["logs"], failure["logs_error"]
    # The container may start before the module does (ansible-playbook starts in between):
    # the wait is counted from the container's start.
    running = re.match(r"container app has been running for (\d+) s without becoming ready"
                       r" \(ready_timeout 5 s\)$", failure["message"])
    assert running and 5 <= int(running[1]) < 10, failure["message"]
    assert result["elapsed"] < 40


def test_real_unknown_digest_fails_to_pull(lab_env: dict[str, str], tmp_path: Path,
                                           deploy: Callable[..., str],
                                           refapp_image: str) -> None:
    missing = refapp_image.split("@")[0] + "@sha256:" + "0" * 64
    name = deploy("pull", lambda n: real_deployment(n, missing), real=True)
    result, proc = rollout_status(lab_env, tmp_path, name=name, namespace=NS, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    failure = result["failure"]
    assert failure["reason"] in ("ErrImagePull", "ImagePullBackOff"), result["msg"]
    assert failure["image"] == missing
    assert failure["logs_error"] == "logs unavailable: the container has not started"
    assert any(f'Failed to pull image "{missing}"' in event for event in failure["events"])
    assert result["elapsed"] < 30


# What cannot be watched ---------------------------------------------------------------


def test_missing_deployment(lab_env: dict[str, str], tmp_path: Path) -> None:
    result, proc = rollout_status(lab_env, tmp_path, name="rs-it-does-not-exist", namespace=NS)
    assert proc.returncode == 2
    assert result["msg"] == f"Deployment {NS}/rs-it-does-not-exist not found"
    assert "status" not in result


def test_namespace_the_deployer_cannot_read(lab_env: dict[str, str], tmp_path: Path) -> None:
    for check in (False, True):
        result, proc = rollout_status(lab_env, tmp_path, check=check, name="coredns",
                                      namespace="kube-system")
        assert proc.returncode == 2
        assert result["msg"] == (
            "Cannot read Deployment kube-system/coredns: namespace missing or access denied:"
            ' deployments.apps "coredns" is forbidden: User'
            f' "{DEPLOYER}" cannot get resource "deployments" in API group "apps" in the'
            ' namespace "kube-system"')


def test_unreachable_api(lab_env: dict[str, str], tmp_path: Path) -> None:
    result, proc = rollout_status(lab_env, tmp_path, env={"K8S_AUTH_KUBECONFIG": None},
                                  name="web", namespace=NS, host="https://127.0.0.1:1",
                                  api_key="not-a-token")
    assert proc.returncode == 2
    assert result["msg"] == ("Cannot watch Deployment prodready/web: cannot reach the Kubernetes"
                             " API at https://127.0.0.1:1: [Errno 111] Connection refused")
    assert "not-a-token" not in proc.stdout + proc.stderr


def test_invalid_option(lab_env: dict[str, str], tmp_path: Path) -> None:
    result, proc = rollout_status(lab_env, tmp_path, name="web", namespace=NS, poll_interval=0)
    assert proc.returncode == 2
    assert result["msg"] == "Invalid option: poll_interval must be more than 0 seconds, got 0.0"
