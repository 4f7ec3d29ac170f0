# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""database.reachable and, when asked, the database checks of ``_pg/checks.py`` over the
same connection (ids ``database.<check>``)."""

from __future__ import annotations

from collections.abc import Sequence

from ansible_collections.prodready.deploy.plugins.module_utils._pg.checks import (
    CheckResult,
    Db,
    Settings,
    run_checks,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    PgConnectError,
    PgError,
    connect,
    from_params,
)

SERVER_QUERY = ("SELECT current_setting('server_version'), current_database(), current_user")


def check_database(url: str, ca_cert: str | None, timeout: int, checks: Sequence[str],
                   settings: Settings, statement_timeout_ms: int = 10000) -> list[CheckResult]:
    """Connect with the app's URL (psycopg2, through the shared connection layer), read the
    server version, then run ``checks`` read-only. Returns database.reachable first."""
    try:
        params = from_params({"url": url, "ca_cert": ca_cert, "connect_timeout": timeout})
    except PgError as exc:
        return [CheckResult("database.reachable", "fail", f"DATABASE_URL: {exc}",
                            "fix DATABASE_URL (see database.url)", {})]
    try:
        conn = connect(params)
    except PgConnectError as exc:
        message, _sep, fix = str(exc).rpartition("; ")
        return [CheckResult("database.reachable", "fail", message or fix,
                            fix if message else "check DATABASE_URL and the server",
                            {"target": params.describe(), "cause": exc.kind})]
    except PgError as exc:
        return [CheckResult("database.reachable", "fail", str(exc),
                            "install psycopg2 on the host that runs the preflight",
                            {"target": params.describe()})]
    db = Db(conn)
    try:
        db.execute("SET default_transaction_read_only = on")
        db.execute("SELECT set_config('statement_timeout', %s, false)",
                   (str(statement_timeout_ms),))
        version, database, user = db.one(SERVER_QUERY)
        results = [CheckResult(
            "database.reachable", "pass",
            f"PostgreSQL {version} answers at {params.describe()} as {user}", "",
            {"target": params.describe(), "version": version, "database": database,
             "user": user, "queries": db.queries})]
        if checks:
            for found in run_checks(db, params, settings, checks):
                found.id = f"database.{found.id}"
                results.append(found)
        return results
    except PgError as exc:
        return [CheckResult("database.reachable", "fail", str(exc),
                            "check the database server", {"target": params.describe()})]
    finally:
        conn.close()
