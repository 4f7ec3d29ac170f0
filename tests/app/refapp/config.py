# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Settings read from the environment (twelve-factor; the image carries no config)."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from . import __version__

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


class ConfigError(RuntimeError):
    """Invalid configuration.

    A RuntimeError (not SystemExit) on purpose: gunicorn turns an exception
    raised while a worker imports the app into exit code 3 ("Worker failed to
    boot") and then halts the whole server, whereas SystemExit from a worker
    only makes the arbiter respawn it forever.
    """


def _bool(env: Mapping[str, str], name: str, default: bool = False) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(
    env: Mapping[str, str], name: str, default: float, *, minimum: float, maximum: float
) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or not minimum <= value <= maximum:
        raise ConfigError(f"{name} must be between {minimum} and {maximum}, got {raw!r}")
    return value


@dataclass(frozen=True)
class Faults:
    """Deliberate misbehaviour so the pipeline's failure paths can be tested."""

    exit_at_start: bool = False
    never_healthy: bool = False
    latency_ms: int = 0
    error_rate: float = 0.0  # percent of requests answered 500
    no_security_headers: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Faults:
        return cls(
            exit_at_start=_bool(env, "FAULT_EXIT_AT_START"),
            never_healthy=_bool(env, "FAULT_NEVER_HEALTHY"),
            latency_ms=_int(env, "FAULT_LATENCY_MS", 0),
            error_rate=_float(env, "FAULT_ERROR_RATE", 0.0, minimum=0.0, maximum=100.0),
            no_security_headers=_bool(env, "FAULT_NO_SECURITY_HEADERS"),
        )


@dataclass(frozen=True)
class Settings:
    # repr=False keeps credentials out of logs and tracebacks that print settings.
    database_url: str = field(default="", repr=False)
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_timeout: float = 5.0
    redis_host: str = "localhost"
    redis_port: int = 6379
    redis_password: str | None = field(default=None, repr=False)
    redis_db: int = 0
    secret_key: str = field(default="", repr=False)
    app_version: str = __version__
    git_sha: str = "unknown"
    image_digest: str = "unknown"
    rate_limit_per_minute: int = 600
    trusted_proxy_count: int = 0
    faults: Faults = field(default_factory=Faults)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        return cls(
            database_url=env.get("DATABASE_URL", "").strip(),
            db_pool_size=_int(env, "DB_POOL_SIZE", 5, minimum=1),
            db_max_overflow=_int(env, "DB_MAX_OVERFLOW", 10),
            db_pool_timeout=_float(env, "DB_POOL_TIMEOUT", 5.0, minimum=0.1, maximum=300.0),
            redis_host=env.get("REDIS_HOST", "").strip() or "localhost",
            redis_port=_int(env, "REDIS_PORT", 6379, minimum=1),
            redis_password=env.get("REDIS_PASSWORD") or None,
            redis_db=_int(env, "REDIS_DB", 0),
            secret_key=env.get("SECRET_KEY", ""),
            # The code's own release when the deployment does not say; the
            # image sets APP_VERSION from its VERSION build arg anyway.
            app_version=env.get("APP_VERSION", "").strip() or __version__,
            git_sha=env.get("GIT_SHA", "").strip() or "unknown",
            image_digest=env.get("IMAGE_DIGEST", "").strip() or "unknown",
            rate_limit_per_minute=_int(env, "RATE_LIMIT_PER_MINUTE", 600),
            trusted_proxy_count=_int(env, "TRUSTED_PROXY_COUNT", 0),
            faults=Faults.from_env(env),
        )
