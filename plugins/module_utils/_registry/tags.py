# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""What the registry's tags point to, and what a push of a local image would do to them.

A local image and a pushed tag hold the same content exactly when the tag's image config
digest equals the local image ID: the Docker engine's image ID is the sha256 of the config
it pushes. Release tags are immutable: a tag in ``immutable`` that exists with another
image is refused before anything is pushed, naming both digests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._registry.client import (
    RegistryClient,
    RegistryError,
    RegistryProtocolError,
)
from ansible_collections.prodready.deploy.plugins.module_utils._registry.engine import Engine
from ansible_collections.prodready.deploy.plugins.module_utils._registry.reference import (
    Repository,
)

REVISION_LABEL = "org.opencontainers.image.revision"


class ImmutableTagError(Exception):
    """A release tag exists in the registry with other content."""


@dataclass
class TagState:
    """What one tag points to in the registry; ``digest`` None when the tag does not exist."""

    tag: str
    digest: str | None = None
    media_type: str | None = None
    image_id: str | None = None
    platform_digest: str | None = None
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def exists(self) -> bool:
        return self.digest is not None

    def describe(self) -> str:
        text = f"manifest {self.digest} (image {self.image_id}"
        revision = self.labels.get(REVISION_LABEL)
        return text + (f", revision {revision})" if revision else ")")

    def summary(self, image_id: str | None) -> dict[str, Any]:
        return {"exists": self.exists, "digest": self.digest, "media_type": self.media_type,
                "image_id": self.image_id, "platform_digest": self.platform_digest,
                "matches": (self.exists and self.image_id == image_id) if image_id else None}


def _platform(descriptor: dict[str, Any]) -> str:
    plat = descriptor.get("platform") or {}
    parts = [plat.get("os") or "unknown", plat.get("architecture") or "unknown"]
    if plat.get("variant"):
        parts.append(plat["variant"])
    return "/".join(parts)


def choose_platform(index: dict[str, Any], platform: str | None, where: str) -> str:
    """The digest of the index entry for ``platform`` (os/arch[/variant]); without one, the
    only image of the index (attestation entries, platform unknown/unknown, do not count)."""
    entries = [m for m in index.get("manifests") or []
               if _platform(m) != "unknown/unknown" and m.get("digest")]
    if platform:
        wanted = platform.strip().lower()
        found = [m for m in entries if _platform(m) == wanted
                 or (wanted.count("/") == 1 and _platform(m).startswith(wanted + "/"))]
    else:
        found = entries if len(entries) == 1 else []
    if len(found) >= 1:
        return found[0]["digest"]
    listed = ", ".join(sorted({_platform(m) for m in entries})) or "none"
    if platform:
        raise RegistryProtocolError(f"{where} is an index without an image for {platform} "
                                    f"(it has: {listed})")
    raise RegistryProtocolError(f"{where} is an index of several images ({listed}); give "
                                f"the platform to compare")


def read_tag(client: RegistryClient, tag: str, platform: str | None = None,
             labels: bool = False) -> TagState:
    """Resolve a tag to its manifest digest and image config digest (and its labels)."""
    manifest = client.manifest(tag)
    if manifest is None:
        return TagState(tag=tag)
    state = TagState(tag=tag, digest=manifest.digest, media_type=manifest.media_type)
    image = manifest
    if manifest.is_index:
        where = f"{client.repository.name}:{tag}"
        state.platform_digest = choose_platform(manifest.document, platform, where)
        image = client.manifest(state.platform_digest)
        if image is None or image.is_index:
            raise RegistryProtocolError(f"{where}: the index names "
                                        f"{state.platform_digest}, which the registry does "
                                        f"not serve as an image manifest")
    state.image_id = image.config_digest
    if not state.image_id:
        raise RegistryProtocolError(f"{client.repository.name}:{tag}: the manifest names "
                                    f"no config")
    if labels:
        config = client.blob_json(state.image_id)
        state.labels = dict((config.get("config") or {}).get("Labels") or {})
    return state


@dataclass
class PushPlan:
    push: list[str]        # missing, or mutable and pointing elsewhere
    unchanged: list[str]   # already the image
    moved: list[str]       # mutable tags that point elsewhere now (a subset of push)


def plan_push(repository: Repository, states: list[TagState], image_id: str,
              immutable: list[str]) -> PushPlan:
    """Which tags a push of ``image_id`` would write; every violation of an immutable tag is
    refused at once, before anything is pushed."""
    violations = [s for s in states if s.tag in immutable and s.exists
                  and s.image_id != image_id]
    if violations:
        lines = "; ".join(f"{repository.name}:{s.tag} is {s.describe()} in the registry"
                          for s in violations)
        raise ImmutableTagError(
            f"release tags are immutable and {lines}, but this build is image {image_id}; "
            f"nothing was pushed - release the change under a new version")
    push = [s.tag for s in states if not s.exists or s.image_id != image_id]
    return PushPlan(push=push,
                    unchanged=[s.tag for s in states if s.tag not in push],
                    moved=[s.tag for s in states if s.exists and s.tag in push])


def push_tags(client: RegistryClient, engine: Engine, repository: Repository, tags: list[str],
              image_id: str, push: list[str], auth: str, platform: str | None,
              labels: bool, pushed: list[str]) -> list[TagState]:
    """Name `image_id` and push it from the engine under each tag of `push` (appended to
    `pushed` as they go), then read every tag of `tags` again: RegistryError unless each
    holds `image_id` now."""
    for tag in push:
        client.requests.append(f"ENGINE POST /images/{image_id}/tag repo={repository.name}"
                               f" tag={tag}")
        engine.tag(image_id, repository.name, tag)
        client.requests.append(f"ENGINE POST /images/{repository.name}/push tag={tag}")
        engine.push(repository.name, tag, auth)
        pushed.append(tag)
    states = [read_tag(client, tag, platform, labels=labels and i == 0)
              for i, tag in enumerate(tags)]
    missing = [state.tag for state in states if state.image_id != image_id]
    if missing:
        raise RegistryError(f"after the push the registry still lacks image {image_id} under"
                            f" {', '.join(missing)} - did something else push meanwhile?")
    return states
