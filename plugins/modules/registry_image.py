#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: registry_image
short_description: Read what image tags point to in a registry, guard immutable tags, pin by digest
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Reads from a container registry's HTTP API v2 what each of O(tags) points to - the
    manifest digest (what C(repository@sha256:...) pins) and the image's config digest -
    without pulling anything.
  - With O(image_id), the local image's ID as the Docker engine reports it (the sha256 of
    its config, which a push uploads unchanged), it compares the local image with every tag
    and returns the tags a push would write in RV(push). A tag that already holds the image
    needs no push, so a release that is already in the registry changes nothing.
  - Release tags are immutable - a tag in O(immutable_tags) that exists with another image is
    refused, and the task fails naming both the registry's digests and the local image ID.
    Run it before the push, and nothing is pushed.
  - After the push, the same call returns RV(digest_ref), the reference pinned by registry
    digest that a rollout uses (the role C(prodready.deploy.image) does both).
  - With O(push=true) it pushes itself - the tags of RV(push) only, from the local Docker
    engine (O(docker_host)), after the immutability check - and reads them back, failing
    unless the registry then serves O(image_id) under every tag. The credentials go to the
    engine in the push request's C(X-Registry-Auth) header, so no login is stored in a
    Docker client configuration. One task instead of tag, compare, login, push per tag and
    read back.
  - Authentication answers the registry's challenge - C(Basic) (htpasswd) or C(Bearer) (a
    token from the challenge's realm for the repository's C(pull) scope, e.g. Docker Hub,
    GitLab, Harbor). The chain of the registry's certificate is always verified, against
    O(ca_cert) when given.
  - Manifests are asked for as OCI and Docker v2 image manifests and indexes (manifest lists).
    A tag that points to an index is compared through the index's image for O(platform).
  - Why not community.docker - M(community.docker.docker_image_push) pushes and reports
    whether layers were uploaded, but neither it nor M(community.docker.docker_image_info)
    reads a tag from the registry - the engine's C(RepoDigests) only tells what this engine
    pushed or pulled, not what the tag holds now - so there is no way to refuse a push
    before it overwrites a release tag, nor to read back the digest the registry serves.
    M(community.docker.docker_image_pull) would download the image to find out.
options:
  repository:
    description:
      - The repository as C(docker push) names it, without tag or digest, e.g.
        V(registry.example:5000/team/app). A name without a registry host is on Docker Hub.
    type: str
    required: true
  tags:
    description:
      - Tags to read. The first is the primary tag - RV(digest), RV(digest_ref) and RV(labels)
        are its.
    type: list
    elements: str
    required: true
  image_id:
    description:
      - ID of the local image to compare with the tags, C(sha256:) and 64 hex digits (the
        C(Id) of C(docker image inspect)).
      - Without it the module only reads the tags.
    type: str
  immutable_tags:
    description:
      - Tags among O(tags) that must never point to another image - the release version. One
        that exists with an image other than O(image_id) fails the task.
      - Ignored without O(image_id).
    type: list
    elements: str
    default: []
  platform:
    description:
      - The platform, V(os/architecture[/variant]), whose image is compared when a tag points
        to an index. Without it an index must hold one image.
    type: str
  registry_url:
    description:
      - Base URL of the registry's API, when it is not V(https://) and the repository's host
        (Docker Hub's is V(https://registry-1.docker.io)).
    type: str
  username:
    description: User for the registry; without it the registry is read anonymously.
    type: str
  password:
    description: Password or token of O(username) (from a vault).
    type: str
  ca_cert:
    description:
      - CA certificate (PEM) that signed the registry's certificate; without it the system's
        CAs.
    type: path
  validate_certs:
    description:
      - Verify the registry's certificate. Only for a throwaway test registry; the
        credentials travel on this connection.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each answer of the registry.
    type: int
    default: 30
  labels:
    description: Read the primary tag's image config for RV(labels) (one more request).
    type: bool
    default: true
  push:
    description:
      - Push the tags of RV(push) from the local Docker engine, then read every tag back
        (see the description). Needs O(image_id), and O(username) unless the registry takes
        anonymous pushes.
      - In check mode nothing is pushed; RV(ignore:changed) says whether a push would be.
    type: bool
    default: false
  docker_host:
    description:
      - The Docker engine that holds O(image_id) and pushes, V(unix:///path) or
        V(tcp://host:port) - with TLS as the docker CLI has it, verified when
        C(DOCKER_TLS_VERIFY) is set, unverified with C(DOCKER_TLS) alone, with the files of
        C(DOCKER_CERT_PATH). Default C(DOCKER_HOST), else V(unix:///var/run/docker.sock).
      - Only with O(push=true).
    type: str
  push_timeout:
    description: Seconds a push may go without an answer from the engine.
    type: int
    default: 600
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads as always; with O(push=true) it pushes nothing and reports whether it would.
  diff_mode:
    support: none
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: full
    details:
      - Without O(push) it never changes anything. With O(push=true) it pushes only the tags
        that lack O(image_id), so a second run pushes nothing and reports no change.
  platform:
    platforms: all
notes:
  - Reading needs the C(pull) permission on the repository; O(push=true) also C(push).
  - The module reads the registry from the host it runs on; run it where the push runs.
  - The role C(prodready.deploy.image) builds an image with community.docker and checks,
    pushes and reads it back with this module (O(push=true)).
  - O(push=true) talks to the Docker engine's API itself (tag, push) rather than through
    community.docker, so that the comparison, the push of only the missing tags and the read
    back are one task, and the credentials reach the engine in the push request instead of a
    login stored in a Docker client configuration.
seealso:
  - module: community.docker.docker_image_push
  - name: OCI distribution specification
    description: The registry API this module reads.
    link: https://github.com/opencontainers/distribution-spec/blob/main/spec.md
"""

EXAMPLES = r"""
---
- name: Refuse to overwrite the release tag, and list the tags to push
  prodready.deploy.registry_image:
    repository: registry.example:5000/shop/web
    tags: ["1.4.0", "3f9c2ab1d0e4"]
    immutable_tags: ["1.4.0"]
    image_id: "{{ build.image.Id }}"
    username: deploy
    password: "{{ vault_registry_password }}"
    ca_cert: /etc/pki/registry-ca.pem
  register: before_push

- name: Push only the tags that lack the image
  community.docker.docker_image_push:
    name: registry.example:5000/shop/web
    tag: "{{ item }}"
  loop: "{{ before_push.push }}"

- name: Read the digest the registry now serves
  prodready.deploy.registry_image:
    repository: registry.example:5000/shop/web
    tags: ["1.4.0"]
    image_id: "{{ build.image.Id }}"
    username: deploy
    password: "{{ vault_registry_password }}"
    ca_cert: /etc/pki/registry-ca.pem
  register: pushed

- name: Or in one task - check, push what is missing from the local engine, read back
  prodready.deploy.registry_image:
    repository: registry.example:5000/shop/web
    tags: ["1.4.0", "3f9c2ab1d0e4"]
    immutable_tags: ["1.4.0"]
    image_id: "{{ build.image.Id }}"
    push: true
    username: deploy
    password: "{{ vault_registry_password }}"
    ca_cert: /etc/pki/registry-ca.pem
  register: pushed

- name: Roll out the image pinned by digest
  ansible.builtin.debug:
    msg: "{{ pushed.digest_ref }}"   # registry.example:5000/shop/web@sha256:...
"""

RETURN = r"""
repository:
  description: The repository as given, normalised (Docker Hub names get C(docker.io/library/)).
  returned: always
  type: str
  sample: registry.example:5000/shop/web
registry_url:
  description: Base URL of the registry's API that was read.
  returned: always
  type: str
  sample: https://registry.example:5000
tags:
  description: Per tag, what it points to in the registry.
  returned: success
  type: dict
  sample:
    "1.4.0": {"exists": true, "digest": "sha256:3117...", "image_id": "sha256:8516...",
              "media_type": "application/vnd.docker.distribution.manifest.v2+json",
              "platform_digest": null, "matches": true}
    "3f9c2ab1d0e4": {"exists": false, "digest": null, "image_id": null, "media_type": null,
                     "platform_digest": null, "matches": false}
push:
  description:
    - Tags a push of O(image_id) would write - missing, or (mutable ones) pointing to another
      image. Empty when the registry already has the image under every tag, and without
      O(image_id).
  returned: success
  type: list
  elements: str
  sample: ["3f9c2ab1d0e4"]
unchanged:
  description: Tags that already point to O(image_id).
  returned: success
  type: list
  elements: str
  sample: ["1.4.0"]
moved:
  description: Mutable tags that exist with another image, which a push would move.
  returned: success
  type: list
  elements: str
  sample: []
digest:
  description:
    - Manifest digest of the primary tag (the index's, when the tag points to an index).
    - Null when the tag does not exist, or when it holds another image than O(image_id).
  returned: success
  type: str
  sample: sha256:311784f9a777c39304bfa6d3f86a09cd455fe28f75b872e707ae8dc7d404631d
digest_ref:
  description:
    - RV(repository)@RV(digest), the image reference pinned by digest that the rollout uses;
      null when RV(digest) is.
  returned: success
  type: str
  sample: registry.example:5000/shop/web@sha256:311784f9a777c39304bfa6d3f86a09cd455fe28f75b8...
image_id:
  description:
    - Config digest of the primary tag's image - the image ID an engine that pulls it reports.
  returned: success
  type: str
  sample: sha256:851665e93825ce2088199d37ea5c2577d6764282e1505227f805c94043a67270
labels:
  description:
    - Labels of the primary tag's image (empty when it does not exist, or O(labels=false)).
  returned: success
  type: dict
  sample: {"org.opencontainers.image.version": "1.4.0",
           "org.opencontainers.image.revision": "3f9c2ab1d0e4..."}
pushed:
  description: Tags pushed from the local engine (O(push=true); none in check mode).
  returned: success
  type: list
  elements: str
  sample: ["1.4.0", "3f9c2ab1d0e4"]
requests:
  description:
    - The registry API requests made, with their status; never a header, so never a
      credential. The Docker engine's requests of O(push=true) start with C(ENGINE) and carry
      no status (a failed one fails the task).
  returned: always
  type: list
  elements: str
  sample: ["GET /v2/ -> 401", "GET /v2/ -> 200", "GET /v2/shop/web/manifests/1.4.0 -> 200"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._registry.client import (
    RegistryClient,
    RegistryError,
    open_url_transport,
)
from ansible_collections.prodready.deploy.plugins.module_utils._registry.engine import (
    Engine,
    EngineError,
    registry_auth,
)
from ansible_collections.prodready.deploy.plugins.module_utils._registry.reference import (
    DOCKER_HUB,
    InvalidReferenceError,
    check_digest,
    check_tag,
    parse_repository,
)
from ansible_collections.prodready.deploy.plugins.module_utils._registry.tags import (
    ImmutableTagError,
    plan_push,
    push_tags,
    read_tag,
)


def run(module: AnsibleModule, result: dict[str, Any]) -> None:
    params = module.params
    repository = parse_repository(params["repository"])
    tags = [check_tag(tag) for tag in dict.fromkeys(params["tags"])]
    if not tags:
        raise InvalidReferenceError("tags is empty; give at least one tag")
    image_id = check_digest(params["image_id"], "image_id") if params["image_id"] else None
    strays = [tag for tag in params["immutable_tags"] if tag not in tags]
    if strays:
        raise InvalidReferenceError(f"immutable_tags {strays} are not among tags {tags}")
    engine = None
    if params["push"]:
        if not image_id:
            raise InvalidReferenceError("push needs image_id, the local image to push")
        if params["push_timeout"] <= 0:
            raise InvalidReferenceError("push_timeout must be more than 0 seconds")
        if not module.check_mode:  # check mode never talks to the engine
            engine = Engine(params["docker_host"], timeout=params["push_timeout"])
    client = RegistryClient(
        repository=repository,
        transport=open_url_transport(ca_cert=params["ca_cert"],
                                     validate_certs=params["validate_certs"],
                                     timeout=params["timeout"]),
        username=params["username"], password=params["password"],
        base_url=params["registry_url"], requests=result["requests"])
    result.update(repository=repository.name, registry_url=client.base_url)
    client.check_access()
    states = [read_tag(client, tag, params["platform"], labels=params["labels"] and i == 0)
              for i, tag in enumerate(tags)]
    result["tags"] = {state.tag: state.summary(image_id) for state in states}
    primary = states[0]
    result.update(image_id=primary.image_id, labels=primary.labels, push=[], unchanged=[],
                  moved=[])
    if image_id:
        plan = plan_push(repository, states, image_id, params["immutable_tags"])
        result.update(push=plan.push, unchanged=plan.unchanged, moved=plan.moved)
    result["pushed"] = []
    if params["push"] and image_id:
        result["changed"] = bool(result["push"])
        if result["push"] and engine is not None:
            auth = registry_auth(params["username"], params["password"],
                                 "https://index.docker.io/v1/" if repository.host == DOCKER_HUB
                                 else repository.host)
            states = push_tags(client, engine, repository, tags, image_id, result["push"],
                               auth, params["platform"], params["labels"], result["pushed"])
            result["tags"] = {state.tag: state.summary(image_id) for state in states}
            result["unchanged"] = [tag for tag in tags if tag not in result["push"]]
            primary = states[0]
            result.update(image_id=primary.image_id, labels=primary.labels)
    pinned = primary.exists and (image_id is None or primary.image_id == image_id)
    result["digest"] = primary.digest if pinned else None
    result["digest_ref"] = repository.pinned(primary.digest) if pinned else None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "repository": {"type": "str", "required": True},
            "tags": {"type": "list", "elements": "str", "required": True},
            "image_id": {"type": "str"},
            "immutable_tags": {"type": "list", "elements": "str", "default": []},
            "platform": {"type": "str"},
            "registry_url": {"type": "str"},
            "username": {"type": "str"},
            "password": {"type": "str", "no_log": True},
            "ca_cert": {"type": "path"},
            "validate_certs": {"type": "bool", "default": True},
            "timeout": {"type": "int", "default": 30},
            "labels": {"type": "bool", "default": True},
            "push": {"type": "bool", "default": False},
            "docker_host": {"type": "str"},
            "push_timeout": {"type": "int", "default": 600},
        },
        required_by={"password": "username"},
        supports_check_mode=True,
    )
    result: dict[str, Any] = {"changed": False, "repository": module.params["repository"],
                              "requests": []}
    what = f"{module.params['repository']}:{','.join(module.params['tags'])}"
    try:
        run(module, result)
    except InvalidReferenceError as exc:
        module.fail_json(msg=f"Invalid input for {what}: {exc}", **result)
    except ImmutableTagError as exc:
        module.fail_json(msg=f"Refusing to push {what}: {exc}", **result)
    except RegistryError as exc:
        module.fail_json(msg=f"Failed to read {what} from the registry ({exc})", **result)
    except EngineError as exc:
        module.fail_json(msg=f"Failed to push {what} ({exc})", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
