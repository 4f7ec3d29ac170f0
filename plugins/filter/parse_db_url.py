# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: parse_db_url
short_description: Split a PostgreSQL URL into scheme, driver, credentials, host, port and database
version_added: 0.1.0
author: prodready.deploy contributors
description:
  - Parses C(postgresql://), C(postgresql+<driver>://) (SQLAlchemy style, for example
    C(postgresql+psycopg2://)) and C(postgres://) URLs.
  - The user name, password, host, database name and query values are percent-decoded
    (C(%40) becomes C(@)); in the query a C(+) stays a C(+), as in libpq.
  - On bad input the filter fails with a message that shows the URL only with its password
    masked (see P(prodready.deploy.redact_url#filter)), or not at all when the value is not
    a URL. The message says what is wrong and how to fix it.
  - Reserved characters in the password (C(/), C(?), C(#), C(@), C(:) and others) must be
    percent-encoded.
    A URL with an C(@) after the host but none before it is rejected, because an unencoded
    C(/) or C(?) in a password produces exactly that shape. As a consequence an unencoded
    C(@) in a query value of a URL without user information is rejected too; write it as
    C(%40).
  - Not supported, and rejected with a message - several hosts (C(host1,host2)), an empty
    host (C(postgresql:///db?host=/run/postgresql); write the socket directory as the host,
    percent-encoded - C(postgresql://%2Frun%2Fpostgresql/db)), a C(#) anywhere.
  - Query parameters stay in RV(_value.query); only C(sslmode) is lifted out and checked.
    libpq also reads C(user), C(password) and C(host) from the query; this filter does not.
options:
  _input:
    description: The database URL.
    type: string
    required: true
notes:
  - The result holds the decoded password. Set C(no_log) on tasks that print or register it.
seealso:
  - plugin: prodready.deploy.redact_url
    plugin_type: filter
"""

EXAMPLES = r"""
---
- name: Split the application's database URL
  ansible.builtin.set_fact:
    app_db: "{{ app_database_url | prodready.deploy.parse_db_url }}"
  no_log: true

# 'postgresql+psycopg2://app:s3cr%40t@db.internal:6432/appdb?sslmode=require'
# | prodready.deploy.parse_db_url
# => scheme: postgresql, driver: psycopg2, username: app, password: s3cr@t,
#    host: db.internal, port: 6432, database: appdb,
#    query: {sslmode: require}, sslmode: require
"""

RETURN = r"""
_value:
  description: The parts of the URL.
  type: dict
  contains:
    scheme:
      description: Always V(postgresql); C(postgres://) is an alias and the driver is separate.
      type: string
    driver:
      description: The part after C(+) in the scheme, for example V(psycopg2); V(null) without one.
      type: string
    username:
      description: The decoded user name; V(null) when the URL has none.
      type: string
    password:
      description: The decoded password; V(null) when the URL has none, V('') for C(user:@host).
      type: string
    host:
      description: The decoded host; an IPv6 literal without its brackets.
      type: string
    port:
      description: The port; V(5432) when the URL has none.
      type: int
    database:
      description: The decoded database name; V(null) when the URL has none.
      type: string
    query:
      description: The decoded query parameters; for a repeated key the last value wins.
      type: dict
    sslmode:
      description:
        - The C(sslmode) query parameter, one of V(disable), V(allow), V(prefer), V(require),
          V(verify-ca) or V(verify-full); V(null) when absent.
      type: string
"""

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.module_utils._dburl import (
    DbUrlError,
    parse_db_url,
)


def parse_db_url_filter(url: Any) -> dict[str, Any]:
    try:
        return parse_db_url(url)
    except DbUrlError as exc:
        # The message is already redacted; no chaining so nothing else is printed with it.
        raise AnsibleFilterError(f"prodready.deploy.parse_db_url: {exc}") from None


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"parse_db_url": parse_db_url_filter}
