# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""deploy.yml end to end on the lab, and its fault matrix: each case injects one fault and
asserts the outcome, that the service serves the previous version, and that nothing was lost
(row checksums of the application's tables before and after)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiproxy import ApiRelay, relayed_kubeconfig, upstream_of
from kube import kubectl
from pgutil import connect, copy_refapp_migrations, db_url, scratch_db
from release import REPO, Release
from webhook import Receiver, receiving

V1, V2 = "1.0.0", "1.1.0"
HEAD = "0003_backfill_email_domain"


@pytest.fixture
def app(lab_env: dict[str, str], refapp: dict[str, str], tmp_path: Path,
        request: pytest.FixtureRequest) -> Iterator[Release]:
    """An application of this test's own - its name, its database, its files - released
    from the lab's reference image. Removed after."""
    name = "e2e-" + request.node.name.removeprefix("test_")[:24].replace("_", "-").rstrip("-")
    name = f"{name}-{uuid.uuid4().hex[:4]}"
    with scratch_db(lab_env, "e2e") as db:
        release = Release(lab_env, name, db, tmp_path, refapp["image"])
        try:
            yield release
        finally:
            release.cleanup()


def released(app: Release, version: str = V1, **overrides: Any) -> dict[str, Any]:
    """Deploy ``version`` and assert it went out; returns the report."""
    proc, report = app.deploy(version, **overrides)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return report


def add_users(app: Release, count: int = 3) -> None:
    conn = connect(db_url(app.lab_env, app.db))
    with conn.cursor() as cur:
        for i in range(count):
            cur.execute("INSERT INTO users (email, name) VALUES (%s, %s)",
                        (f"user{i}-{uuid.uuid4().hex[:6]}@example.com", f"User {i}"))
    conn.close()


def steps(report: dict[str, Any]) -> dict[str, str]:
    return {s["name"]: s["status"] for s in report["steps"]}


@pytest.fixture
def hooks(app: Release) -> Iterator[Receiver]:
    """A chat webhook and a status page on loopback, told of every release of ``app``."""
    with receiving() as rec:
        app.extra.update(release_notify=True, notify_webhook_url=f"{rec.base}/chat",
                         notify_statuspage_url=f"{rec.base}/status")
        yield rec


def events(hooks: Receiver) -> list[str]:
    """The status-page events posted, in order."""
    return [r["json"]["event"] for r in hooks.by_path("/status")]


def test_release_then_the_same_version_again_changes_nothing(
        app: Release, hooks: Receiver) -> None:
    report = released(app, V1)
    assert events(hooks) == ["started", "succeeded"]
    assert len(hooks.by_path("/chat")) == 2
    assert steps(report) | {} == {
        "preflight": "pass", "quality_gate": "skipped", "lock": "pass", "backup": "pass",
        "image": "skipped", "migration": "pass", "rollout": "pass", "verification": "pass",
        "record": "pass"}
    assert app.serving() == {V1}
    assert app.alembic_revision() == HEAD
    record = app.record(f"{app.app}-{V1}".replace(".", "-"))
    assert record is not None and record["outcome"] == "succeeded"
    assert record["alembic"]["from"] is None and record["alembic"]["to"] == HEAD
    assert record["image"]["ref"] == app.image
    assert record["backup"]["sha256"] and record["kubernetes"]["revision"] == 1
    copy = json.loads(next((app.work / "artifacts").glob("release-*.json")).read_text())
    assert copy == record

    proc = app.deploy(V1)[0]
    assert proc.returncode == 0, proc.stdout[-4000:]
    recap = next(line for line in proc.stdout.splitlines() if line.startswith("localhost"))
    assert " changed=0 " in recap, proc.stdout[-4000:]
    assert app.record(f"{app.app}-{V1}".replace(".", "-")) == record
    assert events(hooks) == ["started", "succeeded"] * 2


def test_crash_looping_release_is_rolled_back_app_and_schema(
        app: Release, hooks: Receiver) -> None:
    released(app, V1)
    add_users(app)
    before = app.rows()
    proc, report = app.deploy(V2, release_app_env=app.app_env(FAULT_EXIT_AT_START="1"))
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert steps(report)["rollout"] == "fail"
    assert "failed at rollout" in out and "serves again" in out, out[-3000:]
    assert app.serving() == {V1}
    assert app.rows() == before
    record = app.record(f"{app.app}-{V2}".replace(".", "-"))
    assert record is not None and record["outcome"] == "rolled_back"
    assert record["failure"]["step"] == "rollout"
    assert events(hooks) == ["started", "succeeded", "started", "rolled_back"]
    told = hooks.by_path("/status")[-1]["json"]
    assert told["reason"].startswith("rollout: ") and "crash" in told["reason"].lower(), told


def test_weak_secret_is_refused_at_preflight_and_nothing_changes(app: Release) -> None:
    secret_env = app.vars(V1)["release_app_secret_env"] | {"SECRET_KEY": "changeme"}
    proc, report = app.deploy(V1, release_app_secret_env=secret_env)
    assert proc.returncode != 0
    assert steps(report)["preflight"] == "fail"
    assert "SECRET_KEY" in proc.stdout
    assert "changeme" not in proc.stdout
    assert kubectl(app.lab_env, "get", "deploy", app.app, check=False).returncode != 0
    assert kubectl(app.lab_env, "get", "configmap", f"{app.app}-deploy-lock",
                   check=False).returncode != 0
    assert app.alembic_revision() is None


def test_a_concurrent_deploy_is_refused_naming_the_holder(app: Release) -> None:
    kubectl(app.lab_env, "create", "configmap", f"{app.app}-deploy-lock",
            "--from-literal=release_id=other-release-7", "--from-literal=holder=ci@runner-3",
            "--from-literal=pid=4242", "--from-literal=acquired_at=2026-11-28T10:00:00Z")
    proc, report = app.deploy(V1)
    assert proc.returncode != 0
    assert "other-release-7" in proc.stdout
    assert steps(report)["lock"] == "fail"
    assert kubectl(app.lab_env, "get", "deploy", app.app, check=False).returncode != 0
    # The other run's lock is still there.
    held = kubectl(app.lab_env, "get", "configmap", f"{app.app}-deploy-lock", "-o", "json")
    assert json.loads(held.stdout)["data"]["release_id"] == "other-release-7"


def test_a_migration_failing_midway_leaves_schema_and_app_at_the_previous_release(
        app: Release) -> None:
    released(app, V1)
    add_users(app)
    before = app.rows()
    code = copy_refapp_migrations(app.work / "v2")
    versions = code / "migrations" / "versions"
    (versions / "0005_ok.py").write_text(
        'import sqlalchemy as sa\nfrom alembic import op\nrevision = "0005_ok"\n'
        f'down_revision = "{HEAD}"\nbranch_labels = None\ndepends_on = None\n\n'
        'def upgrade():\n    op.add_column("users", sa.Column("nickname", sa.Text()))\n\n'
        'def downgrade():\n    op.drop_column("users", "nickname")\n')
    (versions / "0006_fails.py").write_text(
        'from alembic import op\nrevision = "0006_fails"\ndown_revision = "0005_ok"\n'
        'branch_labels = None\ndepends_on = None\n\n'
        'def upgrade():\n    op.execute("SELECT 1/0")\n\n'
        'def downgrade():\n    pass\n')
    proc, report = app.deploy(V2, db_migrate_config=str(code / "alembic.ini"),
                              db_migrate_lint_policy={"no-downgrade": "ignore"})
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert steps(report)["migration"] == "fail"
    assert "failed at migration" in out, out[-3000:]
    assert app.alembic_revision() == HEAD
    assert app.rows() == before
    assert app.serving() == {V1}


def test_rollback_playbook_returns_to_the_previous_release(app: Release) -> None:
    released(app, V1)
    released(app, V2)
    assert app.serving() == {V2}
    add_users(app)
    before = app.rows()
    proc = app.run("rollback.yml", V2)[0]
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert app.serving() == {V1}
    assert app.rows() == before
    v1_id, v2_id = (f"{app.app}-{v}".replace(".", "-") for v in (V1, V2))
    record = app.record(v2_id)
    assert record is not None
    assert (record["outcome"], record["rolled_back_to"]) == ("rolled_back", v1_id)
    assert kubectl(app.lab_env, "get", "configmap", f"{app.app}-deploy-lock",
                   check=False).returncode != 0


def rolled_back(app: Release, step: str, **overrides: Any) -> None:
    """Deploy V2 with a fault over a serving V1 (with rows): the run fails at ``step``,
    V1 serves again, no row changed, V2's record says rolled_back."""
    released(app, V1)
    add_users(app)
    before = app.rows()
    proc, report = app.deploy(V2, **overrides)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert steps(report)[step] == "fail", report
    assert f"failed at {step}" in out and "which serves again" in out, out[-3000:]
    assert app.serving() == {V1}
    assert app.rows() == before
    assert app.alembic_revision() == HEAD
    record = app.record(f"{app.app}-{V2}".replace(".", "-"))
    assert record is not None and record["outcome"] == "rolled_back"
    assert record["failure"]["step"] == step


def test_a_release_that_never_gets_ready_is_rolled_back(app: Release) -> None:
    rolled_back(app, "rollout", release_app_env=app.app_env(FAULT_NEVER_HEALTHY="1"),
                k8s_rollout_ready_timeout=15)


def test_an_image_that_cannot_be_pulled_is_rolled_back(app: Release) -> None:
    missing = app.image.rsplit("@", 1)[0] + "@sha256:" + "0" * 64
    rolled_back(app, "rollout", release_image=missing)


@pytest.mark.parametrize("fault", [
    pytest.param({"FAULT_LATENCY_MS": "600"}, id="p95"),
    pytest.param({"FAULT_ERROR_RATE": "20"}, id="error-rate"),
])
def test_verification_breaching_a_threshold_is_rolled_back(
        app: Release, fault: dict[str, str]) -> None:
    """The app's fault switches: every answer 600 ms late breaks the load stage's P95 of
    500 ms; 20% of answers 500 break the error rate of 0.1% (and the contract checks that
    meet one). The load goes to /version, which the app rate-limits per client in Redis:
    this test's releases count in a Redis database of their own, with a limit the load does
    not reach, so neither its rollback check nor another test meets a 429."""
    own = {"REDIS_DB": "7", "RATE_LIMIT_PER_MINUTE": "1000000"}
    app.extra["release_app_env"] = app.app_env(**own)
    rolled_back(app, "verification", release_app_env=app.app_env(**own, **fault),
                verify_load_enabled=True, verify_load_users=[4], verify_load_duration=3,
                verify_load_ramp_up=0, verify_load_endpoints=[{"path": "/version"}])


@pytest.mark.parametrize(("step", "overrides"), [
    ("backup", {"release_backup_dir": "/proc/prodready-no-such-dir"}),
    ("preflight", {"release_database_url": "postgresql://app:x@127.0.0.1:1/app"}),
    ("image", {"release_image": "", "image_repository": "127.0.0.1:1/refapp"}),
])
@pytest.mark.usefixtures("app_context")
def test_a_failure_before_anything_changed_undoes_nothing(app: Release, step: str,
                                                          overrides: dict[str, Any]) -> None:
    """The backup failing, the database down at preflight, the registry down at build: the
    run fails at that step, V1 keeps serving untouched, and nothing is rolled back."""
    released(app, V1)
    add_users(app)
    before = app.rows()
    proc, report = app.deploy(V2, **overrides)
    out = " ".join(proc.stdout.split())
    assert proc.returncode != 0
    assert steps(report)[step] == "fail", report
    assert f"failed at {step}" in out and "nothing was undone" in out, out[-3000:]
    assert app.serving() == {V1}
    assert app.rows() == before
    assert "127.0.0.1:1/app" not in out or step == "preflight"
    assert kubectl(app.lab_env, "get", "configmap", f"{app.app}-deploy-lock",
                   check=False).returncode != 0


def test_canary_secrets_never_show_at_vvvv(app: Release) -> None:
    canary = "canary-e2e-secret-7f3a9c1d5e8b2a4f6c0d9e1b3a5c7e9f"
    secret_env = app.vars(V1)["release_app_secret_env"] | {"SECRET_KEY": canary}
    proc, _report = app.deploy(V1, "-vvvv", release_app_secret_env=secret_env)
    assert proc.returncode == 0, proc.stdout[-4000:]
    log = (app.work / "run1" / "ansible.log").read_text()
    assert canary not in proc.stdout + proc.stderr
    assert canary not in log
    password = app.lab_env["LAB_PG_APP_PASSWORD"]
    assert password not in proc.stdout + proc.stderr + log


RUNNER = """
import json, sys
import ansible_runner
run = ansible_runner.run(**json.loads(sys.argv[1]), quiet=True)
print(run.status, run.rc)
"""


def test_canary_secrets_never_show_in_ansible_runner_artifacts(app: Release) -> None:
    """As AWX runs it: deploy.yml under ansible-runner at verbosity 4. The canary appears in
    no artifact - stdout, the JSON events - and the release report is among them."""
    canary = "canary-runner-secret-0b9d8f7e6a5c4b3a2918f7e6d5c4b3a2"
    secret_env = app.vars(V1)["release_app_secret_env"] | {"SECRET_KEY": canary}
    _argv, env, run_dir = app.command("deploy.yml", V1, release_app_secret_env=secret_env)
    env.pop("PRODREADY_REPORT_DIR")
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"  # runner finds ansible-playbook
    private = run_dir / "runner"
    private.mkdir()
    args = {"private_data_dir": str(private), "project_dir": str(REPO),
            "playbook": "deploy.yml", "inventory": str(REPO / "inventories" / "local"),
            "extravars": json.loads((run_dir / "vars.json").read_text()),
            "verbosity": 4, "ident": "deploy-1"}
    proc = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(args)], env=env,
                          capture_output=True, text=True, timeout=900, check=False)
    artifacts = private / "artifacts" / "deploy-1"
    stdout = (artifacts / "stdout").read_text() if (artifacts / "stdout").exists() else ""
    assert proc.stdout.split() == ["successful", "0"], proc.stderr[-3000:] + stdout[-6000:]
    events = sorted((artifacts / "job_events").glob("*.json"))
    assert len(events) > 50 and "-vvvv" in (artifacts / "command").read_text()
    report = json.loads((artifacts / "release-report.json").read_text())
    assert report["run_failed"] is False and steps(report)["rollout"] == "pass"
    password = app.lab_env["LAB_PG_APP_PASSWORD"]
    for path in [artifacts / "stdout", *events]:
        text = path.read_text()
        assert canary not in text, path
        assert password not in text, path
    assert canary not in proc.stdout + proc.stderr


def test_a_run_killed_mid_rollout_converges_when_run_again(app: Release) -> None:
    """SIGKILL to the whole ansible-playbook process group while the rollout is watched (no
    rescue, no lock released): running the same release again takes its own lock back,
    finishes the rollout and records the release."""
    released(app, V1)
    argv, env, run_dir = app.command("deploy.yml", V2)
    with subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          start_new_session=True) as proc:
        log = run_dir / "ansible.log"
        deadline = time.monotonic() + 300
        while "Watch the rollout until it completes or fails" not in (
                log.read_text() if log.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, "never reached rollout"
            time.sleep(0.2)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    v2_id = f"{app.app}-{V2}".replace(".", "-")
    held = kubectl(app.lab_env, "get", "configmap", f"{app.app}-deploy-lock", "-o", "json")
    assert json.loads(held.stdout)["data"]["release_id"] == v2_id
    report = released(app, V2)
    assert steps(report)["rollout"] == "pass"
    assert app.serving() == {V2}
    record = app.record(v2_id)
    assert record is not None and record["outcome"] == "succeeded"
    assert kubectl(app.lab_env, "get", "configmap", f"{app.app}-deploy-lock",
                   check=False).returncode != 0


WATCH_TASK = "Watch the rollout until it completes or fails"
WATCH_SETTLE = 4  # seconds for the watch module to start and read the Deployment once


@pytest.fixture
def relay(app: Release) -> Iterator[ApiRelay]:
    """The API server behind a relay of this test's own; the release's kubeconfig goes
    through it (so does its rollback's)."""
    kubeconfig = Path(app.lab_env["LAB_KUBECONFIG_DEPLOYER"])
    relay = ApiRelay(upstream_of(kubeconfig))
    relay.start()
    app.extra["release_kubeconfig"] = str(relayed_kubeconfig(
        kubeconfig, relay, app.work / "relayed.kubeconfig"))
    try:
        yield relay
    finally:
        relay.stop()


def deploy_with_api_outage(app: Release, relay: ApiRelay, outage: float, *flags: str,
                           **overrides: Any) -> tuple[subprocess.Popen[bytes], str]:
    """Deploy V2 and stop the relay for ``outage`` seconds once the rollout is being watched
    (WATCH_SETTLE seconds after its task starts: a first read that fails is a wrong address,
    not an outage, and fails at once by design); (process, its stdout, whitespace folded)."""
    argv, env, run_dir = app.command("deploy.yml", V2, *flags, **overrides)
    log, stdout = run_dir / "ansible.log", run_dir / "stdout.txt"
    with stdout.open("w") as sink, subprocess.Popen(argv, env=env, stdout=sink,
                                                    stderr=subprocess.STDOUT) as proc:
        deadline = time.monotonic() + 300
        while WATCH_TASK not in (log.read_text() if log.exists() else ""):
            assert proc.poll() is None and time.monotonic() < deadline, "never reached rollout"
            time.sleep(0.1)
        time.sleep(WATCH_SETTLE)
        assert proc.poll() is None, "the run ended before the outage"
        relay.stop()
        time.sleep(outage)
        relay.start()
        proc.wait(timeout=600)
    return proc, " ".join(stdout.read_text().split())


def test_an_api_server_away_for_seconds_mid_rollout_is_ridden_out(
        app: Release, relay: ApiRelay) -> None:
    """A restart of the API server while the rollout is watched (6 s without it, within the
    watch's api_grace): the release goes out as if nothing happened, and says it noticed."""
    released(app, V1)
    add_users(app)
    before = app.rows()
    proc, out = deploy_with_api_outage(app, relay, 6, "-v",
                                       k8s_rollout_readiness_initial_delay_seconds=12)
    assert proc.returncode == 0, out[-6000:]
    assert "API error, retrying" in out and "API answers again after" in out, out[-6000:]
    assert app.serving() == {V2}
    assert app.rows() == before
    record = app.record(f"{app.app}-{V2}".replace(".", "-"))
    assert record is not None and record["outcome"] == "succeeded"


def test_an_api_server_away_longer_than_the_watch_waits_is_rolled_back_when_it_returns(
        app: Release, relay: ApiRelay) -> None:
    """The API away for 12 s, longer than the watch may wait (api_grace 2 s): the rollout
    fails naming the outage, and the rollback - which keeps trying for rollback_api_grace -
    brings V1 back once the API answers; nothing is lost."""
    released(app, V1)
    add_users(app)
    before = app.rows()
    proc, out = deploy_with_api_outage(app, relay, 12, k8s_rollout_api_grace=2,
                                       k8s_rollout_readiness_initial_delay_seconds=30)
    assert proc.returncode != 0
    assert "failed at rollout" in out and "longer than api_grace of 2 s" in out, out[-4000:]
    assert "which serves again" in out, out[-4000:]
    assert app.serving() == {V1}
    assert app.rows() == before
    assert app.alembic_revision() == HEAD
    record = app.record(f"{app.app}-{V2}".replace(".", "-"))
    assert record is not None and record["outcome"] == "rolled_back"
    assert record["failure"]["step"] == "rollout"
