"""Before/after differences of a SCIM resource, as attribute paths, with secrets left out.

A change is {"path", "old", "new"}; a multi-valued attribute of objects with a `value` (members,
emails, …) is compared by value as {"path", "added", "removed"}, so adding one member to a group
of ten thousand records one id, not two lists. A secret (`password`, anything named like a secret
or token: the rule of scim_bridge/redaction.py, shared with capture and logs) is recorded as
{"path", "redacted": true}: that it changed, never its value.
"""

from __future__ import annotations

from typing import Any

from ..redaction import is_secret_name, redact_json

#: server bookkeeping that changes on every write and says nothing about the change
IGNORED = {"meta", "id", "groups"}


def is_secret(name: str) -> bool:
    return is_secret_name(name)


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = []
    _walk("", before or {}, after or {}, result)
    return result


def _walk(prefix: str, before: dict[str, Any], after: dict[str, Any], result: list[dict[str, Any]]) -> None:
    # (every POST and PUT walks its whole document here: kept to plain lookups and calls)
    for key in sorted(before.keys() | after.keys() if before else after, key=str.lower):
        if not prefix and key in IGNORED:
            continue
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        path = prefix + key
        if is_secret_name(key):
            result.append({"path": path, "redacted": True})
        elif (old is None or isinstance(old, dict)) and (new is None or isinstance(new, dict)):
            # a complex attribute, added, changed or removed: its sub-attributes, one by one;
            # extension schemas are URNs, their attributes follow a colon (RFC 7644 §3.10)
            _walk(path + (":" if key.startswith("urn:") else "."), old or {}, new or {}, result)
        elif _by_value(old) and _by_value(new):
            old_values, new_values = _values(old), _values(new)
            added = _missing(new_values, old_values)
            removed = _missing(old_values, new_values)
            if added or removed:
                result.append({"path": path, "added": added, "removed": removed})
            else:  # same values, other sub-attributes (type, primary, display…)
                result.append({"path": path, "old": scrub(old), "new": scrub(new)})
        else:
            result.append({"path": path, "old": scrub(old), "new": scrub(new)})


def _by_value(items: Any) -> bool:
    return items is None or (isinstance(items, list) and all(isinstance(i, dict) and "value" in i for i in items))


def _values(items: list[dict[str, Any]] | None) -> list[Any]:
    return [item["value"] for item in items or []]


def _missing(values: list[Any], other: list[Any]) -> list[Any]:
    """The values (in order, repeats kept) not among `other`: by a set when the values allow it,
    since a list lookup per member made a change to a group of 10,000 cost 10^8 comparisons."""
    if not other:
        return list(values)
    try:
        present: set[Any] | list[Any] = set(other)
    except TypeError:  # an unhashable value (an object where an id belongs)
        present = other
    try:
        return [v for v in values if v not in present]
    except TypeError:
        return [v for v in values if v not in other]


_PLAIN = frozenset({str, bool, int, float, type(None)})


def scrub(value: Any) -> Any:
    """A copy of `value` without secrets, for values recorded whole."""
    return value if type(value) in _PLAIN else redact_json(value)
