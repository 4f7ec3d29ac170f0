# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The image role through ansible-playbook against the lab's engine and registry: check
mode, build + push, a second run without change, the immutable release tag, wrong
credentials, an unreachable registry, and the reference app's own Dockerfile."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from imageutil import (
    Registry,
    docker,
    git_commit,
    remove_local,
    small_context,
    unique_repository,
)

REPO = Path(__file__).resolve().parents[2]
CANARY = "canary-registry-pw-7e2b91c4"


PUSH_TASK = "Push the tags the registry lacks and read back the digest it serves"


def play(lab_env: dict[str, str], tmp_path: Path, role_vars: dict, *flags: str,
         callback: str = "ansible.builtin.json") -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "image.yml"
    playbook.write_text(json.dumps([{
        "name": "Build", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Build and push the image", "ansible.builtin.include_role": {
            "name": "prodready.deploy.image"}, "vars": role_vars}],
    }]))
    env = {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1", "ANSIBLE_STDOUT_CALLBACK": callback,
           # Where a login would land: the role must not write one.
           "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=1200, check=False)


def outcome(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    """changed count, failed message and image_result of a run with the json callback."""
    try:
        doc = json.loads(proc.stdout[proc.stdout.index("{\n"):])
    except ValueError:
        pytest.fail(f"no JSON from ansible-playbook:\n{proc.stdout}\n{proc.stderr}")
    tasks = doc["plays"][0]["tasks"]
    result: dict[str, Any] = {"changed": doc["stats"]["localhost"]["changed"],
                              "failures": doc["stats"]["localhost"]["failures"],
                              "msg": None, "image_result": None, "changed_tasks": []}
    for task in tasks:
        host = task["hosts"].get("localhost") or {}
        if host.get("failed"):
            result["msg"] = host.get("msg")
        if host.get("changed"):
            result["changed_tasks"].append(task["task"]["name"].split(" : ", 1)[-1])
        facts = host.get("ansible_facts") or {}
        if "image_result" in facts:
            result["image_result"] = facts["image_result"]
    return result


def base_vars(lab_env: dict[str, str], context: Path, repository: str, version: str,
              **extra: Any) -> dict[str, Any]:
    return {"image_context": str(context), "image_repository": repository,
            "image_version": version,
            "image_build_args": {"BASE_IMAGE": lab_env["LAB_BASE_IMAGE"]},
            "image_registry_username": lab_env["LAB_REGISTRY_USERNAME"],
            "image_registry_password": lab_env["LAB_REGISTRY_PASSWORD"],
            "image_registry_ca_cert": lab_env["LAB_CA_CERT"], **extra}


@pytest.fixture
def repository(lab_env: dict[str, str], request: pytest.FixtureRequest):
    name = request.node.name.removeprefix("test_")[:30].replace("_", "-")
    repo = unique_repository(lab_env, f"role-{name}")
    yield repo
    remove_local(lab_env, repo)


def local_id(lab_env: dict[str, str], ref: str) -> str | None:
    proc = docker(lab_env, "image", "inspect", "--format", "{{.Id}}", ref, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_builds_pushes_pins_by_digest_and_changes_nothing_the_second_time(
        lab_env: dict[str, str], tmp_path: Path, repository: str) -> None:
    context = small_context(tmp_path / "src", "release one\n")
    sha = git_commit(context, "release one", when="2026-11-27T10:00:00+00:00")
    role_vars = base_vars(lab_env, context, repository, "1.0.0")
    registry = Registry(lab_env)

    check = outcome(play(lab_env, tmp_path, role_vars, "--check"))
    assert check["failures"] == 0, check
    assert "Build the image" in check["changed_tasks"]
    assert local_id(lab_env, f"{repository}:1.0.0") is None
    assert registry.tags(repository) == []

    proc = play(lab_env, tmp_path, role_vars, "-vvvv", callback="ansible.builtin.default")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert lab_env["LAB_REGISTRY_PASSWORD"] not in proc.stdout + proc.stderr
    assert f"{repository}@sha256:" in proc.stdout
    recap = next(x for x in proc.stdout.splitlines() if x.startswith("localhost "))
    assert " changed=0 " not in recap

    second = outcome(play(lab_env, tmp_path, role_vars))
    assert second["failures"] == 0 and second["changed"] == 0, second
    result = second["image_result"]
    assert result["built"] is False and result["pushed"] == []
    status, served, manifest = registry.manifest(repository, "1.0.0")
    assert status == 200
    assert result["digest_ref"] == f"{repository}@{served}"
    assert result["digest"] == served
    assert result["tags"] == ["1.0.0", sha[:12]]
    assert registry.tags(repository) == sorted(["1.0.0", sha[:12]])
    assert registry.manifest(repository, sha[:12])[1] == served
    # The registry's image is the local build: its config digest is the engine's image ID.
    assert manifest["config"]["digest"] == result["image_id"] == local_id(
        lab_env, f"{repository}:1.0.0")
    labels = registry.config(repository, manifest["config"]["digest"])["config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == "1.0.0"
    assert labels["org.opencontainers.image.revision"] == sha
    assert labels["org.opencontainers.image.created"] == "2026-11-27T10:00:00Z"
    assert labels["org.opencontainers.image.source"] == repository  # no git remote
    assert labels["test.revision"] == sha  # the build arg reached the Dockerfile
    assert result["labels"] == labels
    # The credentials went to the engine with the push, never to a Docker configuration.
    assert not (tmp_path / "docker-config").exists()


def test_check_mode_then_apply_reports_a_build_and_a_push(
        lab_env: dict[str, str], tmp_path: Path, repository: str) -> None:
    context = small_context(tmp_path / "src", "fresh\n")
    role_vars = base_vars(lab_env, context, repository, "2.0.0",
                          image_revision="a" * 40, image_created="2026-01-02T03:04:05Z")
    applied = outcome(play(lab_env, tmp_path, role_vars))
    assert applied["failures"] == 0, applied
    assert {"Build the image", PUSH_TASK} <= set(
        applied["changed_tasks"])
    assert applied["image_result"]["pushed"] == ["2.0.0", "a" * 12]
    assert applied["image_result"]["created"] == "2026-01-02T03:04:05Z"

    again = outcome(play(lab_env, tmp_path, role_vars, "--check"))
    assert again["failures"] == 0, again
    # Check mode reads the registry: the release is there.
    assert again["image_result"]["digest_ref"] == applied["image_result"]["digest_ref"]


def test_a_release_tag_never_moves_to_other_content(
        lab_env: dict[str, str], tmp_path: Path, repository: str) -> None:
    context = small_context(tmp_path / "src", "release one\n")
    git_commit(context, "one")
    role_vars = base_vars(lab_env, context, repository, "1.0.0")
    first = outcome(play(lab_env, tmp_path, role_vars))
    assert first["failures"] == 0, first
    registry = Registry(lab_env)
    old_digest = registry.manifest(repository, "1.0.0")[1]
    old_image = first["image_result"]["image_id"]

    (context / "payload.txt").write_text("release one, changed after the release\n")
    sha = git_commit(context, "changed", when="2026-11-28T10:00:00+00:00")
    proc = play(lab_env, tmp_path, role_vars)
    failed = outcome(proc)
    assert proc.returncode != 0
    new_image = local_id(lab_env, f"{repository}:1.0.0")
    assert new_image and new_image != old_image
    assert failed["msg"].startswith(f"Refusing to push {repository}:1.0.0,{sha[:12]}: "
                                    f"release tags are immutable and {repository}:1.0.0 is "
                                    f"manifest {old_digest} (image {old_image}")
    assert f"but this build is image {new_image}; nothing was pushed" in failed["msg"]
    # Nothing was pushed: the release tag still has the old digest, the new sha tag is absent.
    assert registry.manifest(repository, "1.0.0")[1] == old_digest
    assert sha[:12] not in registry.tags(repository)
    assert PUSH_TASK not in failed["changed_tasks"]


def test_wrong_password_fails_before_the_build_and_never_shows_it(
        lab_env: dict[str, str], tmp_path: Path, repository: str) -> None:
    context = small_context(tmp_path / "src", "x\n")
    role_vars = base_vars(lab_env, context, repository, "1.0.0", image_revision="b" * 40,
                          image_created="2026-01-01T00:00:00Z",
                          image_registry_password=CANARY)
    proc = play(lab_env, tmp_path, role_vars, "-vvvv", callback="ansible.builtin.default")
    assert proc.returncode != 0
    text = " ".join(proc.stdout.split())
    assert (f"Failed to read {repository}:1.0.0,{'b' * 12} from the registry "
            f"(https://{lab_env['LAB_REGISTRY']} refused the credentials of user "
            f"{lab_env['LAB_REGISTRY_USERNAME']} (401 UNAUTHORIZED: authentication "
            f"required))") in text
    assert CANARY not in proc.stdout + proc.stderr
    assert local_id(lab_env, f"{repository}:1.0.0") is None
    assert not (tmp_path / "docker-config" / "config.json").exists()


def test_unreachable_registry_fails_before_the_build(
        lab_env: dict[str, str], tmp_path: Path, repository: str) -> None:
    context = small_context(tmp_path / "src", "x\n")
    role_vars = base_vars(lab_env, context, repository, "1.0.0", image_revision="c" * 40,
                          image_created="2026-01-01T00:00:00Z",
                          image_registry_url="https://127.0.0.1:9")
    failed = outcome(play(lab_env, tmp_path, role_vars))
    assert failed["failures"] == 1
    assert failed["msg"] == (f"Failed to read {repository}:1.0.0,{'c' * 12} from the registry "
                             f"(cannot reach https://127.0.0.1:9 (Connection refused))")
    assert local_id(lab_env, f"{repository}:1.0.0") is None


def test_missing_inputs_are_named(lab_env: dict[str, str], tmp_path: Path) -> None:
    failed = outcome(play(lab_env, tmp_path, {"image_context": str(tmp_path)}))
    assert failed["failures"] == 1
    assert "image_repository" in failed["msg"] or "image_version" in failed["msg"]


def refapp_wheelhouse(request: pytest.FixtureRequest) -> Path:
    """The wheelhouse `tests/lab/lab app` builds (keyed by requirements.txt); built through
    the lab when it is not there yet."""
    requirements = REPO / "tests/app/requirements.txt"
    key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("PRODREADY_CACHE", Path.home() / ".cache/prodready"))
    house = cache / "wheelhouse" / f"refapp-{key}"
    if not (house / ".complete").exists():
        request.getfixturevalue("refapp")
    assert (house / ".complete").exists(), house
    return house


def test_builds_the_reference_app_as_the_lab_does(
        lab_env: dict[str, str], tmp_path: Path, repository: str,
        request: pytest.FixtureRequest) -> None:
    context = tmp_path / "refapp"
    shutil.copytree(REPO / "tests/app", context,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    shutil.copytree(refapp_wheelhouse(request), context / "wheelhouse",
                    ignore=shutil.ignore_patterns(".complete"))
    role_vars = base_vars(lab_env, context, repository, "1.0.0", image_git_dir=str(REPO),
                          image_source="prodready.deploy/tests/app")
    first = outcome(play(lab_env, tmp_path, role_vars))
    assert first["failures"] == 0, first
    result = first["image_result"]
    registry = Registry(lab_env)
    _status, served, manifest = registry.manifest(repository, "1.0.0")
    assert result["digest_ref"] == f"{repository}@{served}"
    labels = registry.config(repository, manifest["config"]["digest"])["config"]["Labels"]
    assert labels["org.opencontainers.image.title"] == "refapp"
    assert labels["org.opencontainers.image.source"] == "prodready.deploy/tests/app"
    again = outcome(play(lab_env, tmp_path, role_vars))
    assert again["changed"] == 0, again
