# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""Judge secret values (length, entropy estimate, placeholders) and check base64 keys.

Private to this collection (leading underscore): the API may change without notice.

No message or reason built here contains the secret or any part of it: they are fixed text
plus counts (lengths, bits, bytes).
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections import Counter
from numbers import Real
from typing import Any

DEFAULT_MIN_LENGTH = 32
# The Shannon estimate below undercounts short random strings: random 32-character hex
# strings (128 real bits) scored 88.8 to 127 over 1,000,000 samples, 0.1% of them below 100.
# 80 rejected none of them, and still rejects long values made of a handful of characters.
DEFAULT_MIN_ENTROPY_BITS = 80.0


class SecretCheckError(ValueError):
    """The arguments of a secret check are unusable (wrong type, bad limit)."""


class InvalidKeyError(SecretCheckError):
    """A key does not decode to the required bytes. The message never holds the key."""


# Compared with the value lowercased and stripped of everything but letters and digits.
# fmt: off
_PLACEHOLDER_WORDS = frozenset(
    {
        "abc", "abc123", "admin", "apikey", "bar", "baz", "blank", "changeit", "changeme",
        "default", "dummy", "empty", "example", "fixme", "foo", "foobar", "hunter2", "key",
        "letmein", "mypassword", "mysecret", "mysecretkey", "nil", "none", "notasecret",
        "notset", "null", "pass", "passw0rd", "passwd", "password", "placeholder", "postgres",
        "pwd", "qwerty", "redacted", "replaceme", "root", "sample", "secret", "secretkey",
        "secretvalue", "string", "supersecret", "supersecretkey", "tbd", "test", "testing",
        "todo", "token", "undefined", "unset", "value", "welcome",
    }
)
# fmt: on
# Compared as substrings of the same normalised text. Seven or more letters, so that a random
# value practically never contains one by chance (about 1e-9 for a 44-character key).
_PLACEHOLDER_FRAGMENTS = (
    "changeme",
    "changethis",
    "replaceme",
    "replacethis",
    "placeholder",
    "yoursecret",
    "yourkey",
    "yourpassword",
    "yourtoken",
    "yourapikey",
    "insertyour",
    "enteryour",
    "putyour",
    "notasecret",
    "notreal",
    "insecure",
    "example",
    "password",
    "passw0rd",
    "secretkey",
    "supersecret",
    "mysecret",
    "fakekey",
    "fakesecret",
    "testsecret",
    "testkey",
    "devsecret",
)
# Anchored to the whole value, with identifier-like contents: random punctuation-rich
# passwords often contain "${" or "{%" somewhere, but not as their first and last characters.
_TEMPLATE_RES = tuple(
    re.compile(pattern)
    for pattern in (
        r"^<[A-Za-z][\w .:/-]*>$",  # <your-secret-here>
        r"^\$\{[A-Za-z_][A-Za-z0-9_]*(?::?[-=?+][\w.-]*)?\}$",  # ${SECRET_KEY}, ${KEY:-x}
        r"^\{\{.*\}\}$",  # {{ unrendered_jinja }}
        r"^\{%.*%\}$",
        r"^\$[A-Z_][A-Z0-9_]*$",  # $SECRET_KEY
        r"^%\([A-Za-z_][A-Za-z0-9_]*\)[sd]$",  # %(secret)s
        r"^__[A-Za-z0-9_]+__$",  # __SECRET__
        r"^\{[A-Za-z0-9_]+\}$",  # {secret}
    )
)
# Encrypted text that reached the target undecrypted: sops and Ansible Vault.
_ENCRYPTED_RES = (re.compile(r"^ENC\[[A-Za-z0-9_]+,data:"), re.compile(r"^\$ANSIBLE_VAULT;"))
_SEQUENCES = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl")


def shannon_bits(value: str) -> float:
    """Length times the Shannon entropy (bits per character) of the value's own characters."""
    if not value:
        return 0.0
    counts = Counter(value)
    length = len(value)
    per_char = sum((n / length) * math.log2(length / n) for n in counts.values())
    return length * per_char


_LEET = str.maketrans("@4310$5!7", "aaeiossit")


def _normalise(value: str) -> str:
    return "".join(c for c in value.lower() if c.isalnum())


def _is_known_placeholder(normalised: str, deleeted: str) -> bool:
    return any(
        text in _PLACEHOLDER_WORDS or any(f in text for f in _PLACEHOLDER_FRAGMENTS)
        for text in (normalised, deleeted)
    )


def _is_sequence(text: str) -> bool:
    if len(text) < 4:
        return False
    return any(text in seq or text in seq[::-1] for seq in _SEQUENCES)


def _repeat_period(value: str) -> int:
    """Length of the shortest unit that ``value`` repeats, or ``len(value)`` if none."""
    period = (value + value).find(value, 1)
    return period if 0 < period < len(value) else len(value)


def placeholder_reasons(value: str) -> list[str]:
    """Why ``value`` looks like a placeholder rather than a real secret (empty: it does not)."""
    stripped = value.strip()
    if not stripped:
        return []
    normalised = _normalise(stripped)
    reasons = []
    if any(pattern.search(stripped) for pattern in _TEMPLATE_RES):
        reasons.append("looks like an unfilled template placeholder")
    # P@ssw0rd and s3cr3t are placeholders too: compare a copy with leetspeak undone.
    if _is_known_placeholder(normalised, _normalise(stripped.lower().translate(_LEET))):
        reasons.append("looks like a well-known default, example or placeholder value")
    if len(set(stripped)) == 1 or (len(normalised) > 1 and len(set(normalised)) == 1):
        reasons.append("is a single character repeated")
    if _is_sequence(normalised) and len(normalised) == len(stripped):
        reasons.append("is a plain run of consecutive letters or digits")
    return reasons


def secret_strength(
    value: str,
    min_length: int = DEFAULT_MIN_LENGTH,
    min_entropy_bits: float = DEFAULT_MIN_ENTROPY_BITS,
) -> dict[str, Any]:
    """Judge a secret; return ``length``, ``entropy_bits``, ``placeholder``, ``ok``, ``reasons``.

    ``entropy_bits`` is ``shannon_bits`` rounded to one decimal. ``ok`` is true when
    ``reasons`` is empty. Reasons hold fixed text and numbers only, never the value.
    """
    if not isinstance(value, str):
        hint = " (an unset variable often arrives as None)" if value is None else ""
        raise SecretCheckError(f"expected the secret as a string, got {type(value).__name__}{hint}")
    # bool is an int subclass; min_length=True is a mistake, not 1.
    if isinstance(min_length, bool) or not isinstance(min_length, int) or min_length < 1:
        raise SecretCheckError(f"min_length must be an integer >= 1, got {min_length!r}")
    if (
        isinstance(min_entropy_bits, bool)
        or not isinstance(min_entropy_bits, Real)
        or math.isnan(min_entropy_bits)
        or min_entropy_bits < 0
    ):
        raise SecretCheckError(f"min_entropy_bits must be a number >= 0, got {min_entropy_bits!r}")

    length = len(value)
    bits = round(shannon_bits(value), 1)
    reasons: list[str] = []
    if not value:
        reasons.append("is empty")
    elif length < min_length:
        reasons.append(f"is {length} characters long; at least {min_length} are required")
    if value and bits < min_entropy_bits:
        reasons.append(
            f"has an estimated {bits:.1f} bits of entropy; at least {min_entropy_bits:g}"
            " are required"
        )
    placeholder = placeholder_reasons(value)
    reasons.extend(placeholder)
    stripped = value.strip()
    period = _repeat_period(stripped)
    if stripped and 1 < period < len(stripped):
        reasons.append(f"repeats a {period}-character pattern")
    if any(pattern.match(stripped) for pattern in _ENCRYPTED_RES):
        reasons.append("looks encrypted (sops or Ansible Vault) and was never decrypted")
    if stripped and stripped != value:
        reasons.append("has leading or trailing whitespace (often a newline read from a file)")
    return {
        "length": length,
        "entropy_bits": bits,
        "placeholder": bool(placeholder),
        "ok": not reasons,
        "reasons": reasons,
    }


def check_fernet_or_base64_key(value: str, nbytes: int = 32) -> dict[str, Any]:
    """Check that ``value`` is padded base64 of exactly ``nbytes`` bytes.

    Accepts the URL-safe alphabet (``-_``, what ``Fernet.generate_key()`` writes) and the
    standard one (``+/``), not both in one key. Padding is required because Fernet and most
    decoders reject a key without it. Returns ``{"nbytes": n, "alphabet": "urlsafe" |
    "standard" | "either"}`` ("either" when the key uses none of ``-_+/``). Raises
    ``InvalidKeyError`` naming the problem; the message holds counts, never key material.
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise SecretCheckError(f"nbytes must be an integer >= 1, got {nbytes!r}")
    generate = f"generate one with: openssl rand -base64 {nbytes}"
    if not isinstance(value, str):
        raise InvalidKeyError(f"expected the key as a base64 string, got {type(value).__name__}")
    if not value:
        raise InvalidKeyError(f"the key is empty; {generate}")
    if value != value.strip():
        raise InvalidKeyError(
            "the key has leading or trailing whitespace; strip it (often a newline from a file)"
        )
    urlsafe = "-" in value or "_" in value
    standard = "+" in value or "/" in value
    if urlsafe and standard:
        raise InvalidKeyError(
            "the key mixes the URL-safe (-_) and standard (+/) base64 alphabets;"
            f" it was probably edited by hand: {generate}"
        )
    if len(value) % 4:
        raise InvalidKeyError(
            f"the key is {len(value)} characters long, not a multiple of 4;"
            " base64 keys are padded with '=' to a multiple of 4"
        )
    canonical = value.translate(str.maketrans("-_", "+/")) if urlsafe else value
    try:
        raw = base64.b64decode(canonical, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKeyError(
            "the key is not valid base64 (a character outside the base64 alphabet or a"
            f" misplaced '='); {generate}"
        ) from None
    if len(raw) != nbytes:
        raise InvalidKeyError(
            f"the key decodes to {len(raw)} bytes; {nbytes} are required; {generate}"
        )
    if len(set(raw)) == 1:
        raise InvalidKeyError(f"the key decodes to one byte value repeated; {generate}")
    alphabet = "urlsafe" if urlsafe else "standard" if standard else "either"
    return {"nbytes": len(raw), "alphabet": alphabet}
