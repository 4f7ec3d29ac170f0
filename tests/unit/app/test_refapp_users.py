# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""User API and GDPR export/erasure, against the real ORM code on in-memory SQLite."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select


def _audit(engine, models, user_id):
    with engine.connect() as conn:
        rows = conn.execute(
            select(models.AuditLog.action)
            .where(models.AuditLog.subject_user_id == user_id)
            .order_by(models.AuditLog.id)
        )
        return [row.action for row in rows]


def _create(client, email="Ada@Example.ORG", name="  Ada   Lovelace "):
    response = client.post("/api/users", json={"email": email, "name": name})
    assert response.status_code == 201, response.get_json()
    return response


def test_create_normalises_and_returns_location(client):
    response = _create(client)
    body = response.get_json()
    assert body["email"] == "ada@example.org"
    assert body["name"] == "Ada Lovelace"
    assert body["email_domain"] == "example.org"
    assert body["created_at"]
    assert response.headers["Location"] == f"/api/users/{body['id']}"
    assert client.get(response.headers["Location"]).get_json() == body


def test_duplicate_email_is_409_case_insensitively(client):
    _create(client, email="grace@example.org")
    response = client.post("/api/users", json={"email": "GRACE@example.org", "name": "G"})
    assert response.status_code == 409
    assert response.get_json()["error"] == "conflict"


@pytest.mark.parametrize(
    ("payload", "bad_fields"),
    [
        ([], {"_body"}),
        ("just a string", {"_body"}),
        (None, {"_body"}),
        ({}, {"email", "name"}),
        ({"email": "a@b.io"}, {"name"}),
        ({"name": "A"}, {"email"}),
        ({"email": 42, "name": "A"}, {"email"}),
        ({"email": "a@b.io", "name": ["A"]}, {"name"}),
        ({"email": "not-an-email", "name": "A"}, {"email"}),
        ({"email": "a@b", "name": "A"}, {"email"}),
        ({"email": "a b@c.io", "name": "A"}, {"email"}),
        ({"email": "x" * 250 + "@b.io", "name": "A"}, {"email"}),
        ({"email": "a@b.io", "name": "   "}, {"name"}),
        ({"email": "a@b.io", "name": "x" * 201}, {"name"}),
        ({"email": "a@b.io", "name": "A\x00B"}, {"name"}),
        ({"email": "a@b.io", "name": "A", "admin": True}, {"admin"}),
    ],
)
def test_create_validation(client, payload, bad_fields):
    response = client.post("/api/users", data=json.dumps(payload), content_type="application/json")
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "validation_failed"
    assert set(body["fields"]) == bad_fields


def test_get_missing_user_is_404(client):
    response = client.get("/api/users/999")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_export_returns_data_and_is_audited(client, engine, models):
    user = _create(client).get_json()
    response = client.get(f"/api/users/{user['id']}/export")
    assert response.status_code == 200
    body = response.get_json()
    assert body["user"] == user
    # The export shows history up to (not including) itself.
    assert [entry["action"] for entry in body["audit_log"]] == ["create"]
    assert _audit(engine, models, user["id"]) == ["create", "export"]


def test_delete_erases_user_and_audit_survives(client, engine, models):
    user = _create(client).get_json()
    response = client.delete(f"/api/users/{user['id']}")
    assert response.status_code == 200
    assert response.get_json() == {"status": "deleted", "id": user["id"]}

    assert client.get(f"/api/users/{user['id']}").status_code == 404
    assert client.get(f"/api/users/{user['id']}/export").status_code == 404
    assert client.delete(f"/api/users/{user['id']}").status_code == 404
    with engine.connect() as conn:
        assert conn.execute(select(models.User)).all() == []
    assert _audit(engine, models, user["id"]) == ["create", "delete"]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_missing_user_writes_no_audit_row(client, engine, models, method):
    path = "/api/users/31337" + ("/export" if method == "GET" else "")
    assert client.open(path, method=method).status_code == 404
    assert _audit(engine, models, 31337) == []


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [
        ("POST", "/api/users", {"email": "a@b.io", "name": "A"}),
        ("GET", "/api/users/1", None),
        ("GET", "/api/users/1/export", None),
        ("DELETE", "/api/users/1", None),
    ],
)
def test_database_down_is_json_503(make_client, broken_engine, method, path, payload):
    client = make_client(engine=broken_engine)
    response = client.open(path, method=method, json=payload)
    assert response.status_code == 503
    assert response.get_json() == {
        "error": "service_unavailable",
        "message": "database unavailable",
        "status": 503,
    }
    assert b"sqlite" not in response.data.lower()
