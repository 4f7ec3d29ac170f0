# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""TLS endpoint checks: endpoint parsing, certificate parsing and the verdicts, with
certificates made here by cryptography."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.prodready.deploy.plugins.module_utils._preflight import tls
from ansible_collections.prodready.deploy.plugins.module_utils._preflight.report import (
    PreflightInputError,
)

NOW = datetime.datetime(2026, 11, 27, 10, 0, tzinfo=datetime.UTC)


def certificate(days_left: float, names=("api.example.com",), ips=()) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0] if names else "x")])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    san = [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address(i))
                                              for i in ips]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
            .public_key(key.public_key()).serial_number(0x1234)
            .not_valid_before(NOW - datetime.timedelta(days=30))
            .not_valid_after(NOW + datetime.timedelta(days=days_left))
            .add_extension(x509.SubjectAlternativeName(san), critical=False)
            .sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(("text", "endpoint", "check_id"), [
    ("api.example.com:8443", tls.Endpoint("api.example.com", 8443, "api.example.com"),
     "tls.api.example.com:8443"),
    ("api.example.com", tls.Endpoint("api.example.com", 443, "api.example.com"),
     "tls.api.example.com:443"),
    ("https://127.0.0.1:5000/v2/", tls.Endpoint("127.0.0.1", 5000, "127.0.0.1"),
     "tls.127.0.0.1:5000"),
    ("[::1]:8443", tls.Endpoint("::1", 8443, "::1"), "tls.[::1]:8443"),
])
def test_parse_endpoint(text, endpoint, check_id):
    assert tls.parse_endpoint(text) == endpoint
    assert endpoint.id == check_id


@pytest.mark.parametrize("text", ["", "host:port", "https://:443"])
def test_parse_endpoint_refuses(text):
    with pytest.raises(PreflightInputError):
        tls.parse_endpoint(text)


def test_describe_certificate():
    info = tls.describe_certificate(certificate(45.5, ("api.example.com", "www.example.com"),
                                                ("127.0.0.1",)), NOW)
    assert info["subject"] == "api.example.com"
    assert info["issuer"] == "Test CA"
    assert info["names"] == ["api.example.com", "www.example.com", "127.0.0.1"]
    assert info["days_left"] == 45
    assert info["expired"] is False and info["serial"] == "1234"


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, message)
    error.verify_code = code
    error.verify_message = message
    return error


ENDPOINT = tls.Endpoint("api.example.com", 443, "api.example.com")


@pytest.mark.parametrize(("days", "error", "status", "text"), [
    (90, None, "pass", "valid for api.example.com, 90 days left, issuer Test CA"),
    (10, None, "warn", "expires in 10 days (2026-12-07), under the 30-day threshold"),
    (-2, verify_error(10, "certificate has expired"), "fail", "expired on 2026-11-25"),
    (90, verify_error(62, "Hostname mismatch, certificate is not valid for 'api.example.com'."),
     "fail", "does not match the host name api.example.com (it names wrong.example.com)"),
    (90, verify_error(20, "unable to get local issuer certificate"), "fail",
     "chain of api.example.com:443 is not trusted: unable to get local issuer certificate"),
    (90, verify_error(7, "certificate signature failure"), "fail",
     "is not valid: certificate signature failure"),
])
def test_judge(days, error, status, text):
    names = ("wrong.example.com",) if error is not None and error.verify_code == 62 else \
        ("api.example.com",)
    info = tls.describe_certificate(certificate(days, names), NOW)
    result = tls.judge(ENDPOINT, info, error, warn_days=30)
    assert result.id == "tls.api.example.com:443"
    assert result.status == status
    assert text in result.message


def test_unreachable_endpoint_fails_naming_it():

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = tls.check_endpoint(tls.Endpoint("127.0.0.1", port, "127.0.0.1"), None, 2, 30)
    assert result.status == "fail"
    assert result.message.startswith(f"no TLS handshake with 127.0.0.1:{port}: ")
