# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: secret_strength
short_description: Judge a secret's length, estimated entropy and whether it is a placeholder
version_added: 0.1.0
author: prodready.deploy contributors
description:
  - Returns a report on a secret value; RV(_value.ok) is true when nothing is wrong with it.
  - RV(_value.entropy_bits) is a Shannon estimate - the value's length times the entropy per
    character of its own character frequencies (the sum of C(-f * log2 f) over its distinct
    characters, C(f) being each one's share of the value). It measures variety,
    not randomness - it cannot see that C(Summer2026!) is guessable, and it undercounts short
    random strings (random 32-character hex strings, 128 real bits, score 89 to 127, so the
    default O(min_entropy_bits) is 80).
    The placeholder and repetition checks catch what it misses.
  - A value is a placeholder when it is an unfilled template (C(<...>), C(${...}),
    C({{ ... }}), C($VAR), Python C(%)-style fields, C(__NAME__)), a well-known default or example
    (C(changeme), C(secret), C(password), C(your-secret-key), C(example), C(dummy),
    C(django-insecure-...) and similar, compared case-insensitively without punctuation),
    one character repeated (C(xxxxxxxx), C(********)) or a plain run such as C(12345678).
  - Other reasons for RV(_value.ok=false) - too short, too little estimated entropy, a
    repeated pattern (C(abcabcabc)), leading or trailing whitespace, and sops C(ENC[...]) or
    C($ANSIBLE_VAULT) text that was never decrypted.
  - The reasons never contain the value or any part of it, so they can be shown in
    C(fail_msg).
options:
  _input:
    description: The secret.
    type: string
    required: true
  min_length:
    description: The fewest characters that are acceptable.
    type: int
    default: 32
  min_entropy_bits:
    description: The lowest acceptable RV(_value.entropy_bits).
    type: float
    default: 80
seealso:
  - plugin: prodready.deploy.redact_url
    plugin_type: filter
"""

EXAMPLES = r"""
---
- name: Refuse to deploy with a weak session secret
  vars:
    strength: "{{ app_secret_key | prodready.deploy.secret_strength(min_length=50) }}"
  ansible.builtin.assert:
    that:
      - strength.ok
    fail_msg: "app_secret_key is not usable: it {{ strength.reasons | join('; it ') }}"

# 'changeme' | prodready.deploy.secret_strength
# => {length: 8, entropy_bits: 22.0, placeholder: true, ok: false,
#     reasons: ['is 8 characters long; at least 32 are required',
#               'has an estimated 22.0 bits of entropy; at least 80 are required',
#               'looks like a well-known default, example or placeholder value']}
"""

RETURN = r"""
_value:
  description: The report.
  type: dict
  contains:
    length:
      description: The number of characters.
      type: int
    entropy_bits:
      description: The Shannon estimate described above, rounded to one decimal.
      type: float
    placeholder:
      description: Whether the value looks like a placeholder rather than a real secret.
      type: bool
    ok:
      description: Whether RV(_value.reasons) is empty.
      type: bool
    reasons:
      description: Why the value is not acceptable, each as a phrase that follows "it".
      type: list
      elements: string
"""

from collections.abc import Callable
from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.prodready.deploy.plugins.module_utils._secrets import (
    DEFAULT_MIN_ENTROPY_BITS,
    DEFAULT_MIN_LENGTH,
    SecretCheckError,
    secret_strength,
)


def secret_strength_filter(
    value: Any,
    min_length: Any = DEFAULT_MIN_LENGTH,
    min_entropy_bits: Any = DEFAULT_MIN_ENTROPY_BITS,
) -> dict[str, Any]:
    try:
        return secret_strength(value, min_length=min_length, min_entropy_bits=min_entropy_bits)
    except SecretCheckError as exc:
        raise AnsibleFilterError(f"prodready.deploy.secret_strength: {exc}") from None


class FilterModule:
    """Ansible Jinja2 filters."""

    def filters(self) -> dict[str, Callable[..., Any]]:
        return {"secret_strength": secret_strength_filter}
