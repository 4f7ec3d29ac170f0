# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""User API, including the GDPR export (art. 15/20) and erasure (art. 17) endpoints."""

from __future__ import annotations

import re
import unicodedata

from flask import Blueprint, abort, current_app, jsonify, request
from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from .models import AuditLog, User

bp = Blueprint("users", __name__, url_prefix="/api/users")

# Deliberately loose: the only reliable validation of an address is mail to
# it. This rejects obvious garbage without refusing valid exotic addresses.
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_EMAIL_MAX = 254  # RFC 5321 path limit
_NAME_MAX = 200
_ALLOWED_FIELDS = frozenset({"email", "name"})
# Werkzeug's int converter is unbounded; PostgreSQL's bigint is not, and an
# out-of-range literal would surface as a 500 instead of a 404.
_BIGINT_MAX = 2**63 - 1


class ValidationFailed(Exception):
    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("validation failed")
        self.fields = fields


def _sessions() -> sessionmaker[Session]:
    return current_app.extensions["refapp"].sessionmaker


def _validate_new_user(payload: object) -> tuple[str, str]:
    if not isinstance(payload, dict):
        raise ValidationFailed({"_body": "must be a JSON object"})
    errors: dict[str, str] = {}
    for unknown in sorted(set(payload) - _ALLOWED_FIELDS):
        errors[unknown] = "unknown field"

    email = payload.get("email")
    if not isinstance(email, str) or not email.strip():
        errors["email"] = "required string"
    else:
        # Stored lower-cased so the unique index also rejects case variants.
        email = email.strip().lower()
        if len(email) > _EMAIL_MAX or not _EMAIL_RE.match(email):
            errors["email"] = "not a valid email address"

    name = payload.get("name")
    if not isinstance(name, str) or not name.strip():
        errors["name"] = "required string"
    else:
        name = " ".join(name.split())
        if len(name) > _NAME_MAX:
            errors["name"] = f"at most {_NAME_MAX} characters"
        elif any(unicodedata.category(ch) == "Cc" for ch in name):
            errors["name"] = "must not contain control characters"

    if errors:
        raise ValidationFailed(errors)
    return email, name


def _check_id(user_id: int) -> None:
    if user_id > _BIGINT_MAX:
        abort(404, description="user not found")


@bp.post("")
def create_user():
    # Raises 415 for a non-JSON content type and 400 for malformed JSON;
    # both are rendered as JSON by the app's error handler.
    payload = request.get_json()
    email, name = _validate_new_user(payload)
    user = User(email=email, name=name, email_domain=email.rpartition("@")[2])
    try:
        with _sessions().begin() as session:
            session.add(user)
            session.flush()
            session.add(AuditLog(action="create", subject_user_id=user.id))
            session.refresh(user)  # picks up the server-side created_at
            body = user.to_dict()
    except IntegrityError:
        # Relying on the unique index instead of a SELECT first avoids a
        # check-then-insert race between concurrent requests.
        abort(409, description="a user with this email already exists")
    response = jsonify(body)
    response.status_code = 201
    response.headers["Location"] = f"{bp.url_prefix}/{body['id']}"
    return response


@bp.get("/<int:user_id>")
def get_user(user_id: int):
    _check_id(user_id)
    with _sessions()() as session:
        user = session.get(User, user_id)
        if user is None:
            abort(404, description="user not found")
        return jsonify(user.to_dict())


@bp.get("/<int:user_id>/export")
def export_user(user_id: int):
    _check_id(user_id)
    with _sessions().begin() as session:
        user = session.get(User, user_id)
        if user is None:
            abort(404, description="user not found")
        # The processing history about the subject is personal data as well.
        history = session.scalars(
            select(AuditLog).where(AuditLog.subject_user_id == user_id).order_by(AuditLog.id)
        ).all()
        body = {
            "user": user.to_dict(),
            "audit_log": [entry.to_dict() for entry in history],
        }
        # Same transaction as the read: an export that was served is always
        # recorded, and a failed audit write means no data leaves.
        session.add(AuditLog(action="export", subject_user_id=user_id))
    return jsonify(body)


@bp.delete("/<int:user_id>")
def delete_user(user_id: int):
    _check_id(user_id)
    with _sessions().begin() as session:
        # DELETE ... RETURNING decides existence atomically, so two concurrent
        # erasures cannot both report success and write two audit rows.
        deleted = session.execute(
            delete(User).where(User.id == user_id).returning(User.id)
        ).scalar_one_or_none()
        if deleted is None:
            abort(404, description="user not found")
        session.add(AuditLog(action="delete", subject_user_id=user_id))
    return jsonify({"status": "deleted", "id": user_id})
