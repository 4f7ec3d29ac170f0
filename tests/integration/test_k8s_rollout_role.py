# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The k8s_rollout role against the lab's cluster, as the least-privilege deployer."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kube import NS, kubectl

REPO = Path(__file__).resolve().parents[2]
CANARY = "canary-secret-5d1e9a77"
CONTENT_LABEL = "prodready.io/content-of"


def play(lab_env: dict[str, str], tmp_path: Path, role_vars: dict, *flags: str
         ) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "rollout.yml"
    playbook.write_text(json.dumps([{
        "name": "Roll out", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Roll out the app", "ansible.builtin.include_role": {
            "name": "prodready.deploy.k8s_rollout"}, "vars": role_vars}],
    }]))
    env = {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def real_app_vars(lab_env: dict[str, str], image: str, name: str, release: str,
                  **extra: object) -> dict:
    return {
        "k8s_rollout_namespace": NS, "k8s_rollout_app": name, "k8s_rollout_image": image,
        "k8s_rollout_release_id": release, "k8s_rollout_version": "1.0.0",
        "k8s_rollout_replicas": 2, "k8s_rollout_node_selector": {"type": "real"},
        "k8s_rollout_env": {"REDIS_HOST": lab_env["LAB_POD_GATEWAY"],
                            "REDIS_PORT": lab_env["REDIS_PORT"]},
        "k8s_rollout_secret_env": {
            "DATABASE_URL": lab_env["LAB_POD_DATABASE_URL"]
            + "?sslmode=verify-full&sslrootcert=/etc/app/ca.crt",
            "REDIS_PASSWORD": lab_env["REDIS_PASSWORD"], "SECRET_KEY": CANARY},
        "k8s_rollout_config_files": {"ca.crt": Path(lab_env["LAB_CA_CERT"]).read_text()},
        "k8s_rollout_resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                  "limits": {"cpu": "1", "memory": "512Mi"}},
        **extra,
    }


def content_of(lab_env: dict[str, str], app: str) -> list[str]:
    """The content-hashed Secrets and ConfigMaps of `app`, as kind/name, sorted."""
    out = kubectl(lab_env, "get", "secret,configmap", "-l", f"{CONTENT_LABEL}={app}",
                  "-o", "name").stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def template_refs(lab_env: dict[str, str], app: str) -> tuple[str, str]:
    """The Secret and the files ConfigMap the Deployment's pod template names."""
    dep = json.loads(kubectl(lab_env, "get", "deploy", app, "-o", "json").stdout)
    spec = dep["spec"]["template"]["spec"]
    secret = spec["containers"][0]["envFrom"][0]["secretRef"]["name"]
    files = next(v["configMap"]["name"] for v in spec["volumes"] if v["name"] == "files")
    return secret, files


def recap(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    line = next(x for x in proc.stdout.splitlines() if x.startswith("localhost "))
    return {k: int(v) for k, v in (w.split("=") for w in line.split()[2:])}


@pytest.fixture
def app_name(lab_env: dict[str, str], request: pytest.FixtureRequest):
    name = "rr-" + request.node.name.split("[")[0].removeprefix("test_")[:40].replace("_", "-")
    yield name
    for kind, obj in (("deploy", name), ("service", name), ("pdb", name),
                      ("configmap", f"{name}-config"), ("secret", f"{name}-secret")):
        kubectl(lab_env, "delete", kind, obj, "--wait=false", check=False)
    kubectl(lab_env, "delete", "secret,configmap", "-l", f"{CONTENT_LABEL}={name}",
            "--wait=false", check=False)


def test_rollout_applies_then_changes_nothing(lab_env: dict[str, str], refapp: dict[str, str],
                                              app_name: str, tmp_path: Path) -> None:
    role_vars = real_app_vars(lab_env, refapp["image"], app_name, "r1")
    check = play(lab_env, tmp_path, role_vars, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert kubectl(lab_env, "get", "deploy", app_name, check=False).returncode != 0
    first = play(lab_env, tmp_path, role_vars, "-vvv")
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first)["changed"] >= 2
    assert CANARY not in first.stdout + first.stderr
    dep = json.loads(kubectl(lab_env, "get", "deploy", app_name, "-o", "json").stdout)
    assert dep["status"]["availableReplicas"] == 2
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"] == "r1"
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == refapp["image"]
    second = play(lab_env, tmp_path, role_vars)
    assert second.returncode == 0, second.stdout
    assert recap(second)["changed"] == 0


def test_crashing_release_fails_fast_with_diagnosis(lab_env: dict[str, str],
                                                    refapp: dict[str, str], app_name: str,
                                                    tmp_path: Path) -> None:
    good = real_app_vars(lab_env, refapp["image"], app_name, "r1", k8s_rollout_replicas=1)
    assert play(lab_env, tmp_path, good).returncode == 0
    bad = real_app_vars(lab_env, refapp["image"], app_name, "r2", k8s_rollout_replicas=1)
    bad["k8s_rollout_env"] = {**bad["k8s_rollout_env"], "FAULT_EXIT_AT_START": "1"}
    proc = play(lab_env, tmp_path, bad)
    assert proc.returncode != 0
    assert "Rollout of Deployment prodready/" in proc.stdout
    assert any(reason in proc.stdout for reason in ("CrashLoopBackOff", "crash"))
    assert CANARY not in proc.stdout + proc.stderr


@pytest.mark.parametrize(("change", "message"), [
    ({"k8s_rollout_image": "127.0.0.1:5000/refapp:1.0.0"},
     "k8s_rollout_image is '127.0.0.1:5000/refapp:1.0.0', which is not pinned by digest"),
    ({"k8s_rollout_resources": {"limits": {"memory": "1 GB"}}},
     "k8s_rollout_resources.limits.memory is '1 GB', which is not a Kubernetes quantity"),
    ({"k8s_rollout_release_id": "release one"}, "k8s_rollout_release_id is 'release one'"),
])
def test_bad_input_fails_before_anything_is_applied(lab_env: dict[str, str],
                                                    refapp: dict[str, str], app_name: str,
                                                    tmp_path: Path, change: dict,
                                                    message: str) -> None:
    role_vars = {**real_app_vars(lab_env, refapp["image"], app_name, "r1"), **change}
    proc = play(lab_env, tmp_path, role_vars)
    assert proc.returncode != 0
    assert message in proc.stdout
    assert kubectl(lab_env, "get", "deploy", app_name, check=False).returncode != 0
    assert content_of(lab_env, app_name) == []


def test_namespace_without_rights_gives_a_clear_error(lab_env: dict[str, str],
                                                      refapp: dict[str, str], app_name: str,
                                                      tmp_path: Path) -> None:
    role_vars = real_app_vars(lab_env, refapp["image"], app_name, "r1",
                              k8s_rollout_namespace="kube-system")
    proc = play(lab_env, tmp_path, role_vars)
    assert proc.returncode != 0
    assert "forbidden" in proc.stdout.lower()
    assert CANARY not in proc.stdout + proc.stderr


def test_optional_autoscaler_and_ingress(lab_env: dict[str, str], refapp: dict[str, str],
                                         app_name: str, tmp_path: Path) -> None:
    role_vars = {
        "k8s_rollout_namespace": NS, "k8s_rollout_app": app_name,
        "k8s_rollout_image": refapp["image"], "k8s_rollout_release_id": "r1",
        "k8s_rollout_node_selector": {"type": "kwok"},
        "k8s_rollout_tolerations": [{"key": "kwok.x-k8s.io/node", "operator": "Exists",
                                     "effect": "NoSchedule"}],
        "k8s_rollout_hpa_enabled": True, "k8s_rollout_hpa_min_replicas": 3,
        "k8s_rollout_hpa_max_replicas": 6, "k8s_rollout_ingress_enabled": True,
        "k8s_rollout_ingress_host": "app.lab.invalid",
        "k8s_rollout_ingress_tls_secret": f"{app_name}-tls",
    }
    try:
        first = play(lab_env, tmp_path, role_vars)
        assert first.returncode == 0, first.stdout + first.stderr
        hpa = json.loads(kubectl(lab_env, "get", "hpa", app_name, "-o", "json").stdout)
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 6)
        assert hpa["spec"]["scaleTargetRef"]["name"] == app_name
        ingress = json.loads(kubectl(lab_env, "get", "ingress", app_name, "-o", "json").stdout)
        assert ingress["spec"]["rules"][0]["host"] == "app.lab.invalid"
        assert ingress["spec"]["tls"][0]["secretName"] == f"{app_name}-tls"
        # The autoscaler owns the replica count: the role must not fight it on the next run.
        kubectl(lab_env, "scale", "deploy", app_name, "--replicas=4")
        second = play(lab_env, tmp_path, role_vars)
        assert second.returncode == 0, second.stdout
        dep = json.loads(kubectl(lab_env, "get", "deploy", app_name, "-o", "json").stdout)
        assert dep["spec"]["replicas"] == 4
    finally:
        for kind in ("hpa", "ingress"):
            kubectl(lab_env, "delete", kind, app_name, "--ignore-not-found", check=False)


def test_a_rollback_brings_back_the_secret_and_files_of_the_release_it_returns_to(
        lab_env: dict[str, str], refapp: dict[str, str], app_name: str, tmp_path: Path) -> None:
    """Each content gets its own immutable object; the template of r1 keeps naming r1's, so
    `kubectl rollout undo` brings back r1's secret and files with r1's template."""
    r1 = real_app_vars(lab_env, refapp["image"], app_name, "r1", k8s_rollout_replicas=1)
    # A one-character value: Ansible masks it wherever it occurs in the module's result, so
    # the role must not take the names from there.
    r1["k8s_rollout_secret_env"] = {**r1["k8s_rollout_secret_env"], "FEATURE_LEVEL": "0"}
    proc = play(lab_env, tmp_path, r1)
    assert proc.returncode == 0, proc.stdout
    secret1, files1 = template_refs(lab_env, app_name)
    assert "*" not in secret1
    r2 = real_app_vars(lab_env, refapp["image"], app_name, "r2", k8s_rollout_replicas=1)
    r2["k8s_rollout_secret_env"] = {**r2["k8s_rollout_secret_env"], "SECRET_KEY": CANARY + "-2"}
    r2["k8s_rollout_config_files"] = {**r2["k8s_rollout_config_files"], "extra.txt": "two"}
    proc = play(lab_env, tmp_path, r2)
    assert proc.returncode == 0, proc.stdout
    secret2, files2 = template_refs(lab_env, app_name)
    assert secret2 != secret1 and files2 != files1
    assert content_of(lab_env, app_name) == sorted(
        [f"configmap/{files1}", f"configmap/{files2}", f"secret/{secret1}",
         f"secret/{secret2}"])
    immutable = json.loads(kubectl(lab_env, "get", "secret", secret2, "-o", "json").stdout)
    assert immutable["immutable"] is True
    kubectl(lab_env, "rollout", "undo", f"deployment/{app_name}")
    assert template_refs(lab_env, app_name) == (secret1, files1)
    data = json.loads(kubectl(lab_env, "get", "secret", secret1, "-o", "json").stdout)["data"]
    assert base64.b64decode(data["SECRET_KEY"]).decode() == CANARY
    assert base64.b64decode(data["FEATURE_LEVEL"]).decode() == "0"


def test_content_no_retained_revision_uses_is_pruned_at_the_next_release(
        lab_env: dict[str, str], refapp: dict[str, str], app_name: str, tmp_path: Path) -> None:
    """With no old ReplicaSet kept, r1's Secret goes when r3 is applied (r2's stays: the
    Deployment still runs it until r3's template is applied). Of the fixed names an older
    version of the role used, the one with the app's labels goes too; a Secret without them
    is someone else's and stays."""
    kubectl(lab_env, "create", "secret", "generic", f"{app_name}-secret",
            "--from-literal=LEGACY=1")
    # What an earlier version of the role left under a fixed name, with the app's labels.
    kubectl(lab_env, "create", "configmap", f"{app_name}-files", "--from-literal=a=1")
    kubectl(lab_env, "label", "configmap", f"{app_name}-files",
            f"app.kubernetes.io/name={app_name}", f"app.kubernetes.io/instance={app_name}",
            "app.kubernetes.io/managed-by=prodready.deploy")
    keep = {"k8s_rollout_replicas": 1, "k8s_rollout_revision_history_limit": 0}
    secrets = []
    for i in (1, 2, 3):
        role_vars = real_app_vars(lab_env, refapp["image"], app_name, f"r{i}", **keep)
        role_vars["k8s_rollout_secret_env"] = {**role_vars["k8s_rollout_secret_env"],
                                               "SECRET_KEY": f"{CANARY}-{i}"}
        proc = play(lab_env, tmp_path, role_vars)
        assert proc.returncode == 0, proc.stdout
        assert CANARY not in proc.stdout + proc.stderr
        secrets.append(template_refs(lab_env, app_name)[0])
    names = content_of(lab_env, app_name)
    assert f"secret/{secrets[0]}" not in names
    assert {f"secret/{secrets[1]}", f"secret/{secrets[2]}"} <= set(names)
    assert kubectl(lab_env, "get", "secret", f"{app_name}-secret", check=False).returncode == 0
    assert kubectl(lab_env, "get", "configmap", f"{app_name}-files",
                   check=False).returncode != 0
