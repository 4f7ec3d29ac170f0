# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the lab benches (pipeline, restore-service) share: the lab's environment, a scratch
database, the pods' database URL, and the removal of a bench app's objects."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NS = "prodready"
sys.path.insert(0, str(REPO / "tests" / "integration"))
from pgutil import connect  # noqa: E402 - the tests' helper, found through sys.path


def lab(*args: str) -> str:
    return subprocess.run([str(REPO / "tests/lab/lab"), *args], capture_output=True,
                          text=True, check=True).stdout


def lab_env() -> dict[str, str]:
    """The variables `lab env` exports."""
    env = {}
    for line in lab("env").splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            key, _sep, value = words[1].partition("=")
            env[key] = value
    return env


def scratch_db(env: dict[str, str], name: str) -> str:
    """An empty database `name` owned by the app's user (dropped first if it exists)."""
    admin = connect(env["LAB_PG_ADMIN_URL"])
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cur.execute(f'CREATE DATABASE "{name}" OWNER "{env["LAB_PG_APP_USER"]}"')
    admin.close()
    return name


def drop_dbs(env: dict[str, str], *names: str) -> None:
    admin = connect(env["LAB_PG_ADMIN_URL"])
    with admin.cursor() as cur:
        for name in names:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def pod_url(env: dict[str, str], db: str, ca: str) -> str:
    """`db`'s URL as the pods reach it, verifying the server against the CA file `ca`."""
    base = env["LAB_POD_DATABASE_URL"].rsplit("/", 1)[0]
    return f"{base}/{db}?sslmode=verify-full&sslrootcert={ca}"


def cleanup(kubectl: list[str], env: dict[str, str], app: str) -> None:
    """Remove what a bench made for `app`: what deploy.yml applies and the releases it
    records, and the peer's Deployment, Secret and CA ConfigMap."""
    for kind, name in (("deploy", app), ("service", app), ("pdb", app), ("secret", f"{app}-env"),
                       ("secret", f"{app}-secret"), ("configmap", f"{app}-ca"),
                       ("configmap", f"{app}-config"), ("configmap", f"{app}-files"),
                       ("configmap", f"{app}-deploy-lock")):
        subprocess.run([*kubectl, "delete", kind, name, "--ignore-not-found", "--wait=false"],
                       capture_output=True, check=False, env=env)
    subprocess.run([*kubectl, "delete", "configmap,secret", "-l", f"app.kubernetes.io/name={app}",
                    "--wait=false"], capture_output=True, check=False, env=env)
