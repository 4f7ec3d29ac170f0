# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Alembic migrations: the downgrade detection, the URL and session options, the offline
SQL split, the helper script (run for real on the reference app, offline) and the
compensation logic (with a scripted stand-in for the helper)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._pg import migrate
from ansible_collections.prodready.deploy.plugins.module_utils._pg.conn import ConnParams
from ansible_collections.prodready.deploy.plugins.module_utils._pg.migrate import (
    Alembic,
    AlembicError,
    Guard,
    GuardBlockedError,
    LintFailedError,
    MigrateError,
    MigrateInputError,
    MigrationFailedError,
    Migrator,
    MultipleHeadsError,
    NoDowngradeError,
    Settings,
    has_downgrade,
    split_offline_sql,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.sqllint import (
    resolve_policy,
)

APP = Path(__file__).resolve().parents[5] / "tests" / "app"
CHAIN = ["0001_initial", "0002_users_email_idx", "0003_backfill_email_domain"]
SECRET = "s3cr:et/pw@x"


@pytest.mark.parametrize(("source", "expected"), [
    ("def downgrade():\n    op.drop_table('t')\n", True),
    ("def upgrade():\n    pass\n", False),
    ("def downgrade():\n    pass\n", False),
    ("def downgrade():\n    '''Nothing to do.'''\n", False),
    ("def downgrade():\n    ...\n", False),
    ("def downgrade() -> None:\n    '''Irreversible.'''\n    pass\n", False),
    ("def downgrade():\n    raise NotImplementedError\n", False),
    ("def downgrade():\n    raise NotImplementedError('data is gone')\n", False),
    ("def downgrade():\n    '''x'''\n    raise NotImplementedError()\n", False),
    ("def downgrade():\n    raise RuntimeError('no')\n", True),
    ("def downgrade():\n    if False:\n        raise NotImplementedError\n    op.f()\n", True),
    ("def downgrade():\n    pass\n\n\ndef downgrade():\n    op.f()\n", True),
    ("this is not python (\n", True),
])
def test_has_downgrade(tmp_path, source, expected):
    path = tmp_path / "rev.py"
    path.write_text(source)
    assert has_downgrade(str(path)) is expected


def test_has_downgrade_of_the_reference_app():
    assert all(has_downgrade(str(p)) for p in (APP / "migrations/versions").glob("*.py"))


def settings(**kw: Any) -> Settings:
    conn = kw.pop("conn", ConnParams(host="db.example", port=5433, user="app@x",
                                     password=SECRET, dbname="shop",
                                     options={"sslmode": "verify-full",
                                              "sslrootcert": "/ca.crt"}))
    return Settings(config=str(APP / "alembic.ini"), conn=conn, **kw)


def test_url_carries_connection_settings_and_timeouts():
    url = settings(driver="psycopg2", lock_timeout="2s").url()
    assert url.startswith("postgresql+psycopg2://app%40x:s3cr%3Aet%2Fpw%40x@db.example:5433/"
                          "shop?")
    assert "sslmode=verify-full" in url and "sslrootcert=%2Fca.crt" in url
    assert "options=-c%20lock_timeout%3D2s%20-c%20statement_timeout%3D15min" in url
    assert "application_name=prodready.deploy.alembic" in url


def test_url_for_a_socket_and_ipv6_and_read_only():
    sock = settings(conn=ConnParams(host="/run/pg", user="u", dbname="d")).url(read_only=True)
    assert sock.startswith("postgresql://u@/d?") and "host=%2Frun%2Fpg" in sock
    assert "default_transaction_read_only%3Don" in sock
    assert "@[::1]:5432/" in settings(conn=ConnParams(host="::1", user="u", dbname="d")).url()


def test_pgoptions_keep_the_callers_options():
    conn = ConnParams(host="h", dbname="d", options={"options": "-c search_path=app"})
    assert settings(conn=conn).pgoptions() == (
        "-c search_path=app -c lock_timeout=5s -c statement_timeout=15min")


def test_secrets_cover_password_url_and_env():
    s = settings(env={"SECRET_KEY": "0123456789abcdef", "PIN": "k9", "EMPTY": ""})
    secrets = s.secrets()
    assert SECRET in secrets and "s3cr%3Aet%2Fpw%40x" in secrets and s.url() in secrets
    assert "0123456789abcdef" in secrets and "k9" in secrets and "" not in secrets
    text = f"failed for {s.url()} with {SECRET} and 0123456789abcdef"
    assert migrate.scrub(text, secrets) == "failed for ******** with ******** and ********"


@pytest.mark.parametrize(("kw", "message"), [
    ({"config": "/nope/alembic.ini"}, "the Alembic config /nope/alembic.ini does not exist"),
    ({"lock_timeout": "5 s"}, "option lock_timeout: '5 s' is not a PostgreSQL duration"),
    ({"statement_timeout": "1s -c x=y"}, "option statement_timeout"),
    ({"url_env": "PGOPTIONS"}, "option url_env: PGOPTIONS is set by this module"),
    ({"python": "/nope/python"}, "option python: /nope/python is not an executable"),
    ({"chdir": "/nope"}, "option chdir: /nope is not a directory"),
])
def test_settings_check(kw, message):
    s = settings()
    for key, value in kw.items():
        setattr(s, key, value)
    with pytest.raises(MigrateInputError, match=message.replace("(", r"\(")):
        s.check()


@pytest.mark.parametrize("value", ["0", "5s", "500ms", "15min", "1h", "250"])
def test_settings_accept_durations(value):
    settings(lock_timeout=value, statement_timeout=value).check()


UPGRADE_SQL = textwrap.dedent("""\
    BEGIN;

    CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL);

    -- Running upgrade  -> 0001_initial

    CREATE TABLE users (id int);

    INSERT INTO alembic_version (version_num) VALUES ('0001_initial');

    COMMIT;

    BEGIN;

    -- Running upgrade 0001_initial -> 0002_idx

    COMMIT;

    CREATE INDEX CONCURRENTLY ix ON users (id);

    BEGIN;

    UPDATE alembic_version SET version_num='0002_idx';

    COMMIT;
""")


def test_split_offline_sql_upgrade():
    parts = split_offline_sql(UPGRADE_SQL)
    assert list(parts) == ["0001_initial", "0002_idx"]
    assert parts["0001_initial"].startswith("BEGIN;\n\nCREATE TABLE alembic_version")
    assert "CREATE TABLE users" in parts["0001_initial"]
    assert parts["0001_initial"].rstrip().endswith("COMMIT;")
    assert parts["0002_idx"].startswith("BEGIN;\n\nCOMMIT;")
    assert "CREATE INDEX CONCURRENTLY" in parts["0002_idx"]


def test_split_offline_sql_downgrade_keys_by_the_removed_revision():
    text = ("BEGIN;\n\n-- Running downgrade 0002_idx -> 0001_initial\n\nDROP INDEX ix;\n\n"
            "COMMIT;\n\nBEGIN;\n\n-- Running downgrade 0001_initial -> \n\nDROP TABLE users;\n"
            "\nCOMMIT;\n")
    parts = split_offline_sql(text)
    assert list(parts) == ["0002_idx", "0001_initial"]
    assert "DROP INDEX ix" in parts["0002_idx"] and "DROP TABLE" not in parts["0002_idx"]


def test_split_offline_sql_without_markers():
    assert split_offline_sql("") == {}


# The helper script, run by this interpreter on the reference app: offline operations only.

@pytest.fixture
def offline() -> Alembic:
    return Alembic(Settings(config=str(APP / "alembic.ini")), python=sys.executable)


def test_helper_reads_the_scripts(offline):
    info = offline.call([{"op": "script"}])["script"]
    assert [r["revision"] for r in info["revisions"]] == CHAIN
    assert info["heads"] == [CHAIN[-1]]
    assert info["revisions"][1]["down_revisions"] == [CHAIN[0]]
    assert info["revisions"][0]["doc"] == "Create users and audit_log."
    assert info["revisions"][2]["is_head"] is True
    assert offline.commands == []


@pytest.mark.parametrize(("direction", "target", "current", "expected"), [
    ("upgrade", "head", [], CHAIN),
    ("upgrade", "head", [CHAIN[0]], CHAIN[1:]),
    ("upgrade", "+1", [CHAIN[0]], CHAIN[1:2]),
    ("upgrade", "head", [CHAIN[-1]], []),
    ("downgrade", "base", [CHAIN[-1]], CHAIN[::-1]),
    ("downgrade", CHAIN[0], [CHAIN[-1]], CHAIN[:0:-1]),
    ("downgrade", "-1", [CHAIN[-1]], CHAIN[-1:]),
])
def test_helper_steps(offline, direction, target, current, expected):
    steps = offline.call([{"op": "steps", "direction": direction, "target": target,
                           "current": current}])["steps"]
    after = [rev for rev in CHAIN if rev not in expected] if direction == "downgrade" \
        else [rev for rev in CHAIN if rev in expected or rev in current]
    assert steps == {"revisions": expected, "target_heads": after[-1:]}


def test_helper_steps_report_an_unknown_target(offline):
    steps = offline.call([{"op": "steps", "direction": "upgrade", "target": "zz",
                           "current": []}])["steps"]
    assert "zz" in steps["error"]["message"]


def test_helper_offline_sql(offline):
    answer = offline.call([{"op": "sql", "direction": "upgrade", "start": CHAIN[0],
                            "target": CHAIN[-1]}])["sql"]
    parts = split_offline_sql(answer["text"])
    assert list(parts) == CHAIN[1:]
    assert "ADD COLUMN email_domain" in parts[CHAIN[2]]
    assert offline.commands == [f"alembic -c {APP / 'alembic.ini'} upgrade"
                                f" {CHAIN[0]}:{CHAIN[-1]} --sql"]


def test_helper_failure_is_an_error_with_the_cause(tmp_path):
    ini = tmp_path / "alembic.ini"
    ini.write_text("[alembic]\nscript_location = %(here)s/missing\n")
    alembic = Alembic(Settings(config=str(ini)), python=sys.executable)
    with pytest.raises(AlembicError, match="missing"):
        alembic.call([{"op": "script"}])


def test_helper_without_alembic_says_so(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'No module named alembic' >&2\nexit 1\n")
    fake.chmod(0o755)
    alembic = Alembic(Settings(config=str(APP / "alembic.ini")), python=str(fake))
    with pytest.raises(AlembicError, match="did not answer .exit code 1.*No module named"
                                           " alembic.*option python"):
        alembic.call([{"op": "script"}])


def offline_session(alembic: Alembic, python: str = sys.executable) -> migrate._Session:
    """A read-write session on the offline environment (no database in the unit tier)."""
    env = {**os.environ, "DATABASE_URL": "postgresql://offline.invalid/x"}
    session = migrate._Session(python, env, alembic.settings.workdir)
    alembic._sessions[False] = session
    return session


def test_a_session_answers_call_after_call_in_one_process(offline):
    session = offline_session(offline)
    try:
        pid = session.proc.pid
        first = offline.call([{"op": "sql", "direction": "upgrade", "start": CHAIN[0],
                               "target": CHAIN[1]}])["sql"]
        second = offline.call([{"op": "sql", "direction": "upgrade", "start": CHAIN[1],
                                "target": CHAIN[2]}])["sql"]
        assert list(split_offline_sql(first["text"])) == [CHAIN[1]]
        assert list(split_offline_sql(second["text"])) == [CHAIN[2]]
        # The same helper answered both and still waits for more.
        assert session.alive and session.proc.poll() is None and session.proc.pid == pid
        assert session.offsets["stderr"] > 0  # Alembic's log lines went to its file
        # A call without a database op (the script) does not need the session's environment.
        assert offline.call([{"op": "script"}])["script"]["heads"] == [CHAIN[-1]]
    finally:
        offline.close()
    assert session.proc.returncode == 0
    assert not Path(session.tmpdir).exists()


def test_a_session_whose_helper_died_says_so(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'No module named alembic' >&2\nexit 3\n")
    fake.chmod(0o755)
    alembic = Alembic(Settings(config=str(APP / "alembic.ini")), python=str(fake))
    offline_session(alembic, str(fake))
    try:
        with pytest.raises(AlembicError, match="did not answer .exit code 3.*No module named"
                                               " alembic"):
            alembic.call([{"op": "sql", "direction": "upgrade", "target": CHAIN[0]}])
    finally:
        alembic.close()


def tiny_project(tmp_path: Path, env_py: str) -> Path:
    """An Alembic project of one revision whose env.py is `env_py`."""
    (tmp_path / "m" / "versions").mkdir(parents=True)
    (tmp_path / "alembic.ini").write_text("[alembic]\nscript_location = %(here)s/m\n")
    (tmp_path / "m" / "script.py.mako").write_text("")
    (tmp_path / "m" / "env.py").write_text(textwrap.dedent(env_py))
    (tmp_path / "m" / "versions" / "a1.py").write_text(
        "revision = 'a1'\ndown_revision = None\n\n\ndef upgrade():\n    pass\n\n\n"
        "def downgrade():\n    pass\n")
    return tmp_path / "alembic.ini"


TALKATIVE_ENV_PY = """
    import os
    import sys
    from alembic import context
    print("STDOUT-LINE from env.py")
    print("STDERR-LINE from env.py", file=sys.stderr)
    # Some env.py read the URL and drop it from the environment.
    url = os.environ.pop("DATABASE_URL")
    os.chdir("/")
    if not context.is_offline_mode():
        raise RuntimeError("no database in the unit tier")
    context.configure(url=url, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
"""


def test_each_request_of_a_session_starts_from_the_sessions_environment(tmp_path):
    ini = tiny_project(tmp_path, TALKATIVE_ENV_PY)
    alembic = Alembic(Settings(config=str(ini)), python=sys.executable)
    session = offline_session(alembic)
    try:
        op = {"op": "sql", "direction": "upgrade", "target": "a1"}
        first = alembic.call([op])["sql"]
        second = alembic.call([op])["sql"]  # DATABASE_URL and the directory are back
        assert "error" not in first and "error" not in second, second
        assert session.alive
    finally:
        alembic.close()


def test_a_session_logs_stderr_only_and_retires_after_a_failed_request(tmp_path):
    ini = tiny_project(tmp_path, TALKATIVE_ENV_PY)
    alembic = Alembic(Settings(config=str(ini)), python=sys.executable)
    session = offline_session(alembic)
    try:
        with pytest.raises(AlembicError, match="no database in the unit tier"):
            alembic.call([{"op": "run", "direction": "upgrade", "target": "head"}])
        # As with a helper of its own: stderr makes the log, stdout (a migration's prints)
        # stays out of the result.
        assert any("STDERR-LINE" in line for line in alembic.log)
        assert not any("STDOUT-LINE" in line for line in alembic.log)
        # The process that failed answers nothing more: the next call has one of its own.
        assert not session.alive and alembic._sessions == {}
        answer = alembic.call([{"op": "sql", "direction": "upgrade", "target": "a1"}])["sql"]
        assert "error" not in answer
    finally:
        alembic.close()


def test_a_helper_that_dies_in_a_request_is_reported_and_reaped(tmp_path):
    ini = tiny_project(tmp_path, """
        import os
        os._exit(7)
    """)
    alembic = Alembic(Settings(config=str(ini)), python=sys.executable)
    session = offline_session(alembic)
    try:
        with pytest.raises(AlembicError, match="did not answer .exit code 7"):
            alembic.call([{"op": "sql", "direction": "upgrade", "target": "a1"}])
        assert not session.alive and session.proc.returncode == 7
    finally:
        alembic.close()
    assert not Path(session.tmpdir).exists()


def test_prepare_starts_a_session_with_the_real_runner_and_a_database():
    alembic = Alembic(Settings(config=str(APP / "alembic.ini"),
                               conn=ConnParams(host="db", dbname="app", user="app")),
                      python=sys.executable)
    alembic.prepare(read_only=False)
    alembic.prepare(read_only=False)  # one per environment, however often it is asked
    try:
        assert list(alembic._sessions) == [False]
        session = alembic._sessions[False]
        assert session.alive and session.proc.poll() is None
    finally:
        alembic.close()
    assert alembic._sessions == {} and session.proc.returncode == 0


def test_prepare_starts_no_session_for_a_scripted_runner_or_without_a_database(offline):
    offline.prepare(read_only=False)  # no connection settings: nothing to prepare
    assert offline._sessions == {}
    scripted = Alembic(Settings(config=str(APP / "alembic.ini")), python=sys.executable,
                       runner=lambda argv, env, cwd: subprocess.CompletedProcess(argv, 0))
    scripted.settings.conn = ConnParams(host="db", dbname="app", user="app")
    scripted.prepare(read_only=False)
    assert scripted._sessions == {}


# Planning and compensation, with a scripted stand-in for the helper.

REVS = [
    {"revision": "a", "down_revisions": [], "path": "/v/a.py", "is_head": False, "doc": ""},
    {"revision": "b", "down_revisions": ["a"], "path": "/v/b.py", "is_head": False,
     "doc": ""},
    {"revision": "c", "down_revisions": ["b"], "path": "/v/c.py", "is_head": True, "doc": ""},
]


class FakeAlembic:
    """Answers like the helper; ``db`` is the current revision list, ``fail_at`` makes an
    upgrade stop with an error after committing the revisions before it."""

    def __init__(self, current: list[str], heads: list[str] | None = None,
                 fail_at: str | None = None, downgrade_fails: bool = False,
                 sql_fails_at: str | None = None, lands_at: list[str] | None = None,
                 table_exists: bool | None = True) -> None:
        self.settings = Settings(config="/app/alembic.ini")
        self.db = current
        self.heads = heads or ["c"]
        self.fail_at = fail_at
        self.downgrade_fails = downgrade_fails
        self.sql_fails_at = sql_fails_at  # --sql stops in this revision (online-only)
        self.lands_at = lands_at  # where a run really leaves alembic_version
        self.table_exists = table_exists  # None: the helper could not tell
        self.calls: list[list[str]] = []
        self.prepared: list[bool] = []

    def prepare(self, read_only: bool = False) -> None:
        self.prepared.append(read_only)

    def order(self) -> list[str]:
        return [r["revision"] for r in REVS]

    def call(self, ops: list[dict[str, Any]], read_only: bool = False) -> dict[str, Any]:
        self.calls.append([op["op"] + (f" {op['direction']} {op['target']}"
                                       if op["op"] == "run" else "") for op in ops])
        results: dict[str, Any] = {}
        for op in ops:
            if op["op"] == "script":
                results["script"] = {"revisions": REVS, "heads": self.heads}
            elif op["op"] == "current":
                results["current"] = list(self.db)
                results["version_table"] = {"name": "alembic_version", "schema": None,
                                            "exists": self.table_exists}
            elif op["op"] == "steps":
                try:
                    results["steps"] = {"revisions": self._steps(op["direction"],
                                                                 op["target"]),
                                        "target_heads": self._after(op["direction"],
                                                                    op["target"])}
                except ValueError as exc:
                    results["steps"] = {"error": {"message": str(exc)}}
            elif op["op"] == "sql":
                results["sql"] = self._sql(op["target"])
            elif op["op"] == "run":
                self._run(op["direction"], op["target"])
                if self.lands_at is not None:
                    self.db = list(self.lands_at)
        return results

    def _resolve(self, target: str) -> str:
        """A unique prefix names its revision, as Alembic has it."""
        matches = [rev for rev in self.order() if rev.startswith(target)]
        return matches[0] if target not in self.order() and len(matches) == 1 else target

    def _after(self, direction: str, target: str) -> list[str]:
        target = self._resolve(target)
        if direction == "upgrade":
            return [self.order()[-1] if target == "head" else target]
        return [] if target == "base" else [target]

    def _sql(self, target: str) -> dict[str, Any]:
        text = ""
        for rev in self._steps("upgrade", target):
            text += f"-- Running upgrade x -> {rev}\n\n"
            if rev == self.sql_fails_at:
                return {"text": text, "error": {"message": "TypeError: 'NoneType' object"
                                                           " is not subscriptable"}}
            text += f"ALTER TABLE t DROP COLUMN {rev};\n\n"
        return {"text": text}

    def _steps(self, direction: str, target: str) -> list[str]:
        target = self._resolve(target)
        order = self.order()
        at = order.index(self.db[0]) if self.db else -1
        if direction == "upgrade":
            goal = len(order) - 1 if target == "head" else order.index(target)
            return order[at + 1:goal + 1]
        goal = -1 if target == "base" else order.index(target)
        return order[goal + 1:at + 1][::-1]

    def _run(self, direction: str, target: str) -> None:
        for rev in self._steps(direction, target):
            if direction == "upgrade" and rev == self.fail_at:
                raise AlembicError("ProgrammingError: boom", running=rev)
            if direction == "downgrade" and self.downgrade_fails:
                raise AlembicError("downgrade broke", running=rev)
            order = self.order()
            if direction == "upgrade":
                self.db = [rev]
            else:
                i = order.index(rev)
                self.db = [order[i - 1]] if i else []


@pytest.fixture
def no_downgrade(monkeypatch):
    """Revisions (by name) whose files have no downgrade step."""
    missing: set[str] = set()
    monkeypatch.setattr(migrate, "has_downgrade",
                        lambda path: path is None or Path(path).stem not in missing)
    monkeypatch.setattr(Migrator, "preflight", lambda self: None)
    return missing


def migrator(fake: FakeAlembic) -> Migrator:
    return Migrator(fake)  # type: ignore[arg-type]


def upgrade(fake: FakeAlembic, check: bool = False, policy: dict[str, str] | None = None):
    return migrator(fake).migrate("upgrade", "head", check_mode=check, want_sql=check,
                                  lint=True, policy=resolve_policy(policy))


def test_upgrade_plans_lints_runs(no_downgrade):
    fake = FakeAlembic(["a"])
    outcome = upgrade(fake)
    assert (outcome.from_revision, outcome.to_revision, outcome.current) == ("a", "c", "c")
    assert outcome.pending == outcome.revisions == ["b", "c"]
    assert [f["rule"] for f in outcome.lint] == ["drop-column", "drop-column"]
    assert fake.calls[-1] == ["run upgrade c", "current"]
    assert fake.prepared == [False]  # the read-write session starts before the plan


def test_check_mode_runs_nothing(no_downgrade):
    fake = FakeAlembic(["a"])
    outcome = upgrade(fake, check=True)
    assert outcome.changed and outcome.revisions == []
    assert fake.prepared == []
    assert [s["revision"] for s in outcome.sql] == ["b", "c"]
    assert not any(call[0].startswith("run") for call in fake.calls)
    assert fake.db == ["a"]


def test_at_head_nothing_runs(no_downgrade):
    fake = FakeAlembic(["c"])
    outcome = upgrade(fake)
    assert not outcome.changed and outcome.pending == []
    assert len(fake.calls) == 1


def test_a_fail_finding_stops_before_running(no_downgrade):
    fake = FakeAlembic(["a"])
    with pytest.raises(LintFailedError, match="drop-column in revision b; drop-column in"
                                              " revision c"):
        upgrade(fake, policy={"drop-column": "fail"})
    assert fake.db == ["a"]


def test_multiple_heads_named(no_downgrade):
    with pytest.raises(MultipleHeadsError, match=r"2 heads \(c, d\)"):
        upgrade(FakeAlembic(["a"], heads=["d", "c"]))


def test_database_at_an_unknown_revision(no_downgrade):
    with pytest.raises(migrate.MigrateError, match="at revision zz, which these migrations"
                                                   " do not contain"):
        upgrade(FakeAlembic(["zz"]))


def test_failure_is_compensated(no_downgrade):
    fake = FakeAlembic(["a"], fail_at="c")
    with pytest.raises(MigrationFailedError) as info:
        upgrade(fake)
    assert fake.db == ["a"]
    outcome = info.value.details["outcome"]
    assert outcome.compensated is True and outcome.current == "a" and outcome.revisions == []
    assert info.value.details["failed_revision"] == "c"
    assert "failed in revision c (/v/c.py): ProgrammingError: boom" in str(info.value)
    assert "(b) were downgraded again: the database is back at revision a" in str(info.value)
    assert fake.calls[-1] == ["run downgrade a", "current"]


def test_failure_from_base_is_compensated_to_base(no_downgrade):
    fake = FakeAlembic([], fail_at="c")
    with pytest.raises(MigrationFailedError, match="back at revision base"):
        upgrade(fake)
    assert fake.db == []


def test_failure_in_the_first_revision_needs_no_compensation(no_downgrade):
    fake = FakeAlembic(["a"], fail_at="b")
    with pytest.raises(MigrationFailedError, match="still at revision a .nothing was"
                                                   " committed"):
        upgrade(fake)
    assert not any(call[0].startswith("run downgrade") for call in fake.calls)


def test_failure_after_a_revision_without_downgrade(no_downgrade):
    no_downgrade.add("b")
    fake = FakeAlembic(["a"], fail_at="c")
    with pytest.raises(MigrationFailedError) as info:
        upgrade(fake)
    message = str(info.value)
    assert "the database is now at revision b and cannot be brought back to a" in message
    assert "revision b (/v/b.py) has no downgrade step" in message
    assert fake.db == ["b"]
    assert info.value.details["outcome"].compensated is False


def test_failed_compensation_says_where_the_database_is(no_downgrade):
    fake = FakeAlembic(["a"], fail_at="c", downgrade_fails=True)
    with pytest.raises(MigrationFailedError, match="also failed .*downgrade broke.*: the"
                                                   " database is at revision b"):
        upgrade(fake)


def test_compensate_false_leaves_the_revisions(no_downgrade):
    fake = FakeAlembic(["a"], fail_at="c")
    with pytest.raises(MigrationFailedError, match="now at revision b .b applied"):
        migrator(fake).migrate("upgrade", "head", False, False, True, resolve_policy({}),
                               compensate=False)


def test_downgrade_through_a_revision_without_downgrade_is_refused(no_downgrade):
    no_downgrade.add("b")
    fake = FakeAlembic(["c"])
    with pytest.raises(NoDowngradeError, match=r"revision b \(/v/b.py\) has no downgrade"
                                               " step.*from c to a; nothing was run"):
        migrator(fake).migrate("downgrade", "a", False, False, False, resolve_policy({}))
    assert fake.db == ["c"]


def test_downgrade(no_downgrade):
    fake = FakeAlembic(["c"])
    outcome = migrator(fake).migrate("downgrade", "a", False, False, False,
                                     resolve_policy({}))
    assert (outcome.from_revision, outcome.to_revision, outcome.revisions) == ("c", "a",
                                                                               ["c", "b"])
    assert fake.db == ["a"]


def guarded(fake: FakeAlembic, target: str, guard: Guard, check: bool = False):
    return migrator(fake).migrate("downgrade", target, check, False, False, resolve_policy({}),
                                  guard=guard)


BACKUP_AT_A = {"backup_id": "pre", "alembic_revision": "a", "sha256": "f" * 64,
               "path": "/b/pre.json"}


def test_guarded_downgrade_runs_when_the_guard_plans_one(no_downgrade):
    fake = FakeAlembic(["c"])
    outcome = guarded(fake, "a", Guard(backup=BACKUP_AT_A))
    assert outcome.plan["action"] == "downgrade" and outcome.plan["steps"] == ["c", "b"]
    assert (outcome.from_revision, outcome.to_revision, outcome.revisions) == ("c", "a",
                                                                               ["c", "b"])
    assert fake.db == ["a"]
    # One read for the guard and the plan, one run: no separate history read.
    assert fake.calls == [["script", "current", "steps"], ["run downgrade a", "current"]]
    assert outcome.as_result()["plan"]["to_revision"] == "a"


def test_guarded_downgrade_in_check_mode_runs_nothing(no_downgrade):
    """As the module calls it in check mode: the offline SQL from the same read."""
    fake = FakeAlembic(["c"])
    outcome = migrator(fake).migrate("downgrade", "a", True, True, False, resolve_policy({}),
                                     guard=Guard())
    assert outcome.plan["action"] == "downgrade" and outcome.pending == ["c", "b"]
    assert [part["revision"] for part in outcome.sql] == ["c", "b"]
    assert fake.db == ["c"] and fake.calls == [["script", "current", "steps"], ["sql"]]


def test_guard_refuses_two_applied_heads(no_downgrade):
    """Joined, they would be a revision the graph lacks, and the guard would restore."""
    fake = FakeAlembic(["b", "c"])
    with pytest.raises(MigrateError, match=r"the version table alembic_version holds 2"
                                           r" revisions \(b, c\): several heads are applied;"
                                           r" merge them .*; nothing was run$"):
        guarded(fake, "a", Guard(backup=BACKUP_AT_A))
    assert fake.db == ["b", "c"] and len(fake.calls) == 1


def test_guard_refuses_a_missing_version_table(no_downgrade):
    """No table reads like an empty one: the wrong database, not a schema at base."""
    fake = FakeAlembic([], table_exists=False)
    with pytest.raises(MigrateError, match="the version table alembic_version does not exist"
                                           " in the search path: .*wrong database \\(or check"
                                           " url, and version_table in env.py\\); nothing was"
                                           " run$"):
        guarded(fake, "a", Guard(backup=BACKUP_AT_A))
    # Unknown (the helper could not tell): an empty table, as before.
    outcome = guarded(FakeAlembic([], table_exists=None), "a", Guard())
    assert outcome.plan["action"] == "upgrade"


@pytest.mark.parametrize("target", ["head", "base", "-1", "+1", "", "heads", "branch@head"])
def test_guard_needs_a_revision_for_a_target(no_downgrade, target):
    fake = FakeAlembic(["c"])
    with pytest.raises(MigrateInputError, match="with guard, target must be the revision"):
        guarded(fake, target, Guard())
    assert fake.calls == []


def test_guard_resolves_a_unique_prefix(no_downgrade, monkeypatch):
    revs = [dict(rev, revision=f"{rev['revision']}_long",
                 down_revisions=[f"{d}_long" for d in rev["down_revisions"]]) for rev in REVS]
    monkeypatch.setattr(sys.modules[__name__], "REVS", revs)

    class Long(FakeAlembic):
        def order(self) -> list[str]:
            return [r["revision"] for r in revs]

    fake = Long(["c_long"], heads=["c_long"])
    outcome = guarded(fake, "a_l", Guard())
    assert outcome.plan["action"] == "downgrade" and outcome.plan["to_revision"] == "a_long"
    assert fake.db == ["a_long"]


def test_guard_plans_a_restore_when_a_step_has_no_downgrade(no_downgrade):
    no_downgrade.add("b")
    fake = FakeAlembic(["c"])
    outcome = guarded(fake, "a", Guard(backup=BACKUP_AT_A))
    assert outcome.plan["action"] == "restore" and outcome.plan["backup_id"] == "pre"
    assert (outcome.changed, outcome.revisions, outcome.current) == (False, [], "c")
    assert fake.db == ["c"] and fake.calls == [["script", "current", "steps"]]


def test_guard_prefers_the_restore_when_asked(no_downgrade):
    fake = FakeAlembic(["c"])
    outcome = guarded(fake, "a", Guard(backup=BACKUP_AT_A, prefer="restore"))
    assert outcome.plan["action"] == "restore" and fake.db == ["c"]


def test_guard_at_the_target_changes_nothing(no_downgrade):
    fake = FakeAlembic(["a"])
    outcome = guarded(fake, "a", Guard())
    assert outcome.plan["action"] == "none" and not outcome.changed and fake.db == ["a"]


def test_guard_plans_a_restore_for_a_revision_the_scripts_do_not_know(no_downgrade):
    """A database at a revision the scripts lack would stop a plain downgrade; the guard
    turns to the backup instead."""
    fake = FakeAlembic(["z"])
    outcome = guarded(fake, "a", Guard(backup=BACKUP_AT_A))
    assert outcome.plan["action"] == "restore" and "live revision z" in outcome.plan["reason"]


def test_guard_blocked_fails_saying_why_and_runs_nothing(no_downgrade):
    no_downgrade.add("b")
    fake = FakeAlembic(["c"])
    with pytest.raises(GuardBlockedError, match=r"the schema rollback to a is blocked: .*b has"
                                                r" no downgrade step.*no backup was given"
                       ) as info:
        guarded(fake, "a", Guard())
    assert info.value.details["outcome"].plan["action"] == "blocked"
    assert fake.db == ["c"]


def test_guard_with_a_malformed_backup_is_an_input_error(no_downgrade):
    with pytest.raises(MigrateInputError, match="cannot decide the schema plan for a rollback"
                                                " to a: backup has no backup_id"):
        guarded(FakeAlembic(["c"]), "a", Guard(backup={"alembic_revision": "a"}))


# A downgrade goes where Alembic resolves the target, and no further.

def merge_app(tmp_path: Path) -> Path:
    """The reference app plus 0004_x and 0004_y on the head and 0005_m merging them."""
    root = tmp_path / "app"
    root.mkdir()
    (root / "alembic.ini").write_text((APP / "alembic.ini").read_text())
    shutil.copytree(APP / "migrations", root / "migrations",
                    ignore=shutil.ignore_patterns("__pycache__"))
    for rev, down in (("0004_x", repr(CHAIN[-1])), ("0004_y", repr(CHAIN[-1])),
                      ("0005_m", "('0004_x', '0004_y')")):
        (root / "migrations" / "versions" / f"{rev}.py").write_text(
            f"from alembic import op\nrevision = {rev!r}\ndown_revision = {down}\n"
            "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n"
            "    op.execute('SELECT 1')\n\n\ndef downgrade():\n    op.execute('SELECT 2')\n")
    return root


@pytest.mark.parametrize(("target", "pending", "after"), [
    ("0004_x", ["0005_m"], ["0004_x", "0004_y"]),
    (CHAIN[-1], ["0005_m", "0004_x", "0004_y"], [CHAIN[-1]]),
    ("base", ["0005_m", "0004_x", "0004_y", *CHAIN[::-1]], []),
])
def test_helper_resolves_a_downgrade_from_a_merge(tmp_path, target, pending, after):
    alembic = Alembic(Settings(config=str(merge_app(tmp_path) / "alembic.ini")),
                      python=sys.executable)
    steps = alembic.call([{"op": "steps", "direction": "downgrade", "target": target,
                           "current": ["0005_m"]}])["steps"]
    assert sorted(steps["revisions"]) == sorted(pending)
    assert steps["target_heads"] == after


MERGE_REVS = [
    {"revision": "a", "down_revisions": [], "path": "/v/a.py", "is_head": False, "doc": ""},
    {"revision": "x", "down_revisions": ["a"], "path": "/v/x.py", "is_head": False,
     "doc": ""},
    {"revision": "y", "down_revisions": ["a"], "path": "/v/y.py", "is_head": False,
     "doc": ""},
    {"revision": "m", "down_revisions": ["x", "y"], "path": "/v/m.py", "is_head": True,
     "doc": ""},
]


class MergeFake(FakeAlembic):
    """At the merge m of x and y; Alembic resolves ``downgrade x`` to removing m only."""

    def __init__(self) -> None:
        super().__init__(["m"], heads=["m"])
        self.runs: list[str] = []

    def call(self, ops: list[dict[str, Any]], read_only: bool = False) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for op in ops:
            if op["op"] == "script":
                results["script"] = {"revisions": MERGE_REVS, "heads": ["m"]}
            elif op["op"] == "current":
                results["current"] = list(self.db)
                results["version_table"] = {"name": "alembic_version", "schema": None,
                                            "exists": self.table_exists}
            elif op["op"] == "steps":
                assert op["target"] == "x"
                results["steps"] = {"revisions": ["m"], "target_heads": ["x", "y"]}
            elif op["op"] == "run":
                self.runs.append(f"{op['direction']} {op['target']}")
                self.db = {"x": ["x", "y"], "a": ["a"], "base": []}[op["target"]]
        return results


def test_downgrade_from_a_merge_stops_at_the_target(no_downgrade):
    fake = MergeFake()
    outcome = migrator(fake).migrate("downgrade", "x", False, False, False,
                                     resolve_policy({}))
    assert fake.runs == ["downgrade x"]
    assert fake.db == ["x", "y"]
    assert (outcome.from_revision, outcome.to_revision, outcome.current) == ("m", "x,y",
                                                                             "x,y")
    assert outcome.revisions == ["m"]


def test_downgrade_that_lands_elsewhere_is_an_error(no_downgrade):
    fake = FakeAlembic(["c"], lands_at=[])
    with pytest.raises(MigrationFailedError, match="Alembic reported success, but the"
                                                   " database is at revision base, not a"):
        migrator(fake).migrate("downgrade", "a", False, False, False, resolve_policy({}))
    assert fake.calls[-1] == ["run downgrade a", "current"]


def test_outcome_records_the_script_heads(no_downgrade):
    outcome = upgrade(FakeAlembic(["a"]))
    assert outcome.as_result()["script_heads"] == ["c"]
    assert "target_heads" not in outcome.as_result()


# A fail policy cannot be bypassed by a revision whose offline SQL cannot be generated.

@pytest.mark.parametrize("check", [False, True])
def test_unlintable_revision_with_a_fail_policy_is_refused(no_downgrade, check):
    fake = FakeAlembic(["a"], sql_fails_at="c")
    with pytest.raises(LintFailedError) as info:
        upgrade(fake, check=check, policy={"alter-column-type": "fail"})
    message = str(info.value)
    assert message.startswith("cannot lint revision c: TypeError: 'NoneType' object is not"
                              " subscriptable; ")
    assert "sets alter-column-type to fail" in message
    assert "Set those policies to warn" in message and "offline-capable" in message
    assert info.value.details["outcome"].lint[0]["revision"] == "b"
    assert not any(call[0].startswith("run") for call in fake.calls)
    assert fake.db == ["a"]


@pytest.mark.parametrize("policy", [{}, {"no-downgrade": "fail"},
                                    {"alter-column-type": "ignore"}])
def test_unlintable_revision_without_a_fail_policy_runs_with_a_warning(no_downgrade, policy):
    fake = FakeAlembic(["a"], sql_fails_at="c")
    outcome = upgrade(fake, policy=policy)
    assert fake.db == ["c"]
    assert [f["revision"] for f in outcome.lint] == ["b"]
    assert outcome.warnings == [
        "the offline SQL (--sql) of revision c and the pending revisions after it could not"
        " be generated, so it was not linted: TypeError: 'NoneType' object is not"
        " subscriptable"]


# Secrets are scrubbed whatever their length; the data the logic reads is not.

def test_short_env_values_are_scrubbed_from_log_and_errors(tmp_path):
    canary = "k9"

    def runner(argv: list[str], env: dict[str, str], cwd: str):
        assert env["PIN"] == canary
        ops = json.loads(Path(argv[2]).read_text())["ops"]
        if ops[0]["op"] == "current":
            answer = {"ok": True, "results": {"current": ["0001_k9"]}}
        else:
            answer = {"ok": False, "op": "run", "running": "0001_k9",
                      "error": {"type": "RuntimeError", "message": f"bad PIN {canary}",
                                "traceback": [f"raise RuntimeError(PIN={canary})"]}}
        Path(argv[3]).write_text(json.dumps(answer))
        return subprocess.CompletedProcess(argv, 1, "", f"INFO env.py PIN={canary}\n")

    alembic = Alembic(Settings(config=str(APP / "alembic.ini"), env={"PIN": canary}),
                      python=sys.executable, runner=runner)
    assert alembic.call([{"op": "current"}])["current"] == ["0001_k9"]
    with pytest.raises(AlembicError) as info:
        alembic.call([{"op": "run", "direction": "upgrade", "target": "head"}])
    assert str(info.value) == "RuntimeError: bad PIN ********"
    assert info.value.details["running"] == "0001_k9"
    assert canary not in json.dumps(info.value.details["traceback"])
    assert alembic.log == ["INFO env.py PIN=********"]
