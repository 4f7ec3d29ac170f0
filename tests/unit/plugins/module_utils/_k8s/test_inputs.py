# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

from decimal import Decimal

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._k8s.inputs import (
    QuantityError,
    parse_quantity,
    rollout_input_errors,
)

DIGEST = "127.0.0.1:5000/refapp@sha256:" + "ab" * 32
GOOD = {"namespace": "prodready", "app": "refapp", "image": DIGEST, "release_id": "r-2026.11.27",
        "replicas": 3, "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                     "limits": {"cpu": "1", "memory": "1Gi"}},
        "max_surge": "25%", "max_unavailable": 0, "env": {"LOG_LEVEL": "info"},
        "secret_env": {"SECRET_KEY": "canary-Xq9"}, "readiness_path": "/health"}


@pytest.mark.parametrize(("text", "expected"), [
    ("250m", Decimal("0.25")), ("2", Decimal(2)), ("1.5", Decimal("1.5")),
    ("128Mi", Decimal(128 * 2**20)), ("1Gi", Decimal(2**30)), ("1k", Decimal(1000)),
    ("1e3", Decimal(1000)), (".5", Decimal("0.5")), (2, Decimal(2)),
])
def test_parse_quantity(text: object, expected: Decimal) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "1.5.2", "-1", "10MB", "1 Gi", "Gi"])
def test_parse_quantity_rejects(text: str) -> None:
    with pytest.raises(QuantityError, match="is not a Kubernetes quantity"):
        parse_quantity(text)


def test_good_inputs_have_no_errors() -> None:
    assert rollout_input_errors(GOOD) == []


@pytest.mark.parametrize(("change", "fragment"), [
    ({"image": "127.0.0.1:5000/refapp:1.0.0"},
     "k8s_rollout_image is '127.0.0.1:5000/refapp:1.0.0', which is not pinned by digest"),
    ({"image": "refapp@sha256:abc"}, "which is not pinned by digest"),
    ({"namespace": "Prod_Ready"}, "k8s_rollout_namespace is 'Prod_Ready'; give a namespace"),
    ({"app": ""}, "k8s_rollout_app is ''; give the application's name as a DNS label"),
    ({"release_id": "release 1"}, "k8s_rollout_release_id is 'release 1'"),
    ({"release_id": "x" * 64}, "k8s_rollout_release_id is"),
    ({"replicas": -1}, "k8s_rollout_replicas is -1; give a whole number"),
    ({"replicas": True}, "k8s_rollout_replicas is True"),
    ({"resources": {"limits": {"memory": "1 GB"}}},
     "k8s_rollout_resources.limits.memory is '1 GB', which is not a Kubernetes quantity"),
    ({"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "500m"}}},
     "k8s_rollout_resources.requests.cpu (2) is above k8s_rollout_resources.limits.cpu (500m)"),
    ({"max_surge": 0, "max_unavailable": "0%"}, "are both 0: the rollout could never make"),
    ({"max_surge": "a lot"}, "k8s_rollout_max_surge is 'a lot'"),
    ({"env": {"BAD-NAME": "x"}}, "k8s_rollout_env has the key 'BAD-NAME'"),
    ({"env": {"DB_HOST": "db"}, "secret_env": {"DB_HOST": "x"}},
     "k8s_rollout_env and k8s_rollout_secret_env both set DB_HOST; set each variable in one"),
    ({"env": {"APP_VERSION": "9"}}, "APP_VERSION is set by the rollout itself"),
    ({"readiness_path": "health"}, "k8s_rollout_readiness_path is 'health'"),
])
def test_each_problem_is_named(change: dict, fragment: str) -> None:
    errors = rollout_input_errors({**GOOD, **change})
    assert len(errors) == 1, errors
    assert fragment in errors[0]


def test_all_problems_are_reported_and_secret_values_never() -> None:
    bad = {**GOOD, "image": "x:1", "replicas": "3", "secret_env": {"bad key": "canary-Xq9"}}
    errors = rollout_input_errors(bad)
    assert len(errors) == 3
    assert not any("canary-Xq9" in e for e in errors)


def test_prefix_names_the_variable() -> None:
    errors = rollout_input_errors({**GOOD, "replicas": -2}, prefix="app_")
    assert errors[0].startswith("app_replicas is -2")
