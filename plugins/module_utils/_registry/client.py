# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""A read-only client of the registry HTTP API v2 (the OCI distribution specification).

It reads what a tag points to: the manifest's digest (what ``repo@sha256:...`` pins), and
the image's config digest, which is the image ID the Docker engine reports for a local
image - so a local build and a pushed tag can be compared without pulling anything.

Authentication follows the registry's challenge on ``GET /v2/``: ``Basic`` (htpasswd, as
the lab's registry) sends the credentials on every request; ``Bearer`` fetches a token
from the challenge's realm for the repository's ``pull`` scope, with the credentials as
basic auth when there are any (Docker Hub, GitLab, Harbor, ...). Every request is recorded
in ``requests`` without its headers, so neither a password nor a token can reach a result.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode, urlsplit

from ansible_collections.prodready.deploy.plugins.module_utils._registry.reference import (
    Repository,
    check_digest,
)

# Media types this client understands, in the order of the Accept header.
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
ACCEPT = ", ".join((*INDEX_TYPES, *MANIFEST_TYPES))


class RegistryError(Exception):
    """A registry request failed; the message says which and why (never a secret)."""


class RegistryUnreachableError(RegistryError):
    """No HTTP answer: refused, timed out, no route, name not resolved."""


class RegistryTlsError(RegistryError):
    """The TLS handshake failed, e.g. a certificate the CA did not sign."""


class RegistryAuthError(RegistryError):
    """The registry wants credentials, refused the ones given, or denied the access."""


class RegistryProtocolError(RegistryError):
    """An answer this client cannot use: an unknown media type, a digest that does not match
    the content, a status the API does not define."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lowercase
    body: bytes

    def json(self, what: str) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise RegistryProtocolError(f"{what}: the body is not JSON ({exc})") from exc

    def error_text(self) -> str:
        """``CODE: message`` of the registry's error body, else the start of the body."""
        try:
            errors = json.loads(self.body).get("errors") or []
            if errors:
                return "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        except (ValueError, AttributeError):
            pass
        return self.body[:200].decode("utf-8", "replace").strip() or "no body"


# (method, url, headers) -> Response; raises RegistryUnreachableError / RegistryTlsError.
Transport = Callable[[str, str, dict[str, str]], Response]


def open_url_transport(ca_cert: str | None = None, validate_certs: bool = True,
                       timeout: float = 30) -> Transport:
    """A transport on Ansible's open_url, verifying the chain against ``ca_cert`` (or the
    system's CAs). HTTP errors are answers, not exceptions."""
    from ansible.module_utils.urls import open_url  # pylint: disable=import-outside-toplevel

    def send(method: str, url: str, headers: dict[str, str]) -> Response:
        try:
            resp = open_url(url, method=method, headers=headers, timeout=timeout,
                            validate_certs=validate_certs, ca_path=ca_cert,
                            follow_redirects="safe", http_agent="prodready.deploy")
            return Response(resp.status, _lower(resp.headers), resp.read())
        except HTTPError as exc:
            return Response(exc.code, _lower(exc.headers or {}), exc.read() or b"")
        except URLError as exc:
            raise _connection_error(url, exc.reason, timeout) from exc
        except (ssl.SSLError, OSError) as exc:  # socket.timeout, ConnectionResetError, ...
            raise _connection_error(url, exc, timeout) from exc

    return send


def _lower(headers: Any) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _connection_error(url: str, reason: Any, timeout: float) -> RegistryError:
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    if isinstance(reason, ssl.SSLCertVerificationError):
        return RegistryTlsError(f"TLS verification of {origin} failed "
                                f"({reason.verify_message or reason}); give the CA that "
                                f"signed its certificate as ca_cert")
    if isinstance(reason, ssl.SSLError):
        return RegistryTlsError(f"TLS handshake with {origin} failed ({reason})")
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return RegistryUnreachableError(f"cannot reach {origin} (no answer within "
                                        f"{timeout:g} s)")
    text = getattr(reason, "strerror", None) or str(reason)
    return RegistryUnreachableError(f"cannot reach {origin} ({text})")


_PARAM_RE = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(value: str) -> tuple[str, dict[str, str]]:
    """``Bearer realm="...",service="..."`` -> ("bearer", {"realm": ..., "service": ...})."""
    scheme, _sep, rest = value.strip().partition(" ")
    return scheme.lower(), dict(_PARAM_RE.findall(rest))


@dataclass
class Manifest:
    digest: str
    media_type: str
    document: dict[str, Any]

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES

    @property
    def config_digest(self) -> str | None:
        return None if self.is_index else (self.document.get("config") or {}).get("digest")


@dataclass
class RegistryClient:
    """Reads manifests and blobs of one repository."""

    repository: Repository
    transport: Transport
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    base_url: str | None = None
    requests: list[str] = field(default_factory=list)
    _authorization: str | None = field(default=None, repr=False)
    _basic_sent: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        self.base_url = (self.base_url or self.repository.api_base()).rstrip("/")

    # -- authentication ------------------------------------------------------------------
    def _basic(self) -> str:
        raw = f"{self.username}:{self.password or ''}".encode()
        return "Basic " + base64.b64encode(raw).decode("ascii")

    def _who(self) -> str:
        return f"user {self.username}" if self.username else "anonymous clients"

    def _refused(self, by: str, status: int, resp: Response) -> RegistryAuthError:
        what = (f"the credentials of user {self.username}" if self.username
                else "anonymous access")
        return RegistryAuthError(f"{by} refused {what} ({status} {resp.error_text()})")

    def _answer_challenge(self, resp: Response, path: str) -> None:
        """Set the Authorization the registry asked for in its 401, or raise."""
        scheme, params = parse_challenge(resp.headers.get("www-authenticate", ""))
        if scheme == "basic":
            if not self.username:
                raise RegistryAuthError(f"{self.base_url} asks for credentials (Basic) and "
                                        f"none were given")
            if self._basic_sent:
                raise self._refused(self.base_url, 401, resp)
            self._authorization, self._basic_sent = self._basic(), True
        elif scheme == "bearer" and params.get("realm"):
            scope = params.get("scope") or f"repository:{self.repository.path}:pull"
            self._authorization = "Bearer " + self._token(params["realm"],
                                                          params.get("service"), scope)
        else:
            raise RegistryAuthError(f"GET {path}: 401 without a usable challenge "
                                    f"({resp.headers.get('www-authenticate') or 'none'})")

    def _token(self, realm: str, service: str | None, scope: str) -> str:
        query = {"scope": scope, **({"service": service} if service else {})}
        url = f"{realm}{'&' if '?' in realm else '?'}{urlencode(query)}"
        headers = {"Authorization": self._basic()} if self.username else {}
        resp = self.transport("GET", url, headers)
        self.requests.append(f"GET {realm} scope={scope} -> {resp.status}")
        if resp.status in (401, 403):
            raise self._refused(f"the token service {realm}", resp.status, resp)
        if resp.status != 200:
            raise RegistryProtocolError(f"the token service {realm} answered {resp.status} "
                                        f"({resp.error_text()})")
        body = resp.json(f"token from {realm}")
        token = (body.get("token") or body.get("access_token")) if isinstance(body, dict) \
            else None
        if not token:
            raise RegistryProtocolError(f"the token service {realm} returned no token")
        return token

    # -- requests ------------------------------------------------------------------------
    def get(self, path: str, accept: str | None = None) -> Response:
        """GET ``/v2/...``, answering the registry's challenges (at most two: a Bearer token
        for another scope may be asked for once more)."""
        challenges = 0
        while True:
            headers = {"Accept": accept} if accept else {}
            if self._authorization:
                headers["Authorization"] = self._authorization
            resp = self.transport("GET", self.base_url + path, headers)
            self.requests.append(f"GET {path} -> {resp.status}")
            if resp.status != 401 or challenges == 2:
                break
            challenges += 1
            self._answer_challenge(resp, path)
        if resp.status == 401:
            raise self._refused(self.base_url, 401, resp)
        if resp.status == 403:
            raise RegistryAuthError(f"{self.base_url} denied {self._who()} access to "
                                    f"{self.repository.path} (403 {resp.error_text()})")
        return resp

    def check_access(self) -> None:
        """``GET /v2/``: the registry speaks v2 and accepts the credentials."""
        resp = self.get("/v2/")
        if resp.status != 200:
            raise RegistryProtocolError(f"{self.base_url}/v2/ answered {resp.status} "
                                        f"({resp.error_text()}); is it a v2 registry?")

    def manifest(self, reference: str) -> Manifest | None:
        """The manifest a tag or digest names; None when the registry does not have it."""
        path = f"/v2/{self.repository.path}/manifests/{reference}"
        resp = self.get(path, ACCEPT)
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise RegistryProtocolError(f"GET {path} answered {resp.status} "
                                        f"({resp.error_text()})")
        digest = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        announced = resp.headers.get("docker-content-digest")
        if announced and announced != digest:
            raise RegistryProtocolError(f"GET {path}: the registry announced {announced} but "
                                        f"the manifest it sent hashes to {digest}")
        document = resp.json(f"GET {path}")
        if not isinstance(document, dict):
            raise RegistryProtocolError(f"GET {path}: the manifest is not a JSON object")
        media_type = (document.get("mediaType")
                      or resp.headers.get("content-type", "").split(";")[0].strip())
        if media_type not in (*INDEX_TYPES, *MANIFEST_TYPES):
            raise RegistryProtocolError(f"GET {path}: unsupported manifest type "
                                        f"{media_type or 'none'} (schema 1 and others are "
                                        f"not read; push with a current client)")
        return Manifest(digest=digest, media_type=media_type, document=document)

    def blob_json(self, digest: str) -> dict[str, Any]:
        """A JSON blob (an image config), its sha256 verified."""
        check_digest(digest, "blob digest")
        path = f"/v2/{self.repository.path}/blobs/{digest}"
        resp = self.get(path)
        if resp.status != 200:
            raise RegistryProtocolError(f"GET {path} answered {resp.status} "
                                        f"({resp.error_text()})")
        actual = "sha256:" + hashlib.sha256(resp.body).hexdigest()
        if actual != digest:
            raise RegistryProtocolError(f"GET {path}: the blob hashes to {actual}")
        document = resp.json(f"GET {path}")
        return document if isinstance(document, dict) else {}
