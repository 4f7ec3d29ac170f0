# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Content-hashed Secrets and ConfigMaps: names, references, what is created and pruned."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.content import (
    CONTENT_LABEL,
    ConfigObjects,
    ContentError,
    check_inputs,
    hashed_name,
    normalize,
    referenced,
)


def template(secret: str | None = None, files: str | None = None, **extra: Any) -> dict:
    container: dict[str, Any] = {"name": "app"}
    if secret:
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    spec: dict[str, Any] = {"containers": [container], **extra}
    if files:
        spec["volumes"] = [{"name": "files", "configMap": {"name": files}}]
    return {"spec": {"template": {"spec": spec}}}


class FakeApi:
    def __init__(self, deployment: dict | None = None, replicasets: list[dict] | None = None,
                 objects: dict[tuple[str, str], dict] | None = None) -> None:
        self.deployment = deployment
        self.replicasets = replicasets or []
        self.objects = objects or {}  # (kind, name) -> labels
        self.calls: list[tuple] = []

    def read_deployment(self, namespace: str, name: str) -> dict | None:
        self.calls.append(("read_deployment", name))
        return self.deployment

    def list_replicasets(self, namespace: str, selector: str) -> list[dict]:
        self.calls.append(("list_replicasets", selector))
        return self.replicasets

    def list_metadata(self, kind: str, namespace: str, selector: str | None) -> list[dict]:
        self.calls.append(("list_metadata", kind, selector))
        key, _sep, value = (selector or "").partition("=")
        return [{"metadata": {"name": name, "labels": labels}}
                for (k, name), labels in sorted(self.objects.items())
                if k == kind and (not selector or labels.get(key) == value)]

    def create(self, kind: str, namespace: str, body: dict) -> bool:
        self.calls.append(("create", kind, body["metadata"]["name"]))
        self.objects[(kind, body["metadata"]["name"])] = body["metadata"]["labels"]
        return True

    def delete(self, kind: str, namespace: str, name: str) -> bool:
        self.calls.append(("delete", kind, name))
        del self.objects[(kind, name)]
        return True


def mine(app: str = "web") -> dict[str, str]:
    return {CONTENT_LABEL: app}


def test_the_name_follows_the_content_not_the_order_of_keys() -> None:
    a = hashed_name("web", "web-secret", "Secret", {"A": "1", "B": "2"})
    assert a == hashed_name("web", "web-secret", "Secret", {"B": "2", "A": "1"})
    assert a != hashed_name("web", "web-secret", "Secret", {"A": "1", "B": "3"})
    assert a != hashed_name("web", "web-secret", "ConfigMap", {"A": "1", "B": "2"})
    # Another Deployment shipping the same base name and data gets an object of its own.
    assert a != hashed_name("worker", "web-secret", "Secret", {"A": "1", "B": "2"})
    assert a.startswith("web-secret-") and len(a) == len("web-secret-") + 10


def test_references_from_every_place_a_pod_spec_names_them() -> None:
    spec = {
        "volumes": [{"secret": {"secretName": "s-vol"}}, {"configMap": {"name": "c-vol"}},
                    {"projected": {"sources": [{"secret": {"name": "s-proj"}},
                                               {"configMap": {"name": "c-proj"}}]}},
                    {"emptyDir": {}}],
        "initContainers": [{"envFrom": [{"configMapRef": {"name": "c-init"}}]}],
        "containers": [{"envFrom": [{"secretRef": {"name": "s-from"}}],
                        "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s-key"}}},
                                {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "c-key"}}},
                                {"name": "Z", "value": "plain"}]}],
        "imagePullSecrets": [{"name": "s-pull"}],
    }
    assert referenced(spec) == {
        ("Secret", "s-vol"), ("ConfigMap", "c-vol"), ("Secret", "s-proj"),
        ("ConfigMap", "c-proj"), ("ConfigMap", "c-init"), ("Secret", "s-from"),
        ("Secret", "s-key"), ("ConfigMap", "c-key"), ("Secret", "s-pull")}


def test_a_first_release_creates_both_and_prunes_nothing() -> None:
    api = FakeApi()
    outcome = ConfigObjects(api, "ns", "web").apply(
        {"Secret": {"web-secret": {"K": "v"}}, "ConfigMap": {"web-files": {"a.txt": "x"}}})
    secret = outcome.names["Secret"]["web-secret"]
    files = outcome.names["ConfigMap"]["web-files"]
    assert outcome.created == [f"Secret/{secret}", f"ConfigMap/{files}"]
    assert outcome.pruned == [] and outcome.changed
    assert api.objects[("Secret", secret)] == mine()


def test_the_same_content_again_changes_nothing() -> None:
    wanted = {"Secret": {"web-secret": {"K": "v"}}}
    name = hashed_name("web", "web-secret", "Secret", {"K": "v"})
    api = FakeApi(deployment=template(secret=name), objects={("Secret", name): mine()})
    outcome = ConfigObjects(api, "ns", "web").apply(wanted)
    assert not outcome.changed
    assert outcome.kept == [f"Secret/{name}"]
    assert not any(call[0] in ("create", "delete") for call in api.calls)


def test_content_a_retained_revision_uses_stays_and_unused_content_goes() -> None:
    old, current = "web-secret-aaaaaaaaaa", "web-secret-bbbbbbbbbb"
    gone = "web-secret-cccccccccc"
    api = FakeApi(
        deployment={**template(secret=current), "spec": {
            **template(secret=current)["spec"],
            "selector": {"matchLabels": {"app.kubernetes.io/name": "web"}}}},
        replicasets=[template(secret=old), template(secret=current)],
        objects={("Secret", old): mine(), ("Secret", current): mine(), ("Secret", gone): mine(),
                 # another app's content and an unlabelled Secret are never touched
                 ("Secret", "api-secret-dddddddddd"): mine("api"),
                 ("Secret", "web-secret"): {}})
    outcome = ConfigObjects(api, "ns", "web").apply({"Secret": {"web-secret": {"K": "new"}}})
    new = outcome.names["Secret"]["web-secret"]
    assert outcome.created == [f"Secret/{new}"]
    assert outcome.pruned == [f"Secret/{gone}"]
    assert set(api.objects) == {("Secret", old), ("Secret", current), ("Secret", new),
                                ("Secret", "api-secret-dddddddddd"), ("Secret", "web-secret")}
    assert ("list_replicasets", "app.kubernetes.io/name=web") in api.calls


def test_without_a_deployment_only_the_wanted_content_stays() -> None:
    api = FakeApi(objects={("ConfigMap", "web-files-aaaaaaaaaa"): mine()})
    outcome = ConfigObjects(api, "ns", "web").apply({"ConfigMap": {"web-files": {"a": "b"}}})
    assert outcome.pruned == ["ConfigMap/web-files-aaaaaaaaaa"]


def test_prune_false_deletes_nothing_and_reads_no_workload() -> None:
    api = FakeApi(objects={("Secret", "web-secret-aaaaaaaaaa"): mine()})
    outcome = ConfigObjects(api, "ns", "web").apply({"Secret": {"web-secret": {"K": "v"}}},
                                                    prune=False)
    assert outcome.pruned == []
    assert not any(call[0] in ("read_deployment", "delete") for call in api.calls)


def test_check_mode_reports_and_writes_nothing() -> None:
    api = FakeApi(objects={("Secret", "web-secret-aaaaaaaaaa"): mine()})
    outcome = ConfigObjects(api, "ns", "web").apply({"Secret": {"web-secret": {"K": "v"}}},
                                                    check_mode=True)
    assert outcome.created and outcome.pruned == ["Secret/web-secret-aaaaaaaaaa"]
    assert not any(call[0] in ("create", "delete") for call in api.calls)
    assert list(api.objects) == [("Secret", "web-secret-aaaaaaaaaa")]


def test_bodies_are_immutable_and_secret_values_go_in_string_data() -> None:
    objects = ConfigObjects(FakeApi(), "ns", "web", {"app.kubernetes.io/name": "web"})
    secret = objects.body("Secret", "web-secret-x", {"K": "v"})
    assert secret["immutable"] is True and secret["stringData"] == {"K": "v"}
    assert secret["metadata"]["labels"] == {"app.kubernetes.io/name": "web", **mine()}
    assert objects.body("ConfigMap", "web-files-x", {"a": "b"})["data"] == {"a": "b"}


def test_integers_become_text_and_bad_input_is_named() -> None:
    assert normalize({"Secret": {"s": {"PORT": 6379, "RATIO": 1.10}}}) == {
        "Secret": {"s": {"PORT": "6379", "RATIO": 1.10}}}
    problems = check_inputs({"Secret": {"Bad_Name": {"K": "v"}},
                             "ConfigMap": {"c": {"bad key!": "v", "FLAG": True, "R": 1.1}}})
    assert any("Secret name 'Bad_Name' is not a valid base name" in p for p in problems)
    assert any("key 'bad key!' is not a valid key" in p for p in problems)
    assert any("the value of key 'FLAG' must be text or an integer, not a bool" in p
               for p in problems)
    assert any("the value of key 'R' must be text or an integer, not a float" in p
               for p in problems)
    long_name = "a" * 64
    assert any(f"deployment '{long_name}' cannot be the value of the" in p
               for p in check_inputs({}, long_name))
    with pytest.raises(ContentError, match="Bad_Name"):
        ConfigObjects(FakeApi(), "ns", "web").apply({"Secret": {"Bad_Name": {}}})


def test_problems_never_hold_a_secret_value() -> None:
    problems = check_inputs({"Secret": {"s": {"TOKEN": ["canary-value-123"]}}})
    assert problems and not any("canary-value-123" in p for p in problems)


def test_a_selector_that_cannot_be_read_prunes_nothing_and_says_so() -> None:
    unused = "web-secret-aaaaaaaaaa"
    deployment = template(secret="web-secret-bbbbbbbbbb")
    deployment["spec"]["selector"] = {"matchExpressions": [{"key": "a", "operator": "Odd"}]}
    api = FakeApi(deployment=deployment, objects={("Secret", unused): mine()})
    outcome = ConfigObjects(api, "ns", "web").apply({"Secret": {"web-secret": {"K": "v"}}})
    assert outcome.pruned == [] and ("Secret", unused) in api.objects
    assert outcome.warnings and "not pruning" in outcome.warnings[0]
    assert "unsupported label selector operator 'Odd'" in outcome.warnings[0]


def test_match_expressions_find_the_replicasets_whose_content_stays() -> None:
    kept = "web-secret-aaaaaaaaaa"
    deployment = template(secret="web-secret-bbbbbbbbbb")
    deployment["spec"]["selector"] = {"matchExpressions": [
        {"key": "app", "operator": "In", "values": ["web"]}]}
    api = FakeApi(deployment=deployment, replicasets=[template(secret=kept)],
                  objects={("Secret", kept): mine()})
    outcome = ConfigObjects(api, "ns", "web").apply({"Secret": {"web-secret": {"K": "v"}}})
    assert outcome.pruned == [] and ("list_replicasets", "app in (web)") in api.calls


def test_objects_of_an_earlier_layout_go_once_no_revision_uses_them() -> None:
    app_labels = {"app.kubernetes.io/instance": "web"}
    deployment = template(secret="web-secret-bbbbbbbbbb")
    deployment["spec"]["selector"] = {"matchLabels": {"app": "web"}}
    api = FakeApi(deployment=deployment,
                  replicasets=[template(files="web-files")],  # a retained revision uses it
                  objects={("Secret", "web-secret"): app_labels,
                           ("ConfigMap", "web-files"): app_labels,
                           # the same name without the app's labels is someone else's
                           ("ConfigMap", "web-config"): {}})
    named = ["Secret/web-secret", "ConfigMap/web-files", "ConfigMap/web-config"]
    outcome = ConfigObjects(api, "ns", "web", app_labels).apply(
        {"Secret": {"web-secret": {"K": "v"}}}, prune_named=named)
    assert outcome.pruned == ["Secret/web-secret"]
    assert "ConfigMap/web-files" in outcome.kept
    assert ("ConfigMap", "web-files") in api.objects and ("ConfigMap", "web-config") in api.objects
    # Refused before the API is asked anything.
    quiet = FakeApi()
    with pytest.raises(ContentError, match="prune_named: 'Pod/x' is not Secret/<name> or"
                                           " ConfigMap/<name>; prune_named: 'Secret' is not"):
        ConfigObjects(quiet, "ns", "web").apply({}, prune_named=["Pod/x", "Secret"])
    assert quiet.calls == []
