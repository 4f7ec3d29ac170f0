# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The db_migrate role against the lab's PostgreSQL, with a copy of the reference app's
migrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pgutil import connect, copy_refapp_migrations, db_url, scratch_db

REPO = Path(__file__).resolve().parents[2]
HEAD = "0003_backfill_email_domain"
CANARY = "canary-env-3b8d0f5e77a1"
PASSWORD_CANARY = "canary-Pw-5c1e0a9d2f"


@pytest.fixture
def db(lab_env: dict[str, str]):
    with scratch_db(lab_env, "mg2") as name:
        yield name


@pytest.fixture
def app(tmp_path: Path) -> Path:
    return copy_refapp_migrations(tmp_path / "app")


def play(lab_env: dict[str, str], tmp_path: Path, role_vars: dict[str, Any], *flags: str
         ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any] | None]:
    """Run the role (in a block whose rescue keeps going) and print db_migrate_result; the
    process and the fact (None when the role did not set it)."""
    playbook = tmp_path / "migrate.yml"
    playbook.write_text(json.dumps([{
        "name": "Migrate", "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"name": "Migrate the database", "block": [
                {"name": "Run the role", "ansible.builtin.include_role": {
                    "name": "prodready.deploy.db_migrate"}, "vars": role_vars}],
             "rescue": [{"name": "Note the failure", "ansible.builtin.set_fact": {
                 "migration_failed": True}}]},
            {"name": "Show the result", "ansible.builtin.debug": {
                "msg": "RESULT={{ db_migrate_result | default(None) | to_json }}"
                       " FAILED={{ migration_failed | default(false) }}"}},
        ],
    }]))
    env = {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CALLBACK_RESULT_FORMAT": "json"}
    proc = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=600, check=False)
    fact = None
    for line in proc.stdout.splitlines():
        if '"msg": "RESULT=' in line:
            text = json.loads("{" + line.strip().rstrip(",") + "}")["msg"]
            fact = json.loads(text.removeprefix("RESULT=").rsplit(" FAILED=", 1)[0])
            if fact is not None:
                fact["_failed_in_play"] = text.endswith("FAILED=True")
    return proc, fact


def recap(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    line = next(x for x in proc.stdout.splitlines() if x.startswith("localhost "))
    return {k: int(v) for k, v in (w.split("=") for w in line.split()[2:])}


def version(lab_env: dict[str, str], db: str) -> list[str] | None:
    conn = connect(db_url(lab_env, db))
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
            if not cur.fetchone()[0]:
                return None
            cur.execute("SELECT version_num FROM alembic_version")
            return [row[0] for row in cur.fetchall()]
    finally:
        conn.close()


def test_role_check_apply_again(lab_env, tmp_path, app, db):
    role_vars = {"db_migrate_config": str(app / "alembic.ini"),
                 "db_migrate_url": db_url(lab_env, db),
                 "db_migrate_env": {"SECRET_KEY": CANARY}}
    check, fact = play(lab_env, tmp_path, role_vars, "--check")
    assert check.returncode == 0, check.stdout + check.stderr
    assert recap(check)["changed"] == 1
    assert fact["changed"] is True and fact["failed"] is False
    assert fact["pending"] == ["0001_initial", "0002_users_email_idx", HEAD]
    assert fact["revisions"] == []
    assert version(lab_env, db) is None

    first, fact = play(lab_env, tmp_path, role_vars, "-vvvv")
    assert first.returncode == 0, first.stdout + first.stderr
    assert recap(first)["changed"] == 1
    assert (fact["from_revision"], fact["to_revision"]) == (None, HEAD)
    assert fact["script_heads"] == [HEAD]
    assert fact["revisions"] == ["0001_initial", "0002_users_email_idx", HEAD]
    assert fact["lint"] == [] and fact["error"] is None
    password = lab_env["LAB_PG_APP_PASSWORD"]
    for secret in (CANARY, password):
        assert secret not in first.stdout + first.stderr
    assert "'no_log: true' was specified for this result" in first.stdout

    again, fact = play(lab_env, tmp_path, role_vars)
    assert again.returncode == 0, again.stdout + again.stderr
    assert recap(again)["changed"] == 0
    assert (fact["from_revision"], fact["to_revision"], fact["revisions"]) == (HEAD, HEAD, [])
    assert version(lab_env, db) == [HEAD]


def test_role_records_a_compensated_failure(lab_env, tmp_path, app, db):
    versions = app / "migrations" / "versions"
    (versions / "0004_ok.py").write_text(
        'import sqlalchemy as sa\nfrom alembic import op\nrevision = "0004_ok"\n'
        f'down_revision = "{HEAD}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade():\n    op.create_table('t4', sa.Column('id', sa.Integer))\n\n\n"
        "def downgrade():\n    op.drop_table('t4')\n")
    (versions / "0005_fails.py").write_text(
        'from alembic import op\nrevision = "0005_fails"\ndown_revision = "0004_ok"\n'
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade():\n    op.execute('SELECT 1 / 0')\n\n\n"
        "def downgrade():\n    pass\n")
    role_vars = {"db_migrate_config": str(app / "alembic.ini"),
                 "db_migrate_url": db_url(lab_env, db),
                 "db_migrate_lint_policy": {"no-downgrade": "ignore"}}
    proc, fact = play(lab_env, tmp_path, role_vars)
    assert proc.returncode == 0, proc.stdout + proc.stderr  # rescued by the test's block
    assert fact["_failed_in_play"] is True
    assert fact["failed"] is True and fact["compensated"] is True
    assert fact["from_revision"] is None and fact["current"] is None
    assert "division by zero" in fact["error"]
    assert "failed in revision 0005_fails" in fact["error"]
    assert version(lab_env, db) == []


def test_role_lint_policy_fail_stops_the_run(lab_env, tmp_path, app, db):
    (app / "migrations" / "versions" / "0004_idx.py").write_text(
        'from alembic import op\nrevision = "0004_idx"\n'
        f'down_revision = "{HEAD}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        "def upgrade():\n    op.create_index('ix_users_name', 'users', ['name'])\n\n\n"
        "def downgrade():\n    op.drop_index('ix_users_name', 'users')\n")
    role_vars = {"db_migrate_config": str(app / "alembic.ini"),
                 "db_migrate_url": db_url(lab_env, db), "db_migrate_target": HEAD}
    proc, fact = play(lab_env, tmp_path, role_vars)
    assert proc.returncode == 0 and fact["failed"] is False
    role_vars.update(db_migrate_target="head",
                     db_migrate_lint_policy={"create-index-blocking": "fail"})
    proc, fact = play(lab_env, tmp_path, role_vars)
    assert fact["failed"] is True
    assert "create-index-blocking in revision 0004_idx" in fact["error"]
    assert [f["rule"] for f in fact["lint"]] == ["create-index-blocking"]
    assert version(lab_env, db) == [HEAD]


def test_role_refuses_missing_inputs(lab_env, tmp_path):
    proc, fact = play(lab_env, tmp_path, {"db_migrate_config": "/srv/app/alembic.ini"})
    assert "db_migrate_url" in proc.stdout
    assert "FAILED=True" in proc.stdout
    assert fact is None


def with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1)
    return f"{scheme}://{userinfo.split(':', 1)[0]}:{password}@{host}"


def test_role_failure_shows_the_modules_message_never_the_password(lab_env, tmp_path, app,
                                                                   db):
    role_vars = {"db_migrate_config": str(app / "alembic.ini"),
                 "db_migrate_url": with_password(db_url(lab_env, db), PASSWORD_CANARY),
                 "db_migrate_env": {"SECRET_KEY": CANARY}}
    proc, fact = play(lab_env, tmp_path, role_vars, "-vvvv")
    assert proc.returncode == 0, proc.stdout + proc.stderr  # rescued by the test's block
    output = proc.stdout + proc.stderr
    for secret in (PASSWORD_CANARY, CANARY):
        assert secret not in output
    # The migration task is no_log; the rescue raises the module's own message again.
    assert "'no_log: true' was specified for this result" in output
    failed = output.split("TASK [prodready.deploy.db_migrate : Fail with the message of the"
                          " migration]", 1)[1].split("TASK [", 1)[0]
    assert "password authentication failed" in failed and "check the password" in failed
    assert fact["failed"] is True and fact["_failed_in_play"] is True
    assert "password authentication failed" in fact["error"]
    assert fact["script_heads"] == [] and fact["to_revision"] is None
    assert version(lab_env, db) is None
