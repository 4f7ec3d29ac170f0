# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventories resolve the values `make demo` and the README rely on."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def test_local_release_version_carries_the_commit() -> None:
    """The lab's registry keeps release tags across runs and they never move, so the demo
    releases `<app version>-g<commit>`: a newer commit gets a tag of its own."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
           "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1"}
    run = subprocess.run([BIN / "ansible", "localhost", "-i", str(REPO / "inventories/local"),
                          "-m", "ansible.builtin.debug", "-a", "var=release_version"],
                         capture_output=True, text=True, env=env, cwd=REPO, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    host = json.loads(run.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    version = host["release_version"]
    app = re.search(r'__version__ = "([^"]+)"',
                    (REPO / "tests/app/refapp/__init__.py").read_text()).group(1)
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short=12", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert version == f"{app}-g{head}"
