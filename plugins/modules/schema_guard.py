#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: schema_guard
short_description: Decide what the schema needs before an application rollback
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - The schema/app compatibility guard. Each release records the Alembic head its image
    ships; before the application is rolled back to a release, this module compares the
    live revision of the database with that release's head and decides what must happen to
    the schema first, so the older code never runs against a schema it does not know.
  - The decision is made in the revision graph of the newer code (the release being rolled
    back), the only code that knows both revisions - as the C(history) action of
    M(prodready.deploy.alembic) returns it.
  - V(none) - the live revision is the target's head.
  - V(upgrade) - the live revision is an ancestor of the target's head - the target knows
    it and the schema is behind, not ahead; no downgrade is needed, the target's own
    migrations bring it forward.
  - V(downgrade) - the target's head is an ancestor of the live revision (the target does
    not know the live revision) and every revision on the way has a downgrade step; RV(plan.steps)
    lists them in the order they are undone. With O(prefer=restore) and a backup at the
    target's head, V(restore) instead.
  - V(restore) - a downgrade is impossible (a step has no downgrade, the revisions are on
    diverged branches, or one of them is not in the graph) and O(backup) was taken at the
    target's head.
  - V(blocked) - none of the above; the module fails and the reason says what is missing and
    what to do (supply the pre-release backup, add the missing downgrade step).
  - RV(plan.reason) always says which action was chosen and why.
  - It only decides - it never changes the database; the roles C(db_migrate) and
    C(db_restore) carry the plan out.
options:
  live_revision:
    description:
      - The revision the database is at, as C(alembic current) shows it.
      - Omit it and give the connection options (O(url) or O(login_host)) to read it from the
        version table, which must hold at most one row - several rows (several heads
        applied) are an error that names them. An empty table means no revision is applied.
      - Mutually exclusive with O(url) and O(login_host).
    type: str
  target_head:
    description:
      - The Alembic head the target release's image ships, from its release record.
    type: str
    required: true
  revisions:
    description:
      - The revision graph of the newer code, as the C(history) action of
        M(prodready.deploy.alembic) returns it - every revision, with C(revision),
        C(down_revisions) (a list, empty for the first revision) and C(has_downgrade)
        (whether its C(downgrade()) does something). C(is_head), C(path) and C(doc) may be
        present and are not used.
    type: list
    elements: dict
    required: true
  backup:
    description:
      - The record of the verified pre-release backup - C(backup_id) and C(alembic_revision)
        (the revision the database was at when it was taken) are required; C(sha256) and
        C(path) are passed through for the restore.
      - It is a candidate for V(restore) only when its C(alembic_revision) is O(target_head).
    type: dict
  prefer:
    description:
      - What to choose when both a downgrade and a restore are possible. A downgrade keeps the
        data written since the release; a restore returns to the backup and loses it.
    type: str
    choices: [downgrade, restore]
    default: downgrade
  version_table:
    description: Name of Alembic's version table (Alembic's C(version_table)).
    type: str
    default: alembic_version
  version_table_schema:
    description:
      - Schema of the version table (Alembic's C(version_table_schema)). Default is the
        connection's search path.
    type: str
extends_documentation_fragment:
  - prodready.deploy._postgres
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode runs the same code.
  diff_mode:
    support: none
  idempotent:
    description: Running it again with the same parameters changes nothing further.
    support: full
    details: It only decides; it never changes the database.
  platform:
    platforms: all
notes:
  - RV(ignore:changed) is always V(false) - the module decides, it does not act.
  - With the connection options it runs two read-only queries - it checks that the version
    table exists and reads it.
seealso:
  - module: prodready.deploy.alembic
  - module: prodready.deploy.pg_backup
  - module: prodready.deploy.pg_restore
"""

EXAMPLES = r"""
---
- name: Decide what the schema needs before rolling back to the previous release
  prodready.deploy.schema_guard:
    url: "{{ app_database_url }}"
    target_head: "{{ previous_release.alembic_head }}"
    revisions: "{{ alembic_history.revisions }}"
    backup: "{{ previous_release.backup }}"
  register: guard

- name: Downgrade the schema when the guard says so
  prodready.deploy.alembic:
    action: downgrade
    target: "{{ guard.plan.to_revision }}"
  when: guard.plan.action == 'downgrade'

- name: Decide with a known live revision, preferring the backup
  prodready.deploy.schema_guard:
    live_revision: 0003_backfill_email_domain
    target_head: 0002_users_email_idx
    revisions: "{{ alembic_history.revisions }}"
    backup:
      backup_id: app-2026-11-27T10-00-00Z
      alembic_revision: 0002_users_email_idx
      sha256: 9f03...
      path: /var/backups/app/app-2026-11-27T10-00-00Z.dump
    prefer: restore
"""

RETURN = r"""
plan:
  description: What to do with the schema before the application is rolled back.
  returned: success, and when the plan is V(blocked)
  type: dict
  contains:
    action:
      description: V(none), V(upgrade), V(downgrade), V(restore) or V(blocked).
      type: str
      sample: downgrade
    from_revision:
      description: The live revision; null when no revision is applied.
      type: str
      sample: 0003_backfill_email_domain
    to_revision:
      description: The target release's head.
      type: str
      sample: 0002_users_email_idx
    backup_id:
      description: The backup to restore when RV(plan.action=restore), else null.
      type: str
      sample: null
    reason:
      description: Which action was chosen and why, in one sentence.
      type: str
      sample: "live revision 0003_backfill_email_domain is unknown to the target release (head
        0002_users_email_idx); 0003_backfill_email_domain has a downgrade step; downgrade
        0003_backfill_email_domain -> 0002_users_email_idx"
    steps:
      description:
        - For V(downgrade), the revisions to undo, newest first; for V(upgrade), the
          revisions the target's migrations apply, oldest first; else empty.
      type: list
      elements: str
      sample: [0003_backfill_email_domain]
live_revision:
  description: The live revision the decision used (given, or read from the database).
  returned: when known
  type: str
  sample: 0003_backfill_email_domain
queries:
  description: The SQL statements the module ran (none when O(live_revision) is given).
  returned: always
  type: list
  elements: str
  sample:
    - SELECT to_regclass('"alembic_version"') IS NOT NULL
    - SELECT version_num FROM "alembic_version" ORDER BY version_num
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    CONNECTION_ARG_SPEC,
    PgError,
    connect,
    from_params,
    scrub,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.guard import (
    PREFER,
    GuardError,
    plan,
    read_live_revision,
)

try:
    import psycopg2

    DB_ERRORS: tuple[type[Exception], ...] = (psycopg2.Error,)
except ImportError:  # connect() reports the missing library
    DB_ERRORS = ()


def read_live(module: Any, queries: list[str]) -> str | None:
    params = from_params(module.params)
    conn = connect(params)
    try:
        with conn.cursor() as cur:
            return read_live_revision(cur, module.params["version_table"],
                                      module.params["version_table_schema"], queries)
    except DB_ERRORS as exc:
        raise GuardError(f"cannot read the version table in {params.describe()}:"
                         f" {scrub(str(exc), params).strip()}") from None
    finally:
        conn.close()


def main() -> None:
    argument_spec = {
        **CONNECTION_ARG_SPEC,
        "live_revision": {"type": "str"},
        "target_head": {"type": "str", "required": True},
        "revisions": {"type": "list", "elements": "dict", "required": True},
        "backup": {"type": "dict"},
        "prefer": {"type": "str", "choices": list(PREFER), "default": "downgrade"},
        "version_table": {"type": "str", "default": "alembic_version"},
        "version_table_schema": {"type": "str"},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_one_of=[("live_revision", "url", "login_host")],
                           mutually_exclusive=[("live_revision", "url"),
                                               ("live_revision", "login_host")])
    params = module.params
    result: dict[str, Any] = {"changed": False, "queries": []}
    try:
        live = params["live_revision"]
        if live is None:
            live = read_live(module, result["queries"])
        result["live_revision"] = live
        decision = plan(live, params["target_head"], params["revisions"], params["backup"],
                        params["prefer"])
    except (GuardError, PgError) as exc:
        module.fail_json(msg=f"Cannot decide the schema plan for a rollback to"
                             f" {params['target_head']}: {exc}", **result)
    result["plan"] = decision.as_dict()
    if decision.action == "blocked":
        module.fail_json(msg=f"Schema rollback to {params['target_head']} is blocked:"
                             f" {decision.reason}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
