#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_check
short_description: Read-only PostgreSQL checks for a deployment preflight
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Runs read-only checks against the application's database, over the application's own
    connection settings, and returns one structured result per check - C(pass), C(warn),
    C(fail) or C(skip), with a message, a remediation and the data it judged.
  - V(tls) - the module's connection is encrypted (C(pg_stat_ssl) of its own backend -
    protocol version and cipher) and the configured C(sslmode) is at least V(require);
    V(disable), V(allow) and V(prefer) fail, since they fall back to plain text silently.
  - V(connections) - the connections in use against C(max_connections) minus the reserved
    ones (and the database's and role's connection limits) - the app's pool demand,
    (O(pool_size) + O(max_overflow)) x O(app_processes), must fit in what is free, and warns
    when it would bring usage above O(connection_usage_warn_percent).
  - V(fk_indexes) - foreign keys whose columns are not the leading columns of any valid,
    non-partial index (a delete of a referenced row then scans the referencing table); warns,
    with a C(CREATE INDEX CONCURRENTLY) statement per foreign key.
  - V(slow_statements) - when the extension C(pg_stat_statements) is installed in the
    database, the O(slow_statements_count) statements with the highest mean execution time;
    warns when any takes more than O(slow_statement_ms) on average. Skipped, with the steps
    to enable it, when it is not installed. Password literals in statement texts are
    replaced by C(********).
  - V(passwords) - fails when the configured password is empty or a well-known default or
    placeholder (V(postgres), V(password), V(changeme), V(admin), V(secret), the user name,
    template placeholders such as C(${DB_PASSWORD})); warns when it is short or low in
    entropy. When the connecting role may read C(pg_authid) (a superuser), also warns about
    login roles without a password or with an MD5 hash (naming the roles). No password or
    hash is ever returned.
  - Why not M(community.postgresql.postgresql_info) - it returns settings and objects for
    the reader to judge; this module judges them and says what to do about each finding.
options:
  checks:
    description: The checks to run, in any order. Default all of them.
    type: list
    elements: str
    choices: [tls, connections, fk_indexes, slow_statements, passwords]
  fail_on:
    description:
      - When the module fails (after returning every result) - V(fail) when a check fails,
        V(warn) when a check warns or fails, V(never) to only report.
    type: str
    choices: [fail, warn, never]
    default: fail
  pool_size:
    description: The app's C(DB_POOL_SIZE) - connections each process keeps open.
    type: int
    default: 5
  max_overflow:
    description: The app's C(DB_MAX_OVERFLOW) - extra connections a process may open.
    type: int
    default: 10
  app_processes:
    description:
      - How many processes hold a pool - replicas x workers per replica. During a rolling
        deploy old and new pods overlap; count both when the rollout surges.
    type: int
    default: 1
  connection_usage_warn_percent:
    description:
      - Warn when the connections in use plus the pool demand exceed this share of the limit.
    type: float
    default: 80
  slow_statement_ms:
    description: Mean execution time in milliseconds above which a statement warns.
    type: float
    default: 500
  slow_statements_count:
    description: How many of the slowest statements to return.
    type: int
    default: 10
  statement_timeout:
    description: Milliseconds each query of the checks may run before it is cancelled.
    type: int
    default: 10000
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
    details: Read-only; it never changes the database.
  platform:
    platforms: all
notes:
  - The session is set to C(default_transaction_read_only), so no check can write.
  - RV(ignore:changed) is always V(false).
seealso:
  - module: community.postgresql.postgresql_info
  - name: pg_stat_statements
    description: The extension the slow statements check reads.
    link: https://www.postgresql.org/docs/current/pgstatstatements.html
"""

EXAMPLES = r"""
---
- name: Check the app's database before deploying
  prodready.deploy.pg_check:
    url: "{{ app_database_url }}"
    pool_size: "{{ app_env.DB_POOL_SIZE | default(5) }}"
    max_overflow: "{{ app_env.DB_MAX_OVERFLOW | default(10) }}"
    app_processes: "{{ app_replicas * app_workers }}"
  register: db_checks

- name: Only the security checks, failing on warnings too
  prodready.deploy.pg_check:
    login_host: db.example.internal
    login_user: app
    login_password: "{{ vault_db_password }}"
    database: app
    ssl_mode: verify-full
    ca_cert: /etc/ssl/db-ca.crt
    checks: [tls, passwords]
    fail_on: warn

- name: Report the slowest statements without failing
  prodready.deploy.pg_check:
    url: "{{ app_database_url }}"
    checks: [slow_statements]
    slow_statement_ms: 200
    fail_on: never
  register: slow
"""

RETURN = r"""
checks:
  description: One result per check, in the order tls, connections, fk_indexes,
    slow_statements, passwords.
  returned: when the database could be reached
  type: list
  elements: dict
  contains:
    id:
      description: The check.
      type: str
      sample: fk_indexes
    status:
      description: V(pass), V(warn), V(fail) or V(skip).
      type: str
      sample: warn
    message:
      description: What was found.
      type: str
      sample: "1 of 1 foreign keys have no index on their columns: public.orders.orders_user_fk
        (user_id); deleting or updating a referenced row scans the whole referencing table"
    remediation:
      description: What to do about it; empty when the check passes.
      type: str
      sample: create the indexes (data.missing[].suggestion ...)
    data:
      description:
        - What the check judged. V(tls) - C(ssl), C(version), C(cipher), C(bits),
          C(sslmode). V(connections) - C(max_connections), the reserved and in-use counts,
          C(free), C(pool_demand), C(projected_usage_percent). V(fk_indexes) - C(missing),
          a list of C(schema), C(table), C(constraint), C(columns), C(references),
          C(suggestion). V(slow_statements) - C(statements), a list of C(query), C(calls),
          C(mean_ms), C(max_ms), C(total_ms). V(passwords) - C(configured_password),
          C(roles_checked), C(roles_without_password), C(roles_with_md5).
      type: dict
      sample: {"ssl": true, "version": TLSv1.3, "cipher": TLS_AES_256_GCM_SHA384,
               "bits": 256, "sslmode": verify-full}
summary:
  description: How many checks ended in each status.
  returned: when the database could be reached
  type: dict
  sample: {"pass": 3, "warn": 1, "fail": 1, "skip": 0}
failed_checks:
  description:
    - Ids of the checks that failed. (Not C(failed), which Ansible reserves for the task's
      own outcome.)
  returned: when the database could be reached
  type: list
  elements: str
  sample: [tls]
warned_checks:
  description: Ids of the checks that warned.
  returned: when the database could be reached
  type: list
  elements: str
  sample: [fk_indexes]
server:
  description: The server and session the checks ran on.
  returned: when the database could be reached
  type: dict
  sample: {"version": "15.18", "database": app, "user": app, "superuser": false}
queries:
  description: The SQL statements the module ran, in order.
  returned: always
  type: list
  elements: str
  sample: ["SET default_transaction_read_only = on",
           "SELECT ssl, version, cipher, bits FROM pg_stat_ssl WHERE pid = pg_backend_pid()"]
"""

from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._pg.checks import (
    CHECK_IDS,
    FAIL_ON,
    CheckInputError,
    Db,
    Settings,
    finish,
    run_checks,
    summarize,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    CONNECTION_ARG_SPEC,
    ConnParams,
    PgError,
    connect,
    from_params,
)

SERVER_QUERY = ("SELECT current_setting('server_version'), current_database(), current_user,"
                " (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)")


def run(module: Any, params: ConnParams, result: dict[str, Any]) -> None:
    options = module.params
    settings = Settings(
        pool_size=options["pool_size"], max_overflow=options["max_overflow"],
        app_processes=options["app_processes"],
        connection_usage_warn_percent=options["connection_usage_warn_percent"],
        slow_statement_ms=options["slow_statement_ms"],
        slow_statements_count=options["slow_statements_count"])
    if options["statement_timeout"] < 1:
        raise CheckInputError("option statement_timeout must be at least 1 (milliseconds)")
    conn = connect(params)
    db = Db(conn)
    result["queries"] = db.queries
    try:
        db.execute("SET default_transaction_read_only = on")
        db.execute("SELECT set_config('statement_timeout', %s, false)",
                   (str(options["statement_timeout"]),))
        version, database, user, superuser = db.one(SERVER_QUERY)
        result["server"] = {"version": version, "database": database, "user": user,
                            "superuser": bool(superuser)}
        results = run_checks(db, params, settings, options["checks"])
    finally:
        conn.close()
    verdict = summarize(results, options["fail_on"])
    result.update(checks=[r.as_dict() for r in results], summary=verdict["summary"],
                  failed_checks=verdict["failed"], warned_checks=verdict["warned"])
    result["_fails"] = verdict["fails"]


def main() -> None:
    argument_spec = {
        **CONNECTION_ARG_SPEC,
        "checks": {"type": "list", "elements": "str", "choices": list(CHECK_IDS)},
        "fail_on": {"type": "str", "choices": list(FAIL_ON), "default": "fail"},
        "pool_size": {"type": "int", "default": 5},
        "max_overflow": {"type": "int", "default": 10},
        "app_processes": {"type": "int", "default": 1},
        "connection_usage_warn_percent": {"type": "float", "default": 80},
        "slow_statement_ms": {"type": "float", "default": 500},
        "slow_statements_count": {"type": "int", "default": 10},
        "statement_timeout": {"type": "int", "default": 10000},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    result: dict[str, Any] = {"changed": False, "queries": []}
    target = "the database"
    try:
        params = from_params(module.params)
        target = params.describe()
        run(module, params, result)
    except PgError as exc:
        module.fail_json(msg=f"Cannot check {target}: {exc}", **result)
    fails = result.pop("_fails")
    finish(module, result, fails, module.params["fail_on"], "pg_check",
           f"Database checks of {target} failed")


if __name__ == "__main__":
    main()
