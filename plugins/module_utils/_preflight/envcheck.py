# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Checks of the application's environment that need no network: required variables, their
format, secret strength, distinct secrets, the encryption key, production mode and CORS.

Messages and data name variables and hold counts; they never hold a value, except the
values of the few mode variables (DEBUG, FLASK_ENV, ...), which are not secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.prodready.deploy.plugins.module_utils._dburl import (
    DbUrlError,
    parse_db_url,
)
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    CheckResult,
    PreflightInputError,
)
from ansible_collections.prodready.deploy.plugins.module_utils._secrets import (
    DEFAULT_MIN_ENTROPY_BITS,
    DEFAULT_MIN_LENGTH,
    InvalidKeyError,
    check_fernet_or_base64_key,
    secret_strength,
)

# The production checklist's variables.
DEFAULT_REQUIRED = (
    "SECRET_KEY", "DATABASE_URL", "DB_POOL_SIZE", "DB_MAX_OVERFLOW", "REDIS_HOST",
    "REDIS_PORT", "REDIS_PASSWORD", "REDIS_DB", "JWT_SECRET_KEY", "JWT_ACCESS_TOKEN_EXPIRES",
    "ENCRYPTION_KEY", "SENTRY_DSN", "CDN_URL", "PROMETHEUS_METRICS_PORT",
)
MAIL_REQUIRED = ("SMTP_HOST", "SMTP_PORT", "SMTP_USER", "SMTP_PASSWORD")
# Secrets judged by length, entropy and placeholders (ENCRYPTION_KEY has its own check).
DEFAULT_SECRET_VARS = ("SECRET_KEY", "JWT_SECRET_KEY", "REDIS_PASSWORD", "SMTP_PASSWORD")
ENCRYPTION_KEY = "ENCRYPTION_KEY"
ENCRYPTION_KEY_BYTES = 32

# Values shown as examples in documentation, ours and the frameworks' tutorials; compared
# case-insensitively with the whole value. Generic placeholders (changeme, <...>, secret,
# ${VAR}) are recognised by _secrets.placeholder_reasons.
DOC_EXAMPLE_SECRETS = frozenset({
    "you-will-never-guess", "super-secret-key", "super-secret", "my-secret-key",
    "your-secret-key", "your-secret-key-here", "jwt-secret-string", "keyboard cat",
    "dev", "development", "insecure", "thisisasecretkey", "secret-key", "s3cr3t",
    "replace-with-a-long-random-string", "generate-a-long-random-value",
})
# Prefixes that frameworks put in front of keys meant for development only.
DOC_EXAMPLE_PREFIXES = ("django-insecure-",)

# Integer variables of the checklist: (name, minimum, maximum).
INTEGER_VARS = (
    ("DB_POOL_SIZE", 1, None), ("DB_MAX_OVERFLOW", 0, None), ("REDIS_PORT", 1, 65535),
    ("REDIS_DB", 0, None), ("JWT_ACCESS_TOKEN_EXPIRES", 1, None),
    ("PROMETHEUS_METRICS_PORT", 1, 65535), ("SMTP_PORT", 1, 65535),
)
URL_VARS = ("SENTRY_DSN", "CDN_URL")

DEBUG_VARS = ("DEBUG", "FLASK_DEBUG", "DJANGO_DEBUG", "APP_DEBUG")
ENV_NAME_VARS = ("FLASK_ENV", "APP_ENV", "ENV", "ENVIRONMENT", "DJANGO_ENV", "NODE_ENV",
                 "RAILS_ENV", "RACK_ENV")
PRODUCTION_NAMES = ("production", "prod")
FALSE_WORDS = frozenset({"", "0", "false", "no", "off", "f", "n"})
TRUE_WORDS = frozenset({"1", "true", "yes", "on", "t", "y"})

CORS_ORIGIN_VARS = ("CORS_ORIGINS", "CORS_ALLOWED_ORIGINS", "CORS_ALLOW_ORIGINS",
                    "CORS_ORIGIN", "ALLOWED_ORIGINS")
CORS_CREDENTIAL_VARS = ("CORS_ALLOW_CREDENTIALS", "CORS_SUPPORTS_CREDENTIALS",
                        "CORS_CREDENTIALS")
WILDCARD_ORIGINS = frozenset({"*", ".*", "^.*$", "^.*", ".*$", "null"})

# Names whose values are not secret: the module shows them (mode variables) or they are
# numbers and words that would otherwise be masked all over the output.
_PUBLIC_NAME_RE = re.compile(
    r"(^|_)(PORT|HOST|DB|EXPIRES|TTL|TIMEOUT|SIZE|OVERFLOW|ENABLED|ENV|ENVIRONMENT|DEBUG|"
    r"LEVEL|ORIGINS?|CREDENTIALS|WORKERS|REPLICAS)$", re.IGNORECASE)
_SECRET_NAME_RE = re.compile(
    r"SECRET|PASSW|PASSPHRASE|TOKEN|KEY|DSN|CREDENTIAL|PRIVATE|AUTH|COOKIE|SALT|SIGNATURE",
    re.IGNORECASE)


@dataclass(frozen=True)
class EnvSettings:
    """The options of the environment checks."""

    app: str = "app"
    required: tuple[str, ...] = DEFAULT_REQUIRED
    mail_enabled: bool = False
    secret_vars: tuple[str, ...] = DEFAULT_SECRET_VARS
    placeholders: tuple[str, ...] = field(default=(), repr=False)
    min_length: int = DEFAULT_MIN_LENGTH
    min_entropy_bits: float = DEFAULT_MIN_ENTROPY_BITS

    def __post_init__(self) -> None:
        if self.min_length < 1:
            raise PreflightInputError("option secret_min_length must be at least 1")
        if self.min_entropy_bits < 0:
            raise PreflightInputError("option secret_min_entropy_bits must be 0 or more")

    @property
    def required_vars(self) -> tuple[str, ...]:
        extra = tuple(v for v in MAIL_REQUIRED if v not in self.required)
        return self.required + (extra if self.mail_enabled else ())


def normalise_env(env: Mapping[str, Any] | None) -> dict[str, str | None]:
    """Values as the app sees them: strings; booleans as true/false; None stays None."""
    result: dict[str, str | None] = {}
    for key, value in (env or {}).items():
        if value is None:
            result[str(key)] = None
        elif isinstance(value, bool):
            result[str(key)] = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            result[str(key)] = str(value)
        else:
            raise PreflightInputError(
                f"option env: the value of {key} is a {type(value).__name__}; environment"
                " variables are strings (quote it, or serialise it with to_json)")
    return result


def _present(env: Mapping[str, str | None], name: str) -> str | None:
    value = env.get(name)
    return value if value is not None and value.strip() else None


def url_password(value: str | None) -> str | None:
    """The password in a URL's userinfo (DATABASE_URL, REDIS_URL, ...), else None."""
    if not value or "://" not in value:
        return None
    try:
        parts = urlsplit(value)
        password = parts.password
    except ValueError:
        return None
    if password is None and parts.username and parts.scheme.startswith(("redis", "valkey")):
        return parts.username  # redis://s3cret@host: a lone userinfo is the password
    return password or None


def is_public_name(name: str) -> bool:
    return bool(_PUBLIC_NAME_RE.search(name)) and not re.search(
        r"SECRET|PASSW|TOKEN(?!_EXPIRES)|PRIVATE", name, re.IGNORECASE)


def public_values(env: Mapping[str, str | None], secret_names: Iterable[str] = ()) -> set[str]:
    """Values that need not be masked in the output: those of variables whose names say they
    are ports, hosts, counts, modes or origins, unless some other variable holds the same
    value. Ansible masks every value of a no_log option wherever it appears, so without this
    REDIS_DB=0 would turn every 0 of the report into asterisks."""
    secret_names = set(secret_names)
    public: set[str] = set()
    private: set[str] = set()
    for name, value in env.items():
        if not value:
            continue
        if (is_public_name(name) and name not in secret_names
                and url_password(value) is None):
            public.add(value)
        else:
            private.add(value)
    return public - private


def secret_values(env: Mapping[str, str | None]) -> set[str]:
    """Values that must never appear: every value that is not public, and the passwords
    inside URLs (so a password alone is masked too)."""
    values = {v for v in env.values() if v}
    values |= {p for p in (url_password(v) for v in env.values()) if p}
    return values - public_values(env)


# ---------------------------------------------------------------------------------------
# env.required, env.format


def check_required(env: Mapping[str, str | None], settings: EnvSettings) -> CheckResult:
    wanted = settings.required_vars
    missing = [n for n in wanted if n not in env or env[n] is None]
    empty = [n for n in wanted if n in env and env[n] is not None and not env[n].strip()]
    data = {"required": list(wanted), "missing": missing, "empty": empty}
    if not wanted:
        return CheckResult("env.required", "skip", "no required variables given", "", data)
    if missing or empty:
        parts = []
        if missing:
            parts.append(f"missing: {', '.join(missing)}")
        if empty:
            parts.append(f"empty: {', '.join(empty)}")
        return CheckResult(
            "env.required", "fail",
            f"{len(missing) + len(empty)} of {len(wanted)} required variables of"
            f" {settings.app} are not set ({'; '.join(parts)})",
            "set them in the application's environment (the role's preflight_env, from the"
            " vault for secrets)", data)
    mail = " (mail enabled: SMTP_* included)" if settings.mail_enabled else ""
    return CheckResult("env.required", "pass",
                       f"all {len(wanted)} required variables of {settings.app} are set{mail}",
                       "", data)


def check_format(env: Mapping[str, str | None]) -> CheckResult:
    problems: list[str] = []
    warnings: list[str] = []
    checked: list[str] = []
    for name, minimum, maximum in INTEGER_VARS:
        value = _present(env, name)
        if value is None:
            continue
        checked.append(name)
        try:
            number = int(value.strip())
        except ValueError:
            problems.append(f"{name} is not an integer")
            continue
        if number < minimum or (maximum is not None and number > maximum):
            limit = f"between {minimum} and {maximum}" if maximum else f"at least {minimum}"
            problems.append(f"{name} must be {limit}")
    for name in URL_VARS:
        value = _present(env, name)
        if value is None:
            continue
        checked.append(name)
        try:
            parts = urlsplit(value.strip())
            host = parts.hostname
        except ValueError:
            parts, host = None, None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            problems.append(f"{name} is not an http(s) URL with a host")
        elif parts.scheme == "http":
            warnings.append(f"{name} uses plain http")
    data = {"checked": checked, "problems": problems, "warnings": warnings}
    if not checked:
        return CheckResult("env.format", "skip", "none of the typed variables is set", "", data)
    if problems:
        return CheckResult("env.format", "fail", "; ".join(problems + warnings),
                           "fix the values: ports and counts are plain integers, SENTRY_DSN"
                           " and CDN_URL are https URLs", data)
    if warnings:
        return CheckResult("env.format", "warn", "; ".join(warnings),
                           "serve them over https", data)
    return CheckResult("env.format", "pass",
                       f"{len(checked)} typed variables are well-formed ({', '.join(checked)})",
                       "", data)


# ---------------------------------------------------------------------------------------
# secret.strength, secret.distinct, secret.encryption_key


def _doc_example(value: str, extra: Sequence[str]) -> bool:
    lowered = value.strip().lower()
    return (lowered in DOC_EXAMPLE_SECRETS or lowered.startswith(DOC_EXAMPLE_PREFIXES)
            or lowered in {p.strip().lower() for p in extra if p})


def check_strength(env: Mapping[str, str | None], settings: EnvSettings) -> CheckResult:
    judged: dict[str, dict[str, Any]] = {}
    findings: list[str] = []
    for name in settings.secret_vars:
        value = _present(env, name)
        if value is None:
            continue
        verdict = secret_strength(value, settings.min_length, settings.min_entropy_bits)
        reasons = list(verdict["reasons"])
        if _doc_example(value, settings.placeholders):
            reasons.append("is an example value from documentation")
            verdict["placeholder"] = True
        verdict.update(ok=not reasons, reasons=reasons)
        judged[name] = verdict
        if reasons:
            findings.append(f"{name} {', '.join(reasons)}")
    data = {"secrets": judged, "min_length": settings.min_length,
            "min_entropy_bits": settings.min_entropy_bits}
    if not judged:
        return CheckResult("secret.strength", "skip",
                           f"none of {', '.join(settings.secret_vars)} is set", "", data)
    if findings:
        return CheckResult(
            "secret.strength", "fail", "; ".join(findings),
            f"generate each secret at random, at least {settings.min_length} characters"
            " (e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(48))'), and keep"
            " it in the vault", data)
    return CheckResult("secret.strength", "pass",
                       f"{len(judged)} secrets are strong ({', '.join(judged)}): at least"
                       f" {settings.min_length} characters, no placeholder", "", data)


def named_secrets(env: Mapping[str, str | None], settings: EnvSettings,
                  extra: Mapping[str, str | None] | None = None) -> dict[str, str]:
    """The secrets compared by secret.distinct: name -> value."""
    found: dict[str, str] = {}
    for name in (*settings.secret_vars, ENCRYPTION_KEY):
        value = _present(env, name)
        if value is not None:
            found[name] = value
    for name, value in env.items():
        password = url_password(value)
        if password:
            found[f"{name} (password)"] = password
    for name, value in (extra or {}).items():
        if value:
            found[name] = value
    return found


def _service(name: str) -> str:
    """REDIS_URL (password) -> REDIS; DATABASE_URL, DB_PASSWORD, POSTGRES_* -> DATABASE."""
    head = name.split(" ", 1)[0].split("_", 1)[0].upper()
    return "DATABASE" if head in ("DB", "PG", "POSTGRES", "POSTGRESQL") else head


def _same_credential(names: Sequence[str]) -> bool:
    """A URL's password and the variable that holds the same password on its own
    (REDIS_URL and REDIS_PASSWORD) are one credential written twice, not a reuse."""
    return any(n.endswith(" (password)") for n in names) and \
        len({_service(n) for n in names}) == 1


def check_distinct(secrets: Mapping[str, str]) -> CheckResult:
    groups: dict[str, list[str]] = {}
    for name, value in secrets.items():
        groups.setdefault(value, []).append(name)
    shared = [names for names in groups.values()
              if len(names) > 1 and not _same_credential(names)]
    data = {"compared": list(secrets), "shared": shared}
    if len(secrets) < 2:
        return CheckResult("secret.distinct", "skip", "fewer than two secrets are set", "",
                           data)
    if shared:
        text = "; ".join(" and ".join(names) for names in shared)
        return CheckResult(
            "secret.distinct", "fail", f"secrets share a value: {text}",
            "give every secret its own random value, so one leak does not open everything",
            data)
    return CheckResult("secret.distinct", "pass",
                       f"{len(secrets)} secrets are all different ({', '.join(secrets)})",
                       "", data)


def check_encryption_key(env: Mapping[str, str | None]) -> CheckResult:
    value = _present(env, ENCRYPTION_KEY)
    if value is None:
        return CheckResult("secret.encryption_key", "skip", f"{ENCRYPTION_KEY} is not set",
                           "", {})
    try:
        found = check_fernet_or_base64_key(value, ENCRYPTION_KEY_BYTES)
    except InvalidKeyError as exc:
        return CheckResult("secret.encryption_key", "fail", f"{ENCRYPTION_KEY}: {exc}",
                           f"generate a key of {ENCRYPTION_KEY_BYTES} random bytes in base64:"
                           f" openssl rand -base64 {ENCRYPTION_KEY_BYTES}", {})
    return CheckResult("secret.encryption_key", "pass",
                       f"{ENCRYPTION_KEY} decodes from base64 ({found['alphabet']} alphabet)"
                       f" to {found['nbytes']} bytes", "", found)


# ---------------------------------------------------------------------------------------
# mode.production


def _shown(value: str) -> str:
    value = value.strip()
    return repr(value if len(value) <= 40 else value[:37] + "...")


def check_production_mode(env: Mapping[str, str | None]) -> CheckResult:
    problems: list[str] = []
    unknown: list[str] = []
    seen: dict[str, str] = {}
    for name in DEBUG_VARS:
        value = env.get(name)
        if value is None:
            continue
        seen[name] = value
        word = value.strip().lower()
        if word in TRUE_WORDS:
            problems.append(f"{name}={_shown(value)} turns debug mode on")
        elif word not in FALSE_WORDS:
            unknown.append(f"{name}={_shown(value)} is not a boolean")
    env_names = [n for n in ENV_NAME_VARS if _present(env, n) is not None]
    for name in env_names:
        value = env[name] or ""
        seen[name] = value
        if value.strip().lower() not in PRODUCTION_NAMES:
            problems.append(f"{name}={_shown(value)} is not production")
    data = {"variables": seen}
    fix = ("set DEBUG=false and FLASK_ENV=production (or the framework's equivalent: APP_ENV,"
           " ENV, DJANGO_DEBUG=False)")
    if problems:
        return CheckResult("mode.production", "fail", "; ".join(problems + unknown), fix, data)
    if unknown:
        return CheckResult("mode.production", "warn", "; ".join(unknown), fix, data)
    if not env_names:
        return CheckResult(
            "mode.production", "warn",
            f"no variable says the environment is production ({', '.join(ENV_NAME_VARS[:3])},"
            " ...)", fix, data)
    said = ", ".join(f"{n}={_shown(v)}" for n, v in seen.items())
    return CheckResult("mode.production", "pass", f"production mode: {said}", "", data)


# ---------------------------------------------------------------------------------------
# cors


def parse_origins(value: str) -> list[str]:
    """A JSON list, or origins separated by commas or whitespace."""
    text = value.strip()
    if text.startswith("["):
        try:
            items = json.loads(text)
        except ValueError:
            items = None
        if isinstance(items, list):
            return [str(i).strip() for i in items if str(i).strip()]
    return [item for item in re.split(r"[,\s]+", text) if item]


def check_cors(env: Mapping[str, str | None]) -> CheckResult:
    origin_var = next((n for n in CORS_ORIGIN_VARS if _present(env, n) is not None), None)
    cred_var = next((n for n in CORS_CREDENTIAL_VARS if _present(env, n) is not None), None)
    credentials = bool(cred_var) and (env[cred_var] or "").strip().lower() in TRUE_WORDS
    if origin_var is None:
        return CheckResult("cors", "skip", "no CORS origins in the environment"
                           f" ({', '.join(CORS_ORIGIN_VARS[:2])}, ...)", "",
                           {"credentials": credentials})
    origins = parse_origins(env[origin_var] or "")
    wildcard = [o for o in origins if o.lower() in WILDCARD_ORIGINS]
    plain = [o for o in origins if o.lower().startswith("http://")]
    data = {"variable": origin_var, "origins": origins, "credentials": credentials,
            "credentials_variable": cred_var}
    if wildcard and credentials:
        return CheckResult(
            "cors", "fail",
            f"{origin_var} allows any origin ({', '.join(repr(w) for w in wildcard)}) and"
            f" {cred_var} is true: any web site could make authenticated requests with the"
            " user's cookies", "list the exact origins (https://app.example.com), or turn"
            " credentials off", data)
    if plain:
        return CheckResult("cors", "warn",
                           f"{origin_var} allows plain-http origins: {', '.join(plain)}",
                           "allow https origins only in production", data)
    kind = ("any origin, without credentials" if wildcard else
            f"{len(origins)} origin{'' if len(origins) == 1 else 's'}")
    return CheckResult("cors", "pass",
                       f"{origin_var} allows {kind}"
                       f"{' (credentials on)' if credentials else ''}", "", data)


# ---------------------------------------------------------------------------------------
# database.url, database.sslmode (the connection itself is in database.py)


SECURE_SSLMODES = ("require", "verify-ca", "verify-full")


def check_database_url(env: Mapping[str, str | None], name: str = "DATABASE_URL"
                       ) -> tuple[CheckResult, dict[str, Any] | None]:
    value = _present(env, name)
    if value is None:
        return CheckResult("database.url", "skip", f"{name} is not set", "", {}), None
    try:
        parts = parse_db_url(value.strip())
    except DbUrlError as exc:
        return CheckResult("database.url", "fail", f"{name}: {exc}",
                           f"write {name} as postgresql://user:password@host:5432/db"
                           "?sslmode=verify-full", {}), None
    data = {"host": parts["host"], "port": parts["port"], "database": parts["database"],
            "user": parts["username"], "driver": parts["driver"],
            "has_password": parts["password"] is not None}
    problems = [what for what, ok in (("database", parts["database"]),
                                      ("user", parts["username"])) if not ok]
    if problems:
        return CheckResult("database.url", "fail",
                           f"{name} parses but names no {' and no '.join(problems)}",
                           f"put them in {name}: postgresql://user:password@host:5432/db",
                           data), parts
    return CheckResult("database.url", "pass",
                       f"{name} parses: {parts['username']}@{parts['host']}:{parts['port']}/"
                       f"{parts['database']}", "", data), parts


def check_sslmode(parts: dict[str, Any] | None, name: str = "DATABASE_URL") -> CheckResult:
    if parts is None:
        return CheckResult("database.sslmode", "skip", f"{name} did not parse", "", {})
    mode = parts.get("sslmode")
    data = {"sslmode": mode}
    fix = (f"add ?sslmode=verify-full&sslrootcert=<CA file> to {name} (require at least;"
           " verify-full also checks the server's certificate and name)")
    if mode is None:
        return CheckResult("database.sslmode", "fail",
                           f"{name} sets no sslmode, so libpq uses prefer, which falls back"
                           " to plain text silently", fix, data)
    if mode not in SECURE_SSLMODES:
        return CheckResult("database.sslmode", "fail",
                           f"{name} has sslmode={mode}, which allows an unencrypted"
                           " connection", fix, data)
    note = "" if mode == "verify-full" else " (verify-full would also check the server)"
    return CheckResult("database.sslmode", "pass", f"{name} has sslmode={mode}{note}", "",
                       data)
