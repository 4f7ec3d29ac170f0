# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Entry point: python3 -m labctl COMMAND (tests/lab/lab wraps it)."""

from __future__ import annotations

import sys

from labctl.cli import main

sys.exit(main(sys.argv[1:]))
