# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the reference app's unit tests.

The app lives in tests/app (it is shipped as a container image, not as part
of the collection), so it is put on sys.path here. Its modules are imported
inside fixtures because the path has to be set up first.

Needs the packages of tests/app/requirements.txt plus pytest.
"""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import pytest

# 20 s before a minute boundary, so Retry-After is predictable.
FIXED_NOW = 1_000_000.0
APP_DIR = Path(__file__).resolve().parents[2] / "app"
if str(APP_DIR) not in sys.path:
    sys.path.insert(0, str(APP_DIR))

# prometheus_client decides on multiprocess storage at import time; a value
# inherited from the caller's shell would switch the tests to it.
os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
os.environ.pop("prometheus_multiproc_dir", None)


class FakeRedis:
    """Just enough of redis.Redis for the health check and the rate limiter."""

    def __init__(self) -> None:
        self.data: dict[str, int] = {}
        self.ttl: dict[str, int] = {}
        self.down = False
        self.calls = 0

    def _check(self) -> None:
        self.calls += 1
        if self.down:
            import redis

            raise redis.ConnectionError("Error 111 connecting to fake-redis:6379")

    def ping(self) -> bool:
        self._check()
        return True

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.ops: list[tuple[str, str, int]] = []

    def incr(self, key: str) -> None:
        self.ops.append(("incr", key, 1))

    def expire(self, key: str, seconds: int) -> None:
        self.ops.append(("expire", key, seconds))

    def execute(self) -> list[object]:
        self.redis._check()
        results: list[object] = []
        for op, key, arg in self.ops:
            if op == "incr":
                self.redis.data[key] = self.redis.data.get(key, 0) + arg
                results.append(self.redis.data[key])
            else:
                self.redis.ttl[key] = arg
                results.append(True)
        return results


@pytest.fixture
def fake_redis() -> FakeRedis:
    return FakeRedis()


# Imports of refapp and of third-party packages are kept in separate
# fixtures: whether isort calls refapp first- or third-party depends on the
# repository's ruff configuration, and separate blocks sort the same either way.
@pytest.fixture
def models():
    from refapp import models

    return models


@pytest.fixture
def engine(models):
    """The real ORM code against in-memory SQLite instead of PostgreSQL."""
    from sqlalchemy import create_engine
    from sqlalchemy.pool import StaticPool

    eng = create_engine(
        "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
    )
    models.Base.metadata.create_all(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def broken_engine(tmp_path):
    """An engine whose every connection attempt fails, like a database that is down."""
    from sqlalchemy import create_engine

    eng = create_engine(f"sqlite:///{tmp_path}/missing-dir/db.sqlite")
    yield eng
    eng.dispose()


@pytest.fixture
def make_app(engine, fake_redis):
    from refapp.app import create_app
    from refapp.config import Settings

    def factory(env: dict[str, str] | None = None, **overrides):
        settings = Settings.from_env({"SECRET_KEY": "unit-test-secret", **(env or {})})
        kwargs = {"engine": engine, "redis_client": fake_redis, "rng": random.Random(20240601)}
        kwargs.update(overrides)
        app = create_app(settings, **kwargs)
        app.testing = True
        # A fixed clock keeps the rate-limit window from rolling over mid-test.
        app.extensions["refapp"].limiter.clock = lambda: FIXED_NOW
        return app

    return factory


@pytest.fixture
def make_client(make_app):
    def factory(env: dict[str, str] | None = None, **overrides):
        return make_app(env, **overrides).test_client()

    return factory


@pytest.fixture
def client(make_client):
    return make_client()


@pytest.fixture
def refapp_pkg():
    import refapp

    return refapp


@pytest.fixture
def app_dir() -> Path:
    return APP_DIR
