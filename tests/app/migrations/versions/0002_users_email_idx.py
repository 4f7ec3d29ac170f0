# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Unique index on users.email, built without blocking writes.

Revision ID: 0002_users_email_idx
Revises: 0001_initial
Create Date: 2026-11-27

Self-contained: do not import refapp here; a migration must keep meaning the
same thing after the models it was written against have changed.

CREATE INDEX CONCURRENTLY cannot run inside a transaction block, hence the
autocommit_block(). If the build fails (e.g. duplicate emails, or the process
is killed) PostgreSQL leaves an INVALID index behind and the revision is not
recorded; the DROP ... IF EXISTS first makes a re-run clean that up.
"""

from __future__ import annotations

from alembic import op

revision = "0002_users_email_idx"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "users_email_idx",
            table_name="users",
            postgresql_concurrently=True,
            if_exists=True,
        )
        op.create_index(
            "users_email_idx",
            "users",
            ["email"],
            unique=True,
            postgresql_concurrently=True,
        )


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.drop_index(
            "users_email_idx",
            table_name="users",
            postgresql_concurrently=True,
            if_exists=True,
        )
