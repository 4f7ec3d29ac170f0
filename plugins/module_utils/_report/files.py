# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Where the release report goes and how it is written: each file whole or not at all."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._report.render import (
    render_json,
    render_junit,
    render_markdown,
)

BASENAME = "release-report"
FILE_MODE = 0o640
DIR_MODE = 0o750
# ansible-runner exports the artifact directory of the run (<private_data_dir>/artifacts/
# <ident>, or its path inside the container) to the ansible process under this name.
RUNNER_ARTIFACT_DIR_ENV = "AWX_ISOLATED_DATA_DIR"
RENDERERS = (("json", render_json), ("xml", render_junit), ("md", render_markdown))


class ReportWriteError(OSError):
    """A report file could not be written; the message names the path and the cause."""


def report_directory(configured: str | None, environ: Mapping[str, str], cwd: str) -> str:
    """The ``report_dir`` option when set, else ansible-runner's artifact directory when
    running under ansible-runner, else ``release-report`` in the working directory."""
    if configured:
        return os.path.abspath(os.path.join(cwd, os.path.expanduser(configured)))
    runner = environ.get(RUNNER_ARTIFACT_DIR_ENV)
    if runner:
        return os.path.abspath(os.path.join(cwd, runner))
    return os.path.join(os.path.abspath(cwd), BASENAME)


def ensure_directory(directory: str) -> None:
    """Create ``directory`` (mode 0750, parents as the umask says); an existing one keeps
    its mode."""
    try:
        os.makedirs(directory, mode=DIR_MODE)
    except FileExistsError:
        if not os.path.isdir(directory):
            raise ReportWriteError(f"Failed to create {directory} (a file is in the way)"
                                   ) from None
        return
    except OSError as exc:
        raise ReportWriteError(f"Failed to create {directory} ({exc.strerror or exc})"
                               ) from exc
    # makedirs applies the umask; the mode is part of the contract.
    os.chmod(directory, DIR_MODE)


def write_atomic(path: str, data: bytes, mode: int = FILE_MODE) -> None:
    """Write to a temporary file beside ``path``, then rename it over ``path``."""
    directory = os.path.dirname(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        raise ReportWriteError(f"Failed to write {path} ({exc.strerror or exc})") from exc


def write_reports(directory: str, report: Mapping[str, Any]) -> list[str]:
    """release-report.json, .xml and .md in ``directory``; their paths."""
    # Rendered before anything is written, so the three files always agree.
    files = [(os.path.join(directory, f"{BASENAME}.{extension}"), render(report))
             for extension, render in RENDERERS]
    ensure_directory(directory)
    for path, data in files:
        write_atomic(path, data)
    return [path for path, _data in files]
