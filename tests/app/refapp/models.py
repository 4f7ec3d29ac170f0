# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""ORM models.

The schema is owned by migrations/versions/ (which deliberately do not import
this module); these classes only describe the head schema to the app.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, func
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# SQLite only auto-increments "INTEGER PRIMARY KEY"; the variant lets the unit
# tests run the real ORM code against an in-memory database.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


def _domain_of(email: str) -> str | None:
    local, at, domain = email.rpartition("@")
    return domain.lower() if at and local else None


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    # Mirrors 0002_users_email_idx so SQLite in unit tests enforces uniqueness too.
    __table_args__ = (Index("users_email_idx", "email", unique=True),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    email: Mapped[str] = mapped_column(String(254), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    # Nullable because rows written by the previous release during a rolling
    # deploy (before 0003) have no value; readers must derive it when missing.
    email_domain: Mapped[str | None] = mapped_column(String(253), nullable=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "email_domain": self.email_domain or _domain_of(self.email),
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }


class AuditLog(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    # A plain column, not a foreign key: the record of an erasure must outlive
    # the erased user, so it can neither cascade nor block the DELETE.
    subject_user_id: Mapped[int] = mapped_column(BigInteger, nullable=False, index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), nullable=False, server_default=func.now()
    )

    def to_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "action": self.action,
            "subject_user_id": self.subject_user_id,
            "created_at": self.created_at.isoformat() if self.created_at else None,
        }
