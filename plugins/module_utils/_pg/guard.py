# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The schema/app compatibility guard: what to do with the schema before an app rollback.

Each release records the Alembic head its image ships. Rolling the app back to a release
whose image does not know the live revision leaves code running against a schema it was
never written for. ``plan()`` compares the live revision with the target release's head in
the revision graph of the newer code (the only code that knows both) and decides:

- ``none``: the schema already is at the target's head;
- ``upgrade``: the schema is behind the target's head (the target's migrations bring it
  forward; rolling the app back does not need a schema change first);
- ``downgrade``: the target does not know the live revision and every revision between them
  has a downgrade step;
- ``restore``: the pre-release backup is at the target's head and a downgrade is impossible
  (or unwanted, ``prefer="restore"``);
- ``blocked``: neither is possible - the reason says what is missing.

``plan()`` is pure: it reads nothing and writes nothing. ``read_live_revision()`` reads the
version table through a cursor the caller owns.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import quote_ident

ACTIONS = ("none", "upgrade", "downgrade", "restore", "blocked")
PREFER = ("downgrade", "restore")


class GuardError(Exception):
    """Base class of the guard's errors; messages name the revision and the cause."""


class GuardInputError(GuardError):
    """The revision graph, the backup record or another input is unusable."""


class MultipleHeadsError(GuardError):
    """The version table holds several revisions (several heads are applied)."""


class VersionTableMissingError(GuardError):
    """The database has no Alembic version table."""


@dataclass(frozen=True)
class Revision:
    revision: str
    down_revisions: tuple[str, ...]
    has_downgrade: bool
    path: str | None = None
    doc: str | None = None


@dataclass(frozen=True)
class Graph:
    """The revision graph of the newer code, as the alembic module's ``history`` returns it."""

    revisions: dict[str, Revision]

    @classmethod
    def from_list(cls, items: Iterable[Mapping[str, Any]]) -> Graph:
        revisions: dict[str, Revision] = {}
        for index, item in enumerate(items):
            if not isinstance(item, Mapping):
                raise GuardInputError(f"revisions[{index}] must be a dict, got"
                                      f" {type(item).__name__}")
            rev = item.get("revision")
            if not isinstance(rev, str) or not rev:
                raise GuardInputError(f"revisions[{index}] has no revision id")
            down = item.get("down_revisions")
            if down is None:
                down = []
            elif isinstance(down, str):
                down = [down]
            if not isinstance(down, (list, tuple)) or not all(
                    isinstance(d, str) and d for d in down):
                raise GuardInputError(f"revision {rev}: down_revisions must be a list of"
                                      " revision ids")
            has_downgrade = item.get("has_downgrade")
            if not isinstance(has_downgrade, bool):
                raise GuardInputError(f"revision {rev}: has_downgrade must be true or false")
            if rev in revisions:
                raise GuardInputError(f"revision {rev} appears twice in revisions")
            revisions[rev] = Revision(rev, tuple(down), has_downgrade, item.get("path"),
                                      item.get("doc"))
        if not revisions:
            raise GuardInputError("revisions is empty: give the revision graph of the newer"
                                  " code (the alembic module's history action)")
        for rev in revisions.values():
            missing = [d for d in rev.down_revisions if d not in revisions]
            if missing:
                raise GuardInputError(
                    f"revision {rev.revision} revises {', '.join(missing)}, which is not in"
                    " revisions: give the complete history of the newer code")
        return cls(revisions)

    def __contains__(self, revision: object) -> bool:
        return revision in self.revisions

    def ancestors(self, revision: str) -> set[str]:
        """Every revision ``revision`` descends from (not itself)."""
        seen: set[str] = set()
        todo = list(self.revisions[revision].down_revisions)
        while todo:
            rev = todo.pop()
            if rev not in seen:
                seen.add(rev)
                todo.extend(self.revisions[rev].down_revisions)
        return seen

    def between(self, newer: str, older: str | None) -> list[str]:
        """Revisions in ``newer``'s lineage that are not in ``older``'s, newest first - the
        order a downgrade from ``newer`` to ``older`` undoes them (``older=None``: base)."""
        keep = set() if older is None else self.ancestors(older) | {older}
        wanted = (self.ancestors(newer) | {newer}) - keep
        # Reverse topological order: a revision comes before everything it revises.
        order: list[str] = []
        done: set[str] = set()

        def visit(rev: str) -> None:
            stack = [(rev, False)]
            while stack:
                node, expanded = stack.pop()
                if node in done:
                    continue
                if expanded:
                    done.add(node)
                    order.append(node)
                    continue
                stack.append((node, True))
                stack.extend((d, False) for d in self.revisions[node].down_revisions
                             if d in wanted and d not in done)

        for rev in sorted(wanted):
            visit(rev)
        return list(reversed(order))


@dataclass(frozen=True)
class Backup:
    backup_id: str
    alembic_revision: str | None
    sha256: str | None = None
    path: str | None = None

    @classmethod
    def from_dict(cls, value: Mapping[str, Any] | None) -> Backup | None:
        if not value:
            return None
        backup_id = value.get("backup_id")
        if not isinstance(backup_id, str) or not backup_id:
            raise GuardInputError("backup has no backup_id: give the record of the verified"
                                  " pre-release backup (backup_id, alembic_revision, sha256,"
                                  " path)")
        if "alembic_revision" not in value:
            raise GuardInputError(f"backup {backup_id} has no alembic_revision: the guard"
                                  " cannot tell which schema it holds")
        return cls(backup_id, value.get("alembic_revision") or None, value.get("sha256"),
                   value.get("path"))


@dataclass
class Plan:
    action: str
    from_revision: str | None
    to_revision: str
    reason: str
    backup_id: str | None = None
    steps: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"action": self.action, "from_revision": self.from_revision,
                "to_revision": self.to_revision, "backup_id": self.backup_id,
                "reason": self.reason, "steps": list(self.steps)}


def _name(revision: str | None) -> str:
    return revision if revision is not None else "base (no revision applied)"


def _listing(revisions: list[str]) -> str:
    if len(revisions) == 1:
        return revisions[0]
    return ", ".join(revisions[:-1]) + " and " + revisions[-1]


def _restore_or_block(live: str | None, target: str, backup: Backup | None, why: str,
                      missing: str) -> Plan:
    """Restore the backup when it holds the target's head; else blocked, saying what to do."""
    if backup is not None and backup.alembic_revision == target:
        return Plan("restore", live, target,
                    f"{why}; restore backup {backup.backup_id} (taken at revision {target})",
                    backup_id=backup.backup_id)
    if backup is None:
        have = "no backup was given"
    else:
        have = (f"backup {backup.backup_id} is at revision"
                f" {_name(backup.alembic_revision)}, not at {target}")
    return Plan("blocked", live, target,
                f"{why}; {have}. To roll back, supply the verified pre-release backup taken at"
                f" revision {target}{missing}")


def plan(live: str | None, target_head: str, revisions: Iterable[Mapping[str, Any]],
         backup: Mapping[str, Any] | None = None, prefer: str = "downgrade") -> Plan:
    """Decide what to do with the schema before rolling the app back to ``target_head``.

    ``live`` is the revision in the database (None: no revision applied). ``revisions`` is
    the newer code's graph. Never raises for a decision - ``blocked`` is a plan; raises
    ``GuardInputError`` for unusable inputs.
    """
    if prefer not in PREFER:
        raise GuardInputError(f"prefer must be one of {', '.join(PREFER)}, got {prefer!r}")
    if not isinstance(target_head, str) or not target_head:
        raise GuardInputError("target_head is empty: give the Alembic head of the target"
                              " release (from its release record)")
    graph = Graph.from_list(revisions)
    chosen_backup = Backup.from_dict(backup)

    if live == target_head:
        return Plan("none", live, target_head,
                    f"live revision {live} is the target release's head; the schema needs no"
                    " change")
    unknown = [r for r in (live, target_head) if r is not None and r not in graph]
    if unknown:
        which = " and ".join(
            f"{'live revision' if r == live else 'target head'} {r}" for r in unknown)
        return _restore_or_block(
            live, target_head, chosen_backup,
            f"{which} {'is' if len(unknown) == 1 else 'are'} not in the revision graph of the"
            " newer code, so no path between them is known",
            " (or give the revision graph that contains both revisions)")

    if live is None or live in graph.ancestors(target_head):
        # Applied oldest first.
        steps = list(reversed(graph.between(target_head, live)))
        subject = (f"live revision {live}" if live is not None else
                   "the live schema (no revision applied)")
        plural = "s" if len(steps) != 1 else ""
        return Plan("upgrade", live, target_head,
                    f"{subject} is behind the target release's head {target_head} and known"
                    " to the target release, so no downgrade is needed; its migrations"
                    f" upgrade {live or 'base'} -> {target_head} ({len(steps)} step{plural}:"
                    f" {_listing(steps)})", steps=steps)

    if target_head in graph.ancestors(live):
        steps = graph.between(live, target_head)
        why = (f"live revision {live} is unknown to the target release (head"
               f" {target_head})")
        lacking = [r for r in steps if not graph.revisions[r].has_downgrade]
        path = f"{live} -> {target_head}"
        if lacking:
            lack = (f"{_listing(lacking)} {'has' if len(lacking) == 1 else 'have'} no"
                    " downgrade step")
            return _restore_or_block(
                live, target_head, chosen_backup, f"{why}; {lack}, so it cannot be downgraded",
                f", or add the missing downgrade step to {_listing(lacking)}")
        verb = "has a downgrade step" if len(steps) == 1 else "have downgrade steps"
        has = f"{_listing(steps)} {verb}"
        if (prefer == "restore" and chosen_backup is not None
                and chosen_backup.alembic_revision == target_head):
            return Plan("restore", live, target_head,
                        f"{why}; {has}, but restore is preferred; restore backup"
                        f" {chosen_backup.backup_id} (taken at revision {target_head})",
                        backup_id=chosen_backup.backup_id)
        extra = ""
        if prefer == "restore":
            extra = ("; restore was preferred but no backup at revision"
                     f" {target_head} was given")
        count = f" ({len(steps)} steps: {_listing(steps)})" if len(steps) > 1 else ""
        return Plan("downgrade", live, target_head,
                    f"{why}; {has}; downgrade {path}{count}{extra}", steps=steps)

    return _restore_or_block(
        live, target_head, chosen_backup,
        f"live revision {live} and the target release's head {target_head} are on diverged"
        " branches (neither descends from the other), so no downgrade path leads there",
        " (or merge the branches in the target release)")


def live_revision(found: list[str], table: str = "alembic_version", schema: str | None = None,
                  exists: bool | None = True,
                  settings: str = "set version_table / version_table_schema") -> str | None:
    """The live revision from the version table's rows; None when it is empty (nothing
    applied). ``MultipleHeadsError`` naming the revisions when it holds several,
    ``VersionTableMissingError`` when it does not exist (``exists`` False; None: unknown,
    taken as existing). ``settings`` says where the table's name is set."""
    if exists is False:
        where = f"schema {schema}" if schema else "the search path"
        raise VersionTableMissingError(
            f"the version table {table} does not exist in {where}: the database was never"
            f" migrated with Alembic, or this is the wrong database (or {settings})")
    if len(found) > 1:
        raise MultipleHeadsError(
            f"the version table {table} holds {len(found)} revisions ({', '.join(found)}):"
            " several heads are applied; merge them (alembic merge) before rolling back")
    return found[0] if found else None


def read_live_revision(cursor: Any, table: str = "alembic_version",
                       schema: str | None = None, queries: list[str] | None = None,
                       ) -> str | None:
    """The revision in the version table, as `live_revision` judges it - the table looked
    up with to_regclass first, so a missing table is an answer, not an aborted statement.
    Appends the statements it runs to ``queries``."""
    queries = [] if queries is None else queries
    qualified = f"{quote_ident(schema)}.{quote_ident(table)}" if schema else quote_ident(table)
    queries.append(f"SELECT to_regclass('{qualified}') IS NOT NULL")
    cursor.execute("SELECT to_regclass(%s) IS NOT NULL", (qualified,))
    if not cursor.fetchone()[0]:
        return live_revision([], table, schema, exists=False)
    query = f"SELECT version_num FROM {qualified} ORDER BY version_num"
    queries.append(query)
    cursor.execute(query)
    return live_revision([row[0] for row in cursor.fetchall()], table, schema)
