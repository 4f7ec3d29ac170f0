# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The release checklist's steps, folded from task results, and the report document.

The callback ``prodready.deploy.release_report`` turns each task result whose task carries a
``release_step`` variable into a ``TaskEvent``; ``Checklist`` folds them into one
``StepResult`` per step and adds the steps a play declared (``release_steps``) but never
reached; ``build_report`` makes the document the renderers (``render.py``) write.

A task with ``no_log`` gives its status, timing and name, never a value of its result: its
message is ``NO_LOG_MESSAGE``, whatever the (censored) result holds.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STATUSES = ("pass", "warn", "fail", "skipped")
# The worst status wins, for a step of several tasks and for the release.
SEVERITY = {"skipped": 0, "pass": 1, "warn": 2, "fail": 3}
NO_LOG_MESSAGE = "output hidden (no_log)"
NOT_REACHED = "not reached"
MESSAGE_LIMIT = 500

OK = "ok"
FAILED = "failed"
SKIPPED = "skipped"
UNREACHABLE = "unreachable"
OUTCOMES = (OK, FAILED, SKIPPED, UNREACHABLE)


class ReportInputError(ValueError):
    """A release_* variable has the wrong shape; the message names it."""


@dataclass
class TaskEvent:
    """One task's result on one host, as the callback saw it.

    ``result`` is the callback's result, already censored by Ansible for no_log tasks;
    ``include`` marks include_role/include_tasks, whose own ``ok`` result is no work.
    """

    step: str
    task: str
    outcome: str
    ended: float
    started: float | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
    warnings: Sequence[str] = ()
    no_log: bool = False
    ignored: bool = False
    rescued: bool = False
    include: bool = False

    @property
    def hidden(self) -> bool:
        return bool(self.no_log or self.result.get("_ansible_no_log"))


@dataclass
class StepResult:
    name: str
    status: str
    detail: str = ""
    tasks: int = 0
    changed: int = 0
    started: float | None = None
    finished: float | None = None
    rescued: bool = False

    @property
    def duration(self) -> float:
        if self.started is None or self.finished is None:
            return 0.0
        return round(max(0.0, self.finished - self.started), 3)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "duration": self.duration, "tasks": self.tasks, "changed": self.changed,
                "started": utc(self.started), "finished": utc(self.finished),
                "rescued": self.rescued}


def utc(timestamp: float | None) -> str | None:
    """ISO 8601 in UTC to the second (``2026-11-27T10:00:00Z``), or None."""
    if timestamp is None:
        return None
    moment = datetime.datetime.fromtimestamp(timestamp, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def truncate(text: Any, limit: int = MESSAGE_LIMIT) -> str:
    if not isinstance(text, str):
        text = json.dumps(text, default=str, sort_keys=True)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def failure_message(event: TaskEvent) -> str:
    """The result's ``msg`` (of the first failed loop item when the task has none), else its
    ``stderr``; at most MESSAGE_LIMIT characters."""
    if event.hidden:
        return NO_LOG_MESSAGE
    result = event.result
    message = result.get("msg")
    if not message:
        for item in result.get("results") or ():
            if isinstance(item, Mapping) and item.get("failed"):
                if item.get("_ansible_no_log"):
                    return NO_LOG_MESSAGE
                message = item.get("msg")
                if message:
                    break
    if not message:
        message = result.get("stderr") or ("host unreachable" if event.outcome == UNREACHABLE
                                           else "failed without a message")
    return truncate(message)


def skip_message(event: TaskEvent) -> str:
    if event.hidden:
        return NO_LOG_MESSAGE
    condition = event.result.get("false_condition")
    if condition:
        return truncate(f"condition false: {condition}")
    return truncate(event.result.get("skip_reason") or "skipped")


def warning_message(event: TaskEvent) -> str:
    if event.hidden:
        return NO_LOG_MESSAGE
    if event.ignored:
        return truncate(f"error ignored: {failure_message(event)}")
    return truncate(event.warnings[0] if event.warnings else "warning")


def count_text(tasks: int, changed: int) -> str:
    return f"{tasks} task{'' if tasks == 1 else 's'}, {changed} changed"


def summarize_step(name: str, events: Sequence[TaskEvent]) -> StepResult:
    """One step from its task results; see the module docstring for the rules."""
    counted = [e for e in events if not (e.include and e.outcome == OK)]
    starts = [e.started if e.started is not None else e.ended for e in events]
    step = StepResult(name, "pass", tasks=len(counted),
                      changed=sum(1 for e in counted if e.result.get("changed")),
                      started=min(starts, default=None),
                      finished=max((e.ended for e in events), default=None))
    failures = [e for e in counted if e.outcome in (FAILED, UNREACHABLE) and not e.ignored]
    warnings = [e for e in counted if e.ignored or (e.warnings and e.outcome != SKIPPED)]
    if failures:
        step.status = "fail"
        step.detail = f"{failures[0].task}: {failure_message(failures[0])}"
        step.rescued = all(e.rescued for e in failures)
    elif warnings:
        step.status = "warn"
        step.detail = f"{warnings[0].task}: {warning_message(warnings[0])}"
    elif counted and all(e.outcome == SKIPPED for e in counted):
        step.status = "skipped"
        step.detail = skip_message(counted[0])
    else:
        step.detail = count_text(step.tasks, step.changed)
    return step


class Checklist:
    """The steps of one playbook run, in the declared order, then in the order they ran."""

    def __init__(self) -> None:
        self._events: dict[str, list[TaskEvent]] = {}
        self._declared: list[str] = []
        self._skip_reasons: dict[str, str] = {}

    def record(self, event: TaskEvent) -> None:
        if event.outcome not in OUTCOMES:
            raise ValueError(f"unknown task outcome {event.outcome!r}")
        self._events.setdefault(event.step, []).append(event)

    def declare(self, steps: Any = None, skip_reasons: Any = None) -> None:
        """Add a play's ``release_steps`` (list of names) and ``release_skip_reasons``
        (step -> reason; an empty reason counts as none). Plays add to one checklist."""
        if steps is not None:
            if isinstance(steps, (str, bytes)) or not isinstance(steps, Iterable) or not all(
                    isinstance(s, str) and s for s in steps):
                raise ReportInputError(
                    f"release_steps must be a list of step names, got {truncate(steps, 80)}")
            self._declared.extend(s for s in steps if s not in self._declared)
        if skip_reasons is not None:
            if not isinstance(skip_reasons, Mapping):
                raise ReportInputError("release_skip_reasons must be a dict of step name -> "
                                       f"reason, got {truncate(skip_reasons, 80)}")
            self._skip_reasons.update(
                {str(k): str(v) for k, v in skip_reasons.items() if v not in (None, "")})

    def steps(self) -> list[StepResult]:
        """A step that never ran is skipped with its ``release_skip_reasons`` entry or "not
        reached"; that entry also explains a step whose every task was skipped."""
        names = self._declared + [n for n in self._events if n not in self._declared]
        results = []
        for name in names:
            reason = self._skip_reasons.get(name)
            events = self._events.get(name)
            if not events:
                results.append(StepResult(name, "skipped", truncate(reason or NOT_REACHED)))
                continue
            step = summarize_step(name, events)
            if step.status == "skipped" and reason:
                step.detail = truncate(reason)
            results.append(step)
        return results


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=SEVERITY.__getitem__, default="skipped")


def build_report(steps: Sequence[StepResult], started: float, finished: float,
                 release_id: Any = None, app: Any = None, run_failed: bool = False,
                 ) -> dict[str, Any]:
    """The report document (what release-report.json holds).

    ``outcome`` is the worst step status; ``run_failed`` (a host failed or was unreachable
    and no rescue caught it) makes it ``fail`` also when that happened outside every step.
    """
    outcome = worst(s.status for s in steps)
    if run_failed:
        outcome = "fail"
    return {
        "release_id": None if release_id is None else str(release_id),
        "app": None if app is None else str(app),
        "outcome": outcome,
        "run_failed": bool(run_failed),
        "started": utc(started),
        "finished": utc(finished),
        "duration": round(max(0.0, finished - started), 3),
        "summary": {status: sum(1 for s in steps if s.status == status) for status in STATUSES},
        "steps": [s.as_dict() for s in steps],
    }
