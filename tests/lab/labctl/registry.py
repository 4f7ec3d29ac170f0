# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Debian's docker-registry (distribution v2) on 127.0.0.1, TLS from the lab CA, htpasswd."""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request

from .common import (
    LabError,
    Secrets,
    Settings,
    alive,
    need,
    require_port,
    run,
    say,
    stop_pid,
    wait_for,
)
from .docker import Docker
from .pki import Pki

USER = "lab"


class Registry:
    name = "registry"

    def __init__(self, settings: Settings, secrets: Secrets, pki: Pki, docker: Docker) -> None:
        self.s = settings
        self.secrets = secrets
        self.pki = pki
        self.engine = docker
        self.dir = settings.lab_dir / "registry"
        self.pidfile = settings.pidfile("registry")
        self.addr = f"127.0.0.1:{settings.registry_port}"

    def _probe(self) -> int:
        """HTTP status of GET /v2/ without credentials: 401 means up with auth on."""
        ctx = ssl.create_default_context(cafile=str(self.pki.path("ca")))
        try:
            urllib.request.urlopen(f"https://{self.addr}/v2/", context=ctx, timeout=2)
        except urllib.error.HTTPError as exc:
            return exc.code
        return 200

    def check(self) -> None:
        need("docker-registry", "docker-registry")
        need("htpasswd", "apache2-utils")

    def up(self) -> None:
        binary = need("docker-registry", "docker-registry")
        htpasswd = need("htpasswd", "apache2-utils")
        password = self.secrets.load()["registry"]
        if alive(self.pidfile, "docker-registry"):
            say(f"registry already running on {self.addr}")
        else:
            require_port(self.s.registry_port, "the registry", "PRODREADY_LAB_REGISTRY_PORT")
            (self.dir / "data").mkdir(parents=True, exist_ok=True)
            # bcrypt, password on stdin so it never shows in the process list.
            run([htpasswd, "-B", "-i", "-c", str(self.dir / "htpasswd"), USER], input=password)
            config = self.dir / "config.yml"
            # JSON is YAML: no YAML library needed on the host.
            config.write_text(json.dumps({
                "version": 0.1,
                "log": {"level": "warn", "fields": {"service": "registry"}},
                "storage": {"filesystem": {"rootdirectory": str(self.dir / "data")},
                            "delete": {"enabled": True}},
                "http": {"addr": self.addr,
                         "tls": {"certificate": str(self.pki.path("server")),
                                 "key": str(self.pki.path("server", "key"))},
                         "headers": {"X-Content-Type-Options": ["nosniff"]}},
                "auth": {"htpasswd": {"realm": "prodready-lab",
                                      "path": str(self.dir / "htpasswd")}},
            }, indent=2))
            say(f"starting the registry on {self.addr} (TLS, htpasswd)")
            log = (self.s.log_dir / "registry.log").open("ab")
            proc = subprocess.Popen([binary, "serve", str(config)], stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
            self.pidfile.write_text(f"{proc.pid}\n")
            wait_for(lambda: self._probe() == 401, "the registry", timeout=30)
        # Docker treats 127.0.0.0/8 registries as insecure: it speaks TLS without checking
        # the chain. Other clients (Python, containerd) verify against the lab CA.
        self.engine.docker("login", self.addr, "--username", USER, "--password-stdin",
                           input=password)

    def down(self) -> None:
        stop_pid(self.pidfile, "docker-registry", "the registry")

    def status(self) -> tuple[bool, str]:
        if not alive(self.pidfile, "docker-registry"):
            return False, "docker-registry is not running"
        try:
            code = self._probe()
        except (OSError, LabError) as exc:
            return False, f"https://{self.addr}/v2/ unreachable ({exc})"
        if code != 401:
            return False, f"https://{self.addr}/v2/ answered {code}, expected 401 (auth on)"
        return True, f"https://{self.addr} (TLS from the lab CA, htpasswd user {USER})"

    def env(self) -> dict[str, str]:
        return {
            "LAB_REGISTRY": self.addr,
            "LAB_REGISTRY_URL": f"https://{self.addr}",
            "LAB_REGISTRY_USERNAME": USER,
            "LAB_REGISTRY_PASSWORD": self.secrets.load()["registry"],
        }
