# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The db_backup role through ansible-playbook against the lab's PostgreSQL: check mode,
apply, apply again with the same backup id, retention, and the manifest read back."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from pgutil import connect, db_url, scratch_db

REPO = Path(__file__).resolve().parents[2]


def play(lab_env: dict[str, str], tmp_path: Path, role_vars: dict, *flags: str
         ) -> subprocess.CompletedProcess[str]:
    playbook = tmp_path / "backup.yml"
    playbook.write_text(json.dumps([{
        "name": "Back up", "hosts": "localhost", "gather_facts": False,
        "tasks": [{"name": "Back up the database", "ansible.builtin.include_role": {
            "name": "prodready.deploy.db_backup"}, "vars": role_vars}],
    }]))
    env = {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default"}
    return subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           str(REPO / "tests/integration/inventory.yml"), str(playbook), *flags],
                          capture_output=True, text=True, env=env, timeout=600, check=False)


def said(proc: subprocess.CompletedProcess[str]) -> str:
    """stdout with its line wrapping undone (the callback folds long messages)."""
    return " ".join(proc.stdout.split())


def recap(proc: subprocess.CompletedProcess[str]) -> dict[str, int]:
    line = next(x for x in proc.stdout.splitlines() if x.startswith("localhost "))
    return {k: int(v) for k, v in (w.split("=") for w in line.split()[2:])}


def test_role_backs_up_once_per_id_and_applies_retention(lab_env, tmp_path):
    dest = tmp_path / "backups"
    with scratch_db(lab_env, "bk") as name:
        conn = connect(db_url(lab_env, name))
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE items (id int); INSERT INTO items"
                        " SELECT generate_series(1, 250)")
        conn.close()
        base = {"db_backup_url": db_url(lab_env, name), "db_backup_dest": str(dest),
                "db_backup_retention_count": 2}

        proc = play(lab_env, tmp_path, {**base, "db_backup_backup_id": "rel-1"}, "--check")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert recap(proc)["changed"] == 1
        assert f"Would back up {name} as rel-1 (1 tables); would delete 0" in said(proc)
        assert not dest.exists()

        proc = play(lab_env, tmp_path, {**base, "db_backup_backup_id": "rel-1"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert recap(proc)["changed"] == 1
        assert "Backed up rel-1: " in said(proc) and ", verified, " in said(proc)

        proc = play(lab_env, tmp_path, {**base, "db_backup_backup_id": "rel-1"})
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert recap(proc)["changed"] == 0
        assert "Kept the existing backup rel-1" in said(proc)

        for release in ("rel-2", "rel-3"):
            proc = play(lab_env, tmp_path, {**base, "db_backup_backup_id": release})
            assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "deleted 1: rel-1" in said(proc)
        assert sorted(os.listdir(dest)) == ["rel-2.dump", "rel-2.manifest.json",
                                            "rel-3.dump", "rel-3.manifest.json"]
        manifest = json.loads((dest / "rel-3.manifest.json").read_text())
        assert manifest["tables"] == {"public.items": 250}
        assert manifest["sha256"] == hashlib.sha256((dest / "rel-3.dump").read_bytes()
                                                    ).hexdigest()
        assert manifest["verified"] is True
        assert lab_env["LAB_PG_APP_PASSWORD"] not in proc.stdout + proc.stderr


def test_role_refuses_a_missing_url(lab_env, tmp_path):
    proc = play(lab_env, tmp_path, {"db_backup_dest": str(tmp_path / "b")})
    assert proc.returncode != 0
    assert "db_backup_url" in said(proc)
    assert not (tmp_path / "b").exists()


def test_role_failure_shows_the_module_message_never_the_password(lab_env, tmp_path):
    """The task runs under no_log; the rescue raises the module's own message again."""
    canary = "canary-role-pw-5e1d9a"
    url = db_url(lab_env, lab_env["LAB_PG_APP_DB"]).replace(
        lab_env["LAB_PG_APP_PASSWORD"], canary)
    proc = play(lab_env, tmp_path, {"db_backup_url": url, "db_backup_dest": str(tmp_path / "b")},
                "-vvvv")
    assert proc.returncode != 0
    out = said(proc)
    assert "password authentication failed" in out and "check the password" in out, out
    assert canary not in proc.stdout + proc.stderr
    assert not list((tmp_path / "b").glob("*.dump"))
