# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to the lab fails fast with a message that names the problem and the fix."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from conftest import lab


def test_unknown_command_prints_usage_and_exits_2() -> None:
    proc = lab("frobnicate")
    assert proc.returncode == 2
    assert "unknown command 'frobnicate'" in proc.stderr
    assert "usage: lab COMMAND" in proc.stderr


def test_no_command_prints_usage_and_exits_2() -> None:
    proc = lab()
    assert proc.returncode == 2
    assert "usage: lab COMMAND" in proc.stderr


def _isolated_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "PRODREADY_LAB_DIR": str(tmp_path / "lab"), **extra}


def test_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        proc = lab("up", env=_isolated_env(tmp_path, PRODREADY_LAB_PG_PORT=str(port)))
    assert proc.returncode == 1
    assert f"port {port} on 127.0.0.1 is already in use, so PostgreSQL cannot start" in proc.stderr
    assert "PRODREADY_LAB_PG_PORT" in proc.stderr
    assert not (tmp_path / "lab/postgresql/data/PG_VERSION").exists()


def test_missing_package_is_named(tmp_path: Path) -> None:
    proc = lab("up", env=_isolated_env(tmp_path, PRODREADY_LAB_PG_BIN=str(tmp_path / "nowhere"),
                                       PRODREADY_LAB_PG_PORT="1"))
    assert proc.returncode == 1
    assert "initdb not found: install the Debian package postgresql-15" in proc.stderr
    assert not (tmp_path / "lab").exists(), "nothing may be created before the check"


def test_bad_port_setting_is_named(tmp_path: Path) -> None:
    proc = lab("status", env=_isolated_env(tmp_path, PRODREADY_LAB_REDIS_PORT="http"))
    assert proc.returncode == 1
    assert "PRODREADY_LAB_REDIS_PORT='http' is not a TCP port" in proc.stderr


def test_bad_pod_network_setting_is_named(tmp_path: Path) -> None:
    proc = lab("status", env=_isolated_env(tmp_path, PRODREADY_LAB_POD_CIDR="bogus"))
    assert proc.returncode == 1
    assert "PRODREADY_LAB_POD_CIDR='bogus' is not an IPv4 network" in proc.stderr
    assert "Traceback" not in proc.stderr
