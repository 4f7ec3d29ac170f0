# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The release record: one JSON document per release, kept in the application's namespace.

A release's record is the key release.json of the ConfigMap <app>-release-<release id>,
labelled app.kubernetes.io/name=<app>, app.kubernetes.io/managed-by=prodready.deploy and
prodready.deploy/release-id=<release id>, so one LIST by label finds all of an app's
releases. Writing merges the given keys over the stored document (a key set to null is
removed) and replaces the ConfigMap conditionally on the resourceVersion that was read, so
two writers never lose each other's keys; the merge is done again when the object changed.

Release ids become part of an object name and a label value, so they are checked - with the
record's size - before any request.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.configmaps import (
    MANAGED_BY,
    MANAGED_BY_LABEL,
    NAME_LABEL,
    ConfigMaps,
    InvalidInput,
    configmap,
    diff_text,
    labels,
    validate_app,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.watch import KubeApiError

RECORD_KEY = "release.json"
RELEASE_LABEL = "prodready.deploy/release-id"
NAME_INFIX = "-release-"
NAME_MAX = 253
RELEASE_ID_MAX = 63
_RELEASE_ID = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
RELEASE_ID_RULE = (f"a release id must be a DNS label - lowercase letters, digits and '-',"
                   f" starting and ending with a letter or digit"
                   f" ([a-z0-9]([-a-z0-9]*[a-z0-9])?), at most {RELEASE_ID_MAX} characters (it"
                   f" is a label value) - and the ConfigMap name <app>{NAME_INFIX}<release id>"
                   f" at most {NAME_MAX} characters")
# A ConfigMap holds at most 1 MiB, metadata included; the document gets 900 KiB of it.
MAX_RECORD_BYTES = 900 * 1024
# The keys that say whose record it is; the module sets them, a record may not change them.
IDENTITY_KEYS = ("app", "release_id")
SUCCEEDED = "succeeded"
DEFAULT_LIMIT = 20
# A record replaced by someone else between the read and the write is merged again; more
# than this many such races in a row is reported, not looped on.
ATTEMPTS = 3

PRESENT = "present"
ABSENT = "absent"
QUERY = "query"
STATES = (PRESENT, ABSENT, QUERY)

_EPOCH = datetime.min.replace(tzinfo=UTC)


class RecordError(Exception):
    """A record cannot be written, removed or found; the message says why."""


class RecordNotFound(RecordError):
    """The release asked for has no record."""


# Names and checks --------------------------------------------------------------------------


def record_name(app: str, release_id: str) -> str:
    return f"{app}{NAME_INFIX}{release_id}"


def validate_release_id(app: str, release_id: str | None) -> None:
    value = release_id or ""
    if not _RELEASE_ID.fullmatch(value) or len(value) > RELEASE_ID_MAX:
        raise InvalidInput(f"release id {value!r} is not valid: {RELEASE_ID_RULE}")
    name = record_name(app, value)
    if len(name) > NAME_MAX:
        raise InvalidInput(f"release id {value!r} is not valid: the ConfigMap name {name!r}"
                           f" has {len(name)} characters; {RELEASE_ID_RULE}")


def encode(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check_size(release_id: str, document: dict[str, Any]) -> None:
    size = len(encode(document).encode("utf-8"))
    if size > MAX_RECORD_BYTES:
        raise InvalidInput(
            f"the record of release {release_id} is {size} bytes as JSON, more than the"
            f" {MAX_RECORD_BYTES} bytes (900 KiB) a release record may hold (a ConfigMap holds"
            " at most 1 MiB); record where large artefacts are kept, not the artefacts")


def merge(stored: dict[str, Any] | None, update: dict[str, Any]) -> dict[str, Any]:
    """`update` over `stored`, key by key at the top level; a key set to None is removed."""
    merged = copy.deepcopy(stored or {})
    for key, value in update.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def with_identity(document: dict[str, Any], app: str, release_id: str) -> dict[str, Any]:
    return {**document, "app": app, "release_id": release_id}


def validate_record(app: str, release_id: str, update: dict[str, Any]) -> None:
    """The record to write: its identity keys agree with the options, and it fits."""
    expected = {"app": app, "release_id": release_id}
    for key in IDENTITY_KEYS:
        if key in update and update[key] != expected[key]:
            raise InvalidInput(f"record.{key} is {update[key]!r}, but the record is the one of"
                               f" {key} {expected[key]!r}: leave record.{key} out (the module"
                               " sets it)")
    check_size(release_id, with_identity(merge(None, update), app, release_id))


def validate(app: str, state: str, release_id: str | None, record: dict[str, Any] | None,
             limit: int) -> None:
    """InvalidInput for options that cannot work, before anything is asked of the API."""
    validate_app(app)
    if state not in STATES:
        raise InvalidInput(f"state must be one of {', '.join(STATES)}, got {state!r}")
    if state != QUERY or release_id is not None:
        validate_release_id(app, release_id)
    if state == PRESENT:
        if not isinstance(record, dict):
            raise InvalidInput("record (a dict) is required when state=present")
        validate_record(app, release_id or "", record)
    if limit < 0:
        raise InvalidInput(f"limit must be 0 or more, got {limit}")


# Reading stored records --------------------------------------------------------------------


def decode(obj: dict[str, Any]) -> dict[str, Any]:
    """The document in a record ConfigMap; RecordError when it is not a JSON object."""
    meta = obj.get("metadata") or {}
    text = (obj.get("data") or {}).get(RECORD_KEY)
    where = f"ConfigMap {meta.get('namespace')}/{meta.get('name')} key {RECORD_KEY}"
    if text is None:
        raise RecordError(f"{where} is missing")
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise RecordError(f"{where} is not valid JSON ({exc})") from None
    if not isinstance(document, dict):
        raise RecordError(f"{where} holds a JSON {type(document).__name__}, not an object")
    return document


def _instant(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass
class Stored:
    """One record as found: its document, release id and when it counts as made."""

    release_id: str
    document: dict[str, Any]
    created: datetime
    when: datetime

    @classmethod
    def from_object(cls, obj: dict[str, Any]) -> Stored:
        meta = obj.get("metadata") or {}
        document = decode(obj)
        release_id = str(document.get("release_id") or
                         (meta.get("labels") or {}).get(RELEASE_LABEL) or "")
        created = _instant(meta.get("creationTimestamp")) or _EPOCH
        when = (_instant(document.get("finished_at")) or _instant(document.get("started_at"))
                or created)
        return cls(release_id, document, created, when)

    @property
    def outcome(self) -> Any:
        return self.document.get("outcome")


def newest_first(stored: list[Stored]) -> list[Stored]:
    """By finished_at, else started_at, else the ConfigMap's creationTimestamp; ties by
    creation, then by release id."""
    return sorted(stored, key=lambda s: (s.when, s.created, s.release_id), reverse=True)


# The operations ----------------------------------------------------------------------------


@dataclass
class RecordResult:
    changed: bool
    msg: str
    record: dict[str, Any] | None = None
    records: list[dict[str, Any]] | None = None
    previous: dict[str, Any] | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    skipped: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    name: str | None = None

    def diff(self, namespace: str) -> dict[str, str]:
        header = f"ConfigMap {namespace}/{self.name} {RECORD_KEY}"
        return {"before": diff_text(self.before), "after": diff_text(self.after),
                "before_header": header, "after_header": header}


class ReleaseRecords:
    """The release records of `app` in `namespace`, through `api`."""

    def __init__(self, api: ConfigMaps, namespace: str, app: str, check_mode: bool = False
                 ) -> None:
        validate_app(app)
        self.api = api
        self.namespace = namespace
        self.app = app
        self.check_mode = check_mode

    def _labels(self, release_id: str) -> dict[str, str]:
        return labels(self.app, **{RELEASE_LABEL: release_id})

    def _result(self, **kwargs: Any) -> RecordResult:
        return RecordResult(requests=self.api.requests, **kwargs)

    def put(self, release_id: str, update: dict[str, Any]) -> RecordResult:
        """Merge `update` over the stored record; write only when the document (or the labels
        a query finds it by) would change."""
        validate_release_id(self.app, release_id)
        validate_record(self.app, release_id, update)
        name = record_name(self.app, release_id)
        ref = f"{self.namespace}/{name}"
        for _attempt in range(ATTEMPTS):
            obj = self.api.get(self.namespace, name)
            try:
                stored = decode(obj) if obj is not None else None
            except RecordError as exc:
                raise RecordError(f"{exc}: the record of release {release_id} cannot be merged;"
                                  " fix it, or remove it with state=absent") from None
            merged = with_identity(merge(stored, update), self.app, release_id)
            check_size(release_id, merged)
            want_labels = self._labels(release_id)
            have_labels = ((obj or {}).get("metadata") or {}).get("labels") or {}
            relabel = any(have_labels.get(k) != v for k, v in want_labels.items())
            changed = stored != merged or relabel
            if changed and not self.check_mode:
                try:
                    self._write(name, obj, merged, want_labels)
                except KubeApiError as exc:
                    if exc.status == 409:  # written by someone else since the read: merge again
                        continue
                    raise
            if not changed:
                msg = f"The record of release {release_id} in {ref} is up to date"
            elif obj is None:
                msg = (f"{'Would create' if self.check_mode else 'Created'} the record of"
                       f" release {release_id} in {ref}")
            else:
                msg = (f"{'Would update' if self.check_mode else 'Updated'} the record of"
                       f" release {release_id} in {ref}")
            return self._result(changed=changed, msg=msg, record=merged, before=stored,
                                after=merged, name=name)
        raise RecordError(f"the record of release {release_id} in {ref} was changed by another"
                          f" writer {ATTEMPTS} times while this run merged into it; try again")

    def _write(self, name: str, obj: dict[str, Any] | None, document: dict[str, Any],
               want_labels: dict[str, str]) -> None:
        if obj is None:
            self.api.create(self.namespace, configmap(self.namespace, name, want_labels,
                                                      {RECORD_KEY: encode(document)}))
            return
        body = copy.deepcopy(obj)
        meta = body.setdefault("metadata", {})
        meta["labels"] = {**(meta.get("labels") or {}), **want_labels}
        body["data"] = {**(body.get("data") or {}), RECORD_KEY: encode(document)}
        self.api.replace(self.namespace, name, body)

    def remove(self, release_id: str) -> RecordResult:
        validate_release_id(self.app, release_id)
        name = record_name(self.app, release_id)
        ref = f"{self.namespace}/{name}"
        obj = self.api.get(self.namespace, name)
        if obj is None:
            return self._result(changed=False, msg=f"Release {release_id} has no record in"
                                f" {ref}; nothing to remove")
        try:
            stored: dict[str, Any] | None = decode(obj)
        except RecordError:
            stored = None  # removing a broken record is how it gets fixed
        deleted = True
        if not self.check_mode:
            deleted = self.api.delete(self.namespace, name)
        verb = "Would remove" if self.check_mode else "Removed"
        msg = (f"{verb} the record of release {release_id} ({ref})" if deleted else
               f"The record of release {release_id} ({ref}) was removed by someone else"
               " meanwhile")
        return self._result(changed=deleted, msg=msg, record=stored, before=stored,
                            after=None, name=name)

    def selector(self) -> str:
        return f"{NAME_LABEL}={self.app},{MANAGED_BY_LABEL}={MANAGED_BY},{RELEASE_LABEL}"

    def query(self, release_id: str | None = None, outcome: str | None = None,
              limit: int = DEFAULT_LIMIT) -> RecordResult:
        """The record of `release_id` (the newest one, with `outcome` if given, when None),
        the records newest first, and the newest succeeded record before the one returned."""
        if release_id is not None:
            validate_release_id(self.app, release_id)
        found: list[Stored] = []
        skipped: list[str] = []
        for obj in self.api.list(self.namespace, self.selector()):
            try:
                found.append(Stored.from_object(obj))
            except RecordError as exc:
                skipped.append(f"{exc}; left out")
        ordered = newest_first(found)
        matching = [s for s in ordered if outcome is None or s.outcome == outcome]
        if release_id is not None:
            target = next((s for s in ordered if s.release_id == release_id), None)
            if target is None:
                known = ", ".join(s.release_id for s in ordered) or "none"
                raise RecordNotFound(
                    f"release {release_id} of {self.app} has no record in namespace"
                    f" {self.namespace} (no ConfigMap {record_name(self.app, release_id)});"
                    f" releases recorded, newest first: {known}")
        else:
            target = matching[0] if matching else None
        previous = None
        if target is not None:
            older = ordered[ordered.index(target) + 1:]
            previous = next((s for s in older if s.outcome == SUCCEEDED), None)
        if target is None:
            msg = (f"No release of {self.app} in namespace {self.namespace} is recorded"
                   + (f" with outcome {outcome}" if outcome is not None else ""))
        else:
            msg = (f"Release {target.release_id} of {self.app}"
                   f" ({target.outcome or 'no outcome'}); previous succeeded release: "
                   f"{previous.release_id if previous else 'none'}; {len(ordered)} recorded")
        return self._result(
            changed=False, msg=msg, record=target.document if target else None,
            records=[s.document for s in matching[:limit]],
            previous=previous.document if previous else None, skipped=skipped,
            name=record_name(self.app, target.release_id) if target else None)


def run(connect: Callable[[], ConfigMaps], namespace: str, app: str, state: str,
        release_id: str | None = None, record: dict[str, Any] | None = None,
        outcome: str | None = None, limit: int = DEFAULT_LIMIT, check_mode: bool = False
        ) -> RecordResult:
    """The module's one entry. The options are checked before `connect` makes the client,
    so a bad one fails without any request."""
    validate(app, state, release_id, record, limit)
    records = ReleaseRecords(connect(), namespace, app, check_mode)
    if state == PRESENT:
        return records.put(release_id or "", record or {})
    if state == ABSENT:
        return records.remove(release_id or "")
    return records.query(release_id, outcome, limit)
