# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation of a rollout's inputs before anything is applied.

Each problem is reported as one sentence that names the input, what is wrong, and what
to give instead; every problem is reported, not only the first.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
PINNED_IMAGE = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
QUANTITY = re.compile(
    r"^(?P<num>[0-9]+(\.[0-9]*)?|\.[0-9]+)(?P<suffix>[KMGTPE]i|[numkMGTPE]|[eE][-+]?[0-9]+)?$")
PERCENT_OR_INT = re.compile(r"^([0-9]+%?)$")

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {"n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "": Decimal(1),
            "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
            "P": Decimal("1e15"), "E": Decimal("1e18")}


class QuantityError(ValueError):
    """A Kubernetes resource quantity that does not parse."""


# The variables the manifest sets on every pod; the settings must not shadow them.
RESERVED_ENV = frozenset({"APP_RELEASE_ID", "APP_VERSION", "IMAGE_DIGEST"})


def parse_quantity(value: Any) -> Decimal:
    """A Kubernetes quantity ("250m", "1.5Gi", "2", "1e3") as a Decimal."""
    text = str(value).strip()
    match = QUANTITY.match(text)
    if not match:
        raise QuantityError(f"{value!r} is not a Kubernetes quantity")
    try:
        number = Decimal(match.group("num"))
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only numbers
        raise QuantityError(f"{value!r} is not a Kubernetes quantity") from exc
    suffix = match.group("suffix") or ""
    if suffix in _BINARY:
        return number * _BINARY[suffix]
    if suffix[:1] in ("e", "E"):
        return number * (Decimal(10) ** int(suffix[1:]))
    return number * _DECIMAL[suffix]


def _resources(prefix: str, resources: Any) -> list[str]:
    errors: list[str] = []
    if not isinstance(resources, dict):
        return [f"{prefix} must be a dict with 'requests' and/or 'limits'"]
    parsed: dict[str, dict[str, Decimal]] = {}
    for section in ("requests", "limits"):
        values = resources.get(section) or {}
        if not isinstance(values, dict):
            errors.append(f"{prefix}.{section} must be a dict such as {{cpu: 100m, memory: 128Mi}}")
            continue
        for name, raw in values.items():
            try:
                parsed.setdefault(section, {})[name] = parse_quantity(raw)
            except QuantityError:
                errors.append(
                    f"{prefix}.{section}.{name} is {raw!r}, which is not a Kubernetes quantity: "
                    f"use a number with an optional unit, for example 250m or 1.5 (cpu), "
                    f"128Mi or 1Gi (memory)")
    for name, limit in parsed.get("limits", {}).items():
        request = parsed.get("requests", {}).get(name)
        if request is not None and request > limit:
            errors.append(f"{prefix}.requests.{name} ({resources['requests'][name]}) is above "
                          f"{prefix}.limits.{name} ({resources['limits'][name]}): a request may "
                          f"not exceed its limit")
    return errors


def rollout_input_errors(inputs: dict[str, Any], prefix: str = "k8s_rollout_") -> list[str]:
    """Every problem with the inputs of a rollout; an empty list when they are usable."""
    errors: list[str] = []

    def name(key: str) -> str:
        return prefix + key

    for key, what in (("namespace", "a namespace"), ("app", "the application's name")):
        value = inputs.get(key)
        if not isinstance(value, str) or not DNS_LABEL.match(value) or len(value) > 63:
            errors.append(f"{name(key)} is {value!r}; give {what} as a DNS label: at most 63 "
                          f"lower-case letters, digits and '-', starting and ending with a "
                          f"letter or digit")
    image = inputs.get("image")
    if not isinstance(image, str) or not PINNED_IMAGE.match(image):
        errors.append(f"{name('image')} is {image!r}, which is not pinned by digest: give "
                      f"<repository>@sha256:<64 hex digits> (the image role returns it), so "
                      f"every replica runs the very same bytes")
    release = inputs.get("release_id")
    if not isinstance(release, str) or not LABEL_VALUE.match(release) or len(release) > 63:
        errors.append(f"{name('release_id')} is {release!r}; give an identifier of at most 63 "
                      f"letters, digits, '-', '_' or '.', starting and ending with a letter or "
                      f"digit (it becomes a label and the change-cause)")
    replicas = inputs.get("replicas")
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        errors.append(f"{name('replicas')} is {replicas!r}; give a whole number, 0 or more")
    if "resources" in inputs:
        errors.extend(_resources(name("resources"), inputs["resources"]))
    for key in ("max_surge", "max_unavailable"):
        value = inputs.get(key)
        if value is not None and not PERCENT_OR_INT.match(str(value)):
            errors.append(f"{name(key)} is {value!r}; give a whole number or a percentage "
                          f"such as 25%")
    if str(inputs.get("max_surge", "1")) in ("0", "0%") and str(
            inputs.get("max_unavailable", "1")) in ("0", "0%"):
        errors.append(f"{name('max_surge')} and {name('max_unavailable')} are both 0: the "
                      f"rollout could never make progress; allow a surge of at least 1")
    for key in ("env", "secret_env"):
        for env_name in (inputs.get(key) or {}):
            if not ENV_NAME.match(str(env_name)):
                errors.append(f"{name(key)} has the key {env_name!r}, which is not an "
                              f"environment variable name (letters, digits, '_')")
    plain, secret = inputs.get("env") or {}, inputs.get("secret_env") or {}
    both = sorted(str(k) for k in plain if k in secret)
    if both:
        errors.append(f"{name('env')} and {name('secret_env')} both set {', '.join(both)};"
                      " set each variable in one of them")
    reserved = sorted(str(k) for k in (*plain, *secret) if k in RESERVED_ENV)
    if reserved:
        errors.append(f"{', '.join(reserved)} {'is' if len(reserved) == 1 else 'are'} set by"
                      " the rollout itself (the release's id, version and image digest);"
                      f" remove {'it' if len(reserved) == 1 else 'them'} from"
                      f" {name('env')} / {name('secret_env')}")
    for key in ("readiness_path", "liveness_path"):
        value = inputs.get(key)
        if value is not None and not str(value).startswith("/"):
            errors.append(f"{name(key)} is {value!r}; give an HTTP path starting with '/'")
    return errors
