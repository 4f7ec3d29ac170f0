#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_restore
short_description: Restore a verified PostgreSQL backup - all of it, or nothing
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Restores a backup written by M(prodready.deploy.pg_backup) into the target database (the
    connection options) so that afterwards the database holds exactly what the backup holds -
    objects created after the backup, such as a table a later migration added, do not survive
    next to an C(alembic_version) that went back.
  - Every check runs before anything changes - the manifest is read, the archive's sha256 is
    recomputed (a mismatch refuses the restore), C(pg_restore --list) must read the archive,
    and the target must be reachable. Then a verified safety backup of the target is taken
    (O(safety_backup)), and only then is the target overwritten.
  - The restore is one transaction - C(pg_restore -f -) turns the archive into SQL, which is
    piped into C(psql --single-transaction -v ON_ERROR_STOP=1) between a prelude that drops
    every user schema of the target (C(public) is recreated empty, with its owner, privileges
    and comment) and a check that every table's row count and the Alembic revision equal the
    manifest's. Any error - a failing statement, a failed check, or C(pg_restore) failing while
    it reads the archive (psql is then stopped before it can commit) - rolls everything back,
    and the target is exactly as before.
  - With O(jobs) > 1 the restore runs C(pg_restore -j), which PostgreSQL cannot combine with
    a single transaction - the drop, the restore (C(--exit-on-error)) and the check are
    separate steps, and a failure leaves a partly restored database whose way back is the
    safety backup. RV(single_transaction) says which way ran.
  - Idempotent - a successful restore records a marker, the database's comment
    (C(COMMENT ON DATABASE)) holding the backup id and sha256. It is not a row in any table,
    so later backups' row counts and content are unaffected, and pg_dump does not dump it. A
    run whose marker names this backup and whose tables, row counts and Alembic revision
    equal the manifest's changes nothing and takes no safety backup; O(force) restores anyway.
  - Why not M(community.postgresql.postgresql_db) with
    O(community.postgresql.postgresql_db#module:state=restore) - it neither verifies a
    checksum nor takes a safety backup, restores on top of the existing objects (so a newer
    table survives), does not run in one transaction, and does not check the result.
options:
  backup:
    description:
      - The backup to restore - its manifest (C(<id>.manifest.json)), its archive
        (C(<id>.dump) or C(<id>.dir)) or C(<backup dir>/<backup id>).
      - A backup without a manifest is incomplete and is refused.
    type: path
    required: true
  safety_backup:
    description:
      - Take a backup of the target, verified with C(pg_restore --list), before overwriting it.
      - Only when the restore will run; check mode and an unchanged target take none.
    type: bool
    default: true
  safety_backup_dir:
    description:
      - Directory of the safety backup, named C(<database>-<time>-pre-restore).
      - Required when O(safety_backup=true).
    type: path
  jobs:
    description:
      - Number of parallel C(pg_restore) jobs. V(1) restores in one transaction; more is faster
        on large databases but gives up the single transaction (see the description).
    type: int
    default: 1
  force:
    description: Restore even when the target already holds this backup.
    type: bool
    default: false
  no_owner:
    description:
      - Leave out the archive's C(ALTER ... OWNER TO) statements, so every restored object
        belongs to the user that restores.
      - The default, because a user that is not a superuser - such as an application user that
        owns its database - may not give objects to other roles, and those roles may not exist
        on the target.
    type: bool
    default: true
  no_privileges:
    description:
      - Leave out the archive's C(GRANT) and C(REVOKE) statements.
      - The default for the same reason as O(no_owner) - the roles they name may not exist on
        the target. Set V(false) when restoring as a superuser into a server with the same roles.
    type: bool
    default: true
  pg_restore_path:
    description: Path of C(pg_restore). Default - found on C(PATH).
    type: path
  psql_path:
    description: Path of C(psql). Default - found on C(PATH).
    type: path
  pg_dump_path:
    description: Path of C(pg_dump), for the safety backup. Default - found on C(PATH).
    type: path
extends_documentation_fragment:
  - prodready.deploy._postgres
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Verifies the checksum and the archive, reads the target, and reports what would be
      restored and whether a safety backup would be taken; changes nothing.
  diff_mode:
    support: full
    details: Before - the target's tables with row counts, Alembic revision and restore marker;
      after - the manifest's.
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: full
    details: A target that holds the backup (marker, tables, row counts, Alembic revision) is
      left alone.
  platform:
    platforms: posix
requirements:
  - pg_restore, psql and pg_dump (the PostgreSQL client, at least the server's major version)
    on the host that runs the module.
notes:
  - The user must own the target database (or be a superuser) - the restore drops and
    recreates its schemas, including C(public), and comments on the database. A schema the
    user cannot drop makes the restore fail with nothing changed.
  - Objects outside schemas (publications, event triggers, foreign servers) are left as they
    are; an archive that holds one the target already has fails the restore, with nothing
    changed.
  - Sessions that hold locks on the target's tables delay the restore until they end.
seealso:
  - module: prodready.deploy.pg_backup
  - name: pg_restore
    description: The PostgreSQL client this module drives.
    link: https://www.postgresql.org/docs/current/app-pgrestore.html
"""

EXAMPLES = r"""
---
- name: Restore the pre-release backup into the application's database
  prodready.deploy.pg_restore:
    url: "{{ vault_database_url }}"
    backup: /var/backups/shop/shop-20261127T100000000Z-pre-release
    safety_backup_dir: /var/backups/shop
  register: restored

- name: Say which backup is live and where the safety backup is
  ansible.builtin.debug:
    msg: >-
      {{ restored.backup_id }} restored at {{ restored.alembic_revision }};
      previous state in {{ restored.safety_backup.manifest_path | default('-') }}

- name: Restore a large directory-format backup with four jobs (not one transaction)
  prodready.deploy.pg_restore:
    login_host: db.internal
    login_user: shop
    login_password: "{{ vault_shop_password }}"
    database: shop
    ssl_mode: verify-full
    ca_cert: /etc/ssl/certs/db-ca.pem
    backup: /var/backups/shop/shop-20261127T100000000Z.manifest.json
    safety_backup_dir: /var/backups/shop
    jobs: 4
"""

RETURN = r"""
backup_id:
  description: Id of the backup.
  returned: when the manifest could be read
  type: str
  sample: shop-20261127T100000000Z-pre-release
sha256:
  description: sha256 of the archive, as the manifest records it and the module verified it.
  returned: when the manifest could be read
  type: str
  sample: 9f03e1c2...
format:
  description: Format of the archive, V(custom) or V(directory).
  returned: when the manifest could be read
  type: str
  sample: custom
source_database:
  description: Database the backup was taken from.
  returned: when the manifest could be read
  type: str
  sample: shop
restored:
  description: Whether the target was overwritten in this run.
  returned: always
  type: bool
  sample: true
restored_at:
  description: When the restore committed (UTC), as recorded in the marker.
  returned: when restored
  type: str
  sample: "2026-11-27T10:05:00.123Z"
single_transaction:
  description: Whether the restore runs (or would run) as one transaction (O(jobs=1)).
  returned: always
  type: bool
  sample: true
target_changed:
  description: On failure, whether the target may differ from its state before the run.
  returned: on failure
  type: bool
  sample: false
safety_backup:
  description:
    - The safety backup of the target, null when none is taken (O(safety_backup=false), or
      the target already holds the backup).
    - In check mode C(taken) is V(false) and only C(dir) is set.
  returned: always
  type: dict
  contains:
    taken:
      description: Whether it was taken.
      type: bool
    dir:
      description: Directory it would be written to (check mode).
      type: str
    backup_id:
      description: Its backup id.
      type: str
    manifest_path:
      description: Its manifest - give it to O(backup) to go back.
      type: str
    archive_path:
      description: Its archive.
      type: str
    sha256:
      description: sha256 of its archive.
      type: str
    verified:
      description: Whether it was verified after it was written.
      type: bool
  sample: {"taken": true, "backup_id": shop-20261127T100500000Z-pre-restore,
           "manifest_path": /var/backups/shop/shop-20261127T100500000Z-pre-restore.manifest.json,
           "archive_path": /var/backups/shop/shop-20261127T100500000Z-pre-restore.dump,
           "sha256": 4c1d..., "verified": true}
tables:
  description: Row count of each table (C(schema.table)) in the backup - what the target holds
    after the restore.
  returned: when the manifest could be read
  type: dict
  sample: {"public.users": 1200, "public.alembic_version": 1}
alembic_revision:
  description: Alembic revision of the backup - the target's after the restore.
  returned: when the manifest could be read
  type: str
  sample: "0003"
checks:
  description: What was checked, in order, one sentence each.
  returned: always
  type: list
  elements: str
  sample:
    - sha256 of the archive equals the manifest's
    - pg_restore --list read 42 entries
    - "the target differs from the backup: table public.users has 1250 rows, the backup 1200"
    - row counts and Alembic revision equal the manifest's
commands:
  description: The commands run, without secrets (the password is in a private passfile).
  returned: always
  type: list
  elements: str
  sample:
    - pg_restore --list /var/backups/shop/shop-20261127T100000000Z.dump
    - "pg_restore --file=- --no-owner --no-privileges /var/backups/shop/shop-1.dump
      | psql --no-psqlrc --quiet --no-password --set=ON_ERROR_STOP=1 --single-transaction
      --file=/tmp/prodready-restore-x/prelude.sql --file=-
      --file=/tmp/prodready-restore-x/checks.sql"
duration_s:
  description: Seconds the module took.
  returned: on success
  type: float
  sample: 3.2
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    CONNECTION_ARG_SPEC,
    PgError,
    from_params,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.restore import (
    RestoreError,
    RestoreRefused,
    RestoreSpec,
    restore,
)


def main() -> None:
    argument_spec = {
        **CONNECTION_ARG_SPEC,
        "backup": {"type": "path", "required": True},
        "safety_backup": {"type": "bool", "default": True},
        "safety_backup_dir": {"type": "path"},
        "jobs": {"type": "int", "default": 1},
        "force": {"type": "bool", "default": False},
        "no_owner": {"type": "bool", "default": True},
        "no_privileges": {"type": "bool", "default": True},
        "pg_restore_path": {"type": "path"},
        "psql_path": {"type": "path"},
        "pg_dump_path": {"type": "path"},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True,
                           required_if=[("safety_backup", True, ("safety_backup_dir",))])
    params = module.params
    spec = RestoreSpec(backup=params["backup"], safety_backup=params["safety_backup"],
                       safety_backup_dir=params["safety_backup_dir"], jobs=params["jobs"],
                       force=params["force"], no_owner=params["no_owner"],
                       no_privileges=params["no_privileges"],
                       pg_restore=params["pg_restore_path"], psql=params["psql_path"],
                       pg_dump=params["pg_dump_path"])
    result: dict[str, Any] = {"changed": False, "restored": False, "commands": [],
                              "checks": [], "safety_backup": None}
    target = "the target"
    try:
        conn = from_params(params)
        target = conn.describe()
        restore(conn, spec, check_mode=module.check_mode, result=result)
    except (RestoreError, PgError) as exc:
        name = result.get("backup_id") or params["backup"]
        changed = bool(getattr(exc, "target_changed", False))
        diff = result.pop("diff", None)
        if module._diff and diff:
            result["diff"] = diff
        result.update(changed=changed, target_changed=changed)
        if isinstance(exc, RestoreRefused):
            module.fail_json(msg=f"Refusing to restore backup {name} ({exc}); the target is"
                                 " unchanged", **result)
        # Connection, input and dependency errors all happen before the target is written.
        suffix = "; the target is unchanged" if isinstance(exc, PgError) else ""
        module.fail_json(msg=f"Failed to restore backup {name} into {target} ({exc}){suffix}",
                         **result)
    diff = result.pop("diff", None)
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
