# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the integration tier: the real lab services, never mocks."""

from __future__ import annotations

import os
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


@pytest.fixture(scope="session")
def refapp(lab_env: dict[str, str]) -> dict[str, str]:
    """Build, push and run the reference app through the lab (idempotent); its pinned
    image and the base URL of the container `lab app` runs."""
    proc = lab("app", timeout=1800)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    image = Path(lab_env["PRODREADY_LAB_DIR"], "refapp.image").read_text().strip()
    assert f"reference app {image}" in proc.stdout
    port = os.environ.get("PRODREADY_LAB_APP_PORT", "58080")
    return {"image": image, "base": f"http://127.0.0.1:{port}"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked lab_lifecycle stop and restart the lab: run them after all others."""
    items.sort(key=lambda item: item.get_closest_marker("lab_lifecycle") is not None)
