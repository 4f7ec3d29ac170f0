# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The module's options turned into a Plan, and the progress file written while it runs.

Private to this collection (leading underscore): the API may change without notice.
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
import tempfile
from typing import Any

from .engine import Plan
from .http import Endpoint, LoadTestError, parse_target

METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def build_plan(params: dict[str, Any]) -> Plan:
    target, base_path = parse_target(params["url"])
    specs = params.get("endpoints") or [{"path": ""}]
    endpoints = []
    names = set()
    for spec in specs:
        path = spec.get("path") or ""
        if path.startswith(("http://", "https://")):
            other, full = parse_target(path)
            if other != target:
                raise LoadTestError(f"endpoint {path}: not on {params['url']} (one target per"
                                    " load test)")
        elif path.startswith("/") or not path:
            full = path or base_path
        else:
            full = base_path.rstrip("/") + "/" + path
        method = (spec.get("method") or "GET").upper()
        if method not in METHODS:
            raise LoadTestError(f"endpoint {full}: method {method!r} is not one of"
                                f" {', '.join(METHODS)}")
        name = spec.get("name") or f"{method} {full}"
        if name in names:
            raise LoadTestError(f"endpoint name {name!r} is used twice; give each a name")
        names.add(name)
        body = spec.get("body")
        if isinstance(body, (dict, list)):
            body = json.dumps(body, separators=(",", ":"))
            headers = {"Content-Type": "application/json", **(spec.get("headers") or {})}
        else:
            headers = dict(spec.get("headers") or {})
        endpoints.append(Endpoint(name=name, method=method, path=full,
                                  weight=int(spec.get("weight") or 1), headers=headers,
                                  body=(body or "").encode()))
    success = params.get("success_status") or list(range(200, 400))
    plan = Plan(target=target, endpoints=endpoints, model=params["model"],
                users=params["users"], ramp_up=params["ramp_up"], rate=params.get("rate") or 0,
                max_connections=params["max_connections"], duration=params.get("duration") or 0,
                requests=params.get("requests") or 0, timeout=params["timeout"],
                success_statuses=frozenset(success), headers=dict(params.get("headers") or {}),
                progress_interval=params["progress_interval"])
    if target.scheme == "https":
        plan.tls = tls_context(params.get("validate_certs", True), params.get("ca_path"))
    plan.validate()
    return plan


def tls_context(validate_certs: bool, ca_path: str | None) -> ssl.SSLContext:
    """The client's TLS settings: the system's CAs or ``ca_path``; HTTP/1.1 by ALPN."""
    try:
        context = ssl.create_default_context(cafile=ca_path)
    except (OSError, ssl.SSLError) as exc:
        raise LoadTestError(f"CA file {ca_path}: {getattr(exc, 'strerror', None) or exc}"
                            ) from None
    if not validate_certs:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["http/1.1"])
    return context


class ProgressFile:
    """The latest snapshot as one JSON document, replaced atomically, so `cat` or a slurp
    task always reads a whole one while the module runs under async."""

    def __init__(self, path: str | None) -> None:
        self.path = path
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            raise LoadTestError(f"progress file {path}: its directory does not exist")

    def write(self, doc: dict[str, Any]) -> None:
        if not self.path:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".load-test-", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(doc, handle, sort_keys=True)
                handle.write("\n")
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise LoadTestError(f"progress file {self.path}: {exc.strerror or exc}") from None
