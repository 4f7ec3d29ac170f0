# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's services answer as the later tiers need them to."""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
import pytest
from conftest import LAB, lab, parse_exports

SERVICES = ("network", "pki", "postgresql", "redis", "docker", "registry", "kubernetes", "node")


def test_status_reports_every_service_up() -> None:
    proc = lab("status")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states = {line.split()[0]: line.split()[1] for line in proc.stdout.splitlines()}
    assert states == dict.fromkeys(SERVICES, "up")


def test_env_is_valid_shell(lab_env: dict[str, str]) -> None:
    proc = subprocess.run(["bash", "-c", f'eval "$({LAB} env)"; printf %s "$DATABASE_URL"'],
                          capture_output=True, text=True, check=True)
    assert proc.stdout == lab_env["DATABASE_URL"]
    for key in ("DATABASE_URL", "REDIS_PASSWORD", "DOCKER_HOST", "LAB_REGISTRY", "LAB_CA_CERT"):
        assert lab_env[key], key


def test_postgresql_verify_full_tls_and_scram(lab_env: dict[str, str]) -> None:
    with psycopg2.connect(lab_env["DATABASE_URL"]) as conn, conn.cursor() as cur:
        cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        assert cur.fetchone()[0] is True
        cur.execute("SELECT current_user, current_database(), "
                    "current_setting('server_version_num')")
        user, db, version = cur.fetchone()
        assert (user, db) == ("app", "app")
        assert version.startswith("15")
    # scram: a wrong password is refused.
    bad = lab_env["DATABASE_URL"].replace(lab_env["LAB_PG_APP_PASSWORD"], "wrong-password")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(bad)


def test_postgresql_verify_full_rejects_wrong_ca(lab_env: dict[str, str], tmp_path: Path) -> None:
    other_ca = tmp_path / "other-ca.crt"
    other_ca.write_text(Path(lab_env["LAB_TLS_WRONGHOST_CERT"]).read_text())
    url = lab_env["DATABASE_URL"].split("?")[0] + f"?sslmode=verify-full&sslrootcert={other_ca}"
    with pytest.raises(psycopg2.OperationalError, match="certificate verify failed"):
        psycopg2.connect(url)


def _redis(port: int, *commands: list[str]) -> list[bytes]:
    replies = []
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        for parts in commands:
            wire = f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)
            sock.sendall(wire.encode())
            replies.append(sock.recv(256))
    return replies


def test_redis_requires_password(lab_env: dict[str, str]) -> None:
    port = int(lab_env["REDIS_PORT"])
    assert _redis(port, ["PING"])[0].startswith(b"-NOAUTH")
    assert _redis(port, ["AUTH", lab_env["REDIS_PASSWORD"]], ["PING"]) == [b"+OK\r\n", b"+PONG\r\n"]


def _registry_get(lab_env: dict[str, str], path: str, auth: bool) -> int:
    ctx = ssl.create_default_context(cafile=lab_env["LAB_CA_CERT"])
    req = urllib.request.Request(lab_env["LAB_REGISTRY_URL"] + path)
    if auth:
        token = f"{lab_env['LAB_REGISTRY_USERNAME']}:{lab_env['LAB_REGISTRY_PASSWORD']}"
        req.add_header("Authorization", "Basic " + base64.b64encode(token.encode()).decode())
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_registry_tls_verifies_and_requires_auth(lab_env: dict[str, str]) -> None:
    assert _registry_get(lab_env, "/v2/", auth=False) == 401
    assert _registry_get(lab_env, "/v2/", auth=True) == 200
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        urllib.request.urlopen(lab_env["LAB_REGISTRY_URL"] + "/v2/", timeout=5,
                               context=ssl.create_default_context())


def _cert_not_after(path: str) -> datetime:
    out = subprocess.run(["openssl", "x509", "-enddate", "-noout", "-in", path],
                         capture_output=True, text=True, check=True).stdout
    return datetime.strptime(out.strip().split("=", 1)[1], "%b %d %H:%M:%S %Y %Z").replace(
        tzinfo=UTC)


def test_negative_certificates(lab_env: dict[str, str]) -> None:
    now = datetime.now(UTC)
    assert 0 < (_cert_not_after(lab_env["LAB_TLS_EXPIRING_CERT"]) - now).days < 30
    assert (_cert_not_after(lab_env["LAB_TLS_CERT"]) - now).days >= 30
    san = subprocess.run(["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in",
                          lab_env["LAB_TLS_WRONGHOST_CERT"]],
                         capture_output=True, text=True, check=True).stdout
    assert "wrong-host.invalid" in san
    assert "localhost" not in san and "127.0.0.1" not in san


def _docker(lab_env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": lab_env["DOCKER_HOST"],
           "DOCKER_CONFIG": lab_env["DOCKER_CONFIG"]}
    return subprocess.run(["docker", *args], capture_output=True, text=True, env=env,
                          check=False, timeout=600)


def test_docker_engine_has_base_image(lab_env: dict[str, str]) -> None:
    proc = _docker(lab_env, "run", "--rm", "--network", "none", lab_env["LAB_BASE_IMAGE"],
                   "python3", "-c", "import sys, venv; print(sys.version_info[:2])")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "(3, 11)"


def _running(pid: int) -> bool:
    """Alive and not a zombie waiting for init to reap it."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.lab_lifecycle
def test_down_leaves_no_process_and_up_restores(lab_env: dict[str, str]) -> None:
    lab_dir = lab_env["PRODREADY_LAB_DIR"]
    pidfiles = sorted(Path(lab_dir, "run").glob("*.pid")) + [
        Path(lab_dir, "postgresql/data/postmaster.pid")]
    pids = {int(p.read_text().split()[0]) for p in pidfiles if p.exists()}
    assert len(pids) >= 4, pidfiles
    down = lab("down")
    assert down.returncode == 0, down.stderr
    assert lab("status").returncode == 1
    left = [pid for pid in pids if _running(pid)]
    assert left == [], f"still running after lab down: {left}"
    ours = []
    for proc_dir in Path("/proc").glob("[0-9]*"):
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if not _running(int(proc_dir.name)):
            continue
        if lab_dir in cmdline or f"127.0.0.1:{lab_env['REDIS_PORT']}" in cmdline:
            ours.append(f"{proc_dir.name}: {cmdline}")
    assert ours == [], "lab processes left after lab down:\n" + "\n".join(ours)
    up = lab("up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert json.dumps(parse_exports(lab("env").stdout)) == json.dumps(lab_env)
