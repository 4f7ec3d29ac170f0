# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema/app compatibility guard: a table of live revisions, target heads, graphs
and backups, and the plan each one gets."""

from __future__ import annotations

import re
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg.guard import (
    Graph,
    GuardInputError,
    MultipleHeadsError,
    VersionTableMissingError,
    plan,
    read_live_revision,
)


def rev(revision: str, *down: str, downgrade: bool = True) -> dict[str, Any]:
    return {"revision": revision, "down_revisions": list(down), "has_downgrade": downgrade,
            "is_head": False, "path": f"versions/{revision}.py", "doc": revision}


LINEAR = [rev("0001"), rev("0002", "0001"), rev("0003", "0002")]
NO_DOWN_3 = [rev("0001"), rev("0002", "0001"), rev("0003", "0002", downgrade=False)]
NO_DOWN_2 = [rev("0001"), rev("0002", "0001", downgrade=False), rev("0003", "0002")]
# 0001 -> 0002a, 0001 -> 0002b, merged by 0003 (a merge revision has no schema change but
# a downgrade that unmerges).
BRANCHED = [rev("0001"), rev("0002a", "0001"), rev("0002b", "0001"),
            rev("0003", "0002a", "0002b")]
BACKUP_2 = {"backup_id": "b-0002", "alembic_revision": "0002", "sha256": "ab12",
            "path": "/b/b-0002.dump"}
BACKUP_1 = {"backup_id": "b-0001", "alembic_revision": "0001"}

CASES = [
    # id, live, target, graph, backup, prefer, action, steps, backup_id, reason fragments
    ("same", "0003", "0003", LINEAR, None, "downgrade", "none", [], None,
     ["live revision 0003 is the target release's head"]),
    ("same-with-backup", "0002", "0002", LINEAR, BACKUP_2, "restore", "none", [], None,
     ["needs no change"]),
    ("behind", "0001", "0003", LINEAR, None, "downgrade", "upgrade", ["0002", "0003"], None,
     ["live revision 0001 is behind the target release's head 0003",
      "no downgrade is needed", "upgrade 0001 -> 0003"]),
    ("base", None, "0002", LINEAR, None, "downgrade", "upgrade", ["0001", "0002"], None,
     ["no revision applied", "upgrade base -> 0002"]),
    ("one-step-down", "0003", "0002", LINEAR, None, "downgrade", "downgrade", ["0003"], None,
     ["live revision 0003 is unknown to the target release (head 0002); 0003 has a"
      " downgrade step; downgrade 0003 -> 0002"]),
    ("two-steps-down", "0003", "0001", LINEAR, BACKUP_1, "downgrade", "downgrade",
     ["0003", "0002"], None,
     ["0003 and 0002 have downgrade steps; downgrade 0003 -> 0001 (2 steps: 0003 and 0002)"]),
    ("prefer-restore", "0003", "0002", LINEAR, BACKUP_2, "restore", "restore", [], "b-0002",
     ["0003 has a downgrade step, but restore is preferred; restore backup b-0002"]),
    ("prefer-restore-no-backup", "0003", "0002", LINEAR, None, "restore", "downgrade",
     ["0003"], None, ["restore was preferred but no backup at revision 0002 was given"]),
    ("prefer-restore-wrong-backup", "0003", "0002", LINEAR, BACKUP_1, "restore", "downgrade",
     ["0003"], None, ["downgrade 0003 -> 0002"]),
    ("no-downgrade-backup", "0003", "0002", NO_DOWN_3, BACKUP_2, "downgrade", "restore", [],
     "b-0002", ["0003 has no downgrade step, so it cannot be downgraded; restore backup"
                " b-0002 (taken at revision 0002)"]),
    ("no-downgrade-no-backup", "0003", "0002", NO_DOWN_3, None, "downgrade", "blocked", [],
     None, ["0003 has no downgrade step", "no backup was given",
            "supply the verified pre-release backup taken at revision 0002",
            "add the missing downgrade step to 0003"]),
    ("no-downgrade-wrong-backup", "0003", "0002", NO_DOWN_3, BACKUP_1, "downgrade",
     "blocked", [], None, ["backup b-0001 is at revision 0001, not at 0002"]),
    ("middle-step-lacks-downgrade", "0003", "0001", NO_DOWN_2, BACKUP_1, "downgrade",
     "restore", [], "b-0001", ["0002 has no downgrade step"]),
    ("middle-step-irrelevant", "0003", "0002", NO_DOWN_2, None, "downgrade", "downgrade",
     ["0003"], None, ["downgrade 0003 -> 0002"]),
    ("live-unknown-backup", "0009", "0002", LINEAR, BACKUP_2, "downgrade", "restore", [],
     "b-0002", ["live revision 0009 is not in the revision graph of the newer code"]),
    ("live-unknown-blocked", "0009", "0002", LINEAR, None, "downgrade", "blocked", [], None,
     ["live revision 0009 is not in the revision graph",
      "give the revision graph that contains both revisions"]),
    ("target-unknown", "0003", "0000", LINEAR, None, "downgrade", "blocked", [], None,
     ["target head 0000 is not in the revision graph"]),
    ("both-unknown", "x", "y", LINEAR, None, "downgrade", "blocked", [], None,
     ["live revision x and target head y are not in the revision graph"]),
    ("diverged-blocked", "0002a", "0002b", BRANCHED, None, "downgrade", "blocked", [], None,
     ["are on diverged branches", "merge the branches"]),
    ("diverged-restore", "0002a", "0002b", BRANCHED,
     {"backup_id": "b-2b", "alembic_revision": "0002b"}, "downgrade", "restore", [], "b-2b",
     ["diverged branches", "restore backup b-2b"]),
    ("merge-down", "0003", "0001", BRANCHED, None, "downgrade", "downgrade",
     ["0003", "0002b", "0002a"], None, ["downgrade 0003 -> 0001 (3 steps"]),
    ("merge-down-one-branch", "0003", "0002a", BRANCHED, None, "downgrade", "downgrade",
     ["0003", "0002b"], None, ["downgrade 0003 -> 0002a"]),
    ("merge-up", "0002a", "0003", BRANCHED, None, "downgrade", "upgrade", ["0002b", "0003"],
     None, ["upgrade 0002a -> 0003"]),
]


@pytest.mark.parametrize(
    ("live", "target", "graph", "backup", "prefer", "action", "steps", "backup_id",
     "fragments"),
    [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_plan(live, target, graph, backup, prefer, action, steps, backup_id, fragments):
    decided = plan(live, target, graph, backup, prefer).as_dict()
    assert decided["action"] == action, decided["reason"]
    assert decided["steps"] == steps
    assert decided["backup_id"] == backup_id
    assert decided["from_revision"] == live
    assert decided["to_revision"] == target
    for fragment in fragments:
        assert fragment in decided["reason"]


def test_merge_downgrade_undoes_a_revision_before_what_it_revises():
    steps = plan("0003", "0001", BRANCHED).steps
    assert steps.index("0003") < steps.index("0002a")
    assert steps.index("0003") < steps.index("0002b")


@pytest.mark.parametrize(("graph", "backup", "prefer", "message"), [
    ([], None, "downgrade", "revisions is empty"),
    ([rev("0001"), rev("0001")], None, "downgrade", "revision 0001 appears twice"),
    ([rev("0002", "0001")], None, "downgrade",
     "revision 0002 revises 0001, which is not in revisions"),
    ([{"revision": "0001", "down_revisions": [], "has_downgrade": "yes"}], None, "downgrade",
     "has_downgrade must be true or false"),
    ([{"down_revisions": []}], None, "downgrade", "revisions[0] has no revision id"),
    (["0001"], None, "downgrade", "revisions[0] must be a dict"),
    ([{"revision": "0001", "down_revisions": [1], "has_downgrade": True}], None, "downgrade",
     "down_revisions must be a list"),
    (LINEAR, {"alembic_revision": "0002"}, "downgrade", "backup has no backup_id"),
    (LINEAR, {"backup_id": "b"}, "downgrade", "backup b has no alembic_revision"),
    (LINEAR, None, "sideways", "prefer must be one of downgrade, restore"),
])
def test_unusable_inputs(graph, backup, prefer, message):
    with pytest.raises(GuardInputError, match=re.escape(message)):
        plan("0003", "0002", graph, backup, prefer)


def test_empty_target_is_refused():
    with pytest.raises(GuardInputError, match="target_head is empty"):
        plan("0003", "", LINEAR)


def test_down_revision_given_as_string_or_none():
    graph = Graph.from_list([{"revision": "a", "down_revisions": None, "has_downgrade": True},
                             {"revision": "b", "down_revisions": "a", "has_downgrade": True}])
    assert graph.ancestors("b") == {"a"}
    assert graph.between("b", None) == ["b", "a"]


def test_a_cycle_does_not_hang():
    graph = Graph.from_list([rev("a", "b"), rev("b", "a")])
    assert graph.ancestors("a") == {"a", "b"}


class FakeCursor:
    """Answers to_regclass with ``exists`` and the SELECT with ``rows``."""

    def __init__(self, exists: bool, rows: list[tuple[str]]) -> None:
        self.exists = exists
        self.rows = rows
        self.executed: list[tuple[str, Any]] = []

    def execute(self, query: str, params: Any = None) -> None:
        self.executed.append((query, params))

    def fetchone(self) -> tuple[bool]:
        return (self.exists,)

    def fetchall(self) -> list[tuple[str]]:
        return self.rows


@pytest.mark.parametrize(("rows", "expected"), [([("0003",)], "0003"), ([], None)])
def test_read_live_revision(rows, expected):
    cur = FakeCursor(True, rows)
    queries: list[str] = []
    assert read_live_revision(cur, queries=queries) == expected
    assert cur.executed[0] == ("SELECT to_regclass(%s) IS NOT NULL", ('"alembic_version"',))
    assert queries[-1] == 'SELECT version_num FROM "alembic_version" ORDER BY version_num'


def test_read_live_revision_quotes_schema_and_table():
    cur = FakeCursor(True, [("1",)])
    read_live_revision(cur, 'my"table', "app schema")
    assert cur.executed[1][0] == ('SELECT version_num FROM "app schema"."my""table"'
                                  " ORDER BY version_num")


def test_multiple_heads_are_named():
    cur = FakeCursor(True, [("0002a",), ("0002b",)])
    with pytest.raises(MultipleHeadsError,
                       match=r"holds 2 revisions \(0002a, 0002b\): several heads"):
        read_live_revision(cur)


def test_missing_version_table():
    cur = FakeCursor(False, [])
    with pytest.raises(VersionTableMissingError,
                       match="the version table alembic_version does not exist"):
        read_live_revision(cur)
    assert len(cur.executed) == 1
