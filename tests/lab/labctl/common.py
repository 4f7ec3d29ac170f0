# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared plumbing for the lab: paths, settings, processes, pid files, secrets."""

from __future__ import annotations

import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


class LabError(Exception):
    """A failure the user can act on; the message says what and how to fix it."""


def say(msg: str) -> None:
    """Progress line for a long step, flushed so it shows while the step runs."""
    print(f"lab: {msg}", flush=True)


@dataclass(frozen=True)
class Settings:
    lab_dir: Path
    cache_dir: Path
    pg_port: int
    redis_port: int
    registry_port: int
    app_port: int
    apiserver_port: int
    etcd_port: int

    @classmethod
    def from_env(cls) -> Settings:
        home = Path(os.environ.get("HOME", "/root"))

        def port(name: str, default: int) -> int:
            raw = os.environ.get(name, str(default))
            if not raw.isdigit() or not 0 < int(raw) < 65536:
                raise LabError(f"{name}={raw!r} is not a TCP port; set it to 1-65535")
            return int(raw)
        return cls(
            # PostgreSQL runs as its own OS user and must reach its data: keep the lab out
            # of $HOME (often mode 0700).
            lab_dir=Path(os.environ.get("PRODREADY_LAB_DIR", "/var/tmp/prodready-lab")),
            cache_dir=Path(os.environ.get("PRODREADY_CACHE", str(home / ".cache/prodready"))),
            pg_port=port("PRODREADY_LAB_PG_PORT", 55432),
            redis_port=port("PRODREADY_LAB_REDIS_PORT", 56379),
            registry_port=port("PRODREADY_LAB_REGISTRY_PORT", 5000),
            app_port=port("PRODREADY_LAB_APP_PORT", 58080),
            apiserver_port=port("PRODREADY_LAB_APISERVER_PORT", 56443),
            etcd_port=port("PRODREADY_LAB_ETCD_PORT", 52379),
        )

    @property
    def run_dir(self) -> Path:
        return self.lab_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.lab_dir / "log"

    @property
    def pki_dir(self) -> Path:
        return self.lab_dir / "pki"

    def pidfile(self, name: str) -> Path:
        return self.run_dir / f"{name}.pid"


def need(binary: str, package: str) -> str:
    """Path of a binary, or a LabError naming the Debian package that provides it."""
    path = shutil.which(binary) or next(
        (p for p in (f"/usr/sbin/{binary}", f"/usr/bin/{binary}") if os.access(p, os.X_OK)),
        None,
    )
    if not path:
        raise LabError(
            f"{binary} not found: install the Debian package {package} "
            f"(scripts/setup does, as root or with sudo)"
        )
    return path


def run(
    cmd: list[str],
    *,
    check: bool = True,
    input: str | None = None,  # noqa: A002  (mirrors subprocess.run)
    env: dict[str, str] | None = None,
    user: str | None = None,
    capture: bool = True,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command as an argument list; on failure raise LabError with its stderr."""
    if user and os.geteuid() == 0 and user != "root":
        cmd = ["runuser", "-u", user, "--", *cmd]
    full_env = None if env is None else {**os.environ, **env}
    try:
        proc = subprocess.run(
            cmd, input=input, env=full_env, text=True, timeout=timeout,
            stdout=subprocess.PIPE if capture else None,
            stderr=subprocess.PIPE if capture else None, check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{cmd[0]} did not finish within {timeout:.0f}s: {' '.join(cmd)}") from exc
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "").strip()[-2000:]
        raise LabError(f"{' '.join(cmd)} exited {proc.returncode}: {detail}")
    return proc


def read_pid(pidfile: Path) -> int | None:
    try:
        text = pidfile.read_text().split()
    except (FileNotFoundError, PermissionError):
        return None
    return int(text[0]) if text and text[0].isdigit() else None


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pidfile: Path, expect: str) -> int | None:
    """The pid in pidfile if that process runs and its command line contains `expect`.

    Matching the command line guards against a stale pid file naming a reused pid.
    """
    pid = read_pid(pidfile)
    if pid and expect in pid_cmdline(pid):
        return pid
    return None


def stop_pid(pidfile: Path, expect: str, what: str, grace: float = 30) -> bool:
    """Stop the process a pid file names (never by name); True if one was running."""
    pid = alive(pidfile, expect)
    if pid is None:
        pidfile.unlink(missing_ok=True)
        return False
    say(f"stopping {what} (pid {pid})")
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and Path(f"/proc/{pid}").exists():
        if _is_zombie(pid):
            break
        time.sleep(0.1)
    if Path(f"/proc/{pid}").exists() and not _is_zombie(pid):
        say(f"{what} ignored SIGTERM for {grace:.0f}s; sending SIGKILL")
        os.kill(pid, signal.SIGKILL)
    pidfile.unlink(missing_ok=True)
    return True


def running(pid: int) -> bool:
    """The process exists and is not a zombie."""
    return Path(f"/proc/{pid}").exists() and not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1].startswith("Z")
    except (OSError, IndexError):
        return True


def spawn(argv: list[str], pidfile: Path, log: Path, env: dict[str, str] | None = None) -> int:
    """Start a daemon in its own session, detached from the caller; record its pid."""
    log.parent.mkdir(parents=True, exist_ok=True)
    pidfile.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True,
                                env=None if env is None else {**os.environ, **env})
    pidfile.write_text(f"{proc.pid}\n")
    return proc.pid


def log_tail(log: Path, chars: int = 1500) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def require_port(port: int, what: str, env_name: str) -> None:
    if not port_free(port):
        raise LabError(
            f"port {port} on 127.0.0.1 is already in use, so {what} cannot start there: "
            f"stop whatever listens on it (ss -ltnp 'sport = :{port}') or set {env_name}"
        )


def wait_for(probe, what: str, timeout: float = 60, interval: float = 0.2,
             fail_fast: type[Exception] | None = None) -> None:
    """Poll probe() until it returns truthy; LabError naming `what` on timeout.

    An exception of type `fail_fast` from the probe ends the wait at once.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except Exception as exc:
            if fail_fast is not None and isinstance(exc, fail_fast):
                raise  # noqa: BLE001  (any probe failure means "not yet")
            last = exc
        time.sleep(interval)
    raise LabError(f"{what} did not become ready within {timeout:.0f}s" + (
        f" (last error: {last})" if last else ""))


def tcp_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Secrets:
    """Lab credentials, generated once per lab directory and kept mode 0600.

    They are lab-only values; nothing of production ever lives here.
    """

    NAMES = ("pg_superuser", "pg_app", "redis", "registry", "app_secret_key")

    def __init__(self, settings: Settings) -> None:
        self.path = settings.lab_dir / "secrets.env"

    def load(self) -> dict[str, str]:
        values: dict[str, str] = {}
        if self.path.exists():
            for line in self.path.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    values[key] = value
        missing = [n for n in self.NAMES if n not in values]
        if missing:
            for name in missing:
                values[name] = secrets.token_urlsafe(32)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.writelines(f"{k}={v}\n" for k, v in sorted(values.items()))
        return values


def chown_to(path: Path, user: str) -> None:
    if os.geteuid() == 0:
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def service_user(name: str) -> str | None:
    """The OS user a service runs as: its own account as root, else the caller."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(name)
    except KeyError as exc:
        raise LabError(f"OS user {name!r} is missing: reinstall its Debian package") from exc
    return name


def eprint(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)
