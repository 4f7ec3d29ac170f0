# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""prodready.deploy.registry_image against the lab registry (htpasswd, TLS from the lab CA),
with images the lab engine built and pushed, read back independently."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import pytest
from ansible_run import ANSIBLE, ansible_env, run_module
from imageutil import Registry, docker, remove_local, small_context, unique_repository

CANARY = "canary-registry-pw-0b5d7a31"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


def creds(lab_env: dict[str, str], **extra: object) -> dict[str, object]:
    return {"username": lab_env["LAB_REGISTRY_USERNAME"],
            "password": lab_env["LAB_REGISTRY_PASSWORD"], "ca_cert": lab_env["LAB_CA_CERT"],
            **extra}


def run_verbose(lab_env: dict[str, str], args: dict[str, Any]
                ) -> tuple[int, dict[str, Any], subprocess.CompletedProcess]:
    """run_module() at -vvvv, where ansible prints its banner before the JSON."""
    proc = subprocess.run([str(ANSIBLE), "localhost", "-m", "prodready.deploy.registry_image",
                           "-a", json.dumps(args), "-vvvv"], capture_output=True, text=True,
                          env=ansible_env(lab_env), timeout=300, check=False)
    start = proc.stdout.index("\n{\n") + 1
    result = json.loads(proc.stdout[start:])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    return proc.returncode, result, proc


@pytest.fixture(scope="module")
def pushed(lab_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory):
    """A small image built FROM the lab base image and pushed as <repo>:1.0.0; and a second,
    different local image (not pushed)."""
    repo = unique_repository(lab_env, "module")
    root = tmp_path_factory.mktemp("registry-image")
    images = {}
    for name, payload in (("one", "one\n"), ("two", "two\n")):
        context = small_context(root / name, payload)
        docker(lab_env, "build", "--quiet", "--build-arg",
               f"BASE_IMAGE={lab_env['LAB_BASE_IMAGE']}", "--label",
               "org.opencontainers.image.version=1.0.0", "--tag", f"{repo}:{name}",
               str(context))
        images[name] = docker(lab_env, "image", "inspect", "--format", "{{.Id}}",
                              f"{repo}:{name}").stdout.strip()
    docker(lab_env, "tag", f"{repo}:one", f"{repo}:1.0.0")
    docker(lab_env, "push", "--quiet", f"{repo}:1.0.0")
    yield {"repo": repo, **images}
    remove_local(lab_env, repo)


def test_reads_the_tag_as_the_registry_serves_it(lab_env, pushed) -> None:
    args = {"repository": pushed["repo"], "tags": ["1.0.0"], **creds(lab_env)}
    rc, check, _proc = run_module(lab_env, "registry_image", args, "--check")
    assert rc == 0, check
    rc, result, _proc = run_module(lab_env, "registry_image", args)
    assert rc == 0, result
    status, served, manifest = Registry(lab_env).manifest(pushed["repo"], "1.0.0")
    assert status == 200
    assert result["changed"] is False and check["changed"] is False
    assert result["digest"] == check["digest"] == served
    assert result["digest_ref"] == f"{pushed['repo']}@{served}"
    assert result["image_id"] == manifest["config"]["digest"] == pushed["one"]
    assert result["labels"]["org.opencontainers.image.version"] == "1.0.0"
    assert result["registry_url"] == lab_env["LAB_REGISTRY_URL"]
    path = pushed["repo"].split("/", 1)[1]
    assert result["requests"] == [
        "GET /v2/ -> 401", "GET /v2/ -> 200", f"GET /v2/{path}/manifests/1.0.0 -> 200",
        f"GET /v2/{path}/blobs/{pushed['one']} -> 200"]
    assert result["push"] == []


def test_plans_the_push_of_missing_tags_only(lab_env, pushed) -> None:
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["1.0.0", "abc123def456"],
        "image_id": pushed["one"], "immutable_tags": ["1.0.0"], **creds(lab_env)})
    assert rc == 0, result
    assert result["push"] == ["abc123def456"]
    assert result["unchanged"] == ["1.0.0"]
    assert result["tags"]["1.0.0"]["matches"] is True
    assert result["tags"]["abc123def456"] == {
        "exists": False, "digest": None, "media_type": None, "image_id": None,
        "platform_digest": None, "matches": False}


def test_refuses_another_image_under_an_immutable_tag(lab_env, pushed) -> None:
    before = Registry(lab_env).manifest(pushed["repo"], "1.0.0")[1]
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["1.0.0"], "image_id": pushed["two"],
        "immutable_tags": ["1.0.0"], **creds(lab_env)})
    assert rc != 0 and result["failed"]
    assert result["msg"] == (
        f"Refusing to push {pushed['repo']}:1.0.0: release tags are immutable and "
        f"{pushed['repo']}:1.0.0 is manifest {before} (image {pushed['one']}) in the "
        f"registry, but this build is image {pushed['two']}; nothing was pushed - release "
        f"the change under a new version")
    assert Registry(lab_env).manifest(pushed["repo"], "1.0.0")[1] == before


def test_a_mutable_tag_is_planned_to_move(lab_env, pushed) -> None:
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["1.0.0"], "image_id": pushed["two"],
        **creds(lab_env)})
    assert rc == 0, result
    assert result["push"] == result["moved"] == ["1.0.0"]
    assert result["digest"] is None and result["digest_ref"] is None


def test_wrong_password_is_named_and_never_shown(lab_env, pushed) -> None:
    rc, result, proc = run_verbose(lab_env, {
        "repository": pushed["repo"], "tags": ["1.0.0"], **creds(lab_env, password=CANARY)})
    assert rc != 0
    assert result["msg"] == (
        f"Failed to read {pushed['repo']}:1.0.0 from the registry "
        f"({lab_env['LAB_REGISTRY_URL']} refused the credentials of user "
        f"{lab_env['LAB_REGISTRY_USERNAME']} (401 UNAUTHORIZED: authentication required))")
    assert CANARY not in proc.stdout + proc.stderr


def test_no_credentials_are_asked_for(lab_env, pushed) -> None:
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["1.0.0"], "ca_cert": lab_env["LAB_CA_CERT"]})
    assert rc != 0
    assert result["msg"].endswith(f"({lab_env['LAB_REGISTRY_URL']} asks for credentials "
                                  f"(Basic) and none were given)")


def test_unreachable_registry_is_named(lab_env) -> None:
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": "127.0.0.1:9/img-test/nothing", "tags": ["1.0.0"],
        **creds(lab_env)})
    assert rc != 0
    assert result["msg"] == ("Failed to read 127.0.0.1:9/img-test/nothing:1.0.0 from the "
                             "registry (cannot reach https://127.0.0.1:9 (Connection refused))")


def test_an_unverified_certificate_is_refused(lab_env, pushed) -> None:
    rc, result, proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["1.0.0"],
        **creds(lab_env, ca_cert=None)})
    assert rc != 0
    assert (f"(TLS verification of {lab_env['LAB_REGISTRY_URL']} failed (unable to get local "
            f"issuer certificate); give the CA that signed its certificate as ca_cert)"
            ) in result["msg"]
    assert lab_env["LAB_REGISTRY_PASSWORD"] not in proc.stdout + proc.stderr


def test_invalid_tag_is_refused_before_any_request(lab_env, pushed) -> None:
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["-bad"], **creds(lab_env)})
    assert rc != 0
    assert "'-bad' is not a valid tag" in result["msg"]
    assert result["requests"] == []


def put_index(lab_env: dict[str, str], repo: str, tag: str, manifest_digest: str,
              size: int, platforms: list[str]) -> str:
    """Push an OCI index naming the image manifest for ``platforms`` (and an attestation
    entry, platform unknown/unknown), as buildx does; returns its digest."""
    entries = [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "digest": manifest_digest, "size": size,
                "platform": dict(zip(("os", "architecture"), p.split("/"), strict=True))}
               for p in [*platforms, "unknown/unknown"]]
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries})
    registry = Registry(lab_env)
    resp = registry.session.put(
        f"{registry.url}/v2/{repo.split('/', 1)[1]}/manifests/{tag}", data=body,
        headers={"Content-Type": OCI_INDEX}, verify=registry.ca, timeout=30)
    assert resp.status_code == 201, resp.text
    return resp.headers["Docker-Content-Digest"]


def test_an_index_is_compared_through_its_platform_image(lab_env, pushed) -> None:
    _status, digest, manifest = Registry(lab_env).manifest(pushed["repo"], "1.0.0")
    size = len(json.dumps(manifest))  # informational for the registry; not verified
    index = put_index(lab_env, pushed["repo"], "multi", digest, size, ["linux/amd64"])
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["multi"], "image_id": pushed["one"],
        "immutable_tags": ["multi"], **creds(lab_env)})
    assert rc == 0, result
    assert result["digest"] == index and result["digest_ref"].endswith("@" + index)
    assert result["tags"]["multi"]["platform_digest"] == digest
    assert result["tags"]["multi"]["media_type"] == OCI_INDEX
    assert result["unchanged"] == ["multi"]

    put_index(lab_env, pushed["repo"], "multi2", digest, size, ["linux/amd64", "linux/arm64"])
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["multi2"], **creds(lab_env)})
    assert rc != 0
    assert result["msg"].endswith(f"({pushed['repo']}:multi2 is an index of several images "
                                  f"(linux/amd64, linux/arm64); give the platform to compare)")
    rc, result, _proc = run_module(lab_env, "registry_image", {
        "repository": pushed["repo"], "tags": ["multi2"], "platform": "linux/arm64",
        **creds(lab_env)})
    assert rc == 0, result
    assert result["image_id"] == pushed["one"]


def test_push_sends_the_missing_tags_and_reads_them_back(lab_env, pushed) -> None:
    repo = unique_repository(lab_env, "module-push")
    args = {"repository": repo, "tags": ["2.0.0", "f00dfeed1234"], "image_id": pushed["two"],
            "immutable_tags": ["2.0.0"], "push": True, **creds(lab_env)}
    registry = Registry(lab_env)
    rc, check, _proc = run_module(lab_env, "registry_image", args, "--check")
    assert rc == 0, check
    assert (check["changed"], check["push"], check["pushed"]) == (
        True, ["2.0.0", "f00dfeed1234"], [])
    assert registry.tags(repo) == []

    rc, result, proc = run_verbose(lab_env, args)
    assert rc == 0, result
    assert lab_env["LAB_REGISTRY_PASSWORD"] not in proc.stdout + proc.stderr
    assert (result["changed"], result["pushed"]) == (True, ["2.0.0", "f00dfeed1234"])
    status, served, manifest = registry.manifest(repo, "2.0.0")
    assert status == 200 and manifest["config"]["digest"] == pushed["two"]
    assert registry.manifest(repo, "f00dfeed1234")[1] == served
    assert result["digest_ref"] == f"{repo}@{served}"
    assert all(tag["matches"] for tag in result["tags"].values())
    assert sum(r.startswith("ENGINE POST") for r in result["requests"]) == 4

    rc, again, _proc = run_module(lab_env, "registry_image", args)
    remove_local(lab_env, repo)  # the tags the engine was given for the push
    assert rc == 0, again
    assert (again["changed"], again["pushed"], again["digest_ref"]) == (
        False, [], result["digest_ref"])


def test_push_failures_are_named(lab_env, pushed) -> None:
    repo = unique_repository(lab_env, "module-push-fail")
    base = {"repository": repo, "tags": ["1.0.0"], "push": True, **creds(lab_env)}
    rc, result, _proc = run_module(lab_env, "registry_image",
                                   {**base, "image_id": "sha256:" + "0" * 64})
    assert rc != 0
    assert result["msg"].startswith(
        f"Failed to push {repo}:1.0.0 (the Docker engine could not tag sha256:{'0' * 64} as"
        f" {repo}:1.0.0: 404 ")
    rc, result, _proc = run_module(lab_env, "registry_image",
                                   {**base, "image_id": pushed["one"],
                                    "docker_host": "unix:///nonexistent/docker.sock"})
    assert rc != 0
    assert result["msg"] == (f"Failed to push {repo}:1.0.0 (cannot reach the Docker engine at"
                             " unix:///nonexistent/docker.sock: No such file or directory)")
    rc, result, _proc = run_module(lab_env, "registry_image", {**base, "image_id": None})
    assert rc != 0 and "push needs image_id" in result["msg"]
    assert Registry(lab_env).tags(repo) == []
