# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The preflight report: run the checks (network ones concurrently), order, summarise, and
render the table the role prints.

Results are ``CheckResult`` of the database checks (``_pg/checks.py``), so both modules
report in one shape.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Callable, Sequence
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._pg.checks import (
    FAIL_ON,
    STATUSES,
    CheckResult,
    summarize,
)

__all__ = ["FAIL_ON", "STATUSES", "CheckResult", "PreflightInputError", "render_table",
           "run_concurrently", "summarize"]

# A probe has its own socket timeouts; this is what a thread may take beyond them (TLS
# handshakes, DNS) before its check is declared hung.
GRACE_SECONDS = 5.0
MESSAGE_WIDTH = 160

# One network probe: its id (for the result when it hangs or breaks) and a function that
# returns one or more results.
Probe = tuple[str, Callable[[], "CheckResult | list[CheckResult]"]]


class PreflightInputError(ValueError):
    """An option of the preflight is unusable; no check ran. Never holds a secret."""


def run_concurrently(probes: Sequence[Probe], timeout: float,
                     workers: int = 8) -> list[CheckResult]:
    """Run the probes in a thread pool; results in the order of ``probes``.

    A probe that raises becomes a ``fail`` naming the exception type and message (the probes
    raise only messages without secrets); one that does not return within ``timeout`` plus
    a grace becomes a ``fail`` saying so, and its thread is abandoned (each probe sets socket
    timeouts, so it ends on its own).
    """
    if not probes:
        return []
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(probes))),
                                                 thread_name_prefix="preflight")
    try:
        futures = [(check_id, pool.submit(func)) for check_id, func in probes]
        deadline = time.monotonic() + timeout + GRACE_SECONDS
        results: list[CheckResult] = []
        for check_id, future in futures:
            try:
                found = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except concurrent.futures.TimeoutError:
                found = CheckResult(check_id, "fail",
                                    f"no answer within {timeout:g} s (+{GRACE_SECONDS:g} s)",
                                    "check that the service is up and reachable from this"
                                    " host, or raise the option timeout",
                                    {"timeout": timeout})
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # One broken probe must not hide the report of the others.
                found = CheckResult(check_id, "fail",
                                    f"the check could not run: {type(exc).__name__}: {exc}",
                                    "report this as a bug of prodready.deploy.env_check",
                                    {"error": type(exc).__name__})
            results.extend(found if isinstance(found, list) else [found])
        return results
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _one_line(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[:width - 3] + "..."


def render_table(results: Sequence[CheckResult], summary: dict[str, int],
                 width: int = MESSAGE_WIDTH) -> list[str]:
    """Fixed-width lines ``id | status | message`` with a header and a summary line."""
    id_width = max([len("CHECK")] + [len(r.id) for r in results])
    status_width = max(len(s) for s in (*STATUSES, "STATUS"))
    rule = f"{'-' * id_width}-+-{'-' * status_width}-+-{'-' * 7}"
    lines = [f"{'CHECK':<{id_width}} | {'STATUS':<{status_width}} | MESSAGE", rule]
    for result in results:
        lines.append(f"{result.id:<{id_width}} | {result.status.upper():<{status_width}} | "
                     f"{_one_line(result.message, width)}")
    lines.append(rule)
    lines.append(", ".join(f"{summary.get(s, 0)} {s}" for s in STATUSES))
    return lines


def report(results: Sequence[CheckResult], fail_on: str) -> dict[str, Any]:
    """The module's result keys, plus ``fails`` (whether the module must fail)."""
    verdict = summarize(results, fail_on)
    return {"checks": [r.as_dict() for r in results], "summary": verdict["summary"],
            "failed_checks": verdict["failed"], "warned_checks": verdict["warned"],
            "table": render_table(results, verdict["summary"]), "fails": verdict["fails"]}
