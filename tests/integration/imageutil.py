# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the tests that use the lab's Docker engine: small images built FROM the lab's
base image in throwaway repositories (127.0.0.1:5000/img-test/...), the lab engine's docker
CLI, a free loopback port for extra containers, and an independent reader of the lab
registry (requests, verified against the lab CA)."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from pathlib import Path

import requests

MANIFEST_TYPES = ("application/vnd.oci.image.index.v1+json, "
                  "application/vnd.docker.distribution.manifest.list.v2+json, "
                  "application/vnd.oci.image.manifest.v1+json, "
                  "application/vnd.docker.distribution.manifest.v2+json")


def docker(lab_env: dict[str, str], *args: str, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": lab_env["DOCKER_HOST"],
           "DOCKER_CONFIG": lab_env["DOCKER_CONFIG"], "DOCKER_BUILDKIT": "0"}
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True,
                          check=check, timeout=600)


def free_port() -> int:
    """A loopback port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unique_repository(lab_env: dict[str, str], name: str) -> str:
    """A repository no earlier run used: the registry keeps what was pushed."""
    return f"{lab_env['LAB_REGISTRY']}/img-test/{name}-{secrets.token_hex(4)}"


def small_context(path: Path, payload: str) -> Path:
    """A build context FROM the lab's base image whose only layer holds ``payload``."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "Dockerfile").write_text(
        "ARG BASE_IMAGE\n"
        "FROM ${BASE_IMAGE}\n"
        "ARG REVISION=\"\"\n"
        "COPY payload.txt /payload.txt\n"
        "LABEL test.revision=\"${REVISION}\"\n")
    (path / "payload.txt").write_text(payload)
    return path


def git_commit(path: Path, message: str, when: str = "2026-11-27T10:00:00+00:00") -> str:
    """Commit everything in ``path`` (a new repository if needed) at a fixed time."""
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.invalid",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.invalid",
           "GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when}
    if not (path / ".git").exists():
        subprocess.run(["git", "init", "-q", str(path)], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "add", "-A"], check=True, env=env)
    subprocess.run(["git", "-C", str(path), "commit", "-q", "--allow-empty", "-m", message],
                   check=True, env=env)
    return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], check=True,
                          env=env, capture_output=True, text=True).stdout.strip()


class Registry:
    """Reads the lab registry directly - not through the module under test."""

    def __init__(self, lab_env: dict[str, str]) -> None:
        self.url = lab_env["LAB_REGISTRY_URL"]
        self.host = lab_env["LAB_REGISTRY"]
        self.session = requests.Session()
        self.session.auth = (lab_env["LAB_REGISTRY_USERNAME"], lab_env["LAB_REGISTRY_PASSWORD"])
        # Per request: a session's verify loses against REQUESTS_CA_BUNDLE in the environment.
        self.ca = lab_env["LAB_CA_CERT"]

    def _path(self, repository: str) -> str:
        return repository.removeprefix(self.host + "/")

    def manifest(self, repository: str, reference: str) -> tuple[int, str | None, dict]:
        """(status, Docker-Content-Digest, manifest) of a tag or digest."""
        resp = self.session.get(f"{self.url}/v2/{self._path(repository)}/manifests/{reference}",
                                headers={"Accept": MANIFEST_TYPES}, timeout=30, verify=self.ca)
        body = resp.json() if resp.status_code == 200 else {}
        return resp.status_code, resp.headers.get("Docker-Content-Digest"), body

    def config(self, repository: str, digest: str) -> dict:
        resp = self.session.get(f"{self.url}/v2/{self._path(repository)}/blobs/{digest}",
                                timeout=30, verify=self.ca)
        resp.raise_for_status()
        return resp.json()

    def tags(self, repository: str) -> list[str]:
        resp = self.session.get(f"{self.url}/v2/{self._path(repository)}/tags/list",
                                timeout=30, verify=self.ca)
        return sorted(resp.json().get("tags") or []) if resp.status_code == 200 else []


def remove_local(lab_env: dict[str, str], repository: str) -> None:
    """Untag every local image of ``repository`` (the layers stay with the base image)."""
    listed = docker(lab_env, "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                    repository, check=False).stdout.split()
    if listed:
        docker(lab_env, "image", "rm", "--force", *listed, check=False)
