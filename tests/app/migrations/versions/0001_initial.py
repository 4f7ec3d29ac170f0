# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Create users and audit_log.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27

Self-contained: do not import refapp here; a migration must keep meaning the
same thing after the models it was written against have changed.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), primary_key=True),
        sa.Column("action", sa.String(32), nullable=False),
        # No foreign key to users on purpose: erasing a user must leave the
        # record of the erasure behind, so the row may not cascade or block.
        sa.Column("subject_user_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
    )
    # The table is new and empty, so a plain (locking) CREATE INDEX is instant.
    op.create_index("ix_audit_log_subject_user_id", "audit_log", ["subject_user_id"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_subject_user_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("users")
