# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""content_name: the name k8s_hashed_config gives, computed where no_log masking cannot
reach it."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.filter.content_name import (
    content_name_filter,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.content import (
    ConfigObjects,
)
from ansible_collections.prodready.deploy.plugins.module_utils._k8s.content import (
    hashed_name as module_name,
)


class EmptyApi:
    def read_deployment(self, namespace, name):
        return None

    def list_metadata(self, kind, namespace, selector):
        return []

    def create(self, kind, namespace, body):
        return True


def test_the_filter_gives_the_name_the_module_creates() -> None:
    data = {"DATABASE_URL": "postgresql://app:pw@db/app", "PORT": 6379, "SHORT": "0"}
    outcome = ConfigObjects(EmptyApi(), "ns", "web").apply(
        {"Secret": {"web-secret": {**data, "PORT": "6379"}}})
    name = content_name_filter(data, "web", "web-secret")
    assert name == outcome.names["Secret"]["web-secret"]
    assert name == module_name("web", "web-secret", "Secret", {**data, "PORT": "6379"})
    assert content_name_filter({"a": "b"}, "web", "web-files", "ConfigMap") != \
        content_name_filter({"a": "b"}, "web", "web-files", "Secret")


@pytest.mark.parametrize(("args", "message"), [
    (({"K": "v"}, "web", "web-secret", "Pod"), "kind must be one of Secret, ConfigMap"),
    ((["K"], "web", "web-secret"), "must be a mapping of key to text, not a list"),
    (({"K": ["canary-9f8e"]}, "web", "web-secret"), "the value of key 'K' must be text"),
])
def test_bad_input_is_named_without_its_value(args: tuple, message: str) -> None:
    with pytest.raises(AnsibleFilterError, match=message) as info:
        content_name_filter(*args)
    assert "canary-9f8e" not in str(info.value)
