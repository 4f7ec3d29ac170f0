# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reference application that the collection's deployment tests build and roll out."""

from __future__ import annotations

# Release of this code. The lab tooling (tests/lab/labctl/app.py) reads this
# line with a regex to tag the image, so keep it a plain string literal.
__version__ = "1.0.0"

# The Alembic revision this image's code expects. The deployment pipeline
# compares it with the database's alembic_version row to decide whether
# migrations must run before the rollout; /version exposes it too.
# tests/unit/app keeps it in sync with migrations/versions/.
ALEMBIC_HEAD = "0003_backfill_email_domain"

__all__ = ["ALEMBIC_HEAD", "__version__"]
