# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run one module of this collection through `ansible` (ad hoc), as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE = Path(sys.executable).parent / "ansible"


def ansible_env(lab_env: dict[str, str], **extra: str) -> dict[str, str]:
    # The tier's own inventory: inventories/local (ansible.cfg's) sets deploy.yml's inputs,
    # which would leak into the roles under test.
    return {**os.environ, **lab_env, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_INVENTORY": str(REPO / "tests/integration/inventory.yml"),
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json", **extra}


def run_module(lab_env: dict[str, str], module: str, args: dict[str, Any], *flags: str,
               timeout: float = 900) -> tuple[int, dict[str, Any], subprocess.CompletedProcess]:
    """(exit code, task result, process) of `ansible localhost -m prodready.deploy.<module>`.

    ``flags`` are extra ansible options such as ``--check``, ``--diff`` or ``-vvvv``.
    """
    proc = subprocess.run([str(ANSIBLE), "localhost", "-m", f"prodready.deploy.{module}",
                           "-a", json.dumps(args), *flags],
                          capture_output=True, text=True, env=ansible_env(lab_env),
                          timeout=timeout, check=False)
    # At -vvv and above, ansible's debug lines precede the json callback's document.
    start = 0 if proc.stdout.startswith("{") else proc.stdout.find("\n{\n") + 1
    try:
        result = json.loads(proc.stdout[start:])["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"no task result from ansible:\n{proc.stdout}\n{proc.stderr}")
    return proc.returncode, result, proc
