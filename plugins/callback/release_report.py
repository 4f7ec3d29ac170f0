# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: release_report
type: notification
short_description: The release checklist's evidence as JSON, JUnit XML and Markdown
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Groups the tasks of a playbook run into the steps of the release checklist and, at the
    end of the run (also when it failed), prints a table C(step | STATUS | duration | detail)
    and writes C(release-report.json), C(release-report.xml) (JUnit, one testcase per step)
    and C(release-report.md) (a Markdown table) into O(report_dir).
  - A step is named by the variable C(release_step) that the playbook sets on a block or on an
    C(include_role), C(import_role), C(include_tasks) or C(import_tasks) task (C(vars) of
    that block or task), so every task inside belongs to it. Tasks without C(release_step) are
    not reported. The name is used as written (a literal, not a template).
  - A step is C(fail) when one of its tasks failed or its host was unreachable, also when a
    C(rescue) section caught the failure (the report marks it C(rescued)); C(warn) when a task
    returned warnings or failed with C(ignore_errors); C(skipped) when every task was skipped
    (the detail is the first skip reason, such as the false C(when) condition); C(pass)
    otherwise. Its duration runs from the start of its first task to the end of its last.
    The detail of a failure is the result's C(msg), at most 500 characters.
  - A task with C(no_log) gives its status, timing and name, never a value of its result;
    its detail reads "output hidden (no_log)".
  - The play variable C(release_steps) (a list of step names) declares the whole checklist, in
    order; a declared step that never ran is C(skipped) with the detail C(not reached), or with
    its entry in the play variable C(release_skip_reasons) (a dict of step name to reason; an
    empty reason counts as none), which also explains a step whose tasks were all skipped.
  - The play variables C(release_id) and C(release_app), when set, name the release in the
    report. These play variables are templated at the end of the run with the variables of
    the first host that ran a task in the play, so facts set during the run count.
  - The release's outcome is the worst step status, and C(fail) when a host failed or was
    unreachable outside any step without a rescue catching it.
  - A run without any C(release_step) or C(release_steps) writes and prints nothing.
requirements:
  - Enabled in the configuration, for example with
    C(ANSIBLE_CALLBACKS_ENABLED=prodready.deploy.release_report) or C(callbacks_enabled) in the
    C([defaults]) section of C(ansible.cfg).
options:
  report_dir:
    description:
      - The directory for the report files, created with mode C(0750) when missing (an
        existing directory keeps its mode). The files are written whole (a temporary file
        renamed over the old one) with mode C(0640).
      - A relative path from the environment is relative to the working directory, one from
        C(ansible.cfg) to the directory of that file.
      - When not set, under ansible-runner (and so AWX and AAP) the artifact directory of the
        run, which ansible-runner exports as E(AWX_ISOLATED_DATA_DIR)
        (C(<private_data_dir>/artifacts/<ident>)); otherwise C(release-report) in the working
        directory. AWX removes a job's private data directory after the job, so set this
        option there to keep the files.
    type: path
    env:
      - name: PRODREADY_REPORT_DIR
    ini:
      - section: callback_release_report
        key: report_dir
notes:
  - The report's times are UTC. The JSON document holds C(release_id), C(app), C(outcome),
    C(run_failed), C(started), C(finished), C(duration) (seconds), C(summary) (steps per
    status) and C(steps), each with C(name), C(status), C(detail), C(duration), C(tasks)
    (task results, one per task and host; the include task itself is not counted),
    C(changed), C(started), C(finished) and C(rescued).
"""

import os
import time
from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleError
from ansible.plugins.callback import CallbackBase
from ansible.template import Templar

from ansible_collections.prodready.deploy.plugins.module_utils._report.files import (
    ReportWriteError,
    report_directory,
    write_reports,
)
from ansible_collections.prodready.deploy.plugins.module_utils._report.render import (
    render_table,
)
from ansible_collections.prodready.deploy.plugins.module_utils._report.steps import (
    FAILED,
    OK,
    SKIPPED,
    UNREACHABLE,
    Checklist,
    ReportInputError,
    TaskEvent,
    build_report,
)

STEP_VAR = "release_step"
PLAY_VARS = ("release_steps", "release_skip_reasons", "release_id", "release_app")
_INCLUDES = frozenset(f"{prefix}{name}" for prefix in ("", "ansible.builtin.", "ansible.legacy.")
                      for name in ("include_role", "include_tasks", "import_role",
                                   "import_tasks"))
_FALSE_WORDS = frozenset(("", "false", "no", "off", "0", "n", "f"))


def _new_or_old(result: Any, new: str, old: str) -> Any:
    # ansible-core 2.19 made the callback result's task, host, result and task_fields
    # public; the underscored names go away in 2.23, and older releases have only those.
    return getattr(result, new) if hasattr(result, new) else getattr(result, old)


def _step(task: Any) -> str | None:
    # get_vars() merges the vars of the task's parents: blocks, include_role/import_role
    # (its tasks' parents carry the include's vars) and include_tasks.
    value = task.get_vars().get(STEP_VAR)
    return None if value is None or value == "" else str(value)


def _no_log(task: Any, data: Mapping[str, Any], task_fields: Mapping[str, Any]) -> bool:
    if data.get("_ansible_no_log"):
        return True
    templated = task_fields.get("no_log")
    if isinstance(templated, bool):
        return templated
    value = task.no_log
    if value is None or isinstance(value, bool):
        return bool(value)
    # A template nobody resolved: hide rather than guess.
    return str(value).strip().lower() not in _FALSE_WORDS


def _warnings(result: Any, data: Mapping[str, Any]) -> list[str]:
    # On 2.19 the stdout callback pops "warnings" from the shared result dict before this
    # callback runs; the `warnings` property reads the unmodified return data.
    items = result.warnings if hasattr(result, "warnings") else data.get("warnings") or ()
    texts = []
    for item in items:
        event = getattr(item, "event", None)
        if isinstance(item, str):
            texts.append(item)
        elif event is not None:
            texts.append(str(getattr(event, "msg", item)))
        elif isinstance(item, Mapping):
            texts.append(str((item.get("event") or {}).get("msg") or item.get("msg") or item))
        else:
            texts.append(str(item))
    return texts


class CallbackModule(CallbackBase):
    """Collects the results of tasks with a release_step; reports at the end of the run."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "prodready.deploy.release_report"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, display: Any = None, options: Any = None) -> None:
        super().__init__(display=display, options=options)
        self._checklist = Checklist()
        # [play, first host that ran a task in it]: the play's release_* variables are read
        # at the end of the run, with that host's variables.
        self._plays: list[list[Any]] = []
        self._starts: dict[tuple[str, str], float] = {}
        self._started = time.time()

    def v2_playbook_on_start(self, playbook: Any) -> None:
        self._started = time.time()

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._plays.append([play, None])

    def v2_runner_on_start(self, host: Any, task: Any) -> None:
        if _step(task) is not None:
            self._starts[(host.name, task._uuid)] = time.time()

    def v2_runner_on_ok(self, result: Any) -> None:
        self._record(result, OK)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._record(result, FAILED, ignored=bool(ignore_errors))

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._record(result, SKIPPED)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        fields = _new_or_old(result, "task_fields", "_task_fields")
        self._record(result, UNREACHABLE, ignored=fields.get("ignore_unreachable") is True)

    def _record(self, result: Any, outcome: str, ignored: bool = False) -> None:
        ended = time.time()
        task = _new_or_old(result, "task", "_task")
        step = _step(task)
        if step is None:
            return
        host = _new_or_old(result, "host", "_host")
        data = _new_or_old(result, "result", "_result")
        fields = _new_or_old(result, "task_fields", "_task_fields")
        if self._plays and self._plays[-1][1] is None:
            self._plays[-1][1] = host
        no_log = _no_log(task, data, fields)
        self._checklist.record(TaskEvent(
            step=step, task=str(getattr(result, "task_name", "") or task.get_name()),
            outcome=outcome, ended=ended, started=self._starts.pop((host.name, task._uuid), None),
            result=data, warnings=() if no_log else _warnings(result, data), no_log=no_log,
            ignored=ignored,
            rescued=outcome in (FAILED, UNREACHABLE) and not ignored and self._rescued(host, task),
            include=task.action in _INCLUDES))

    def _rescued(self, host: Any, task: Any) -> bool:
        # Ansible decides whether a rescue section catches a failure before it calls the
        # callbacks, and then sets ansible_failed_task (only then) for the host.
        if not self._plays:
            return False
        play = self._plays[-1][0]
        manager = play.get_variable_manager()
        if manager is None:
            return False
        failed = manager.get_vars(play=play, host=host, include_hostvars=False).get(
            "ansible_failed_task")
        return isinstance(failed, Mapping) and failed.get("uuid") == task._uuid

    def _play_vars(self, play: Any, host: Any) -> dict[str, Any]:
        manager = play.get_variable_manager()
        variables = (manager.get_vars(play=play, host=host, include_hostvars=False)
                     if manager is not None else play.get_vars())
        templar = Templar(loader=play.get_loader(), variables=variables)
        values = {}
        for name in PLAY_VARS:
            if name in variables:
                try:
                    values[name] = templar.template(variables[name])
                except AnsibleError as exc:
                    self._display.warning(f"release_report: {name} of play {play.get_name()!r} "
                                          f"is left out of the report: {exc.message}")
        return values

    def v2_playbook_on_stats(self, stats: Any) -> None:
        finished = time.time()
        release_id = app = None
        for play, host in self._plays:
            values = self._play_vars(play, host)
            try:
                self._checklist.declare(values.get("release_steps"),
                                        values.get("release_skip_reasons"))
            except ReportInputError as exc:
                self._display.warning(f"release_report: {exc}")
            release_id = values.get("release_id", release_id)
            app = values.get("release_app", app)
        steps = self._checklist.steps()
        if not steps:
            self._display.vv("release_report: no release_step or release_steps in this run; "
                             "no report")
            return
        run_failed = any(summary["failures"] or summary["unreachable"]
                         for summary in map(stats.summarize, stats.processed))
        report = build_report(steps, self._started, finished, release_id=release_id, app=app,
                              run_failed=run_failed)
        self._display.display("")
        for line in render_table(report):
            self._display.display(line)
        directory = report_directory(self.get_option("report_dir"), os.environ, os.getcwd())
        try:
            paths = write_reports(directory, report)
        except ReportWriteError as exc:
            self._display.warning(f"The release report was not written: {exc}")
            return
        self._display.display(f"Release report: {', '.join(paths)}")
