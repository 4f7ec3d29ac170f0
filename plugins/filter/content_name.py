# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: content_name
short_description: The content-hashed name k8s_hashed_config gives a Secret or ConfigMap
version_added: 0.1.0
author: prodready.deploy contributors
description:
  - Returns the name M(prodready.deploy.k8s_hashed_config) creates for this data - the base
    name, C(-), and 10 hex digits of the sha256 of the Deployment's name, the kind and the
    sorted data - without asking the cluster, so a pod template can name it.
  - Use it for the names of Secrets rather than the module's C(names) result - Ansible masks
    every occurrence of a secret value in a no_log module's result, so a short secret value
    (C(0), the application's name) can turn up as C(********) inside a returned name.
  - Integers become their text, as the module takes them; other values that are not text fail
    with a message that names the key, never the value.
options:
  _input:
    description: The data, key to text.
    type: dict
    required: true
  deployment:
    description: The Deployment the content belongs to (the module's O(deployment)).
    type: string
    required: true
  base:
    description: The base name (a key of the module's O(secrets) or O(config_maps)).
    type: string
    required: true
  kind:
    description: C(Secret) or C(ConfigMap).
    type: string
    default: Secret
seealso:
  - module: prodready.deploy.k8s_hashed_config
"""

EXAMPLES = r"""
---
- name: Refer to the Secret that k8s_hashed_config makes for web
  ansible.builtin.set_fact:
    web_secret_name: "{{ web_secret_env | prodready.deploy.content_name('web', 'web-secret') }}"

# {'K': 'v'} | prodready.deploy.content_name('web', 'web-secret')
# => 'web-secret-' followed by 10 hex digits, the same for the same data in any key order
"""

RETURN = r"""
_value:
  description: The name, C(<base>-<10 hex digits>).
  type: string
"""

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.content import (
    KINDS,
    check_inputs,
    hashed_name,
    normalize,
)


def content_name_filter(data: Any, deployment: str, base: str, kind: str = "Secret") -> str:
    if kind not in KINDS:
        raise AnsibleFilterError(f"content_name: kind must be one of {', '.join(KINDS)},"
                                 f" not {kind!r}")
    if not isinstance(data, dict):
        raise AnsibleFilterError(f"content_name: the data of {kind} {base} must be a mapping"
                                 f" of key to text, not a {type(data).__name__}")
    objects = normalize({kind: {base: dict(data)}})
    problems = check_inputs(objects, str(deployment))
    if problems:
        raise AnsibleFilterError("content_name: " + "; ".join(problems))
    return hashed_name(str(deployment), base, kind, objects[kind][base])


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"content_name": content_name_filter}
