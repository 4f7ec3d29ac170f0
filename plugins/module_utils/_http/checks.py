# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""The contract checks of a released service, one function each, every one returning
``CheckResult`` (the shape of the database and preflight checks): health (retried with
exponential backoff), version, metrics, security headers, HTTPS redirect and certificate,
compression and caching of static assets and the CDN, CORS preflights, rate limiting and
input probes.

``run_checks`` runs them in three phases: health first (the others need a warm release),
then the independent ones concurrently, then the rate-limit burst alone - it uses up the
window of this host's address, so nothing may run after it.
"""

from __future__ import annotations

import concurrent.futures
import email.utils
import json
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit

from ansible_collections.prodready.deploy.plugins.module_utils._http import headers as sechead
from ansible_collections.prodready.deploy.plugins.module_utils._http.assertions import (
    compile_expressions,
    evaluate,
)
from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    Client,
    HttpInputError,
    HttpRequestError,
    Response,
    redact,
)
from ansible_collections.prodready.deploy.plugins.module_utils._pg.checks import CheckResult
from ansible_collections.prodready.deploy.plugins.module_utils._preflight import tls

try:
    from prometheus_client.parser import text_string_to_metric_families

    HAS_PROMETHEUS = True
except ImportError:  # pragma: no cover - reported as a failed metrics check
    HAS_PROMETHEUS = False

SQLI_PAYLOADS = ("' OR '1'='1' --", "1; DROP TABLE users; --", "' UNION SELECT NULL, NULL --",
                 "\" OR \"\"=\"")
XSS_PAYLOADS = ('<script>alert("prodready-xss")</script>',
                '"><img src=x onerror=alert("prodready-xss")>')
MALFORMED_JSON = b'{"prodready": "malformed", '
# Text of database errors that must never reach a client.
_DB_ERROR = re.compile(r"syntax error at or near|SQLSTATE|psycopg|ProgrammingError|"
                       r"You have an error in your SQL syntax|ORA-\d{5}|sqlite3\.|"
                       r"unterminated quoted string", re.IGNORECASE)
_COMPRESSIBLE = re.compile(r"^(text/|application/(json|javascript|ecmascript|xml|.*\+json|"
                           r".*\+xml|wasm|manifest\+json)|image/svg\+xml|font/(ttf|otf))",
                           re.IGNORECASE)
COMPRESSED = ("gzip", "br", "zstd", "deflate")
REDIRECT_PERMANENT = (301, 308)
REDIRECT_TEMPORARY = (302, 307)


def _short(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _fail_request(check_id: str, exc: HttpRequestError, remediation: str,
                  data: dict[str, Any] | None = None) -> CheckResult:
    return CheckResult(check_id, "fail", str(exc), remediation, data or {})


# ---------------------------------------------------------------------------------------
# health


def judge_health(resp: Response, statuses: Sequence[int], expressions: Mapping[str, Any]
                 ) -> list[str]:
    """What is wrong with one /health answer; [] when healthy."""
    problems = []
    if resp.status not in statuses:
        want = " or ".join(str(s) for s in statuses)
        problems.append(f"HTTP {resp.status} (want {want})")
    if expressions:
        try:
            document = resp.json()
        except ValueError:
            return [*problems, f"the body is not JSON ({_short(resp.text, 80)!r})"]
        problems.extend(m.describe() for m in evaluate(expressions, document, "health.json"))
    return problems


def check_health(client: Client, spec: Mapping[str, Any],
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> CheckResult:
    """GET the health path until it answers as expected or the budget is spent; waits
    double from initial_delay up to max_delay between attempts."""
    url = redact(client.url(spec["path"]))
    started = clock()
    deadline = started + spec["budget"]
    delay = spec["initial_delay"]
    attempts = 0
    problems: list[str] = []
    last_status = None
    while True:
        attempts += 1
        try:
            resp = client.request("GET", spec["path"])
            last_status = resp.status
            problems = judge_health(resp, spec["status"], spec["json"])
        except HttpRequestError as exc:
            problems = [str(exc)]
        waited = round(clock() - started, 2)
        data = {"url": url, "attempts": attempts, "elapsed_s": waited, "status": last_status,
                "problems": problems}
        if not problems:
            after = f" after {attempts} attempts ({waited:g} s)" if attempts > 1 else ""
            return CheckResult("health", "pass", f"GET {url} is healthy{after}", "", data)
        remaining = deadline - clock()
        if remaining <= 0:
            return CheckResult(
                "health", "fail",
                f"GET {url} was not healthy within {spec['budget']:g} s ({attempts} attempts);"
                f" last answer: {'; '.join(problems)}",
                "look at the release's logs and its dependencies (database, cache); raise"
                " health.budget if it only needs longer to warm up", data)
        sleep(min(delay, remaining))
        delay = min(delay * 2, spec["max_delay"])


# ---------------------------------------------------------------------------------------
# version


def _digest(value: str | None) -> str | None:
    """``registry/app@sha256:ab..`` or ``sha256:ab..`` -> ``sha256:ab..``."""
    return value.rpartition("@")[2].strip() if value else value


def check_version(client: Client, spec: Mapping[str, Any]) -> CheckResult:
    url = redact(client.url(spec["path"]))
    try:
        resp = client.patient_request("GET", spec["path"])
    except HttpRequestError as exc:
        return _fail_request("version", exc, "check that the release serves its version path")
    data: dict[str, Any] = {"url": url, "status": resp.status}
    if resp.status == 429:
        retry_after = resp.header("Retry-After")
        why = (f"Retry-After {retry_after}) beyond rate_limited_wait of"
               f" {client.rate_limited_wait:g} s" if retry_after is not None
               else "without Retry-After, so not waited for)")
        return CheckResult("version", "fail", f"GET {url} answered HTTP 429 (rate-limited, {why}",
                           "exempt the checking host from the application's rate limit, or"
                           " raise rate_limited_wait", data)
    if resp.status != 200:
        return CheckResult("version", "fail", f"GET {url} answered HTTP {resp.status}",
                           "serve the deployed version and image digest there", data)
    try:
        document = resp.json()
    except ValueError:
        return CheckResult("version", "fail", f"GET {url} did not answer JSON",
                           "serve a JSON object with the version and image digest", data)
    wanted = {spec["version_query"]: spec["expected_version"],
              spec["digest_query"]: _digest(spec["expected_digest"])}
    wanted = {k: v for k, v in wanted.items() if v is not None}
    actual = {query: _search(query, document) for query in wanted}
    if spec["digest_query"] in actual:
        actual[spec["digest_query"]] = _digest(actual[spec["digest_query"]]) \
            if isinstance(actual[spec["digest_query"]], str) else actual[spec["digest_query"]]
    data.update(expected=wanted, actual=actual)
    wrong = [f"{q} is {_short(actual[q], 80)}, deployed {_short(v, 80)}"
             for q, v in wanted.items() if actual[q] != v]
    if wrong:
        return CheckResult("version", "fail", f"GET {url} reports another release: "
                           + "; ".join(wrong),
                           "the old release still answers: check the rollout, the load"
                           " balancer's targets and caches", data)
    said = ", ".join(f"{q} {_short(v, 80)}" for q, v in wanted.items())
    return CheckResult("version", "pass", f"GET {url} reports the deployed {said}", "", data)


def _search(query: str, document: Any) -> Any:
    compiled = compile_expressions({query: None}, "version")
    return compiled[query].search(document)


# ---------------------------------------------------------------------------------------
# metrics


def parse_metrics(text: str) -> tuple[set[str], int, int]:
    """(family and sample names, families, samples) of Prometheus text exposition; raises
    ValueError when it does not parse."""
    names: set[str] = set()
    families = samples = 0
    for family in text_string_to_metric_families(text):
        families += 1
        names.add(family.name)
        for sample in family.samples:
            samples += 1
            names.add(sample.name)
    return names, families, samples


def check_metrics(client: Client, spec: Mapping[str, Any]) -> CheckResult:
    url = redact(client.url(spec["path"]))
    if not HAS_PROMETHEUS:
        return CheckResult("metrics", "fail", "cannot parse the metrics: the Python library"
                           " prometheus_client is missing on the host that runs http_check",
                           "pip install prometheus-client there (or skip: [metrics])",
                           {"url": url})
    try:
        resp = client.patient_request("GET", spec["path"], headers={"Accept": "text/plain"})
    except HttpRequestError as exc:
        return _fail_request("metrics", exc, "check that the release serves its metrics path")
    data: dict[str, Any] = {"url": url, "status": resp.status,
                            "content_type": resp.header("Content-Type")}
    if resp.status != 200:
        return CheckResult("metrics", "fail", f"GET {url} answered HTTP {resp.status}",
                           "serve the Prometheus exposition there", data)
    try:
        names, families, samples = parse_metrics(resp.text)
    except (ValueError, IndexError, TypeError) as exc:
        return CheckResult("metrics", "fail", f"GET {url} is not Prometheus text exposition:"
                           f" {_short(str(exc), 120)}",
                           "serve the body of prometheus_client's generate_latest()", data)
    missing = [name for name in spec["required"] if name not in names]
    data.update(families=families, samples=samples, required=list(spec["required"]),
                missing=missing)
    if not families:
        return CheckResult("metrics", "fail", f"GET {url} holds no metrics",
                           "register the application's metrics", data)
    if missing:
        return CheckResult("metrics", "fail", f"GET {url} lacks the required metrics"
                           f" {', '.join(missing)} ({families} families present)",
                           "export them (and check the metric names after a rename)", data)
    return CheckResult("metrics", "pass", f"GET {url} parses: {families} families,"
                       f" {samples} samples, all {len(spec['required'])} required present",
                       "", data)


# ---------------------------------------------------------------------------------------
# security headers


def check_security_headers(client: Client, spec: Mapping[str, Any]) -> CheckResult:
    url = redact(client.url(spec["path"]))
    try:
        resp = client.patient_request("GET", spec["path"])
    except HttpRequestError as exc:
        return _fail_request("security_headers", exc, "check that the release answers")
    verdict = sechead.evaluate(resp.header_map(), spec["hsts_min_seconds"])
    data = {"url": url, "status": resp.status, **verdict}
    problems = "; ".join(f"{f['item']} {f['problem']}" for f in verdict["findings"])
    said = f"grade {verdict['grade']} (score {verdict['score']}/100)"
    if not sechead.better_or_equal(verdict["grade"], spec["min_grade"]):
        return CheckResult("security_headers", "fail",
                           f"GET {url}: {said}, under the required {spec['min_grade']}:"
                           f" {problems}",
                           "set the missing headers in the app or the ingress (OWASP Secure"
                           " Headers Project) and strip version-revealing ones", data)
    if verdict["findings"]:
        return CheckResult("security_headers", "warn", f"GET {url}: {said}: {problems}",
                           "fix the remaining items", data)
    return CheckResult("security_headers", "pass", f"GET {url}: {said}, all recommended"
                       " headers set, no version revealed", "", data)


# ---------------------------------------------------------------------------------------
# HTTPS


def check_https_redirect(client: Client, http_url: str) -> tuple[CheckResult, str | None]:
    """The check, and the https URL the redirect points at (for the certificate check)."""
    where = redact(http_url)
    if urlsplit(http_url).scheme != "http":
        raise HttpInputError(f"option https.http_url: {where!r} is not an http:// URL")
    try:
        resp = client.request("GET", http_url, auth=False)
    except HttpRequestError as exc:
        return _fail_request("https.redirect", exc, "check that plain HTTP is served (and"
                             " redirects) on port 80 or the given URL"), None
    location = resp.header("Location")
    target = urljoin(http_url, location) if location else None
    data = {"url": where, "status": resp.status, "location": redact(target) if target else None}
    if 300 <= resp.status < 400 and target and urlsplit(target).scheme == "https":
        if resp.status in REDIRECT_PERMANENT:
            return CheckResult("https.redirect", "pass", f"GET {where} redirects to HTTPS"
                               f" (HTTP {resp.status} to {redact(target)})", "", data), target
        return CheckResult("https.redirect", "warn", f"GET {where} redirects to HTTPS with a"
                           f" temporary HTTP {resp.status} (to {redact(target)})",
                           "redirect with 301 or 308 so clients and caches remember it",
                           data), target
    if 300 <= resp.status < 400:
        found = f"to {redact(target)}" if target else "without a Location"
        return CheckResult("https.redirect", "fail", f"GET {where} redirects (HTTP"
                           f" {resp.status}) {found}, not to HTTPS",
                           "redirect every plain HTTP request to https:// with 301 or 308",
                           data), None
    return CheckResult("https.redirect", "fail", f"GET {where} does not redirect to HTTPS:"
                       f" it answered HTTP {resp.status} over plain HTTP",
                       "redirect every plain HTTP request to https:// with 301 or 308 (in"
                       " the ingress or load balancer) and send HSTS", data), None


def check_https_certificate(https_url: str, ca_path: str | None, timeout: float,
                            warn_days: int) -> CheckResult:
    # The preflight's certificate check: chain against the CA, host name, days left.
    try:
        endpoint = tls.parse_endpoint(https_url)
    except ValueError as exc:
        raise HttpInputError(f"option https.https_url: {exc}") from None
    found = tls.check_endpoint(endpoint, ca_path, timeout, warn_days)
    return CheckResult("https.certificate", found.status, found.message, found.remediation,
                       {"url": redact(https_url), **found.data})


# ---------------------------------------------------------------------------------------
# compression and caching


def cache_control(value: str | None) -> dict[str, str]:
    found = {}
    for part in (value or "").split(","):
        name, _sep, arg = part.strip().partition("=")
        if name:
            found[name.lower()] = arg.strip().strip('"')
    return found


def judge_asset(resp: Response, min_bytes: int) -> tuple[str, list[str], dict[str, Any]]:
    """(status, problems, data) for one asset answer: compressed when worth it, cacheable."""
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip()
    encoding = (resp.header("Content-Encoding") or "").lower()
    directives = cache_control(resp.header("Cache-Control"))
    try:
        max_age = int(directives.get("s-maxage") or directives.get("max-age") or 0)
    except ValueError:
        max_age = 0
    validator = resp.header("ETag") or resp.header("Last-Modified")
    data = {"status": resp.status, "content_type": ctype, "content_encoding": encoding or None,
            "bytes": len(resp.body), "bytes_sent": len(resp.raw),
            "cache_control": resp.header("Cache-Control"), "max_age": max_age,
            "etag": resp.header("ETag"), "last_modified": resp.header("Last-Modified")}
    if resp.status != 200:
        return "fail", [f"answered HTTP {resp.status}"], data
    fails, warns = [], []
    compressed = any(c.strip() in COMPRESSED for c in encoding.split(","))
    if not compressed and _COMPRESSIBLE.match(ctype) and len(resp.body) >= min_bytes:
        fails.append(f"is not compressed ({ctype}, {len(resp.body)} bytes, no gzip/br"
                     " Content-Encoding)")
    if "no-store" in directives:
        fails.append("is not cacheable (Cache-Control: no-store)")
    elif max_age <= 0 and not validator:
        fails.append("has no caching headers (Cache-Control max-age, ETag or Last-Modified)")
    elif max_age <= 0:
        warns.append("has a validator but no Cache-Control max-age, so every use revalidates")
    elif not validator:
        warns.append(f"has max-age={max_age} but no ETag or Last-Modified to revalidate")
    return ("fail" if fails else "warn" if warns else "pass"), fails + warns, data


def check_asset(client: Client, check_id: str, url: str, min_bytes: int) -> CheckResult:
    where = redact(client.url(url))
    # Credentials go only to the service's own host, never to a CDN.
    same_host = urlsplit(client.url(url)).netloc == urlsplit(client.base_url).netloc
    try:
        resp = client.request("GET", url, headers={"Accept-Encoding": "gzip, br"},
                              auth=same_host)
    except HttpRequestError as exc:
        return _fail_request(check_id, exc, "check the asset URL")
    status, problems, data = judge_asset(resp, min_bytes)
    data["url"] = where
    if status == "pass":
        how = data["content_encoding"] or "uncompressed (small or binary)"
        return CheckResult(check_id, "pass", f"GET {where}: {how}, max-age={data['max_age']},"
                           f" {'ETag' if data['etag'] else 'Last-Modified'}", "", data)
    return CheckResult(check_id, status, f"GET {where} " + "; ".join(problems),
                       "serve static assets gzip/br-compressed with Cache-Control max-age"
                       " (immutable for fingerprinted files) and an ETag", data)


# ---------------------------------------------------------------------------------------
# CORS


def _listed(value: str | None, wanted: str) -> bool:
    items = {v.strip().lower() for v in (value or "").split(",")}
    return "*" in items or wanted.lower() in items


def check_cors(client: Client, case: Mapping[str, Any]) -> CheckResult:
    origin = case["origin"]
    check_id = f"cors:{origin}"
    where = redact(client.url(case["path"]))
    sent = {"Origin": origin, "Access-Control-Request-Method": case["method"]}
    if case["request_headers"]:
        sent["Access-Control-Request-Headers"] = ", ".join(case["request_headers"])
    try:
        resp = client.request("OPTIONS", case["path"], headers=sent)
    except HttpRequestError as exc:
        return _fail_request(check_id, exc, "check the URL of the CORS preflight")
    allow_origin = resp.header("Access-Control-Allow-Origin")
    credentials = (resp.header("Access-Control-Allow-Credentials") or "").lower() == "true"
    data = {"url": where, "status": resp.status, "origin": origin, "method": case["method"],
            "allow_origin": allow_origin, "allow_credentials": credentials,
            "allow_methods": resp.header("Access-Control-Allow-Methods"),
            "allow_headers": resp.header("Access-Control-Allow-Headers"),
            "vary": resp.header("Vary"), "expected_allowed": case["allowed"]}
    said = f"OPTIONS {where} from {origin}"
    if resp.status >= 500:
        return CheckResult(check_id, "fail", f"{said} answered HTTP {resp.status}",
                           "answer CORS preflights (OPTIONS) without a server error", data)
    if allow_origin == "*" and credentials:
        return CheckResult(check_id, "fail", f"{said}: Access-Control-Allow-Origin * together"
                           " with Access-Control-Allow-Credentials: true",
                           "list the allowed origins explicitly when credentials are allowed",
                           data)
    allowed = allow_origin is not None and allow_origin.strip() in (origin, "*")
    if not case["allowed"]:
        if allowed:
            return CheckResult(check_id, "fail", f"{said}: the origin is allowed"
                               f" (Access-Control-Allow-Origin: {allow_origin}), expected"
                               " refused", "remove the origin (or the wildcard) from the"
                               " allowed origins", data)
        return CheckResult(check_id, "pass", f"{said}: not allowed, as configured"
                           f" (HTTP {resp.status}, no matching Access-Control-Allow-Origin)",
                           "", data)
    problems = []
    if not allowed:
        problems.append("the origin is not allowed (Access-Control-Allow-Origin: "
                        f"{allow_origin or 'absent'})")
    else:
        if not 200 <= resp.status < 300:
            problems.append(f"HTTP {resp.status} (a preflight needs 2xx)")
        methods = resp.header("Access-Control-Allow-Methods")
        # Simple methods need no Access-Control-Allow-Methods, but a listed set must hold it.
        simple = case["method"].upper() in ("GET", "HEAD", "POST") and not methods
        if not simple and not _listed(methods, case["method"]):
            problems.append(f"{case['method']} is not in Access-Control-Allow-Methods"
                            f" ({methods or 'absent'})")
        missing = [h for h in case["request_headers"]
                   if not _listed(resp.header("Access-Control-Allow-Headers"), h)]
        if missing:
            problems.append(f"request headers {', '.join(missing)} not allowed")
        if case["credentials"] and not credentials:
            problems.append("Access-Control-Allow-Credentials is not true")
    if problems:
        return CheckResult(check_id, "fail", f"{said}: " + "; ".join(problems),
                           "configure the CORS middleware for this origin, method and"
                           " headers", data)
    if allow_origin == origin and "origin" not in (resp.header("Vary") or "").lower():
        return CheckResult(check_id, "warn", f"{said}: allowed, but the echoed origin comes"
                           " without Vary: Origin (caches may serve it to other origins)",
                           "add Vary: Origin", data)
    return CheckResult(check_id, "pass", f"{said}: allowed as configured"
                       f" (Access-Control-Allow-Origin: {allow_origin})", "", data)


# ---------------------------------------------------------------------------------------
# rate limiting


def valid_retry_after(value: str | None) -> bool:
    if value is None:
        return False
    value = value.strip()
    if value.isdigit():
        return True
    return bool(value) and email.utils.parsedate_tz(value) is not None


def check_rate_limit(client: Client, spec: Mapping[str, Any]) -> CheckResult:
    """Send up to ``requests`` requests, ``concurrency`` at a time, until one gets 429."""
    where = redact(client.url(spec["path"]))
    total, width = spec["requests"], max(1, min(spec["concurrency"], spec["requests"]))
    statuses: dict[str, int] = {}
    first_429: Response | None = None
    sent = errors = 0
    started = time.monotonic()

    def one() -> Response | None:
        try:
            return client.request(spec["method"], spec["path"])
        except HttpRequestError:
            return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=width,
                                               thread_name_prefix="http-burst") as pool:
        while sent < total and first_429 is None:
            batch = min(width, total - sent)
            for resp in pool.map(lambda _i: one(), range(batch)):
                sent += 1
                if resp is None:
                    errors += 1
                    continue
                statuses[str(resp.status)] = statuses.get(str(resp.status), 0) + 1
                if resp.status == 429 and first_429 is None:
                    first_429 = resp
    elapsed = round(time.monotonic() - started, 2)
    data: dict[str, Any] = {"url": where, "sent": sent, "statuses": statuses,
                            "errors": errors, "elapsed_s": elapsed}
    said = f"{sent} {spec['method']} {where} in {elapsed:g} s"
    if first_429 is None:
        lost = f", {errors} without answer" if errors else ""
        return CheckResult("rate_limit", "fail", f"no 429 after {said} (statuses: "
                           f"{_short(statuses, 80)}{lost})",
                           "enable rate limiting for this path (or raise rate_limit.requests"
                           " above the limit)", data)
    retry_after = first_429.header("Retry-After")
    data["retry_after"] = retry_after
    if not valid_retry_after(retry_after):
        how = "without Retry-After" if retry_after is None else \
            f"with an invalid Retry-After {retry_after!r}"
        return CheckResult("rate_limit", "fail", f"429 after {said}, but {how}",
                           "send Retry-After (seconds or an HTTP date) with every 429", data)
    return CheckResult("rate_limit", "pass", f"429 with Retry-After: {retry_after} within"
                       f" {said}", "", data)


# ---------------------------------------------------------------------------------------
# input probes


ProbeRequest = tuple[str, str, "bytes | None", dict[str, str]]


def _probe_requests(spec: Mapping[str, Any], payload: str) -> list[ProbeRequest]:
    """(method, path, body, headers) carrying ``payload`` in the query and the JSON fields."""
    path = spec["path"]
    found = []
    for param in spec["query_params"]:
        sep = "&" if "?" in path else "?"
        found.append(("GET", f"{path}{sep}{urlencode({param: payload})}", None, {}))
    if spec["fields"]:
        body = json.dumps(dict.fromkeys(spec["fields"], payload)).encode()
        found.append((spec["method"], path, body, {"Content-Type": "application/json"}))
    return found


def check_malformed_json(client: Client, spec: Mapping[str, Any]) -> CheckResult:
    where = f"{spec['method']} {redact(client.url(spec['path']))}"
    try:
        resp = client.request(spec["method"], spec["path"], body=MALFORMED_JSON,
                              headers={"Content-Type": "application/json"})
    except HttpRequestError as exc:
        return _fail_request("probe.malformed_json", exc, "check probes.path")
    data = {"request": where, "status": resp.status}
    if 400 <= resp.status < 500:
        return CheckResult("probe.malformed_json", "pass", f"{where} with malformed JSON:"
                           f" HTTP {resp.status}", "", data)
    if resp.status >= 500:
        return CheckResult("probe.malformed_json", "fail", f"{where} with malformed JSON"
                           f" answered HTTP {resp.status} (a server error; want 4xx)",
                           "catch the JSON parse error and answer 400", data)
    return CheckResult("probe.malformed_json", "fail", f"{where} accepted malformed JSON"
                       f" (HTTP {resp.status}; want 4xx)", "validate request bodies", data)


def judge_reflection(resp: Response, payload: str) -> str | None:
    """``fail``/``warn`` when the payload comes back unescaped where a browser could run it,
    None otherwise."""
    if payload not in resp.text:
        return None
    ctype = (resp.header("Content-Type") or "").split(";")[0].strip().lower()
    is_json = ctype == "application/json" or ctype.endswith("+json")
    nosniff = (resp.header("X-Content-Type-Options") or "").lower() == "nosniff"
    if is_json and nosniff:
        return None  # a JSON string is not markup, and nosniff stops browsers guessing
    return "warn" if is_json else "fail"


def check_injection(client: Client, spec: Mapping[str, Any], kind: str) -> CheckResult:
    check_id = f"probe.{kind}"
    payloads = SQLI_PAYLOADS if kind == "sql_injection" else XSS_PAYLOADS
    fails: list[str] = []
    warns: list[str] = []
    answers: list[dict[str, Any]] = []
    for payload in payloads:
        for method, path, body, headers in _probe_requests(spec, payload):
            where = f"{method} {redact(client.url(path.split('?')[0]))}" + \
                (" (query)" if body is None else " (JSON body)")
            try:
                resp = client.request(method, path, body=body, headers=headers)
            except HttpRequestError as exc:
                fails.append(f"{where} got no answer ({exc})")
                continue
            answers.append({"request": where, "payload": payload, "status": resp.status})
            if resp.status >= 500:
                fails.append(f"{where} answered HTTP {resp.status} to {payload!r}")
            if kind == "sql_injection" and _DB_ERROR.search(resp.text):
                fails.append(f"{where} shows a database error for {payload!r}")
            if kind == "xss":
                reflected = judge_reflection(resp, payload)
                ctype = resp.header("Content-Type") or "no Content-Type"
                if reflected == "fail":
                    fails.append(f"{where} reflects {payload!r} unescaped ({ctype})")
                elif reflected == "warn":
                    warns.append(f"{where} reflects {payload!r} in JSON without"
                                 " X-Content-Type-Options: nosniff")
    data = {"requests": len(answers), "answers": answers}
    name = "SQL injection" if kind == "sql_injection" else "XSS"
    if fails:
        return CheckResult(check_id, "fail", f"{name} probes: " + "; ".join(fails[:4])
                           + (f" (+{len(fails) - 4} more)" if len(fails) > 4 else ""),
                           "validate input, use bound parameters, escape output for its"
                           " context, and never answer 5xx to bad input", data)
    if warns:
        return CheckResult(check_id, "warn", f"{name} probes: " + "; ".join(warns[:4]),
                           "send X-Content-Type-Options: nosniff", data)
    statuses = sorted({a["status"] for a in answers})
    return CheckResult(check_id, "pass", f"{len(answers)} {name} probes: no 5xx"
                       + (", not reflected unescaped" if kind == "xss" else
                          ", no database error text")
                       + f" (HTTP {', '.join(str(s) for s in statuses)})", "", data)


# ---------------------------------------------------------------------------------------
# the run


Task = tuple[str, Callable[[], "CheckResult | list[CheckResult]"]]


def _run_all(tasks: Sequence[Task], workers: int) -> list[CheckResult]:
    if not tasks:
        return []
    results: list[CheckResult] = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(workers, len(tasks))),
                                               thread_name_prefix="http-check") as pool:
        futures = [(check_id, pool.submit(func)) for check_id, func in tasks]
        for check_id, future in futures:
            try:
                found = future.result()
            except HttpInputError:
                raise
            except Exception as exc:  # pylint: disable=broad-exception-caught
                # One broken check must not hide the report of the others.
                found = CheckResult(check_id, "fail", f"the check could not run:"
                                    f" {type(exc).__name__}: {exc}",
                                    "report this as a bug of prodready.deploy.http_check",
                                    {"error": type(exc).__name__})
            results.extend(found if isinstance(found, list) else [found])
    return results


def skipped(check_id: str, skip: Sequence[str]) -> bool:
    return any(check_id == s or check_id.startswith((f"{s}.", f"{s}:")) for s in skip)


def validate(params: Mapping[str, Any]) -> None:
    """Refuse unusable options before anything is sent."""
    compile_expressions(params["health"]["json"], "health.json")
    for query in (params["version"]["version_query"], params["version"]["digest_query"]):
        compile_expressions({query: None}, "version")
    if params["health"]["budget"] < 0 or params["health"]["initial_delay"] <= 0:
        raise HttpInputError("option health: budget must be 0 or more and initial_delay"
                             " more than 0")
    if params["rate_limit"]["requests"] < 0 or params["rate_limit"]["concurrency"] < 1:
        raise HttpInputError("option rate_limit: requests must be 0 or more and concurrency"
                             " at least 1")


def run_checks(client: Client, params: Mapping[str, Any]) -> list[CheckResult]:
    """Every configured check; the unconfigured and skipped ones as ``skip`` with the reason."""
    validate(params)
    skip = params["skip"]
    results: list[CheckResult] = []
    reasons: dict[str, str] = {}

    def wanted(check_id: str, reason: str | None = None) -> bool:
        why = "skipped (option skip)" if skipped(check_id, skip) else reason
        if why:
            reasons[check_id] = why
        return why is None

    if wanted("health"):
        results.append(check_health(client, params["health"]))
    tasks: list[Task] = []
    version = params["version"]
    if wanted("version", None if version["expected_version"] or version["expected_digest"]
              else "no version.expected_version or expected_digest given"):
        tasks.append(("version", lambda: check_version(client, version)))
    if wanted("metrics"):
        tasks.append(("metrics", lambda: check_metrics(client, params["metrics"])))
    if wanted("security_headers"):
        tasks.append(("security_headers",
                      lambda: check_security_headers(client, params["security_headers"])))
    https = params["https"]

    def https_checks() -> list[CheckResult]:
        found, target = [], None
        if wanted("https.redirect", None if https["http_url"] else "no https.http_url given"):
            redirect, target = check_https_redirect(client, https["http_url"])
            found.append(redirect)
        url = https["https_url"] or target or (client.base_url if client.base_url.startswith(
            "https://") else None)
        if wanted("https.certificate", None if url else
                  "no https.https_url given and no redirect to follow"):
            found.append(check_https_certificate(url, client.ca_path, client.timeout,
                                                 https["cert_warn_days"]))
        return found

    tasks.append(("https", https_checks))
    caching = params["caching"]
    for path in caching["assets"]:
        if wanted(f"asset:{path}"):
            tasks.append((f"asset:{path}", lambda p=path: check_asset(
                client, f"asset:{p}", p, caching["compress_min_bytes"])))
    if wanted("cdn", None if caching["cdn_url"] else "no caching.cdn_url given"):
        tasks.append(("cdn", lambda: check_asset(client, "cdn", caching["cdn_url"],
                                                 caching["compress_min_bytes"])))
    for case in params["cors"]:
        if wanted(f"cors:{case['origin']}"):
            tasks.append((f"cors:{case['origin']}", lambda c=case: check_cors(client, c)))
    probes = params["probes"]
    probe_reason = None if probes["path"] else "no probes.path given"
    if wanted("probe.malformed_json", probe_reason):
        tasks.append(("probe.malformed_json", lambda: check_malformed_json(client, probes)))
    for kind in ("sql_injection", "xss"):
        if wanted(f"probe.{kind}", probe_reason):
            tasks.append((f"probe.{kind}", lambda k=kind: check_injection(client, probes, k)))
    results.extend(_run_all(tasks, params["workers"]))
    rate = params["rate_limit"]
    if wanted("rate_limit", None if rate["requests"] else "rate_limit.requests is 0"):
        results.append(check_rate_limit(client, rate))
    order = ("health", "version", "metrics", "security_headers", "https.redirect",
             "https.certificate", "asset:", "cdn", "cors:", "probe.", "rate_limit")
    results.extend(CheckResult(i, "skip", why, "", {}) for i, why in reasons.items())

    def rank(item: tuple[int, CheckResult]) -> tuple[int, int]:
        index, result = item
        return next((n for n, p in enumerate(order) if result.id.startswith(p)),
                    len(order)), index

    return [r for _i, r in sorted(enumerate(results), key=rank)]
