# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WSGI entry point for gunicorn: ``gunicorn -c gunicorn.conf.py wsgi:app``."""

from __future__ import annotations

import logging
import os

from refapp.app import create_app

logging.basicConfig(
    level=os.environ.get("LOG_LEVEL", "INFO").upper(),
    format="%(asctime)s [%(process)d] [%(levelname)s] %(name)s: %(message)s",
)

# Built at import time so that a broken configuration (or FAULT_EXIT_AT_START)
# fails the worker boot, which makes gunicorn exit instead of serving errors.
app = create_app()
