#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: release_session
short_description: Open and close a release - deploy lock and release record - in one call each
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Brackets one release of an application with the deploy lock of M(prodready.deploy.deploy_lock)
    and the release record of M(prodready.deploy.release_record), the same ConfigMaps with the
    same rules, in one module call at each end.
  - O(state=opened) takes the deploy lock for O(release_id) (refused, naming the holder, when
    another release holds it; unchanged when this release does - a re-run converges), reads
    the newest O(limit) records, and merges O(record) into this release's record together
    with C(started_at), C(outcome) and C(previous). A re-run keeps the C(started_at) and
    C(outcome) it finds, so a release that succeeded already changes nothing. It returns this
    release's record as it was (RV(existing)) and the newest succeeded release before it
    (RV(previous)) - what a rollback goes back to. When anything fails after the lock was
    taken, the lock is given back before the task fails.
  - O(state=closed) merges O(record) and O(outcome) into the record, writes a copy to
    O(artifacts_dir), and gives the lock back (only when this release holds it).
options:
  namespace:
    description: Namespace of the application; the lock and the records live there.
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
      - Id of the release; a DNS label (see M(prodready.deploy.release_record)).
    type: str
    required: true
  state:
    description:
      - V(opened) takes the lock and records the release as started.
      - V(closed) records the outcome and gives the lock back.
    type: str
    choices: [opened, closed]
    default: opened
  record:
    description:
      - Keys merged into the release's record at the top level (a key set to null is
        removed). With O(state=opened), C(started_at), C(outcome) and C(previous) are the
        module's to set.
    type: dict
    default: {}
  outcome:
    description: The release's outcome; required when O(state=closed).
    type: str
    choices: [succeeded, failed, rolled_back, rollback_failed]
  artifacts_dir:
    description:
      - With O(state=closed), a directory (created 0750 when missing) that gets a copy of the
        record as C(release-<release_id>.json), mode 0640. Unset, no copy.
    type: path
  holder:
    description:
      - Who takes the lock, shown to whoever finds it held. Defaults to C(<user>@<host>).
    type: str
  limit:
    description: With O(state=opened), how many of the newest records are read.
    type: int
    default: 200
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the lock and the records and reports what would happen; writes nothing.
  diff_mode:
    support: full
    details: The release record before and after, as JSON.
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: full
    details: Opening a release that is already recorded keeps its start and outcome; closing
      with the outcome it has writes nothing. The lock is taken and given back by the same
      run, so it is never reported as a change.
  platform:
    platforms: all
requirements:
  - kubernetes >= 24.2.0 (Python library)
notes:
  - Why a module - deploy.yml opened a release with three tasks (lock, query, record) and
    closed it with four (record, directory, copy, lock); each task costs Ansible's fixed
    overhead and the module's start-up, about a second here, so opening and closing took
    seven of them. One call each does the same requests.
  - The identity needs C(get), C(list), C(create), C(update) and C(delete) on ConfigMaps in
    the namespace.
seealso:
  - module: prodready.deploy.deploy_lock
  - module: prodready.deploy.release_record
"""

EXAMPLES = r"""
---
- name: Open the release
  prodready.deploy.release_session:
    namespace: shop
    app: web
    release_id: web-1-4-2
    record:
      version: 1.4.2
      approved_by: alice
  register: opened

- name: Close it as succeeded, with a copy of the record in the run's artifacts
  prodready.deploy.release_session:
    namespace: shop
    app: web
    release_id: web-1-4-2
    state: closed
    outcome: succeeded
    record:
      finished_at: "{{ now(utc=true, fmt='%Y-%m-%dT%H:%M:%SZ') }}"
    artifacts_dir: /var/lib/deploy/artifacts
"""

RETURN = r"""
record:
  description: The release's record after the call (what would be written, in check mode).
  returned: success
  type: dict
  sample: {"app": "web", "release_id": "web-1-4-2", "version": "1.4.2",
           "outcome": "in_progress", "started_at": "2026-11-27T10:00:00Z",
           "previous": "web-1-4-1"}
existing:
  description: With O(state=opened), the release's record as found before the call; null
    for a first run of the release.
  returned: state=opened
  type: dict
previous:
  description: With O(state=opened), the newest succeeded release other than this one; null
    when there is none.
  returned: state=opened
  type: dict
lock:
  description: The lock's data - taken or already held (V(opened)), or given back (V(closed);
    null when there was none).
  returned: success
  type: dict
artifact:
  description: Path of the record's copy in O(artifacts_dir).
  returned: state=closed and O(artifacts_dir) set, not in check mode
  type: str
  sample: /var/lib/deploy/artifacts/release-web-1-4-2.json
msg:
  description: What was done.
  returned: always
  type: str
requests:
  description: The API requests the module made, in order.
  returned: always
  type: list
  elements: str
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
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.record import (
    RecordError,
    record_name,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.session import (
    DEFAULT_LIMIT,
    OUTCOMES,
    run,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    ApiUnreachable,
    KubeApiError,
)

VERBS = {"opened": "open", "closed": "close"}


def main() -> None:
    argument_spec = {
        **AUTH_ARG_SPEC,
        "namespace": {"type": "str", "required": True},
        "app": {"type": "str", "required": True},
        "release_id": {"type": "str", "required": True},
        "state": {"type": "str", "default": "opened", "choices": ["opened", "closed"]},
        "record": {"type": "dict", "default": {}},
        "outcome": {"type": "str", "choices": list(OUTCOMES)},
        "artifacts_dir": {"type": "path"},
        "holder": {"type": "str"},
        "limit": {"type": "int", "default": DEFAULT_LIMIT},
    }
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec,
                              required_if=[("state", "closed", ["outcome"])],
                              supports_check_mode=True, check_pyyaml=False)
    params = module.params
    what = (f"{VERBS[params['state']]} release {params['release_id']} of"
            f" {params['namespace']}/{params['app']}")
    requests: list[str] = []
    result: dict[str, Any] = {"changed": False, "requests": requests}
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        outcome = run(lambda: connect(lambda: get_api_client(module=module), requests),
                      params["namespace"], params["app"], params["state"],
                      params["release_id"], params["holder"] or default_holder(), os.getpid(),
                      now, record=params["record"], outcome=params["outcome"],
                      artifacts_dir=params["artifacts_dir"], limit=params["limit"],
                      check_mode=module.check_mode)
    except InvalidInput as exc:
        module.fail_json(msg=f"Invalid option: {exc}", **result)
    except (LockError, RecordError) as exc:
        module.fail_json(msg=f"Cannot {what}: {exc}", **result)
    except (KubeApiError, ApiUnreachable, CoreException) as exc:
        module.fail_json(msg=f"Failed to {what} ({exc})", **result)
    except OSError as exc:
        module.fail_json(msg=f"Cannot {what}: writing the record's copy failed: {exc}"
                             " (artifacts_dir must be a writable directory)", **result)
    result.update(changed=outcome.changed, msg=outcome.msg, record=outcome.record,
                  lock=outcome.lock)
    if params["state"] == "opened":
        result.update(existing=outcome.existing, previous=outcome.previous)
    elif outcome.artifact:
        result["artifact"] = outcome.artifact
    if module._diff:
        header = (f"ConfigMap {params['namespace']}/"
                  f"{record_name(params['app'], params['release_id'])} release.json")
        result["diff"] = outcome.diff(header)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
