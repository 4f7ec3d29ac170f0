# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Command line of the lab: up, down, status, env, app, clean."""

from __future__ import annotations

import os
import shlex
import shutil
import sys

from .app import App
from .common import LabError, Secrets, Settings, eprint, say
from .docker import Docker
from .kube import Kube
from .network import Network
from .node import Node
from .pki import Pki
from .postgres import Postgres
from .redis import Redis
from .registry import Registry

USAGE = """\
usage: lab COMMAND

  up        start every lab service (idempotent: running ones are left alone)
  down      stop every lab service by its pid file; data stays for the next `up`
  status    say what is up; exit 1 if anything is down
  env       print the variables inventories/local reads, as shell exports
  app       build and push the reference app image, run it, print its endpoints
  app-context
            prepare the reference app's build context for deploy.yml, print its path
  clean     `down`, then delete the lab directory (caches outside it stay)
  help      this text

Settings (environment): PRODREADY_LAB_DIR (default /var/tmp/prodready-lab),
PRODREADY_CACHE (default ~/.cache/prodready), PRODREADY_LAB_PG_PORT (55432),
PRODREADY_LAB_REDIS_PORT (56379), PRODREADY_LAB_REGISTRY_PORT (5000),
PRODREADY_LAB_APP_PORT (58080), PRODREADY_LAB_APISERVER_PORT (56443),
PRODREADY_LAB_ETCD_PORT (52379; +1 and +2 are etcd's peer and metrics ports).
"""


class Lab:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.secrets = Secrets(settings)
        self.network = Network(settings)
        self.pki = Pki(settings)
        self.postgres = Postgres(settings, self.secrets, self.pki)
        self.redis = Redis(settings, self.secrets)
        self.docker = Docker(settings)
        self.registry = Registry(settings, self.secrets, self.pki, self.docker)
        self.app = App(settings, self.docker, self.registry, self.postgres, self.redis)
        self.kube = Kube(settings, self.pki)
        self.node = Node(settings, self.secrets, self.pki, self.docker, self.registry, self.kube)
        # Start order; `down` walks it backwards.
        self.services = [self.network, self.pki, self.postgres, self.redis, self.docker,
                         self.registry, self.kube, self.node]

    def up(self) -> int:
        # Every binary first, so a missing package stops `up` before anything starts.
        for svc in self.services:
            svc.check()
        self.s.lab_dir.mkdir(parents=True, exist_ok=True)
        self.s.lab_dir.chmod(0o755)
        for svc in self.services:
            svc.up()
        return self.status()

    def down(self) -> int:
        failures = 0
        for svc in reversed(self.services):
            try:
                svc.down()
            except LabError as exc:
                eprint(f"lab: could not stop {svc.name}: {exc}")
                failures += 1
        return 1 if failures else 0

    def status(self) -> int:
        down = 0
        for svc in self.services:
            ok, detail = svc.status()
            down += not ok
            print(f"{svc.name:<11} {'up' if ok else 'DOWN':<5} {detail}")
        return 1 if down else 0

    def env(self) -> int:
        values = {"PRODREADY_LAB_DIR": str(self.s.lab_dir)}
        for svc in self.services:
            values.update(svc.env())
        # The reference app's own secret, for the inventory that deploys it.
        values["LAB_APP_SECRET_KEY"] = self.app.postgres.secrets.load()["app_secret_key"]
        values["LAB_APP_CONTEXT"] = str(self.s.cache_dir / "build" / "deploy-context")
        for key, value in values.items():
            print(f"export {key}={shlex.quote(value)}")
        return 0

    def app_context(self) -> int:
        """Prepare the reference app's build context for deploy.yml's image step (the
        image role builds it; inventories/local reads LAB_APP_CONTEXT)."""
        print(self.app.context("deploy-context"))
        return 0

    def run_app(self) -> int:
        image = self.app.run()
        print(f"\nreference app {image}")
        for path, url in self.app.endpoints().items():
            print(f"  {path:<9} {url}")
        return 0

    def clean(self) -> int:
        rc = self.down()
        if rc == 0 and self.s.lab_dir.exists():
            say(f"deleting {self.s.lab_dir}")
            shutil.rmtree(self.s.lab_dir)
        return rc


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] in ("help", "-h", "--help"):
        print(USAGE, file=sys.stdout if argv[:1] in (["help"], ["-h"], ["--help"]) else sys.stderr)
        return 0 if argv[:1] in (["help"], ["-h"], ["--help"]) else 2
    command = argv[0]
    actions = {"up": Lab.up, "down": Lab.down, "status": Lab.status, "env": Lab.env,
               "app": Lab.run_app, "app-context": Lab.app_context, "clean": Lab.clean}
    if command not in actions:
        eprint(f"lab: unknown command {command!r}\n")
        eprint(USAGE)
        return 2
    try:
        if command in ("up", "down", "app", "clean") and os.geteuid() != 0:
            raise LabError("the lab starts dockerd and PostgreSQL as their own users: "
                           "run it as root (for example: sudo tests/lab/lab up)")
        return actions[command](Lab(Settings.from_env()))
    except LabError as exc:
        eprint(f"lab {command}: {exc}")
        return 1
    except KeyboardInterrupt:
        eprint(f"lab {command}: interrupted")
        return 130
