# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alembic revisions: chain, head constant, self-containment and offline SQL."""

from __future__ import annotations

import ast
import io

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

EXPECTED_CHAIN = ["0001_initial", "0002_users_email_idx", "0003_backfill_email_domain"]


@pytest.fixture
def alembic_config(app_dir, monkeypatch):
    # Offline mode only needs the dialect; nothing connects to this URL.
    monkeypatch.setenv("DATABASE_URL", "postgresql://user@db.invalid:5432/app")
    buffer = io.StringIO()
    cfg = Config(str(app_dir / "alembic.ini"), output_buffer=buffer)
    cfg.attributes["buffer"] = buffer
    return cfg


def test_revision_chain_and_head(alembic_config, refapp_pkg):
    script = ScriptDirectory.from_config(alembic_config)
    assert script.get_heads() == [refapp_pkg.ALEMBIC_HEAD]
    chain = [rev.revision for rev in script.walk_revisions("base", "heads")]
    assert list(reversed(chain)) == EXPECTED_CHAIN


def test_revision_files_are_named_after_their_ids(app_dir):
    names = sorted(p.stem for p in (app_dir / "migrations" / "versions").glob("*.py"))
    assert names == EXPECTED_CHAIN


def test_migrations_do_not_import_the_app(app_dir):
    for path in (app_dir / "migrations").rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            else:
                continue
            assert not any(m == "refapp" or m.startswith("refapp.") for m in modules), path


def test_env_uses_transaction_per_migration(app_dir):
    assert (
        app_dir.joinpath("migrations", "env.py").read_text().count("transaction_per_migration=True")
        == 2
    )


def _offline_sql(cfg, direction, target):
    getattr(command, direction)(cfg, target, sql=True)
    return cfg.attributes["buffer"].getvalue()


def test_offline_upgrade_builds_index_concurrently_outside_a_transaction(alembic_config):
    sql = _offline_sql(alembic_config, "upgrade", "base:head")
    assert "CREATE TABLE users" in sql
    assert "CREATE TABLE audit_log" in sql
    assert "REFERENCES" not in sql  # audit rows must outlive the user
    create = sql.index("CREATE UNIQUE INDEX CONCURRENTLY users_email_idx ON users (email)")
    # autocommit_block() ends the revision's transaction before the statement.
    assert sql.rfind("COMMIT", 0, create) > sql.rfind("BEGIN", 0, create)
    assert "ALTER TABLE users ADD COLUMN email_domain" in sql
    assert "UPDATE users SET email_domain" in sql
    assert sql.count("UPDATE alembic_version") == 2
    assert sql.index("0003_backfill_email_domain") > create


def test_offline_downgrade_drops_index_concurrently(alembic_config):
    sql = _offline_sql(alembic_config, "downgrade", "head:base")
    assert "DROP INDEX CONCURRENTLY IF EXISTS users_email_idx" in sql
    assert "ALTER TABLE users DROP COLUMN email_domain" in sql
    assert "DROP TABLE audit_log" in sql
    assert "DROP TABLE users" in sql
