#!/usr/bin/python
# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
module: env_check
short_description: Preflight of a release - environment, secrets and services in one call
version_added: 0.1.0
author: prodready.deploy contributors (@prodready)
description:
  - Runs every preflight check of a release in one module call and returns one report - per
    check an id, a status (V(pass), V(warn), V(fail) or V(skip)), a message, a remediation
    and the data it judged - plus the counts and a text table for the role
    C(prodready.deploy.preflight) to print.
  - The checks that wait on the network (database, Redis, each TLS endpoint, the CORS probe,
    the registry and the Kubernetes API) run at the same time in a thread pool, each with
    its own timeout, so the preflight takes about as long as its slowest check.
  - V(env.required) - every variable of O(required) (by default the production checklist's
    set, plus C(SMTP_HOST), C(SMTP_PORT), C(SMTP_USER) and C(SMTP_PASSWORD) when
    O(mail_enabled)) is set and not empty.
  - V(env.format) - ports and counts (C(DB_POOL_SIZE), C(REDIS_PORT), ...) are integers in
    range; C(SENTRY_DSN) and C(CDN_URL) are http(s) URLs (warns on plain http).
  - V(secret.strength) - each of O(secret_vars) has at least O(secret_min_length)
    characters and an entropy estimate of at least O(secret_min_entropy_bits) bits, and is
    no placeholder (C(changeme), C(<...>), C(secret), C(${VAR}), unrendered Jinja, values
    from documentation and O(placeholders)).
  - V(secret.distinct) - no two secrets share a value - O(secret_vars), C(ENCRYPTION_KEY),
    the passwords inside URLs (C(DATABASE_URL), C(REDIS_URL), ...) and O(registry_password).
  - V(secret.encryption_key) - C(ENCRYPTION_KEY) is padded base64 (standard or URL-safe
    alphabet, as Fernet writes it) of exactly 32 bytes.
  - V(mode.production) - C(DEBUG), C(FLASK_DEBUG), C(DJANGO_DEBUG) are false and
    C(FLASK_ENV), C(APP_ENV), C(ENV) (and their equivalents) say production; warns when no
    variable says production.
  - V(cors) - the allowed origins (C(CORS_ORIGINS) or an equivalent) are not a wildcard while
    credentials are allowed (C(CORS_ALLOW_CREDENTIALS)); V(cors.probe) sends a CORS
    preflight request from a foreign origin to O(cors_probe_url) and fails when the server
    allows it with credentials.
  - V(database.url) - C(DATABASE_URL) parses; V(database.sslmode) - its sslmode is at least
    V(require); V(database.reachable) - the database answers with those credentials
    (through the collection's shared PostgreSQL connection layer); with O(database_checks)
    also the checks of M(prodready.deploy.pg_check) over the same connection, as
    V(database.<check>).
  - V(redis.reachable) - Redis answers C(AUTH) and C(PING) (and C(SELECT) of C(REDIS_DB))
    with C(REDIS_PASSWORD) or C(REDIS_URL), spoken in the Redis protocol over a socket (TLS
    when C(REDIS_SSL)/C(REDIS_TLS) or C(rediss://)); no Redis library is needed.
  - V(tls.<host>:<port>) - for each of O(endpoints), the certificate chain verifies against
    O(ca_path), the host name matches, and it has at least O(cert_warn_days) days left
    (warns under, fails when expired or invalid).
  - V(registry.reachable) - C(GET /v2/) of O(registry_url) with basic auth succeeds,
    following a Bearer token challenge when the registry sends one.
  - V(kubernetes.reachable) - with the credentials of O(kubeconfig), the API server answers
    C(GET /version) and a C(SelfSubjectReview), and a C(SelfSubjectAccessReview) allows each
    of O(kubernetes_permissions) in the namespace.
  - Checks whose inputs are absent are V(skip) - no C(registry_url), no C(kubeconfig), no
    C(REDIS_HOST) - and so are the ones named in O(skip).
  - Why one module instead of C(ansible.builtin.uri), C(ansible.builtin.assert),
    C(ansible.builtin.command) and M(community.crypto.get_certificate) tasks - each task
    costs a module start, runs one check at a time, and a failed one hides the results of
    the others. This module runs all of them in one start, concurrently, and reports all
    findings at once. It parses certificates with C(cryptography), as community.crypto
    does.
  - The role C(prodready.deploy.preflight) runs this module and prints its table.
  - Secrets are never printed - O(env) is C(no_log), messages and data name variables and
    hold counts, never values (only the values of mode variables such as C(DEBUG) and
    C(FLASK_ENV) are shown). See the notes for how the masking is kept readable.
options:
  app:
    description: Name of the application, for the messages.
    type: str
    default: app
  env:
    description:
      - The application's environment - variable name to value, as the app will see it.
        Numbers and booleans are taken as their text (V(true), V(false)).
    type: dict
    required: true
  required:
    description:
      - Variables that must be set and not empty. Default the production checklist's set -
        C(SECRET_KEY), C(DATABASE_URL), C(DB_POOL_SIZE), C(DB_MAX_OVERFLOW), C(REDIS_HOST),
        C(REDIS_PORT), C(REDIS_PASSWORD), C(REDIS_DB), C(JWT_SECRET_KEY),
        C(JWT_ACCESS_TOKEN_EXPIRES), C(ENCRYPTION_KEY), C(SENTRY_DSN), C(CDN_URL),
        C(PROMETHEUS_METRICS_PORT).
    type: list
    elements: str
  mail_enabled:
    description: Also require C(SMTP_HOST), C(SMTP_PORT), C(SMTP_USER) and C(SMTP_PASSWORD).
    type: bool
    default: false
  secret_vars:
    description: Variables judged by V(secret.strength) and compared by V(secret.distinct).
    type: list
    elements: str
    default: [SECRET_KEY, JWT_SECRET_KEY, REDIS_PASSWORD, SMTP_PASSWORD]
  placeholders:
    description:
      - Further values that must not be used as secrets - the examples of the project's own
        documentation and C(.env.example), compared case-insensitively with the whole value.
    type: list
    elements: str
    default: []
  secret_min_length:
    description: Minimum length of a secret, in characters.
    type: int
    default: 32
  secret_min_entropy_bits:
    description: Minimum entropy estimate of a secret (length x Shannon entropy), in bits.
    type: float
    default: 80
  database:
    description: Connect to C(DATABASE_URL) (V(database.reachable)).
    type: bool
    default: true
  database_checks:
    description:
      - Checks of M(prodready.deploy.pg_check) to run over the same connection, reported as
        V(database.<check>). They read C(DB_POOL_SIZE) and C(DB_MAX_OVERFLOW) from O(env).
    type: list
    elements: str
    choices: [tls, connections, fk_indexes, slow_statements, passwords]
    default: []
  database_ca_cert:
    description:
      - CA certificate for the database connection, overriding the C(sslrootcert) of
        C(DATABASE_URL) (whose path is often one inside the app's container).
    type: path
  app_processes:
    description: Processes that each hold a pool (replicas x workers), for V(database.connections).
    type: int
    default: 1
  redis:
    description: Connect to Redis when C(REDIS_URL) or C(REDIS_HOST) is set (V(redis.reachable)).
    type: bool
    default: true
  redis_tls:
    description:
      - Speak TLS to Redis. Default from C(REDIS_URL) (V(rediss://)) or C(REDIS_SSL) /
        C(REDIS_TLS).
    type: bool
  redis_ca_cert:
    description: CA certificate for Redis over TLS; default the system's trust store.
    type: path
  endpoints:
    description:
      - Public TLS endpoints whose certificates to check - V(host:port), V(host) (port 443)
        or URLs (V(https://api.example.com/)).
    type: list
    elements: str
    default: []
  ca_path:
    description:
      - CA certificates (PEM) the endpoints' chains must verify against; default the
        system's trust store.
    type: path
  cert_warn_days:
    description: Warn when a certificate has fewer days left than this.
    type: int
    default: 30
  cors_probe_url:
    description: URL to send a CORS preflight request to (V(cors.probe)); none by default.
    type: str
  cors_probe_origin:
    description: The foreign origin of the CORS probe.
    type: str
    default: https://preflight-probe.invalid
  registry_url:
    description:
      - The container registry (V(https://registry.example) or V(host:port));
        V(registry.reachable) is skipped without it.
    type: str
  registry_username:
    description: Registry user.
    type: str
  registry_password:
    description: Password or token of O(registry_username).
    type: str
  registry_ca_cert:
    description: CA certificate of the registry; default the system's trust store.
    type: path
  kubeconfig:
    description:
      - Kubeconfig with the deployer's credentials (token, token file, client certificate,
        basic auth or an exec credential plugin); V(kubernetes.reachable) is skipped without it.
    type: path
  kubernetes_context:
    description: Context of O(kubeconfig); default its current context.
    type: str
  kubernetes_namespace:
    description:
      - Namespace of the permission checks; default the context's namespace, else
        V(default).
    type: str
  kubernetes_permissions:
    description:
      - What the deployer must be allowed in the namespace, as V(verb resource[.group]),
        each asked with a C(SelfSubjectAccessReview). V([]) checks only that the
        credentials are accepted.
    type: list
    elements: str
    default: [get deployments.apps, patch deployments.apps, list pods]
  timeout:
    description: Seconds each network check may take (connect and each answer).
    type: int
    default: 10
  skip:
    description:
      - Check ids to skip (reported as V(skip)); an id prefix such as V(tls) or V(database)
        skips all its checks.
    type: list
    elements: str
    default: []
  fail_on:
    description:
      - When the module fails after returning the whole report - V(fail) when a check fails,
        V(warn) when a check warns or fails, V(never) to only report.
    type: str
    choices: [fail, warn, never]
    default: fail
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module only reads; check mode runs the same checks.
  diff_mode:
    support: none
  idempotent:
    description: Running it again with the same parameters changes nothing further.
    support: full
    details: Read-only; RV(ignore:changed) is always V(false).
  platform:
    platforms: posix
requirements:
  - cryptography (Python library) for the TLS checks
  - psycopg2 (or psycopg2-binary) for V(database.reachable)
  - PyYAML to read a YAML kubeconfig (a JSON one needs nothing)
notes:
  - Ansible masks every value of a C(no_log) option wherever it appears in the result, even
    inside words and numbers - C(REDIS_DB=0) would turn every 0 of the report into
    asterisks. The module therefore unmasks the values of variables whose names say they are
    not secret (ports, hosts, counts, modes, origins - C(*_PORT), C(*_HOST), C(*_DB),
    C(*_SIZE), C(*_EXPIRES), C(DEBUG), C(*_ENV), C(*_ORIGINS), ...), unless the same value
    is also held by another variable or is a password inside a URL. Every other value stays
    masked.
  - The database session is read-only (C(default_transaction_read_only)); Redis gets only
    C(AUTH), C(SELECT) and C(PING); the API server only reads and reviews.
seealso:
  - module: prodready.deploy.pg_check
  - module: community.crypto.get_certificate
"""

EXAMPLES = r"""
---
- name: Preflight the release of the shop
  prodready.deploy.env_check:
    app: shop
    env: "{{ shop_env }}"                  # from the vault: SECRET_KEY, DATABASE_URL, ...
    endpoints:
      - https://shop.example.com
      - api.example.com:443
    registry_url: https://registry.example.com
    registry_username: deploy
    registry_password: "{{ vault_registry_password }}"
    kubeconfig: /etc/deploy/kubeconfig
    database_checks: [tls, connections, passwords]
  register: preflight

- name: Print the report
  ansible.builtin.debug:
    msg: "{{ preflight.table }}"

- name: Only report, and treat warnings as failures later
  prodready.deploy.env_check:
    env: "{{ shop_env }}"
    mail_enabled: true
    placeholders: "{{ lookup('ansible.builtin.file', '.env.example') | regex_findall('=(.+)') }}"
    skip: [kubernetes, registry]
    fail_on: never
  register: preflight
"""

RETURN = r"""
checks:
  description: One result per check - the environment checks first, then the network ones.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The check (stable), e.g. V(env.required), V(tls.api.example.com:443).
      type: str
      sample: secret.strength
    status:
      description: V(pass), V(warn), V(fail) or V(skip).
      type: str
      sample: fail
    message:
      description: What was found; names variables, never their values.
      type: str
      sample: JWT_SECRET_KEY is 12 characters long; at least 32 are required
    remediation:
      description: What to do about it; empty when the check passes.
      type: str
      sample: generate each secret at random, at least 32 characters ...
    data:
      description: What the check judged (counts, names, versions; never a secret).
      type: dict
      sample: {"secrets": {"JWT_SECRET_KEY": {"length": 12, "entropy_bits": 40.2,
               "placeholder": false, "ok": false}}}
summary:
  description: How many checks ended in each status.
  returned: always
  type: dict
  sample: {"pass": 14, "warn": 1, "fail": 1, "skip": 2}
failed_checks:
  description: Ids of the checks that failed. (Not C(failed), which Ansible reserves.)
  returned: always
  type: list
  elements: str
  sample: [secret.strength]
warned_checks:
  description: Ids of the checks that warned.
  returned: always
  type: list
  elements: str
  sample: [tls.api.example.com:443]
table:
  description: The report as fixed-width text lines - C(id | STATUS | message), a summary last.
  returned: always
  type: list
  elements: str
  sample:
    - "CHECK           | STATUS | MESSAGE"
    - "----------------+--------+--------"
    - "env.required    | PASS   | all 14 required variables of shop are set"
    - "----------------+--------+--------"
    - "14 pass, 0 warn, 0 fail, 0 skip"
elapsed:
  description: Seconds the checks took.
  returned: always
  type: float
  sample: 0.42
"""

import time
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.prodready.deploy.plugins.module_utils._pg.checks import (
    CHECK_IDS,
    Settings,
    finish,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import PgError
from ansible_collections.prodready.deploy.plugins.module_utils._preflight import (
    database,
    envcheck,
    http,
    resp,
    tls,
)
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    FAIL_ON,
    CheckResult,
    PreflightInputError,
    Probe,
    report,
    run_concurrently,
)

DEFAULT_PERMISSIONS = ["get deployments.apps", "patch deployments.apps", "list pods"]


def _skipped(check_id: str, skip: list[str]) -> bool:
    return any(check_id == s or check_id.startswith(f"{s}.") for s in skip)


def _int_or(env: dict[str, str | None], name: str, default: int) -> int:
    try:
        return int((env.get(name) or "").strip() or default)
    except ValueError:
        return default  # env.format reports it


def plan(params: dict[str, Any], env: dict[str, str | None]
         ) -> tuple[list[CheckResult], list[Probe]]:
    """The environment checks' results and the network probes to run."""
    settings = envcheck.EnvSettings(
        app=params["app"],
        required=tuple(envcheck.DEFAULT_REQUIRED if params["required"] is None
                       else params["required"]),
        mail_enabled=params["mail_enabled"], secret_vars=tuple(params["secret_vars"]),
        placeholders=tuple(params["placeholders"]), min_length=params["secret_min_length"],
        min_entropy_bits=params["secret_min_entropy_bits"])
    timeout = params["timeout"]
    if timeout < 1:
        raise PreflightInputError("option timeout must be at least 1 (seconds)")
    db_result, db_parts = envcheck.check_database_url(env)
    local = [
        envcheck.check_required(env, settings),
        envcheck.check_format(env),
        envcheck.check_strength(env, settings),
        envcheck.check_distinct(envcheck.named_secrets(
            env, settings, {"registry_password": params["registry_password"]})),
        envcheck.check_encryption_key(env),
        envcheck.check_production_mode(env),
        envcheck.check_cors(env),
        db_result,
        envcheck.check_sslmode(db_parts),
    ]
    probes: list[Probe] = []
    skips: list[CheckResult] = []

    def add(check_id: str, configured: str | None, func: Any) -> None:
        """Queue a probe, or a skip saying why not (``configured`` is that reason)."""
        if configured is not None:
            skips.append(CheckResult(check_id, "skip", configured, "", {}))
        else:
            probes.append((check_id, func))

    url = (env.get("DATABASE_URL") or "").strip()
    db_settings = Settings(pool_size=max(1, _int_or(env, "DB_POOL_SIZE", 5)),
                           max_overflow=max(0, _int_or(env, "DB_MAX_OVERFLOW", 10)),
                           app_processes=params["app_processes"])
    add("database.reachable",
        "option database is false" if not params["database"] else
        "DATABASE_URL is not set" if not url else
        "DATABASE_URL did not parse (see database.url)" if db_parts is None else None,
        lambda: database.check_database(url, params["database_ca_cert"], timeout,
                                        params["database_checks"], db_settings))
    try:
        target = resp.target_from_env(env, params["redis_tls"]) if params["redis"] else None
    except ValueError as exc:
        target = None
        local.append(CheckResult("redis.reachable", "fail", str(exc),
                                 "fix REDIS_URL or REDIS_HOST/REDIS_PORT/REDIS_DB", {}))
    if not any(r.id == "redis.reachable" for r in local):
        add("redis.reachable",
            "option redis is false" if not params["redis"] else
            "neither REDIS_URL nor REDIS_HOST is set" if target is None else None,
            lambda: resp.check_redis(target, timeout, params["redis_ca_cert"]))
    for text in params["endpoints"]:
        endpoint = tls.parse_endpoint(text)
        add(endpoint.id, None,
            lambda e=endpoint: tls.check_endpoint(e, params["ca_path"], timeout,
                                                  params["cert_warn_days"]))
    for text in params["kubernetes_permissions"]:
        http.parse_permission(text)  # refuse a malformed one before anything runs
    if params["cors_probe_url"]:
        http.cors_probe_target(params["cors_probe_url"])
        add("cors.probe", None,
            lambda: http.check_cors_probe(params["cors_probe_url"],
                                          params["cors_probe_origin"], params["ca_path"],
                                          timeout))
    add("registry.reachable", None if params["registry_url"] else "no registry_url given",
        lambda: http.check_registry(params["registry_url"], params["registry_username"],
                                    params["registry_password"], params["registry_ca_cert"],
                                    timeout))
    add("kubernetes.reachable", None if params["kubeconfig"] else "no kubeconfig given",
        lambda: http.check_kubernetes(params["kubeconfig"], params["kubernetes_context"],
                                      params["kubernetes_namespace"],
                                      params["kubernetes_permissions"], timeout))
    skip = params["skip"]
    local = [CheckResult(r.id, "skip", "skipped (option skip)", "", {})
             if _skipped(r.id, skip) else r for r in local]
    for check_id, _func in probes:
        if _skipped(check_id, skip):
            skips.append(CheckResult(check_id, "skip", "skipped (option skip)", "", {}))
    probes = [p for p in probes if not _skipped(p[0], skip)]
    return local + skips, probes


def order(results: list[CheckResult]) -> list[CheckResult]:
    """Environment checks, then database, redis, tls, cors probe, registry, kubernetes."""
    rank = ("env.", "secret.", "mode.", "cors", "database.", "redis.", "tls.", "cors.probe",
            "registry.", "kubernetes.")

    def key(item: tuple[int, CheckResult]) -> tuple[int, int]:
        index, result = item
        group = max((i for i, prefix in enumerate(rank) if result.id.startswith(prefix)),
                    default=len(rank))
        return group, index

    return [r for _i, r in sorted(enumerate(results), key=key)]


def main() -> None:
    argument_spec = {
        "app": {"type": "str", "default": "app"},
        "env": {"type": "dict", "required": True, "no_log": True},
        "required": {"type": "list", "elements": "str"},
        "mail_enabled": {"type": "bool", "default": False},
        "secret_vars": {"type": "list", "elements": "str", "no_log": False,
                        "default": list(envcheck.DEFAULT_SECRET_VARS)},
        "placeholders": {"type": "list", "elements": "str", "no_log": True, "default": []},
        "secret_min_length": {"type": "int", "default": 32, "no_log": False},
        "secret_min_entropy_bits": {"type": "float", "default": 80, "no_log": False},
        "database": {"type": "bool", "default": True},
        "database_checks": {"type": "list", "elements": "str", "choices": list(CHECK_IDS),
                            "default": []},
        "database_ca_cert": {"type": "path"},
        "app_processes": {"type": "int", "default": 1},
        "redis": {"type": "bool", "default": True},
        "redis_tls": {"type": "bool"},
        "redis_ca_cert": {"type": "path"},
        "endpoints": {"type": "list", "elements": "str", "default": []},
        "ca_path": {"type": "path"},
        "cert_warn_days": {"type": "int", "default": 30},
        "cors_probe_url": {"type": "str"},
        "cors_probe_origin": {"type": "str", "default": "https://preflight-probe.invalid"},
        "registry_url": {"type": "str"},
        "registry_username": {"type": "str"},
        "registry_password": {"type": "str", "no_log": True},
        "registry_ca_cert": {"type": "path"},
        "kubeconfig": {"type": "path"},
        "kubernetes_context": {"type": "str"},
        "kubernetes_namespace": {"type": "str"},
        "kubernetes_permissions": {"type": "list", "elements": "str",
                                   "default": list(DEFAULT_PERMISSIONS)},
        "timeout": {"type": "int", "default": 10},
        "skip": {"type": "list", "elements": "str", "default": []},
        "fail_on": {"type": "str", "choices": list(FAIL_ON), "default": "fail"},
    }
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    result: dict[str, Any] = {"changed": False}
    started = time.monotonic()
    try:
        env = envcheck.normalise_env(params["env"])
        # Keep the masking of no_log values readable: ports, counts and modes need no mask
        # (see the notes); passwords inside URLs are masked on their own too.
        keep = {v for v in (params["registry_password"], *params["placeholders"]) if v}
        module.no_log_values.difference_update(envcheck.public_values(env) - keep)
        module.no_log_values.update(envcheck.secret_values(env))
        local, probes = plan(params, env)
        results = order(local + run_concurrently(probes, params["timeout"]))
        verdict = report(results, params["fail_on"])
    except (PreflightInputError, PgError) as exc:
        module.fail_json(msg=f"Cannot run the preflight of {params['app']}: {exc}", **result)
    fails = verdict.pop("fails")
    result.update(verdict, elapsed=round(time.monotonic() - started, 3))
    finish(module, result, fails, params["fail_on"], "env_check",
           f"Preflight of {params['app']} failed")


if __name__ == "__main__":
    main()
