# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Image references: a repository (``registry.example:5000/team/app``), its tags and digests.

The grammar is the one of the distribution specification (and of ``docker tag``): a
repository path of lowercase components separated by ``/``, ``.``, ``_``, ``__`` or ``-``;
a tag of at most 128 characters from ``[A-Za-z0-9_.-]`` that does not start with ``.`` or
``-``; a digest ``sha256:`` and 64 lowercase hex digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class InvalidReferenceError(ValueError):
    """A repository, tag or digest that the registry would refuse."""


_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
_HOST_RE = re.compile(r"^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                      r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9a-fA-F:]+\])"
                      r"(?::[0-9]+)?$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")

# Docker's default registry: short names resolve to it, and its API lives elsewhere.
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "https://registry-1.docker.io"


@dataclass(frozen=True)
class Repository:
    """Where a repository lives: the registry's host[:port] and the path inside it."""

    host: str
    path: str

    @property
    def name(self) -> str:
        """The repository as ``docker push`` names it."""
        return f"{self.host}/{self.path}"

    def api_base(self) -> str:
        """Base URL of the registry's v2 API (always HTTPS: credentials travel on it)."""
        return DOCKER_HUB_API if self.host == DOCKER_HUB else f"https://{self.host}"

    def pinned(self, digest: str) -> str:
        """``host/path@sha256:...``, the reference a rollout pins."""
        return f"{self.name}@{digest}"


def parse_repository(value: str) -> Repository:
    """``registry.example:5000/team/app`` -> Repository; no tag, no digest, no scheme."""
    text = value.strip()
    if not text:
        raise InvalidReferenceError("the repository is empty")
    if "://" in text:
        raise InvalidReferenceError(f"{value!r} is a URL; give the repository as docker names it, "
                                    f"e.g. registry.example:5000/team/app")
    if "@" in text:
        raise InvalidReferenceError(f"{value!r} holds a digest; give the repository without it")
    first, sep, rest = text.partition("/")
    # As docker decides it: the first component is a registry when it has a dot, a port or
    # is localhost; otherwise the reference is on Docker Hub.
    if sep and ("." in first or ":" in first or first == "localhost"
                or first.startswith("[")):
        host, path = first, rest
    else:
        host, path = DOCKER_HUB, text
    if ":" in path:
        raise InvalidReferenceError(f"{value!r} holds a tag; give the repository without it and "
                                    f"the tags apart")
    if not _HOST_RE.match(host):
        raise InvalidReferenceError(f"{host!r} is not a registry host[:port]")
    if host == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not _PATH_RE.match(path) or len(path) > 255:
        raise InvalidReferenceError(f"{path!r} is not a repository path (lowercase letters, digits "
                                    f"and separators . _ __ - between /-separated components)")
    return Repository(host=host, path=path)


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag or ""):
        raise InvalidReferenceError(f"{tag!r} is not a valid tag (at most 128 characters from "
                                    f"A-Z a-z 0-9 _ . -, not starting with . or -)")
    return tag


def check_digest(digest: str, what: str = "digest") -> str:
    if not DIGEST_RE.match(digest or ""):
        raise InvalidReferenceError(f"{what} {digest!r} is not sha256: and 64 lowercase hex digits")
    return digest
