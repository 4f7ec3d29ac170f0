# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add users.email_domain and backfill it from users.email.

Revision ID: 0003_backfill_email_domain
Revises: 0002_users_email_idx
Create Date: 2026-11-27

Self-contained: do not import refapp here; a migration must keep meaning the
same thing after the models it was written against have changed.

The column stays nullable: during a rolling deploy the previous release keeps
inserting rows without it, and the app derives the value when it is NULL.
The backfill is a single UPDATE inside this revision's transaction so a
failure leaves neither a half-filled column nor a recorded revision; batching
(and committing between batches) would only pay off for tables far larger
than this app will ever have.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_backfill_email_domain"
down_revision = "0002_users_email_idx"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("users", sa.Column("email_domain", sa.String(253), nullable=True))
    # Everything after the last "@"; substring() rather than split_part(),
    # whose negative field numbers need PostgreSQL 14.
    op.execute(
        sa.text(
            "UPDATE users SET email_domain = lower(substring(email from '[^@]*$')) "
            "WHERE email_domain IS NULL AND email LIKE '%@%'"
        )
    )


def downgrade() -> None:
    # Nothing is lost: the value is derived from users.email.
    op.drop_column("users", "email_domain")
