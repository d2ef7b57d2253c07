"""Filters (RFC 7644 §3.4.2.2): parsed by scim2-models' grammar, evaluated on stored JSON.

scim2-models owns the grammar (every operator, and/or/not, grouping, value paths). Evaluation
here walks that tree over plain dicts, so listing never builds pydantic models. `index_plan`
finds the `eq` terms the store can answer with a key lookup, so a filter such as
`userName eq "x"` costs one index read whatever the number of users.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from scim2_models import InvalidFilterException
from scim2_models.path import AttrPath, Comparison, LogicalExpr, Not, Present, ValuePath
from scim2_models.path.grammar import _parse_filter

from .errors import invalid_filter
from .schemas import AttributeInfo, ResourceTypeInfo

MAX_FILTER_LENGTH = 4096
MAX_FILTER_DEPTH = 32

# Entra's older samples send `externalId eq jyoung` (scim-clients.md §2.2): a bare word where the
# grammar wants a JSON value. Quote it, unless it is a JSON literal.
_UNQUOTED_VALUE = re.compile(
    r'(\b(?:eq|ne|co|sw|ew|gt|ge|lt|le)\s+)(?!true\b|false\b|null\b|-?\d)([A-Za-z_][^\s()\[\]"]*)',
    re.IGNORECASE,
)


def fold(value: str) -> str:
    """The comparison form of a caseExact=false string (NFC, lower case), as scim2-models uses."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", value).lower())


def parse(expression: str) -> Any:
    """Parse a filter, refusing oversized input before the parser spends CPU on it."""
    if len(expression) > MAX_FILTER_LENGTH:
        raise invalid_filter(f"filter is longer than the limit of {MAX_FILTER_LENGTH} characters")
    if _nesting(expression) > MAX_FILTER_DEPTH:
        raise invalid_filter(f"filter nests deeper than the limit of {MAX_FILTER_DEPTH} levels")
    try:
        ast = _parse_filter(expression)
    except InvalidFilterException:
        lenient = _UNQUOTED_VALUE.sub(lambda m: f'{m.group(1)}"{m.group(2)}"', expression)
        ast = None
        if lenient != expression:
            try:
                ast = _parse_filter(lenient)
            except InvalidFilterException:
                pass
        if ast is None:
            raise invalid_filter(f"invalid filter: {_printable(expression)}") from None
    except RecursionError:
        raise invalid_filter(f"filter nests deeper than the limit of {MAX_FILTER_DEPTH} levels") from None
    for value in _values_in(ast):
        if isinstance(value, str) and _SURROGATE.search(value):
            # `"\ud800"` in a filter decodes to a lone surrogate: not Unicode text (RFC 8259 §8.2),
            # so no stored value can equal it and no store can encode it as a key.
            raise invalid_filter("a filter value holds a lone surrogate (\\ud800-\\udfff), which is not Unicode text")
    return ast


_SURROGATE = re.compile("[\ud800-\udfff]")


def _printable(expression: str) -> str:
    """The filter as a detail can carry it (no lone surrogates, which JSON cannot encode)."""
    return _SURROGATE.sub("\ufffd", expression)


def _values_in(node: Any) -> list[Any]:
    if isinstance(node, LogicalExpr):
        return [value for term in node.terms for value in _values_in(term)]
    if isinstance(node, Not):
        return _values_in(node.expr)
    if isinstance(node, ValuePath):
        return _values_in(node.val_filter)
    if isinstance(node, Comparison):
        return [node.value]
    return []


def terms(node: Any) -> int:
    """How many comparisons a filter evaluates per resource at most (its cost factor)."""
    if isinstance(node, LogicalExpr):
        return sum(terms(term) for term in node.terms)
    if isinstance(node, Not):
        return terms(node.expr)
    if isinstance(node, ValuePath):
        return max(1, terms(node.val_filter))
    return 1


def _nesting(expression: str) -> int:
    depth = deepest = 0
    for char in expression:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    # `not` and `and`/`or` chains also nest the tree; count them as levels too.
    words = len(re.findall(r"\b(?:and|or|not)\b", expression, re.IGNORECASE))
    return max(deepest, words // 4)


class CompiledFilter:
    """A filter bound to one resource type: `matches(document)` and `index_plan()`."""

    def __init__(self, ast: Any, resource_type: ResourceTypeInfo, *, strict: bool = True, source: str = "") -> None:
        self.ast = ast
        self.source = source
        self.resource_type = resource_type
        self.strict = strict
        self._predicate = self._compile(ast)

    def matches(self, document: dict[str, Any]) -> bool:
        return self._predicate(document)

    # compilation -----------------------------------------------------------------------------
    def _resolve(self, path: AttrPath) -> tuple[str | None, AttributeInfo, AttributeInfo | None] | None:
        found = self.resource_type.resolve(path.attr, path.uri)
        if found is None and not path.uri:
            # Entra filters on `manager` bare (scim-clients.md §2.2): look in the extensions.
            for extension in self.resource_type.extensions:
                found = self.resource_type.resolve(path.attr, extension)
                if found is not None:
                    break
        if found is None:
            if self.strict:
                raise invalid_filter(f"unknown attribute in filter: {_render(path)}")
            return None
        urn, info = found
        sub = None
        if path.sub_attr:
            sub = info.sub(path.sub_attr)
            if sub is None:
                if self.strict:
                    raise invalid_filter(f"unknown attribute in filter: {_render(path)}")
                return None
        return urn, info, sub

    def _compile(self, node: Any) -> Callable[[dict[str, Any]], bool]:
        if isinstance(node, LogicalExpr):
            terms = [self._compile(term) for term in node.terms]
            if node.op == "and":
                return lambda doc: all(term(doc) for term in terms)
            return lambda doc: any(term(doc) for term in terms)
        if isinstance(node, Not):
            inner = self._compile(node.expr)
            return lambda doc: not inner(doc)
        if isinstance(node, Present):
            return self._compile_present(node.attr_path)
        if isinstance(node, Comparison):
            return self._compile_comparison(node)
        if isinstance(node, ValuePath):
            return self._compile_value_path(node)
        raise invalid_filter("unsupported filter expression")

    def _compile_present(self, path: AttrPath) -> Callable[[dict[str, Any]], bool]:
        resolved = self._resolve(path)
        if resolved is None:
            return lambda doc: False
        urn, info, sub = resolved
        return lambda doc: any(_present(v) for v in _values(doc, urn, info, sub))

    def _compile_comparison(self, node: Comparison) -> Callable[[dict[str, Any]], bool]:
        resolved = self._resolve(node.attr_path)
        if resolved is None:
            return lambda doc: False
        urn, info, sub = resolved
        target = sub
        if target is None and info.type == "complex":
            # RFC 7644 §3.4.2.2: a comparison on a multi-valued complex attribute applies to `value`.
            target = info.sub("value")
            sub = target
            if target is None:
                raise invalid_filter(f"cannot compare complex attribute {info.name}")
        if node.op.value == "ne":
            equal = _comparator("eq", node.value, target or info)
            return lambda doc: not any(equal(v) for v in _values(doc, urn, info, sub))
        compare = _comparator(node.op.value, node.value, target or info)
        return lambda doc: any(compare(v) for v in _values(doc, urn, info, sub))

    def _compile_value_path(self, node: ValuePath) -> Callable[[dict[str, Any]], bool]:
        resolved = self._resolve(node.attr_path)
        if resolved is None:
            return lambda doc: False
        urn, info, _ = resolved
        if info.type != "complex":
            raise invalid_filter(f"{info.name} is not a complex attribute")
        inner = _SubFilter(info, self.strict).compile(node.val_filter)

        def predicate(doc: dict[str, Any]) -> bool:
            container = doc.get(urn, {}) if urn else doc
            value = container.get(info.name) if isinstance(container, dict) else None
            items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
            return any(isinstance(item, dict) and inner(item) for item in items)

        return predicate

    # index planning ----------------------------------------------------------------------------
    def index_plan(self, indexed: dict[str, Callable[[Any], str | None]]) -> list[tuple[str, str]] | None:
        """Index keys whose union holds every match, or None when the store must scan.

        `indexed` maps an attribute path (lower case, e.g. "username", "emails.value") to the
        function that turns a filter value into its index value.
        """
        return _plan(self.ast, indexed, self)


def _plan(
    node: Any, indexed: dict[str, Callable[[Any], str | None]], compiled: CompiledFilter, prefix: str = ""
) -> list[tuple[str, str]] | None:
    if isinstance(node, Comparison) and node.op.value == "eq" and not node.attr_path.uri:
        key = prefix + node.attr_path.attr.lower()
        if node.attr_path.sub_attr:
            key += "." + node.attr_path.sub_attr.lower()
        elif prefix == "" and key in ("emails", "members"):
            key += ".value"
        normalise = indexed.get(key)
        if normalise is not None and node.value is not None:
            value = normalise(node.value)
            return [(key, value)] if value is not None else None
        return None
    if isinstance(node, LogicalExpr):
        plans = [_plan(term, indexed, compiled, prefix) for term in node.terms]
        if node.op == "and":
            usable = [plan for plan in plans if plan is not None]
            return min(usable, key=len) if usable else None
        if any(plan is None for plan in plans):
            return None
        return [key for plan in plans if plan for key in plan]
    if isinstance(node, ValuePath) and not node.attr_path.uri:
        return _plan(node.val_filter, indexed, compiled, prefix=node.attr_path.attr.lower() + ".")
    return None


class _SubFilter:
    """The filter inside `attr[...]`, evaluated on one element of a multi-valued attribute."""

    def __init__(self, parent: AttributeInfo, strict: bool) -> None:
        self.parent = parent
        self.strict = strict

    def compile(self, node: Any) -> Callable[[dict[str, Any]], bool]:
        if isinstance(node, LogicalExpr):
            terms = [self.compile(term) for term in node.terms]
            if node.op == "and":
                return lambda item: all(term(item) for term in terms)
            return lambda item: any(term(item) for term in terms)
        if isinstance(node, Not):
            inner = self.compile(node.expr)
            return lambda item: not inner(item)
        if isinstance(node, (Present, Comparison)):
            sub = self.parent.sub(node.attr_path.attr)
            if sub is None:
                if self.strict:
                    raise invalid_filter(f"unknown sub-attribute {self.parent.name}.{node.attr_path.attr}")
                return lambda item: False
            if isinstance(node, Present):
                return lambda item: _present(item.get(sub.name))
            if node.op.value == "ne":
                equal = _comparator("eq", node.value, sub)
                return lambda item: not equal(item.get(sub.name))
            compare = _comparator(node.op.value, node.value, sub)
            return lambda item: compare(item.get(sub.name))
        raise invalid_filter("unsupported expression inside a value filter")


def _render(path: AttrPath) -> str:
    name = f"{path.uri}:{path.attr}" if path.uri else path.attr
    return f"{name}.{path.sub_attr}" if path.sub_attr else name


def _values(doc: dict[str, Any], urn: str | None, info: AttributeInfo, sub: AttributeInfo | None) -> list[Any]:
    container = doc.get(urn) if urn else doc
    if not isinstance(container, dict):
        return []
    value = container.get(info.name)
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    if sub is None:
        return items
    return [item.get(sub.name) for item in items if isinstance(item, dict)]


def _present(value: Any) -> bool:
    return value not in (None, "", [], {})


def _comparator(op: str, expected: Any, info: AttributeInfo) -> Callable[[Any], bool]:
    """A one-argument test `actual <op> expected`, typed by the attribute (RFC 7644 §3.4.2.2)."""
    if expected is None:
        if op == "eq":
            return lambda actual: actual is None
        raise invalid_filter(f"operator {op} cannot compare with null")
    kind = info.type
    if kind == "boolean":
        if op != "eq":
            raise invalid_filter(f"operator {op} is not valid on boolean attribute {info.name}")
        if not isinstance(expected, bool):
            raise invalid_filter(f"{info.name} is boolean; compare it with true or false")
        return lambda actual: _as_bool(actual) is expected
    if kind in ("integer", "decimal"):
        if not isinstance(expected, (int, float)) or isinstance(expected, bool):
            raise invalid_filter(f"{info.name} is numeric; compare it with a number")
        return _ordered(op, expected, lambda a: a if isinstance(a, (int, float)) and not isinstance(a, bool) else None)
    if kind == "dateTime":
        if not isinstance(expected, str):
            raise invalid_filter(f"{info.name} is a dateTime; compare it with a quoted timestamp")
        wanted = as_datetime(expected)
        if wanted is None:
            raise invalid_filter(f"invalid dateTime in filter: {expected}")
        return _ordered(op, wanted, lambda a: as_datetime(a) if isinstance(a, str) else None)
    if not isinstance(expected, str):
        if isinstance(expected, bool) or op not in ("eq",):
            raise invalid_filter(f"{info.name} is a string; compare it with a quoted value")
        expected = str(expected)
    if kind == "binary" and op in ("gt", "ge", "lt", "le"):
        raise invalid_filter(f"operator {op} is not valid on binary attribute {info.name}")
    norm: Callable[[str], str] = (lambda s: s) if info.case_exact else fold
    wanted_s = norm(expected)

    def as_text(actual: Any) -> str | None:
        return norm(actual) if isinstance(actual, str) else None

    if op == "eq":
        return lambda a: as_text(a) == wanted_s
    if op == "co":
        return lambda a: (t := as_text(a)) is not None and wanted_s in t
    if op == "sw":
        return lambda a: (t := as_text(a)) is not None and t.startswith(wanted_s)
    if op == "ew":
        return lambda a: (t := as_text(a)) is not None and t.endswith(wanted_s)
    return _ordered(op, wanted_s, as_text)


def _ordered(op: str, wanted: Any, convert: Callable[[Any], Any]) -> Callable[[Any], bool]:
    def test(actual: Any) -> bool:
        value = convert(actual)
        if value is None:
            return False
        if op == "eq":
            return bool(value == wanted)
        if op == "gt":
            return bool(value > wanted)
        if op == "ge":
            return bool(value >= wanted)
        if op == "lt":
            return bool(value < wanted)
        if op == "le":
            return bool(value <= wanted)
        raise invalid_filter(f"operator {op} is not valid here")

    if op not in ("eq", "gt", "ge", "lt", "le"):
        raise invalid_filter(f"operator {op} is not valid on this attribute type")
    return test


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return None


def as_datetime(value: str) -> datetime | None:
    """An instant, or None. A value without an offset is taken as UTC (RFC 7643 §2.3.5 wants
    xsd:dateTime with one; the server's own zone would make answers differ by host), which also
    keeps year 1 representable (astimezone() on 0001-01-01 overflowed into year 0)."""
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
