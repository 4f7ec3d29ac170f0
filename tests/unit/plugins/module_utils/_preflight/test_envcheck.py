# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The environment checks of the preflight: tables of environments and the verdicts."""

from __future__ import annotations

import base64
import json

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._preflight import envcheck
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.envcheck import (
    EnvSettings,
)
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    PreflightInputError,
)

CANARY = "Canary-5e1f0b7d9c3a4e2f8b6d0a1c7e9f3b5d"
CANARY2 = "Canary-0d2b4f6a8c1e3f5b7d9a0c2e4f6b8d1a"
CANARY3 = "Canary-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
KEY = base64.b64encode(bytes(range(32))).decode()
URL = f"postgresql://app:{CANARY2}@db:5432/app?sslmode=verify-full"


def good() -> dict[str, str | None]:
    return {"SECRET_KEY": CANARY, "JWT_SECRET_KEY": CANARY[::-1], "ENCRYPTION_KEY": KEY,
            "DATABASE_URL": URL, "DB_POOL_SIZE": "5", "DB_MAX_OVERFLOW": "10",
            "REDIS_HOST": "redis", "REDIS_PORT": "6379", "REDIS_PASSWORD": CANARY3,
            "REDIS_DB": "0", "JWT_ACCESS_TOKEN_EXPIRES": "900",
            "SENTRY_DSN": "https://k@sentry.example.com/1", "CDN_URL": "https://cdn.example",
            "PROMETHEUS_METRICS_PORT": "9100", "DEBUG": "false", "FLASK_ENV": "production"}


def leaks(result) -> bool:
    text = json.dumps(result.as_dict())
    return any(s in text for s in (CANARY, CANARY[::-1], CANARY3, CANARY2, KEY))


# ----------------------------------------------------------------------- normalise_env


def test_normalise_env_turns_numbers_and_booleans_into_text():
    assert envcheck.normalise_env({"A": 5, "B": True, "C": False, "D": None, "E": 1.5}) == {
        "A": "5", "B": "true", "C": "false", "D": None, "E": "1.5"}


def test_normalise_env_refuses_nested_values_naming_the_variable():
    with pytest.raises(PreflightInputError, match="the value of CORS_ORIGINS is a list"):
        envcheck.normalise_env({"CORS_ORIGINS": ["a"]})


# ---------------------------------------------------------------------- masking helpers


@pytest.mark.parametrize(("name", "public"), [
    ("REDIS_PORT", True), ("REDIS_DB", True), ("REDIS_HOST", True), ("DB_POOL_SIZE", True),
    ("JWT_ACCESS_TOKEN_EXPIRES", True), ("DEBUG", True), ("FLASK_ENV", True),
    ("CORS_ORIGINS", True), ("SECRET_KEY", False), ("REDIS_PASSWORD", False),
    ("DATABASE_URL", False), ("SENTRY_DSN", False), ("SMTP_USER", False),
    ("SECRET_PORT", False), ("PASSWORD_TTL", False),
])
def test_public_names(name, public):
    assert envcheck.is_public_name(name) is public


def test_public_values_leave_out_values_also_held_by_secrets():
    env = {"REDIS_DB": "0", "REDIS_PORT": "6379", "SECRET_KEY": "6379", "DEBUG": "false",
           "REDIS_HOST": "redis://:pw@host"}
    assert envcheck.public_values(env) == {"0", "false"}


def test_secret_values_include_passwords_inside_urls():
    env = {"DATABASE_URL": URL, "REDIS_URL": f"redis://{CANARY}@r:6379/0", "REDIS_DB": "0"}
    assert envcheck.secret_values(env) == {URL, f"redis://{CANARY}@r:6379/0", CANARY2,
                                           CANARY}


@pytest.mark.parametrize(("url", "password"), [
    (URL, CANARY2), ("redis://:pw@host", "pw"), ("redis://pw@host", "pw"),
    ("postgresql://app@db/app", None), ("not a url", None), ("https://host", None),
])
def test_url_password(url, password):
    assert envcheck.url_password(url) == password


# ----------------------------------------------------------------------- env.required


def test_required_passes_on_the_checklist():
    result = envcheck.check_required(good(), EnvSettings(app="shop"))
    assert (result.status, result.message) == (
        "pass", "all 14 required variables of shop are set")


def test_required_names_missing_and_empty_variables():
    env = {**good(), "CDN_URL": "  ", "SENTRY_DSN": None}
    del env["SECRET_KEY"]
    result = envcheck.check_required(env, EnvSettings())
    assert result.status == "fail"
    assert result.data["missing"] == ["SECRET_KEY", "SENTRY_DSN"]
    assert result.data["empty"] == ["CDN_URL"]
    assert result.message == ("3 of 14 required variables of app are not set (missing:"
                              " SECRET_KEY, SENTRY_DSN; empty: CDN_URL)")


def test_mail_adds_smtp_once():
    settings = EnvSettings(required=("SMTP_HOST",), mail_enabled=True)
    assert settings.required_vars == ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD")
    assert EnvSettings(required=("A",)).required_vars == ("A",)


# ------------------------------------------------------------------------- env.format


@pytest.mark.parametrize(("changes", "status", "text"), [
    ({}, "pass", "8 typed variables are well-formed"),
    ({"REDIS_PORT": "redis"}, "fail", "REDIS_PORT is not an integer"),
    ({"REDIS_PORT": "70000"}, "fail", "REDIS_PORT must be between 1 and 65535"),
    ({"DB_POOL_SIZE": "0"}, "fail", "DB_POOL_SIZE must be at least 1"),
    ({"CDN_URL": "cdn.example.com"}, "fail", "CDN_URL is not an http(s) URL with a host"),
    ({"CDN_URL": "http://cdn.example.com"}, "warn", "CDN_URL uses plain http"),
])
def test_format(changes, status, text):
    result = envcheck.check_format({**good(), **changes})
    assert result.status == status
    assert text in result.message


# ---------------------------------------------------------------------- secret checks


@pytest.mark.parametrize(("value", "reason"), [
    ("short", "is 5 characters long; at least 32 are required"),
    ("changeme", "looks like a well-known default, example or placeholder value"),
    ("<secret>", "looks like an unfilled template placeholder"),
    ("{{ vault_secret_key }}", "looks like an unfilled template placeholder"),
    ("you-will-never-guess", "is an example value from documentation"),
    ("django-insecure-" + CANARY, "is an example value from documentation"),
    ("ab" * 20, "repeats a 2-character pattern"),
])
def test_strength_fails_naming_the_variable_never_the_value(value, reason):
    result = envcheck.check_strength({**good(), "JWT_SECRET_KEY": value}, EnvSettings())
    assert result.status == "fail"
    assert result.message.startswith("JWT_SECRET_KEY ")
    assert reason in result.message
    assert value not in json.dumps(result.as_dict())
    assert result.data["secrets"]["SECRET_KEY"]["ok"] is True


def test_strength_passes_and_takes_extra_placeholders_case_insensitively():
    assert envcheck.check_strength(good(), EnvSettings()).status == "pass"
    result = envcheck.check_strength(good(), EnvSettings(placeholders=(CANARY.lower(),)))
    assert result.message == "SECRET_KEY is an example value from documentation"
    assert not leaks(result)


def test_strength_skips_when_no_secret_is_set():
    result = envcheck.check_strength({}, EnvSettings())
    assert result.status == "skip"


def test_settings_refuse_bad_limits():
    with pytest.raises(PreflightInputError, match="secret_min_length"):
        EnvSettings(min_length=0)


def test_distinct_names_the_variables_sharing_a_value():
    env = {**good(), "JWT_SECRET_KEY": CANARY}
    result = envcheck.check_distinct(envcheck.named_secrets(env, EnvSettings(),
                                                            {"registry_password": CANARY2}))
    assert result.status == "fail"
    assert result.data["shared"] == [["SECRET_KEY", "JWT_SECRET_KEY"],
                                     ["DATABASE_URL (password)", "registry_password"]]
    assert result.message == ("secrets share a value: SECRET_KEY and JWT_SECRET_KEY;"
                              " DATABASE_URL (password) and registry_password")
    assert not leaks(result)


def test_distinct_accepts_one_credential_written_twice():
    env = {**good(), "REDIS_URL": f"redis://:{CANARY3}@redis:6379/0",
           "DB_PASSWORD": CANARY2}
    result = envcheck.check_distinct(envcheck.named_secrets(env, EnvSettings()))
    assert result.status == "pass", result.message


@pytest.mark.parametrize(("key", "status", "text"), [
    (KEY, "pass", "ENCRYPTION_KEY decodes from base64 (either alphabet) to 32 bytes"),
    (base64.urlsafe_b64encode(bytes(range(200, 232))).decode(), "pass", "urlsafe"),
    (base64.b64encode(bytes(16)).decode(), "fail", "decodes to 16 bytes; 32 are required"),
    (base64.b64encode(bytes(32)).decode(), "fail", "one byte value repeated"),
    (None, "skip", "ENCRYPTION_KEY is not set"),
])
def test_encryption_key(key, status, text):
    result = envcheck.check_encryption_key({"ENCRYPTION_KEY": key})
    assert result.status == status
    assert text in result.message
    if key:
        assert key not in json.dumps(result.as_dict())


# --------------------------------------------------------------------- mode.production


@pytest.mark.parametrize(("env", "status", "text"), [
    ({"DEBUG": "false", "FLASK_ENV": "production"}, "pass",
     "production mode: DEBUG='false', FLASK_ENV='production'"),
    ({"DEBUG": "0", "APP_ENV": "prod"}, "pass", "APP_ENV='prod'"),
    ({"DEBUG": "true", "FLASK_ENV": "production"}, "fail", "DEBUG='true' turns debug mode on"),
    ({"DJANGO_DEBUG": "True", "ENV": "production"}, "fail", "DJANGO_DEBUG='True'"),
    ({"FLASK_ENV": "development"}, "fail", "FLASK_ENV='development' is not production"),
    ({"DEBUG": "maybe", "FLASK_ENV": "production"}, "warn", "DEBUG='maybe' is not a boolean"),
    ({"DEBUG": "false"}, "warn", "no variable says the environment is production"),
])
def test_production_mode(env, status, text):
    result = envcheck.check_production_mode(env)
    assert result.status == status
    assert text in result.message


# ------------------------------------------------------------------------------- cors


@pytest.mark.parametrize(("env", "status", "text"), [
    ({}, "skip", "no CORS origins in the environment"),
    ({"CORS_ORIGINS": "*", "CORS_ALLOW_CREDENTIALS": "true"}, "fail",
     "CORS_ORIGINS allows any origin ('*') and CORS_ALLOW_CREDENTIALS is true"),
    ({"CORS_ALLOWED_ORIGINS": '["https://a.example", "null"]',
      "CORS_SUPPORTS_CREDENTIALS": "1"}, "fail", "allows any origin ('null')"),
    ({"CORS_ORIGINS": "*"}, "pass", "CORS_ORIGINS allows any origin, without credentials"),
    ({"CORS_ORIGINS": "https://a.example https://b.example", "CORS_ALLOW_CREDENTIALS": "yes"},
     "pass", "CORS_ORIGINS allows 2 origins (credentials on)"),
    ({"CORS_ORIGINS": "http://a.example"}, "warn", "plain-http origins: http://a.example"),
])
def test_cors(env, status, text):
    result = envcheck.check_cors(env)
    assert result.status == status
    assert text in result.message


# ------------------------------------------------------------ database.url / sslmode


@pytest.mark.parametrize(("url", "url_status", "mode_status", "text"), [
    (URL, "pass", "pass", "DATABASE_URL has sslmode=verify-full"),
    (URL.replace("verify-full", "require"), "pass", "pass", "verify-full would also check"),
    (URL.replace("verify-full", "disable"), "pass", "fail",
     "DATABASE_URL has sslmode=disable, which allows an unencrypted connection"),
    (URL.split("?", maxsplit=1)[0], "pass", "fail", "sets no sslmode"),
    (f"mysql://app:{CANARY}@db/app", "fail", "skip", "DATABASE_URL did not parse"),
])
def test_database_url_and_sslmode(url, url_status, mode_status, text):
    parsed, parts = envcheck.check_database_url({"DATABASE_URL": url})
    mode = envcheck.check_sslmode(parts)
    assert (parsed.status, mode.status) == (url_status, mode_status)
    assert text in mode.message
    assert not leaks(parsed) and not leaks(mode)


def test_database_url_without_user_fails():
    result, _parts = envcheck.check_database_url({"DATABASE_URL": "postgresql://db/app"})
    assert result.status == "fail"
    assert result.message == "DATABASE_URL parses but names no user"
