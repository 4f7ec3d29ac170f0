# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Docker engine of the lab's own (Debian's docker.io) and the locally built base image.

The engine listens on a unix socket inside the lab directory, never on TCP, and keeps its
data there too, so it cannot clash with a Docker the machine may already run.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from .common import LabError, Settings, alive, need, run, say, stop_pid, wait_for

BASE_IMAGE = "prodready/base:bookworm"
# python3-venv brings ensurepip, so images install wheels into a venv without network.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")


def debian_mirror() -> str:
    """The Debian mirror apt is configured with (never a hard-coded host)."""
    if os.environ.get("PRODREADY_DEBIAN_MIRROR"):
        return os.environ["PRODREADY_DEBIAN_MIRROR"]
    sources = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    for path in sources:
        text = path.read_text()
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites and "bookworm" in suites.group(1).split():
                return uris.group(1)
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and parts[2] == "bookworm":
                return parts[1]
    raise LabError("no Debian bookworm mirror found in /etc/apt/sources.list(.d); "
                   "set PRODREADY_DEBIAN_MIRROR to the mirror's URL")


class Docker:
    name = "docker"

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.socket = settings.run_dir / "docker.sock"
        self.pidfile = settings.pidfile("dockerd")
        self.data = settings.lab_dir / "docker"
        self.client_config = settings.lab_dir / "docker-client"

    def client_env(self) -> dict[str, str]:
        return {
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.client_config),
            # The classic builder: BuildKit needs the buildx plugin Debian ships apart.
            "DOCKER_BUILDKIT": "0",
        }

    def docker(self, *args: str, check: bool = True, capture: bool = True,
               input: str | None = None,  # noqa: A002
               timeout: float | None = 1800) -> subprocess.CompletedProcess[str]:
        return run([need("docker", "docker.io"), *args], env=self.client_env(), check=check,
                   capture=capture, input=input, timeout=timeout)

    def check(self) -> None:
        need("dockerd", "docker.io")
        need("docker", "docker.io")
        need("debootstrap", "debootstrap")

    def up(self) -> None:
        dockerd = need("dockerd", "docker.io")
        if alive(self.pidfile, "dockerd"):
            say("Docker engine already running")
        else:
            for path in (self.s.run_dir, self.s.log_dir, self.data, self.client_config):
                path.mkdir(parents=True, exist_ok=True)
            say(f"starting the Docker engine on {self.socket}")
            log = (self.s.log_dir / "dockerd.log").open("ab")
            subprocess.Popen(
                [dockerd, "--host", f"unix://{self.socket}", "--data-root", str(self.data),
                 "--exec-root", str(self.s.run_dir / "docker-exec"),
                 "--pidfile", str(self.pidfile), "--storage-driver", "overlay2"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
            )
            try:
                wait_for(lambda: self.docker("version", check=False).returncode == 0,
                         "the Docker engine", timeout=60)
            except LabError as exc:
                tail = (self.s.log_dir / "dockerd.log").read_text(errors="replace")[-1500:]
                raise LabError(f"{exc}; dockerd log ends:\n{tail}") from exc
        self._base_image()

    def _base_image(self) -> None:
        if self.docker("image", "inspect", BASE_IMAGE, check=False).returncode == 0:
            return
        key = hashlib.sha256(",".join(BASE_PACKAGES).encode()).hexdigest()[:12]
        cache = self.s.cache_dir / "base"
        tarball = cache / f"bookworm-minbase-{key}.tar"
        if not tarball.exists():
            self._debootstrap(tarball)
        say(f"importing {tarball.name} as {BASE_IMAGE}")
        self.docker("import", "--change", 'CMD ["/bin/bash"]',
                    "--change", "ENV LANG=C.UTF-8",
                    "--message", "debootstrap minbase bookworm " + " ".join(BASE_PACKAGES),
                    str(tarball), BASE_IMAGE)

    def _debootstrap(self, tarball: Path) -> None:
        debootstrap = need("debootstrap", "debootstrap")
        mirror = debian_mirror()
        rootfs = tarball.with_suffix(".rootfs")
        shutil.rmtree(rootfs, ignore_errors=True)
        rootfs.parent.mkdir(parents=True, exist_ok=True)
        say("building the base image with debootstrap (about a minute, cached afterwards)")
        run([debootstrap, "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
             "bookworm", str(rootfs), mirror], timeout=1800)
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for child in (rootfs / junk).glob("*"):
                if child.is_file():
                    child.unlink()
        partial = tarball.with_suffix(".partial")
        run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."])
        partial.rename(tarball)
        shutil.rmtree(rootfs, ignore_errors=True)

    def down(self) -> None:
        if alive(self.pidfile, "dockerd"):
            ids = self.docker("ps", "-q", "--filter", "label=prodready.lab=1",
                              check=False).stdout.split()
            if ids:
                say(f"removing {len(ids)} lab container(s)")
                self.docker("rm", "-f", *ids, check=False)
        stop_pid(self.pidfile, "dockerd", "the Docker engine", grace=60)

    def status(self) -> tuple[bool, str]:
        if not alive(self.pidfile, "dockerd"):
            return False, "dockerd is not running"
        proc = self.docker("version", "--format", "{{.Server.Version}}", check=False)
        if proc.returncode != 0:
            return False, f"dockerd runs but does not answer on {self.socket}"
        if self.docker("image", "inspect", BASE_IMAGE, check=False).returncode != 0:
            return False, f"engine {proc.stdout.strip()} up, base image {BASE_IMAGE} missing"
        return True, f"engine {proc.stdout.strip()} on {self.socket}, base image {BASE_IMAGE}"

    def env(self) -> dict[str, str]:
        return {k: v for k, v in self.client_env().items() if k != "DOCKER_BUILDKIT"} | {
            "LAB_BASE_IMAGE": BASE_IMAGE,
        }
