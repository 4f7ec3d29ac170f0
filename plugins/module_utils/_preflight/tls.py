# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""tls.<host>:<port>: the certificate a public endpoint serves - chain valid against the CA,
host name matches, days left.

Two handshakes: one without verification to read the leaf certificate (parsed with
``cryptography``, as community.crypto does), one verified by the ssl module against the CA
and the host name, as the app's clients will do.
"""

from __future__ import annotations

import datetime
import socket
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    CheckResult,
    PreflightInputError,
)

try:
    from cryptography import x509
    from cryptography.x509.oid import ExtensionOID, NameOID

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported as a failed check
    HAS_CRYPTOGRAPHY = False

# OpenSSL verify codes (X509_V_ERR_*) -> what they mean for the operator.
_VERIFY_CODES = {
    10: "expired",
    9: "not_yet_valid",
    62: "hostname_mismatch",
    64: "hostname_mismatch",  # IP address mismatch
    18: "self_signed",
    19: "self_signed_in_chain",
    20: "untrusted_issuer",
    21: "untrusted_issuer",
    2: "untrusted_issuer",
}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    server_name: str

    @property
    def id(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tls.{host}:{self.port}"


def parse_endpoint(text: str) -> Endpoint:
    """``host:port``, ``host`` (443) or a URL (``https://host[:port]/...``)."""
    value = text.strip()
    if not value:
        raise PreflightInputError("option endpoints: an endpoint is empty")
    if "://" not in value:
        value = f"https://{value}"
    try:
        parts = urlsplit(value)
        port = parts.port or 443
    except ValueError:
        raise PreflightInputError(f"option endpoints: {text!r} is not host:port or a URL"
                                  " with a valid port") from None
    if not parts.hostname:
        raise PreflightInputError(f"option endpoints: {text!r} has no host")
    return Endpoint(parts.hostname, port, parts.hostname)


def _name(cert: Any) -> str:
    found = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else cert.subject.rfc4514_string()


def describe_certificate(der: bytes, now: datetime.datetime) -> dict[str, Any]:
    """Subject, issuer, names, validity and days left of a DER certificate."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
        names += [str(n) for n in san.value.get_values_for_type(x509.IPAddress)]
    except x509.ExtensionNotFound:
        names = []
    not_after = cert.not_valid_after_utc
    not_before = cert.not_valid_before_utc
    return {
        "subject": _name(cert), "issuer": _name_issuer(cert), "names": names,
        "serial": format(cert.serial_number, "x"),
        "not_before": not_before.isoformat(), "not_after": not_after.isoformat(),
        "days_left": int((not_after - now).total_seconds() // 86400),
        "expired": not_after <= now, "not_yet_valid": not_before > now,
    }


def _name_issuer(cert: Any) -> str:
    found = cert.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(found[0].value) if found else cert.issuer.rfc4514_string()


def _handshake(endpoint: Endpoint, context: ssl.SSLContext, timeout: float) -> bytes:
    with socket.create_connection((endpoint.host, endpoint.port), timeout=timeout) as raw, \
            context.wrap_socket(raw, server_hostname=endpoint.server_name) as sock:
        return sock.getpeercert(binary_form=True) or b""


def judge(endpoint: Endpoint, info: dict[str, Any] | None,
          verify_error: ssl.SSLCertVerificationError | None, warn_days: int) -> CheckResult:
    """The verdict from the parsed leaf and the verified handshake's error (None: it passed)."""
    data = dict(info or {})
    data["endpoint"] = f"{endpoint.host}:{endpoint.port}"
    where = f"{endpoint.host}:{endpoint.port}"
    if info and info["expired"]:
        return CheckResult(endpoint.id, "fail",
                           f"the certificate of {where} ({info['subject']}) expired on"
                           f" {info['not_after'][:10]}", "renew the certificate", data)
    if verify_error is not None:
        reason = _VERIFY_CODES.get(verify_error.verify_code, "invalid")
        data["verify_error"] = reason
        detail = verify_error.verify_message or str(verify_error)
        if reason == "hostname_mismatch":
            names = ", ".join((info or {}).get("names") or []) or "none"
            return CheckResult(endpoint.id, "fail",
                               f"the certificate of {where} does not match the host name"
                               f" {endpoint.server_name} (it names {names})",
                               "serve a certificate whose subjectAltName includes the"
                               " endpoint's host name", data)
        if reason in ("untrusted_issuer", "self_signed", "self_signed_in_chain"):
            return CheckResult(endpoint.id, "fail",
                               f"the certificate chain of {where} is not trusted: {detail}"
                               f" (issuer {(info or {}).get('issuer', '?')})",
                               "serve the full chain (leaf and intermediates) signed by a CA"
                               " the clients trust, or give that CA in ca_path", data)
        return CheckResult(endpoint.id, "fail",
                           f"the certificate of {where} is not valid: {detail}",
                           "serve a valid certificate", data)
    if info is None:
        return CheckResult(endpoint.id, "fail", f"{where} sent no certificate",
                           "configure TLS on the endpoint", data)
    days = info["days_left"]
    if days < warn_days:
        return CheckResult(endpoint.id, "warn",
                           f"the certificate of {where} expires in {days} days"
                           f" ({info['not_after'][:10]}), under the {warn_days}-day threshold",
                           "renew it now (automate renewal, e.g. cert-manager or ACME)", data)
    return CheckResult(endpoint.id, "pass",
                       f"valid for {endpoint.server_name}, {days} days left, issuer"
                       f" {info['issuer']}", "", data)


def check_endpoint(endpoint: Endpoint, ca_path: str | None, timeout: float, warn_days: int,
                   now: datetime.datetime | None = None) -> CheckResult:
    if not HAS_CRYPTOGRAPHY:
        return CheckResult(endpoint.id, "fail", "the cryptography Python library is missing",
                           "pip install cryptography on the host that runs the preflight", {})
    now = now or datetime.datetime.now(datetime.UTC)
    where = f"{endpoint.host}:{endpoint.port}"
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    try:
        der = _handshake(endpoint, unverified, timeout)
    except (OSError, ssl.SSLError) as exc:
        return CheckResult(endpoint.id, "fail", f"no TLS handshake with {where}:"
                           f" {getattr(exc, 'strerror', None) or exc}", "check that the"
                           " endpoint is up and serves TLS on that port",
                           {"endpoint": where})
    info = describe_certificate(der, now) if der else None
    try:
        verified = ssl.create_default_context(cafile=ca_path)
    except (OSError, ssl.SSLError) as exc:
        return CheckResult(endpoint.id, "fail", f"cannot load the CA file ca_path: {exc}",
                           "give a PEM file of CA certificates in ca_path", {})
    error = None
    try:
        _handshake(endpoint, verified, timeout)
    except ssl.SSLCertVerificationError as exc:
        error = exc
    except (OSError, ssl.SSLError) as exc:
        return CheckResult(endpoint.id, "fail", f"the verified TLS handshake with {where}"
                           f" failed: {exc}", "check the endpoint's TLS configuration",
                           {"endpoint": where, **(info or {})})
    return judge(endpoint, info, error, warn_days)
