"""Hypothesis strategies for SCIM-shaped input where an OpenAPI document is blind: filter strings
from RFC 7644 §3.4.2.2's grammar (with odd Unicode, escaped lone surrogates, huge numbers, year-1
dates), PATCH operation lists (§3.5.2) with paths into core and extension attributes, Bulk bodies
with bulkId references (§3.7), validators with non-ASCII bytes, member values with CR/LF."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import strategies as st

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
SEARCH = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"

USER_ATTRIBUTES = [
    "userName",
    "USERNAME",
    "name",
    "name.givenName",
    "name.familyName",
    "displayName",
    "nickName",
    "title",
    "active",
    "locale",
    "emails",
    "emails.value",
    "emails.type",
    "emails.primary",
    "phoneNumbers.value",
    "addresses.country",
    "groups",
    "groups.value",
    "groups.display",
    "x509Certificates.value",
    "id",
    "externalId",
    "meta",
    "meta.created",
    "meta.lastModified",
    "meta.resourceType",
    "meta.version",
    "manager",
    f"{ENTERPRISE}:department",
    f"{ENTERPRISE}:manager",
    f"{ENTERPRISE}:manager.value",
    f"{CORE_USER}:userName",
    f"{CORE_USER}:name.givenName",
    "urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus:targets.state",
    "urn:example:unknown:1.0:User:thing",
    "nope",
    "members",
    "members.value",
    "members.display",
]
GROUP_ATTRIBUTES = ["displayName", "members", "members.value", "members.type", "members.display", "externalId"]
ATTRIBUTES = USER_ATTRIBUTES + GROUP_ATTRIBUTES
OPERATORS = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le", "EQ", "Gt"]

# Text a directory holds and that breaks naive code: combining marks, case that changes length
# (İ, ß), full-width, emoji, RTL, NUL and control characters, CR/LF.
ODD_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8", exclude_categories=["Cs"]),
        st.sampled_from(["\u0130", "ß", "\u0301", "Ｆ", "\U0001f600", "\u202e", "\x00", "\r", "\n", '"', "\\", "é"]),
    ),
    max_size=12,
)
DATES = st.one_of(
    st.sampled_from(
        [
            "0001-01-01T00:00:00Z",
            "0001-01-01T00:00:00",
            "0001-01-01",
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59.999999Z",
            "2024-02-30T00:00:00Z",
            "0000-01-01T00:00:00Z",
            "2024-01-01T25:00:00Z",
        ]
    ),
    st.datetimes().map(lambda d: d.isoformat() + st_choice_suffix(d.microsecond)),
)


def st_choice_suffix(number: int) -> str:
    return ["Z", "", "+05:30", "-00:00"][number % 4]


NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["1e400", "-1e400", "1e308", "1.5e-400", "0", "-0", "1.0", str(2**63), str(2**64 + 1), "1" * 30]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def _string_literal(text: str, ascii_only: bool) -> str:
    return json.dumps(text, ensure_ascii=ascii_only)


STRING_LITERALS = st.one_of(
    st.builds(_string_literal, ODD_TEXT, st.booleans()),
    st.builds(lambda t: _string_literal(t, True), DATES),
    # Escapes a JSON encoder never writes: lone surrogates, reversed pairs, \u0000.
    st.sampled_from(['"\\ud800"', '"\\udfff\\ud800"', '"a\\udc00b"', '"\\ud83d\\ude00"', '"\\u0000"', '"\\x41"']),
)
VALUES = st.one_of(
    STRING_LITERALS,
    NUMBERS,
    st.sampled_from(["true", "false", "null", "True", "bareword", "jyoung", '""']),
)


def _comparison(attribute: str, operator: str, value: str) -> str:
    return f"{attribute} {operator} {value}"


COMPARISONS = st.one_of(
    st.builds(_comparison, st.sampled_from(ATTRIBUTES), st.sampled_from(OPERATORS), VALUES),
    st.builds(lambda a: f"{a} pr", st.sampled_from(ATTRIBUTES)),
)


def _value_path(attribute: str, inner: str) -> str:
    return f"{attribute}[{inner}]"


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda a, b: f"{a} and {b}", children, children),
        st.builds(lambda a, b: f"{a} or {b}", children, children),
        st.builds(lambda a: f"not ({a})", children),
        st.builds(lambda a: f"({a})", children),
        st.builds(
            _value_path,
            st.sampled_from(["emails", "members", "addresses", "groups", "name", "userName", f"{ENTERPRISE}:manager"]),
            children,
        ),
    )


FILTERS = st.one_of(
    st.recursive(COMPARISONS, _extend, max_leaves=6),
    # Malformed on purpose: unbalanced, truncated, empty, the grammar's words alone.
    st.sampled_from(["", "(", ")", "userName eq", "and", "not", "[]", 'emails[type eq "work"', 'userName eq "a" or']),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20),
)

# Query parameters as a client might mangle them.
INTEGER_TEXT = st.one_of(
    NUMBERS,
    st.sampled_from(["", " 1", "1 ", "+1", "²", "١", "0x10", "1_000", "-1", "NaN", "Infinity"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=5),
)
ATTRIBUTE_LISTS = st.lists(st.sampled_from(ATTRIBUTES + ["", " ", "urn:", ENTERPRISE]), max_size=4).map(",".join)
LIST_PARAMS = st.fixed_dictionaries(
    {},
    optional={
        "filter": FILTERS,
        "sortBy": st.one_of(st.sampled_from(ATTRIBUTES), ODD_TEXT),
        "sortOrder": st.sampled_from(["ascending", "descending", "DESCENDING", "up", ""]),
        "startIndex": INTEGER_TEXT,
        "count": INTEGER_TEXT,
        "cursor": st.one_of(st.just(""), ODD_TEXT),
        "attributes": ATTRIBUTE_LISTS,
        "excludedAttributes": ATTRIBUTE_LISTS,
    },
)

JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(allow_nan=False, allow_infinity=False),
    ODD_TEXT,
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda children: st.one_of(st.lists(children, max_size=3), st.dictionaries(ODD_TEXT, children, max_size=3)),
    max_leaves=6,
)
SEARCH_BODIES = st.fixed_dictionaries(
    {"schemas": st.one_of(st.just([SEARCH]), st.just([SEARCH.upper()]), st.lists(ODD_TEXT, max_size=2))},
    optional={
        "filter": st.one_of(FILTERS, JSON),
        "sortBy": st.one_of(st.sampled_from(ATTRIBUTES), JSON),
        "sortOrder": st.one_of(st.sampled_from(["ascending", "descending"]), JSON),
        "startIndex": st.one_of(st.integers(min_value=-(2**64), max_value=2**64), JSON),
        "count": st.one_of(st.integers(min_value=-(2**64), max_value=2**64), st.sampled_from([1e300, 1.5, True]), JSON),
        "cursor": st.one_of(st.just(""), JSON),
        "attributes": st.one_of(st.lists(st.sampled_from(ATTRIBUTES), max_size=3), JSON),
        "excludedAttributes": st.one_of(st.lists(st.sampled_from(ATTRIBUTES), max_size=3), JSON),
    },
)

# Validators (RFC 7232 §2.3) as raw header bytes: well-formed, weak, lists, and bytes past ASCII.
ETAG_BYTES = st.one_of(
    st.sampled_from([b"*", b'W/"1"', b'"1"', b"1", b'W/"1", W/"2"', b"\xb2", b'W/"\xb2"', b'"\xd9\xa1"', b"W/"]),
    # Control bytes are left out: uvicorn refuses them as invalid HTTP (RFC 9110 §5.5) with a
    # plain-text 400 before any application sees the request.
    # So are a leading or trailing space, which the client (h11) will not send.
    st.binary(min_size=1, max_size=12).filter(lambda b: b.strip() == b and not any(c < 0x20 or c == 0x7F for c in b)),
    st.integers(min_value=0, max_value=2**70).map(lambda n: f'W/"{n}"'.encode()),
)

PATCH_PATHS = st.one_of(
    st.none(),
    st.sampled_from(
        [
            "title",
            "TITLE",
            "name.givenName",
            "name",
            "displayName",
            "active",
            "emails",
            'emails[type eq "work"].value',
            'emails[type eq "work"]',
            'emails[value co "@"].primary',
            "phoneNumbers",
            "x509Certificates",
            "nickName",
            "locale",
            "userName",
            "externalId",
            f"{ENTERPRISE}:department",
            f"{ENTERPRISE}:manager",
            f"{ENTERPRISE}:manager.value",
            f"{CORE_USER}:title",
            "meta.lastModified",
            "groups",
            "urn:example:custom:1.0:User:thing",
            "id",
            "meta.version",
            "schemas",
            "nope",
            'name[givenName eq "Ada"]',
            "emails[",
            "",
        ]
    ),
)
PATCH_VALUES = st.one_of(
    JSON,
    ODD_TEXT,
    st.fixed_dictionaries({}, optional={"title": ODD_TEXT, "nickName": ODD_TEXT, "active": st.booleans()}),
    st.lists(st.fixed_dictionaries({"value": ODD_TEXT}, optional={"type": st.sampled_from(["work", "home", "x"])})),
    st.fixed_dictionaries({}, optional={ENTERPRISE: st.fixed_dictionaries({}, optional={"department": ODD_TEXT})}),
)
PATCH_OPERATIONS = st.lists(
    st.fixed_dictionaries(
        {"op": st.sampled_from(["add", "replace", "remove", "Add", "Replace", "REMOVE", "jump"])},
        optional={"path": PATCH_PATHS, "value": PATCH_VALUES},
    ),
    min_size=0,
    max_size=4,
)

# Member values with CR/LF and other text a header cannot carry (X-Scim-Bridge-Skipped-Members).
MEMBER_VALUES = st.one_of(
    ODD_TEXT,
    st.sampled_from(["a\r\nX-Injected: 1", "\n", "\u2028", "ü", "日本", "\x7f", "id\x00"]),
)
# What a response header can carry as it is: printable Latin-1 (RFC 9110 §5.5 field values).
HEADER_SAFE_MEMBER_VALUES = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f,"), max_size=12
)


@st.composite
def bulk_bodies(draw: st.DrawFn, user_ids: list[str], any_version: bool = False) -> dict[str, Any]:
    """A BulkRequest whose operations refer to each other by bulkId, to real ids, or to nothing;
    any_version=True also sends `version` of every JSON type (RFC 7644 §3.7 wants a string)."""
    bulk_ids = [f"b{i}" for i in range(draw(st.integers(min_value=1, max_value=4)))]
    operations = []
    for index in range(draw(st.integers(min_value=0, max_value=5))):
        method = draw(st.sampled_from(["POST", "PUT", "PATCH", "DELETE", "GET", "post"]))
        kind = draw(st.sampled_from(["/Users", "/Groups"]))
        target = draw(
            st.one_of(
                st.sampled_from(user_ids or ["none"]),
                st.sampled_from([f"bulkId:{b}" for b in bulk_ids] + ["bulkId:missing", "bulkId:", "x/y"]),
            )
        )
        operation: dict[str, Any] = {"method": method, "path": kind if method.upper() == "POST" else f"{kind}/{target}"}
        if method.upper() == "POST":
            operation["bulkId"] = draw(st.sampled_from(bulk_ids))
        if any_version:  # a version of every JSON type but the string RFC 7644 §3.7 names
            operation["version"] = draw(st.one_of(st.integers(), st.lists(JSON_LEAVES, max_size=2), st.just({"v": 1})))
        elif draw(st.booleans()):
            operation["version"] = draw(st.sampled_from(['W/"1"', "1", "²"]))
        if kind == "/Users" and method.upper() in ("POST", "PUT"):
            operation["data"] = {
                "schemas": [CORE_USER],
                "userName": draw(st.one_of(ODD_TEXT, st.just(f"bulk{index}@example.com"))),
            }
        elif kind == "/Groups" and method.upper() in ("POST", "PUT"):
            members = draw(st.lists(st.sampled_from([f"bulkId:{b}" for b in bulk_ids] + user_ids[:2]), max_size=3))
            operation["data"] = {
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": draw(ODD_TEXT),
                "members": [{"value": m} for m in members],
            }
        elif method.upper() == "PATCH":
            operation["data"] = {"schemas": [PATCH_OP], "Operations": draw(PATCH_OPERATIONS)}
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            operation["data"] = draw(JSON)
        operations.append(operation)
    body: dict[str, Any] = {"schemas": [BULK], "Operations": operations}
    if draw(st.booleans()):
        body["failOnErrors"] = draw(st.one_of(st.integers(min_value=-2, max_value=3), JSON_LEAVES))
    return body
