# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

import math

import pytest

from ansible_collections.prodready.deploy.plugins.module_utils._secrets import (
    DEFAULT_MIN_ENTROPY_BITS,
    DEFAULT_MIN_LENGTH,
    InvalidKeyError,
    SecretCheckError,
    check_fernet_or_base64_key,
    placeholder_reasons,
    secret_strength,
    shannon_bits,
)

# Random values generated once for these tests; they stand for real secrets.
FERNET_KEY = "rgt4ZuiMm0l-3SH_bffWQjbt1wSknR2OxtZPYxidXa4="
STANDARD_KEY = "rgt4ZuiMm0l+3SH/bffWQjbt1wSknR2OxtZPYxidXa4="
HEX_64 = "d2796b4e7ee427c166a789c740d07ada12864dd7010df6b5b2a9d7a8752ec018"

TOO_SHORT = "is {n} characters long; at least 32 are required"
LOW_ENTROPY = "has an estimated {bits} bits of entropy; at least 80 are required"
TEMPLATE = "looks like an unfilled template placeholder"
KNOWN = "looks like a well-known default, example or placeholder value"
SINGLE = "is a single character repeated"
RUN = "is a plain run of consecutive letters or digits"
WHITESPACE = "has leading or trailing whitespace (often a newline read from a file)"
ENCRYPTED = "looks encrypted (sops or Ansible Vault) and was never decrypted"


def test_defaults():
    assert (DEFAULT_MIN_LENGTH, DEFAULT_MIN_ENTROPY_BITS) == (32, 80.0)


@pytest.mark.parametrize(
    ("value", "bits"),
    [
        pytest.param("", 0.0, id="empty"),
        pytest.param("aaaa", 0.0, id="one-symbol"),
        pytest.param("aabb", 4.0, id="two-symbols"),
        pytest.param("abcd", 8.0, id="four-symbols"),
        pytest.param("aab", 3 * (2 / 3 * math.log2(3 / 2) + 1 / 3 * math.log2(3)), id="skewed"),
    ],
)
def test_shannon_bits(value, bits):
    assert shannon_bits(value) == pytest.approx(bits, abs=1e-12)


def test_shannon_bits_is_never_negative_zero():
    assert math.copysign(1.0, shannon_bits("x" * 40)) == 1.0


STRENGTH_CASES = [
    pytest.param(FERNET_KEY, {}, 44, 221.5, False, [], id="fernet-key"),
    pytest.param(HEX_64, {}, 64, 241.1, False, [], id="hex-64"),
    pytest.param(
        "changeme",
        {},
        8,
        22.0,
        True,
        [TOO_SHORT.format(n=8), LOW_ENTROPY.format(bits="22.0"), KNOWN],
        id="changeme",
    ),
    pytest.param("", {}, 0, 0.0, False, ["is empty"], id="empty"),
    pytest.param(
        "x" * 40, {}, 40, 0.0, True, [LOW_ENTROPY.format(bits="0.0"), SINGLE], id="x-repeated"
    ),
    pytest.param(
        "xxxx-xxxx-xxxx-xxxx-xxxx-xxxx-xxxx",
        {},
        34,
        22.9,
        True,
        [LOW_ENTROPY.format(bits="22.9"), SINGLE],
        id="x-groups",
    ),
    pytest.param(
        "${SECRET_KEY}",
        {},
        13,
        43.4,
        True,
        [TOO_SHORT.format(n=13), LOW_ENTROPY.format(bits="43.4"), TEMPLATE, KNOWN],
        id="shell-variable-braces",
    ),
    pytest.param(
        "<your-secret-key>",
        {},
        17,
        58.7,
        True,
        [TOO_SHORT.format(n=17), LOW_ENTROPY.format(bits="58.7"), TEMPLATE, KNOWN],
        id="angle-brackets",
    ),
    pytest.param(
        "{{ vault_app_secret }}",
        {},
        22,
        82.1,
        True,
        [TOO_SHORT.format(n=22), TEMPLATE],
        id="unrendered-jinja",
    ),
    pytest.param(
        "%(secret)s",
        {"min_length": 8, "min_entropy_bits": 0},
        10,
        29.2,
        True,
        [TEMPLATE],
        id="python-format",
    ),
    pytest.param(
        "django-insecure-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c",
        {},
        48,
        213.0,
        True,
        [KNOWN],
        id="django-insecure",
    ),
    pytest.param(
        "CHANGE_ME_PLEASE_0123456789abcdef", {}, 33, 151.7, True, [KNOWN], id="long-changeme"
    ),
    pytest.param(
        "Password123!Password123!Password123!",
        {},
        36,
        123.1,
        True,
        [KNOWN, "repeats a 12-character pattern"],
        id="repeated-password",
    ),
    pytest.param(
        "Xk9!" * 10, {}, 40, 80.0, False, ["repeats a 4-character pattern"], id="entropy-at-limit"
    ),
    pytest.param(
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab",
        {},
        32,
        6.4,
        False,
        [LOW_ENTROPY.format(bits="6.4")],
        id="low-variety",
    ),
    pytest.param(
        "12345678",
        {"min_length": 8, "min_entropy_bits": 0},
        8,
        24.0,
        True,
        [RUN],
        id="digit-run",
    ),
    pytest.param(
        "zyxwvuts", {"min_length": 8, "min_entropy_bits": 0}, 8, 24.0, True, [RUN], id="desc-run"
    ),
    pytest.param(HEX_64 + "\n", {}, 65, 248.6, False, [WHITESPACE], id="trailing-newline"),
    pytest.param(
        "ENC[AES256_GCM,data:Tr7o1EIt,iv:8X2n,tag:Zq==,type:str]",
        {},
        55,
        272.9,
        False,
        [ENCRYPTED],
        id="sops",
    ),
    pytest.param(
        "Tr0ub4dor&3",
        {"min_length": 8, "min_entropy_bits": 30},
        11,
        36.1,
        False,
        [],
        id="custom-limits-pass",
    ),
    pytest.param(
        FERNET_KEY,
        {"min_length": 50},
        44,
        221.5,
        False,
        ["is 44 characters long; at least 50 are required"],
        id="custom-min-length-fails",
    ),
]


@pytest.mark.parametrize(
    ("value", "kwargs", "length", "bits", "placeholder", "reasons"), STRENGTH_CASES
)
def test_secret_strength(value, kwargs, length, bits, placeholder, reasons):
    assert secret_strength(value, **kwargs) == {
        "length": length,
        "entropy_bits": bits,
        "placeholder": placeholder,
        "ok": not reasons,
        "reasons": reasons,
    }


@pytest.mark.parametrize(
    "value", [case.values[0] for case in STRENGTH_CASES if len(case.values[0]) >= 5]
)
def test_reasons_never_contain_the_value(value):
    text = " ".join(secret_strength(value)["reasons"])
    assert value not in text
    # Nor any 5-character piece of it.
    assert not [value[i : i + 5] for i in range(len(value) - 4) if value[i : i + 5] in text]


def test_vault_text_is_reported():
    vaulted = "$ANSIBLE_VAULT;1.1;AES256\n6132393061653466\n3833616433"
    assert ENCRYPTED in secret_strength(vaulted)["reasons"]


@pytest.mark.parametrize(
    "value",
    [
        "CHANGEME",
        "Change-Me",
        "secret",
        "P@ssw0rd",
        "passw0rd",
        "S3cr3t",
        "your_secret_key",
        "example",
        "TODO",
        "__SECRET__",
        "$SECRET_KEY",
        "${DB_PASSWORD:-x}",
        "*****",
        "0000",
    ],
)
def test_placeholders_detected(value):
    assert placeholder_reasons(value)


@pytest.mark.parametrize(
    "value",
    [
        FERNET_KEY,
        STANDARD_KEY,
        HEX_64,
        "",
        "   ",
        # Random punctuation-rich passwords with template-like pieces inside them.
        "j&(%]b${EY015=jaw}]`&LVQ]_1eZPp%",
        "${rYDFaBv*nwuXslTCdhG\\NQhl),|>|}",
        "ne.6Kyv{%neuY?\"kScgH+kJL;_%?'V%}",
        "$IYynn_jkIpsq8md4Qic",
    ],
)
def test_no_placeholder(value):
    assert placeholder_reasons(value) == []


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        pytest.param(
            None,
            {},
            "expected the secret as a string, got NoneType (an unset"
            " variable often arrives as None)",
            id="none",
        ),
        pytest.param(b"secret", {}, "expected the secret as a string, got bytes", id="bytes"),
        pytest.param(
            "x",
            {"min_length": "32"},
            "min_length must be an integer >= 1, got '32'",
            id="min-length-string",
        ),
        pytest.param(
            "x",
            {"min_length": 0},
            "min_length must be an integer >= 1, got 0",
            id="min-length-zero",
        ),
        pytest.param(
            "x",
            {"min_length": True},
            "min_length must be an integer >= 1, got True",
            id="min-length-bool",
        ),
        pytest.param(
            "x",
            {"min_length": 2.5},
            "min_length must be an integer >= 1, got 2.5",
            id="min-length-fraction",
        ),
        pytest.param(
            "x",
            {"min_entropy_bits": -1},
            "min_entropy_bits must be a number >= 0, got -1",
            id="min-entropy-negative",
        ),
        pytest.param(
            "x",
            {"min_entropy_bits": math.nan},
            "min_entropy_bits must be a number >= 0, got nan",
            id="min-entropy-nan",
        ),
    ],
)
def test_secret_strength_errors(value, kwargs, message):
    with pytest.raises(SecretCheckError) as excinfo:
        secret_strength(value, **kwargs)
    assert str(excinfo.value) == message


KEY_CASES = [
    pytest.param(FERNET_KEY, 32, {"nbytes": 32, "alphabet": "urlsafe"}, id="fernet"),
    pytest.param(STANDARD_KEY, 32, {"nbytes": 32, "alphabet": "standard"}, id="standard"),
    pytest.param(
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=",
        32,
        {"nbytes": 32, "alphabet": "either"},
        id="neither-alphabet-specific",
    ),
    pytest.param("AAECAwQFBgcICQoLDA0ODw==", 16, {"nbytes": 16, "alphabet": "either"}, id="16"),
]


@pytest.mark.parametrize(("value", "nbytes", "expected"), KEY_CASES)
def test_check_key(value, nbytes, expected):
    assert check_fernet_or_base64_key(value, nbytes=nbytes) == expected


GENERATE = "generate one with: openssl rand -base64 32"
KEY_ERRORS = [
    pytest.param(
        "AAECAwQFBgcICQoLDA0ODw==",
        f"the key decodes to 16 bytes; 32 are required; {GENERATE}",
        id="too-few-bytes",
    ),
    pytest.param(
        FERNET_KEY[:-1],
        "the key is 43 characters long, not a multiple of 4; base64 keys are padded with '=' to"
        " a multiple of 4",
        id="unpadded",
    ),
    pytest.param(
        "rgt4ZuiMm0l-3SH/bffWQjbt1wSknR2OxtZPYxidXa4=",
        "the key mixes the URL-safe (-_) and standard (+/) base64 alphabets; it was probably"
        f" edited by hand: {GENERATE}",
        id="mixed-alphabets",
    ),
    pytest.param(
        "rgt4ZuiMm0l!3SHzbffWQjbt1wSknR2OxtZPYxidXa4=",
        "the key is not valid base64 (a character outside the base64 alphabet or a misplaced"
        f" '='); {GENERATE}",
        id="bad-character",
    ),
    pytest.param(
        "rgt4ZuiMm0l=3SHzbffWQjbt1wSknR2OxtZPYxidXa4=",
        "the key is not valid base64 (a character outside the base64 alphabet or a misplaced"
        f" '='); {GENERATE}",
        id="misplaced-padding",
    ),
    pytest.param(
        "rgt4ZuiMm0lé3SHzbffWQjbt1wSknR2OxtZPYxidXa4=",
        "the key is not valid base64 (a character outside the base64 alphabet or a misplaced"
        f" '='); {GENERATE}",
        id="non-ascii",
    ),
    pytest.param(
        FERNET_KEY + "\n",
        "the key has leading or trailing whitespace; strip it (often a newline from a file)",
        id="trailing-newline",
    ),
    pytest.param("", f"the key is empty; {GENERATE}", id="empty"),
    pytest.param(
        "A" * 43 + "=",
        f"the key decodes to one byte value repeated; {GENERATE}",
        id="all-zero-bytes",
    ),
    pytest.param(None, "expected the key as a base64 string, got NoneType", id="none"),
]


@pytest.mark.parametrize(("value", "message"), KEY_ERRORS)
def test_check_key_errors(value, message):
    with pytest.raises(InvalidKeyError) as excinfo:
        check_fernet_or_base64_key(value)
    text = str(excinfo.value)
    assert text == message
    if isinstance(value, str) and value.strip():
        assert value.strip()[:12] not in text
        assert value.strip()[-12:] not in text
    assert excinfo.value.__cause__ is None


def test_check_key_error_types():
    assert issubclass(InvalidKeyError, SecretCheckError)
    assert issubclass(SecretCheckError, ValueError)


@pytest.mark.parametrize("nbytes", [0, -1, True, 32.0, "32"])
def test_check_key_rejects_bad_nbytes(nbytes):
    with pytest.raises(SecretCheckError, match=r"^nbytes must be an integer >= 1, got "):
        check_fernet_or_base64_key(FERNET_KEY, nbytes=nbytes)


def test_check_key_custom_nbytes_message():
    with pytest.raises(InvalidKeyError) as excinfo:
        check_fernet_or_base64_key(FERNET_KEY, nbytes=64)
    assert str(excinfo.value) == (
        "the key decodes to 32 bytes; 64 are required; generate one with: openssl rand -base64 64"
    )
