# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The history and rollback plan, on Deployments, StatefulSets and their ReplicaSets and
ControllerRevisions captured from the lab's cluster (fixtures/history_*.json)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.history import (
    HistoryError,
    NoPreviousRevisionError,
    ReleaseNotFoundError,
    RevisionNotFoundError,
    RollbackRefusedError,
    build_history,
    check_waitable,
    label_selector,
    plan,
    release_id_of,
    statefulset_rollout,
    strip_template,
)

FIXTURES = Path(__file__).parent / "fixtures"
IMAGE = "127.0.0.1:5000/rb/app:"


def load(name: str) -> tuple[str, dict[str, Any], list[dict[str, Any]]]:
    """(kind, workload, owned objects) of fixtures/history_<name>.json."""
    data = json.loads((FIXTURES / f"history_{name}.json").read_text())
    if "deployment" in data:
        return "Deployment", data["deployment"], data["replicasets"]
    return "StatefulSet", data["statefulset"], data["controllerrevisions"]


def apply_json_patch(obj: dict[str, Any], patch: list[dict[str, Any]]) -> dict[str, Any]:
    """Just enough of RFC 6902 (add and replace on objects) to check what a patch does."""
    result = copy.deepcopy(obj)
    for op in patch:
        assert op["op"] in ("add", "replace"), op
        *parents, last = [token.replace("~1", "/").replace("~0", "~")
                          for token in op["path"].split("/")[1:]]
        node = result
        for token in parents:
            node = node[token]
        if op["op"] == "replace":
            assert last in node, op["path"]
        node[last] = copy.deepcopy(op["value"])
    return result


def rs_template(owned: list[dict[str, Any]], name: str) -> dict[str, Any]:
    obj = next(o for o in owned if o["metadata"]["name"] == name)
    template = obj["spec"]["template"] if "spec" in obj else obj["data"]["spec"]["template"]
    return strip_template(template, "Deployment" if "spec" in obj else "StatefulSet")


@pytest.mark.parametrize(("fixture", "expected"), [
    ("deployment_three_releases", [(1, "r1", 0), (2, "r2", 0), (3, "r3", 2)]),
    # r2's ReplicaSet is renumbered 4 and its change-cause is now "rollback to r2".
    ("deployment_after_rollback", [(1, "r1", 0), (3, "r3", 0), (4, "r2", 2)]),
    ("deployment_single_release", [(1, "r9", 2)]),
    ("statefulset_three_releases", [(1, "r1", None), (2, "r2", None), (3, "r3", None)]),
    ("statefulset_after_rollback", [(2, "r2", None), (3, "r3", None), (4, "r1", None)]),
])
def test_history_lists_owned_revisions_oldest_first(fixture: str, expected: list) -> None:
    kind, workload, owned = load(fixture)
    history = build_history(kind, workload, owned)
    assert [(r.revision, r.release_id, r.replicas) for r in history.revisions] == expected
    assert all(r.images == [IMAGE + r.release_id] for r in history.revisions)
    assert all(r.created and r.created.startswith("2026-11-27T") for r in history.revisions)
    assert history.current is history.revisions[-1]
    assert history.current_revision == expected[-1][0]
    assert history.revision_history_limit == 10


def test_history_ignores_objects_the_workload_does_not_control() -> None:
    kind, workload, owned = load("deployment_three_releases")
    assert len(owned) == 4  # one ReplicaSet belongs to rb-other
    assert [r.name for r in build_history(kind, workload, owned).revisions] == [
        o["metadata"]["name"] for o in owned
        if o["metadata"]["ownerReferences"][0]["name"] == "rb-fixture"]


@pytest.mark.parametrize(("fixture", "kwargs", "revision", "changed", "to_revision"), [
    ("deployment_three_releases", {}, 2, True, 4),
    ("deployment_three_releases", {"revision": 1}, 1, True, 4),
    ("deployment_three_releases", {"release_id": "r1"}, 1, True, 4),
    ("deployment_three_releases", {"release_id": "r3"}, 3, False, 3),
    ("deployment_three_releases", {"revision": 3}, 3, False, 3),
    # After a rollback to r2 the previous revision is r3 again, as for kubectl rollout undo.
    ("deployment_after_rollback", {}, 3, True, 5),
    ("deployment_after_rollback", {"release_id": "r2"}, 4, False, 4),
    ("deployment_after_rollback", {"release_id": "r1"}, 1, True, 5),
    ("statefulset_three_releases", {}, 2, True, 4),
    ("statefulset_three_releases", {"release_id": "r1"}, 1, True, 4),
    ("statefulset_after_rollback", {}, 3, True, 5),
    ("statefulset_after_rollback", {"release_id": "r1"}, 4, False, 4),
    ("statefulset_after_rollback", {"revision": 2}, 2, True, 5),
])
def test_plan_picks_the_target(fixture: str, kwargs: dict, revision: int, changed: bool,
                               to_revision: int) -> None:
    kind, workload, owned = load(fixture)
    result = plan(kind, workload, owned, **kwargs)
    assert result.target.revision == revision
    assert result.changed is changed
    assert bool(result.patch) is changed
    assert result.from_revision == build_history(kind, workload, owned).current_revision
    assert result.to_revision == to_revision


@pytest.mark.parametrize(("fixture", "kwargs", "error", "message"), [
    ("deployment_three_releases", {"revision": 7}, RevisionNotFoundError,
     "Deployment prodready/rb-fixture has no revision 7 in its history (revisions kept: "
     "1, 2, 3; revisionHistoryLimit 10)"),
    # The controller renumbered revision 2: it is no longer in the history.
    ("deployment_after_rollback", {"revision": 2}, RevisionNotFoundError,
     "Deployment prodready/rb-fixture has no revision 2 in its history (revisions kept: "
     "1, 3, 4; revisionHistoryLimit 10)"),
    ("deployment_three_releases", {"release_id": "r-2026-01"}, ReleaseNotFoundError,
     "no ReplicaSet of Deployment prodready/rb-fixture carries release id r-2026-01; "
     "known: r1 (revision 1), r2 (revision 2), r3 (revision 3)"),
    ("deployment_single_release", {}, NoPreviousRevisionError,
     "Deployment prodready/rb-other has no previous revision to roll back to (revisions "
     "kept: 1; revisionHistoryLimit 10)"),
    ("statefulset_three_releases", {"release_id": "r0"}, ReleaseNotFoundError,
     "no ControllerRevision of StatefulSet prodready/rb-fixture-sts carries release id r0; "
     "known: r1 (revision 1), r2 (revision 2), r3 (revision 3)"),
    ("statefulset_after_rollback", {"revision": 1}, RevisionNotFoundError,
     "StatefulSet prodready/rb-fixture-sts has no revision 1 in its history (revisions "
     "kept: 2, 3, 4; revisionHistoryLimit 10)"),
])
def test_plan_refuses_targets_outside_the_history(fixture: str, kwargs: dict, error: type,
                                                  message: str) -> None:
    kind, workload, owned = load(fixture)
    with pytest.raises(error) as caught:
        plan(kind, workload, owned, **kwargs)
    assert str(caught.value) == message
    assert isinstance(caught.value, HistoryError)


def test_history_limit_and_empty_history_are_reported() -> None:
    kind, workload, owned = load("deployment_three_releases")
    workload = copy.deepcopy(workload)
    workload["spec"]["revisionHistoryLimit"] = 0
    with pytest.raises(NoPreviousRevisionError,
                       match=r"\(revisions kept: none; revisionHistoryLimit 0\)$"):
        plan(kind, workload, [])
    with pytest.raises(ReleaseNotFoundError, match="; known: none$"):
        plan(kind, workload, [], release_id="r1")


def test_paused_deployment_is_refused_only_when_a_change_is_needed() -> None:
    kind, workload, owned = load("deployment_three_releases")
    workload = copy.deepcopy(workload)
    workload["spec"]["paused"] = True
    with pytest.raises(RollbackRefusedError, match="^Deployment prodready/rb-fixture is "
                       "paused: the controller would not roll out revision 2; resume it"):
        plan(kind, workload, owned)
    assert not plan(kind, workload, owned, release_id="r3").changed


def test_revision_and_release_id_are_exclusive() -> None:
    kind, workload, owned = load("deployment_three_releases")
    with pytest.raises(ValueError, match="not both"):
        plan(kind, workload, owned, revision=1, release_id="r1")


def test_unknown_kind_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="kind must be one of Deployment, StatefulSet"):
        build_history("DaemonSet", {}, [])


@pytest.mark.parametrize(("fixture", "kwargs", "target_name", "label"), [
    ("deployment_three_releases", {}, "rb-fixture-664dc69466", "r2"),
    ("deployment_after_rollback", {"release_id": "r1"}, "rb-fixture-54667d5c5b", "r1"),
    ("statefulset_three_releases", {"revision": 1}, "rb-fixture-sts-78bd9dfd47", "r1"),
])
def test_patch_restores_the_target_template_and_says_why(fixture: str, kwargs: dict,
                                                         target_name: str, label: str) -> None:
    kind, workload, owned = load(fixture)
    result = plan(kind, workload, owned, **kwargs)
    assert result.patch[0] == {"op": "replace", "path": "/metadata/resourceVersion",
                               "value": workload["metadata"]["resourceVersion"]}
    after = apply_json_patch(workload, result.patch)
    assert after["spec"]["template"] == rs_template(owned, target_name)
    assert "pod-template-hash" not in after["spec"]["template"]["metadata"]["labels"]
    assert "$patch" not in after["spec"]["template"]
    assert after["metadata"]["annotations"]["kubernetes.io/change-cause"] == f"rollback to {label}"
    assert after["metadata"]["annotations"]["prodready.io/release-id"] == label
    # Every other annotation and field stays as it was.
    for key, value in workload["metadata"]["annotations"].items():
        if key not in ("kubernetes.io/change-cause", "prodready.io/release-id"):
            assert after["metadata"]["annotations"][key] == value
    assert {k: v for k, v in after["spec"].items() if k != "template"} == {
        k: v for k, v in workload["spec"].items() if k != "template"}
    assert result.change_cause == f"rollback to {label}"
    assert workload == load(fixture)[1]  # planning never mutates its input


def test_patch_without_release_id_names_the_revision_and_creates_annotations() -> None:
    kind, workload, owned = load("deployment_three_releases")
    workload = copy.deepcopy(workload)
    del workload["metadata"]["annotations"]
    owned = copy.deepcopy(owned)
    for obj in [workload, *owned]:
        obj["metadata"].get("annotations", {}).pop("kubernetes.io/change-cause", None)
        for key in ("annotations", "labels"):
            obj["spec"]["template"]["metadata"][key].pop("prodready.io/release-id")
    # Without the annotation the controller's revision is unknown: the template decides.
    result = plan(kind, workload, owned, revision=1)
    assert result.target.release_id is None
    assert result.from_revision == 3
    assert result.patch[-1] == {"op": "add", "path": "/metadata/annotations",
                                "value": {"kubernetes.io/change-cause": "rollback to revision 1"}}
    after = apply_json_patch(workload, result.patch)
    assert after["metadata"]["annotations"] == {
        "kubernetes.io/change-cause": "rollback to revision 1"}


def test_diff_shows_release_images_and_templates() -> None:
    kind, workload, owned = load("deployment_three_releases")
    diff = plan(kind, workload, owned).diff
    assert {k: diff["before"][k] for k in ("revision", "release_id", "images", "change_cause")} \
        == {"revision": 3, "release_id": "r3", "images": [IMAGE + "r3"], "change_cause": "r3"}
    assert {k: diff["after"][k] for k in ("revision", "release_id", "images", "change_cause")} \
        == {"revision": 2, "release_id": "r2", "images": [IMAGE + "r2"],
            "change_cause": "rollback to r2"}
    assert diff["before"]["template"]["metadata"]["annotations"] == {
        "prodready.io/release-id": "r3"}
    assert diff["after"]["template"]["metadata"]["annotations"] == {
        "prodready.io/release-id": "r2"}


def test_no_change_has_an_empty_diff_and_patch() -> None:
    kind, workload, owned = load("deployment_after_rollback")
    result = plan(kind, workload, owned, release_id="r2")
    assert result.patch == []
    assert result.change_cause is None
    assert result.diff["before"] == result.diff["after"]
    assert result.previous == result.target.summary() == {
        "revision": 4, "release_id": "r2", "images": [IMAGE + "r2"]}


@pytest.mark.parametrize(("template", "annotations", "expected"), [
    ({"metadata": {"annotations": {"prodready.io/release-id": "r7"},
                   "labels": {"prodready.io/release-id": "r6"}}},
     {"kubernetes.io/change-cause": "x"}, "r7"),
    ({"metadata": {"labels": {"prodready.io/release-id": "r6"}}}, {}, "r6"),
    ({"metadata": {}}, {"kubernetes.io/change-cause": "r5"}, "r5"),
    ({}, {"kubernetes.io/change-cause": "rollback to r4"}, "r4"),
    ({}, {"kubernetes.io/change-cause": "rollback to revision 3"}, None),
    ({}, {"kubernetes.io/change-cause": ""}, None),
    ({}, None, None),
])
def test_release_id_of(template: dict, annotations: dict | None, expected: str | None) -> None:
    assert release_id_of(template, annotations) == expected


@pytest.mark.parametrize(("selector", "expected"), [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchLabels": {"app": "web"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "env", "operator": "NotIn", "values": ["dev"]},
        {"key": "canary", "operator": "Exists"},
        {"key": "legacy", "operator": "DoesNotExist"}]},
     "app=web,tier in (a,b),env notin (dev),canary,!legacy"),
    (None, ""),
])
def test_label_selector(selector: dict | None, expected: str) -> None:
    assert label_selector(selector) == expected


def test_history_skips_objects_without_a_revision() -> None:
    kind, workload, owned = load("deployment_three_releases")
    owned = copy.deepcopy(owned)
    del owned[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    assert [r.revision for r in build_history(kind, workload, owned).revisions] == [2, 3]


def _sts(spec: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
         generation: int = 4) -> dict[str, Any]:
    sts = copy.deepcopy(load("statefulset_after_rollback")[1])
    sts["metadata"]["generation"] = generation
    sts["spec"].update(spec or {})
    sts["status"].update(status or {})
    return sts


@pytest.mark.parametrize(("sts", "expected"), [
    (_sts(), (True, "2 of 2 pods updated (partition 0)")),
    (_sts(generation=5), (False, "waiting for the StatefulSet controller to observe the "
                                 "update")),
    (_sts(status={"readyReplicas": 1}), (False, "1 of 2 pods ready")),
    (_sts(status={"updatedReplicas": 1}), (False, "1 of 2 pods updated")),
    (_sts(spec={"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}},
          status={"updatedReplicas": 1}), (True, "1 of 2 pods updated (partition 1)")),
    (_sts(spec={"updateStrategy": {"type": "RollingUpdate"}},
          status={"currentRevision": "rb-fixture-sts-7bb5d55bb7"}),
     (False, "2 of 2 pods at revision rb-fixture-sts-78bd9dfd47")),
    (_sts(spec={"updateStrategy": {"type": "RollingUpdate"}}),
     (True, "2 pods at revision rb-fixture-sts-78bd9dfd47")),
])
def test_statefulset_rollout(sts: dict[str, Any], expected: tuple[bool, str]) -> None:
    assert statefulset_rollout(sts) == expected


def test_on_delete_statefulset_cannot_be_waited_for() -> None:
    check_waitable("StatefulSet", _sts())
    check_waitable("Deployment", load("deployment_three_releases")[1])
    with pytest.raises(RollbackRefusedError, match=r"^StatefulSet prodready/rb-fixture-sts uses "
                       r"the OnDelete update strategy: .*; set wait to false$"):
        check_waitable("StatefulSet", _sts(spec={"updateStrategy": {"type": "OnDelete"}}))
