# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection builds, installs from its tarball, and documents its plugins."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FILTERS = ("content_name", "parse_db_url", "percentile", "redact_url", "secret_strength")


def isolated_env(dest: Path) -> dict[str, str]:
    """Ansible sees only `dest`: not this checkout's ansible.cfg nor its .collections link."""
    cfg = dest / "ansible.cfg"
    cfg.write_text("[defaults]\n")
    return {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(dest), "ANSIBLE_CONFIG": str(cfg)}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("dist")
    dest = tmp_path_factory.mktemp("collections")
    env = isolated_env(dest)
    subprocess.run([BIN / "ansible-galaxy", "collection", "build", "--output-path", str(out),
                    str(REPO)], check=True, capture_output=True, text=True, env=env)
    tarballs = list(out.glob("prodready-deploy-*.tar.gz"))
    assert len(tarballs) == 1, tarballs
    # --no-deps: the dependencies ship with the `ansible` package; Galaxy is unreachable.
    subprocess.run([BIN / "ansible-galaxy", "collection", "install", "--no-deps", "-p",
                    str(dest), str(tarballs[0])],
                   check=True, capture_output=True, text=True, env=env)
    assert (dest / "ansible_collections/prodready/deploy/MANIFEST.json").exists()
    return tarballs[0], dest


def test_tarball_leaves_out_lab_app_tests_and_caches(installed: tuple[Path, Path]) -> None:
    with tarfile.open(installed[0]) as tar:
        names = tar.getnames()
    assert "galaxy.yml" not in names  # replaced by MANIFEST.json
    assert "MANIFEST.json" in names and "meta/runtime.yml" in names
    for excluded in ("tests", "bench", "molecule", "scripts", ".ci", ".venv", ".collections",
                     "requirements", "Makefile"):
        assert not any(n == excluded or n.startswith(excluded + "/") for n in names), excluded
    assert not any("__pycache__" in n for n in names)
    assert all(f"plugins/filter/{f}.py" in names for f in FILTERS)


def _ansible_doc(dest: Path, *args: str) -> str:
    proc = subprocess.run([BIN / "ansible-doc", *args], env=isolated_env(dest), capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_installed_collection_lists_every_filter(installed: tuple[Path, Path]) -> None:
    listing = _ansible_doc(installed[1], "-t", "filter", "-l", "prodready.deploy")
    for name in FILTERS:
        assert f"prodready.deploy.{name}" in listing


@pytest.mark.parametrize("name", FILTERS)
def test_each_filter_renders_docs(installed: tuple[Path, Path], name: str) -> None:
    text = _ansible_doc(installed[1], "-t", "filter", f"prodready.deploy.{name}")
    assert f"prodready.deploy.{name}" in text
    assert "EXAMPLES:" in text and "RETURN VALUES:" in text
