#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: deploy_lock
short_description: Take, release or break the deploy lock of an application in Kubernetes
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Makes sure only one deploy of an application runs at a time. The lock is the ConfigMap
    C(<app>-deploy-lock) in the application's namespace, labelled
    C(app.kubernetes.io/name=<app>) and C(app.kubernetes.io/managed-by=prodready.deploy);
    its data names the holder - C(release_id), C(holder) (user@host), C(pid) and
    C(acquired_at) (UTC, ISO 8601).
  - O(state=acquired) creates the ConfigMap with one POST, which the API server refuses with
    409 AlreadyExists when it exists, so two deploys can never both hold the lock. When the
    same O(release_id) holds it already, the task succeeds unchanged - a re-run of a release
    whose earlier run died converges. When another release holds it, the task fails naming
    that release, its holder, its pid and since when, and how to break the lock.
  - O(state=released) deletes the lock only when O(release_id) holds it; a lock held by
    another release is never deleted (the task fails naming it), and no lock is no change.
  - O(state=broken) deletes whatever lock there is - for a deploy that died holding it - and
    returns what it held.
  - Releasing and breaking delete exactly the lock that was read (a DELETE conditional on its
    uid and resourceVersion), so a lock that changed hands in between is left in place and the
    task fails.
options:
  namespace:
    description: Namespace of the application; the lock lives there.
    type: str
    required: true
  app:
    description:
      - Name of the application, e.g. its Deployment's name. The lock is
        C(<app>-deploy-lock).
      - Lowercase letters, digits, V(-) and V(.), at most 63 characters.
    type: str
    required: true
  release_id:
    description:
      - Id of the release that takes or releases the lock.
      - Required when O(state=acquired) or O(state=released); ignored when O(state=broken).
    type: str
  state:
    description:
      - V(acquired) takes the lock for O(release_id).
      - V(released) gives it up, when O(release_id) holds it.
      - V(broken) removes it, whoever holds it.
    type: str
    choices: [acquired, released, broken]
    default: acquired
  holder:
    description:
      - Who takes the lock, shown to whoever finds it held.
      - Defaults to C(<user>@<host>) of the machine the module runs on.
    type: str
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the lock and reports what would happen (and fails where a real run would);
      writes nothing.
  diff_mode:
    support: full
    details: The lock's data before and after, as JSON.
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: full
    details: Acquiring a lock the same release holds, and releasing or breaking no lock, change
      nothing. The lock data of a first acquire records the time and pid of that run.
  platform:
    platforms: all
requirements:
  - kubernetes >= 24.2.0 (Python library)
notes:
  - Why a module - M(kubernetes.core.k8s) with O(kubernetes.core.k8s#module:state=present)
    creates an object or updates the one that exists, so two deploys would both succeed in
    "taking" the lock; it cannot create only if absent and report who holds it, nor delete
    only when the object holds a given value.
  - The identity needs C(get), C(create) and C(delete) on ConfigMaps in the namespace.
  - C(pid) is the process id of the module run that took the lock, on the host named in
    C(holder); it is there to find that run in logs, not to tell whether it still runs.
seealso:
  - module: prodready.deploy.release_record
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
---
- name: Take the deploy lock for this release
  prodready.deploy.deploy_lock:
    namespace: shop
    app: web
    release_id: web-1-4-2
  register: lock

- name: Give the deploy lock up when the release is done
  prodready.deploy.deploy_lock:
    namespace: shop
    app: web
    release_id: web-1-4-2
    state: released

- name: Break the lock a dead deploy left behind
  prodready.deploy.deploy_lock:
    namespace: shop
    app: web
    state: broken
    kubeconfig: /etc/deploy/kubeconfig
  register: broken

- name: Say whose lock was broken
  ansible.builtin.debug:
    msg: "Broke the lock of {{ broken.lock.release_id }} held by {{ broken.lock.holder }}"
  when: broken is changed
"""

RETURN = r"""
lock:
  description:
    - The lock's data - the lock taken or found held by the same release (V(acquired)), the
      lock released (V(released)), or the lock broken (V(broken)).
    - Null when there was no lock to release or break.
  returned: success
  type: dict
  contains:
    release_id:
      description: The release that holds (held) the lock.
      type: str
      sample: web-1-4-2
    holder:
      description: Who took it, C(<user>@<host>) unless O(holder) said otherwise.
      type: str
      sample: deploy@ci-runner-3
    pid:
      description: Process id of the module run that took it, as a string.
      type: str
      sample: "48213"
    acquired_at:
      description: When it was taken, UTC, ISO 8601.
      type: str
      sample: "2026-11-27T10:00:00Z"
msg:
  description: What was done, or why nothing was.
  returned: always
  type: str
  sample: "Acquired the deploy lock shop/web-deploy-lock for release web-1-4-2 (holder
    deploy@ci-runner-3, pid 48213, since 2026-11-27T10:00:00Z)"
requests:
  description: The API requests the module made, in order.
  returned: always
  type: list
  elements: str
  sample:
    - GET v1 ConfigMap shop/web-deploy-lock
    - POST v1 ConfigMap shop/web-deploy-lock
"""

import datetime
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
    CoreException,
)

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    InvalidInput,
    connect,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.lock import (
    LockError,
    default_holder,
    lock_name,
    run,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    ApiUnreachable,
    KubeApiError,
)

VERBS = {"acquired": "acquire", "released": "release", "broken": "break"}


def main() -> None:
    argument_spec = {
        **AUTH_ARG_SPEC,
        "namespace": {"type": "str", "required": True},
        "app": {"type": "str", "required": True},
        "release_id": {"type": "str"},
        "state": {"type": "str", "default": "acquired",
                  "choices": ["acquired", "released", "broken"]},
        "holder": {"type": "str"},
    }
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec,
                              required_if=[("state", "acquired", ["release_id"]),
                                           ("state", "released", ["release_id"])],
                              supports_check_mode=True, check_pyyaml=False)
    params = module.params
    ref = f"{params['namespace']}/{lock_name(params['app'])}"
    what = f"{VERBS[params['state']]} the deploy lock {ref}"
    requests: list[str] = []
    result: dict[str, Any] = {"changed": False, "requests": requests}
    acquired_at = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        outcome = run(lambda: connect(lambda: get_api_client(module=module), requests),
                      params["namespace"], params["app"], params["state"],
                      params["release_id"], params["holder"] or default_holder(), os.getpid(),
                      acquired_at, check_mode=module.check_mode)
    except InvalidInput as exc:
        module.fail_json(msg=f"Invalid option: {exc}", **result)
    except LockError as exc:
        module.fail_json(msg=f"Cannot {what}: {exc}", **result)
    except (KubeApiError, ApiUnreachable, CoreException) as exc:
        module.fail_json(msg=f"Failed to {what} ({exc})", **result)
    result.update(changed=outcome.changed, lock=outcome.lock, msg=outcome.msg)
    if module._diff:
        result["diff"] = outcome.diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
