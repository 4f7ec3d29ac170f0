# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The reference app image builds hermetically, is pushed, runs, and answers."""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families


def get(url: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def docker(lab_env: dict[str, str], *args: str) -> str:
    env = {**os.environ, "DOCKER_HOST": lab_env["DOCKER_HOST"],
           "DOCKER_CONFIG": lab_env["DOCKER_CONFIG"]}
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True,
                          check=True).stdout


def test_health_is_200_with_database_and_redis(refapp: dict[str, str]) -> None:
    status, _headers, body = get(refapp["base"] + "/health")
    assert status == 200, body
    assert json.loads(body)["checks"] == {"database": "ok", "redis": "ok"}


def test_metrics_parse_as_prometheus_exposition(refapp: dict[str, str]) -> None:
    get(refapp["base"] + "/health")
    status, headers, body = get(refapp["base"] + "/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(body.decode())}
    assert "http_requests" in families  # the counter http_requests_total
    assert "http_request_duration_seconds" in families
    assert families["http_request_duration_seconds"].type == "histogram"
    health = [s for s in families["http_requests"].samples
              if s.labels.get("endpoint") == "/health" and s.labels.get("status") == "200"]
    assert health and health[0].value >= 1


def test_version_reports_the_pushed_digest(refapp: dict[str, str]) -> None:
    status, _headers, body = get(refapp["base"] + "/version")
    assert status == 200
    version = json.loads(body)
    assert version["image_digest"] == refapp["image"].rsplit("@", 1)[1]
    assert version["alembic_head"]


def test_security_headers_and_no_server_details(refapp: dict[str, str]) -> None:
    _status, headers, _body = get(refapp["base"] + "/health")
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert "max-age=31536000" in headers["Strict-Transport-Security"]
    assert headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"]
    assert "X-Powered-By" not in headers
    assert "gunicorn" not in headers.get("Server", "").lower()


def test_image_is_pinned_in_registry_and_labelled(lab_env: dict[str, str],
                                                  refapp: dict[str, str]) -> None:
    repo, digest = refapp["image"].split("@")
    name = repo.split("/", 1)[1]
    tag = json.loads(docker(lab_env, "image", "inspect", refapp["image"]))[0]
    labels = tag["Config"]["Labels"]
    for key in ("source", "revision", "version", "created"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert tag["Config"]["User"] not in ("", "0", "root")
    token = f"{lab_env['LAB_REGISTRY_USERNAME']}:{lab_env['LAB_REGISTRY_PASSWORD']}"
    req = urllib.request.Request(
        f"{lab_env['LAB_REGISTRY_URL']}/v2/{name}/manifests/{labels['org.opencontainers.image.version']}",
        method="HEAD", headers={
            "Authorization": "Basic " + base64.b64encode(token.encode()).decode(),
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"})
    ctx = ssl.create_default_context(cafile=lab_env["LAB_CA_CERT"])
    with urllib.request.urlopen(req, context=ctx, timeout=5) as resp:
        assert resp.headers["Docker-Content-Digest"] == digest


def test_container_runs_read_only_as_non_root(lab_env: dict[str, str], refapp: dict[str, str]
                                              ) -> None:
    info = json.loads(docker(lab_env, "inspect", "prodready-refapp"))[0]
    assert info["HostConfig"]["ReadonlyRootfs"] is True
    assert info["State"]["Running"] is True
    assert info["Config"]["Image"] == refapp["image"]
