# Copyright (c) 2026, prodready.deploy contributors
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

"""JMESPath assertions over a JSON body - ``{expression: expected value}`` - and the tiny,
safe placeholder substitution of the smoke suites (``{{ saved.id }}``, ``{{ vars.x }}``,
``{{ run.id }}``): a lookup in three dictionaries, never a template engine.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ansible_collections.prodready.deploy.plugins.module_utils._http.client import (
    HttpInputError,
)

try:
    import jmespath
    from jmespath.exceptions import JMESPathError

    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - reported by the module with missing_required_lib
    HAS_JMESPATH = False

NAMESPACES = ("saved", "vars", "run")
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_]\w*)\.([A-Za-z_][\w-]*)\s*\}\}")
_ANY_BRACES = re.compile(r"\{\{.*?\}\}")
_MISSING = object()


class MissingValueError(LookupError):
    """A placeholder names a value no earlier step saved."""

    def __init__(self, namespace: str, name: str) -> None:
        super().__init__(f"{{{{ {namespace}.{name} }}}} has no value")
        self.namespace = namespace
        self.name = name


@dataclass(frozen=True)
class Mismatch:
    expression: str
    expected: Any
    actual: Any

    def describe(self) -> str:
        return f"{self.expression}: expected {_show(self.expected)}, got {_show(self.actual)}"


def _show(value: Any, limit: int = 200) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def compile_expressions(expressions: Mapping[str, Any], option: str) -> dict[str, Any]:
    """Compile each expression once; a syntax error names the option and the expression."""
    compiled = {}
    for expression in expressions:
        try:
            compiled[expression] = jmespath.compile(str(expression))
        except JMESPathError as exc:
            raise HttpInputError(f"option {option}: {expression!r} is not a JMESPath"
                                 f" expression ({str(exc).splitlines()[0]})") from None
    return compiled


def same(expected: Any, actual: Any) -> bool:
    """Equality as YAML authors mean it: 1 == 1.0, but True is not 1."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return isinstance(expected, bool) and isinstance(actual, bool) and expected == actual
    return expected == actual


def evaluate(expressions: Mapping[str, Any], document: Any, option: str = "json"
             ) -> list[Mismatch]:
    """The expressions whose value over ``document`` differs from the expected one."""
    compiled = compile_expressions(expressions, option)
    found = []
    for expression, expected in expressions.items():
        actual = compiled[expression].search(document)
        if not same(expected, actual):
            found.append(Mismatch(str(expression), expected, actual))
    return found


def search(expression: str, document: Any, option: str = "save") -> Any:
    return compile_expressions({expression: None}, option)[expression].search(document)


def substitute(value: Any, scopes: Mapping[str, Mapping[str, Any]]) -> Any:
    """Replace ``{{ namespace.name }}`` in strings, recursively through lists and dicts (keys
    too). A string that is exactly one placeholder takes the value itself (an id stays an
    integer); inside a longer string the value is inserted as text. Anything else between
    double braces is refused, so a Jinja expression cannot pass for a placeholder."""
    if isinstance(value, str):
        return _substitute_text(value, scopes)
    if isinstance(value, list):
        return [substitute(item, scopes) for item in value]
    if isinstance(value, dict):
        return {substitute(k, scopes): substitute(v, scopes) for k, v in value.items()}
    return value


def _lookup(namespace: str, name: str, scopes: Mapping[str, Mapping[str, Any]]) -> Any:
    if namespace not in NAMESPACES:
        raise HttpInputError(f"unknown placeholder {{{{ {namespace}.{name} }}}}: only"
                             f" {', '.join(n + '.<name>' for n in NAMESPACES)} exist")
    value = scopes.get(namespace, {}).get(name, _MISSING)
    if value is _MISSING:
        raise MissingValueError(namespace, name)
    return value


def _substitute_text(text: str, scopes: Mapping[str, Mapping[str, Any]]) -> Any:
    if "{{" not in text:
        return text
    whole = _PLACEHOLDER.fullmatch(text.strip())
    if whole:
        return _lookup(whole.group(1), whole.group(2), scopes)
    refuse_expressions(text)

    def replace(match: re.Match[str]) -> str:
        found = _lookup(match.group(1), match.group(2), scopes)
        return found if isinstance(found, str) else json.dumps(found)

    return _PLACEHOLDER.sub(replace, text)


def refuse_expressions(text: str) -> None:
    """Anything between double braces must be a plain placeholder in a known namespace."""
    for braces in _ANY_BRACES.findall(text):
        match = _PLACEHOLDER.fullmatch(braces)
        if not match:
            raise HttpInputError(f"{braces!r} is not a placeholder: write {{{{ saved.<name> }}}},"
                                 " {{ vars.<name> }} or {{ run.id }} (no expressions)")
        if match.group(1) not in NAMESPACES:
            raise HttpInputError(f"unknown placeholder {braces}: only"
                                 f" {', '.join(n + '.<name>' for n in NAMESPACES)} exist")


def placeholders(value: Any) -> set[tuple[str, str]]:
    """Every (namespace, name) a value refers to; refuses anything else between double
    braces."""
    if isinstance(value, str):
        refuse_expressions(value)
        return {(m.group(1), m.group(2)) for m in _PLACEHOLDER.finditer(value)}
    if isinstance(value, list):
        return set().union(*(placeholders(v) for v in value)) if value else set()
    if isinstance(value, dict):
        found: set[tuple[str, str]] = set()
        for key, item in value.items():
            found |= placeholders(key) | placeholders(item)
        return found
    return set()
