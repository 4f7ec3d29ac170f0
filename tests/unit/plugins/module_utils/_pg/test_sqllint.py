# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The migration lint: statement splitting, each rule, tables created in the revision,
and policies."""

from __future__ import annotations

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg.sqllint import (
    RULES,
    STATEMENT_LIMIT,
    LintPolicyError,
    lint_revision,
    resolve_policy,
    split_statements,
)

POLICY = resolve_policy({})


def rules(sql: str, has_downgrade: bool = True, policy: dict[str, str] | None = None
          ) -> list[str]:
    return [f.rule for f in lint_revision("r1", "/m/r1.py", sql, has_downgrade,
                                          policy or POLICY)]


@pytest.mark.parametrize(("sql", "expected"), [
    ("ALTER TABLE users ALTER COLUMN name TYPE text;", ["alter-column-type"]),
    ("ALTER TABLE users ALTER name SET DATA TYPE bigint USING name::bigint;",
     ["alter-column-type"]),
    ("ALTER TABLE users ADD COLUMN age INTEGER NOT NULL;", ["add-column-not-null"]),
    ("ALTER TABLE users ADD age INTEGER NOT NULL;", ["add-column-not-null"]),
    ("ALTER TABLE users ADD COLUMN age INTEGER DEFAULT 0 NOT NULL;", []),
    ("ALTER TABLE users ADD COLUMN id2 BIGINT GENERATED ALWAYS AS IDENTITY NOT NULL;", []),
    ("ALTER TABLE users ADD COLUMN age INTEGER;", []),
    ("ALTER TABLE users ADD CONSTRAINT ck CHECK (age IS NOT NULL) NOT VALID;", []),
    ("ALTER TABLE users ALTER COLUMN email SET NOT NULL;", ["set-not-null"]),
    ("ALTER TABLE users ALTER COLUMN email DROP NOT NULL;", []),
    ("CREATE INDEX ix ON users (email);", ["create-index-blocking"]),
    ("CREATE UNIQUE INDEX ix ON public.users USING btree (email);", ["create-index-blocking"]),
    ("CREATE INDEX ON users (email);", ["create-index-blocking"]),
    ("CREATE INDEX CONCURRENTLY ix ON users (email);", []),
    ("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ix ON users (email);", []),
    ("ALTER TABLE users DROP COLUMN legacy;", ["drop-column"]),
    ("ALTER TABLE users DROP legacy;", ["drop-column"]),
    ("ALTER TABLE users DROP CONSTRAINT users_pkey;", []),
    ("ALTER TABLE users ALTER COLUMN a DROP DEFAULT;", []),
    ("DROP TABLE old;", ["drop-table"]),
    ("DROP TABLE IF EXISTS old, other;", ["drop-table", "drop-table"]),
    ("DROP INDEX CONCURRENTLY ix;", []),
    ("alter table users alter column name type text;", ["alter-column-type"]),
    ("ALTER TABLE users ALTER COLUMN a TYPE text, DROP COLUMN b, ADD c int NOT NULL;",
     ["alter-column-type", "drop-column", "add-column-not-null"]),
    ("ALTER TABLE users ADD COLUMN c numeric(10, 2) NOT NULL DEFAULT 0, DROP COLUMN d;",
     ["drop-column"]),
    ("UPDATE alembic_version SET version_num='x';", []),
    ("ALTER TABLE alembic_version ALTER COLUMN version_num TYPE VARCHAR(64);", []),
])
def test_rules(sql, expected):
    assert rules(sql) == expected


@pytest.mark.parametrize("sql", [
    "UPDATE t SET note = 'ALTER TABLE users DROP COLUMN x;';",
    "INSERT INTO t VALUES ($$DROP TABLE users;$$);",
    "INSERT INTO t VALUES ($body$CREATE INDEX ix ON users (a);$body$);",
    "-- DROP TABLE users;\nSELECT 1;",
    "/* ALTER TABLE users DROP COLUMN a; */ SELECT 1;",
    "UPDATE t SET note = 'it''s; DROP TABLE users';",
])
def test_operations_inside_literals_and_comments_are_not_flagged(sql):
    assert rules(sql) == []


def test_statements_on_a_table_created_in_the_revision_are_fine():
    sql = """
        CREATE TABLE audit (id int, v int);
        CREATE INDEX ix_audit_v ON audit (v);
        ALTER TABLE audit ADD COLUMN w int NOT NULL;
        ALTER TABLE audit ALTER COLUMN v TYPE bigint;
        CREATE INDEX ix_users ON users (email);
    """
    assert rules(sql) == ["create-index-blocking"]


def test_quoted_identifiers_keep_their_case():
    sql = 'CREATE TABLE "Audit" (id int); CREATE INDEX ix ON "Audit" (id);' \
          ' CREATE INDEX ix2 ON audit (id);'
    findings = lint_revision("r1", None, sql, True, POLICY)
    assert [f.rule for f in findings] == ["create-index-blocking"]
    assert "table audit " in findings[0].message


def test_finding_fields_and_truncation():
    long = "ALTER TABLE users ALTER COLUMN name TYPE " + "x" * 400 + ";"
    (finding,) = lint_revision("0004_x", "/m/0004_x.py", long, True, POLICY)
    assert finding.to_dict().keys() == {"rule", "revision", "file", "statement", "message",
                                        "policy"}
    assert (finding.revision, finding.file, finding.policy) == ("0004_x", "/m/0004_x.py",
                                                                "warn")
    assert len(finding.statement) == STATEMENT_LIMIT and finding.statement.endswith("...")
    assert "column name of table users" in finding.message


def test_no_downgrade_rule():
    findings = lint_revision("0004_x", "/m/0004_x.py", None, False, POLICY)
    assert [(f.rule, f.statement) for f in findings] == [("no-downgrade", "")]
    assert "0004_x has no downgrade step" in findings[0].message


def test_policies_apply_and_ignore_drops():
    policy = resolve_policy({"drop-column": "fail", "create-index-blocking": "ignore"})
    findings = lint_revision("r", None, "CREATE INDEX i ON t (a); ALTER TABLE t DROP a;",
                             True, policy)
    assert [(f.rule, f.policy) for f in findings] == [("drop-column", "fail")]


def test_default_policy_is_warn_for_every_rule():
    assert resolve_policy(None) == dict.fromkeys(RULES, "warn")


@pytest.mark.parametrize(("overrides", "message"), [
    ({"drop-colum": "fail"}, "unknown rule 'drop-colum'"),
    ({"drop-column": "error"}, "drop-column: unknown policy 'error'"),
])
def test_bad_policy(overrides, message):
    with pytest.raises(LintPolicyError, match=message):
        resolve_policy(overrides)


def test_split_statements_masks_literals():
    stmts = split_statements("SELECT 'a;b', \"Col;x\"; -- c;\nSELECT $$x;y$$ /* ; */;")
    assert [s.text for s in stmts] == ["SELECT 'a;b', \"Col;x\"", "SELECT $$x;y$$"]
    assert [s.masked for s in stmts] == ["SELECT '', \"Col;x\"", "SELECT ''"]
