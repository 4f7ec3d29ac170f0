# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The module's options as a plan, and the progress file."""

from __future__ import annotations

import json

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._load.http import LoadTestError
from ansible_collections.prodready.deploy.plugins.module_utils._load.plan import (
    ProgressFile,
    build_plan,
)

BASE = {"url": "http://app.test:8000/api", "endpoints": [], "model": "closed", "users": 5,
        "ramp_up": 0.0, "rate": None, "max_connections": 100, "duration": 10.0,
        "requests": None, "timeout": 5.0, "success_status": [], "headers": {},
        "progress_interval": 1.0}


def test_paths_methods_bodies_and_weights():
    plan = build_plan({**BASE, "endpoints": [
        {"path": "users", "weight": 3},
        {"path": "/health", "method": "head"},
        {"path": "http://app.test:8000/api/users", "method": "POST", "name": "create",
         "body": {"email": "a@b.test"}, "headers": {"X-Trace": "1"}},
    ]})
    assert [(e.name, e.method, e.path, e.weight) for e in plan.endpoints] == [
        ("GET /api/users", "GET", "/api/users", 3), ("HEAD /health", "HEAD", "/health", 1),
        ("create", "POST", "/api/users", 1)]
    create = plan.endpoints[2]
    assert json.loads(create.body) == {"email": "a@b.test"}
    assert create.headers == {"Content-Type": "application/json", "X-Trace": "1"}
    assert plan.success_statuses == frozenset(range(200, 400))
    assert plan.duration == 10.0 and plan.requests == 0


def test_default_endpoint_is_the_url():
    plan = build_plan(BASE)
    assert [(e.name, e.path) for e in plan.endpoints] == [("GET /api", "/api")]


@pytest.mark.parametrize(("change", "message"), [
    ({"endpoints": [{"path": "http://other.test/x"}]}, "not on http://app.test:8000/api"),
    ({"endpoints": [{"path": "/a"}, {"path": "/a"}]}, "name 'GET /a' is used twice"),
    ({"endpoints": [{"path": "/a", "method": "TRACE"}]}, "method 'TRACE' is not one of"),
    ({"requests": 10}, "either a duration or a number of requests"),
    ({"model": "open"}, "rate above 0"),
])
def test_refused(change, message):
    with pytest.raises(LoadTestError, match=message):
        build_plan({**BASE, **change})


def test_progress_file_is_replaced_whole(tmp_path):
    path = tmp_path / "progress.json"
    progress = ProgressFile(str(path))
    progress.write({"state": "running", "requests": 1})
    progress.write({"state": "finished", "requests": 2})
    assert json.loads(path.read_text()) == {"requests": 2, "state": "finished"}
    assert [p.name for p in tmp_path.iterdir()] == ["progress.json"]
    with pytest.raises(LoadTestError, match="its directory does not exist"):
        ProgressFile(str(tmp_path / "missing" / "p.json"))
    ProgressFile(None).write({"ignored": True})
