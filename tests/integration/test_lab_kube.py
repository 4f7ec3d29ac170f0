# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's Kubernetes: a real API server and controllers, kwok nodes, a least-privilege
deployer identity."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from kube import NS, apply_real_app_config, kubectl, real_deployment


def test_binaries_report_the_pinned_version(lab_env: dict[str, str]) -> None:
    for binary in ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet"):
        out = subprocess.run([str(Path(lab_env["LAB_K8S_BIN"]) / binary), "--version"],
                             capture_output=True, text=True, check=True).stdout
        assert out.strip() == "Kubernetes v1.34.4", binary


def test_kwok_nodes_are_ready_and_tainted(lab_env: dict[str, str]) -> None:
    nodes = json.loads(kubectl(lab_env, "get", "nodes", "-l", "type=kwok", "-o", "json",
                               admin=True).stdout)["items"]
    assert len(nodes) == 4
    for node in nodes:
        ready = {c["type"]: c["status"] for c in node["status"]["conditions"]}["Ready"]
        assert ready == "True", node["metadata"]["name"]
        assert node["spec"]["taints"][0]["key"] == "kwok.x-k8s.io/node"


@pytest.mark.parametrize(("verb", "resource", "allowed"), [
    ("create", "deployments.apps", "yes"),
    ("patch", "deployments.apps", "yes"),
    ("list", "replicasets.apps", "yes"),
    ("get", "pods/log", "yes"),
    ("create", "leases.coordination.k8s.io", "yes"),
    ("update", "replicasets.apps", "no"),
    ("create", "roles.rbac.authorization.k8s.io", "no"),
    ("create", "pods/exec", "no"),
])
def test_deployer_rbac_in_its_namespace(lab_env: dict[str, str], verb: str, resource: str,
                                        allowed: str) -> None:
    proc = kubectl(lab_env, "auth", "can-i", verb, resource, check=False)
    assert proc.stdout.strip() == allowed


def test_deployer_cannot_leave_its_namespace(lab_env: dict[str, str]) -> None:
    for args in (["get", "pods", "-n", "kube-system"], ["get", "nodes"]):
        proc = kubectl(lab_env, *args, check=False)
        assert proc.returncode != 0
        assert "Forbidden" in proc.stderr


def _deployment(name: str, replicas: int, fault: str | None = None) -> str:
    labels = {"app": name, **({"kwok.prodready.lab/fault": fault} if fault else {})}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "nodeSelector": {"type": "kwok"},
                     "tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists",
                                      "effect": "NoSchedule"}],
                     "containers": [{"name": "app", "image": "127.0.0.1:5000/refapp:1.0.0"}],
                 }}},
    })


def test_hundred_replicas_roll_out_on_kwok(lab_env: dict[str, str]) -> None:
    name = "lab-probe-scale"
    kubectl(lab_env, "apply", "-f", "-", stdin=_deployment(name, 100))
    try:
        kubectl(lab_env, "rollout", "status", f"deploy/{name}",
                "--timeout=120s")
        dep = json.loads(kubectl(lab_env, "get", "deploy", name,
                                 "-o", "json").stdout)
        assert dep["status"]["availableReplicas"] == 100
    finally:
        kubectl(lab_env, "delete", "deploy", name, "--wait=false")


@pytest.mark.parametrize(("fault", "phase", "reason", "last_reason"), [
    ("crashloop", "Running", "CrashLoopBackOff", "Error"),
    ("oomkilled", "Running", "CrashLoopBackOff", "OOMKilled"),
    ("unpullable", "Pending", "ImagePullBackOff", None),
    ("config-error", "Pending", "CreateContainerConfigError", None),
    ("never-ready", "Running", None, None),
])
def test_kwok_fault_stages(lab_env: dict[str, str], fault: str, phase: str, reason: str | None,
                           last_reason: str | None) -> None:
    name = f"lab-probe-{fault}"
    kubectl(lab_env, "apply", "-f", "-", stdin=_deployment(name, 1, fault))
    try:
        deadline = time.monotonic() + 30
        pod = None
        while time.monotonic() < deadline:
            pods = json.loads(kubectl(lab_env, "get", "pods", "-l",
                                      f"app={name}", "-o", "json").stdout)["items"]
            if pods and pods[0].get("status", {}).get("containerStatuses"):
                pod = pods[0]
                break
            time.sleep(0.2)
        assert pod is not None, f"no pod status for {fault} within 30 s"
        status = pod["status"]["containerStatuses"][0]
        assert pod["status"]["phase"] == phase
        assert status["ready"] is False
        assert status["state"].get("waiting", {}).get("reason") == reason
        assert status.get("lastState", {}).get("terminated", {}).get("reason") == last_reason
    finally:
        kubectl(lab_env, "delete", "deploy", name, "--wait=false")


def test_real_node_is_ready_beside_kwok_nodes(lab_env: dict[str, str]) -> None:
    nodes = json.loads(kubectl(lab_env, "get", "nodes", "-o", "json", admin=True).stdout)["items"]
    ready = {n["metadata"]["name"]: {c["type"]: c["status"] for c in n["status"]["conditions"]}
             ["Ready"] for n in nodes}
    assert ready[lab_env["LAB_NODE"]] == "True"
    real = next(n for n in nodes if n["metadata"]["name"] == lab_env["LAB_NODE"])
    assert real["metadata"]["labels"]["type"] == "real"
    assert real["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
    assert not real["spec"].get("unschedulable")


@pytest.fixture
def real_app(lab_env: dict[str, str], refapp: dict[str, str]):
    """Secret and CA for an app Deployment on the real node; removed afterwards."""
    created: list[tuple[str, str]] = []

    def make(name: str, image: str | None = None) -> str:
        created.extend(apply_real_app_config(lab_env, name))
        kubectl(lab_env, "apply", "-f", "-",
                stdin=json.dumps(real_deployment(name, image or refapp["image"])))
        created.append(("deployment", name))
        return name

    yield make
    for kind, name in reversed(created):
        kubectl(lab_env, "delete", kind, name, "--wait=false", "--ignore-not-found", check=False)


def test_app_pods_run_on_the_real_node_and_answer(lab_env: dict[str, str], real_app) -> None:
    name = real_app("lab-real-app")
    kubectl(lab_env, "rollout", "status", f"deploy/{name}",
            "--timeout=120s")
    pod = json.loads(kubectl(lab_env, "get", "pods", "-l", f"app={name}",
                             "-o", "json").stdout)["items"][0]
    assert pod["spec"]["nodeName"] == lab_env["LAB_NODE"]
    # Through the API server, as a deployer would reach it: kubectl port-forward.
    forward = subprocess.Popen(
        [str(Path(lab_env["LAB_K8S_BIN"]) / "kubectl"), "--kubeconfig",
         lab_env["LAB_KUBECONFIG_DEPLOYER"], "port-forward",
         f"pod/{pod['metadata']['name']}", ":8000"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:PORT -> 8000"
        port = int(line.split("127.0.0.1:")[1].split()[0])
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        forward.terminate()
        forward.wait(timeout=10)
    logs = kubectl(lab_env, "logs", pod["metadata"]["name"]).stdout
    assert "GET /health" in logs


def test_unknown_digest_fails_to_pull_for_real(lab_env: dict[str, str], real_app) -> None:
    missing = "127.0.0.1:5000/refapp@sha256:" + "0" * 64
    name = real_app("lab-real-unpullable", missing)
    deadline = time.monotonic() + 60
    reason = None
    while time.monotonic() < deadline and reason not in ("ErrImagePull", "ImagePullBackOff"):
        pods = json.loads(kubectl(lab_env, "get", "pods", "-l",
                                  f"app={name}", "-o", "json").stdout)["items"]
        statuses = pods[0]["status"].get("containerStatuses", []) if pods else []
        reason = statuses[0]["state"].get("waiting", {}).get("reason") if statuses else None
        time.sleep(0.5)
    assert reason in ("ErrImagePull", "ImagePullBackOff")
