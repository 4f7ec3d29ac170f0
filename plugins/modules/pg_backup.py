#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_backup
short_description: Make a verified, snapshot-consistent PostgreSQL backup with pg_dump
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Dumps one database with C(pg_dump) into a backup directory, checks that the archive can
    be restored, records it in a JSON manifest, and applies a retention policy.
  - The dump is consistent with its manifest - a C(REPEATABLE READ) transaction exports its
    snapshot, C(pg_dump) runs with C(--snapshot), and the same transaction counts the rows of
    every table and reads C(alembic_version) while C(pg_dump) runs. The manifest's row counts
    describe exactly what the archive holds.
  - Written atomically - the archive is written as C(.<backup_id>.dump.partial) (or
    C(.<backup_id>.dir.partial)), verified, renamed to C(<backup_id>.dump) (or
    C(<backup_id>.dir)), and the manifest C(<backup_id>.manifest.json) is written last. A
    backup without a manifest is incomplete and is never used. Any failure removes what the
    run wrote; C(.partial) entries left by a crashed run are removed by the next run and
    reported in RV(stale_removed).
  - C(pg_dump) writes the archive file itself (never through a pipe, so a custom archive
    keeps the data offsets that let C(pg_restore -j) seek to each table instead of
    scanning); its sha256 is computed afterwards from the page cache. A directory
    archive's sha256 is the sha256 of its C(sha256sum)-style file listing, and the
    manifest keeps the sum of each file.
  - "A C(pg_dump) that writes C(pg_dump: error:) fails the backup even when it exits 0. Its
    warnings become warnings of the task."
  - Verification - C(pg_restore --list) must succeed and list the table data of every table
    the manifest counts; with O(test_restore), the archive is also restored into a scratch
    database C(<database>_verify_<8 hex>) on the same server whose row counts must equal the
    manifest's. The scratch database is always dropped.
  - Every check that can refuse the backup runs before anything is written - the options, the
    client programs and their version (an unsupported compression names the version and the
    choices), the connection (a wrong password, an unreachable server or a missing database
    give one clear error), a server newer than C(pg_dump), and the C(CREATEDB) privilege for
    O(test_restore).
  - Why not M(community.postgresql.postgresql_db) with C(state=dump) - it runs C(pg_dump)
    through a shell straight into the final file name, does not verify the archive or fail
    on errors written with exit code 0, records no checksum, row counts or Alembic revision,
    and has no retention.
options:
  dest:
    description:
      - Backup directory. Created with mode C(0700) when missing. Archives and manifests are
        written with mode C(0600).
      - One backup runs at a time in a directory - a second one fails at once (an exclusive
        C(flock) on the directory).
    type: path
    required: true
  format:
    description:
      - C(pg_dump) archive format - V(custom) (one file, C(<backup_id>.dump)) or
        V(directory) (C(<backup_id>.dir), the only format C(pg_dump) can write with several
        O(jobs)).
    type: str
    choices: [custom, directory]
    default: custom
  compression:
    description:
      - Compression method. Unset means C(pg_dump)'s default (gzip at its default level).
      - V(none) writes uncompressed data. C(pg_dump) before 16 knows V(gzip) and V(none)
        only; V(lz4) and V(zstd) need C(pg_dump) 16 or newer (see O(pg_dump_path)). An
        unsupported method is refused before anything runs.
    type: str
    choices: [none, gzip, lz4, zstd]
  compression_level:
    description:
      - Compression level - gzip 1-9, lz4 1-12, zstd 1-22. Without O(compression) it is a
        gzip level.
    type: int
  jobs:
    description: Parallel C(pg_dump) workers; more than one needs O(format=directory).
    type: int
    default: 1
  backup_id:
    description:
      - Name of the backup (letters, digits, C(.), C(_), C(-)).
      - When a complete backup with this id exists and its sha256 verifies, nothing is dumped
        and RV(ignore:changed) is V(false) - a re-run of a deployment does not dump twice.
        When it exists but is damaged, or belongs to another database, the task fails and
        names it.
      - Default C(<database>-<YYYYmmddTHHMMSSmmm>Z[-<label>]), so without O(backup_id) every
        run makes a new backup and reports a change.
    type: str
  label:
    description:
      - Suffix of the default O(backup_id), e.g. a release id. Kept in the manifest (also
        with an explicit O(backup_id)).
    type: str
  verify:
    description:
      - Check the archive with C(pg_restore --list) before it gets its final name - the list
        must succeed and hold the table data of every table. The manifest's C(verified) is
        V(true) only for a verified backup, and retention never deletes the newest of those.
    type: bool
    default: true
  test_restore:
    description:
      - Also restore the archive into a scratch database on the same server
        (C(pg_restore --exit-on-error --no-owner), in one transaction unless O(jobs) > 1)
        and compare its row counts with the manifest; the scratch database is always dropped.
      - Needs the C(CREATEDB) privilege, and whatever the restore itself needs (an
        extension that only a superuser may create, for instance).
    type: bool
    default: false
  retention_count:
    description:
      - After the backup, keep at most this many complete backups of this database in
        O(dest) (the new one included); delete the older ones.
      - Only complete backups (with a manifest) of the same database count. The newest
        verified backup is never deleted.
    type: int
  retention_max_age:
    description:
      - After the backup, delete the complete backups of this database older than this - a
        number of seconds, or a number with V(s), V(m), V(h), V(d) or V(w) (V(7d), V(12h),
        V(30m)). Age counts from the manifest's C(finished_at).
      - Both limits apply when both are set - a backup goes when it is beyond
        O(retention_count) or older than O(retention_max_age). The newest verified backup is
        never deleted.
    type: str
  pg_dump_path:
    description: Path of C(pg_dump). Default - the one on the C(PATH).
    type: path
  pg_restore_path:
    description: Path of C(pg_restore). Default - the one on the C(PATH).
    type: path
extends_documentation_fragment:
  - prodready.deploy._postgres
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - Connects read-only and reports the database, its server version, the tables with
        their estimated row counts, the command that would run, and the backups retention
        would delete. Writes nothing and does not create O(dest).
  diff_mode:
    support: full
    details: The ids of the complete backups in O(dest) before and after.
  idempotent:
    description: Whether a second run with the same options changes nothing.
    support: partial
    details:
      - Idempotent with O(backup_id) - an existing, intact backup with that id is not made
        again. Without it every run makes a new backup.
  platform:
    platforms: posix
requirements:
  - C(pg_dump) and C(pg_restore) (PostgreSQL client) on the host that runs the module, of
    the server's major version or newer.
notes:
  - Credentials reach C(pg_dump) and C(pg_restore) through a private passfile, never the
    command line; RV(commands) and the manifest's C(command) hold no secret.
seealso:
  - module: community.postgresql.postgresql_db
  - name: pg_dump
    description: The PostgreSQL documentation of pg_dump.
    link: https://www.postgresql.org/docs/current/app-pgdump.html
"""

EXAMPLES = r"""
---
- name: Back up the application database before the release, verified, keeping 7
  prodready.deploy.pg_backup:
    url: "{{ database_url }}"
    dest: /var/backups/app
    label: "{{ release_id }}"
    retention_count: 7
  register: backup

- name: Idempotent pre-release backup, restored once into a scratch database
  prodready.deploy.pg_backup:
    login_host: db.internal
    login_user: backup
    login_password: "{{ vault_backup_password }}"
    database: app
    ssl_mode: verify-full
    ca_cert: /etc/ssl/db-ca.pem
    dest: /var/backups/app
    backup_id: "app-{{ release_id }}"
    test_restore: true
    retention_max_age: 14d

- name: Parallel directory-format backup with zstd (pg_dump 16 or newer)
  prodready.deploy.pg_backup:
    url: "{{ database_url }}"
    dest: /var/backups/app
    format: directory
    jobs: 4
    compression: zstd
    compression_level: 3
    pg_dump_path: /usr/lib/postgresql/16/bin/pg_dump
    pg_restore_path: /usr/lib/postgresql/16/bin/pg_restore
"""

RETURN = r"""
backup_id:
  description: Id of the backup (in check mode, the id it would get).
  returned: always
  type: str
  sample: app-20261127T100000123Z-r42
path:
  description: Path of the archive.
  returned: always
  type: str
  sample: /var/backups/app/app-20261127T100000123Z-r42.dump
manifest_path:
  description: Path of the manifest.
  returned: always
  type: str
  sample: /var/backups/app/app-20261127T100000123Z-r42.manifest.json
manifest:
  description:
    - The manifest as written (or as found, when O(backup_id) already existed).
    - C(tables) maps C(schema.table) to its exact row count in the dumped snapshot;
      C(alembic_revision) is null without an C(alembic_version) table and a list when it
      holds several rows; C(verification) has C(list_ok), C(test_restore) (null, or
      C(database), C(ok), C(duration_s)) and C(duration_s); C(files) the sha256 of each
      file of a directory archive.
  returned: when not in check mode
  type: dict
  sample: {"manifest_version": 1, "backup_id": app-20261127T100000123Z, "database": app,
           "host": 127.0.0.1, "port": 5432, "server_version": "15.18",
           "pg_dump_version": "15.18", "alembic_revision": "0003", "format": custom,
           "compression": {"method": gzip, "level": null}, "jobs": 1,
           "archive": app-20261127T100000123Z.dump, "size_bytes": 1048576,
           "sha256": "4f1c...", "files": null, "tables": {"public.users": 1200},
           "started_at": "2026-11-27T10:00:00.123Z", "finished_at": "2026-11-27T10:00:02.456Z",
           "duration_s": 2.333, "command": ["/usr/bin/pg_dump", "--format=custom",
           "--no-password", "--snapshot=00000004-00000064-1"],
           "snapshot": "00000004-00000064-1", "verification": {"list_ok": true,
           "test_restore": null, "duration_s": 0.05}, "verified": true, "warnings": []}
sha256:
  description: sha256 of the archive (of its file listing for a directory archive).
  returned: when not in check mode
  type: str
  sample: 4f1c0e9a1b2c3d4e5f60718293a4b5c6d7e8f90112233445566778899aabbcc
size_bytes:
  description: Size of the archive in bytes.
  returned: when not in check mode
  type: int
  sample: 1048576
verified:
  description: Whether the archive passed verification.
  returned: when not in check mode
  type: bool
  sample: true
duration_s:
  description: Seconds the dump took (snapshot to archive on disk), verification excluded.
  returned: when a backup was made
  type: float
  sample: 2.333
verify_duration_s:
  description: Seconds the verification took (C(pg_restore --list) and the test restore).
  returned: when a backup was made
  type: float
  sample: 0.05
deleted:
  description:
    - Ids of the backups retention deleted (in check mode, would delete), oldest first.
  returned: always
  type: list
  elements: str
  sample: [app-20261120T100000000Z]
retention:
  description: Why each backup in RV(deleted) goes.
  returned: always
  type: list
  elements: dict
  sample: [{"backup_id": app-20261120T100000000Z, "reason": "not among the 7 newest"}]
stale_removed:
  description: C(.partial) entries of interrupted runs (in check mode, that would be) removed.
  returned: always
  type: list
  elements: str
  sample: [.app-20261126T100000000Z.dump.partial]
plan:
  description:
    - In check mode, what would be dumped - C(database), C(server_version),
      C(pg_dump_version), C(alembic_revision), C(tables) with their estimated row counts
      (C(pg_class.reltuples); null for a table never analyzed), C(exists) (the O(backup_id)
      exists and verifies, so nothing would be dumped).
  returned: in check mode
  type: dict
  sample: {"database": app, "server_version": "15.18", "tables": {"public.users": 1200},
           "exists": false}
commands:
  description:
    - The commands run (in check mode, the dump that would run), without secrets - the
      connection reaches them through the environment and a passfile.
  returned: always
  type: list
  elements: str
  sample: ["/usr/bin/pg_dump --format=custom --no-password --snapshot=00000004-00000064-1",
           "/usr/bin/pg_restore --list /var/backups/app/.app-20261127T100000123Z.dump.partial"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._pg import archive
from ansible_collections.prodready.deploy.plugins.module_utils._pg.backup import (
    COMPRESSION_METHODS,
    FORMATS,
    BackupSpec,
    apply_retention,
    backup_ids,
    command_line,
    create_backup,
    parse_age,
    plan_backup,
    retention_plan,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    CONNECTION_ARG_SPEC,
    PgError,
    from_params,
    scrub,
)


def spec_from(params: dict[str, Any]) -> BackupSpec:
    return BackupSpec(
        dest=params["dest"], format=params["format"], compression=params["compression"],
        compression_level=params["compression_level"], jobs=params["jobs"],
        backup_id=params["backup_id"], label=params["label"], verify=params["verify"],
        test_restore=params["test_restore"], pg_dump=params["pg_dump_path"],
        pg_restore=params["pg_restore_path"])


def run(module: AnsibleModule, conn: Any, result: dict[str, Any]) -> None:
    params = module.params
    spec = spec_from(params)
    keep = params["retention_count"]
    max_age = parse_age(params["retention_max_age"])
    retention_plan([], keep, max_age)  # refuses a bad limit before anything runs
    before = backup_ids(spec.dest, conn.dbname)

    if module.check_mode:
        plan = plan_backup(conn, spec)
        result.update(
            changed=not plan["exists"], backup_id=plan["backup_id"],
            path=plan["archive_path"], manifest_path=plan["manifest_path"],
            stale_removed=plan["stale_partials"],
            plan={k: plan[k] for k in ("database", "host", "port", "server_version",
                                       "pg_dump_version", "alembic_revision", "format",
                                       "compression", "jobs", "tables", "exists")},
            commands=[] if plan["exists"] else [command_line(plan["command"])])
        pending = []
        if not plan["exists"]:
            pending = [{"backup_id": plan["backup_id"], "verified": spec.verify or
                        spec.test_restore, "finished_at": archive.iso(archive.utc_now())}]
        doomed = retention_plan(archive.list_backups(spec.dest, conn.dbname) + pending, keep,
                                max_age)
        after_ids = [i for i in before + [p["backup_id"] for p in pending]
                     if i not in {d["backup_id"] for d in doomed}]
    else:
        made = create_backup(conn, spec)
        manifest = {k: v for k, v in made.items()
                    if k not in ("changed", "stale_removed", "commands", "archive_path",
                                 "manifest_path")}
        verification = manifest.get("verification") or {}
        result.update(
            changed=made["changed"], backup_id=made["backup_id"], path=made["archive_path"],
            manifest_path=made["manifest_path"], manifest=manifest, sha256=made["sha256"],
            size_bytes=made["size_bytes"], verified=bool(made.get("verified")),
            stale_removed=made["stale_removed"],
            commands=[command_line(argv) for argv in made["commands"]])
        if made["changed"]:
            result.update(duration_s=made["duration_s"],
                          verify_duration_s=verification.get("duration_s", 0.0))
            for warning in made.get("warnings") or []:
                module.warn(scrub(warning, conn))
        doomed = apply_retention(spec.dest, conn.dbname, keep, max_age)
        after_ids = backup_ids(spec.dest, conn.dbname)
    result["deleted"] = [d["backup_id"] for d in doomed]
    result["retention"] = [{"backup_id": d["backup_id"], "reason": d["reason"]} for d in doomed]
    if doomed:
        result["changed"] = True
    if module._diff:
        result["diff"] = {"before_header": f"{spec.dest} ({conn.dbname})",
                          "after_header": f"{spec.dest} ({conn.dbname})",
                          "before": "".join(f"{i}\n" for i in before),
                          "after": "".join(f"{i}\n" for i in after_ids)}


def main() -> None:
    argument_spec = {
        **CONNECTION_ARG_SPEC,
        "dest": {"type": "path", "required": True},
        "format": {"type": "str", "default": "custom", "choices": list(FORMATS)},
        "compression": {"type": "str", "choices": list(COMPRESSION_METHODS)},
        "compression_level": {"type": "int"},
        "jobs": {"type": "int", "default": 1},
        "backup_id": {"type": "str"},
        "label": {"type": "str"},
        "verify": {"type": "bool", "default": True},
        "test_restore": {"type": "bool", "default": False},
        "retention_count": {"type": "int"},
        "retention_max_age": {"type": "str"},
        "pg_dump_path": {"type": "path"},
        "pg_restore_path": {"type": "path"},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    result: dict[str, Any] = {"changed": False, "deleted": [], "retention": [],
                              "stale_removed": [], "commands": []}
    try:
        conn = from_params(module.params)
    except PgError as exc:
        module.fail_json(msg=f"Cannot back up: {exc}", **result)
    what = f"database {conn.dbname} on {conn.host}:{conn.port}"
    try:
        run(module, conn, result)
    except (PgError, archive.ArchiveError) as exc:
        module.fail_json(msg=f"Failed to back up {what} ({scrub(str(exc), conn)})", **result)
    except OSError as exc:
        module.fail_json(msg=f"Failed to back up {what} (file system: {exc})", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
