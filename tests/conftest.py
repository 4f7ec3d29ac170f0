# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make this checkout importable as ansible_collections.prodready.deploy.

scripts/setup links the checkout at .collections/ansible_collections/prodready/deploy;
`ansible_collections` is a namespace package, so the collections the `ansible` package
installs in the virtualenv stay importable beside it.
"""

from __future__ import annotations

import sys
from pathlib import Path

COLLECTIONS = Path(__file__).resolve().parents[1] / ".collections"
if not (COLLECTIONS / "ansible_collections/prodready/deploy").exists():
    raise RuntimeError(f"{COLLECTIONS} is missing: run scripts/setup (or make setup) first")
sys.path.insert(0, str(COLLECTIONS))
