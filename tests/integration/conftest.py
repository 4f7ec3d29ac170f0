# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the integration tier: the real lab services, never mocks."""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "tests" / "lab" / "lab"


def lab(*args: str, env: dict[str, str] | None = None, timeout: float = 900,
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LAB), *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def parse_exports(text: str) -> dict[str, str]:
    values = {}
    for line in text.splitlines():
        words = shlex.split(line)
        if len(words) == 2 and words[0] == "export":
            key, _sep, value = words[1].partition("=")
            values[key] = value
    return values


@pytest.fixture(scope="session")
def lab_env() -> dict[str, str]:
    """The lab's variables; fails (never skips) when the lab is not up."""
    status = lab("status")
    if status.returncode != 0:
        pytest.fail(f"the lab is not up (run tests/lab/lab up):\n{status.stdout}{status.stderr}")
    return parse_exports(lab("env").stdout)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked lab_lifecycle stop and restart the lab: run them after all others."""
    items.sort(key=lambda item: item.get_closest_marker("lab_lifecycle") is not None)
