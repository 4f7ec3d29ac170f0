# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reference application (tests/app) as an image in the lab registry and a container.

The build is hermetic: wheels are built on the host into a cached wheelhouse, copied into
the build context, and installed in the image with --no-index.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from .common import REPO, LabError, Settings, run, say, wait_for
from .docker import BASE_IMAGE, Docker
from .postgres import Postgres
from .redis import Redis
from .registry import Registry

APP_DIR = REPO / "tests" / "app"
CONTAINER = "prodready-refapp"
IMAGE_NAME = "refapp"
CA_IN_CONTAINER = "/etc/prodready/ca.crt"


def _pip() -> list[str]:
    venv_pip = REPO / ".venv" / "bin" / "pip"
    if os.environ.get("PRODREADY_PIP"):
        return os.environ["PRODREADY_PIP"].split()
    if venv_pip.exists():
        return [str(venv_pip)]
    return [sys.executable, "-m", "pip"]


def app_version() -> str:
    init = APP_DIR / "refapp" / "__init__.py"
    match = re.search(r'^__version__\s*=\s*"([^"]+)"', init.read_text(), re.M)
    if not match:
        raise LabError(f"no __version__ = \"...\" line in {init}")
    return match.group(1)


def git_sha() -> str:
    proc = run(["git", "-C", str(REPO), "rev-parse", "HEAD"], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else "unknown"


class App:
    name = "refapp"

    def __init__(self, settings: Settings, docker: Docker, registry: Registry,
                 postgres: Postgres, redis: Redis) -> None:
        self.s = settings
        self.engine = docker
        self.registry = registry
        self.postgres = postgres
        self.redis = redis
        self.repo = f"{registry.addr}/{IMAGE_NAME}"

    # -- build ---------------------------------------------------------------------------
    def wheelhouse(self) -> Path:
        requirements = APP_DIR / "requirements.txt"
        key = hashlib.sha256(requirements.read_bytes()).hexdigest()[:12]
        house = self.s.cache_dir / "wheelhouse" / f"refapp-{key}"
        if (house / ".complete").exists():
            return house
        say(f"building the reference app's wheels into {house} (once per requirements.txt)")
        partial = house.with_suffix(".partial")
        shutil.rmtree(partial, ignore_errors=True)
        run([*_pip(), "wheel", "--quiet", "--wheel-dir", str(partial), "-r", str(requirements)],
            timeout=1800)
        (partial / ".complete").touch()
        shutil.rmtree(house, ignore_errors=True)
        partial.rename(house)
        return house

    def context(self, name: str = IMAGE_NAME) -> Path:
        """The hermetic build context: tests/app plus the wheelhouse, under the cache."""
        house = self.wheelhouse()
        context = self.s.cache_dir / "build" / name
        shutil.rmtree(context, ignore_errors=True)
        shutil.copytree(APP_DIR, context,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
        shutil.copytree(house, context / "wheelhouse",
                        ignore=shutil.ignore_patterns(".complete"))
        return context

    def build(self) -> str:
        """Build and push; returns the image reference pinned by registry digest."""
        version, sha = app_version(), git_sha()
        context = self.context()
        tag = f"{self.repo}:{version}"
        say(f"building {tag}")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(
            int(run(["git", "-C", str(REPO), "log", "-1", "--format=%ct"], check=False)
                .stdout.strip() or 0)))
        self.engine.docker(
            "build", "--quiet", "--tag", tag, "--tag", f"{self.repo}:{sha[:12]}",
            "--build-arg", f"BASE_IMAGE={BASE_IMAGE}",
            "--build-arg", f"VERSION={version}", "--build-arg", f"REVISION={sha}",
            "--build-arg", f"CREATED={created}",
            "--build-arg", "SOURCE=prodready.deploy/tests/app",
            "--label", "prodready.lab=1", str(context))
        say(f"pushing {tag}")
        self.engine.docker("push", "--quiet", tag)
        self.engine.docker("push", "--quiet", f"{self.repo}:{sha[:12]}")
        digests = json.loads(self.engine.docker(
            "image", "inspect", "--format", "{{json .RepoDigests}}", tag).stdout)
        pinned = next((d for d in digests if d.startswith(self.repo + "@")), None)
        if not pinned:
            raise LabError(f"pushed {tag} but the engine reports no digest for {self.repo}")
        (self.s.lab_dir / "refapp.image").write_text(pinned + "\n")
        return pinned

    # -- run -----------------------------------------------------------------------------
    def _env_file(self, image: str) -> Path:
        env = self.postgres.env()
        url = env["DATABASE_URL"].split("?", 1)[0]
        values = {
            "DATABASE_URL": f"{url}?sslmode=verify-full&sslrootcert={CA_IN_CONTAINER}",
            **self.redis.env(),
            "SECRET_KEY": self.postgres.secrets.load()["app_secret_key"],
            "APP_VERSION": app_version(),
            "GIT_SHA": git_sha(),
            "IMAGE_DIGEST": image.rsplit("@", 1)[-1],
            "PORT": str(self.s.app_port),
        }
        path = self.s.lab_dir / "refapp.env"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.writelines(f"{k}={v}\n" for k, v in values.items())
        return path

    def run(self, image: str | None = None) -> str:
        image = image or self.build()
        env_file = self._env_file(image)
        # The lab's services listen on loopback only, so the container shares the host's
        # network namespace instead of reaching them through the bridge.
        common = ["--network", "host", "--env-file", str(env_file),
                  "-v", f"{self.postgres.pki.path('ca')}:{CA_IN_CONTAINER}:ro"]
        say("applying the reference app's migrations (alembic upgrade head)")
        self.engine.docker("run", "--rm", "--label", "prodready.lab=1", *common, image,
                           "alembic", "upgrade", "head")
        current = self.engine.docker("inspect", "--format", "{{.Config.Image}} {{.State.Running}}",
                                     CONTAINER, check=False)
        if current.returncode == 0 and current.stdout.split() == [image, "true"]:
            say(f"{CONTAINER} already runs {image}")
        else:
            self.engine.docker("rm", "-f", CONTAINER, check=False)
            say(f"starting {CONTAINER} on 127.0.0.1:{self.s.app_port}")
            self.engine.docker("run", "-d", "--name", CONTAINER, "--label", "prodready.lab=1",
                               "--read-only", "--tmpfs", "/tmp", *common, image)
        wait_for(lambda: self.health() == 200, f"{CONTAINER} /health", timeout=60)
        return image

    def health(self) -> int:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.s.app_port}/health",
                                        timeout=2) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def stop(self) -> None:
        self.engine.docker("rm", "-f", CONTAINER, check=False)

    def endpoints(self) -> dict[str, str]:
        base = f"http://127.0.0.1:{self.s.app_port}"
        return {path: base + path for path in ("/health", "/metrics", "/version")}
