# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Redis from Debian on loopback with requirepass."""

from __future__ import annotations

import socket

from .common import Secrets, Settings, alive, need, require_port, run, say, stop_pid, wait_for
from .network import gateway


def redis_ping(port: int, password: str, timeout: float = 1.0) -> bool:
    """AUTH then PING over RESP; True when the server answers PONG."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        def cmd(*parts: str) -> bytes:
            wire = f"*{len(parts)}\r\n" + "".join(f"${len(p)}\r\n{p}\r\n" for p in parts)
            sock.sendall(wire.encode())
            return sock.recv(256)
        return cmd("AUTH", password).startswith(b"+OK") and cmd("PING").startswith(b"+PONG")


class Redis:
    name = "redis"

    def __init__(self, settings: Settings, secrets: Secrets) -> None:
        self.s = settings
        self.secrets = secrets
        self.dir = settings.lab_dir / "redis"
        self.pidfile = settings.pidfile("redis")

    def check(self) -> None:
        need("redis-server", "redis-server")

    def up(self) -> None:
        binary = need("redis-server", "redis-server")
        password = self.secrets.load()["redis"]
        if alive(self.pidfile, "redis-server"):
            say(f"Redis already running on 127.0.0.1:{self.s.redis_port}")
            return
        require_port(self.s.redis_port, "Redis", "PRODREADY_LAB_REDIS_PORT")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.s.run_dir.mkdir(parents=True, exist_ok=True)
        conf = self.dir / "redis.conf"
        conf.touch(mode=0o600)
        conf.write_text(
            "# Written by the prodready lab; rewritten on every `lab up`.\n"
            f"bind 127.0.0.1 {gateway()}\nport {self.s.redis_port}\nprotected-mode yes\n"
            f"requirepass {password}\ndaemonize yes\npidfile {self.pidfile}\n"
            f"dir {self.dir}\nlogfile {self.dir / 'redis.log'}\nsave \"\"\nappendonly no\n"
        )
        say(f"starting Redis on 127.0.0.1:{self.s.redis_port}")
        # The password stays in the 0600 config file, never on a command line.
        run([binary, str(conf)])
        wait_for(lambda: redis_ping(self.s.redis_port, password), "Redis", timeout=20)

    def down(self) -> None:
        stop_pid(self.pidfile, "redis-server", "Redis")

    def status(self) -> tuple[bool, str]:
        try:
            ok = redis_ping(self.s.redis_port, self.secrets.load()["redis"])
        except OSError as exc:
            return False, f"127.0.0.1:{self.s.redis_port} unreachable ({exc})"
        if not ok:
            return False, f"127.0.0.1:{self.s.redis_port} refused AUTH/PING"
        return True, f"127.0.0.1:{self.s.redis_port} (requirepass)"

    def env(self) -> dict[str, str]:
        return {
            "REDIS_HOST": "127.0.0.1",
            "REDIS_PORT": str(self.s.redis_port),
            "REDIS_PASSWORD": self.secrets.load()["redis"],
            "REDIS_DB": "0",
        }
