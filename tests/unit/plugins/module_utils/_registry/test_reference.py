# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Repository, tag and digest grammar, as docker decides it."""

from __future__ import annotations

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._registry.reference import (
    InvalidReferenceError,
    Repository,
    check_digest,
    check_tag,
    parse_repository,
)


@pytest.mark.parametrize(("value", "host", "path", "api"), [
    ("127.0.0.1:5000/img-test/app", "127.0.0.1:5000", "img-test/app", "https://127.0.0.1:5000"),
    ("registry.example/shop/web", "registry.example", "shop/web", "https://registry.example"),
    ("localhost/app", "localhost", "app", "https://localhost"),
    ("localhost:5000/a/b/c", "localhost:5000", "a/b/c", "https://localhost:5000"),
    ("nginx", "docker.io", "library/nginx", "https://registry-1.docker.io"),
    ("team/app", "docker.io", "team/app", "https://registry-1.docker.io"),
    ("docker.io/team/app", "docker.io", "team/app", "https://registry-1.docker.io"),
    ("[::1]:5000/app", "[::1]:5000", "app", "https://[::1]:5000"),
    ("r.example/a__b/c-d.e_f", "r.example", "a__b/c-d.e_f", "https://r.example"),
])
def test_parse_repository(value: str, host: str, path: str, api: str) -> None:
    repo = parse_repository(value)
    assert (repo.host, repo.path, repo.api_base()) == (host, path, api)


@pytest.mark.parametrize(("value", "fragment"), [
    ("", "empty"),
    ("https://r.example/app", "is a URL"),
    ("r.example/app:1.0", "holds a tag"),
    ("r.example/app@sha256:" + "a" * 64, "holds a digest"),
    ("r.example/App", "is not a repository path"),
    ("r.example/app/", "is not a repository path"),
    ("r.example/-app", "is not a repository path"),
    ("bad_host:x/app", "is not a registry host"),
])
def test_parse_repository_refuses(value: str, fragment: str) -> None:
    with pytest.raises(InvalidReferenceError, match=fragment):
        parse_repository(value)


def test_pinned_reference() -> None:
    repo = Repository("r.example:5000", "shop/web")
    assert repo.name == "r.example:5000/shop/web"
    assert repo.pinned("sha256:" + "0" * 64) == "r.example:5000/shop/web@sha256:" + "0" * 64


@pytest.mark.parametrize("tag", ["1.0.0", "v1", "latest", "_x", "a" * 128, "1.0.0-rc.1_b"])
def test_valid_tags(tag: str) -> None:
    assert check_tag(tag) == tag


@pytest.mark.parametrize("tag", ["", "-x", ".x", "a" * 129, "1.0+build", "a/b", "a:b"])
def test_invalid_tags(tag: str) -> None:
    with pytest.raises(InvalidReferenceError, match="is not a valid tag"):
        check_tag(tag)


@pytest.mark.parametrize(("digest", "valid"), [
    ("sha256:" + "a" * 64, True),
    ("sha256:" + "A" * 64, False),
    ("sha256:" + "a" * 63, False),
    ("sha512:" + "a" * 64, False),
    ("a" * 64, False),
])
def test_digests(digest: str, valid: bool) -> None:
    if valid:
        assert check_digest(digest) == digest
    else:
        with pytest.raises(InvalidReferenceError, match="is not sha256"):
            check_digest(digest, "image_id")
