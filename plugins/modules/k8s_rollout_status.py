# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: k8s_rollout_status
short_description: Wait for a Deployment's rollout and fail within seconds when it goes bad
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Watches the rollout of a Kubernetes Deployment until it is complete, and fails as soon as
    the pods of the new ReplicaSet show that it cannot complete.
  - Why this module exists - M(kubernetes.core.k8s) with O(kubernetes.core.k8s#module:wait=true)
    and C(kubectl rollout status) only call a rollout failed when the Deployment's progress
    deadline passes (C(progressDeadlineSeconds), 600 seconds unless set), so a release whose
    container crashes at start or whose image does not exist keeps a pipeline waiting for ten
    minutes. This module reads the state of the new pods and decides within seconds.
  - The rollout has failed when a container of a new pod is waiting with a reason in
    O(fail_reasons) (such as C(CrashLoopBackOff) or C(ImagePullBackOff)); when a container
    was C(OOMKilled); when a container has exited with a non-zero code O(crash_threshold) times,
    even before the kubelet shows C(CrashLoopBackOff); when a running container has not become
    ready O(ready_timeout) seconds after it started; when a pod has been unschedulable, or the
    new ReplicaSet unable to create pods (C(FailedCreate)), for O(schedule_timeout) seconds;
    when the Deployment's progress deadline has passed; when the Deployment is paused before its
    rollout completed; and when the rollout is not complete after O(timeout) seconds.
  - The rollout is complete when the controller has observed the Deployment's current
    generation and every desired replica is updated and available, with no old replica left.
    A Deployment with 0 replicas is complete at once; a paused one only when its current
    template is already rolled out.
  - On failure the result names the pod and container, the reason, the exit code and restart
    count, the last events of the pod and the last lines of the container's log (of the previous
    instance when the container restarted). The task fails with a message that names the
    Deployment, the pod, the container, the reason, the exit code, the restart count and the
    most telling line of the log, and returns every field below, so a C(rescue) block can
    record them.
  - Needs read access to deployments and replicasets (apps), and to pods, pods/log and events
    in the namespace. It changes nothing.
  - Times are measured against the API server's clock (its C(Date) header), so a skewed clock
    on the controller does not shorten or lengthen O(ready_timeout) and O(schedule_timeout).
requirements:
  - kubernetes >= 24.2.0 (Python library)
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads, so it watches the rollout in check mode exactly as in a
      normal run.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  name:
    description:
      - Name of the Deployment.
    type: str
    required: true
  namespace:
    description:
      - Namespace of the Deployment.
    type: str
    required: true
  timeout:
    description:
      - Seconds to watch before giving up; the result is then a failure with reason C(Timeout).
    type: float
    default: 600
  poll_interval:
    description:
      - Seconds between two reads of the Deployment, its ReplicaSets and the new pods. Each
        read is three list calls; the short default lets a rollback or a fast rollout end as
        soon as the last pod is available. Raise it for Deployments with thousands of pods.
    type: float
    default: 0.25
  api_grace:
    description:
      - Seconds the Kubernetes API may stay unreachable or answer 429/5xx once the Deployment
        has been read (an API server restart, a control-plane failover) before the watch
        fails. Meanwhile the watcher polls once a second and the timeline notes the outage
        and its end; an outage under way when O(timeout) runs out may extend the watch by up
        to O(api_grace). A first read that fails fails at once - that is a bad address or bad
        credentials, not an outage.
    type: float
    default: 30
  ready_timeout:
    description:
      - Seconds a running container of a new pod may take to become ready before the rollout
        fails with reason C(ReadinessTimeout). Counted from the container's start, so a
        container that restarts gets the time again (and counts toward O(crash_threshold)).
    type: float
    default: 120
  crash_threshold:
    description:
      - The number of times a container of a new pod may terminate with a non-zero exit code
        before the rollout fails with reason C(CrashThresholdReached) (counted from its
        C(restartCount)). V(1) fails at the first crash.
    type: int
    default: 2
  schedule_timeout:
    description:
      - Seconds a new pod may stay unschedulable (reason C(Unschedulable)), or the new
        ReplicaSet unable to create pods (reason C(FailedCreate), such as a missing
        ServiceAccount or an exhausted quota), before the rollout fails.
    type: float
    default: 60
  fail_reasons:
    description:
      - Waiting reasons of a container of a new pod that fail the rollout at once.
      - Give the whole list; it replaces the default.
    type: list
    elements: str
    default:
      - CrashLoopBackOff
      - ImagePullBackOff
      - ErrImagePull
      - CreateContainerConfigError
      - CreateContainerError
      - InvalidImageName
      - RunContainerError
  event_lines:
    description:
      - On failure, how many of the latest events of the failing pod to return in
        RV(failure.events). V(0) reads no events.
    type: int
    default: 10
  log_lines:
    description:
      - On failure, how many of the last lines of the failing container's log to return in
        RV(failure.logs). V(0) reads no log.
      - When those lines hold no exception line but the log does higher up (a worker's
        exception above its server's shutdown traceback), the lines ending at that exception
        come first, then a C([... N lines left out ...]) line, then the end of the log. Up to
        ten times O(log_lines) lines (at least 200) are read to find it.
    type: int
    default: 20
notes:
  - The pods of kwok-simulated nodes have no logs; the result then says why in
    RV(failure.logs_error) and the rollout's verdict is unchanged.
seealso:
  - module: kubernetes.core.k8s
  - module: kubernetes.core.k8s_info
"""

EXAMPLES = r"""
---
- name: Roll out the new image
  kubernetes.core.k8s:
    state: present
    namespace: prod
    definition: "{{ lookup('ansible.builtin.template', 'deployment.yml.j2') | from_yaml }}"

- name: Wait for the rollout and fail fast when it goes bad
  block:
    - name: Watch the rollout of web
      prodready.deploy.k8s_rollout_status:
        name: web
        namespace: prod
        timeout: 300
        ready_timeout: 60
      register: web_rollout

    - name: Show what was rolled out
      ansible.builtin.debug:
        msg: >-
          revision {{ web_rollout.revision }} ({{ web_rollout.image_digests | join(', ') }})
          replaced revision {{ web_rollout.previous_revision }} in {{ web_rollout.elapsed }} s
  rescue:
    - name: Record why the rollout failed
      ansible.builtin.copy:
        dest: "/var/log/releases/{{ release_id }}-rollout.json"
        content: "{{ web_rollout | to_nice_json }}"
        mode: "0640"
      delegate_to: localhost

    - name: Fail with the reason
      ansible.builtin.fail:
        msg: "{{ web_rollout.msg }}"
"""

RETURN = r"""
status:
  description: C(complete), or C(failed) (the task then fails).
  returned: when the Deployment could be read
  type: str
  sample: complete
deployment:
  description: Name of the Deployment.
  returned: when the Deployment could be read
  type: str
  sample: web
namespace:
  description: Namespace of the Deployment.
  returned: when the Deployment could be read
  type: str
  sample: prod
revision:
  description:
    - Revision (C(deployment.kubernetes.io/revision)) of the new ReplicaSet, the one of the
      Deployment's current pod template.
    - V(null) when the ReplicaSet does not exist yet (for example a paused Deployment).
  returned: when the Deployment could be read
  type: int
  sample: 7
previous_revision:
  description:
    - The revision the rollout replaces, for a rollback - the highest revision below the new one
      that still had replicas when the watch began, else the highest revision below it.
    - V(null) for a first rollout.
  returned: when the Deployment could be read
  type: int
  sample: 6
new_replicaset:
  description: Name of the new ReplicaSet, V(null) when it does not exist yet.
  returned: when the Deployment could be read
  type: str
  sample: web-7d9c5b8f4d
images:
  description: Images of the pod template's containers (init containers first).
  returned: when the Deployment could be read
  type: list
  elements: str
  sample: [registry.example.com/web:1.4.2]
image_digests:
  description:
    - Digest-pinned references C(repository@sha256:...) of what the new pods run, one per
      container whose digest is known - the C(imageID) the kubelet reports when it names a
      repository digest, else the container's image when it is pinned by digest.
    - Containers whose digest is not known (an image pinned by tag whose pod has not pulled it
      yet, or a runtime that reports only a local image ID) are left out.
  returned: when the Deployment could be read
  type: list
  elements: str
  sample:
    - reg.example/web@sha256:9f0c1d2e3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d
ready_pods:
  description:
    - The new ReplicaSet's pods that were Ready, addressed and not being deleted when the watch
      ended - C(name) and C(ip). A check of the release can go to them at once instead of
      listing the pods again.
  returned: when the Deployment could be read
  type: list
  elements: dict
  sample: [{"name": web-6c9f7d8b5d-x2x4q, "ip": 10.244.0.17}]
replicas:
  description: The Deployment's replicas when the watch ended.
  returned: when the Deployment could be read
  type: dict
  contains:
    desired:
      description: C(spec.replicas).
      type: int
    updated:
      description: C(status.updatedReplicas), replicas of the current template.
      type: int
    ready:
      description: C(status.readyReplicas), of every revision.
      type: int
    available:
      description: C(status.availableReplicas), of every revision.
      type: int
  sample: {desired: 3, updated: 3, ready: 3, available: 3}
elapsed:
  description: Seconds the watch took.
  returned: when the Deployment could be read
  type: float
  sample: 4.212
polls:
  description: How many times the Deployment, its ReplicaSets and its pods were read.
  returned: when the Deployment could be read
  type: int
  sample: 5
failure:
  description: Why the rollout failed; V(null) when it is complete.
  returned: when the Deployment could be read
  type: dict
  contains:
    reason:
      description:
        - A waiting reason of O(fail_reasons), or C(OOMKilled), C(CrashThresholdReached),
          C(ReadinessTimeout), C(Unschedulable), C(FailedCreate), C(ProgressDeadlineExceeded),
          C(Paused) or C(Timeout).
      type: str
      sample: CrashLoopBackOff
    message:
      description: The API's message for that state, or this module's explanation.
      type: str
    pod:
      description:
        - The failing pod; for C(ProgressDeadlineExceeded) and C(Timeout) the first new pod that
          is not ready. V(null) when no pod is involved.
      type: str
    container:
      description: The failing container, V(null) when none is involved.
      type: str
    image:
      description: The failing container's image.
      type: str
    exit_code:
      description: Exit code of the container's last termination, V(null) if it never exited.
      type: int
    restart_count:
      description: The container's C(restartCount).
      type: int
    hints:
      description: What to check next.
      type: list
      elements: str
    events:
      description:
        - The last O(event_lines) events of the failing pod (or of the ReplicaSet or Deployment
          when no pod is involved), oldest first, one line each - time, type, reason, message
          and, for a repeated event, its count such as C(x3) in brackets.
      type: list
      elements: str
    events_error:
      description: Why RV(failure.events) is empty when the events could not be read.
      type: str
    logs:
      description:
        - The last O(log_lines) lines of the failing container's log, of the previous instance
          when the container has restarted; led by the lines ending at the exception that
          explains the crash when the last lines hold none (see O(log_lines)).
      type: list
      elements: str
    logs_error:
      description:
        - Why RV(failure.logs) is empty - C(logs unavailable) and the cause (the container never
          started, the node serves no logs, access denied).
      type: str
  sample:
    reason: CrashLoopBackOff
    message: back-off 10s restarting failed container=app pod=web-7d9c5b8f4d-x2x8q_prod(...)
    pod: web-7d9c5b8f4d-x2x8q
    container: app
    image: registry.example.com/web:1.4.2
    exit_code: 1
    restart_count: 2
    hints: ["the container exits soon after it starts: its last log lines say why"]
    events: ["2026-11-27T18:24:53Z Warning BackOff: Back-off restarting failed container app"]
    events_error: null
    logs: ["KeyError: 'DATABASE_URL'"]
    logs_error: null
timeline:
  description:
    - What the watch saw, in order - entries with C(t) (seconds since the start) and C(event).
    - At most 100 entries; past that the middle ones are left out and one entry says how many.
  returned: when the Deployment could be read
  type: list
  elements: dict
  sample:
    - {t: 0.0, event: "watching Deployment prod/web (generation 8, 3 replicas desired)"}
    - {t: 0.0, event: "new ReplicaSet web-7d9c5b8f4d (revision 7)"}
    - {t: 0.0, event: "3/3 ready, 1 updated, 3 available, 3 old pending termination"}
    - {t: 2.03, event: "pod web-7d9c5b8f4d-x2x8q CrashLoopBackOff"}
    - {t: 2.03, event: "rollout failed: CrashLoopBackOff"}
"""

import copy

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import (
    CoreException,
)

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.rollout import (
    DEFAULT_FAIL_REASONS,
    Policy,
    RolloutError,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import (
    ClientApi,
    WatchOptions,
    start_client,
    watch,
)


def argument_spec() -> dict:
    spec = copy.deepcopy(AUTH_ARG_SPEC)
    spec.update(
        name={"type": "str", "required": True},
        namespace={"type": "str", "required": True},
        timeout={"type": "float", "default": 600},
        poll_interval={"type": "float", "default": 0.25},
        api_grace={"type": "float", "default": 30},
        ready_timeout={"type": "float", "default": 120},
        crash_threshold={"type": "int", "default": 2},
        schedule_timeout={"type": "float", "default": 60},
        fail_reasons={"type": "list", "elements": "str", "default": list(DEFAULT_FAIL_REASONS)},
        event_lines={"type": "int", "default": 10},
        log_lines={"type": "int", "default": 20},
    )
    return spec


def main() -> None:
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec(),
                              supports_check_mode=True, check_pyyaml=False)
    params = module.params
    subject = f"Deployment {params['namespace']}/{params['name']}"
    try:
        options = WatchOptions(
            timeout=params["timeout"],
            poll_interval=params["poll_interval"],
            api_grace=params["api_grace"],
            event_lines=params["event_lines"],
            log_lines=params["log_lines"],
            policy=Policy(ready_timeout=params["ready_timeout"],
                          crash_threshold=params["crash_threshold"],
                          schedule_timeout=params["schedule_timeout"],
                          fail_reasons=frozenset(params["fail_reasons"])),
        )
    except RolloutError as exc:
        module.fail_json(msg=f"Invalid option: {exc}", changed=False)
    try:
        api = ClientApi(start_client(lambda: get_api_client(module=module)))
    except (CoreException, RolloutError) as exc:  # RolloutError: the client's start-up failed
        module.fail_json(msg=f"Cannot watch {subject}: {exc}", changed=False)
    try:
        result = watch(api, params["namespace"], params["name"], options)
    except RolloutError as exc:
        module.fail_json(msg=str(exc), changed=False)
    if result.failed:
        module.fail_json(msg=result.message, changed=False, **result.to_dict())
    module.exit_json(changed=False, **result.to_dict())


if __name__ == "__main__":
    main()
