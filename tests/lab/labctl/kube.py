# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Kubernetes control plane of the lab's own, built from source by tests/lab/k8s.

etcd, kube-apiserver (secure serving on loopback, RBAC, service-account tokens),
kube-controller-manager, kube-scheduler, and kwok, which simulates nodes (and their pods)
for scale and deterministic failure tests. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from .common import (
    REPO,
    LabError,
    Settings,
    alive,
    log_tail,
    need,
    require_port,
    run,
    running,
    say,
    spawn,
    stop_pid,
    wait_for,
)
from .pki import Pki

K8S_DIR = REPO / "tests" / "lab" / "k8s"
NAMESPACE = "prodready"
DEPLOYER = "prodready-deployer"
# Never routed: ClusterIPs are allocated from it, nothing listens there.
SERVICE_CIDR = "10.96.0.0/16"
KWOK_NODES = 4
APISERVER_SANS = (
    "DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,"
    "DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:10.96.0.1"
)
# name -> certificate subject: the user (CN) and groups (O) the API server sees.
CLIENTS = {
    "kube-admin": "/CN=lab-admin/O=system:masters",
    "kube-controller-manager": "/CN=system:kube-controller-manager",
    "kube-scheduler": "/CN=system:kube-scheduler",
    "kube-kwok": "/CN=kwok/O=system:masters",
    "kube-apiserver-kubelet-client": "/CN=kube-apiserver-kubelet-client/O=system:masters",
}
CONTROLLER_PORT = 51257
SCHEDULER_PORT = 51259
KWOK_PORT = 51247


def build_binaries(mode: str | None = None) -> Path:
    """The directory of the Kubernetes binaries, building them first when missing.

    mode "--check" fails instead of building; "--print-dir" only names the directory.
    """
    script = K8S_DIR / "build-binaries"
    proc = subprocess.run([str(script), *([mode] if mode else [])],
                          stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"{script} failed (exit {proc.returncode}); its output is above")
    return Path(proc.stdout.strip().splitlines()[-1])


class Kube:
    name = "kubernetes"

    def __init__(self, settings: Settings, pki: Pki) -> None:
        self.s = settings
        self.pki = pki
        self.dir = settings.lab_dir / "kube"
        self.api = f"https://127.0.0.1:{settings.apiserver_port}"
        self.etcd = f"http://127.0.0.1:{settings.etcd_port}"
        self._bin: Path | None = None

    # -- helpers -------------------------------------------------------------------------
    @property
    def bin(self) -> Path:
        """Where the binaries are; only `up` builds them (status, env and down never do)."""
        if self._bin is None:
            self._bin = build_binaries("--print-dir")
        return self._bin

    def kubeconfig(self, who: str) -> Path:
        return self.dir / f"{who}.kubeconfig"

    def kubectl(self, *args: str, who: str = "admin", input: str | None = None,  # noqa: A002
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return run([str(self.bin / "kubectl"), "--kubeconfig", str(self.kubeconfig(who)),
                    *args], input=input, check=check, timeout=120)

    def write_kubeconfig(self, who: str, user: dict[str, str]) -> None:
        config = {
            "apiVersion": "v1", "kind": "Config", "current-context": "lab",
            "clusters": [{"name": "lab", "cluster": {
                "server": self.api, "certificate-authority": str(self.pki.path("ca"))}}],
            "users": [{"name": who, "user": user}],
            "contexts": [{"name": "lab", "context": {
                "cluster": "lab", "user": who,
                **({"namespace": NAMESPACE} if who == "deployer" else {})}}],
        }
        path = self.kubeconfig(who)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(config, fh, indent=2)

    def _ssl_admin(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.path("ca")))
        ctx.load_cert_chain(str(self.pki.path("kube-admin")),
                            str(self.pki.path("kube-admin", "key")))
        return ctx

    def _get(self, url: str, ctx: ssl.SSLContext | None = None) -> int:
        try:
            with urllib.request.urlopen(url, timeout=2, context=ctx) as resp:
                return resp.status
        except urllib.error.HTTPError as exc:
            return exc.code

    # -- components ----------------------------------------------------------------------
    def _components(self) -> list[tuple[str, list[str], int, callable]]:
        b, d, p = self.bin, self.dir, self.pki.path
        unverified = ssl._create_unverified_context()  # noqa: S323  (self-signed health port)
        return [
            ("etcd", [
                str(b / "etcd"), "--name", "lab", "--data-dir", str(d / "etcd"),
                "--listen-client-urls", self.etcd, "--advertise-client-urls", self.etcd,
                "--listen-peer-urls", f"http://127.0.0.1:{self.s.etcd_port + 1}",
                "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.s.etcd_port + 1}",
                "--initial-cluster", f"lab=http://127.0.0.1:{self.s.etcd_port + 1}",
                "--listen-metrics-urls", f"http://127.0.0.1:{self.s.etcd_port + 2}",
                "--unsafe-no-fsync", "--log-level", "warn",
            ], self.s.etcd_port, lambda: self._get(self.etcd + "/health") == 200),
            ("kube-apiserver", [
                str(b / "kube-apiserver"), "--etcd-servers", self.etcd,
                "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1",
                "--secure-port", str(self.s.apiserver_port),
                "--tls-cert-file", str(p("kube-apiserver")),
                "--tls-private-key-file", str(p("kube-apiserver", "key")),
                "--client-ca-file", str(p("ca")),
                "--kubelet-client-certificate", str(p("kube-apiserver-kubelet-client")),
                "--kubelet-client-key", str(p("kube-apiserver-kubelet-client", "key")),
                "--kubelet-certificate-authority", str(p("ca")),
                "--kubelet-preferred-address-types", "Hostname,InternalIP",
                "--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file", str(d / "sa.pub"),
                "--service-account-signing-key-file", str(d / "sa.key"),
                "--service-cluster-ip-range", SERVICE_CIDR,
                "--authorization-mode", "Node,RBAC",
                "--enable-admission-plugins", "NodeRestriction",
                "--allow-privileged=true", "--profiling=false", "-v", "1",
            ], self.s.apiserver_port,
                lambda: self._get(self.api + "/readyz", self._ssl_admin()) == 200),
            ("kube-controller-manager", [
                str(b / "kube-controller-manager"),
                "--kubeconfig", str(self.kubeconfig("controller-manager")),
                "--authentication-kubeconfig", str(self.kubeconfig("controller-manager")),
                "--authorization-kubeconfig", str(self.kubeconfig("controller-manager")),
                "--bind-address", "127.0.0.1", "--secure-port", str(CONTROLLER_PORT),
                "--cert-dir", str(d / "controller-manager"),
                "--service-account-private-key-file", str(d / "sa.key"),
                "--root-ca-file", str(p("ca")), "--use-service-account-credentials",
                "--cluster-signing-cert-file", str(p("ca")),
                "--cluster-signing-key-file", str(p("ca", "key")),
                "--leader-elect=false", "--profiling=false", "-v", "1",
            ], CONTROLLER_PORT,
                lambda: self._get(f"https://127.0.0.1:{CONTROLLER_PORT}/healthz",
                                  unverified) == 200),
            ("kube-scheduler", [
                str(b / "kube-scheduler"), "--kubeconfig", str(self.kubeconfig("scheduler")),
                "--authentication-kubeconfig", str(self.kubeconfig("scheduler")),
                "--authorization-kubeconfig", str(self.kubeconfig("scheduler")),
                "--bind-address", "127.0.0.1", "--secure-port", str(SCHEDULER_PORT),
                "--cert-dir", str(d / "scheduler"),
                "--leader-elect=false", "--profiling=false", "-v", "1",
            ], SCHEDULER_PORT,
                lambda: self._get(f"https://127.0.0.1:{SCHEDULER_PORT}/healthz",
                                  unverified) == 200),
            ("kwok", [
                str(b / "kwok"), "--kubeconfig", str(self.kubeconfig("kwok")),
                "--config", str(self.dir / "kwok.yaml"),
                "--server-address", f"127.0.0.1:{KWOK_PORT}",
            ], KWOK_PORT, lambda: self._get(f"http://127.0.0.1:{KWOK_PORT}/healthz") == 200),
        ]

    # -- lifecycle -----------------------------------------------------------------------
    def check(self) -> None:
        try:
            build_binaries("--check")
        except LabError:
            need("go", "golang (Go 1.24 or newer), to build Kubernetes")

    def up(self) -> None:
        self._bin = build_binaries()
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pki()
        self._kwok_config()
        for name, argv, port, ready in self._components():
            pidfile = self.s.pidfile(name)
            if alive(pidfile, name):
                continue
            require_port(port, name, "PRODREADY_LAB_APISERVER_PORT or PRODREADY_LAB_ETCD_PORT"
                         if name in ("kube-apiserver", "etcd") else "nothing else on it")
            say(f"starting {name}")
            log = self.s.log_dir / f"{name}.log"
            pid = spawn(argv, pidfile, log)

            def started(name: str = name, pid: int = pid, ready=ready) -> bool:
                if not running(pid):
                    raise LabError(f"{name} exited at start")
                return ready()

            try:
                wait_for(started, name, timeout=90, fail_fast=LabError)
            except LabError as exc:
                raise LabError(f"{exc}; {log} ends:\n{log_tail(log)}") from exc
            if name == "kube-apiserver":
                self._bootstrap()
        self._kwok_nodes()
        self._deployer()

    def _pki(self) -> None:
        self.pki.ensure("kube-apiserver", "/CN=kube-apiserver", APISERVER_SANS)
        for name, subject in CLIENTS.items():
            self.pki.ensure(name, subject)
        sa_key, sa_pub = self.dir / "sa.key", self.dir / "sa.pub"
        if not sa_key.exists():
            openssl = need("openssl", "openssl")
            run([openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                 "-out", str(sa_key)])
            sa_key.chmod(0o600)
            run([openssl, "pkey", "-in", str(sa_key), "-pubout", "-out", str(sa_pub)])
        for who, cert in (("admin", "kube-admin"),
                          ("controller-manager", "kube-controller-manager"),
                          ("scheduler", "kube-scheduler"), ("kwok", "kube-kwok")):
            self.write_kubeconfig(who, {
                "client-certificate": str(self.pki.path(cert)),
                "client-key": str(self.pki.path(cert, "key"))})

    def _kwok_config(self) -> None:
        parts = sorted((K8S_DIR / "kwok").glob("*.yaml"))
        (self.dir / "kwok.yaml").write_text("\n".join(p.read_text() for p in parts))

    def _bootstrap(self) -> None:
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f",
                     str(K8S_DIR / "cluster.yaml"))

    def _kwok_nodes(self) -> None:
        nodes = {"apiVersion": "v1", "kind": "List", "items": [{
            "apiVersion": "v1", "kind": "Node",
            "metadata": {
                "name": f"kwok-node-{i}",
                "annotations": {"kwok.x-k8s.io/node": "fake"},
                "labels": {"type": "kwok", "kubernetes.io/hostname": f"kwok-node-{i}",
                           "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
            },
            # Only pods that tolerate this run on simulated nodes.
            "spec": {"taints": [{"key": "kwok.x-k8s.io/node", "value": "fake",
                                 "effect": "NoSchedule"}]},
        } for i in range(KWOK_NODES)]}
        self.kubectl("apply", "--server-side", "-f", "-", input=json.dumps(nodes))
        wait_for(lambda: self._ready_nodes("type=kwok") == KWOK_NODES,
                 f"{KWOK_NODES} kwok nodes Ready", timeout=60)

    def _ready_nodes(self, selector: str) -> int:
        out = self.kubectl("get", "nodes", "-l", selector, "-o", "json").stdout
        return sum(
            any(c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", []))
            for n in json.loads(out)["items"])

    def _deployer(self) -> None:
        def token() -> str:
            out = self.kubectl("get", "secret", f"{DEPLOYER}-token", "-n", NAMESPACE,
                               "-o", "jsonpath={.data.token}", check=False).stdout
            return base64.b64decode(out).decode() if out else ""
        wait_for(token, "the deployer's service-account token", timeout=30)
        self.write_kubeconfig("deployer", {"token": token()})

    def down(self) -> None:
        for name, *_rest in reversed(self._components()):
            stop_pid(self.s.pidfile(name), name, name)

    def status(self) -> tuple[bool, str]:
        missing = [name for name, *_rest in self._components()
                   if not alive(self.s.pidfile(name), name)]
        if missing:
            return False, f"not running: {', '.join(missing)}"
        try:
            if self._get(self.api + "/readyz", self._ssl_admin()) != 200:
                return False, f"{self.api}/readyz is not ok"
            kwok = self._ready_nodes("type=kwok")
        except (OSError, LabError) as exc:
            return False, f"{self.api} unreachable ({exc})"
        if kwok != KWOK_NODES:
            return False, f"{kwok} of {KWOK_NODES} kwok nodes Ready"
        return True, f"{self.api} (RBAC), {kwok} kwok nodes Ready"

    def env(self) -> dict[str, str]:
        return {
            "LAB_K8S_API": self.api,
            "LAB_K8S_NAMESPACE": NAMESPACE,
            "LAB_KUBECONFIG_ADMIN": str(self.kubeconfig("admin")),
            "LAB_KUBECONFIG_DEPLOYER": str(self.kubeconfig("deployer")),
            # kubernetes.core reads it: the collection's tests run as the deployer.
            "K8S_AUTH_KUBECONFIG": str(self.kubeconfig("deployer")),
            "LAB_K8S_BIN": str(self.bin),
        }
