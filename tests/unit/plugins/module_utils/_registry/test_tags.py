# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tags read through manifests and indexes, and the push plan with immutable tags."""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._registry.client import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    RegistryClient,
    RegistryError,
    RegistryProtocolError,
    Response,
)
from ansible_collections.prodready.deploy.plugins.module_utils._registry.reference import (
    Repository,
)
from ansible_collections.prodready.deploy.plugins.module_utils._registry.tags import (
    ImmutableTagError,
    TagState,
    choose_platform,
    plan_push,
    push_tags,
    read_tag,
)

REPO = Repository("r.example", "shop/web")
A, B, C = ("sha256:" + x * 64 for x in "abc")


def sha(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


def entry(digest: str, platform: str) -> dict:
    os_, arch, *variant = platform.split("/")
    plat = {"os": os_, "architecture": arch, **({"variant": variant[0]} if variant else {})}
    return {"mediaType": DOCKER_MANIFEST, "digest": digest, "size": 1, "platform": plat}


@pytest.mark.parametrize(("platforms", "wanted", "expected"), [
    (["linux/amd64"], None, "m0"),
    (["linux/amd64", "unknown/unknown"], None, "m0"),
    (["linux/amd64", "linux/arm64/v8"], "linux/arm64/v8", "m1"),
    (["linux/amd64", "linux/arm64/v8"], "linux/arm64", "m1"),
    (["linux/amd64", "linux/arm64/v8"], "Linux/AMD64", "m0"),
])
def test_choose_platform(platforms: list[str], wanted: str | None, expected: str) -> None:
    index = {"manifests": [entry(f"m{i}", p) for i, p in enumerate(platforms)]}
    assert choose_platform(index, wanted, "r/x:1") == expected


@pytest.mark.parametrize(("platforms", "wanted", "fragment"), [
    (["linux/amd64", "linux/arm64"], None, r"index of several images \(linux/amd64, "
                                           r"linux/arm64\); give the platform"),
    (["linux/amd64"], "linux/s390x", r"without an image for linux/s390x \(it has: "
                                     r"linux/amd64\)"),
    (["unknown/unknown"], None, r"index of several images \(none\)"),
])
def test_choose_platform_refuses(platforms: list[str], wanted: str | None,
                                 fragment: str) -> None:
    index = {"manifests": [entry(f"m{i}", p) for i, p in enumerate(platforms)]}
    with pytest.raises(RegistryProtocolError, match=fragment):
        choose_platform(index, wanted, "r/x:1")


def scripted(routes: dict[str, Response]) -> RegistryClient:
    return RegistryClient(REPO, lambda _m, url, _h: routes[url])


def test_read_tag_through_an_index_with_labels() -> None:
    config = json.dumps({"config": {"Labels": {
        "org.opencontainers.image.revision": "abc"}}}).encode()
    manifest = json.dumps({"mediaType": DOCKER_MANIFEST,
                           "config": {"digest": sha(config)}}).encode()
    index = json.dumps({"mediaType": OCI_INDEX, "manifests": [
        entry(sha(manifest), "linux/amd64"), entry(sha(manifest), "unknown/unknown")]}).encode()
    base = "https://r.example/v2/shop/web"
    client = scripted({f"{base}/manifests/1.0": Response(200, {}, index),
                       f"{base}/manifests/{sha(manifest)}": Response(200, {}, manifest),
                       f"{base}/blobs/{sha(config)}": Response(200, {}, config)})
    state = read_tag(client, "1.0", labels=True)
    assert (state.digest, state.platform_digest, state.image_id) == (
        sha(index), sha(manifest), sha(config))
    assert state.labels == {"org.opencontainers.image.revision": "abc"}
    assert state.describe() == f"manifest {sha(index)} (image {sha(config)}, revision abc)"


def test_read_missing_tag() -> None:
    client = scripted({"https://r.example/v2/shop/web/manifests/x": Response(404, {}, b"")})
    state = read_tag(client, "x")
    assert not state.exists and state.summary(A)["matches"] is False


def test_manifest_without_config() -> None:
    body = json.dumps({"mediaType": DOCKER_MANIFEST}).encode()
    client = scripted({"https://r.example/v2/shop/web/manifests/x": Response(200, {}, body)})
    with pytest.raises(RegistryProtocolError, match="names no config"):
        read_tag(client, "x")


def state(tag: str, image: str | None) -> TagState:
    return TagState(tag=tag, digest=("sha256:" + "f" * 64) if image else None, image_id=image)


@pytest.mark.parametrize(("states", "immutable", "push", "unchanged", "moved"), [
    ([state("1.0", None), state("sha", None)], ["1.0"], ["1.0", "sha"], [], []),
    ([state("1.0", A), state("sha", None)], ["1.0"], ["sha"], ["1.0"], []),
    ([state("1.0", A), state("sha", A)], ["1.0"], [], ["1.0", "sha"], []),
    ([state("1.0", None), state("latest", B)], ["1.0"], ["1.0", "latest"], [], ["latest"]),
])
def test_plan_push(states: list[TagState], immutable: list[str], push: list[str],
                   unchanged: list[str], moved: list[str]) -> None:
    plan = plan_push(REPO, states, A, immutable)
    assert (plan.push, plan.unchanged, plan.moved) == (push, unchanged, moved)


def test_every_violation_is_named_with_both_digests() -> None:
    states = [state("1.0", B), state("sha", C), state("latest", B)]
    with pytest.raises(ImmutableTagError) as err:
        plan_push(REPO, states, A, ["1.0", "sha"])
    text = str(err.value)
    assert text.startswith("release tags are immutable and r.example/shop/web:1.0 is manifest "
                           f"sha256:{'f' * 64} (image {B}) in the registry; "
                           f"r.example/shop/web:sha is manifest")
    assert text.endswith(f"but this build is image {A}; nothing was pushed - release the "
                         f"change under a new version")
    assert "latest" not in text


class FakeEngine:
    """Pushes into the scripted registry's routes, as a real push would."""

    def __init__(self, routes: dict[str, Response], image_manifest: bytes,
                 lose: str | None = None) -> None:
        self.routes, self.manifest, self.lose = routes, image_manifest, lose
        self.calls: list[tuple[str, ...]] = []

    def tag(self, image: str, repository: str, tag: str) -> None:
        self.calls.append(("tag", image, repository, tag))

    def push(self, repository: str, tag: str, auth: str) -> str:
        self.calls.append(("push", repository, tag, auth))
        if tag != self.lose:
            self.routes[f"https://r.example/v2/shop/web/manifests/{tag}"] = Response(
                200, {}, self.manifest)
        return sha(self.manifest)


def _registry_with_one_tag() -> tuple[dict[str, Response], bytes, str]:
    config = json.dumps({"config": {"Labels": {}}}).encode()
    manifest = json.dumps({"mediaType": DOCKER_MANIFEST,
                           "config": {"digest": sha(config)}}).encode()
    base = "https://r.example/v2/shop/web"
    routes = {f"{base}/manifests/1.0": Response(200, {}, manifest),
              f"{base}/manifests/abc123": Response(404, {}, b""),
              f"{base}/blobs/{sha(config)}": Response(200, {}, config)}
    return routes, manifest, sha(config)


def test_push_tags_pushes_the_missing_ones_and_reads_every_tag_back() -> None:
    routes, manifest, image = _registry_with_one_tag()
    client = scripted(routes)
    engine = FakeEngine(routes, manifest)
    pushed: list[str] = []
    states = push_tags(client, engine, REPO, ["1.0", "abc123"], image, ["abc123"], "AUTH",
                       None, True, pushed)
    assert pushed == ["abc123"]
    assert engine.calls == [("tag", image, "r.example/shop/web", "abc123"),
                            ("push", "r.example/shop/web", "abc123", "AUTH")]
    assert [(s.tag, s.image_id) for s in states] == [("1.0", image), ("abc123", image)]
    assert client.requests[:2] == [
        f"ENGINE POST /images/{image}/tag repo=r.example/shop/web tag=abc123",
        "ENGINE POST /images/r.example/shop/web/push tag=abc123"]


def test_push_tags_fails_when_the_registry_does_not_serve_the_push() -> None:
    routes, manifest, image = _registry_with_one_tag()
    engine = FakeEngine(routes, manifest, lose="abc123")
    with pytest.raises(RegistryError, match=f"after the push the registry still lacks image"
                                            f" {image} under abc123"):
        push_tags(scripted(routes), engine, REPO, ["1.0", "abc123"], image, ["abc123"], "A",
                  None, False, [])
