# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The registry client on a scripted transport: Basic and Bearer challenges, refused
credentials, manifests and their digests, blobs, and connection errors."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._registry.client import (
    ACCEPT,
    DOCKER_MANIFEST,
    OCI_INDEX,
    RegistryAuthError,
    RegistryClient,
    RegistryProtocolError,
    RegistryTlsError,
    RegistryUnreachableError,
    Response,
    _connection_error,
    parse_challenge,
)
from ansible_collections.prodready.deploy.plugins.module_utils._registry.reference import (
    Repository,
)

REPO = Repository("r.example", "shop/web")
BASE = "https://r.example"
PASSWORD = "canary-unit-pw-41c2"
UNAUTHORIZED = json.dumps({"errors": [{"code": "UNAUTHORIZED",
                                       "message": "authentication required"}]}).encode()


def digest(body: bytes) -> str:
    return "sha256:" + hashlib.sha256(body).hexdigest()


class Script:
    """A transport that answers from a table keyed by URL and Authorization, and records
    what was sent."""

    def __init__(self, routes: dict[tuple[str, str | None], Response]) -> None:
        self.routes = routes
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    def __call__(self, method: str, url: str, headers: dict[str, str]) -> Response:
        self.sent.append((method, url, headers))
        key = (url, headers.get("Authorization"))
        if key not in self.routes:
            key = (url, "*")
        return self.routes[key]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def challenge(value: str) -> Response:
    return Response(401, {"www-authenticate": value}, UNAUTHORIZED)


MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
                       "config": {"digest": "sha256:" + "c" * 64}, "layers": []}).encode()


def test_basic_challenge_then_manifest() -> None:
    auth = basic("deploy", PASSWORD)
    script = Script({
        (f"{BASE}/v2/", None): challenge('Basic realm="r"'),
        (f"{BASE}/v2/", auth): Response(200, {}, b"{}"),
        (f"{BASE}/v2/shop/web/manifests/1.0", auth):
            Response(200, {"docker-content-digest": digest(MANIFEST)}, MANIFEST),
    })
    client = RegistryClient(REPO, script, "deploy", PASSWORD)
    client.check_access()
    manifest = client.manifest("1.0")
    assert manifest is not None
    assert manifest.digest == digest(MANIFEST)
    assert manifest.config_digest == "sha256:" + "c" * 64
    assert script.sent[-1][2]["Accept"] == ACCEPT
    assert client.requests == ["GET /v2/ -> 401", "GET /v2/ -> 200",
                               "GET /v2/shop/web/manifests/1.0 -> 200"]
    assert PASSWORD not in repr(client) + " ".join(client.requests)


def test_basic_credentials_refused() -> None:
    script = Script({(f"{BASE}/v2/", None): challenge('Basic realm="r"'),
                     (f"{BASE}/v2/", "*"): challenge('Basic realm="r"')})
    client = RegistryClient(REPO, script, "deploy", PASSWORD)
    with pytest.raises(RegistryAuthError) as err:
        client.check_access()
    assert str(err.value) == ("https://r.example refused the credentials of user deploy "
                              "(401 UNAUTHORIZED: authentication required)")
    assert PASSWORD not in str(err.value)


def test_basic_without_credentials() -> None:
    script = Script({(f"{BASE}/v2/", None): challenge('Basic realm="r"')})
    with pytest.raises(RegistryAuthError, match=r"asks for credentials \(Basic\) and none"):
        RegistryClient(REPO, script).check_access()


def test_bearer_token_for_the_repository_scope() -> None:
    realm = "https://auth.example/token"
    token_url = f"{realm}?scope=repository%3Ashop%2Fweb%3Apull&service=reg"
    script = Script({
        (f"{BASE}/v2/", None): challenge(f'Bearer realm="{realm}",service="reg"'),
        (token_url, basic("deploy", PASSWORD)): Response(200, {}, b'{"token": "tok-1"}'),
        (f"{BASE}/v2/", "Bearer tok-1"): Response(200, {}, b"{}"),
        (f"{BASE}/v2/shop/web/manifests/1.0", "Bearer tok-1"): Response(404, {}, b""),
    })
    client = RegistryClient(REPO, script, "deploy", PASSWORD)
    client.check_access()
    assert client.manifest("1.0") is None
    assert client.requests[1] == (f"GET {realm} scope=repository:shop/web:pull -> 200")
    assert "tok-1" not in " ".join(client.requests)


def test_bearer_asks_again_for_another_scope() -> None:
    realm = "https://auth.example/token"
    pull = f"{realm}?scope=repository%3Ashop%2Fweb%3Apull"
    script = Script({
        (f"{BASE}/v2/shop/web/manifests/1.0", None): challenge(f'Bearer realm="{realm}"'),
        (pull, None): Response(200, {}, b'{"access_token": "anon"}'),
        (f"{BASE}/v2/shop/web/manifests/1.0", "Bearer anon"):
            challenge(f'Bearer realm="{realm}",scope="repository:shop/web:pull,push"'),
        (f"{realm}?scope=repository%3Ashop%2Fweb%3Apull%2Cpush", None):
            Response(200, {}, b'{"token": "wide"}'),
        (f"{BASE}/v2/shop/web/manifests/1.0", "Bearer wide"):
            Response(200, {}, MANIFEST),
    })
    client = RegistryClient(REPO, script)
    assert client.manifest("1.0").digest == digest(MANIFEST)


def test_bearer_token_refused() -> None:
    realm = "https://auth.example/token"
    script = Script({
        (f"{BASE}/v2/", None): challenge(f'Bearer realm="{realm}"'),
        (f"{realm}?scope=repository%3Ashop%2Fweb%3Apull", "*"): Response(401, {}, b"no"),
    })
    with pytest.raises(RegistryAuthError, match="token service .* refused the credentials "
                                                "of user deploy"):
        RegistryClient(REPO, script, "deploy", PASSWORD).check_access()


def test_bearer_token_missing_from_the_answer() -> None:
    realm = "https://auth.example/token"
    script = Script({
        (f"{BASE}/v2/", None): challenge(f'Bearer realm="{realm}"'),
        (f"{realm}?scope=repository%3Ashop%2Fweb%3Apull", None): Response(200, {}, b"{}"),
    })
    with pytest.raises(RegistryProtocolError, match="returned no token"):
        RegistryClient(REPO, script).check_access()


def test_anonymous_access_refused() -> None:
    script = Script({(f"{BASE}/v2/", None): challenge("Bearer realm=\"https://a/t\""),
                     ("https://a/t?scope=repository%3Ashop%2Fweb%3Apull", None):
                         Response(200, {}, b'{"token": "t"}'),
                     (f"{BASE}/v2/", "Bearer t"): challenge("Bearer realm=\"https://a/t\""),
                     })
    with pytest.raises(RegistryAuthError) as err:
        RegistryClient(REPO, script).check_access()
    assert str(err.value) == ("https://r.example refused anonymous access "
                              "(401 UNAUTHORIZED: authentication required)")


def test_denied_is_named() -> None:
    script = Script({(f"{BASE}/v2/shop/web/manifests/1.0", None): Response(
        403, {}, json.dumps({"errors": [{"code": "DENIED", "message": "no"}]}).encode())})
    with pytest.raises(RegistryAuthError, match=r"denied anonymous clients access to shop/web "
                                                r"\(403 DENIED: no\)"):
        RegistryClient(REPO, script).manifest("1.0")


@pytest.mark.parametrize(("headers", "body", "fragment"), [
    ({"docker-content-digest": "sha256:" + "0" * 64}, MANIFEST, "hashes to"),
    ({}, b"not json", "is not JSON"),
    ({}, b"[]", "is not a JSON object"),
    ({"content-type": "application/vnd.docker.distribution.manifest.v1+prettyjws"},
     b'{"schemaVersion": 1}', "unsupported manifest type"),
])
def test_manifest_problems(headers: dict[str, str], body: bytes, fragment: str) -> None:
    script = Script({(f"{BASE}/v2/shop/web/manifests/1.0", None): Response(200, headers, body)})
    with pytest.raises(RegistryProtocolError, match=fragment):
        RegistryClient(REPO, script).manifest("1.0")


def test_media_type_from_the_header_and_index() -> None:
    index = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    script = Script({(f"{BASE}/v2/shop/web/manifests/1.0", None):
                     Response(200, {"content-type": OCI_INDEX + "; charset=utf-8"}, index)})
    manifest = RegistryClient(REPO, script).manifest("1.0")
    assert manifest.is_index and manifest.config_digest is None


def test_blob_is_verified() -> None:
    config = b'{"config": {"Labels": {"a": "b"}}}'
    good, bad = digest(config), "sha256:" + "1" * 64
    script = Script({(f"{BASE}/v2/shop/web/blobs/{good}", None): Response(200, {}, config),
                     (f"{BASE}/v2/shop/web/blobs/{bad}", None): Response(200, {}, config)})
    client = RegistryClient(REPO, script)
    assert client.blob_json(good)["config"]["Labels"] == {"a": "b"}
    with pytest.raises(RegistryProtocolError, match="the blob hashes to"):
        client.blob_json(bad)


def test_v2_missing() -> None:
    script = Script({(f"{BASE}/v2/", None): Response(404, {}, b"<html>nope</html>")})
    with pytest.raises(RegistryProtocolError, match=r"answered 404 \(<html>nope</html>\); is "
                                                    r"it a v2 registry"):
        RegistryClient(REPO, script).check_access()


def test_base_url_override() -> None:
    script = Script({("http://mirror:8080/v2/", None): Response(200, {}, b"{}")})
    client = RegistryClient(REPO, script, base_url="http://mirror:8080/")
    client.check_access()
    assert client.base_url == "http://mirror:8080"


@pytest.mark.parametrize(("reason", "kind", "text"), [
    (ConnectionRefusedError(111, "Connection refused"), RegistryUnreachableError,
     "cannot reach https://r.example:5000 (Connection refused)"),
    (TimeoutError("timed out"), RegistryUnreachableError,
     "cannot reach https://r.example:5000 (no answer within 7 s)"),
    (socket.gaierror(-2, "Name or service not known"), RegistryUnreachableError,
     "cannot reach https://r.example:5000 (Name or service not known)"),
    (ssl.SSLError(1, "wrong version number"), RegistryTlsError,
     "TLS handshake with https://r.example:5000 failed"),
])
def test_connection_errors(reason: Any, kind: type, text: str) -> None:
    err = _connection_error("https://r.example:5000/v2/x", reason, 7)
    assert isinstance(err, kind)
    assert str(err).startswith(text)


def test_certificate_error_names_the_ca_option() -> None:
    reason = ssl.SSLCertVerificationError(1, "verify failed")
    reason.verify_message = "unable to get local issuer certificate"
    err = _connection_error("https://r.example/v2/", reason, 5)
    assert isinstance(err, RegistryTlsError)
    assert str(err) == ("TLS verification of https://r.example failed (unable to get local "
                        "issuer certificate); give the CA that signed its certificate as "
                        "ca_cert")


@pytest.mark.parametrize(("value", "scheme", "params"), [
    ('Basic realm="x"', "basic", {"realm": "x"}),
    ('Bearer realm="https://a/t",service="s",scope="repository:a:pull"', "bearer",
     {"realm": "https://a/t", "service": "s", "scope": "repository:a:pull"}),
    ("", "", {}),
])
def test_parse_challenge(value: str, scheme: str, params: dict[str, str]) -> None:
    assert parse_challenge(value) == (scheme, params)


def test_error_text() -> None:
    assert Response(401, {}, UNAUTHORIZED).error_text() == \
        "UNAUTHORIZED: authentication required"
    assert Response(500, {}, b"").error_text() == "no body"
