#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: alembic
short_description: Run an application's Alembic migrations with a plan, a lint and an undo
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Reads the current revision, the heads and the history of an application's Alembic
    migrations, and upgrades or downgrades the database - with the guards a production
    deployment needs.
  - Alembic runs through its Python API in a subprocess of the application's own Python
    (O(python)), in the application's directory, so its C(env.py) may import the
    application. The database URL reaches C(env.py) through the environment variable
    O(url_env), never on a command line; it never appears in the output.
  - Before anything runs, it plans - the current revision, the pending revisions in order,
    their offline SQL (C(alembic upgrade --sql)) - and lints that SQL for operations that lock
    or rewrite big tables (see O(lint_policy)). A finding whose policy is V(fail) stops the
    run before anything is written. When the offline SQL of a pending revision cannot be
    generated (for example a data migration that reads results through C(op.get_bind())),
    the run is refused if any SQL rule's policy is V(fail), since the lint cannot see it;
    with V(warn) policies it runs with a warning.
  - Multiple heads are an error that names them. A downgrade through a revision whose
    C(downgrade()) is missing, empty (only C(pass), C(...) or a docstring) or raises
    C(NotImplementedError) is refused before anything runs, naming the revision and its
    file.
  - The migration session runs with O(lock_timeout) and O(statement_timeout) (passed in
    C(PGOPTIONS) and the URL's C(options)), so a migration waiting for a lock held by the
    running application fails fast instead of queueing every query behind it.
  - A failed upgrade is undone. With C(transaction_per_migration=True) a failure in revision
    N of M leaves the N-1 revisions before it committed; the module downgrades them again to
    the revision the run started from and checks that C(alembic_version) says so
    (RV(compensated)). When that is impossible - one of them has no downgrade step - it fails
    saying which revision the database is at.
  - Why a module - the collections that ship with Ansible have none for Alembic, and
    C(alembic upgrade head) in a M(ansible.builtin.command) task has no check mode, no plan,
    no lint, no timeouts, and leaves a half-applied run behind.
options:
  action:
    description:
      - V(current) - the current revision of the database (and what is pending up to the
        head).
      - V(heads) - the heads of the migrations; more than one is an error.
      - V(history) - every revision with its down revisions and whether it has a downgrade
        step, oldest first. Does not connect to the database.
      - V(upgrade) - upgrade to O(target).
      - V(downgrade) - downgrade to O(target).
      - V(check) - plan and lint an upgrade to O(target) and stop; never writes. Fails on a
        V(fail) finding, as V(upgrade) would.
    type: str
    choices: [current, heads, history, upgrade, downgrade, check]
    default: upgrade
  config:
    description: Path of the application's C(alembic.ini).
    type: path
    required: true
  chdir:
    description:
      - Directory Alembic runs in (relative paths of C(alembic.ini), C(prepend_sys_path)).
      - Default the directory of O(config).
    type: path
  python:
    description:
      - Python interpreter that has Alembic and the application installed - in production
        the application's virtualenv.
      - Default the interpreter that runs this module.
    type: path
  target:
    description:
      - Revision to upgrade or downgrade to - a revision id (or a unique prefix), a branch
        label, V(head), V(base), or a relative step such as V(+1) / V(-1).
      - Default V(head) for O(action=upgrade) and O(action=check); required for
        O(action=downgrade).
    type: str
  url_env:
    description: Environment variable through which C(env.py) reads the database URL.
    type: str
    default: DATABASE_URL
  env:
    description:
      - Extra environment for C(env.py) and the migrations, e.g. settings the application
        needs to import. Cannot set O(url_env) or C(PGOPTIONS).
    type: dict
    default: {}
  lock_timeout:
    description:
      - PostgreSQL C(lock_timeout) of the migration session - how long a statement may wait
        for a lock before it fails. A duration such as V(5s), V(500ms) or V(0) (no limit).
    type: str
    default: 5s
  statement_timeout:
    description:
      - PostgreSQL C(statement_timeout) of the migration session. The default stops a
        runaway statement; raise it for a migration that legitimately takes longer (a big
        backfill or C(CREATE INDEX CONCURRENTLY) on a large table). V(0) means no limit.
    type: str
    default: 15min
  lint:
    description: Lint the offline SQL of the pending revisions before an upgrade.
    type: bool
    default: true
  lint_policy:
    description:
      - Policy per lint rule - V(warn) (report it in RV(lint) and as a warning), V(fail) (stop
        before anything runs) or V(ignore). Every rule defaults to V(warn).
      - V(alter-column-type) - C(ALTER COLUMN ... TYPE), which rewrites the table.
      - V(add-column-not-null) - C(ADD COLUMN ... NOT NULL) without C(DEFAULT), which fails
        on a table with rows.
      - V(set-not-null) - C(SET NOT NULL), a full scan under an exclusive lock.
      - V(create-index-blocking) - C(CREATE INDEX) without C(CONCURRENTLY) on a table that
        the revision did not create.
      - V(drop-column), V(drop-table) - the running release may still use what is dropped.
      - V(no-downgrade) - a revision without a downgrade step; a failure after it cannot be
        undone automatically.
      - Statements on a table created in the same revision are not flagged (it is empty).
    type: dict
    default: {}
  compensate:
    description:
      - When an upgrade fails after some revisions were committed, downgrade them again to
        the revision the run started from.
    type: bool
    default: true
  guard:
    description:
      - For O(action=downgrade) - ask the schema compatibility guard first (the decision of
        M(prodready.deploy.schema_guard), taken in the same read of the scripts and the live
        revision that the downgrade uses) - downgrade only when it plans V(downgrade); for
        V(restore), V(none) or V(upgrade) run nothing and return the plan in RV(plan) (a
        rollback then restores O(guard.backup)); fail when it is V(blocked), saying why.
      - One call instead of C(history), M(prodready.deploy.schema_guard) and C(downgrade),
        for a rollback that has to be quick.
      - O(target) must name the revision the target release's schema is at (a revision id
        or a unique prefix), not V(head), V(base) or a relative step. A database with several
        applied heads, or without its version table (the wrong database), is refused before
        anything runs, as M(prodready.deploy.schema_guard) refuses it.
    type: dict
    suboptions:
      backup:
        description:
          - The verified pre-release backup (C(backup_id), C(alembic_revision), C(sha256),
            C(path)), as M(prodready.deploy.pg_backup) returns it; the guard plans V(restore)
            when no downgrade path exists and it holds O(target).
        type: dict
      prefer:
        description: When both a downgrade and a restore work, which one to plan.
        type: str
        choices: [downgrade, restore]
        default: downgrade
extends_documentation_fragment:
  - prodready.deploy._postgres
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Reads the current revision (in a read-only session) and reports the pending
        revisions, their offline SQL (RV(sql)) and the lint; writes nothing.
  diff_mode:
    support: full
    details: The revision before and after.
  platform:
    platforms: posix
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: full
    details: An upgrade at the target or a downgrade already at the target changes nothing.
requirements:
  - alembic and SQLAlchemy for the interpreter O(python).
notes:
  - The URL is built from the connection options and keeps the driver of O(url) (for example
    V(postgresql+psycopg2://)); the connection settings (V(sslmode), V(sslrootcert), ...)
    travel in its query.
  - Work done inside C(autocommit_block()) (such as C(CREATE INDEX CONCURRENTLY)) in the
    revision that fails is not rolled back by PostgreSQL; write such revisions so that a
    re-run cleans up (C(DROP INDEX CONCURRENTLY IF EXISTS) first).
  - Without C(transaction_per_migration=True) PostgreSQL runs all pending revisions in one
    transaction, and a failure leaves nothing to undo.
seealso:
  - name: Alembic
    description: The migration tool this module drives.
    link: https://alembic.sqlalchemy.org/
"""

EXAMPLES = r"""
---
- name: Upgrade the database to the head, failing on migrations that rewrite tables
  prodready.deploy.alembic:
    config: /srv/shop/alembic.ini
    python: /srv/shop/venv/bin/python
    url: "{{ shop_database_url }}"
    lint_policy:
      alter-column-type: fail
      create-index-blocking: fail
  register: migration

- name: Record the revisions for the release
  ansible.builtin.debug:
    msg: "{{ migration.from_revision }} -> {{ migration.to_revision }}"

- name: Show what an upgrade would run
  prodready.deploy.alembic:
    action: check
    config: /srv/shop/alembic.ini
    url: "{{ shop_database_url }}"

- name: Downgrade to the revision the previous release shipped
  prodready.deploy.alembic:
    action: downgrade
    target: 0002_users_email_idx
    config: /srv/shop/alembic.ini
    url: "{{ shop_database_url }}"

- name: Bring the schema back for a rollback - downgrade, or say that the backup is needed
  prodready.deploy.alembic:
    action: downgrade
    target: "{{ previous_release.alembic_head }}"
    config: /srv/shop/alembic.ini
    url: "{{ shop_database_url }}"
    guard:
      backup: "{{ pre_release_backup }}"
  register: schema_back

- name: List the revisions for the schema guard
  prodready.deploy.alembic:
    action: history
    config: /srv/shop/alembic.ini
  register: history
"""

RETURN = r"""
action:
  description: The action that ran.
  returned: always
  type: str
  sample: upgrade
current:
  description:
    - The revision the database is at after the module ran (before, in check mode); null
      at base. Several revisions (one per branch) are joined with a comma.
  returned: when the database was read
  type: str
  sample: 0003_backfill_email_domain
heads:
  description: The heads of the migrations.
  returned: always, except when the scripts could not be read
  type: list
  elements: str
  sample: [0003_backfill_email_domain]
script_heads:
  description:
    - The heads of the migration scripts the module ran with - what this release's code
      ships. The release record keeps it beside RV(to_revision).
  returned: for current, upgrade, downgrade and check, except when the scripts could not be
    read
  type: list
  elements: str
  sample: [0003_backfill_email_domain]
from_revision:
  description:
    - The revision the database was at before the run; null at base. Several revisions
      (one per branch, possible before a downgrade) are joined with a comma.
  returned: for upgrade, downgrade and check
  type: str
  sample: 0001_initial
to_revision:
  description:
    - The revision the run goes to (in check mode, would go to) as Alembic resolves
      O(target) - what C(alembic_version) holds afterwards, which the module checks after
      the run; null for base.
    - Several revisions are joined with a comma - a downgrade from a merge revision to one
      of its parents leaves the database at the heads of both branches, as Alembic does.
  returned: for upgrade, downgrade and check
  type: str
  sample: 0003_backfill_email_domain
pending:
  description: The revisions the run applies (upgrade) or removes (downgrade), in order.
  returned: for current, upgrade, downgrade and check
  type: list
  elements: str
  sample: [0002_users_email_idx, 0003_backfill_email_domain]
revisions:
  description: The revisions that were applied or removed and stayed so, in order. Empty in
    check mode and after a compensated failure.
  returned: for upgrade and downgrade
  type: list
  elements: str
  sample: [0002_users_email_idx, 0003_backfill_email_domain]
sql:
  description: The offline SQL of each pending revision, in order.
  returned: in check mode and for action check
  type: list
  elements: dict
  sample: [{"revision": 0003_backfill_email_domain, "sql": "BEGIN;\n\nALTER TABLE users ..."}]
lint:
  description: The lint findings, in revision and statement order.
  returned: for upgrade and check when O(lint=true)
  type: list
  elements: dict
  contains:
    rule:
      description: Stable id of the rule (see O(lint_policy)).
      type: str
      sample: create-index-blocking
    revision:
      description: The revision.
      type: str
    file:
      description: Its file.
      type: str
    statement:
      description: The statement, truncated to 200 characters; empty for V(no-downgrade).
      type: str
      sample: CREATE INDEX ix_users_name ON users (name)
    message:
      description: What the statement does and what to do instead.
      type: str
    policy:
      description: V(warn) or V(fail).
      type: str
compensated:
  description: True when a failed upgrade was undone and the database is back at
    RV(from_revision).
  returned: for upgrade and downgrade
  type: bool
  sample: false
failed_revision:
  description: The revision that was running when the migration failed.
  returned: when a run failed
  type: str
  sample: 0005_add_flag
error:
  description: The original error of a failed run (also in the message).
  returned: when a run failed
  type: str
history:
  description: Every revision, oldest first. The keys are a contract (the schema guard
    consumes them).
  returned: for history
  type: list
  elements: dict
  sample:
    - {"revision": 0001_initial, "down_revisions": [], "has_downgrade": true,
       "is_head": false, "path": /srv/shop/migrations/versions/0001_initial.py,
       "doc": Create users and audit_log., "branch_labels": []}
plan:
  description:
    - The guard's decision (as M(prodready.deploy.schema_guard) returns it in its C(plan)) -
      C(action) (V(none), V(upgrade), V(downgrade), V(restore) or V(blocked)),
      C(from_revision), C(to_revision), C(backup_id), C(reason) and C(steps). Only a
      V(downgrade) was run.
  returned: for downgrade with O(guard)
  type: dict
  sample: {"action": "downgrade", "from_revision": 0003_backfill_email_domain,
           "to_revision": 0002_users_email_idx, "backup_id": null, "steps":
           [0003_backfill_email_domain], "reason": "live revision 0003_backfill_email_domain
           is unknown to the target release (head 0002_users_email_idx); ..."}
commands:
  description: What ran, as the equivalent alembic command lines (without secrets).
  returned: always
  type: list
  elements: str
  sample:
    - alembic -c /srv/shop/alembic.ini current
    - alembic -c /srv/shop/alembic.ini upgrade 0003_backfill_email_domain
log:
  description: The last lines Alembic and env.py wrote to stderr, secrets removed.
  returned: always
  type: list
  elements: str
duration_s:
  description: Seconds the module took.
  returned: always
  type: float
  sample: 1.8
"""

import sys
import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._dburl import (
    DbUrlError,
    parse_db_url,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    CONNECTION_ARG_SPEC,
    PgConnectError,
    PgError,
    from_params,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.guard import PREFER
from ansible_collections.prodready.deploy.plugins.module_utils._pg.migrate import (
    Alembic,
    Guard,
    MigrateError,
    MigrationFailedError,
    Migrator,
    Outcome,
    Settings,
    scrub,
    scrub_all,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.sqllint import (
    LintPolicyError,
    resolve_policy,
)

DB_ACTIONS = ("current", "upgrade", "downgrade", "check")


def settings_from(params: dict[str, Any]) -> Settings:
    needs_db = params["action"] in DB_ACTIONS
    conn = from_params(params) if needs_db else None
    driver = None
    if params.get("url"):
        try:
            driver = parse_db_url(params["url"]).get("driver")
        except DbUrlError:
            driver = None  # from_params() reported it already
    settings = Settings(
        config=params["config"], chdir=params["chdir"], python=params["python"], conn=conn,
        driver=driver, url_env=params["url_env"],
        env={str(k): str(v) for k, v in params["env"].items()},
        lock_timeout=params["lock_timeout"], statement_timeout=params["statement_timeout"])
    settings.check()
    return settings


def run(module: AnsibleModule, result: dict[str, Any], alembic: Alembic) -> None:
    params = module.params
    action = params["action"]
    migrator = Migrator(alembic)
    if action in ("history", "heads"):
        script = migrator.script()
        result["heads"] = sorted(script.heads)
        if action == "heads":
            script.single_head("the head")
        else:
            result["history"] = script.history()
        return
    if action == "current":
        # Multiple heads make "pending" ambiguous, not the current revision.
        current, pending, _steps = migrator.state("upgrade", "heads")
        heads = sorted(migrator.script().heads)
        result.update(current=",".join(current) or None, pending=pending, heads=heads,
                      script_heads=heads)
        return
    policy = resolve_policy(params["lint_policy"])
    direction = "downgrade" if action == "downgrade" else "upgrade"
    target = params["target"] or "head"
    check = module.check_mode or action == "check"
    try:
        guard = None
        if params["guard"] is not None and direction == "downgrade":
            guard = Guard(backup=params["guard"]["backup"], prefer=params["guard"]["prefer"])
        outcome = migrator.migrate(direction, target, check_mode=check, want_sql=check,
                                   lint=params["lint"] and direction == "upgrade",
                                   policy=policy, compensate=params["compensate"],
                                   guard=guard)
    except MigrateError as exc:
        if exc.details.get("outcome") is not None:
            _record(module, result, exc.details["outcome"], action, alembic)
        raise
    _record(module, result, outcome, action, alembic)
    if action == "check":
        result["changed"] = False


def _record(module: AnsibleModule, result: dict[str, Any], outcome: Outcome, action: str,
            alembic: Alembic) -> None:
    result.update(outcome.as_result())
    result["changed"] = bool(outcome.changed)
    for warning in outcome.warnings:
        module.warn(scrub(warning, alembic.settings.secrets()))
    warned = [f for f in outcome.lint if f["policy"] == "warn"]
    if warned:
        module.warn(f"migration lint: {len(warned)} finding(s) - "
                    + "; ".join(f"{f['rule']} in {f['revision']}" for f in warned))
    if module._diff and action in ("upgrade", "downgrade"):
        result["diff"] = {"before": f"revision: {outcome.from_revision or 'base'}\n",
                          "after": f"revision: {outcome.to_revision or 'base'}\n"}


def main() -> None:
    argument_spec = {
        **CONNECTION_ARG_SPEC,
        "action": {"type": "str", "default": "upgrade",
                   "choices": ["current", "heads", "history", "upgrade", "downgrade",
                               "check"]},
        "config": {"type": "path", "required": True},
        "chdir": {"type": "path"},
        "python": {"type": "path"},
        "target": {"type": "str"},
        "url_env": {"type": "str", "default": "DATABASE_URL"},
        "env": {"type": "dict", "default": {}, "no_log": True},
        "lock_timeout": {"type": "str", "default": "5s"},
        "statement_timeout": {"type": "str", "default": "15min"},
        "lint": {"type": "bool", "default": True},
        "lint_policy": {"type": "dict", "default": {}},
        "compensate": {"type": "bool", "default": True},
        "guard": {"type": "dict", "options": {
            "backup": {"type": "dict"},
            "prefer": {"type": "str", "choices": list(PREFER), "default": "downgrade"},
        }},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("action", "downgrade", ["target"])])
    params = module.params
    if params["guard"] is not None and params["action"] != "downgrade":
        module.fail_json(msg=f"guard applies to action=downgrade only, not {params['action']}:"
                             " remove guard, or use action=downgrade")
    started = time.monotonic()
    result: dict[str, Any] = {"changed": False, "action": params["action"], "commands": [],
                              "log": []}
    what = f"{params['action']} the database with {params['config']}"
    alembic = None
    try:
        alembic = Alembic(settings_from(params), python=sys.executable)
        run(module, result, alembic)
    except MigrationFailedError as exc:
        result.update(failed_revision=exc.details.get("failed_revision"),
                      error=exc.details.get("error"))
        _fail(module, result, alembic, started, f"Alembic {exc}")
    except PgConnectError as exc:
        _fail(module, result, alembic, started, f"Failed to {what} ({exc})")
    except (MigrateError, PgError, LintPolicyError) as exc:
        if isinstance(exc, MigrateError) and "heads" in exc.details:
            result["heads"] = exc.details["heads"]
        _fail(module, result, alembic, started, f"Failed to {what}: {exc}")
    finally:
        if alembic is not None:
            alembic.close()
    _finish(result, alembic, started)
    module.exit_json(**result)


def _finish(result: dict[str, Any], alembic: Alembic | None, started: float) -> None:
    if alembic is not None:
        result["commands"] = alembic.commands
        result["log"] = alembic.log[-40:]
        # The password, the URL and every env value, whatever their length.
        result.update(scrub_all(result, alembic.settings.secrets()))
    result["duration_s"] = round(time.monotonic() - started, 2)


def _fail(module: AnsibleModule, result: dict[str, Any], alembic: Alembic | None,
          started: float, msg: str) -> None:
    _finish(result, alembic, started)
    if alembic is not None:
        msg = scrub(msg, alembic.settings.secrets())
    module.fail_json(msg=msg, **result)


if __name__ == "__main__":
    main()
