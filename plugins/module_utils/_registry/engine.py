# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The two Docker engine requests a release push needs: tag a local image, push a tag.

Straight to the engine's API (``POST /images/{name}/tag``, ``POST /images/{name}/push``)
over its Unix socket or TCP (TLS from ``DOCKER_TLS_VERIFY`` / ``DOCKER_CERT_PATH`` as the
docker CLI reads them). The registry credentials travel in the push's ``X-Registry-Auth``
header, so no login is stored in a Docker client configuration. The push's answer is a
stream of JSON messages; an ``error`` among them fails the push with the engine's words.
"""

from __future__ import annotations

import base64
import codecs
import http.client
import json
import os
import socket
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

DEFAULT_HOST = "unix:///var/run/docker.sock"


class EngineError(Exception):
    """The engine refused, failed or could not be reached; the message says which."""


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self._path)
        self.sock = sock


def registry_auth(username: str | None, password: str | None, server: str) -> str:
    """The X-Registry-Auth header's value: base64url of the credentials as JSON ("{}" for
    an anonymous push, which the engine still wants)."""
    body: dict[str, str] = {}
    if username:
        body = {"username": username, "password": password or "", "serveraddress": server}
    return base64.urlsafe_b64encode(json.dumps(body).encode()).decode()


@dataclass
class Engine:
    """The engine at `host` (``unix:///path`` or ``tcp://host:port``; default DOCKER_HOST,
    else the local socket)."""

    host: str | None = None
    timeout: float = 600.0
    env: Mapping[str, str] | None = None
    connect: Callable[[], http.client.HTTPConnection] | None = None  # tests

    def __post_init__(self) -> None:
        env = os.environ if self.env is None else self.env
        self.host = self.host or env.get("DOCKER_HOST") or DEFAULT_HOST
        if self.connect is not None:
            return
        parts = urlsplit(self.host)
        if parts.scheme == "unix":
            path = parts.path or "/var/run/docker.sock"
            self.connect = lambda: _UnixConnection(path, self.timeout)
        elif parts.scheme == "tcp" and parts.hostname:
            try:
                port = parts.port or 2375
            except ValueError:
                raise EngineError(f"Docker host {self.host!r} has no valid port") from None
            # As the docker CLI: any DOCKER_TLS_VERIFY verifies; DOCKER_TLS alone does not.
            if env.get("DOCKER_TLS_VERIFY") or env.get("DOCKER_TLS"):
                context = self._tls_context(env, verify=bool(env.get("DOCKER_TLS_VERIFY")))
                self.connect = lambda: http.client.HTTPSConnection(
                    parts.hostname, port, timeout=self.timeout, context=context)
            else:
                self.connect = lambda: http.client.HTTPConnection(
                    parts.hostname, port, timeout=self.timeout)
        else:
            raise EngineError(f"Docker host {self.host!r} is not unix:///path or"
                              " tcp://host:port; for ssh:// engines push with"
                              " community.docker.docker_image_push")

    @staticmethod
    def _tls_context(env: Mapping[str, str], verify: bool = True) -> ssl.SSLContext:
        certs = env.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.docker")
        try:
            if verify:
                context = ssl.create_default_context(cafile=os.path.join(certs, "ca.pem"))
            else:  # DOCKER_TLS without DOCKER_TLS_VERIFY: encrypted, the engine unchecked
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            cert, key = os.path.join(certs, "cert.pem"), os.path.join(certs, "key.pem")
            if verify or os.path.exists(cert):
                context.load_cert_chain(cert, key)
        except (OSError, ssl.SSLError) as exc:
            raise EngineError(f"cannot load the Docker TLS files (ca.pem, cert.pem, key.pem)"
                              f" from {certs} (DOCKER_CERT_PATH): {exc}") from None
        return context

    def _request(self, method: str, path: str, query: Mapping[str, str],
                 headers: Mapping[str, str] | None = None
                 ) -> tuple[int, http.client.HTTPResponse, http.client.HTTPConnection]:
        if self.connect is None:  # set by __post_init__; only a caller clearing it gets here
            raise EngineError(f"no connection to the Docker engine at {self.host}")
        conn = self.connect()
        try:
            conn.request(method, f"{path}?{urlencode(query)}", headers=dict(headers or {}))
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise EngineError(f"cannot reach the Docker engine at {self.host}:"
                              f" {getattr(exc, 'strerror', None) or exc}") from None
        return resp.status, resp, conn

    @staticmethod
    def _message(raw: bytes) -> str:
        try:
            return str(json.loads(raw).get("message") or raw.decode(errors="replace")).strip()
        except (ValueError, AttributeError):
            return raw.decode(errors="replace").strip()

    def tag(self, image: str, repository: str, tag: str) -> None:
        """Name the local `image` (an ID or a reference) `repository:tag`."""
        status, resp, conn = self._request(
            "POST", f"/images/{quote(image, safe=':')}/tag", {"repo": repository, "tag": tag})
        try:
            raw = resp.read()
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(f"the Docker engine's answer to tagging {image} was cut off:"
                              f" {getattr(exc, 'strerror', None) or exc}") from None
        finally:
            conn.close()
        if status not in (200, 201):
            raise EngineError(f"the Docker engine could not tag {image} as"
                              f" {repository}:{tag}: {status} {self._message(raw)}")

    def push(self, repository: str, tag: str, auth: str,
             progress: Callable[[dict[str, Any]], None] | None = None) -> str | None:
        """Push `repository:tag`; the digest the engine reports for it (None when it did
        not say). An error in the stream raises EngineError with the engine's message."""
        status, resp, conn = self._request(
            "POST", f"/images/{quote(repository, safe='/:')}/push", {"tag": tag},
            {"X-Registry-Auth": auth})
        digest = None
        try:
            if status != 200:
                raise EngineError(f"the Docker engine refused to push {repository}:{tag}:"
                                  f" {status} {self._message(resp.read())}")
            decoder = json.JSONDecoder()
            text = codecs.getincrementaldecoder("utf-8")("replace")
            buffer = ""
            for chunk in iter(lambda: resp.read1(65536), b""):
                buffer += text.decode(chunk)
                while True:
                    buffer = buffer.lstrip()
                    if not buffer:
                        break
                    try:
                        message, end = decoder.raw_decode(buffer)
                    except ValueError:
                        break  # the rest of this message is in the next chunk
                    buffer = buffer[end:]
                    if not isinstance(message, dict):
                        continue
                    if message.get("error") or message.get("errorDetail"):
                        detail = message.get("errorDetail") or {}
                        raise EngineError(f"the push of {repository}:{tag} failed:"
                                          f" {message.get('error') or detail.get('message')}")
                    digest = (message.get("aux") or {}).get("Digest") or digest
                    if progress is not None:
                        progress(message)
            buffer = (buffer + text.decode(b"", final=True)).strip()
            if buffer:
                raise EngineError(f"the push of {repository}:{tag} ended with an answer that is"
                                  f" not JSON: {buffer[:300]}")
        except (OSError, http.client.HTTPException) as exc:
            raise EngineError(f"the push of {repository}:{tag} was cut off:"
                              f" {getattr(exc, 'strerror', None) or exc}") from None
        finally:
            conn.close()
        return digest
