# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_hashed_config
short_description: Secrets and ConfigMaps under content-hashed names, pruned when unused
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Creates each Secret and ConfigMap under its base name plus a hash of its content
    (C(web-secret-5f0c1d2e3a)), immutable, and returns the names for the pod template. A
    change of content is a new object under a new name, so the pod template changes and
    the pods restart; the earlier object stays while a ReplicaSet of the Deployment refers
    to it, so rolling the Deployment back to that revision (M(prodready.deploy.k8s_rollback),
    C(kubectl rollout undo)) brings back that release's settings and secrets too.
  - With O(prune=true), deletes the objects labelled C(prodready.io/content-of=<deployment>)
    that neither the current call wants nor any pod template of the Deployment or of a
    ReplicaSet its selector matches refers to. The controller keeps
    C(revisionHistoryLimit) ReplicaSets, so content lives as long as a revision one can
    roll back to. Objects without that label are never touched.
  - Why this module exists - M(kubernetes.core.k8s) applies objects under fixed names, so a
    release that changes a Secret overwrites what the previous revision's pods used, and a
    rollback of the Deployment does not bring it back; C(kustomize)'s hash suffix names the
    content but leaves the old objects behind for ever, with rotated credentials in them.
  - The module reads metadata only when it lists Secrets; it never reads or returns a
    Secret's data.
  - Needs get on deployments, list on replicasets (apps), and list, create and delete on
    secrets and configmaps in the namespace.
requirements:
  - kubernetes >= 24.2.0 (Python library)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Returns the names and what would be created and pruned; changes nothing.
  diff_mode:
    support: none
    details: Secret data is never shown; RV(created) and RV(pruned) name what changed.
  platform:
    platforms: posix
options:
  deployment:
    description:
      - Name of the Deployment whose content this is (at most 63 characters, as it is a label
        value). Its pod templates, and those of the ReplicaSets its selector matches, decide
        what is still in use. It need not exist yet.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the Deployment and of the objects.
    type: str
    required: true
  secrets:
    description:
      - Secrets to create, as base name to a mapping of key to text value.
      - The values are passed to the API server in C(stringData) and never returned.
      - Integers become their text; other values that are not text are refused.
    type: dict
    default: {}
  config_maps:
    description:
      - ConfigMaps to create, as base name to a mapping of key to text value.
      - Integers become their text; other values that are not text are refused.
    type: dict
    default: {}
  labels:
    description:
      - Labels for the created objects, besides C(prodready.io/content-of), which the module
        sets to O(deployment). Labels of an object that already exists are left as they are.
    type: dict
    default: {}
  prune:
    description:
      - Delete the labelled objects that no revision of the Deployment uses (see above).
    type: bool
    default: true
  prune_named:
    description:
      - Objects an earlier layout kept under fixed names (such as C(Secret/web-secret)), as
        C(Kind/name). With O(prune=true), each one that exists, carries every label in
        O(labels) and is neither wanted nor used by a revision of the Deployment is deleted
        like a labelled object; a revision that still refers to it keeps it.
    type: list
    elements: str
    default: []
notes:
  - Names are the base name, C(-), and the first 10 hex digits of the sha256 of O(deployment),
    the kind and the sorted data; the filter P(prodready.deploy.content_name#filter) gives the
    same name without the cluster. Two Deployments that ship the same base name get objects
    of their own.
  - The names appear in the pod templates, so anyone who can read Deployments, ReplicaSets or
    pods can test a guess of a Secret's whole content against 40 bits of its hash. That is
    no help against a strong secret; give weak ones no place in a Secret
    (M(prodready.deploy.env_check) refuses them).
  - Ansible masks every occurrence of a secret value in the result of a module with no_log
    options, so a short secret value (C(0), the application's name) may turn up as
    C(********) inside RV(names). Take the names from the filter for a pod template, as the
    role C(prodready.deploy.k8s_rollout) does.
  - Run one release of a Deployment at a time (deploy.yml holds the deploy lock), or the prune
    of one run could delete what a concurrent run created but has not applied yet. Pods and
    Jobs that no ReplicaSet of the Deployment owns are not consulted.
  - A Deployment whose selector cannot be written as a label query is not pruned (a warning
    says so).
"""

EXAMPLES = r"""
---
- name: Create the release's Secret and files under content-hashed names
  prodready.deploy.k8s_hashed_config:
    namespace: prod
    deployment: web
    secrets:
      web-secret: {DATABASE_URL: "{{ vault_database_url }}"}
    config_maps:
      web-files: {"ca.crt": "{{ lookup('ansible.builtin.file', 'ca.crt') }}"}
    labels:
      app.kubernetes.io/name: web
  register: web_config
  no_log: true  # the arguments hold the secret values

- name: Refer to them in the Deployment
  ansible.builtin.debug:
    msg: "envFrom secretRef {{ web_config.names.Secret['web-secret'] }}"
"""

RETURN = r"""
names:
  description:
    - The names to use, by kind, then base name.
    - Masked where a secret value occurs in them (see the notes); the filter
      P(prodready.deploy.content_name#filter) gives them unmasked.
  returned: success
  type: dict
  sample:
    Secret: {web-secret: web-secret-5f0c1d2e3a}
    ConfigMap: {web-files: web-files-0b9d8f7e6a}
created:
  description: The objects created (in check mode, that would be), as C(Kind/name).
  returned: success
  type: list
  elements: str
  sample: [Secret/web-secret-5f0c1d2e3a]
pruned:
  description: The objects deleted (in check mode, that would be), as C(Kind/name).
  returned: success
  type: list
  elements: str
  sample: [Secret/web-secret-77aa0e1f2c]
kept:
  description:
    - The labelled objects left in place - wanted now, or used by a revision - as C(Kind/name).
  returned: success
  type: list
  elements: str
  sample: [ConfigMap/web-files-0b9d8f7e6a, Secret/web-secret-5f0c1d2e3a]
"""

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
    CoreException,
)

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.content import (
    ClientContentApi,
    ConfigObjects,
    ContentError,
    normalize,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.rollout import RolloutError
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import start_client


def argument_spec() -> dict:
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        deployment={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        secrets={"type": "dict", "default": {}, "no_log": True},
        config_maps={"type": "dict", "default": {}},
        labels={"type": "dict", "default": {}},
        prune={"type": "bool", "default": True},
        prune_named={"type": "list", "elements": "str", "default": []},
    )
    return spec


def main() -> None:
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec(),
                              supports_check_mode=True, check_pyyaml=False)
    params = module.params
    subject = f"the content of Deployment {params['namespace']}/{params['deployment']}"
    objects = normalize({"Secret": params["secrets"], "ConfigMap": params["config_maps"]})
    labels = {str(key): str(value) for key, value in params["labels"].items()}
    # The client is made at the first request, after every input has been checked.
    api = ClientContentApi(lambda: start_client(lambda: get_api_client(module=module)))
    try:
        outcome = ConfigObjects(api, params["namespace"], params["deployment"], labels).apply(
            objects, prune=params["prune"], check_mode=module.check_mode,
            prune_named=params["prune_named"])
    except ContentError as exc:
        module.fail_json(msg=f"Refusing {subject}: {exc}", changed=False)
    except (CoreException, RolloutError) as exc:
        module.fail_json(msg=f"Cannot apply {subject}: {exc}", changed=False)
    for warning in outcome.warnings:
        module.warn(warning)
    module.exit_json(changed=outcome.changed, **outcome.to_dict())


if __name__ == "__main__":
    main()
