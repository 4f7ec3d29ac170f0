# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Evidence files: the tools' reports without what changes from run to run, written only
when their content changes, so a second run over the same tree changes nothing.

Private to this collection (leading underscore): the API may change without notice.

Timestamps, durations and host names are dropped (JUnit `time`, `timestamp`, `hostname`;
Cobertura `timestamp`; bandit's and detect-secrets' `generated_at`); the task result keeps
the durations. The XML is the reports the gate's own run wrote, so the standard library's
parser is enough (bandit B405/B314 are marked `nosec` for that reason).
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET  # nosec B405
from typing import Any

# Every file the gate may write; one not produced by a run is removed, so the directory
# always describes the last run.
FILES = ("junit.xml", "coverage.xml", "bandit.json", "detect-secrets.json", "pip-audit.json",
         "quality-gate.json")
_VOLATILE_XML = ("time", "timestamp", "hostname")


def normalise_xml(text: str) -> bytes:
    """The XML report without timing and host attributes, re-serialised."""
    root = ET.fromstring(text)  # nosec B314
    for node in root.iter():
        for name in _VOLATILE_XML:
            node.attrib.pop(name, None)
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8",
                                                                     xml_declaration=False) \
        + b"\n"


def dump_json(data: Any) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _write_atomic(path: str, content: bytes, mode: int) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def plan_and_write(directory: str, files: dict[str, bytes], write: bool,
                   mode: int = 0o640) -> list[str]:
    """The evidence files (of FILES) that differ from what `directory` holds - created,
    changed or removed; written (and stale ones removed) only when `write`."""
    changes: list[str] = []
    if not os.path.isdir(directory):
        changes.append(directory + "/")
        if write:
            os.makedirs(directory, mode=0o750, exist_ok=True)
    for name in FILES:
        path = os.path.join(directory, name)
        current = None
        if os.path.isfile(path):
            with open(path, "rb") as handle:
                current = handle.read()
        wanted = files.get(name)
        if wanted == current:
            continue
        changes.append(name)
        if not write:
            continue
        if wanted is None:
            os.unlink(path)
        else:
            _write_atomic(path, wanted, mode)
    return changes
