# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Database and Redis clients plus the dependency checks behind /health."""

from __future__ import annotations

import logging

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from .config import ConfigError, Settings

log = logging.getLogger(__name__)

# Short, so that a dead dependency makes /health answer 503 well within a
# load balancer's probe timeout instead of hanging the probe.
DB_CONNECT_TIMEOUT_S = 3  # libpq's minimum effective value is 2
DB_STATEMENT_TIMEOUT_MS = 2000
REDIS_TIMEOUT_S = 1.0


def make_engine(settings: Settings) -> Engine:
    if not settings.database_url:
        raise ConfigError("DATABASE_URL is not set")
    try:
        url = make_url(settings.database_url)
    except Exception:
        # The message would echo the URL, password included.
        raise ConfigError("DATABASE_URL is not a valid database URL") from None
    # A bare "postgresql://" means psycopg (3) to SQLAlchemy 2.1, but the image
    # ships psycopg2; "postgres://" (some platforms) is not accepted at all.
    if url.drivername in ("postgres", "postgresql"):
        url = url.set(drivername="postgresql+psycopg2")

    if url.get_backend_name() != "postgresql":
        return create_engine(url, pool_pre_ping=True)

    connect_args: dict[str, object] = {}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = DB_CONNECT_TIMEOUT_S
    if "application_name" not in url.query:
        # Lets an operator tell old and new releases apart in pg_stat_activity
        # while a rolling deploy is in progress.
        connect_args["application_name"] = f"refapp/{settings.app_version}"[:63]
    return create_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        # Connections die when the database fails over or restarts; checking on
        # checkout turns that into one reconnect instead of a failed request.
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def make_redis(settings: Settings) -> redis.Redis:
    return redis.Redis(
        host=settings.redis_host,
        port=settings.redis_port,
        password=settings.redis_password,
        db=settings.redis_db,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
        # The client's default retries with backoff would multiply the
        # timeouts above; callers here fail fast and degrade instead.
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


def check_database(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text(f"SET LOCAL statement_timeout = {DB_STATEMENT_TIMEOUT_MS}"))
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        # Class name only: driver messages can contain host and user names.
        log.warning("health: database check failed: %s", type(exc).__name__)
        return False
    return True


def check_redis(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except Exception as exc:
        log.warning("health: redis check failed: %s", type(exc).__name__)
        return False
