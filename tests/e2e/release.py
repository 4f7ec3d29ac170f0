# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run deploy.yml (and the other playbooks) against the lab the way a user does, with one
application and one database of its own per test, and read back what it left: the release
report, the release records, the pods and the rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kube import kubectl
from pgutil import connect, db_url, fingerprint

REPO = Path(__file__).resolve().parents[2]
PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"


@dataclass
class Release:
    """One application of a test: its name, its database and the files of its runs."""

    lab_env: dict[str, str]
    app: str
    db: str
    work: Path
    image: str
    runs: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def app_env(self, **extra: str) -> dict[str, str]:
        """inventories/local's release_app_env plus ``extra`` (e.g. a fault switch)."""
        return {"REDIS_HOST": self.lab_env["LAB_POD_GATEWAY"],
                "REDIS_PORT": self.lab_env["REDIS_PORT"], "REDIS_DB": "0", **extra}

    def vars(self, version: str, **overrides: Any) -> dict[str, Any]:
        env = self.lab_env
        pod_url = env["LAB_POD_DATABASE_URL"].rsplit("/", 1)[0] + f"/{self.db}"
        secret_env = {
            "DATABASE_URL": f"{pod_url}?sslmode=verify-full&sslrootcert=/etc/app/ca.crt",
            "REDIS_PASSWORD": env["REDIS_PASSWORD"], "SECRET_KEY": env["LAB_APP_SECRET_KEY"]}
        values: dict[str, Any] = {
            "release_app": self.app, "release_version": version,
            "release_image": self.image,
            "release_database_url": db_url(env, self.db),
            "release_backup_dir": str(self.work / "backups"),
            "release_artifacts_dir": str(self.work / "artifacts"),
            "release_app_secret_env": secret_env,
            "k8s_rollout_replicas": 1,
            "k8s_rollout_timeout": 120,
            "verify_smoke_suites": [],
            **self.extra, **overrides}
        return values

    def command(self, playbook: str, version: str, *flags: str, **overrides: Any
                ) -> tuple[list[str], dict[str, str], Path]:
        """(argv, environment, run directory) of the next ansible-playbook run."""
        self.runs += 1
        run_dir = self.work / f"run{self.runs}"
        run_dir.mkdir(parents=True)
        extra = run_dir / "vars.json"
        extra.touch(mode=0o600)
        extra.write_text(json.dumps(self.vars(version, **overrides)))
        env = {**os.environ, **self.lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
               "ANSIBLE_CALLBACKS_ENABLED": "prodready.deploy.release_report",
               "PRODREADY_REPORT_DIR": str(run_dir / "report"),
               "ANSIBLE_LOG_PATH": str(run_dir / "ansible.log")}
        argv = [str(PLAYBOOK), "-i", str(REPO / "inventories/local"), str(REPO / playbook),
                "-e", f"@{extra}", *flags]
        return argv, env, run_dir

    def run(self, playbook: str, version: str, *flags: str, timeout: float = 900,
            **overrides: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        """(process, release report) of one ansible-playbook run; the report is {} when the
        run wrote none."""
        argv, env, run_dir = self.command(playbook, version, *flags, **overrides)
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout,
                              check=False)
        report_file = run_dir / "report" / "release-report.json"
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        return proc, report

    def deploy(self, version: str, *flags: str, **overrides: Any
               ) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        return self.run("deploy.yml", version, *flags, **overrides)

    # -- independent reads ------------------------------------------------------------------
    def record(self, release_id: str) -> dict[str, Any] | None:
        proc = kubectl(self.lab_env, "get", "configmap", f"{self.app}-release-{release_id}",
                       "-o", "json", check=False)
        if proc.returncode != 0:
            return None
        return json.loads(json.loads(proc.stdout)["data"]["release.json"])

    def serving(self) -> set[str]:
        """The versions the app's ready pods report on /version."""
        proc = kubectl(self.lab_env, "get", "pods", "-l",
                       f"app.kubernetes.io/instance={self.app}", "-o", "json")
        versions = set()
        for pod in json.loads(proc.stdout)["items"]:
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in pod["status"].get("conditions", []))
            if not ready or pod["metadata"].get("deletionTimestamp"):
                continue
            url = f"http://{pod['status']['podIP']}:8000/version"
            with urllib.request.urlopen(url, timeout=5) as resp:
                versions.add(json.loads(resp.read())["version"])
        return versions

    def rows(self) -> dict[str, tuple[int, str]]:
        """Row counts and checksums of the application's tables (not alembic_version)."""
        conn = connect(db_url(self.lab_env, self.db))
        try:
            return {k: v for k, v in fingerprint(conn).items()
                    if not k.endswith(".alembic_version")}
        finally:
            conn.close()

    def alembic_revision(self) -> str | None:
        conn = connect(db_url(self.lab_env, self.db))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT to_regclass('public.alembic_version') IS NOT NULL")
                if not cur.fetchone()[0]:
                    return None
                cur.execute("SELECT version_num FROM alembic_version")
                row = cur.fetchone()
                return row[0] if row else None
        finally:
            conn.close()

    def cleanup(self) -> None:
        for kind, name in (("deploy", self.app), ("service", self.app), ("pdb", self.app),
                           ("configmap", f"{self.app}-config"),
                           ("secret", f"{self.app}-secret"),
                           ("configmap", f"{self.app}-deploy-lock")):
            kubectl(self.lab_env, "delete", kind, name, "--wait=false", "--ignore-not-found",
                    check=False)
        kubectl(self.lab_env, "delete", "configmap,secret", "-l",
                f"app.kubernetes.io/name={self.app}", "--wait=false", check=False)
