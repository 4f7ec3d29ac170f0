#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_record
short_description: Keep and query one JSON record per release of an application in Kubernetes
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Keeps what a release did - image, migrations, backups, gates, outcome, times - as one JSON
    document in the application's namespace, where it lives as long as the application. The
    record of a release is the key C(release.json) of the ConfigMap
    C(<app>-release-<release_id>), labelled C(app.kubernetes.io/name=<app>),
    C(app.kubernetes.io/managed-by=prodready.deploy) and C(prodready.deploy/release-id=<id>).
  - O(state=present) merges O(record) over the stored document, key by key at the top level
    (a key set to null is removed), and sets the keys C(app) and C(release_id). The
    ConfigMap is written only when the document changes, and replaced conditionally on the
    resourceVersion that was read; when someone else wrote it in between, the merge is done
    again on what they wrote.
  - O(state=query) returns a release's record, all the records newest first, and the newest
    succeeded record before it - the release to roll back to.
  - O(state=absent) removes the record of O(release_id).
  - Release ids and the size of the record are checked before any request to the API.
options:
  namespace:
    description: Namespace of the application; the records live there.
    type: str
    required: true
  app:
    description:
      - Name of the application, e.g. its Deployment's name.
      - Lowercase letters, digits, V(-) and V(.), at most 63 characters.
    type: str
    required: true
  release_id:
    description:
      - Id of the release.
      - A DNS label - lowercase letters, digits and V(-), starting and ending with a letter or
        digit, at most 63 characters (it is a label value) - and the ConfigMap name
        C(<app>-release-<release_id>) at most 253 characters. Anything else is refused before
        any request, so a version such as V(1.4.2) must become V(1-4-2).
      - Required when O(state=present) or O(state=absent).
      - With O(state=query), the release to return; when left out, the newest release (with
        O(outcome), if given).
    type: str
  state:
    description:
      - V(present) merges O(record) into the record of O(release_id).
      - V(absent) removes the record of O(release_id).
      - V(query) reads the records.
    type: str
    choices: [present, absent, query]
    default: present
  record:
    description:
      - The keys to set in the record, merged over the stored ones at the top level; a key
        set to null is removed from the record.
      - The keys C(app) and C(release_id) are set by the module; the record may leave them
        out or repeat the same values.
      - At most 900 KiB as JSON, stored record included (a ConfigMap holds at most 1 MiB).
      - Required when O(state=present).
      - The keys C(outcome) (e.g. V(succeeded)), C(started_at) and C(finished_at) (ISO 8601)
        are what O(state=query) sorts and filters by.
    type: dict
  outcome:
    description:
      - With O(state=query), only records whose C(outcome) key equals this are listed in
        RV(records), and when O(release_id) is left out RV(record) is the newest of them.
      - A record named by O(release_id) is returned whatever its outcome; RV(previous) is
        always the newest record with outcome V(succeeded) before RV(record).
    type: str
  limit:
    description: With O(state=query), the most records RV(records) lists.
    type: int
    default: 20
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the record, merges, and reports whether it would change and the diff;
      writes nothing. V(query) runs as usual.
  diff_mode:
    support: full
    details: The record's JSON before and after.
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: full
    details: Writing the same keys again, and removing a record that does not exist, change
      nothing.
  platform:
    platforms: all
requirements:
  - kubernetes >= 24.2.0 (Python library)
notes:
  - Why a module - M(kubernetes.core.k8s) replaces or strategic-merges a ConfigMap's data
    as whole strings; it cannot merge keys into a JSON document held in one data key, tell
    whether the document changed, nor query records by label and order them by the times
    they hold.
  - Newest means the latest C(finished_at) key of a record, else its C(started_at) key, else
    the ConfigMap's C(creationTimestamp); ties are broken by C(creationTimestamp). A record
    whose C(release.json) is not a JSON object is left out of a query with a warning.
  - The identity needs C(get), C(list), C(create), C(update) and C(delete) on ConfigMaps in
    the namespace.
seealso:
  - module: prodready.deploy.deploy_lock
  - module: prodready.deploy.k8s_rollback
  - module: kubernetes.core.k8s
"""

EXAMPLES = r"""
---
- name: Open the record of this release
  prodready.deploy.release_record:
    namespace: shop
    app: web
    release_id: web-1-4-2
    record:
      version: 1.4.2
      image: registry.example/web@sha256:4f1c...
      started_at: "{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ') }}"
      outcome: running

- name: Close it
  prodready.deploy.release_record:
    namespace: shop
    app: web
    release_id: web-1-4-2
    record:
      outcome: succeeded
      finished_at: "{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ') }}"
      error: null

- name: Find the release to roll back to
  prodready.deploy.release_record:
    namespace: shop
    app: web
    release_id: web-1-4-2
    state: query
  register: releases

- name: Roll back to it
  prodready.deploy.k8s_rollback:
    namespace: shop
    name: web
    release_id: "{{ releases.previous.release_id }}"
  when: releases.previous is not none

- name: The last ten succeeded releases
  prodready.deploy.release_record:
    namespace: shop
    app: web
    state: query
    outcome: succeeded
    limit: 10
    kubeconfig: /etc/deploy/kubeconfig
"""

RETURN = r"""
record:
  description:
    - V(present) - the record as stored after the merge (as it would be, in check mode).
    - V(absent) - the record removed; null when there was none (or it was not valid JSON).
    - V(query) - the record of O(release_id), or the newest record (with O(outcome), if
      given); null when there is none.
  returned: success
  type: dict
  sample: {"app": web, "release_id": web-1-4-2, "version": 1.4.2, "outcome": succeeded,
           "started_at": "2026-11-27T10:00:00Z", "finished_at": "2026-11-27T10:04:12Z"}
records:
  description: The records (with O(outcome), if given), newest first, at most O(limit).
  returned: when O(state=query)
  type: list
  elements: dict
  sample: [{"app": web, "release_id": web-1-4-2, "outcome": succeeded},
           {"app": web, "release_id": web-1-4-1, "outcome": failed}]
previous:
  description: The newest record with outcome V(succeeded) older than RV(record); null when
    there is none.
  returned: when O(state=query)
  type: dict
  sample: {"app": web, "release_id": web-1-4-0, "outcome": succeeded}
configmap:
  description: Name of the ConfigMap of RV(record); null when there is no record.
  returned: success
  type: str
  sample: web-release-web-1-4-2
msg:
  description: What was done or found.
  returned: always
  type: str
  sample: Updated the record of release web-1-4-2 in shop/web-release-web-1-4-2
requests:
  description: The API requests the module made, in order.
  returned: always
  type: list
  elements: str
  sample:
    - GET v1 ConfigMap shop/web-release-web-1-4-2
    - PUT v1 ConfigMap shop/web-release-web-1-4-2 (resourceVersion 48213)
"""

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
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.record import (
    DEFAULT_LIMIT,
    RecordError,
    run,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    ApiUnreachable,
    KubeApiError,
)

VERBS = {"present": "write", "absent": "remove", "query": "query"}


def main() -> None:
    argument_spec = {
        **AUTH_ARG_SPEC,
        "namespace": {"type": "str", "required": True},
        "app": {"type": "str", "required": True},
        "release_id": {"type": "str"},
        "state": {"type": "str", "default": "present", "choices": ["present", "absent", "query"]},
        "record": {"type": "dict"},
        "outcome": {"type": "str"},
        "limit": {"type": "int", "default": DEFAULT_LIMIT},
    }
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec,
                              required_if=[("state", "present", ["release_id", "record"]),
                                           ("state", "absent", ["release_id"])],
                              supports_check_mode=True, check_pyyaml=False)
    params = module.params
    state = params["state"]
    subject = (f"the release record of {params['release_id']}" if params["release_id"]
               else "the release records") + f" of {params['namespace']}/{params['app']}"
    requests: list[str] = []
    result: dict[str, Any] = {"changed": False, "requests": requests}
    try:
        outcome = run(lambda: connect(lambda: get_api_client(module=module), requests),
                      params["namespace"], params["app"], state,
                      release_id=params["release_id"], record=params["record"],
                      outcome=params["outcome"], limit=params["limit"],
                      check_mode=module.check_mode)
    except InvalidInput as exc:
        module.fail_json(msg=f"Invalid option: {exc}", **result)
    except RecordError as exc:
        module.fail_json(msg=f"Cannot {VERBS[state]} {subject}: {exc}", **result)
    except (KubeApiError, ApiUnreachable, CoreException) as exc:
        module.fail_json(msg=f"Failed to {VERBS[state]} {subject} ({exc})", **result)
    for skipped in outcome.skipped:
        module.warn(skipped)
    result.update(changed=outcome.changed, msg=outcome.msg, record=outcome.record,
                  configmap=outcome.name)
    if state == "query":
        result.update(records=outcome.records, previous=outcome.previous)
    elif module._diff:
        result["diff"] = outcome.diff(params["namespace"])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
