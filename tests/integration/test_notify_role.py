# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The notify role through ansible-playbook against webhook receivers this test starts on
loopback: the Slack-compatible message and the status-page event of each kind, a receiver
that answers 500 or is down (reported by name, fatal only when required), check mode sending
nothing, and the webhook token never in the output at -vvvv."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from imageutil import free_port
from webhook import Receiver, receiving

REPO = Path(__file__).resolve().parents[2]
TOKEN = "T0CANARY/B0CANARY/notify-canary-8c1f2a"
STATUS_AUTH = "Bearer notify-status-canary-51e0"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with receiving() as rec:
        yield rec


def play(tmp_path: Path, role_vars: dict, *flags: str) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "notify.yml"
    playbook.write_text(json.dumps([{
        "name": "Notify", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Notify", "ansible.builtin.include_role": {
            "name": "prodready.deploy.notify"}, "vars": role_vars}],
    }]))
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg")}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=300, check=False)


def release_vars(receiver: Receiver, event: str, **extra: Any) -> dict[str, Any]:
    return {"notify_event": event, "notify_app": "refapp", "notify_version": "1.2.0",
            "notify_release_id": "r42", "notify_environment": "local",
            "notify_webhook_url": f"{receiver.base}/hooks/{TOKEN}",
            "notify_statuspage_url": f"{receiver.base}/status",
            "notify_headers": {"Authorization": STATUS_AUTH}, **extra}


def test_succeeded_posts_the_chat_message_and_the_status_event(receiver: Receiver,
                                                               tmp_path: Path) -> None:
    proc = play(tmp_path, release_vars(receiver, "succeeded", notify_details={
        "Evidence": "/var/lib/prodready/r42"}), "-vvvv")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    [chat] = receiver.by_path(f"/hooks/{TOKEN}")
    assert chat["json"]["text"] == (
        ":white_check_mark: refapp 1.2.0 (release r42) on local succeeded")
    [attachment] = chat["json"]["attachments"]
    assert attachment["color"] == "good"
    assert attachment["fields"] == [
        {"title": "Application", "value": "refapp"}, {"title": "Version", "value": "1.2.0"},
        {"title": "Release", "value": "r42"}, {"title": "Environment", "value": "local"},
        {"title": "Evidence", "value": "/var/lib/prodready/r42"}]
    [status] = receiver.by_path("/status")
    assert status["headers"]["Authorization"] == STATUS_AUTH
    assert {k: status["json"][k] for k in ("event", "status", "app", "version", "release_id")} \
        == {"event": "succeeded", "status": "operational", "app": "refapp",
            "version": "1.2.0", "release_id": "r42"}
    assert TOKEN not in out and "notify-canary" not in out and STATUS_AUTH not in out


@pytest.mark.parametrize(("event", "reason", "text", "status"), [
    ("started", "", ":rocket: refapp 1.2.0 (release r42) on local started", "under_maintenance"),
    ("failed", "preflight: database unreachable",
     ":x: refapp 1.2.0 (release r42) on local failed: preflight: database unreachable",
     "major_outage"),
])
def test_each_event_has_its_words_and_status(receiver: Receiver, tmp_path: Path, event: str,
                                             reason: str, text: str, status: str) -> None:
    proc = play(tmp_path, release_vars(receiver, event, notify_reason=reason))
    assert proc.returncode == 0, proc.stdout
    assert receiver.by_path(f"/hooks/{TOKEN}")[0]["json"]["text"] == text
    assert receiver.by_path("/status")[0]["json"]["status"] == status


def test_a_failing_webhook_is_named_and_fatal_only_when_required(receiver: Receiver,
                                                                 tmp_path: Path) -> None:
    receiver.status[f"/hooks/{TOKEN}"] = 500
    reason = {"notify_reason": "P95 612 ms over 500 ms"}
    proc = play(tmp_path, release_vars(receiver, "rolled_back", **reason), "-vvvv")
    out = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, out
    assert "The chat webhook was not notified of rolled_back: Status code was 500" in out
    assert receiver.by_path("/status")[0]["json"]["status"] == "operational"
    assert receiver.by_path("/status")[0]["json"]["reason"] == "P95 612 ms over 500 ms"
    assert TOKEN not in out and "notify-canary" not in out

    down = free_port()
    proc = play(tmp_path, release_vars(receiver, "rolled_back", notify_required=True,
                                       notify_statuspage_url=f"http://127.0.0.1:{down}/x",
                                       **reason), "-vvvv")
    out = " ".join((proc.stdout + proc.stderr).split())  # the callback folds long lines
    assert proc.returncode != 0
    assert ("chat webhook and status page could not be told that refapp 1.2.0 (release r42)"
            " on local was rolled back") in out
    assert ("The status page was not notified of rolled_back: Request failed: <urlopen error"
            " [Errno 111] Connection refused>") in out
    assert TOKEN not in out and "notify-canary" not in out


def test_check_mode_and_no_destination_send_nothing(receiver: Receiver, tmp_path: Path) -> None:
    proc = play(tmp_path, release_vars(receiver, "started"), "--check")
    assert proc.returncode == 0, proc.stdout
    proc = play(tmp_path, {"notify_event": "started", "notify_app": "refapp"})
    assert proc.returncode == 0, proc.stdout
    assert receiver.requests == []


def test_a_bad_event_is_refused_by_the_argument_spec(tmp_path: Path) -> None:
    proc = play(tmp_path, {"notify_event": "exploded", "notify_app": "refapp"})
    assert proc.returncode != 0
    assert "notify_event" in proc.stdout and "exploded" in proc.stdout
