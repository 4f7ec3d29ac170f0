# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A lint for the SQL of database migrations: operations that lock or rewrite big tables.

It reads the offline SQL Alembic writes for each pending revision (``alembic upgrade
--sql``) and flags, per statement:

- ``alter-column-type`` - ``ALTER COLUMN ... TYPE`` rewrites the table under an ACCESS
  EXCLUSIVE lock (unless the new type is binary compatible);
- ``add-column-not-null`` - ``ADD COLUMN ... NOT NULL`` without a ``DEFAULT`` fails on a
  table with rows;
- ``set-not-null`` - ``SET NOT NULL`` scans the whole table under an ACCESS EXCLUSIVE lock;
- ``create-index-blocking`` - ``CREATE INDEX`` without ``CONCURRENTLY`` blocks writes while
  the index builds;
- ``drop-column`` / ``drop-table`` - the running release may still use what is dropped,
  and a downgrade cannot bring the data back;

plus ``no-downgrade`` for a revision without a downgrade step (decided by the caller).

Statements on a table created in the same revision are not flagged for locks or rewrites:
the table is new and empty. The lint is a text scanner, not a parser: string literals,
quoted identifiers, comments and dollar quotes are understood, which is what it needs to
never flag an operation written inside a literal.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# Rule id -> (default policy, what it means). The ids are stable: users name them in
# lint_policy.
RULES: dict[str, str] = {
    "alter-column-type": "ALTER COLUMN ... TYPE rewrites the table",
    "add-column-not-null": "ADD COLUMN ... NOT NULL without DEFAULT",
    "set-not-null": "SET NOT NULL scans the table under an exclusive lock",
    "create-index-blocking": "CREATE INDEX without CONCURRENTLY on an existing table",
    "drop-column": "DROP COLUMN",
    "drop-table": "DROP TABLE",
    "no-downgrade": "revision without a downgrade step",
}
POLICIES = ("warn", "fail", "ignore")
DEFAULT_POLICY = "warn"
STATEMENT_LIMIT = 200


class LintPolicyError(ValueError):
    """lint_policy names an unknown rule or policy."""


@dataclass(frozen=True)
class Finding:
    rule: str
    revision: str
    file: str | None
    statement: str
    message: str
    policy: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Statement:
    text: str     # as written, comments removed, whitespace collapsed
    masked: str   # literals emptied: what the rules match against


def resolve_policy(overrides: dict[str, str] | None) -> dict[str, str]:
    """The policy of every rule: the defaults with ``overrides`` applied, checked."""
    policy = dict.fromkeys(RULES, DEFAULT_POLICY)
    for rule, value in (overrides or {}).items():
        if rule not in RULES:
            raise LintPolicyError(f"lint_policy: unknown rule {rule!r}; the rules are"
                                  f" {', '.join(RULES)}")
        if value not in POLICIES:
            raise LintPolicyError(f"lint_policy: {rule}: unknown policy {value!r}; use one of"
                                  f" {', '.join(POLICIES)}")
        policy[rule] = value
    return policy


_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")


def split_statements(sql: str) -> list[Statement]:
    """Split SQL text into statements at top-level semicolons.

    Comments are dropped; in ``masked`` the contents of string literals and dollar quotes
    are emptied and quoted identifiers keep their text.
    """
    statements: list[Statement] = []
    text: list[str] = []
    masked: list[str] = []
    i, n = 0, len(sql)

    def flush() -> None:
        plain = " ".join("".join(text).split())
        if plain:
            statements.append(Statement(plain, " ".join("".join(masked).split())))
        text.clear()
        masked.clear()

    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end
            continue
        if ch == "/" and sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
            text.append(" ")
            masked.append(" ")
            continue
        if ch in ("'", '"'):
            j = i + 1
            while j < n:
                if sql[j] == ch:
                    if j + 1 < n and sql[j + 1] == ch:  # doubled quote inside
                        j += 2
                        continue
                    break
                j += 1
            literal = sql[i:j + 1]
            text.append(literal)
            masked.append("''" if ch == "'" else literal)
            i = j + 1
            continue
        if ch == "$":
            tag = _DOLLAR_TAG.match(sql, i)
            if tag:
                end = sql.find(tag.group(0), tag.end())
                stop = n if end < 0 else end + len(tag.group(0))
                text.append(sql[i:stop])
                masked.append("''")
                i = stop
                continue
        if ch == ";":
            flush()
            i += 1
            continue
        text.append(ch)
        masked.append(ch)
        i += 1
    flush()
    return statements


_IDENT = r'(?:"(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)'
_QNAME = rf"{_IDENT}(?:\s*\.\s*{_IDENT})*"
_I = re.IGNORECASE | re.DOTALL
_CREATE_TABLE = re.compile(
    r"^CREATE\s+(?:(?:GLOBAL|LOCAL)\s+)?(?:(?:TEMP|TEMPORARY|UNLOGGED)\s+)?TABLE\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?P<table>{_QNAME})", _I)
_ALTER_TABLE = re.compile(
    rf"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<table>{_QNAME})\s*\*?\s+"
    r"(?P<actions>.*)$", _I)
_CREATE_INDEX = re.compile(
    r"^CREATE\s+(?:UNIQUE\s+)?INDEX\s+(?P<concurrently>CONCURRENTLY\s+)?"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?(?:(?!ON\s){_QNAME}\s+)?ON\s+(?:ONLY\s+)?(?P<table>{_QNAME})",
    _I)
_DROP_TABLE = re.compile(
    rf"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<tables>{_QNAME}(?:\s*,\s*{_QNAME})*)", _I)
_ALTER_TYPE = re.compile(
    rf"^ALTER\s+(?:COLUMN\s+)?(?P<column>{_IDENT})\s+(?:SET\s+DATA\s+)?TYPE\b", _I)
_SET_NOT_NULL = re.compile(
    rf"^ALTER\s+(?:COLUMN\s+)?(?P<column>{_IDENT})\s+SET\s+NOT\s+NULL\b", _I)
_ADD_COLUMN = re.compile(
    rf"^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<column>{_IDENT})\s+(?P<rest>.*)$", _I)
_ADD_NOT_COLUMN = re.compile(r"^ADD\s+(?:CONSTRAINT|PRIMARY|UNIQUE|CHECK|FOREIGN|EXCLUDE)\b", _I)
_DROP_COLUMN = re.compile(
    rf"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?P<column>{_IDENT})", _I)
_DROP_NOT_COLUMN = re.compile(
    r"^DROP\s+(?:CONSTRAINT|NOT\s+NULL|DEFAULT|EXPRESSION|IDENTITY)\b", _I)
_NOT_NULL = re.compile(r"\bNOT\s+NULL\b", _I)
_HAS_DEFAULT = re.compile(r"\bDEFAULT\b|\bGENERATED\b", _I)
_ADD = re.compile(r"^ADD\b", _I)
_DROP = re.compile(r"^DROP\b", _I)


def table_key(name: str) -> str:
    """The table's own name (schema dropped), unquoted, for comparing references."""
    last = re.findall(_IDENT, name)[-1]
    if last.startswith('"'):
        return last[1:-1].replace('""', '"')
    return last.lower()


def _split_actions(actions: str) -> list[str]:
    """The comma-separated actions of an ALTER TABLE, split at depth 0."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(actions):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(actions[start:i].strip())
            start = i + 1
    parts.append(actions[start:].strip())
    return [p for p in parts if p]


def _truncate(text: str) -> str:
    return text if len(text) <= STATEMENT_LIMIT else text[:STATEMENT_LIMIT - 3] + "..."


def _display(name: str) -> str:
    return name.strip().lower() if '"' not in name else name.strip()


def statement_findings(statement: Statement, created: set[str]) -> list[tuple[str, str]]:
    """(rule, message) for one statement; ``created`` holds the tables created earlier in
    the same revision (and is updated)."""
    masked = statement.masked
    found: list[tuple[str, str]] = []
    match = _CREATE_TABLE.match(masked)
    if match:
        created.add(table_key(match["table"]))
        return found
    match = _CREATE_INDEX.match(masked)
    if match:
        table = table_key(match["table"])
        if not match["concurrently"] and table not in created:
            found.append(("create-index-blocking",
                          f"builds an index on table {_display(match['table'])} without"
                          " CONCURRENTLY, which blocks writes to the table until the build"
                          " ends; create it with postgresql_concurrently=True inside"
                          " op.get_context().autocommit_block()"))
        return found
    match = _DROP_TABLE.match(masked)
    if match:
        for name in re.findall(_QNAME, match["tables"]):
            if table_key(name) not in created:
                found.append(("drop-table",
                              f"drops table {_display(name)}: the running release may still"
                              " use it, and a downgrade cannot bring its rows back; stop"
                              " using it in one release, drop it in a later one"))
        return found
    match = _ALTER_TABLE.match(masked)
    if not match or table_key(match["table"]) == "alembic_version":
        return found
    table = _display(match["table"])
    new = table_key(match["table"]) in created
    for action in _split_actions(match["actions"]):
        hit = _ALTER_TYPE.match(action)
        if hit and not new:
            found.append(("alter-column-type",
                          f"changes the type of column {_display(hit['column'])} of table"
                          f" {table}: unless the types are binary compatible PostgreSQL"
                          " rewrites the table (and its indexes) under an ACCESS EXCLUSIVE"
                          " lock; add a new column, backfill it and switch over instead"))
            continue
        hit = _SET_NOT_NULL.match(action)
        if hit and not new:
            found.append(("set-not-null",
                          f"sets column {_display(hit['column'])} of table {table} NOT NULL,"
                          " which scans the whole table under an ACCESS EXCLUSIVE lock;"
                          " first add CHECK (... IS NOT NULL) NOT VALID and VALIDATE it"
                          " (PostgreSQL 12+ then skips the scan)"))
            continue
        if _ADD.match(action) and not _ADD_NOT_COLUMN.match(action):
            hit = _ADD_COLUMN.match(action)
            if hit and not new and _NOT_NULL.search(hit["rest"]) \
                    and not _HAS_DEFAULT.search(hit["rest"]):
                found.append(("add-column-not-null",
                              f"adds column {_display(hit['column'])} to table {table} as"
                              " NOT NULL without a DEFAULT, which fails as soon as the"
                              " table has rows; give it a DEFAULT, or add it nullable,"
                              " backfill, then set NOT NULL"))
            continue
        if _DROP.match(action) and not _DROP_NOT_COLUMN.match(action):
            hit = _DROP_COLUMN.match(action)
            if hit:
                found.append(("drop-column",
                              f"drops column {_display(hit['column'])} of table {table}: the"
                              " running release may still read it, and a downgrade cannot"
                              " bring its values back; stop using it in one release, drop it"
                              " in a later one"))
    return found


def lint_revision(revision: str, path: str | None, sql: str | None, has_downgrade: bool,
                  policy: dict[str, str]) -> list[Finding]:
    """The findings of one revision, in statement order; rules set to ``ignore`` are left
    out. ``sql`` is its offline SQL (None when it could not be generated)."""
    findings: list[Finding] = []

    def add(rule: str, statement: str, message: str) -> None:
        if policy[rule] != "ignore":
            findings.append(Finding(rule, revision, path, _truncate(statement), message,
                                    policy[rule]))

    created: set[str] = set()
    for statement in split_statements(sql or ""):
        for rule, message in statement_findings(statement, created):
            add(rule, statement.text, message)
    if not has_downgrade:
        add("no-downgrade", "",
            f"revision {revision} has no downgrade step: once it is applied the schema cannot"
            " be downgraded past it, and a failure in a later revision of the same run cannot"
            " be undone automatically")
    return findings
