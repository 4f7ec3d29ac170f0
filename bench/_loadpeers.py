# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared by bench/load-rps and bench/load-1000: the local servers, the peers' commands and
the CPU accounting. `python bench/_loadpeers.py ours URL USERS SECONDS` runs our generator
(the module's engine, without Ansible around it) and prints its numbers as JSON;
`python bench/_loadpeers.py slow PORT DELAY_MS` serves every request after a delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("PRODREADY_CACHE", Path.home() / ".cache" / "prodready"))
HEY = CACHE / "bin" / "hey"
LOCUST = CACHE / "bench-venv" / "current" / "bin" / "locust"
PYTHON = REPO / ".venv" / "bin" / "python"
TICKS = os.sysconf("SC_CLK_TCK")


def need(*tools: Path | str) -> None:
    missing = [str(t) for t in tools if not (Path(t).exists() or shutil.which(str(t)))]
    if missing:
        sys.exit(f"missing {', '.join(missing)}: run scripts/setup")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / TICKS


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def nginx(core: int):
    """nginx with one worker pinned to ``core``, answering `200 ok` from memory."""
    need("/usr/sbin/nginx", "taskset")
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="prodready-bench-nginx-") as tmp:
        conf = Path(tmp, "nginx.conf")
        temps = "\n".join(f"  {k}_temp_path {tmp}/{k};" for k in
                          ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        conf.write_text(f"""worker_processes 1;
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
worker_rlimit_nofile 16384;
events {{ worker_connections 8192; multi_accept on; }}
http {{
  access_log off;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
{temps}
  server {{ listen 127.0.0.1:{port} backlog=4096; location / {{ return 200 "ok\\n"; }} }}
}}
""")
        proc = subprocess.Popen(["taskset", "-c", str(core), "/usr/sbin/nginx", "-p", tmp,
                                 "-c", str(conf), "-e", f"{tmp}/error.log"])
        try:
            wait_port(port)
            yield f"http://127.0.0.1:{port}/", proc.pid
        finally:
            proc.terminate()
            proc.wait(10)


@contextlib.contextmanager
def slow_server(core: int, delay_ms: int):
    port = free_port()
    proc = subprocess.Popen(["taskset", "-c", str(core), sys.executable, __file__, "slow",
                             str(port), str(delay_ms)])
    try:
        wait_port(port)
        yield f"http://127.0.0.1:{port}/", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(10)


Measured = tuple[subprocess.CompletedProcess, float, float, float]


def measure(argv: list[str], server_pid: int) -> Measured:
    """(process, wall seconds, CPU seconds of the command, CPU seconds of the server)."""
    server_before = cpu_seconds(server_pid)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=600)
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server = cpu_seconds(server_pid) - server_before
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0:4]} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                           f"{proc.stderr[-2000:]}")
    return proc, wall, cpu, server


# -- run as a script -------------------------------------------------------------------------
def _ours(url: str, users: int, seconds: float) -> None:
    sys.path.insert(0, str(REPO / ".collections"))
    from ansible_collections.prodready.deploy.plugins.module_utils._load.engine import (
        Plan,
        Runner,
    )
    from ansible_collections.prodready.deploy.plugins.module_utils._load.http import (
        Endpoint,
        parse_target,
    )
    from ansible_collections.prodready.deploy.plugins.module_utils._load.report import (
        summarize,
    )

    target, path = parse_target(url)
    endpoints = [Endpoint("GET", "GET", path)]
    in_flight: list[tuple[float, int]] = []
    plan = Plan(target=target, endpoints=endpoints, users=users, duration=seconds,
                timeout=30, progress_interval=0.5)
    cpu0, wall0 = time.process_time(), time.monotonic()
    stats = Runner(plan, progress=lambda snap: in_flight.append(
        (snap["elapsed_s"], snap["in_flight"]))).run()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    summary = summarize(stats, endpoints)
    summary.update(cpu_s=cpu, wall_s=wall, in_flight=in_flight)
    print(json.dumps(summary))


def _slow(port: int, delay_ms: int) -> None:
    response = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"

    class Slow(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.buf = b""

        def data_received(self, data: bytes) -> None:
            self.buf += data
            while (end := self.buf.find(b"\r\n\r\n")) >= 0:
                self.buf = self.buf[end + 4:]
                loop.call_later(delay_ms / 1000, self.answer)

        def answer(self) -> None:
            if not self.transport.is_closing():
                self.transport.write(response)

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Slow, "127.0.0.1", port, backlog=4096))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.run_forever()
    server.close()


if __name__ == "__main__":
    if sys.argv[1] == "ours":
        _ours(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif sys.argv[1] == "slow":
        _slow(int(sys.argv[2]), int(sys.argv[3]))
