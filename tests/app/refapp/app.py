# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Application factory, cross-cutting request hooks and operational endpoints."""

from __future__ import annotations

import gzip
import logging
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Request, Response, current_app, g, jsonify, request
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.exceptions import BadRequest, HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from . import ALEMBIC_HEAD, metrics
from .backends import check_database, check_redis, make_engine, make_redis
from .config import ConfigError, Settings
from .ratelimit import RedisRateLimiter
from .users import ValidationFailed
from .users import bp as users_bp

log = logging.getLogger(__name__)

SECURITY_HEADERS = {
    # The app only serves JSON and metrics, so nothing needs to be loaded.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Referrer-Policy": "no-referrer",
}
# Version-revealing headers some servers and middlewares add.
STRIPPED_HEADERS = ("Server", "X-Powered-By")

# Below this, gzip's ~20 byte overhead and the CPU cost are not worth it.
GZIP_MIN_BYTES = 500
_COMPRESSIBLE = ("application/json", "text/", "application/openmetrics-text")

# Probes and scrapers come from a few fixed addresses at a fixed rate;
# throttling them would make a healthy service look down.
RATE_LIMIT_EXEMPT = frozenset({"/health", "/metrics"})
# /metrics keeps working under latency/error faults so the pipeline can still
# observe the faulty release; /health has its own switch (FAULT_NEVER_HEALTHY).
LATENCY_FAULT_EXEMPT = frozenset({"/metrics"})
ERROR_FAULT_EXEMPT = frozenset({"/health", "/metrics"})


class _Request(Request):
    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if e is None:
            # Content-Type was not JSON: Flask's 415 is already accurate.
            return super().on_json_loading_failed(e)
        # Flask only explains malformed JSON in debug mode; the parser's
        # message (position, expectation) never contains the body itself.
        raise BadRequest(f"malformed JSON body: {e}")


class StartupAbort(RuntimeError):
    """Refuse to start; a RuntimeError for the same reason as ConfigError."""


@dataclass
class AppState:
    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session]
    redis: Any
    limiter: RedisRateLimiter
    rng: random.Random


def _state() -> AppState:
    return current_app.extensions["refapp"]


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    redis_client: Any = None,
    rng: random.Random | None = None,
) -> Flask:
    """Build the app; engine/redis_client/rng are injectable for tests."""
    if settings is None:
        settings = Settings.from_env()
    if settings.faults.exit_at_start:
        raise StartupAbort("FAULT_EXIT_AT_START is set: refusing to start (injected fault)")

    app = Flask(__name__)
    app.request_class = _Request
    secret_key = settings.secret_key
    if not secret_key:
        # The app signs nothing that has to outlive a restart, so a random key
        # is safe; the warning tells operators their SECRET_KEY did not arrive.
        log.warning("SECRET_KEY is not set; using a random per-process key")
        secret_key = secrets.token_hex(32)
    app.config.update(
        SECRET_KEY=secret_key,
        # Bodies are a couple of short fields; bigger ones are abuse (413).
        MAX_CONTENT_LENGTH=64 * 1024,
    )
    app.json.sort_keys = False  # type: ignore[attr-defined]

    if engine is None:
        engine = make_engine(settings)
    if redis_client is None:
        redis_client = make_redis(settings)
    app.extensions["refapp"] = AppState(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker(bind=engine, expire_on_commit=False),
        redis=redis_client,
        limiter=RedisRateLimiter(redis_client, settings.rate_limit_per_minute),
        rng=rng or random.Random(),
    )

    if settings.trusted_proxy_count:
        # Only when told how many proxies sit in front: trusting
        # X-Forwarded-For unconditionally would let any client pick the IP
        # the rate limiter keys on.
        n = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]

    metrics.BUILD_INFO.labels(version=settings.app_version, git_sha=settings.git_sha).set(1)

    app.before_request(_start_timer)
    app.before_request(_inject_latency)
    app.before_request(_rate_limit)
    app.before_request(_inject_errors)
    app.after_request(_finish_response)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(ValidationFailed, _validation_error)
    app.register_error_handler(OperationalError, _database_error)
    app.register_error_handler(Exception, _unhandled_error)

    app.add_url_rule("/health", view_func=health, methods=["GET"])
    app.add_url_rule("/version", view_func=version, methods=["GET"])
    app.add_url_rule("/metrics", view_func=metrics_view, methods=["GET"])
    app.register_blueprint(users_bp)
    return app


# --- request hooks -----------------------------------------------------------


def _start_timer() -> None:
    g.refapp_started = time.perf_counter()


def _inject_latency() -> None:
    delay_ms = _state().settings.faults.latency_ms
    if delay_ms and request.path not in LATENCY_FAULT_EXEMPT:
        time.sleep(delay_ms / 1000.0)


def _rate_limit() -> Response | None:
    if request.path in RATE_LIMIT_EXEMPT:
        return None
    decision = _state().limiter.hit(request.remote_addr or "unknown")
    if decision.allowed:
        return None
    metrics.RATELIMIT_REJECTIONS.inc()
    response = jsonify(
        error="too_many_requests",
        message="rate limit exceeded, retry later",
        status=429,
        retry_after=decision.retry_after,
    )
    response.status_code = 429
    response.headers["Retry-After"] = str(decision.retry_after)
    return response


def _inject_errors() -> Response | None:
    # Uniform random draw per request (not a counter): with N workers a
    # counter would be per worker anyway, and over a few hundred requests
    # the observed rate converges on FAULT_ERROR_RATE either way.
    state = _state()
    rate = state.settings.faults.error_rate
    if not rate or request.path in ERROR_FAULT_EXEMPT:
        return None
    if state.rng.random() * 100.0 >= rate:
        return None
    response = jsonify(error="internal_server_error", message="internal server error", status=500)
    response.status_code = 500
    # Lets tests tell injected failures from real ones without parsing logs.
    response.headers["X-Fault-Injected"] = "error-rate"
    return response


def _finish_response(response: Response) -> Response:
    # One hook instead of several so the order is explicit: headers, then
    # compression (which changes the body), then metrics (which sees the
    # final status).
    state = _state()
    for name in STRIPPED_HEADERS:
        response.headers.pop(name, None)
    if not state.settings.faults.no_security_headers:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    if request.path.startswith("/api/"):
        # Personal data must not end up in shared or browser caches.
        response.headers.setdefault("Cache-Control", "no-store")
    _maybe_gzip(response)
    _observe(response)
    return response


def _maybe_gzip(response: Response) -> None:
    if response.direct_passthrough or response.is_streamed:
        return
    if response.status_code < 200 or response.status_code in (204, 304):
        return
    mimetype = response.mimetype or ""
    if not mimetype.startswith(_COMPRESSIBLE):
        return
    # The representation depends on Accept-Encoding even when this client
    # gets it uncompressed; caches must know that.
    response.vary.add("Accept-Encoding")
    if "Content-Encoding" in response.headers:
        return
    if request.accept_encodings["gzip"] <= 0:
        return
    data = response.get_data()
    if len(data) < GZIP_MIN_BYTES:
        return
    # mtime=0 keeps identical bodies byte-identical (ETags, tests).
    response.set_data(gzip.compress(data, compresslevel=6, mtime=0))
    response.headers["Content-Encoding"] = "gzip"


def _observe(response: Response) -> None:
    started = g.pop("refapp_started", None)
    rule = request.url_rule
    # The route template, not the path: /api/users/1, /api/users/2, ... must
    # share a series, and unmatched paths (scanners) must not create any.
    endpoint = rule.rule if rule is not None else "<unmatched>"
    method = metrics.method_label(request.method)
    metrics.REQUESTS.labels(method, endpoint, str(response.status_code)).inc()
    if started is not None:
        metrics.LATENCY.labels(method, endpoint).observe(time.perf_counter() - started)


# --- error handlers ----------------------------------------------------------


def _http_error(exc: HTTPException) -> Response:
    # get_response() keeps headers such as Allow (405) and Retry-After.
    response = exc.get_response()
    name = (exc.name or "error").lower().replace(" ", "_").replace("'", "")
    body = jsonify(error=name, message=exc.description, status=exc.code)
    response.set_data(body.get_data())
    response.mimetype = "application/json"
    return response


def _validation_error(exc: ValidationFailed) -> tuple[Response, int]:
    body = jsonify(
        error="validation_failed",
        message="request body failed validation",
        status=422,
        fields=exc.fields,
    )
    return body, 422


def _database_error(exc: OperationalError) -> tuple[Response, int]:
    # Connection failures and timeouts are the database's state, not a bug:
    # 503 tells clients and load balancers that retrying elsewhere may work.
    log.warning("database unavailable on %s %s: %s", request.method, request.path, exc.orig)
    body = jsonify(error="service_unavailable", message="database unavailable", status=503)
    return body, 503


def _unhandled_error(exc: Exception) -> tuple[Response, int]:
    log.exception("unhandled error on %s %s", request.method, request.path)
    # No exception text in the body: it can contain SQL, hosts or credentials.
    return jsonify(error="internal_server_error", message="internal server error", status=500), 500


# --- views -------------------------------------------------------------------


def health() -> tuple[Response, int]:
    state = _state()
    checks = {
        "database": "ok" if check_database(state.engine) else "fail",
        "redis": "ok" if check_redis(state.redis) else "fail",
    }
    healthy = all(value == "ok" for value in checks.values())
    if state.settings.faults.never_healthy:
        checks["fault"] = "FAULT_NEVER_HEALTHY"
        healthy = False
    body = {"status": "ok" if healthy else "fail", "checks": checks}
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"
    return response, 200 if healthy else 503


def version() -> Response:
    settings = _state().settings
    return jsonify(
        version=settings.app_version,
        git_sha=settings.git_sha,
        image_digest=settings.image_digest,
        alembic_head=ALEMBIC_HEAD,
    )


def metrics_view() -> Response:
    payload, content_type = metrics.exposition()
    return Response(payload, status=200, headers={"Content-Type": content_type})


__all__ = ["ConfigError", "StartupAbort", "create_app"]
