# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release record - merge, diff, query order, previous, validation - on an in-memory
ConfigMap API (k8s_configmap_fakes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from k8s_configmap_fakes import FakeConfigMaps, Unconnectable

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    InvalidInput,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.record import (
    MAX_RECORD_BYTES,
    RecordError,
    RecordNotFound,
    merge,
    run,
    validate_release_id,
)

NS = "shop"
SELECTOR = ("app.kubernetes.io/name=web,app.kubernetes.io/managed-by=prodready.deploy,"
            "prodready.deploy/release-id")


def labels(release_id: str, app: str = "web") -> dict[str, str]:
    return {"app.kubernetes.io/name": app, "app.kubernetes.io/managed-by": "prodready.deploy",
            "prodready.deploy/release-id": release_id}


def rec(api: FakeConfigMaps, state: str = "present", check_mode: bool = False, **kwargs: Any
        ) -> Any:
    return run(lambda: api, NS, "web", state, check_mode=check_mode, **kwargs)


def stored(api: FakeConfigMaps, release_id: str) -> dict[str, Any] | None:
    obj = api.objects.get((NS, f"web-release-{release_id}"))
    return json.loads(obj["data"]["release.json"]) if obj else None


def seed(api: FakeConfigMaps, release_id: str, app: str = "web", created: str | None = None,
         **document: Any) -> None:
    api.put_object(NS, f"{app}-release-{release_id}",
                   {"release.json": json.dumps({"app": app, "release_id": release_id,
                                                **document})},
                   labels(release_id, app), created=created)


@pytest.fixture
def api() -> FakeConfigMaps:
    return FakeConfigMaps()


# merge ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("stored_doc", "update", "expected"), [
    (None, {"a": 1}, {"a": 1}),
    ({"a": 1, "b": 2}, {"b": 3, "c": 4}, {"a": 1, "b": 3, "c": 4}),
    ({"a": 1, "b": 2}, {"b": None}, {"a": 1}),
    ({"a": 1}, {"missing": None}, {"a": 1}),
    ({"gates": {"tests": "ok", "bandit": "ok"}}, {"gates": {"tests": "failed"}},
     {"gates": {"tests": "failed"}}),  # top level only: a nested dict is replaced whole
])
def test_merge_top_level_keys_null_removes(stored_doc: dict | None, update: dict,
                                           expected: dict) -> None:
    before = json.dumps(stored_doc)
    assert merge(stored_doc, update) == expected
    assert json.dumps(stored_doc) == before  # the stored document is not modified


# present --------------------------------------------------------------------------------------


def test_present_creates_then_converges(api: FakeConfigMaps) -> None:
    first = rec(api, release_id="r1", record={"version": "1.0", "outcome": "running"})
    assert first.changed is True
    assert first.record == {"app": "web", "release_id": "r1", "version": "1.0",
                            "outcome": "running"}
    assert stored(api, "r1") == first.record
    obj = api.objects[(NS, "web-release-r1")]
    assert obj["metadata"]["labels"] == labels("r1")
    assert api.writes() == [f"POST {NS}/web-release-r1"]
    assert first.msg == "Created the record of release r1 in shop/web-release-r1"
    assert first.diff(NS)["before"] == ""

    api.requests.clear()
    again = rec(api, release_id="r1", record={"version": "1.0", "outcome": "running"})
    assert again.changed is False
    assert again.msg == "The record of release r1 in shop/web-release-r1 is up to date"
    assert api.writes() == []


def test_present_merges_over_stored_and_removes_nulls(api: FakeConfigMaps) -> None:
    seed(api, "r1", version="1.0", outcome="running", error="boom")
    version = api.objects[(NS, "web-release-r1")]["metadata"]["resourceVersion"]
    result = rec(api, release_id="r1", record={"outcome": "succeeded", "error": None})
    assert result.changed is True
    assert stored(api, "r1") == {"app": "web", "release_id": "r1", "version": "1.0",
                                 "outcome": "succeeded"}
    assert api.writes() == [f"PUT {NS}/web-release-r1"]
    assert api.objects[(NS, "web-release-r1")]["metadata"]["resourceVersion"] != version
    diff = result.diff(NS)
    assert json.loads(diff["before"])["error"] == "boom"
    assert "error" not in json.loads(diff["after"])
    assert diff["before_header"] == "ConfigMap shop/web-release-r1 release.json"


def test_present_same_values_in_another_key_order_is_unchanged(api: FakeConfigMaps) -> None:
    api.put_object(NS, "web-release-r1", {"release.json": '{"b": 2, "release_id": "r1",'
                                                          ' "app": "web", "a": 1}'},
                   labels("r1"))
    assert rec(api, release_id="r1", record={"a": 1, "b": 2}).changed is False
    assert api.writes() == []


def test_present_restores_missing_labels(api: FakeConfigMaps) -> None:
    api.put_object(NS, "web-release-r1",
                   {"release.json": json.dumps({"app": "web", "release_id": "r1"}),
                    "other": "kept"})
    result = rec(api, release_id="r1", record={})
    assert result.changed is True
    obj = api.objects[(NS, "web-release-r1")]
    assert obj["metadata"]["labels"] == labels("r1")
    assert obj["data"]["other"] == "kept"


def test_present_in_check_mode_reports_diff_and_writes_nothing(api: FakeConfigMaps) -> None:
    seed(api, "r1", outcome="running")
    result = rec(api, check_mode=True, release_id="r1", record={"outcome": "succeeded"})
    assert result.changed is True
    assert result.msg == "Would update the record of release r1 in shop/web-release-r1"
    assert json.loads(result.diff(NS)["after"])["outcome"] == "succeeded"
    assert api.writes() == []
    assert stored(api, "r1")["outcome"] == "running"

    created = rec(api, check_mode=True, release_id="r2", record={"outcome": "running"})
    assert (created.changed, created.msg) == (
        True, "Would create the record of release r2 in shop/web-release-r2")
    assert stored(api, "r2") is None


def test_present_merges_again_over_a_concurrent_write(api: FakeConfigMaps) -> None:
    """Someone else writes between the read and the PUT: the PUT is refused (stale
    resourceVersion), and the merge is done again so their key survives."""
    seed(api, "r1", outcome="running")

    def other_writer(verb: str, name: str) -> None:
        if verb == "PUT" and "backup" not in stored(api, "r1"):
            seed(api, "r1", outcome="running", backup="b-1")

    api.before = other_writer
    result = rec(api, release_id="r1", record={"outcome": "succeeded"})
    assert result.changed is True
    assert stored(api, "r1") == {"app": "web", "release_id": "r1", "outcome": "succeeded",
                                 "backup": "b-1"}
    assert [r.split()[0] for r in api.requests] == ["GET", "PUT", "GET", "PUT"]


def test_present_create_race_becomes_a_merge(api: FakeConfigMaps) -> None:
    def other_creator(verb: str, name: str) -> None:
        if verb == "POST" and stored(api, "r1") is None:
            seed(api, "r1", started_at="2026-11-27T10:00:00Z")

    api.before = other_creator
    rec(api, release_id="r1", record={"outcome": "running"})
    assert stored(api, "r1") == {"app": "web", "release_id": "r1", "outcome": "running",
                                 "started_at": "2026-11-27T10:00:00Z"}


def test_present_refuses_to_merge_into_invalid_json(api: FakeConfigMaps) -> None:
    api.put_object(NS, "web-release-r1", {"release.json": "{not json"}, labels("r1"))
    with pytest.raises(RecordError) as info:
        rec(api, release_id="r1", record={"a": 1})
    assert str(info.value).startswith("ConfigMap shop/web-release-r1 key release.json is not"
                                      " valid JSON (")
    assert "fix it, or remove it with state=absent" in str(info.value)
    assert api.writes() == []


def test_present_refuses_a_merge_that_grows_past_the_limit(api: FakeConfigMaps) -> None:
    seed(api, "r1", log="x" * (MAX_RECORD_BYTES - 1000))
    with pytest.raises(InvalidInput, match="more than the 921600 bytes"):
        rec(api, release_id="r1", record={"more": "y" * 2000})
    assert api.writes() == []


# absent ---------------------------------------------------------------------------------------


def test_absent_removes_one_record(api: FakeConfigMaps) -> None:
    seed(api, "r1", outcome="failed")
    seed(api, "r2", outcome="succeeded")
    check = rec(api, "absent", check_mode=True, release_id="r1")
    assert (check.changed, api.writes()) == (True, [])
    result = rec(api, "absent", release_id="r1")
    assert result.changed is True
    assert result.record["outcome"] == "failed"
    assert stored(api, "r1") is None
    assert stored(api, "r2") is not None
    again = rec(api, "absent", release_id="r1")
    assert (again.changed, again.record) == (False, None)


def test_absent_removes_a_record_with_invalid_json(api: FakeConfigMaps) -> None:
    api.put_object(NS, "web-release-r1", {"release.json": "[1"}, labels("r1"))
    result = rec(api, "absent", release_id="r1")
    assert (result.changed, result.record) == (True, None)
    assert (NS, "web-release-r1") not in api.objects


# query ----------------------------------------------------------------------------------------


@pytest.fixture
def history(api: FakeConfigMaps) -> FakeConfigMaps:
    """r1 ok, r2 failed, r3 ok, r4 running (started, not finished), r5 with no times, made
    first; r6 of another app; the lock of web (labelled, but no release)."""
    seed(api, "r5", created="2026-11-01T00:00:00Z", outcome="succeeded")
    seed(api, "r1", started_at="2026-11-20T10:00:00Z", finished_at="2026-11-20T10:05:00Z",
         outcome="succeeded")
    seed(api, "r3", started_at="2026-11-22T10:00:00Z", finished_at="2026-11-22T10:05:00+00:00",
         outcome="succeeded")
    seed(api, "r2", started_at="2026-11-21T10:00:00Z", finished_at="2026-11-21T10:05:00Z",
         outcome="failed")
    seed(api, "r4", started_at="2026-11-23T10:00:00Z", outcome="running")
    seed(api, "r6", app="api", finished_at="2026-12-01T00:00:00Z", outcome="succeeded")
    api.put_object(NS, "web-deploy-lock", {"release_id": "r4"},
                   {"app.kubernetes.io/name": "web",
                    "app.kubernetes.io/managed-by": "prodready.deploy"})
    return api


def ids(records: list[dict[str, Any]] | None) -> list[str]:
    return [r["release_id"] for r in records or []]


def test_query_newest_first_and_previous_succeeded(history: FakeConfigMaps) -> None:
    result = rec(history, "query")
    assert ids(result.records) == ["r4", "r3", "r2", "r1", "r5"]
    assert result.record["release_id"] == "r4"
    assert result.previous["release_id"] == "r3"
    assert result.changed is False
    assert history.requests == [f"LIST {NS} {SELECTOR}"]
    assert result.msg == ("Release r4 of web (running); previous succeeded release: r3;"
                          " 5 recorded")


@pytest.mark.parametrize(("release_id", "previous"), [
    ("r3", "r1"),  # r2 between them failed
    ("r2", "r1"),
    ("r1", "r5"),
    ("r5", None),
])
def test_query_previous_of_a_given_release(history: FakeConfigMaps, release_id: str,
                                           previous: str | None) -> None:
    result = rec(history, "query", release_id=release_id)
    assert result.record["release_id"] == release_id
    assert (result.previous or {}).get("release_id") == previous
    assert ids(result.records) == ["r4", "r3", "r2", "r1", "r5"]


def test_query_outcome_filter_and_limit(history: FakeConfigMaps) -> None:
    result = rec(history, "query", outcome="succeeded", limit=2)
    assert ids(result.records) == ["r3", "r1"]
    assert result.record["release_id"] == "r3"
    assert result.previous["release_id"] == "r1"
    failed = rec(history, "query", outcome="failed", release_id="r3")
    assert ids(failed.records) == ["r2"]
    assert failed.record["release_id"] == "r3"  # a named release whatever its outcome


def test_query_unknown_release_names_it_and_the_known_ones(history: FakeConfigMaps) -> None:
    with pytest.raises(RecordNotFound) as info:
        rec(history, "query", release_id="r9")
    assert str(info.value) == ("release r9 of web has no record in namespace shop (no"
                               " ConfigMap web-release-r9); releases recorded, newest first:"
                               " r4, r3, r2, r1, r5")


def test_query_nothing_recorded(api: FakeConfigMaps) -> None:
    result = rec(api, "query")
    assert (result.record, result.records, result.previous) == (None, [], None)
    assert result.msg == "No release of web in namespace shop is recorded"
    with pytest.raises(RecordNotFound, match="newest first: none$"):
        rec(api, "query", release_id="r1")


def test_query_skips_invalid_records_with_a_reason(history: FakeConfigMaps) -> None:
    history.put_object(NS, "web-release-r7", {"release.json": '"a string"'}, labels("r7"))
    result = rec(history, "query")
    assert ids(result.records) == ["r4", "r3", "r2", "r1", "r5"]
    assert result.skipped == ["ConfigMap shop/web-release-r7 key release.json holds a JSON str,"
                              " not an object; left out"]


def test_query_ties_broken_by_creation(api: FakeConfigMaps) -> None:
    seed(api, "b", created="2026-11-01T00:00:02Z", finished_at="2026-11-02T00:00:00Z")
    seed(api, "a", created="2026-11-01T00:00:01Z", finished_at="2026-11-02T00:00:00Z")
    seed(api, "c", created="2026-11-01T00:00:03Z", finished_at="not a time")
    assert ids(rec(api, "query").records) == ["b", "a", "c"]


# validation, before any request ---------------------------------------------------------------


@pytest.mark.parametrize("release_id", ["r1", "1", "web-1-4-2", "a" * 63, "0-a-0"])
def test_valid_release_ids(release_id: str) -> None:
    validate_release_id("web", release_id)


@pytest.mark.parametrize("release_id", ["", "R1", "1.4.2", "-r1", "r1-", "r_1", "r 1", "a" * 64,
                                        "r1\n", "ré"])
def test_bad_release_id_fails_before_any_request(release_id: str) -> None:
    with pytest.raises(InvalidInput) as info:
        run(Unconnectable(), NS, "web", "present", release_id=release_id, record={"a": 1})
    assert str(info.value).startswith(f"release id {release_id!r} is not valid: a release id"
                                      " must be a DNS label - lowercase letters, digits and '-'")
    assert "at most 63 characters" in str(info.value)


def test_name_longer_than_253_characters_is_refused() -> None:
    app = ".".join(["a" * 15] * 4)  # 63 characters
    validate_release_id(app, "r" * 63)  # 63 + 9 + 63
    long_app = "x" * 200  # only the name rule can catch it (the app rule would too, later)
    with pytest.raises(InvalidInput, match="has 272 characters"):
        validate_release_id(long_app, "r" * 63)


@pytest.mark.parametrize(("state", "kwargs", "message"), [
    ("present", {"release_id": "r1", "record": {"blob": "x" * MAX_RECORD_BYTES}},
     "the record of release r1 is 921655 bytes as JSON, more than the 921600 bytes (900 KiB)"),
    ("present", {"release_id": "r1", "record": {"release_id": "r2"}},
     "record.release_id is 'r2', but the record is the one of release_id 'r1'"),
    ("present", {"release_id": "r1", "record": {"app": None}}, "record.app is None"),
    ("present", {"release_id": "r1"}, "record (a dict) is required when state=present"),
    ("absent", {}, "release id '' is not valid"),
    ("query", {"release_id": "R1"}, "release id 'R1' is not valid"),
    ("query", {"limit": -1}, "limit must be 0 or more, got -1"),
    ("gone", {}, "state must be one of present, absent, query, got 'gone'"),
])
def test_bad_options_fail_before_any_request(state: str, kwargs: dict[str, Any],
                                             message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        run(Unconnectable(), NS, "web", state, **kwargs)
    assert message in str(info.value)


def test_bad_app_fails_before_any_request() -> None:
    with pytest.raises(InvalidInput, match="app 'Web' is not valid"):
        run(Unconnectable(), NS, "Web", "query")


def test_record_with_the_same_identity_is_accepted(api: FakeConfigMaps) -> None:
    result = rec(api, release_id="r1", record={"app": "web", "release_id": "r1", "a": 1})
    assert result.record == {"app": "web", "release_id": "r1", "a": 1}
