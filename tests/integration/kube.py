# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers the Kubernetes integration tests share: kubectl as the deployer (or the lab's
admin) and the reference app's Deployment on the real node."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

NS = "prodready"


def kubectl(lab_env: dict[str, str], *args: str, stdin: str | None = None, check: bool = True,
            admin: bool = False, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """kubectl in the namespace prodready, as the least-privilege deployer by default."""
    kubeconfig = lab_env["LAB_KUBECONFIG_ADMIN" if admin else "LAB_KUBECONFIG_DEPLOYER"]
    return subprocess.run([str(Path(lab_env["LAB_K8S_BIN"]) / "kubectl"), "--kubeconfig",
                           kubeconfig, "-n", NS, *args], input=stdin, capture_output=True,
                          text=True, check=check, timeout=timeout)


def real_deployment(name: str, image: str, env: dict[str, str] | None = None
                    ) -> dict[str, Any]:
    """The reference app on the real node, as tests/integration/test_lab_kube.py runs it."""
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": 1, "progressDeadlineSeconds": 120,
                     "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {
                         "nodeSelector": {"type": "real"},
                         "securityContext": {"runAsNonRoot": True},
                         "containers": [{
                             "name": "app", "image": image,
                             "env": [{"name": k, "value": v} for k, v in (env or {}).items()],
                             "envFrom": [{"secretRef": {"name": f"{name}-env"}}],
                             "ports": [{"containerPort": 8000}],
                             "readinessProbe": {"httpGet": {"path": "/health", "port": 8000},
                                                "periodSeconds": 1},
                             "securityContext": {"readOnlyRootFilesystem": True,
                                                 "allowPrivilegeEscalation": False},
                             "volumeMounts": [{"name": "ca", "mountPath": "/etc/prodready"},
                                              {"name": "tmp", "mountPath": "/tmp"}],
                         }],
                         "volumes": [{"name": "ca", "configMap": {"name": f"{name}-ca"}},
                                     {"name": "tmp", "emptyDir": {}}],
                     }}}}


def apply_real_app_config(lab_env: dict[str, str], name: str) -> list[tuple[str, str]]:
    """The ConfigMap (lab CA) and Secret (database, Redis) that real_deployment(name) reads;
    returns what was created, as (kind, name), for the caller's cleanup."""
    url = lab_env["LAB_POD_DATABASE_URL"] + "?sslmode=verify-full&sslrootcert=/etc/prodready/ca.crt"
    created = []
    for kind, suffix, args in (
        ("configmap", "ca", ["--from-file", f"ca.crt={lab_env['LAB_CA_CERT']}"]),
        ("secret generic", "env", [
            f"--from-literal=DATABASE_URL={url}",
            f"--from-literal=REDIS_HOST={lab_env['LAB_POD_GATEWAY']}",
            f"--from-literal=REDIS_PORT={lab_env['REDIS_PORT']}",
            f"--from-literal=REDIS_PASSWORD={lab_env['REDIS_PASSWORD']}"]),
    ):
        manifest = kubectl(lab_env, "create", *kind.split(), f"{name}-{suffix}", *args,
                           "--dry-run=client", "-o", "json").stdout
        kubectl(lab_env, "apply", "-f", "-", stdin=manifest)
        created.append((kind.split()[0], f"{name}-{suffix}"))
    return created
