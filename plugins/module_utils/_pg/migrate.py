# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Alembic migrations with guards: plan, lint, run, and undo a failed run.

Alembic runs in a subprocess of the application's own Python (its env.py may import the
application), through Alembic's Python API: ``HELPER_SOURCE`` is a small script that takes a
JSON request (a list of operations) and writes a JSON answer to a file - so whatever the
migrations print cannot corrupt the answer. The database URL reaches env.py through an
environment variable (``DATABASE_URL`` by default), never a command line or the request.

What this layer adds to Alembic:

- a plan before anything runs: the current revision, the pending revisions in order, their
  offline SQL and a lint of it (``sqllint``); a ``fail`` finding stops the run;
- a downgrade through a revision without a downgrade step is refused before anything runs;
- multiple heads are an error that names them;
- ``lock_timeout`` and ``statement_timeout`` for the migration session (``PGOPTIONS``);
- compensation: with ``transaction_per_migration`` a failure in revision N of M leaves
  N-1 revisions committed; the run downgrades back to the revision it started from and
  checks that ``alembic_version`` says so.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlencode

from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import (
    ConnParams,
    PgAuthError,
    PgDatabaseMissingError,
    PgError,
    PgTlsError,
    PgUnreachableError,
    connect,
    connect_error,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.guard import (
    GuardError,
    Plan,
    live_revision,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.guard import (
    plan as guard_plan,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.sqllint import (
    Finding,
    lint_revision,
)

# The script the application's Python runs. It imports only Alembic and the standard
# library itself; env.py imports whatever the application needs.
HELPER_SOURCE = r'''
import functools
import io
import json
import os
import sys
import traceback


def revision_info(script):
    revisions = []
    for rev in reversed(list(script.walk_revisions("base", "heads"))):
        down = rev.down_revision
        down = [] if down is None else [down] if isinstance(down, str) else list(down)
        revisions.append({
            "revision": rev.revision, "down_revisions": down,
            "branch_labels": sorted(rev.branch_labels or ()),
            "doc": rev.doc or "", "path": rev.path, "is_head": bool(rev.is_head),
        })
    return {"revisions": revisions, "heads": list(script.get_heads())}


def current(cfg, script, request, results):
    from alembic.runtime.environment import EnvironmentContext
    found = []

    def read(rev, context):
        found.extend(context.get_current_heads())
        # An empty table and no table read the same above; a rollback must tell them apart.
        table = {"name": context.version_table, "schema": context.version_table_schema,
                 "exists": None}
        try:
            from sqlalchemy import inspect
            table["exists"] = bool(inspect(context.connection).has_table(
                context.version_table, schema=context.version_table_schema))
        except Exception:  # an answer we cannot get is left unknown, never guessed
            pass
        results["version_table"] = table
        return []

    with EnvironmentContext(cfg, script, fn=read, dont_mutate=True):
        script.run_env()
    return sorted(found)


def _steps(script, direction, target, heads):
    if direction == "upgrade":
        return script._upgrade_revs(target, tuple(heads))
    return script._downgrade_revs(target, tuple(heads))


def target_heads(script, direction, target, heads):
    # What alembic_version holds after the run: Alembic's own steps for the target, applied
    # by its own HeadMaintainer to a set instead of the table.
    from alembic.runtime.migration import HeadMaintainer

    class DryHeads(HeadMaintainer):
        def _insert_version(self, version):
            self.heads.add(version)

        def _delete_version(self, version):
            self.heads.remove(version)

        def _update_version(self, from_, to_):
            self.heads.remove(from_)
            self.heads.add(to_)

    maintainer = DryHeads(None, heads)
    for step in _steps(script, direction, target, heads):
        maintainer.update_to_step(step)
    return sorted(maintainer.heads)


def steps(cfg, script, request, results):
    # The revisions as _upgrade_revs / _downgrade_revs select them, and the heads they
    # lead to. Building the steps fails on a revision without a downgrade(), which the
    # caller reports: then "target_heads" is an error.
    # An error is an answer, not a failure: the caller first checks what caused it
    # (several heads, a database at an unknown revision) and words it.
    heads = tuple(request["current"] if "current" in request else results["current"])
    direction, target = request["direction"], request["target"]
    try:
        if direction == "upgrade":
            revs = reversed(list(script.iterate_revisions(target, heads,
                                                          implicit_base=True)))
        else:
            revs = script.iterate_revisions(heads, target, select_for_downgrade=True)
        answer = {"revisions": [rev.revision for rev in revs]}
    except Exception as exc:
        return {"error": describe(exc)}
    try:
        answer["target_heads"] = target_heads(script, direction, target, heads)
    except Exception as exc:
        answer["target_heads_error"] = describe(exc)
    return answer


def sql(cfg, script, request, results):
    from alembic import command
    buffer = io.StringIO()
    cfg.output_buffer = buffer
    start, target = request.get("start"), request["target"]
    try:
        getattr(command, request["direction"])(
            cfg, f"{start}:{target}" if start else target, sql=True)
    except BaseException as exc:  # offline SQL is best effort: report, do not stop
        # What was written before the failure names the revision that failed.
        return {"error": describe(exc), "text": buffer.getvalue()}
    return {"text": buffer.getvalue()}


def run(cfg, script, request, results):
    from alembic.runtime.environment import EnvironmentContext
    direction, target = request["direction"], request["target"]

    def migrate(heads, context):
        planned = _steps(script, direction, target, heads)
        for step in planned:
            def tracked(*args, _original=step.migration_fn, _rev=step.revision.revision,
                        **kwargs):
                RUNNING["revision"] = _rev
                return _original(*args, **kwargs)

            # Alembic names the step after its function ("Running upgrade a -> b").
            step.migration_fn = functools.wraps(step.migration_fn)(tracked)
        return planned

    with EnvironmentContext(cfg, script, fn=migrate, as_sql=False, starting_rev=None,
                            destination_rev=target, tag=None):
        script.run_env()
    return True


def script_op(cfg, script, request, results):
    return revision_info(script)


OPS = {"script": script_op, "current": current, "steps": steps, "sql": sql, "run": run}
RUNNING = {"revision": None}


def describe(exc):
    info = {"type": type(exc).__name__, "message": str(exc).strip()}
    if isinstance(exc, SystemExit):
        info["message"] = str(exc.code)
    orig = getattr(exc, "orig", None)
    if orig is not None:
        info["dbapi_type"] = type(orig).__name__
        info["message"] = str(orig).strip()
        info["pgcode"] = getattr(orig, "pgcode", None)
        statement = getattr(exc, "statement", None)
        if statement:
            info["statement"] = " ".join(str(statement).split())[:300]
    info["traceback"] = traceback.format_exception(type(exc), exc, exc.__traceback__)[-6:]
    return info


def answer_request(request_path, answer_path):
    RUNNING["revision"] = None
    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    answer = {"ok": True, "results": {}}
    op = None
    try:
        from alembic.config import Config
        from alembic.script import ScriptDirectory
        cfg = Config(request["config"])
        script = ScriptDirectory.from_config(cfg)
        for item in request["ops"]:
            op = item["op"]
            answer["results"][op] = OPS[op](cfg, script, item, answer["results"])
    except BaseException as exc:  # env.py may sys.exit(); every failure is reported
        answer.update(ok=False, op=op, error=describe(exc), running=RUNNING["revision"])
    with open(answer_path, "w", encoding="utf-8") as handle:
        json.dump(answer, handle)


def serve(requests_fd, done_fd):
    # A session: Alembic and SQLAlchemy load while the caller does other work, then each
    # request (a line naming its request and answer files) is answered in turn; env.py runs
    # anew for each, as it does for each alembic command, with the environment and working
    # directory the session started with.
    try:
        import alembic.command  # noqa: F401
        import alembic.runtime.environment  # noqa: F401
        import alembic.script  # noqa: F401
        import sqlalchemy  # noqa: F401
    except BaseException:  # the first request reports it
        pass
    environ, cwd = dict(os.environ), os.getcwd()
    done = os.fdopen(done_fd, "w")
    for line in os.fdopen(requests_fd):
        request_path, answer_path = json.loads(line)
        os.environ.clear()
        os.environ.update(environ)
        os.chdir(cwd)
        answer_request(request_path, answer_path)
        sys.stdout.flush()
        sys.stderr.flush()
        done.write("done\n")
        done.flush()


if sys.argv[1] == "--serve":
    serve(int(sys.argv[2]), int(sys.argv[3]))
else:
    answer_request(sys.argv[1], sys.argv[2])
'''

DEFAULT_LOCK_TIMEOUT = "5s"
# Lint rules that read the revision file, not its offline SQL.
SQL_FREE_RULES = frozenset({"no-downgrade"})
DEFAULT_STATEMENT_TIMEOUT = "15min"
_DURATION = re.compile(r"^(?:0|[1-9][0-9]*)(?:us|ms|s|min|h|d)?$")
# SQLSTATEs worth a hint: lock_not_available, query_canceled (statement_timeout).
_BOILERPLATE = re.compile(r"Context impl |Will assume (non-)?transactional DDL|"
                          r"Generating static SQL")
_PGCODE_HINTS = {
    "55P03": "another session holds a lock the migration needs (lock_timeout={lock});"
             " find it in pg_locks / pg_stat_activity, or retry when it is released",
    "57014": "a statement ran longer than statement_timeout={statement}; raise"
             " statement_timeout for this migration if it is expected to take that long",
}


class MigrateError(PgError):
    """Base of the migration errors; ``details`` go into the module result."""

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


class MigrateInputError(MigrateError):
    """Options that cannot work (missing config, bad timeout, unknown target...)."""


class MultipleHeadsError(MigrateError):
    pass


class NoDowngradeError(MigrateError):
    pass


class LintFailedError(MigrateError):
    pass


class AlembicError(MigrateError):
    """Alembic (or env.py, or a migration) failed in the helper."""


class MigrationFailedError(MigrateError):
    """A migration run failed; ``details`` say whether it was compensated."""


@dataclass
class Settings:
    """How to run Alembic for one application."""

    config: str
    chdir: str | None = None
    python: str | None = None
    conn: ConnParams | None = None
    driver: str | None = None
    url_env: str = "DATABASE_URL"
    env: dict[str, str] = field(default_factory=dict)
    lock_timeout: str = DEFAULT_LOCK_TIMEOUT
    statement_timeout: str = DEFAULT_STATEMENT_TIMEOUT

    def check(self) -> None:
        if not os.path.isfile(self.config):
            raise MigrateInputError(
                f"the Alembic config {self.config} does not exist: give the path of the"
                " application's alembic.ini in option config")
        if self.chdir is not None and not os.path.isdir(self.chdir):
            raise MigrateInputError(f"option chdir: {self.chdir} is not a directory")
        for name in ("lock_timeout", "statement_timeout"):
            if not _DURATION.match(getattr(self, name)):
                raise MigrateInputError(
                    f"option {name}: {getattr(self, name)!r} is not a PostgreSQL duration;"
                    " use e.g. 5s, 500ms, 15min or 0 (no limit)")
        if self.python and not (os.path.isfile(self.python) and os.access(self.python, os.X_OK)):
            raise MigrateInputError(f"option python: {self.python} is not an executable;"
                                    " give the application's Python interpreter")
        if self.url_env in ("PGOPTIONS", "PGPASSFILE"):
            raise MigrateInputError(f"option url_env: {self.url_env} is set by this module")

    @property
    def workdir(self) -> str:
        return self.chdir or os.path.dirname(os.path.abspath(self.config))

    def pgoptions(self, read_only: bool = False) -> str:
        """libpq ``options``: the caller's own plus the session's timeouts."""
        parts = [self.conn.options["options"]] if self.conn and \
            self.conn.options.get("options") else []
        parts += [f"-c lock_timeout={self.lock_timeout}",
                  f"-c statement_timeout={self.statement_timeout}"]
        if read_only:
            parts.append("-c default_transaction_read_only=on")
        return " ".join(parts)

    def url(self, read_only: bool = False) -> str:
        """The URL env.py reads. Holds the password: never log it."""
        conn = self.conn
        if conn is None:
            raise MigrateError("internal error: the connection settings were not resolved")
        scheme = f"postgresql+{self.driver}" if self.driver else "postgresql"
        userinfo = ""
        if conn.user:
            userinfo = quote(conn.user, safe="")
            if conn.password is not None:
                userinfo += ":" + quote(conn.password, safe="")
            userinfo += "@"
        query = dict(conn.options)
        query.setdefault("application_name", "prodready.deploy.alembic")
        query["connect_timeout"] = str(conn.connect_timeout)
        query["options"] = self.pgoptions(read_only)
        host = conn.host or ""
        if host.startswith("/"):
            query["host"], host = host, ""
        elif ":" in host:
            host = f"[{host}]"
        netloc = f"{host}:{conn.port}" if host else ""
        return (f"{scheme}://{userinfo}{netloc}/{quote(conn.dbname or '', safe='')}?"
                f"{urlencode(query, quote_via=quote)}")

    def secrets(self) -> list[str]:
        """Strings that must never leave this module."""
        found = []
        if self.conn and self.conn.password:
            found += [self.conn.password, quote(self.conn.password, safe="")]
        if self.conn:
            found += [self.url(False), self.url(True)]
        # Every value, however short: env is no_log, and a short secret is still one.
        found += [v for v in self.env.values() if v]
        return sorted(set(found), key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "********")
    return text


def scrub_all(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [scrub_all(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: scrub_all(v, secrets) for k, v in value.items()}
    return value


Runner = Callable[[list[str], dict[str, str], str], "subprocess.CompletedProcess[str]"]


def _run_subprocess(argv: list[str], env: dict[str, str], cwd: str,
                    ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)


class _Session:
    """A helper process that answers requests in turn (``--serve``), for the calls of one
    module run that share an environment: the interpreter, Alembic and SQLAlchemy load once,
    and while the caller reads the database in another process. Its output goes to files, so
    a talkative migration cannot fill a pipe nobody reads; stderr makes the log, as it does
    for a helper of its own."""

    def __init__(self, python: str, env: dict[str, str], cwd: str) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="prodready-alembic-session-")
        helper = os.path.join(self.tmpdir, "alembic_helper.py")
        with open(helper, "w", encoding="utf-8") as handle:
            handle.write(HELPER_SOURCE)
        self.stdout = open(os.path.join(self.tmpdir, "stdout"), "w+b")  # noqa: SIM115
        self.stderr = open(os.path.join(self.tmpdir, "stderr"), "w+b")  # noqa: SIM115
        self.offsets = {"stdout": 0, "stderr": 0}
        self.returncode: int | None = None
        requests_r, requests_w = os.pipe()
        done_r, done_w = os.pipe()
        try:
            self.proc = subprocess.Popen(  # noqa: S603 - the application's own Python
                [python, helper, "--serve", str(requests_r), str(done_w)], env=env, cwd=cwd,
                stdin=subprocess.DEVNULL, stdout=self.stdout, stderr=self.stderr,
                pass_fds=(requests_r, done_w))
        except OSError:
            for fd in (requests_r, requests_w, done_r, done_w):
                os.close(fd)
            self._remove()
            raise
        os.close(requests_r)
        os.close(done_w)
        self.requests = os.fdopen(requests_w, "w", encoding="utf-8")
        self.done = os.fdopen(done_r, encoding="utf-8")

    @property
    def alive(self) -> bool:
        return self.returncode is None

    def _read(self, name: str) -> str:
        stream = getattr(self, name)
        stream.seek(self.offsets[name])
        data = stream.read()
        self.offsets[name] += len(data)
        return data.decode("utf-8", "replace")

    def ask(self, request_path: str, answer_path: str) -> tuple[int, str, str]:
        """(exit code, stderr, stdout) of this request - exit code 0 while the helper lives,
        its own once it has died (then the session is over)."""
        try:
            self.requests.write(json.dumps([request_path, answer_path]) + "\n")
            self.requests.flush()
            answered = bool(self.done.readline())
        except OSError:
            answered = False
        if not answered:
            self._stop()
        return (0 if answered else int(self.returncode or 0)), self._read("stderr"), \
            self._read("stdout")

    def _stop(self) -> None:
        """Close the request pipe (a live helper then ends) and reap the process."""
        for stream in (self.requests, self.done):
            with contextlib.suppress(OSError):
                stream.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.returncode = self.proc.returncode if self.proc.returncode is not None else -1

    def _remove(self) -> None:
        self.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def close(self) -> None:
        if self.alive:
            self._stop()
        self._remove()


class Alembic:
    """Runs the helper; records each call in ``commands`` as the equivalent alembic CLI."""

    def __init__(self, settings: Settings, python: str, runner: Runner = _run_subprocess):
        self.settings = settings
        self.python = settings.python or python
        self.runner = runner
        self.commands: list[str] = []
        self.log: list[str] = []
        self._sessions: dict[bool, _Session] = {}

    def describe(self, ops: list[dict[str, Any]]) -> list[str]:
        base = f"alembic -c {self.settings.config}"
        shown = []
        for op in ops:
            if op["op"] == "current":
                shown.append(f"{base} current")
            elif op["op"] == "sql":
                rng = f"{op['start']}:{op['target']}" if op.get("start") else op["target"]
                shown.append(f"{base} {op['direction']} {rng} --sql")
            elif op["op"] == "run":
                shown.append(f"{base} {op['direction']} {op['target']}")
        return shown

    def prepare(self, read_only: bool = False) -> None:
        """Start a session for the later calls with this ``read_only``, so its start-up
        overlaps with what runs before them. Only with the real runner (unit tests script
        the helper); a session that cannot start leaves the calls to one process each."""
        if self.runner is not _run_subprocess or read_only in self._sessions \
                or self.settings.conn is None:
            return
        with contextlib.suppress(OSError):
            self._sessions[read_only] = _Session(
                self.python, self._environment(True, read_only), self.settings.workdir)

    def close(self) -> None:
        """End the sessions (each helper exits when its request pipe closes)."""
        sessions, self._sessions = self._sessions, {}
        for session in sessions.values():
            session.close()

    def call(self, ops: list[dict[str, Any]], read_only: bool = False) -> dict[str, Any]:
        """Run the operations in one helper process - the session's, when one was prepared
        for ``read_only`` - their results by name, or AlembicError with the helper's
        description of the failure."""
        settings = self.settings
        self.commands += self.describe(ops)
        needs_db = any(op["op"] in ("current", "run", "sql") for op in ops)
        session = self._sessions.get(read_only) if needs_db else None
        tmpdir = tempfile.mkdtemp(prefix="prodready-alembic-")
        try:
            helper = os.path.join(tmpdir, "alembic_helper.py")
            request_path = os.path.join(tmpdir, "request.json")
            answer_path = os.path.join(tmpdir, "answer.json")
            with open(request_path, "w", encoding="utf-8") as handle:
                json.dump({"config": os.path.abspath(settings.config), "ops": ops}, handle)
            if session is not None and session.alive:
                returncode, stderr, stdout = session.ask(request_path, answer_path)
                output = stderr or stdout
            else:
                with open(helper, "w", encoding="utf-8") as handle:
                    handle.write(HELPER_SOURCE)
                proc = self.runner([self.python, helper, request_path, answer_path],
                                   self._environment(needs_db, read_only), settings.workdir)
                returncode = proc.returncode
                stderr, output = proc.stderr or "", proc.stderr or proc.stdout or ""
            secrets = settings.secrets()
            log = [scrub(line, secrets) for line in stderr.splitlines()
                   if line.strip() and not _BOILERPLATE.search(line)]
            try:
                with open(answer_path, encoding="utf-8") as handle:
                    answer = json.load(handle)
            except (OSError, ValueError):
                tail = scrub(output.strip(), secrets)[-1500:]
                raise AlembicError(
                    f"the Alembic helper did not answer (exit code {returncode}) with"
                    f" {self.python}: {tail or 'no output'}; is Alembic installed for that"
                    " interpreter (option python)?") from None
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)
        if session is not None and not answer.get("ok"):
            # A failed request may leave the process in any state (a half-run migration, an
            # env.py that exited): what follows, such as the compensation, runs in a fresh one.
            self._sessions.pop(read_only, None)
            session.close()
        # Scrub what becomes a message; revision ids, paths and the offline SQL stay as
        # they are for the logic and the lint (a short env value would garble them), and
        # the module scrubs its whole result before it leaves.
        if "error" in answer:
            answer["error"] = scrub_all(answer["error"], secrets)
        for value in answer.get("results", {}).values():
            if isinstance(value, dict):
                for key in ("error", "target_heads_error"):
                    if key in value:
                        value[key] = scrub_all(value[key], secrets)
        # Only what ran for real (or failed) is worth the space: plans log the same lines.
        if not answer["ok"] or any(op["op"] == "run" for op in ops):
            self.log += log[-40:]
        if not answer["ok"]:
            raise self._error(answer)
        return answer["results"]

    def _environment(self, needs_db: bool, read_only: bool) -> dict[str, str]:
        settings = self.settings
        env = {**os.environ, **settings.env}
        if settings.conn is None or not needs_db:
            # Offline operations still run env.py, which may insist on the variable.
            env.setdefault(settings.url_env, "postgresql://offline.invalid/offline")
            return env
        with settings.conn.client_env(base=env) as client:
            # The passfile of client_env() is removed on exit: the password goes in the URL,
            # which is what env.py reads anyway; never fall back to ~/.pgpass.
            client["PGPASSFILE"] = os.devnull
            client["PGOPTIONS"] = settings.pgoptions(read_only)
            client[settings.url_env] = settings.url(read_only)
            return dict(client)

    def _error(self, answer: dict[str, Any]) -> AlembicError:
        error = answer.get("error") or {}
        message = error.get("message") or error.get("type") or "unknown error"
        conn = self.settings.conn
        if conn is not None and error.get("dbapi_type") == "OperationalError" and \
                not error.get("pgcode") and answer.get("running") is None:
            # A connection failure after the preflight (env.py connects anew): typed when
            # libpq's text names a known cause, else reported as the Alembic error below.
            typed = connect_error(message, conn)
            if isinstance(typed, (PgAuthError, PgUnreachableError, PgDatabaseMissingError,
                                  PgTlsError)):
                raise typed
        hint = _PGCODE_HINTS.get(error.get("pgcode") or "")
        if hint:
            message += " (" + hint.format(lock=self.settings.lock_timeout,
                                          statement=self.settings.statement_timeout) + ")"
        if error.get("type") == "CommandError":
            message = f"Alembic: {message}"
        elif error.get("dbapi_type"):
            message = f"{error['dbapi_type']}: {message}"
        elif error.get("type") not in (None, "SystemExit"):
            message = f"{error['type']}: {message}"
        return AlembicError(message, op=answer.get("op"), running=answer.get("running"),
                            statement=error.get("statement"), pgcode=error.get("pgcode"),
                            traceback=error.get("traceback"))


def has_downgrade(path: str | None) -> bool:
    """Whether the revision file's ``downgrade()`` does something.

    No: the function is missing, its body is only ``pass``, a docstring or ``...``, or it
    raises NotImplementedError. A file that cannot be read or parsed counts as having one
    (Alembic itself would fail on it first).
    """
    if not path:
        return True
    try:
        with open(path, encoding="utf-8") as handle:
            tree = ast.parse(handle.read(), filename=path)
    except (OSError, SyntaxError, ValueError):
        return True
    func = None
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and \
                node.name == "downgrade":
            func = node
    if func is None:
        return False
    body = [stmt for stmt in func.body
            if not isinstance(stmt, ast.Pass)
            and not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)
                     and (isinstance(stmt.value.value, str) or stmt.value.value is Ellipsis))]
    if not body:
        return False
    for stmt in body:
        if isinstance(stmt, ast.Raise) and stmt.exc is not None:
            exc = stmt.exc.func if isinstance(stmt.exc, ast.Call) else stmt.exc
            if isinstance(exc, ast.Name) and exc.id == "NotImplementedError":
                return False
    return True


@dataclass
class Script:
    """The revisions of the migration scripts, oldest first."""

    revisions: list[dict[str, Any]]
    heads: list[str]

    @classmethod
    def from_helper(cls, info: dict[str, Any]) -> Script:
        revisions = []
        for rev in info["revisions"]:
            revisions.append({**rev, "has_downgrade": has_downgrade(rev.get("path"))})
        return cls(revisions, list(info["heads"]))

    def get(self, revision: str) -> dict[str, Any]:
        for rev in self.revisions:
            if rev["revision"] == revision:
                return rev
        return {"revision": revision, "path": None, "has_downgrade": True, "doc": ""}

    def history(self) -> list[dict[str, Any]]:
        keys = ("revision", "down_revisions", "has_downgrade", "is_head", "path", "doc",
                "branch_labels")
        return [{k: rev.get(k) for k in keys} for rev in self.revisions]

    def single_head(self, what: str) -> str:
        if len(self.heads) > 1:
            raise MultipleHeadsError(
                f"the migrations have {len(self.heads)} heads ({', '.join(sorted(self.heads))})"
                f", so {what} is ambiguous: merge them (alembic merge heads) or name a target"
                " revision", heads=sorted(self.heads))
        if not self.heads:
            raise MigrateInputError("the migrations have no revisions")
        return self.heads[0]


_MARKER = re.compile(r"^-- Running (?P<direction>upgrade|downgrade) (?P<source>.*?) ?->"
                     r" (?P<dest>.*?)\s*$", re.M)


def split_offline_sql(text: str) -> dict[str, str]:
    """Offline SQL per revision, cut at Alembic's ``-- Running upgrade a -> b`` comments.

    The key is the revision the step applies (upgrade) or removes (downgrade). What comes
    before the first step (creating alembic_version) goes with the first one; the
    ``BEGIN;`` that opens the next step's transaction moves to the next one.
    """
    out: dict[str, str] = {}
    matches = list(_MARKER.finditer(text))
    carry = text[:matches[0].start()].strip() if matches else ""
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(text)
        body = text[match.end():end].strip()
        following = ""
        if i + 1 < len(matches) and body.endswith("BEGIN;"):
            body, following = body[:-len("BEGIN;")].rstrip(), "BEGIN;"
        key = match["dest"] if match["direction"] == "upgrade" else match["source"]
        out[key.strip()] = "\n\n".join(part for part in (carry, body) if part) + "\n"
        carry = following
    return out


@dataclass
class Outcome:
    """What a migration run did, for the module result."""

    changed: bool = False
    from_revision: str | None = None
    to_revision: str | None = None
    pending: list[str] = field(default_factory=list)
    revisions: list[str] = field(default_factory=list)
    sql: list[dict[str, str]] | None = None
    lint: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    compensated: bool = False
    heads: list[str] = field(default_factory=list)
    script_heads: list[str] = field(default_factory=list)
    current: str | None = None
    target_heads: list[str] = field(default_factory=list)
    plan: dict[str, Any] | None = None

    def as_result(self) -> dict[str, Any]:
        result = {k: v for k, v in self.__dict__.items()
                  if k not in ("warnings", "target_heads")}
        for key in ("sql", "plan"):
            if result[key] is None:
                result.pop(key)
        return result


@dataclass(frozen=True)
class Guard:
    """Ask the schema compatibility guard before a downgrade: the pre-release backup it may
    choose instead, and which way it leans when both work (see `guard.plan`)."""

    backup: dict[str, Any] | None = None
    prefer: str = "downgrade"


class GuardBlockedError(MigrateError):
    """The guard found no way back (no downgrade path, no usable backup)."""


def _joined(revisions: list[str]) -> str | None:
    """Several revisions (one per branch) as one string, like ``current``; None at base."""
    return ",".join(sorted(revisions)) or None


def _single(current: list[str], what: str) -> str | None:
    if len(current) > 1:
        raise MigrateError(f"the database is at several revisions ({', '.join(current)}),"
                           f" one per branch; {what} needs a single current revision")
    return current[0] if current else None


class Migrator:
    """One migration request: plan, lint, run, compensate."""

    def __init__(self, alembic: Alembic, clock: Callable[[], float] = time.monotonic):
        self.alembic = alembic
        self.clock = clock
        self._script: Script | None = None

    def script(self) -> Script:
        if self._script is None:
            self._script = Script.from_helper(self.alembic.call([{"op": "script"}])["script"])
        return self._script

    def preflight(self) -> None:
        """Connect once with psycopg2: a wrong password, an unreachable server or a missing
        database fails here with a typed error, before env.py runs."""
        conn_params = self.alembic.settings.conn
        if conn_params is None:
            raise MigrateInputError("no database given: set url (or login_host and"
                                    " database)")
        conn = connect(conn_params)
        conn.close()

    def current(self) -> list[str]:
        return self.alembic.call([{"op": "current"}], read_only=True)["current"]

    def read(self, direction: str, target: str) -> dict[str, Any]:
        """The scripts, the current revisions and Alembic's plan of the steps, in one
        read-only helper run, unchecked."""
        self.preflight()
        results = self.alembic.call([{"op": "script"}, {"op": "current"},
                                     {"op": "steps", "direction": direction,
                                      "target": target}], read_only=True)
        self._script = Script.from_helper(results["script"])
        return results

    def state(self, direction: str, target: str, results: dict[str, Any] | None = None
              ) -> tuple[list[str], list[str], dict[str, Any]]:
        """(current revisions, pending revisions, Alembic's plan of the steps) from `read`
        (done here when not given); errors worded for the case that caused them."""
        if results is None:
            results = self.read(direction, target)
        script = self.script()
        current = results["current"]
        if direction == "upgrade" and target == "head":
            script.single_head("upgrade to head")
        self.check_known(current)
        answer = results["steps"]
        if "error" in answer:
            known = [rev["revision"] for rev in script.revisions]
            raise MigrateInputError(
                f"cannot {direction} to {target!r} (Alembic: {answer['error']['message']});"
                f" known revisions: {', '.join(known) or 'none'}, or head / base")
        return current, answer["revisions"], answer

    def check_known(self, current: list[str]) -> None:
        script = self.script()
        known = {rev["revision"] for rev in script.revisions}
        for rev in current:
            if rev not in known:
                raise MigrateError(
                    f"the database is at revision {rev}, which these migrations do not"
                    f" contain (known heads: {', '.join(script.heads) or 'none'}); it was"
                    " probably applied by a newer release: deploy that release's"
                    " migrations, or downgrade with them first", current=current)

    def plan(self, direction: str, target: str, want_sql: bool, lint: bool,
             policy: dict[str, str], read: dict[str, Any] | None = None
             ) -> tuple[Outcome, str | None, list[Finding]]:
        current, pending, steps = self.state(direction, target, read)
        script = self.script()
        outcome = Outcome(heads=sorted(script.heads), script_heads=sorted(script.heads))
        # A downgrade may start where an earlier one unmerged two branches.
        start = _joined(current) if direction == "downgrade" else _single(current, direction)
        outcome.current = outcome.from_revision = start
        outcome.pending = pending
        outcome.changed = bool(pending)
        if direction == "downgrade":
            missing = [script.get(rev) for rev in pending
                       if not script.get(rev)["has_downgrade"]]
            if missing:
                rev = missing[0]
                raise NoDowngradeError(
                    f"revision {rev['revision']} ({rev['path']}) has no downgrade step, so"
                    f" the database cannot be downgraded from {start} to {target}; nothing"
                    " was run. Restore the backup taken before the release instead, or"
                    " write the downgrade", pending=pending, from_revision=start,
                    revision=rev["revision"], file=rev["path"])
        if "target_heads" not in steps:
            error = steps.get("target_heads_error") or {}
            raise MigrateError(
                f"cannot work out where the {direction} to {target!r} leads (Alembic:"
                f" {error.get('message') or 'no answer'}); nothing was run", outcome=outcome)
        # Alembic's own resolution of the target: what alembic_version holds afterwards.
        outcome.target_heads = list(steps["target_heads"])
        outcome.to_revision = _joined(outcome.target_heads)
        findings: list[Finding] = []
        sql_by_rev: dict[str, str] = {}
        unavailable: tuple[str, str] | None = None  # (first revision without SQL, why)
        if pending and (want_sql or (lint and direction == "upgrade")):
            sql_by_rev, unavailable = self._offline_sql(direction, target, start, outcome)
        if unavailable is not None:
            outcome.warnings.append(
                f"the offline SQL (--sql) of revision {unavailable[0]} and the pending"
                f" revisions after it could not be generated, so it was not linted:"
                f" {unavailable[1]}")
        if want_sql:
            outcome.sql = [{"revision": rev, "sql": sql_by_rev.get(rev, "")}
                           for rev in pending]
        if lint and direction == "upgrade":
            for rev in pending:
                info = script.get(rev)
                findings += lint_revision(rev, info.get("path"), sql_by_rev.get(rev),
                                          info["has_downgrade"], policy)
            outcome.lint = [f.to_dict() for f in findings]
            strict = sorted(rule for rule, value in policy.items()
                            if value == "fail" and rule not in SQL_FREE_RULES)
            if unavailable is not None and strict:
                # A fail policy that cannot see the SQL must not let it through unseen.
                raise LintFailedError(
                    f"cannot lint revision {unavailable[0]}: {unavailable[1]}; its offline"
                    f" SQL (--sql) could not be generated, and lint_policy sets"
                    f" {', '.join(strict)} to fail, so the {direction} was refused before"
                    " anything ran. Set those policies to warn (or lint to false) to run it"
                    " unlinted, or make the migration offline-capable (no results read from"
                    " op.get_bind() in upgrade(); guard them with context.is_offline_mode())",
                    outcome=outcome, revision=unavailable[0])
        return outcome, start, findings

    def _offline_sql(self, direction: str, target: str, start: str | None,
                     outcome: Outcome) -> tuple[dict[str, str], tuple[str, str] | None]:
        """The offline SQL per pending revision, and (the first revision whose SQL is
        missing, why) or None."""
        pending = outcome.pending
        if start is not None and "," in start:
            return {}, (pending[0], "Alembic's --sql needs a single start revision, and the"
                                    f" database is at {start}")
        heads = outcome.target_heads
        goal = heads[0] if len(heads) == 1 else ("base" if not heads else target)
        answer = self.alembic.call([{"op": "sql", "direction": direction, "start": start,
                                     "target": goal}])["sql"]
        parts = split_offline_sql(answer.get("text") or "")
        if "error" in answer:
            # The step that failed had its marker written but not all of its SQL.
            done = [rev for rev in pending if rev in parts]
            failed = done[-1] if done else pending[0]
            parts.pop(failed, None)
            return parts, (failed, answer["error"]["message"])
        missing = [rev for rev in pending if rev not in parts]
        if missing:
            return parts, (missing[0], "Alembic's --sql output has no step for it")
        return parts, None

    def guarded(self, target: str, guard: Guard) -> tuple[Plan, dict[str, Any], Outcome]:
        """The guard's plan for bringing the schema back to `target`, from the same read the
        downgrade then uses; an outcome that changes nothing for the plans it does not run."""
        if target in ("head", "heads", "base") or target[:1] in "+-" or "@" in target:
            raise MigrateInputError(
                f"with guard, target must be the revision the target release's schema is at"
                f" (its release record's Alembic revision), not {target!r}: the guard plans"
                " between two known revisions")
        read = self.read("downgrade", target)
        script = self.script()
        table = read.get("version_table") or {}
        try:  # the same judgement as schema_guard's, on what Alembic read
            live = live_revision(sorted(read["current"]), table.get("name") or "alembic_version",
                                 table.get("schema"), table.get("exists"),
                                 settings="check url, and version_table in env.py")
        except GuardError as exc:
            raise MigrateError(f"{exc}; nothing was run", current=read["current"]) from None
        known = [rev["revision"] for rev in script.revisions]
        if target not in known:
            # A unique prefix, as Alembic accepts it; an unknown revision stays as given (the
            # guard turns to the backup for it).
            matches = [rev for rev in known if rev.startswith(target)]
            target = matches[0] if len(matches) == 1 else target
        try:
            decision = guard_plan(live, target, script.history(), guard.backup, guard.prefer)
        except GuardError as exc:
            raise MigrateInputError(f"cannot decide the schema plan for a rollback to"
                                    f" {target}: {exc}") from None
        heads = sorted(script.heads)
        outcome = Outcome(heads=heads, script_heads=heads, current=live, from_revision=live,
                          to_revision=live, plan=decision.as_dict())
        if decision.action == "blocked":
            raise GuardBlockedError(f"the schema rollback to {target} is blocked:"
                                    f" {decision.reason}", outcome=outcome)
        return decision, read, outcome

    def migrate(self, direction: str, target: str, check_mode: bool, want_sql: bool,
                lint: bool, policy: dict[str, str], compensate: bool = True,
                guard: Guard | None = None) -> Outcome:
        if not check_mode:
            # The offline SQL, the run and the read after it share one helper process, which
            # starts while the read-only plan is made (the owner of the Alembic closes it).
            self.alembic.prepare(read_only=False)
        read = None
        decision = None
        if guard is not None and direction == "downgrade":
            decision, read, kept = self.guarded(target, guard)
            if decision.action != "downgrade":
                return kept
        outcome, start, findings = self.plan(direction, target, want_sql, lint, policy, read)
        if decision is not None:
            outcome.plan = decision.as_dict()
        failing = [f for f in findings if f.policy == "fail"]
        if failing:
            raise LintFailedError(
                f"the migration lint stopped the {direction} before anything ran: "
                + "; ".join(f"{f.rule} in revision {f.revision}" for f in failing)
                + " (see lint; set lint_policy to warn to accept them)", outcome=outcome)
        if check_mode or not outcome.pending:
            return outcome
        heads = outcome.target_heads
        # The user's target as Alembic resolves it; an upgrade names the head it planned
        # for (so a relative target cannot move if the database moved meanwhile).
        goal = heads[0] if direction == "upgrade" and len(heads) == 1 else target
        try:
            results = self.alembic.call([{"op": "run", "direction": direction,
                                          "target": goal}, {"op": "current"}])
        except AlembicError as exc:
            self._after_failure(direction, start, outcome, exc, compensate)
        now = sorted(results["current"])
        outcome.current = _joined(now)
        if now != sorted(heads):
            raise MigrationFailedError(
                f"Alembic reported success, but the database is at revision"
                f" {_joined(now) or 'base'}, not {outcome.to_revision or 'base'} (where"
                f" Alembic resolved {target!r} to): check alembic_version and the schema"
                " before anything else runs", outcome=outcome, current=outcome.current)
        outcome.revisions = list(outcome.pending)
        return outcome

    def _after_failure(self, direction: str, start: str | None, outcome: Outcome,
                       error: AlembicError, compensate: bool) -> None:
        """The run failed: bring the database back to ``start`` and raise."""
        failed = error.details.get("running")
        where = f" in revision {failed}" if failed else ""
        script = self.script()
        if failed:
            where += f" ({script.get(failed).get('path')})"
        base_msg = f"{direction} to {outcome.to_revision or 'base'} failed{where}: {error}"
        details = {"outcome": outcome, "failed_revision": failed, "error": str(error),
                   "statement": error.details.get("statement")}
        now = self.current()
        reached = _single(now, "compensation") if direction == "upgrade" else _joined(now)
        outcome.current = reached
        applied = self._between(start, reached, outcome.pending, direction)
        outcome.revisions = applied
        if reached == start:
            raise MigrationFailedError(
                f"{base_msg}; the database is still at revision {start or 'base'}"
                " (nothing was committed)", **details)
        if direction != "upgrade" or not compensate:
            raise MigrationFailedError(
                f"{base_msg}; the database is now at revision {reached} ("
                f"{', '.join(applied) or 'no revision'} applied)", **details)
        blocked = [script.get(rev) for rev in applied
                   if not script.get(rev)["has_downgrade"]]
        if blocked:
            rev = blocked[-1]
            raise MigrationFailedError(
                f"{base_msg}; the database is now at revision {reached} and cannot be"
                f" brought back to {start or 'base'}: revision {rev['revision']}"
                f" ({rev['path']}) has no downgrade step. Restore the backup taken before"
                " the release, or fix the failing revision and upgrade again", **details)
        try:
            results = self.alembic.call([{"op": "run", "direction": "downgrade",
                                          "target": start or "base"}, {"op": "current"}])
            now = _single(results["current"], "compensation")
        except (AlembicError, PgError) as exc:
            now = self._current_or_unknown()
            outcome.current = now
            raise MigrationFailedError(
                f"{base_msg}; undoing the {len(applied)} revision(s) applied before it also"
                f" failed ({exc}): the database is at revision {now}", **details) from None
        outcome.current = now
        if now != start:
            raise MigrationFailedError(
                f"{base_msg}; after undoing the revisions applied before it the database is at"
                f" revision {now}, not {start or 'base'}", **details)
        outcome.compensated = True
        outcome.revisions = []
        raise MigrationFailedError(
            f"{base_msg}; the {len(applied)} revision(s) applied before it"
            f" ({', '.join(applied)}) were downgraded again: the database is back at revision"
            f" {start or 'base'}", **details)

    def _current_or_unknown(self) -> str:
        try:
            return _single(self.current(), "reporting") or "base"
        except PgError as exc:
            return f"unknown (reading it failed: {exc})"

    @staticmethod
    def _between(start: str | None, reached: str | None, pending: list[str],
                 direction: str) -> list[str]:
        """The pending revisions that were applied to get from ``start`` to ``reached``."""
        if reached == start:
            return []
        if direction == "upgrade":
            return pending[:pending.index(reached) + 1] if reached in pending else []
        # Downgrade steps are named by the revision they remove.
        applied = []
        for rev in pending:
            if rev == reached:
                break
            applied.append(rev)
        return applied
