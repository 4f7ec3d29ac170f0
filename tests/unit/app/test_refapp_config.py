# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Settings parsing and the rate limiter in isolation."""

from __future__ import annotations

import pytest


@pytest.fixture
def config():
    from refapp import config

    return config


@pytest.fixture
def ratelimit():
    from refapp import ratelimit

    return ratelimit


def test_defaults(config):
    settings = config.Settings.from_env({})
    assert settings.db_pool_size == 5
    assert settings.db_max_overflow == 10
    assert settings.redis_host == "localhost"
    assert settings.redis_port == 6379
    assert settings.redis_db == 0
    assert settings.rate_limit_per_minute == 600
    assert settings.trusted_proxy_count == 0
    assert settings.faults == config.Faults()


@pytest.mark.parametrize(
    ("env", "attr", "expected"),
    [
        ({"DB_POOL_SIZE": "20"}, "db_pool_size", 20),
        ({"DB_MAX_OVERFLOW": "0"}, "db_max_overflow", 0),
        ({"REDIS_PORT": " 6380 "}, "redis_port", 6380),
        ({"REDIS_DB": "3"}, "redis_db", 3),
        ({"REDIS_PASSWORD": ""}, "redis_password", None),
        ({"RATE_LIMIT_PER_MINUTE": "5"}, "rate_limit_per_minute", 5),
        ({"APP_VERSION": " 2.0.1 "}, "app_version", "2.0.1"),
        ({"GIT_SHA": ""}, "git_sha", "unknown"),
        ({"FAULT_LATENCY_MS": "250"}, "faults.latency_ms", 250),
        ({"FAULT_ERROR_RATE": "12.5"}, "faults.error_rate", 12.5),
        ({"FAULT_NEVER_HEALTHY": "true"}, "faults.never_healthy", True),
        ({"FAULT_NEVER_HEALTHY": "0"}, "faults.never_healthy", False),
        ({"FAULT_NO_SECURITY_HEADERS": "YES"}, "faults.no_security_headers", True),
        ({"FAULT_EXIT_AT_START": "1"}, "faults.exit_at_start", True),
    ],
)
def test_parsing(config, env, attr, expected):
    value = config.Settings.from_env(env)
    for part in attr.split("."):
        value = getattr(value, part)
    assert value == expected


@pytest.mark.parametrize(
    "env",
    [
        {"DB_POOL_SIZE": "five"},
        {"DB_POOL_SIZE": "0"},
        {"REDIS_PORT": "-1"},
        {"RATE_LIMIT_PER_MINUTE": "1.5"},
        {"FAULT_ERROR_RATE": "101"},
        {"FAULT_ERROR_RATE": "nan"},
        {"FAULT_ERROR_RATE": "lots"},
        {"FAULT_NEVER_HEALTHY": "maybe"},
    ],
)
def test_invalid_values_are_config_errors(config, env):
    with pytest.raises(config.ConfigError):
        config.Settings.from_env(env)


def test_repr_hides_secrets(config):
    settings = config.Settings.from_env(
        {
            "DATABASE_URL": "postgresql://app:pw-db-123@db/app",
            "REDIS_PASSWORD": "pw-redis-456",
            "SECRET_KEY": "pw-key-789",
        }
    )
    text = repr(settings)
    for secret in ("pw-db-123", "pw-redis-456", "pw-key-789"):
        assert secret not in text


@pytest.fixture
def app_module():
    from refapp import app

    return app


def test_missing_database_url_fails_start(config, app_module):
    with pytest.raises(config.ConfigError, match="DATABASE_URL"):
        app_module.create_app(config.Settings.from_env({}))


def test_invalid_database_url_error_hides_password(config, app_module):
    settings = config.Settings.from_env({"DATABASE_URL": "postgresql://u:pw-xyz@db:notaport/x"})
    with pytest.raises(config.ConfigError) as excinfo:
        app_module.create_app(settings)
    assert "pw-xyz" not in str(excinfo.value)


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("now", "expected_retry_after"),
    [(600.0, 60), (659.2, 1), (630.5, 30), (645.0, 15)],
)
def test_limiter_window_and_retry_after(ratelimit, fake_redis, now, expected_retry_after):
    limiter = ratelimit.RedisRateLimiter(fake_redis, 2, clock=_Clock(now))
    assert [limiter.hit("1.2.3.4").allowed for _attempt in range(3)] == [True, True, False]
    assert limiter.hit("1.2.3.4").retry_after == expected_retry_after
    key = f"{ratelimit.KEY_PREFIX}1.2.3.4:{int(now // 60)}"
    assert fake_redis.data[key] == 4
    assert fake_redis.ttl[key] == 120


def test_limiter_new_window_resets(ratelimit, fake_redis):
    clock = _Clock(600.0)
    limiter = ratelimit.RedisRateLimiter(fake_redis, 1, clock=clock)
    assert limiter.hit("a").allowed
    assert not limiter.hit("a").allowed
    clock.now = 660.0
    assert limiter.hit("a").allowed


def test_limiter_backs_off_after_redis_failure(ratelimit, fake_redis):
    clock = _Clock(600.0)
    limiter = ratelimit.RedisRateLimiter(fake_redis, 1, clock=clock, backoff_s=5.0)
    fake_redis.down = True
    assert limiter.hit("a").allowed
    calls = fake_redis.calls
    clock.now = 602.0
    assert limiter.hit("a").allowed
    assert fake_redis.calls == calls  # Redis not touched during the back-off
    fake_redis.down = False
    clock.now = 606.0
    assert limiter.hit("a").allowed
    assert not limiter.hit("a").allowed


@pytest.fixture
def backends():
    from refapp import backends

    return backends


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@db:5432/app?sslmode=verify-full&sslrootcert=/etc/ssl/ca.crt",
        "postgres://u:p@db:5432/app?sslmode=verify-full&sslrootcert=/etc/ssl/ca.crt",
        "postgresql+psycopg2://u:p@db:5432/app?sslmode=verify-full&sslrootcert=/etc/ssl/ca.crt",
    ],
)
def test_make_engine_uses_psycopg2_and_pool_settings(backends, config, url):
    settings = config.Settings.from_env(
        {"DATABASE_URL": url, "DB_POOL_SIZE": "7", "DB_MAX_OVERFLOW": "3"}
    )
    engine = backends.make_engine(settings)  # does not connect
    try:
        # SQLAlchemy 2.1 maps a bare postgresql:// to psycopg 3, which the
        # image does not ship.
        assert engine.dialect.driver == "psycopg2"
        assert engine.pool.size() == 7
        assert engine.pool._max_overflow == 3
        _args, params = engine.dialect.create_connect_args(engine.url)
        assert params["sslmode"] == "verify-full"
        assert params["sslrootcert"] == "/etc/ssl/ca.crt"
    finally:
        engine.dispose()
