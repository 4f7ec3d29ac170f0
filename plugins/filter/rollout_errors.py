# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: rollout_errors
short_description: Every problem with a rollout's inputs, before anything is applied
version_added: 0.1.0
author: prodready.deploy contributors
description:
  - Checks the inputs of the role
    C(prodready.deploy.k8s_rollout) and returns one sentence per problem, naming the input,
    what is wrong and what to give instead. An empty list means the inputs are usable.
  - Checks that the namespace and application name are DNS labels, that the image is pinned
    by digest, that the release id can be a label value, that replicas is a whole number,
    that resource requests and limits are Kubernetes quantities and no request exceeds its
    limit, that surge and unavailability allow progress, that environment variable names are
    valid, and that probe paths start with a slash.
  - Secret values are never part of a message; only their keys are.
options:
  _input:
    description:
      - The inputs, keyed without the prefix - C(namespace), C(app), C(image), C(release_id),
        C(replicas), C(resources), C(max_surge), C(max_unavailable), C(env), C(secret_env),
        C(readiness_path), C(liveness_path).
    type: dict
    required: true
  prefix:
    description:
      - Put before each key in the messages, so that they name the variable the user set.
    type: str
    default: k8s_rollout_
"""

EXAMPLES = r"""
---
- name: Refuse bad inputs before anything is applied
  ansible.builtin.fail:
    msg: "{{ problems | join('; ') }}"
  vars:
    problems: "{{ {'namespace': 'shop', 'app': 'web', 'image': 'registry/web:1.2',
                   'release_id': 'r42', 'replicas': 2} | prodready.deploy.rollout_errors }}"
  when: problems | length > 0
"""

RETURN = r"""
_value:
  description: One message per problem; empty when the inputs are usable.
  type: list
  elements: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.inputs import (
    rollout_input_errors,
)


def rollout_errors(inputs: Any, prefix: str = "k8s_rollout_") -> list[str]:
    if not isinstance(inputs, dict):
        raise AnsibleFilterError(
            f"prodready.deploy.rollout_errors: expected a dict of inputs, got "
            f"{type(inputs).__name__}")
    return rollout_input_errors(inputs, prefix=prefix)


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"rollout_errors": rollout_errors}
