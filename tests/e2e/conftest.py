# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures of the end-to-end tier: the integration tier's lab fixtures (the real lab, never
mocks) and its helpers, importable from here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

INTEGRATION = Path(__file__).resolve().parents[1] / "integration"
sys.path.insert(0, str(INTEGRATION))

_spec = importlib.util.spec_from_file_location("integration_conftest", INTEGRATION / "conftest.py")
assert _spec and _spec.loader
_integration = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_integration)

lab_env = _integration.lab_env
refapp = _integration.refapp


@pytest.fixture(scope="session")
def app_context(lab_env: dict[str, str]) -> str:
    """The reference app's build context for deploy.yml's image step (LAB_APP_CONTEXT)."""
    proc = _integration.lab("app-context")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout.strip().splitlines()[-1]
