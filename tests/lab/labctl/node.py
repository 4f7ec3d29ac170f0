# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real Kubernetes node: kubelet, Debian's containerd and runc, the CNI bridge plugin.

Pods run for real, pull their images from the lab registry (TLS verified against the lab
CA, the lab's credentials), and get addresses on the lab's pod bridge. The node is named
`localhost`: the API server reaches the kubelet by that name on loopback (a node address
cannot be a loopback IP), so nothing listens beyond 127.0.0.1 and the pod bridge.
"""

from __future__ import annotations

import json
from pathlib import Path

from .common import (
    LabError,
    Secrets,
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
from .docker import Docker
from .kube import Kube
from .network import BRIDGE, gateway, pod_network
from .pki import Pki
from .registry import USER as REGISTRY_USER
from .registry import Registry

NODE = "localhost"
KUBELET_PORT = 51250
KUBELET_HEALTHZ_PORT = 51248
PAUSE_TAG = "3.10.1"
CNI_BIN = Path("/usr/lib/cni")


class Node:
    name = "node"

    def __init__(self, settings: Settings, secrets: Secrets, pki: Pki, docker: Docker,
                 registry: Registry, kube: Kube) -> None:
        self.s = settings
        self.secrets = secrets
        self.pki = pki
        self.engine = docker
        self.registry = registry
        self.kube = kube
        self.dir = settings.lab_dir / "node"
        self.socket = settings.run_dir / "containerd.sock"
        self.pause = f"{registry.addr}/pause:{PAUSE_TAG}"

    def check(self) -> None:
        need("containerd", "containerd")
        need("runc", "runc")
        need("gcc", "gcc (to build the pause image)")
        if not (CNI_BIN / "bridge").exists():
            raise LabError(f"{CNI_BIN}/bridge not found: install the Debian package "
                           f"containernetworking-plugins")

    # -- pause image ---------------------------------------------------------------------
    def _pause_image(self) -> None:
        probe = self.engine.docker("manifest", "inspect", "--insecure", self.pause, check=False)
        if probe.returncode == 0:
            return
        source = self._pause_source()
        build = self.s.cache_dir / "pause" / PAUSE_TAG
        build.mkdir(parents=True, exist_ok=True)
        say(f"building the pause image {self.pause} from {source.name}")
        run(["gcc", "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{PAUSE_TAG}",
             "-o", str(build / "pause"), str(source)])
        run(["strip", str(build / "pause")], check=False)
        (build / "Dockerfile").write_text(
            "FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT [\"/pause\"]\n")
        self.engine.docker("build", "--quiet", "--label", "prodready.lab=1", "-t", self.pause,
                           str(build))
        self.engine.docker("push", "--quiet", self.pause)

    def _pause_source(self) -> Path:
        """pause.c as shipped inside the pinned k8s.io/kubernetes module."""
        version = self.kube.bin.parent.name.split("-etcd")[0]
        mod = Path(run(["go", "env", "GOMODCACHE"], env={
            "GOMODCACHE": str(self.s.cache_dir / "go" / "mod")}).stdout.strip())
        source = mod / f"k8s.io/kubernetes@{version}" / "build/pause/linux/pause.c"
        if not source.exists():
            raise LabError(f"{source} missing: run tests/lab/k8s/build-binaries first")
        return source

    # -- containerd ----------------------------------------------------------------------
    def _containerd_config(self) -> Path:
        password = self.secrets.load()["registry"]
        reg = self.registry.addr
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = f"""\
# Written by the prodready lab; rewritten on every `lab up`. Holds the registry password.
version = 2
root = "{self.dir / 'containerd'}"
state = "{self.s.run_dir / 'containerd-state'}"
[grpc]
  address = "{self.socket}"
[{cri}]
  sandbox_image = "{self.pause}"
  # The kubelet asks for negative OOM scores (-998 for sandboxes), which this machine's
  # root may not set (no CAP_SYS_RESOURCE): clamp them to containerd's own.
  restrict_oom_score_adj = true
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "{CNI_BIN}"
  conf_dir = "{self.dir / 'cni'}"
[{cri}.registry.mirrors."{reg}"]
  endpoint = ["https://{reg}"]
[{cri}.registry.configs."{reg}".tls]
  ca_file = "{self.pki.path('ca')}"
[{cri}.registry.configs."{reg}".auth]
  username = "{REGISTRY_USER}"
  password = "{password}"
"""
        path = self.dir / "containerd.toml"
        path.touch(mode=0o600)
        path.write_text(config)
        return path

    def _cni_config(self) -> None:
        conf = self.dir / "cni"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "10-prodready.conflist").write_text(json.dumps({
            "cniVersion": "1.0.0", "name": "prodready",
            "plugins": [
                {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False,
                 "hairpinMode": True,
                 "ipam": {"type": "host-local", "ranges": [[{
                     "subnet": str(pod_network()), "gateway": gateway()}]],
                     "dataDir": str(self.dir / "cni-ipam")}},
                {"type": "portmap", "capabilities": {"portMappings": True}},
            ],
        }, indent=2))

    # -- kubelet -------------------------------------------------------------------------
    def _kubelet_config(self) -> Path:
        self.pki.ensure("kubelet-client", f"/CN=system:node:{NODE}/O=system:nodes")
        self.pki.ensure("kubelet-serving", f"/CN={NODE}", "DNS:localhost,IP:127.0.0.1")
        self.kube.write_kubeconfig("kubelet", {
            "client-certificate": str(self.pki.path("kubelet-client")),
            "client-key": str(self.pki.path("kubelet-client", "key"))})
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1", "kind": "KubeletConfiguration",
            "address": "127.0.0.1", "port": KUBELET_PORT, "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1", "healthzPort": KUBELET_HEALTHZ_PORT,
            "tlsCertFile": str(self.pki.path("kubelet-serving")),
            "tlsPrivateKeyFile": str(self.pki.path("kubelet-serving", "key")),
            "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True},
                               "x509": {"clientCAFile": str(self.pki.path("ca"))}},
            "authorization": {"mode": "Webhook"},
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            # Kubernetes 1.34 still runs on cgroup v1, which this machine mounts.
            "failCgroupV1": False,
            "failSwapOn": False,
            "staticPodPath": "",
            "resolvConf": "/etc/resolv.conf",
            "maxPods": 50,
            "serializeImagePulls": False,
            # A lab on a shared disk: never evict the lab's pods for disk pressure.
            "evictionHard": {"memory.available": "100Mi", "nodefs.available": "1%",
                             "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
            "imageGCHighThresholdPercent": 100, "imageGCLowThresholdPercent": 99,
            "nodeStatusReportFrequency": "10s", "nodeStatusUpdateFrequency": "10s",
            "registerNode": True,
        }
        path = self.dir / "kubelet.json"
        path.write_text(json.dumps(config, indent=2))
        return path

    # -- lifecycle -----------------------------------------------------------------------
    def up(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._pause_image()
        self._cni_config()
        containerd_conf = self._containerd_config()
        if not alive(self.s.pidfile("containerd"), "containerd"):
            say(f"starting containerd on {self.socket}")
            log = self.s.log_dir / "containerd.log"
            pid = spawn([need("containerd", "containerd"), "--config", str(containerd_conf)],
                        self.s.pidfile("containerd"), log)
            self._wait(pid, "containerd", log, self.socket.exists)
        kubelet_conf = self._kubelet_config()
        if not alive(self.s.pidfile("kubelet"), "kubelet"):
            require_port(KUBELET_PORT, "the kubelet", "nothing else on it")
            say(f"starting the kubelet (node {NODE})")
            log = self.s.log_dir / "kubelet.log"
            pid = spawn([str(self.kube.bin / "kubelet"), "--config", str(kubelet_conf),
                         "--kubeconfig", str(self.kube.kubeconfig("kubelet")),
                         "--hostname-override", NODE, "--root-dir", str(self.dir / "kubelet"),
                         "--node-labels", "type=real,prodready.lab/node=real", "-v", "1"],
                        self.s.pidfile("kubelet"), log,
                        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
            self._wait(pid, "the kubelet", log, self._node_ready, timeout=120)
        self.kube.kubectl("uncordon", NODE)

    def _wait(self, pid: int, what: str, log: Path, ready, timeout: float = 60) -> None:
        def started() -> bool:
            if not running(pid):
                raise LabError(f"{what} exited at start")
            return ready()
        try:
            wait_for(started, what, timeout=timeout, fail_fast=LabError)
        except LabError as exc:
            raise LabError(f"{exc}; {log} ends:\n{log_tail(log)}") from exc

    def _node_ready(self) -> bool:
        proc = self.kube.kubectl("get", "node", NODE, "-o", "json", check=False)
        if proc.returncode != 0:
            return False
        conditions = json.loads(proc.stdout)["status"].get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def down(self) -> None:
        if alive(self.s.pidfile("kubelet"), "kubelet"):
            self._drain()
        stop_pid(self.s.pidfile("kubelet"), "kubelet", "the kubelet")
        stop_pid(self.s.pidfile("containerd"), "containerd", "containerd")
        self._kill_shims()

    def _drain(self) -> None:
        """Cordon the node and delete its pods, so the kubelet stops their containers and
        releases their network (CNI DEL) while it still runs; controllers cannot put them
        back until `lab up` uncordons the node."""
        say(f"draining node {NODE}")
        self.kube.kubectl("cordon", NODE, check=False)
        self.kube.kubectl("delete", "pods", "--all-namespaces", "--field-selector",
                          f"spec.nodeName={NODE}", "--grace-period=5", "--timeout=60s",
                          check=False)

    def _kill_shims(self) -> None:
        """containerd-shim processes of this lab's containerd, found by its socket path."""
        for proc_dir in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            # Only shims left behind by a crash: a drained node has none.
            if "containerd-shim" in cmdline and str(self.socket) in cmdline:
                pidfile = self.s.run_dir / f"shim-{proc_dir.name}.pid"
                pidfile.write_text(proc_dir.name)
                stop_pid(pidfile, "containerd-shim", f"containerd-shim {proc_dir.name}", grace=10)

    def status(self) -> tuple[bool, str]:
        for name in ("containerd", "kubelet"):
            if not alive(self.s.pidfile(name), name):
                return False, f"{name} is not running"
        try:
            if not self._node_ready():
                return False, f"node {NODE} is not Ready"
        except (OSError, LabError) as exc:
            return False, f"node {NODE}: {exc}"
        return True, f"node {NODE} Ready (kubelet, containerd, CNI bridge {BRIDGE})"

    def env(self) -> dict[str, str]:
        return {"LAB_NODE": NODE, "LAB_CONTAINERD_SOCKET": str(self.socket)}
