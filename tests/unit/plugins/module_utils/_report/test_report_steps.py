# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release report's steps: status rules, no_log, declared steps, the report document."""

from __future__ import annotations

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._report.steps import (
    NO_LOG_MESSAGE,
    Checklist,
    ReportInputError,
    StepResult,
    TaskEvent,
    build_report,
    summarize_step,
    utc,
)

CANARY = "canary-steps-5b0e"


def ev(outcome: str = "ok", task: str = "t", **kwargs) -> TaskEvent:
    kwargs.setdefault("ended", 100.0)
    return TaskEvent(step=kwargs.pop("step", "s"), task=task, outcome=outcome, **kwargs)


@pytest.mark.parametrize(("events", "status", "detail", "tasks", "rescued"), [
    ([ev(result={"changed": True}), ev(task="u")], "pass", "2 tasks, 1 changed", 2, False),
    ([ev(), ev("failed", "u", result={"msg": "boom"})], "fail", "u: boom", 2, False),
    ([ev("failed", result={"msg": "boom"}, rescued=True), ev(task="rescue")],
     "fail", "t: boom", 2, True),
    ([ev("failed", result={"msg": "a"}, rescued=True), ev("failed", "u", result={"msg": "b"})],
     "fail", "t: a", 2, False),
    ([ev("unreachable", result={"msg": "ssh: no route"})], "fail", "t: ssh: no route", 1, False),
    ([ev("unreachable")], "fail", "t: host unreachable", 1, False),
    ([ev("failed", result={"stderr": "E: no disk"})], "fail", "t: E: no disk", 1, False),
    ([ev("failed", result={})], "fail", "t: failed without a message", 1, False),
    ([ev("failed", result={"msg": {"code": 3}})], "fail", 't: {"code": 3}', 1, False),
    ([ev("failed", result={"results": [{"msg": "fine"}, {"failed": True, "msg": "item 2"}]})],
     "fail", "t: item 2", 1, False),
    ([ev("failed", result={"msg": "boom"}), ev("ok", "u", warnings=["careful"])],
     "fail", "t: boom", 2, False),
    ([ev(), ev("ok", "u", warnings=["disk 91% full", "second"])],
     "warn", "u: disk 91% full", 2, False),
    ([ev("failed", result={"msg": "boom"}, ignored=True), ev()],
     "warn", "t: error ignored: boom", 2, False),
    ([ev("skipped", result={"false_condition": "gate | bool", "skip_reason": "Conditional"}),
      ev("skipped", "u", result={"skip_reason": "other"})],
     "skipped", "condition false: gate | bool", 2, False),
    ([ev("skipped", result={"skip_reason": "skipped, running in check mode"})],
     "skipped", "skipped, running in check mode", 1, False),
    ([ev("skipped")], "skipped", "skipped", 1, False),
    ([ev("skipped"), ev()], "pass", "2 tasks, 0 changed", 2, False),
    # The include task's own ok result is no work: the role's skipped tasks decide.
    ([ev("ok", "include", include=True), ev("skipped", result={"false_condition": "x"})],
     "skipped", "condition false: x", 1, False),
    ([ev("skipped", "include", include=True, result={"false_condition": "run | bool"})],
     "skipped", "condition false: run | bool", 1, False),
    ([ev("ok", "include", include=True)], "pass", "0 tasks, 0 changed", 0, False),
])
def test_step_status(events, status, detail, tasks, rescued):
    step = summarize_step("s", events)
    got = (step.status, step.detail, step.tasks, step.rescued)
    assert got == (status, detail, tasks, rescued)


def test_duration_runs_from_the_first_start_to_the_last_end():
    step = summarize_step("s", [ev(started=10.0, ended=11.5), ev(started=12.0, ended=14.25),
                                ev(ended=9.0)])  # no start seen: its end counts as start
    assert (step.started, step.finished, step.duration) == (9.0, 14.25, 5.25)
    assert StepResult("never", "skipped").duration == 0.0


@pytest.mark.parametrize("event", [
    ev("failed", no_log=True, result={"msg": CANARY, "stderr": CANARY}),
    ev("failed", result={"_ansible_no_log": True, "msg": CANARY}),
    ev("failed", result={"results": [{"failed": True, "_ansible_no_log": True, "msg": CANARY}]}),
    ev("unreachable", no_log=True, result={"msg": CANARY}),
])
def test_a_no_log_failure_shows_no_value(event):
    step = summarize_step("s", [event])
    assert step.status == "fail"
    assert step.detail == f"t: {NO_LOG_MESSAGE}"
    assert CANARY not in repr(step.as_dict())


@pytest.mark.parametrize(("event", "status"), [
    (ev("failed", no_log=True, ignored=True, result={"msg": CANARY}), "warn"),
    (ev(no_log=True, warnings=[CANARY]), "warn"),
    (ev("skipped", no_log=True, result={"false_condition": CANARY}), "skipped"),
])
def test_a_no_log_warning_or_skip_shows_no_value(event, status):
    step = summarize_step("s", [event])
    assert (step.status, step.detail) == (status, f"t: {NO_LOG_MESSAGE}" if status == "warn"
                                          else NO_LOG_MESSAGE)


def test_the_message_is_cut_at_500_characters():
    step = summarize_step("s", [ev("failed", result={"msg": "x" * 2000})])
    message = step.detail.removeprefix("t: ")
    assert len(message) == 500 and message.endswith("x...")
    exact = summarize_step("s", [ev("failed", result={"msg": "y" * 500})])
    assert exact.detail == "t: " + "y" * 500


def test_declared_steps_come_first_and_unreached_ones_are_skipped():
    checklist = Checklist()
    checklist.declare(["preflight", "quality_gate", "backup", "rollout"],
                      {"quality_gate": "disabled by release_quality_gate=false", "rollout": ""})
    for event in (ev(step="extra"), ev(step="backup", result={"changed": True}),
                  ev("skipped", step="preflight", result={"false_condition": "x"})):
        checklist.record(event)
    assert [(s.name, s.status, s.detail) for s in checklist.steps()] == [
        ("preflight", "skipped", "condition false: x"),
        ("quality_gate", "skipped", "disabled by release_quality_gate=false"),
        ("backup", "pass", "1 task, 1 changed"),
        ("rollout", "skipped", "not reached"),  # an empty reason is none
        ("extra", "pass", "1 task, 0 changed"),
    ]


def test_a_skip_reason_explains_a_step_whose_tasks_were_all_skipped_but_not_one_that_ran():
    checklist = Checklist()
    checklist.declare(skip_reasons={"gate": "disabled", "backup": "never mind"})
    checklist.record(ev("skipped", step="gate", result={"false_condition": "gate | bool"}))
    checklist.record(ev(step="backup"))
    assert [(s.name, s.status, s.detail) for s in checklist.steps()] == [
        ("gate", "skipped", "disabled"), ("backup", "pass", "1 task, 0 changed")]


def test_plays_add_to_one_checklist():
    checklist = Checklist()
    checklist.declare(["a", "b"])
    checklist.declare(["b", "c"], {"c": "later"})
    assert [(s.name, s.detail) for s in checklist.steps()] == [
        ("a", "not reached"), ("b", "not reached"), ("c", "later")]


@pytest.mark.parametrize(("steps", "reasons", "message"), [
    ("backup", None, "release_steps must be a list of step names, got backup"),
    (["backup", 3], None, 'release_steps must be a list of step names, got ["backup", 3]'),
    (["backup", ""], None, 'release_steps must be a list of step names, got ["backup", ""]'),
    (None, ["backup"], "release_skip_reasons must be a dict of step name -> reason, "
                       'got ["backup"]'),
])
def test_a_malformed_declaration_is_refused_by_name(steps, reasons, message):
    with pytest.raises(ReportInputError) as info:
        Checklist().declare(steps, reasons)
    assert str(info.value) == message


def test_an_unknown_outcome_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown task outcome 'changed'"):
        Checklist().record(ev("changed"))


@pytest.mark.parametrize(("statuses", "run_failed", "outcome"), [
    (["pass", "skipped"], False, "pass"),
    (["pass", "warn", "skipped"], False, "warn"),
    (["warn", "fail", "pass"], False, "fail"),
    (["skipped"], False, "skipped"),
    ([], False, "skipped"),
    (["pass"], True, "fail"),  # a failure outside every step
])
def test_the_outcome_is_the_worst_status(statuses, run_failed, outcome):
    steps = [StepResult(f"s{i}", status) for i, status in enumerate(statuses)]
    assert build_report(steps, 0.0, 1.0, run_failed=run_failed)["outcome"] == outcome


def test_the_report_document():
    steps = [StepResult("backup", "fail", "t: boom", tasks=3, changed=1, started=1764331200.0,
                        finished=1764331212.3456, rescued=True),
             StepResult("rollout", "skipped", "not reached")]
    report = build_report(steps, 1764331199.5, 1764331230.0, release_id=42, app="shop")
    assert report == {
        "release_id": "42", "app": "shop", "outcome": "fail", "run_failed": False,
        "started": "2025-11-28T11:59:59Z", "finished": "2025-11-28T12:00:30Z",
        "duration": 30.5, "summary": {"pass": 0, "warn": 0, "fail": 1, "skipped": 1},
        "steps": [
            {"name": "backup", "status": "fail", "detail": "t: boom", "duration": 12.346,
             "tasks": 3, "changed": 1, "started": "2025-11-28T12:00:00Z",
             "finished": "2025-11-28T12:00:12Z", "rescued": True},
            {"name": "rollout", "status": "skipped", "detail": "not reached", "duration": 0.0,
             "tasks": 0, "changed": 0, "started": None, "finished": None, "rescued": False},
        ]}
    assert build_report([], 0.0, 0.0)["release_id"] is None
    assert utc(None) is None
