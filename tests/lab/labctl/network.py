# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab's pod network: one Linux bridge that the real node's CNI plugs pods into.

The bridge exists before PostgreSQL and Redis start, so they can listen on its gateway
address too: pods reach the lab's services there, and nothing leaves the machine.
"""

from __future__ import annotations

import ipaddress
import os

from .common import LabError, Settings, need, run, say

BRIDGE = "prodready0"


def pod_network() -> ipaddress.IPv4Network:
    raw = os.environ.get("PRODREADY_LAB_POD_CIDR", "10.244.0.0/24")
    try:
        net = ipaddress.IPv4Network(raw)
    except ValueError as exc:
        raise LabError(f"PRODREADY_LAB_POD_CIDR={raw!r} is not an IPv4 network "
                       f"(for example 10.244.0.0/24)") from exc
    if not net.is_private or net.num_addresses < 16:
        raise LabError(f"PRODREADY_LAB_POD_CIDR={raw} must be a private range of at least /28")
    return net


def gateway() -> str:
    return str(next(pod_network().hosts()))


class Network:
    name = "network"

    def __init__(self, settings: Settings) -> None:
        self.s = settings

    def check(self) -> None:
        need("ip", "iproute2")
        pod_network()

    def _has_address(self) -> bool:
        proc = run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE], check=False)
        return proc.returncode == 0 and f" {gateway()}/" in proc.stdout

    def up(self) -> None:
        if run(["ip", "link", "show", BRIDGE], check=False).returncode != 0:
            say(f"creating the pod bridge {BRIDGE} ({pod_network()})")
            run(["ip", "link", "add", BRIDGE, "type", "bridge"])
        if not self._has_address():
            run(["ip", "addr", "add", f"{gateway()}/{pod_network().prefixlen}", "dev", BRIDGE])
        run(["ip", "link", "set", BRIDGE, "up"])

    def down(self) -> None:
        if run(["ip", "link", "show", BRIDGE], check=False).returncode == 0:
            say(f"removing the pod bridge {BRIDGE}")
            run(["ip", "link", "delete", BRIDGE], check=False)

    def status(self) -> tuple[bool, str]:
        if not self._has_address():
            return False, f"bridge {BRIDGE} missing or without {gateway()}"
        return True, f"bridge {BRIDGE} {pod_network()}, gateway {gateway()}"

    def env(self) -> dict[str, str]:
        return {"LAB_POD_CIDR": str(pod_network()), "LAB_POD_GATEWAY": gateway()}
