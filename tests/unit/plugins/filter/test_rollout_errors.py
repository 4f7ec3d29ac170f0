# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.filter.rollout_errors import (
    FilterModule,
    rollout_errors,
)


def test_filter_is_registered() -> None:
    assert FilterModule().filters()["rollout_errors"] is rollout_errors


def test_filter_rejects_non_dict() -> None:
    with pytest.raises(AnsibleFilterError, match="expected a dict of inputs, got list"):
        rollout_errors([])


def test_filter_reports_unpinned_image() -> None:
    errors = rollout_errors({"namespace": "a", "app": "b", "image": "b:1", "release_id": "r1",
                             "replicas": 1})
    assert errors == [
        "k8s_rollout_image is 'b:1', which is not pinned by digest: give <repository>@sha256:"
        "<64 hex digits> (the image role returns it), so every replica runs the very same bytes"]
