# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The test tree itself: pytest (rootdir import mode, no __init__.py) imports every test
file by its basename, so two files with one name break collection on a clean checkout."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]


def test_test_file_names_are_unique() -> None:
    names = Counter(p.name for p in TESTS.rglob("test_*.py")
                    if "fixtures" not in p.parts and "molecule" not in p.parts)
    assert [name for name, count in names.items() if count > 1] == []
