# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The env_check module (and the preflight role) through Ansible against the lab: the good
environment passes every check, and each broken input fails the check that names it - a
missing variable, weak, placeholder and repeated secrets, DEBUG on, sslmode=disable, a
certificate 10 days from expiry and one for the wrong host (served by loopback TLS servers
started here), an unreachable registry, wrong registry and Redis passwords. Canary secrets
never appear in the output at -vvvv, also when checks fail."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ansible_run import ANSIBLE, REPO, ansible_env, run_module
from imageutil import free_port

# Every secret of the good environment carries this marker, so a leak of any is found.
MARK = "pfcanary"


def canary(length: int = 48) -> str:
    return MARK + secrets.token_hex(length // 2)


def by_id(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result["checks"]}


def check(lab_env: dict[str, str], args: dict[str, Any], *flags: str,
          ) -> tuple[int, dict[str, Any], Any]:
    return run_module(lab_env, "env_check", args, *flags, timeout=300)


# ------------------------------------------------------------------ loopback TLS servers


@contextlib.contextmanager
def tls_server(cert: str, key: str, handshake: bool = True) -> Iterator[int]:
    """A loopback server that completes TLS handshakes with ``cert`` (or, with
    ``handshake=False``, accepts connections and never answers). Yields its port."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _addr = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not handshake:
                held.append(conn)
                continue
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    def answer(conn: socket.socket) -> None:
        conn.settimeout(5)
        try:
            with context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError):
            pass  # clients close after the handshake, or refuse the certificate
        finally:
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(5)
        listener.close()
        for conn in held:
            conn.close()


# --------------------------------------------------------------------------- fixtures


def good_env(lab_env: dict[str, str]) -> dict[str, str]:
    return {
        "SECRET_KEY": canary(), "JWT_SECRET_KEY": canary(),
        "ENCRYPTION_KEY": base64.urlsafe_b64encode(os.urandom(32)).decode(),
        "DATABASE_URL": lab_env["DATABASE_URL"], "DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "10",
        "REDIS_HOST": lab_env["REDIS_HOST"], "REDIS_PORT": lab_env["REDIS_PORT"],
        "REDIS_PASSWORD": lab_env["REDIS_PASSWORD"], "REDIS_DB": lab_env["REDIS_DB"],
        "JWT_ACCESS_TOKEN_EXPIRES": "900", "SENTRY_DSN": "https://public@sentry.example.com/1",
        "CDN_URL": "https://cdn.example.com", "PROMETHEUS_METRICS_PORT": "9100",
        "DEBUG": "false", "FLASK_ENV": "production",
        "CORS_ORIGINS": "https://shop.example.com", "CORS_ALLOW_CREDENTIALS": "true",
    }


@pytest.fixture(scope="module")
def good_port(lab_env: dict[str, str]) -> Iterator[int]:
    with tls_server(lab_env["LAB_TLS_CERT"], lab_env["LAB_TLS_KEY"]) as port:
        yield port


def good_args(lab_env: dict[str, str], port: int, **extra: Any) -> dict[str, Any]:
    args = {
        "app": "pfshop", "env": good_env(lab_env),
        "endpoints": [f"127.0.0.1:{port}"], "ca_path": lab_env["LAB_CA_CERT"],
        "registry_url": lab_env["LAB_REGISTRY_URL"],
        "registry_username": lab_env["LAB_REGISTRY_USERNAME"],
        "registry_password": lab_env["LAB_REGISTRY_PASSWORD"],
        "registry_ca_cert": lab_env["LAB_CA_CERT"],
        "kubeconfig": lab_env["LAB_KUBECONFIG_DEPLOYER"],
        "database_checks": ["tls", "connections"], "timeout": 5,
    }
    args.update(extra)
    return args


def with_env(args: dict[str, Any], **changes: str | None) -> dict[str, Any]:
    env = dict(args["env"])
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return {**args, "env": env}


EXPECTED_IDS = ["env.required", "env.format", "secret.strength", "secret.distinct",
                "secret.encryption_key", "mode.production", "cors", "database.url",
                "database.sslmode", "database.reachable", "database.tls",
                "database.connections", "redis.reachable"]


def assert_only_fails(result: dict[str, Any], *ids: str) -> None:
    assert result["failed_checks"] == list(ids), result["table"]


# ---------------------------------------------------------------------- the good lab


def test_good_lab_environment_passes_every_check(lab_env, good_port):
    rc, result, _proc = check(lab_env, good_args(lab_env, good_port))
    checks = by_id(result)
    endpoint = f"tls.127.0.0.1:{good_port}"
    assert list(checks) == [*EXPECTED_IDS, endpoint, "registry.reachable",
                            "kubernetes.reachable"]
    assert rc == 0, result.get("msg")
    assert result["changed"] is False
    assert {c["status"] for c in checks.values()} == {"pass"}, result["table"]
    assert result["summary"] == {"pass": 16, "warn": 0, "fail": 0, "skip": 0}
    assert result["failed_checks"] == [] and result["warned_checks"] == []
    assert checks["database.reachable"]["data"]["user"] == lab_env["LAB_PG_APP_USER"]
    assert checks["redis.reachable"]["data"]["commands"] == ["AUTH ********", "PING"]
    assert checks[endpoint]["data"]["days_left"] > 30
    assert "127.0.0.1" in checks[endpoint]["data"]["names"]
    assert checks["registry.reachable"]["data"]["status"] == 200
    kube = checks["kubernetes.reachable"]["data"]
    assert kube["identity"] == "system:serviceaccount:prodready:prodready-deployer"
    assert kube["denied"] == [] and kube["namespace"] == "prodready"
    # The table: header, rule, one line a check, rule, summary.
    assert len(result["table"]) == len(checks) + 4
    width = max(len(i) for i in checks)
    assert result["table"][0].split(" | ")[:2] == ["CHECK".ljust(width), "STATUS"]
    assert result["table"][2] == "env.required".ljust(width) + " | PASS   | all 14 required" \
        " variables of pfshop are set"
    assert result["table"][-1] == "16 pass, 0 warn, 0 fail, 0 skip"
    # Numbers of the report are not masked although REDIS_DB=0 is in the no_log env.
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" not in json.dumps(result["summary"])


def test_check_mode_runs_the_same_read_only_checks(lab_env, good_port):
    rc, result, _proc = check(lab_env, good_args(lab_env, good_port), "--check")
    assert rc == 0, result.get("msg")
    assert result["changed"] is False
    assert result["summary"]["pass"] == 16


def test_unconfigured_network_checks_are_skipped(lab_env):
    rc, result, _proc = check(lab_env, {"env": good_env(lab_env), "skip": ["database"]})
    checks = by_id(result)
    assert rc == 0, result.get("msg")
    assert checks["registry.reachable"]["status"] == "skip"
    assert checks["registry.reachable"]["message"] == "no registry_url given"
    assert checks["kubernetes.reachable"]["status"] == "skip"
    assert [checks[i]["status"] for i in ("database.url", "database.sslmode",
                                          "database.reachable")] == ["skip"] * 3
    assert checks["redis.reachable"]["status"] == "pass"


# ------------------------------------------------------------ environment and secrets


def test_missing_variable_fails_env_required(lab_env, good_port):
    args = with_env(good_args(lab_env, good_port), CDN_URL=None, SENTRY_DSN="")
    rc, result, _proc = check(lab_env, args)
    assert rc != 0
    assert_only_fails(result, "env.required")
    required = by_id(result)["env.required"]
    assert required["data"]["missing"] == ["CDN_URL"]
    assert required["data"]["empty"] == ["SENTRY_DSN"]
    assert "missing: CDN_URL; empty: SENTRY_DSN" in required["message"]
    assert result["msg"].startswith("Preflight of pfshop failed: env.required (")


def test_mail_enabled_requires_smtp(lab_env, good_port):
    rc, result, _proc = check(lab_env, {**good_args(lab_env, good_port), "mail_enabled": True})
    assert rc != 0
    assert_only_fails(result, "env.required")
    assert by_id(result)["env.required"]["data"]["missing"] == [
        "SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD"]


@pytest.mark.parametrize(("value", "reason"), [
    ("short-3f9a2c71b04e", "characters long; at least 32 are required"),
    ("changeme", "looks like a well-known default, example or placeholder value"),
    ("<your-jwt-secret-here>", "looks like an unfilled template placeholder"),
    ("you-will-never-guess", "is an example value from documentation"),
    ("a" * 40, "is a single character repeated"),
])
def test_weak_or_placeholder_secret_fails_secret_strength(lab_env, good_port, value, reason):
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                JWT_SECRET_KEY=value))
    assert rc != 0
    assert_only_fails(result, "secret.strength")
    strength = by_id(result)["secret.strength"]
    assert strength["message"].startswith("JWT_SECRET_KEY ")
    assert reason in strength["message"]
    assert strength["data"]["secrets"]["JWT_SECRET_KEY"]["ok"] is False
    assert strength["data"]["secrets"]["SECRET_KEY"]["ok"] is True


def test_placeholders_option_rejects_the_projects_own_examples(lab_env, good_port):
    args = good_args(lab_env, good_port)
    example = args["env"]["SECRET_KEY"]
    rc, result, _proc = check(lab_env, {**args, "placeholders": [example.upper()]})
    assert rc != 0
    assert_only_fails(result, "secret.strength")
    assert by_id(result)["secret.strength"]["message"] == (
        "SECRET_KEY is an example value from documentation")


def test_repeated_secret_fails_secret_distinct(lab_env, good_port):
    args = good_args(lab_env, good_port)
    rc, result, _proc = check(lab_env, with_env(args, JWT_SECRET_KEY=args["env"]["SECRET_KEY"]))
    assert rc != 0
    assert_only_fails(result, "secret.distinct")
    assert by_id(result)["secret.distinct"]["message"] == (
        "secrets share a value: SECRET_KEY and JWT_SECRET_KEY")


def test_registry_password_reused_as_app_secret_fails_secret_distinct(lab_env, good_port):
    args = good_args(lab_env, good_port)
    rc, result, _proc = check(lab_env, with_env(args, SECRET_KEY=args["registry_password"]))
    assert "secret.distinct" in result["failed_checks"]
    assert by_id(result)["secret.distinct"]["data"]["shared"] == [
        ["SECRET_KEY", "registry_password"]]
    assert rc != 0


@pytest.mark.parametrize(("key", "reason"), [
    ("q83vEjRWeJCrze8SNFZ4kA==", "the key decodes to 16 bytes; 32 are required"),
    ("not base64 at all!", "not a multiple of 4"),
])
def test_bad_encryption_key_fails_its_check(lab_env, good_port, key, reason):
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                ENCRYPTION_KEY=key))
    assert rc != 0
    assert_only_fails(result, "secret.encryption_key")
    assert reason in by_id(result)["secret.encryption_key"]["message"]


@pytest.mark.parametrize(("changes", "text"), [
    ({"DEBUG": "true"}, "DEBUG='true' turns debug mode on"),
    ({"DEBUG": "1", "FLASK_ENV": None}, "DEBUG='1' turns debug mode on"),
    ({"FLASK_ENV": "development"}, "FLASK_ENV='development' is not production"),
    ({"FLASK_ENV": None, "DJANGO_DEBUG": "True"}, "DJANGO_DEBUG='True' turns debug mode on"),
])
def test_debug_on_fails_mode_production(lab_env, good_port, changes, text):
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port), **changes))
    assert rc != 0
    assert_only_fails(result, "mode.production")
    assert text in by_id(result)["mode.production"]["message"]


def test_no_production_variable_warns_and_fail_on_warn_fails(lab_env, good_port):
    args = with_env(good_args(lab_env, good_port), FLASK_ENV=None)
    rc, result, _proc = check(lab_env, args)
    assert rc == 0
    assert result["warned_checks"] == ["mode.production"]
    rc, result, _proc = check(lab_env, {**args, "fail_on": "warn"})
    assert rc != 0
    assert result["msg"].startswith("Preflight of pfshop failed: mode.production (no variable")


def test_wildcard_origin_with_credentials_fails_cors(lab_env, good_port):
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                CORS_ORIGINS="https://shop.example.com, *"))
    assert rc != 0
    assert_only_fails(result, "cors")
    assert "CORS_ORIGINS allows any origin ('*') and CORS_ALLOW_CREDENTIALS is true" in \
        by_id(result)["cors"]["message"]
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                CORS_ORIGINS="*", CORS_ALLOW_CREDENTIALS="0"))
    assert rc == 0
    assert by_id(result)["cors"]["message"] == "CORS_ORIGINS allows any origin, without" \
        " credentials"


# ----------------------------------------------------------------- database and Redis


def test_sslmode_disable_fails_database_sslmode(lab_env, good_port):
    url = lab_env["DATABASE_URL"].split("?", maxsplit=1)[0] + "?sslmode=disable"
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                DATABASE_URL=url))
    assert rc != 0
    checks = by_id(result)
    assert checks["database.sslmode"]["status"] == "fail"
    assert checks["database.sslmode"]["message"] == (
        "DATABASE_URL has sslmode=disable, which allows an unencrypted connection")
    # The lab accepts plain connections from loopback, so the pg_check tls check, run over
    # the same connection, finds the real thing: not encrypted.
    assert checks["database.tls"]["status"] == "fail"
    assert result["failed_checks"] == ["database.sslmode", "database.tls"]


def test_wrong_database_password_fails_database_reachable(lab_env, good_port):
    url = lab_env["DATABASE_URL"].replace(f":{lab_env['LAB_PG_APP_PASSWORD']}@",
                                          f":{canary()}@")
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                DATABASE_URL=url))
    assert rc != 0
    assert_only_fails(result, "database.reachable")
    reachable = by_id(result)["database.reachable"]
    assert "password authentication failed" in reachable["message"]
    assert reachable["data"]["cause"] == "auth"
    assert "database.tls" not in by_id(result)


def test_redis_wrong_password_fails_redis_reachable(lab_env, good_port):
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                REDIS_PASSWORD=canary()))
    assert rc != 0
    assert_only_fails(result, "redis.reachable")
    message = by_id(result)["redis.reachable"]["message"]
    assert message == (f"Redis at redis://127.0.0.1:{lab_env['REDIS_PORT']}/0 refused the"
                       " password in REDIS_PASSWORD (WRONGPASS)")


def test_redis_without_password_fails_noauth(lab_env, good_port):
    args = good_args(lab_env, good_port, required=["SECRET_KEY"])
    rc, result, _proc = check(lab_env, with_env(args, REDIS_PASSWORD=None))
    assert rc != 0
    assert_only_fails(result, "redis.reachable")
    assert "requires a password, and none is set in REDIS_PASSWORD (NOAUTH)" in \
        by_id(result)["redis.reachable"]["message"]


def test_redis_url_with_the_right_password_passes(lab_env, good_port):
    url = (f"redis://:{lab_env['REDIS_PASSWORD']}@127.0.0.1:{lab_env['REDIS_PORT']}/1")
    args = with_env(good_args(lab_env, good_port), REDIS_URL=url)
    rc, result, _proc = check(lab_env, args)
    assert rc == 0, result["table"]
    redis = by_id(result)["redis.reachable"]
    assert redis["data"]["commands"] == ["AUTH ********", "SELECT 1", "PING"]
    assert redis["message"].endswith("with the password in REDIS_URL")


def test_redis_unreachable_fails(lab_env, good_port):
    rc, result, _proc = check(lab_env, with_env(good_args(lab_env, good_port),
                                                REDIS_PORT=str(free_port())))
    assert rc != 0
    assert_only_fails(result, "redis.reachable")
    assert "cannot connect to Redis" in by_id(result)["redis.reachable"]["message"]


# ---------------------------------------------------------------------- certificates


def test_certificate_expiring_in_under_30_days_warns(lab_env, good_port):
    with tls_server(lab_env["LAB_TLS_EXPIRING_CERT"], lab_env["LAB_TLS_EXPIRING_KEY"]) as port:
        args = good_args(lab_env, good_port)
        args["endpoints"] = [f"https://127.0.0.1:{port}/health", f"127.0.0.1:{good_port}"]
        rc, result, _proc = check(lab_env, args)
        checks = by_id(result)
        expiring = checks[f"tls.127.0.0.1:{port}"]
        assert rc == 0, result.get("msg")
        assert result["warned_checks"] == [f"tls.127.0.0.1:{port}"]
        assert expiring["status"] == "warn"
        assert 8 <= expiring["data"]["days_left"] <= 10
        assert f"expires in {expiring['data']['days_left']} days" in expiring["message"]
        assert "under the 30-day threshold" in expiring["message"]
        assert checks[f"tls.127.0.0.1:{good_port}"]["status"] == "pass"
        rc, result, _proc = check(lab_env, {**args, "fail_on": "warn"})
        assert rc != 0
        assert result["msg"].startswith(f"Preflight of pfshop failed: tls.127.0.0.1:{port} (")
        rc, result, _proc = check(lab_env, {**args, "cert_warn_days": 5})
        assert rc == 0 and result["warned_checks"] == []


def test_wrong_hostname_fails_its_tls_check(lab_env, good_port):
    with tls_server(lab_env["LAB_TLS_WRONGHOST_CERT"], lab_env["LAB_TLS_WRONGHOST_KEY"]) as port:
        args = good_args(lab_env, good_port)
        args["endpoints"] = [f"127.0.0.1:{port}"]
        rc, result, _proc = check(lab_env, args)
    assert rc != 0
    assert_only_fails(result, f"tls.127.0.0.1:{port}")
    wrong = by_id(result)[f"tls.127.0.0.1:{port}"]
    assert wrong["message"].startswith(f"the certificate of 127.0.0.1:{port} does not match"
                                       " the host name 127.0.0.1 (it names ")
    assert wrong["data"]["verify_error"] == "hostname_mismatch"
    assert "127.0.0.1" not in wrong["data"]["names"]


def test_untrusted_chain_fails_without_the_lab_ca(lab_env, good_port):
    args = good_args(lab_env, good_port)
    args.pop("ca_path")
    rc, result, _proc = check(lab_env, args)
    assert rc != 0
    assert_only_fails(result, f"tls.127.0.0.1:{good_port}")
    assert "is not trusted" in by_id(result)[f"tls.127.0.0.1:{good_port}"]["message"]


def test_hung_endpoint_fails_alone_within_its_timeout(lab_env, good_port):
    with tls_server(lab_env["LAB_TLS_CERT"], lab_env["LAB_TLS_KEY"], handshake=False) as port:
        args = good_args(lab_env, good_port, timeout=2)
        args["endpoints"] = [f"127.0.0.1:{port}", f"127.0.0.1:{good_port}"]
        rc, result, _proc = check(lab_env, args)
    assert rc != 0
    assert_only_fails(result, f"tls.127.0.0.1:{port}")
    hung = by_id(result)[f"tls.127.0.0.1:{port}"]["message"]
    assert hung.startswith(f"no TLS handshake with 127.0.0.1:{port}: ")
    assert "timed out" in hung
    assert by_id(result)[f"tls.127.0.0.1:{good_port}"]["status"] == "pass"


# ------------------------------------------------------------- registry and Kubernetes


def test_unreachable_registry_fails_registry_reachable(lab_env, good_port):
    port = free_port()
    args = good_args(lab_env, good_port, registry_url=f"https://127.0.0.1:{port}")
    rc, result, _proc = check(lab_env, args)
    assert rc != 0
    assert_only_fails(result, "registry.reachable")
    message = by_id(result)["registry.reachable"]["message"]
    assert message.startswith(f"the registry is unreachable: cannot reach"
                              f" https://127.0.0.1:{port}/v2/: ")
    assert "refused" in message.lower()


def test_wrong_registry_password_fails_registry_reachable(lab_env, good_port):
    rc, result, _proc = check(lab_env, good_args(lab_env, good_port,
                                                 registry_password=canary()))
    assert rc != 0
    assert_only_fails(result, "registry.reachable")
    assert by_id(result)["registry.reachable"]["message"] == (
        f"{lab_env['LAB_REGISTRY_URL']} refused the credentials of"
        " registry_username/registry_password (HTTP 401)")


def test_bad_kubernetes_token_fails_kubernetes_reachable(lab_env, good_port, tmp_path):
    config = json.loads(Path(lab_env["LAB_KUBECONFIG_DEPLOYER"]).read_text())
    config["users"][0]["user"]["token"] = canary()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps(config))
    rc, result, _proc = check(lab_env, good_args(lab_env, good_port,
                                                 kubeconfig=str(kubeconfig)))
    assert rc != 0
    assert_only_fails(result, "kubernetes.reachable")
    assert "refused the credentials of user 'deployer' (HTTP 401)" in \
        by_id(result)["kubernetes.reachable"]["message"]


def test_missing_permission_fails_kubernetes_reachable(lab_env, good_port):
    args = good_args(lab_env, good_port,
                     kubernetes_permissions=["get deployments.apps", "create namespaces"])
    rc, result, _proc = check(lab_env, args)
    assert rc != 0
    assert_only_fails(result, "kubernetes.reachable")
    kube = by_id(result)["kubernetes.reachable"]
    assert kube["message"] == ("system:serviceaccount:prodready:prodready-deployer may not"
                               " create namespaces in namespace prodready")
    assert kube["data"]["allowed"] == ["get deployments.apps"]


def test_admin_client_certificate_kubeconfig_passes(lab_env, good_port):
    rc, result, _proc = check(lab_env, good_args(
        lab_env, good_port, kubeconfig=lab_env["LAB_KUBECONFIG_ADMIN"],
        kubernetes_namespace="prodready"))
    assert rc == 0, result["table"]
    assert by_id(result)["kubernetes.reachable"]["status"] == "pass"


# ----------------------------------------------------------------------- no secret leaks


def test_canary_secrets_never_appear_at_vvvv_when_checks_fail(lab_env, good_port):
    args = good_args(lab_env, good_port, registry_password=canary())
    args = with_env(args, REDIS_PASSWORD=canary(), DEBUG="true",
                    DATABASE_URL=lab_env["DATABASE_URL"].replace(
                        f":{lab_env['LAB_PG_APP_PASSWORD']}@", f":{canary()}@"))
    planted = [v for v in (*args["env"].values(), args["registry_password"]) if MARK in v]
    assert len(planted) == 5
    rc, result, proc = check(lab_env, args, "-vvvv")
    assert rc != 0
    assert set(result["failed_checks"]) == {"mode.production", "database.reachable",
                                            "redis.reachable", "registry.reachable"}
    output = proc.stdout + proc.stderr
    assert MARK not in output
    # Secret values are masked in the echoed arguments; mode variables are not secret.
    shown = result["invocation"]["module_args"]["env"]
    assert shown["SECRET_KEY"] == shown["REDIS_PASSWORD"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert shown["DATABASE_URL"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert shown["DEBUG"] == "true"
    assert result["invocation"]["module_args"]["registry_password"] == \
        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def test_canary_secrets_never_appear_at_vvvv_when_all_pass(lab_env, good_port):
    rc, result, proc = check(lab_env, good_args(lab_env, good_port), "-vvvv")
    assert rc == 0, result.get("msg")
    assert MARK not in proc.stdout + proc.stderr


PLAYBOOK = """\
- name: Preflight
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    pf_inputs: "{{ lookup('ansible.builtin.file', env_file) | from_json }}"
  roles:
    - role: prodready.deploy.preflight
      vars:
        preflight_app: pfshop
        preflight_env: "{{ pf_inputs.env }}"
        preflight_endpoints: ["127.0.0.1:{{ tls_port }}"]
        preflight_ca_path: "{{ lookup('ansible.builtin.env', 'LAB_CA_CERT') }}"
        preflight_registry_url: "{{ lookup('ansible.builtin.env', 'LAB_REGISTRY_URL') }}"
        preflight_registry_username: lab
        preflight_registry_password: "{{ pf_inputs.registry }}"
        preflight_registry_ca_cert: "{{ lookup('ansible.builtin.env', 'LAB_CA_CERT') }}"
"""


def run_role(lab_env: dict[str, str], tmp_path: Path, env: dict[str, str], port: int,
             registry_password: str) -> subprocess.CompletedProcess:
    env_file = tmp_path / "env.json"
    # Secrets go through a file: -vvvv echoes the command line, extra vars included.
    env_file.write_text(json.dumps({"env": env, "registry": registry_password}))
    playbook = tmp_path / "preflight.yml"
    playbook.write_text(PLAYBOOK)
    extra = {"env_file": str(env_file), "tls_port": port}
    return subprocess.run([str(ANSIBLE) + "-playbook", str(playbook), "-vvvv",
                           "-e", json.dumps(extra)], capture_output=True, text=True,
                          env={**ansible_env(lab_env), "ANSIBLE_STDOUT_CALLBACK": "default"},
                          cwd=REPO, timeout=300, check=False)


def test_role_prints_the_table_then_fails_without_leaking(lab_env, good_port, tmp_path):
    env = with_env({"env": good_env(lab_env)}, REDIS_PASSWORD=canary(), DEBUG="on")["env"]
    proc = run_role(lab_env, tmp_path, env, good_port, canary())
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "mode.production       | FAIL   | DEBUG='on' turns debug mode on" in output
    assert "Preflight of pfshop failed: mode.production, redis.reachable, registry.reachable" \
        in output
    assert "TASK [prodready.deploy.preflight : Fail when a check failed]" in output
    assert MARK not in output


def test_role_passes_on_the_good_environment(lab_env, good_port, tmp_path):
    proc = run_role(lab_env, tmp_path, good_env(lab_env), good_port,
                    lab_env["LAB_REGISTRY_PASSWORD"])
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]
    assert "13 pass, 0 warn, 0 fail, 1 skip" in output, output[-4000:]
    assert "kubernetes.reachable  | SKIP   | no kubeconfig given" in output
    assert MARK not in output


# ----------------------------------------------------------------- CORS probe, inputs


@contextlib.contextmanager
def cors_server(reflect: bool) -> Iterator[int]:
    """A loopback HTTP server that answers CORS preflights - reflecting any Origin with
    credentials (a real misconfiguration), or allowing only its own origin."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_OPTIONS(self) -> None:  # noqa: N802 - the http.server API
            self.send_response(204)
            origin = self.headers.get("Origin", "") if reflect else "https://shop.example.com"
            self.send_header("Access-Control-Allow-Origin", origin)
            self.send_header("Access-Control-Allow-Credentials", "true")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("reflect", [True, False])
def test_cors_probe_fails_on_a_reflected_origin_with_credentials(lab_env, good_port, reflect):
    with cors_server(reflect) as port:
        url = f"http://127.0.0.1:{port}/api/users"
        rc, result, _proc = check(lab_env, good_args(lab_env, good_port, cors_probe_url=url))
    probe = by_id(result)["cors.probe"]
    if reflect:
        assert rc != 0
        assert_only_fails(result, "cors.probe")
        assert probe["message"] == (f"{url} allows the foreign origin"
                                    " https://preflight-probe.invalid with credentials"
                                    " (Access-Control-Allow-Origin:"
                                    " https://preflight-probe.invalid)")
    else:
        assert rc == 0, result["table"]
        assert probe["status"] == "pass"
    assert probe["data"]["allow_credentials"] is True


@pytest.mark.parametrize(("args", "message"), [
    ({"kubernetes_permissions": ["deployments"]},
     "option kubernetes_permissions: 'deployments' is not 'verb resource[.group]'"),
    ({"endpoints": ["127.0.0.1:notaport"]}, "option endpoints: '127.0.0.1:notaport' is not"),
    ({"cors_probe_url": "ftp://x"}, "option cors_probe_url must be an http(s) URL"),
    ({"timeout": 0}, "option timeout must be at least 1"),
])
def test_bad_options_fail_before_any_check(lab_env, good_port, args, message):
    rc, result, _proc = check(lab_env, good_args(lab_env, good_port, **args))
    assert rc != 0
    assert result["msg"].startswith(f"Cannot run the preflight of pfshop: {message}")
    assert "checks" not in result


def test_missing_kubeconfig_fails_its_check(lab_env, good_port, tmp_path):
    rc, result, _proc = check(lab_env, good_args(lab_env, good_port,
                                                 kubeconfig=str(tmp_path / "none")))
    assert rc != 0
    assert_only_fails(result, "kubernetes.reachable")
    assert by_id(result)["kubernetes.reachable"]["message"].startswith(
        f"cannot read the kubeconfig {tmp_path / 'none'}: No such file")
