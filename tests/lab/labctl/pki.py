# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab CA and its certificates, made with the openssl CLI.

- server: localhost, 127.0.0.1 and ::1, valid a year (PostgreSQL and the registry use it);
- expiring: same names, valid 10 days, for "expires in under 30 days" checks;
- wronghost: valid a year for wrong-host.invalid only, for hostname mismatch checks.
"""

from __future__ import annotations

from pathlib import Path

from .common import Settings, need, run, say
from .network import gateway

DAY = 86400


def leaves() -> dict[str, tuple[str, int, int]]:
    """name -> (subject alternative names, validity in days, renew when fewer seconds remain).

    Computed when used, not at import: the pod gateway comes from a setting that may be
    wrong, and that must end as a clear LabError, not a traceback.
    """
    return {
        # The pod gateway too: pods on the real node reach PostgreSQL and Redis there.
        "server": (f"DNS:localhost,IP:127.0.0.1,IP:::1,IP:{gateway()}", 365, 30 * DAY),
        "expiring": ("DNS:localhost,IP:127.0.0.1,IP:::1", 10, 5 * DAY),
        "wronghost": ("DNS:wrong-host.invalid", 365, 30 * DAY),
    }


class Pki:
    name = "pki"

    def __init__(self, settings: Settings) -> None:
        self.dir = settings.pki_dir

    def check(self) -> None:
        need("openssl", "openssl")

    def path(self, leaf: str, kind: str = "crt") -> Path:
        return self.dir / f"{leaf}.{kind}"

    @property
    def openssl(self) -> str:
        return need("openssl", "openssl")

    def _valid_for(self, cert: Path, seconds: int) -> bool:
        if not cert.exists():
            return False
        proc = run([self.openssl, "x509", "-checkend", str(seconds), "-noout", "-in", str(cert)],
                   check=False)
        return proc.returncode == 0

    def up(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o755)
        ca_key, ca_crt = self.path("ca", "key"), self.path("ca")
        renew_all = not self._valid_for(ca_crt, 60 * DAY)
        if renew_all:
            say("creating the lab CA")
            run([self.openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                 "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(ca_key), "-out", str(ca_crt),
                 "-days", "3650", "-subj", "/CN=prodready lab CA",
                 "-addext", "basicConstraints=critical,CA:TRUE",
                 "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
            ca_key.chmod(0o600)
        for leaf, (san, days, renew_before) in leaves().items():
            if (renew_all or not self._valid_for(self.path(leaf), renew_before)
                    or not self._has_san(leaf, san)):
                say(f"issuing the lab certificate {leaf} ({san}, {days} days)")
                self._issue(leaf, san, days)

    def ensure(self, leaf: str, subject: str, san: str | None = None, days: int = 365) -> None:
        """Issue a certificate signed by the lab CA unless a valid one exists.

        With `san` it is a server (and client) certificate for those names; without, a
        client certificate whose subject carries the identity (CN user, O groups).
        """
        if not self._valid_for(self.path(leaf), 30 * DAY):
            say(f"issuing the lab certificate {leaf} ({subject})")
            self._issue(leaf, san, days, subject)

    def _has_san(self, leaf: str, san: str) -> bool:
        proc = run([self.openssl, "x509", "-noout", "-ext", "subjectAltName", "-in",
                    str(self.path(leaf))], check=False)
        have = {n.strip().replace("IP Address:", "IP:").replace("0:0:0:0:0:0:0:1", "::1")
                for n in proc.stdout.splitlines()[-1].split(",")} if proc.stdout else set()
        return have == set(san.split(","))

    def _issue(self, leaf: str, san: str | None, days: int, subject: str | None = None) -> None:
        key, csr, crt = self.path(leaf, "key"), self.path(leaf, "csr"), self.path(leaf)
        if subject is None and san:
            subject = "/CN=" + san.split(",")[0].split(":", 1)[1]
        run([self.openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", str(key), "-out", str(csr), "-subj", str(subject)])
        ext = self.dir / f"{leaf}.ext"
        ext.write_text(
            (f"subjectAltName={san}\n" if san else "")
            + "basicConstraints=CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            + ("extendedKeyUsage=serverAuth,clientAuth\n" if san
               else "extendedKeyUsage=clientAuth\n")
        )
        run([self.openssl, "x509", "-req", "-in", str(csr), "-CA", str(self.path("ca")),
             "-CAkey", str(self.path("ca", "key")), "-CAcreateserial", "-out", str(crt),
             "-days", str(days), "-sha256", "-extfile", str(ext)])
        key.chmod(0o600)
        csr.unlink()
        ext.unlink()

    def down(self) -> None:
        """Certificates are data, not processes: kept until `lab clean`."""

    def status(self) -> tuple[bool, str]:
        if not self._valid_for(self.path("ca"), 0):
            return False, f"no valid CA at {self.path('ca')}"
        if not self._valid_for(self.path("server"), 0):
            return False, f"no valid server certificate at {self.path('server')}"
        return True, f"CA {self.path('ca')}"

    def env(self) -> dict[str, str]:
        return {
            "LAB_CA_CERT": str(self.path("ca")),
            "LAB_TLS_CERT": str(self.path("server")),
            "LAB_TLS_KEY": str(self.path("server", "key")),
            "LAB_TLS_EXPIRING_CERT": str(self.path("expiring")),
            "LAB_TLS_EXPIRING_KEY": str(self.path("expiring", "key")),
            "LAB_TLS_WRONGHOST_CERT": str(self.path("wronghost")),
            "LAB_TLS_WRONGHOST_KEY": str(self.path("wronghost", "key")),
        }
