# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""PostgreSQL 15 in a cluster directory of the lab's own: scram auth, TLS from the lab CA."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import quote

from .common import (
    LabError,
    Secrets,
    Settings,
    chown_to,
    need,
    require_port,
    run,
    say,
    service_user,
)
from .network import gateway, pod_network
from .pki import Pki

PG_BIN = Path(os.environ.get("PRODREADY_LAB_PG_BIN", "/usr/lib/postgresql/15/bin"))
APP_DB = "app"
APP_ROLE = "app"

HBA = """\
# Written by the prodready lab; rewritten on every `lab up`.
local   all all                scram-sha-256
hostssl all all 127.0.0.1/32   scram-sha-256
hostssl all all {pods}   scram-sha-256
# Plain TCP stays allowed so that checks can detect a connection without TLS.
host    all all 127.0.0.1/32   scram-sha-256
"""


class Postgres:
    name = "postgresql"

    def __init__(self, settings: Settings, secrets: Secrets, pki: Pki) -> None:
        self.s = settings
        self.secrets = secrets
        self.pki = pki
        self.dir = settings.lab_dir / "postgresql"
        self.data = self.dir / "data"
        self.sock = self.dir / "run"
        self.user = service_user("postgres")

    def _bin(self, name: str) -> str:
        path = PG_BIN / name
        if not os.access(path, os.X_OK):
            raise LabError(f"{path} not found: install the Debian package postgresql-15 "
                           f"(or set PRODREADY_LAB_PG_BIN)")
        return str(path)

    def _owned_dir(self, path: Path, mode: int = 0o700) -> None:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(mode)
        if self.user:
            chown_to(path, self.user)

    def _running(self) -> bool:
        if not (self.data / "postmaster.pid").exists():
            return False
        proc = run([self._bin("pg_ctl"), "status", "-D", str(self.data)], check=False,
                   user=self.user)
        return proc.returncode == 0

    def check(self) -> None:
        if self.user:
            need("runuser", "util-linux")
        for binary in ("initdb", "pg_ctl", "psql", "pg_isready"):
            self._bin(binary)

    def up(self) -> None:
        values = self.secrets.load()
        if self._running():
            say(f"PostgreSQL already running on 127.0.0.1:{self.s.pg_port}")
        else:
            require_port(self.s.pg_port, "PostgreSQL", "PRODREADY_LAB_PG_PORT")
            self._owned_dir(self.dir, 0o755)
            self._owned_dir(self.sock, 0o755)
            if not (self.data / "PG_VERSION").exists():
                self._initdb(values["pg_superuser"])
            self._configure()
            say(f"starting PostgreSQL on 127.0.0.1:{self.s.pg_port}")
            run([self._bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.data),
                 "-l", str(self.dir / "postgresql.log")], user=self.user)
        self._ensure_app(values)

    def _initdb(self, password: str) -> None:
        say("initialising the PostgreSQL cluster")
        self._owned_dir(self.data)
        pwfile = self.dir / ".pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        if self.user:
            chown_to(pwfile, self.user)
        try:
            run([self._bin("initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                 "--locale=C.UTF-8"], user=self.user)
        finally:
            pwfile.unlink(missing_ok=True)

    def _configure(self) -> None:
        # The server reads its key only when it owns it with mode 0600.
        for kind in ("crt", "key"):
            dest = self.data / f"server.{kind}"
            shutil.copyfile(self.pki.path("server", kind), dest)
            dest.chmod(0o600)
            if self.user:
                chown_to(dest, self.user)
        conf = self.data / "lab.conf"
        conf.write_text(
            "# Written by the prodready lab; rewritten on every `lab up`.\n"
            f"listen_addresses = '127.0.0.1,{gateway()}'\nport = {self.s.pg_port}\n"
            f"unix_socket_directories = '{self.sock}'\n"
            "password_encryption = 'scram-sha-256'\n"
            "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
            "shared_preload_libraries = 'pg_stat_statements'\n"
            "max_connections = 100\nfsync = off\nlog_min_messages = warning\n"
        )
        (self.data / "pg_hba.conf").write_text(HBA.format(pods=pod_network()))
        main = self.data / "postgresql.conf"
        include = "include_if_exists = 'lab.conf'\n"
        if include not in main.read_text():
            with main.open("a") as fh:
                fh.write(include)

    def _ensure_app(self, values: dict[str, str]) -> None:
        sql = f"""
\\set ON_ERROR_STOP on
DO $$BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
    CREATE ROLE {APP_ROLE} LOGIN;
  END IF;
END$$;
ALTER ROLE {APP_ROLE} PASSWORD '{values["pg_app"]}';
SELECT 'CREATE DATABASE {APP_DB} OWNER {APP_ROLE}'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{APP_DB}')\\gexec
\\c {APP_DB}
CREATE EXTENSION IF NOT EXISTS pg_stat_statements;
"""
        self.psql(sql, values)

    def psql(self, sql: str, values: dict[str, str] | None = None, db: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket; the password goes by environment."""
        values = values or self.secrets.load()
        proc = run([self._bin("psql"), "-X", "-q", "-t", "-A", "-h", str(self.sock),
                    "-p", str(self.s.pg_port), "-U", "postgres", "-d", db],
                   input=sql, env={"PGPASSWORD": values["pg_superuser"]})
        return proc.stdout

    def down(self) -> None:
        if self._running():
            say("stopping PostgreSQL")
            run([self._bin("pg_ctl"), "stop", "-w", "-t", "60", "-m", "fast",
                 "-D", str(self.data)], user=self.user)

    def status(self) -> tuple[bool, str]:
        proc = run([self._bin("pg_isready"), "-h", "127.0.0.1", "-p", str(self.s.pg_port)],
                   check=False)
        if proc.returncode != 0:
            return False, f"not accepting connections on 127.0.0.1:{self.s.pg_port}"
        return True, f"127.0.0.1:{self.s.pg_port} (TLS, scram), database {APP_DB}"

    def env(self) -> dict[str, str]:
        v = self.secrets.load()
        tls = f"sslmode=verify-full&sslrootcert={quote(str(self.pki.path('ca')))}"
        base = f"127.0.0.1:{self.s.pg_port}"
        return {
            "DATABASE_URL": f"postgresql://{APP_ROLE}:{v['pg_app']}@{base}/{APP_DB}?{tls}",
            "LAB_PG_ADMIN_URL": f"postgresql://postgres:{v['pg_superuser']}@{base}/postgres?{tls}",
            # What pods on the real node use: the same database through the pod gateway.
            "LAB_POD_DATABASE_URL":
                f"postgresql://{APP_ROLE}:{v['pg_app']}@{gateway()}:{self.s.pg_port}/{APP_DB}",
            "LAB_PG_HOST": "127.0.0.1",
            "LAB_PG_PORT": str(self.s.pg_port),
            "LAB_PG_SOCKET_DIR": str(self.sock),
            "LAB_PG_APP_DB": APP_DB,
            "LAB_PG_APP_USER": APP_ROLE,
            "LAB_PG_APP_PASSWORD": v["pg_app"],
            "LAB_PG_SUPERUSER": "postgres",
            "LAB_PG_SUPERUSER_PASSWORD": v["pg_superuser"],
        }
