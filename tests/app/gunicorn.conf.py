# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""gunicorn settings, all overridable through the environment.

Loaded by the arbiter before any worker imports the app, which is what makes
the PROMETHEUS_MULTIPROC_DIR and Server-header handling below work.
"""

from __future__ import annotations

import glob
import os
import tempfile

import gunicorn.http.wsgi


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").strip()
    try:
        return int(raw) if raw else default
    except ValueError:
        raise SystemExit(f"{name} must be an integer, got {raw!r}") from None


bind = f"0.0.0.0:{_env_int('PORT', 8000)}"
workers = _env_int("GUNICORN_WORKERS", 2)
# Threads keep slow requests (FAULT_LATENCY_MS, a slow database) from
# starving health probes, which sync workers would queue behind them.
worker_class = "gthread"
threads = _env_int("GUNICORN_THREADS", 4)
timeout = _env_int("GUNICORN_TIMEOUT", 30)
# Shorter than the default container stop timeout (10 s) so in-flight
# requests finish before a rollout's SIGKILL.
graceful_timeout = _env_int("GUNICORN_GRACEFUL_TIMEOUT", 8)
keepalive = 5
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")
# The control socket would be created under $HOME, which is not writable with
# a read-only root filesystem, and nothing here uses gunicornc.
control_socket_disable = True
# Heartbeat files go to tempfile's default (/tmp, a tmpfs when the root
# filesystem is read-only); /dev/shm is often only 64 MiB in containers.
worker_tmp_dir = os.environ.get("GUNICORN_WORKER_TMP_DIR") or None

# prometheus_client picks its storage when first imported, in each worker,
# so the variable has to exist before the workers are forked.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="refapp-prometheus-")
_PROM_DIR = os.environ["PROMETHEUS_MULTIPROC_DIR"]


# gunicorn writes "Server: gunicorn" itself, after the app's headers, so the
# app cannot remove it. Setting gunicorn.SERVER = "" (tried) still sends an
# empty "Server:" line; filtering the line out is the only way to omit it.
_default_headers = gunicorn.http.wsgi.Response.default_headers


def _default_headers_without_server(self):
    return [h for h in _default_headers(self) if not h.lower().startswith("server:")]


# SIGHUP re-reads this file; wrapping the wrapper again would be harmless but
# would grow the chain with every reload.
if not getattr(_default_headers, "refapp_no_server", False):
    _default_headers_without_server.refapp_no_server = True
    gunicorn.http.wsgi.Response.default_headers = _default_headers_without_server


def on_starting(server):
    os.makedirs(_PROM_DIR, exist_ok=True)
    # Files left by a previous run (same container restarted) would otherwise
    # be summed into this run's counters.
    for stale in glob.glob(os.path.join(_PROM_DIR, "*.db")):
        os.remove(stale)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, _PROM_DIR)
