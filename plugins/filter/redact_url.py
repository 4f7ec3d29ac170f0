# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: redact_url
short_description: Mask the password in a URL so that it can be logged
version_added: 0.1.0
author: prodready.deploy contributors
description:
  - Returns the URL with its password replaced by C(********). Everything else is kept
    character for character.
  - Works for any scheme - C(postgresql://user:********@host/db),
    C(redis://:********@host:6379/0), C(amqp://user:********@host/).
  - For C(redis), C(rediss), C(valkey) and C(valkeys) URLs a user information part without
    a C(:) is masked too, because Redis clients read C(redis://s3cret@host) as a password.
  - The values of query parameters whose name looks secret (containing C(pass), C(pwd),
    C(secret), C(token), C(api_key), C(access_key), C(private_key), C(credential) or
    C(signature)) are masked - C(?password=********).
  - A URL with nothing to mask, and a string that is not a URL at all, come back unchanged.
  - When an unencoded C(/), C(?) or C(#) in the password leaves an C(@) after the host but
    none before it (C(postgresql://app:pa/ss@db/app)), everything from the first C(:) after
    C(://) to the last C(@) is masked. An unencoded C(@) in the query of a URL without user
    information (C(postgresql://db:5432/app?application_name=a@b)) has the same shape and is
    over-masked the same way.
options:
  _input:
    description: The URL.
    type: string
    required: true
seealso:
  - plugin: prodready.deploy.parse_db_url
    plugin_type: filter
"""

EXAMPLES = r"""
---
- name: Show which database the application will use
  ansible.builtin.debug:
    msg: "Connecting to {{ app_database_url | prodready.deploy.redact_url }}"

# 'postgresql://app:s3cret@db:5432/app?sslmode=require' | prodready.deploy.redact_url
# => 'postgresql://app:********@db:5432/app?sslmode=require'
# 'redis://:s3cret@cache:6379/0' | prodready.deploy.redact_url
# => 'redis://:********@cache:6379/0'
# 'postgresql://app@db/app' | prodready.deploy.redact_url
# => 'postgresql://app@db/app'
"""

RETURN = r"""
_value:
  description: The URL with its secrets replaced by C(********).
  type: string
"""

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.module_utils._dburl import (
    redact_url,
)


def redact_url_filter(url: Any) -> str:
    if not isinstance(url, str):
        # The value is not echoed: it may be a secret passed here by mistake.
        raise AnsibleFilterError(
            f"prodready.deploy.redact_url: expected a URL string, got {type(url).__name__};"
            " pass the URL itself"
        )
    return redact_url(url)


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"redact_url": redact_url_filter}
