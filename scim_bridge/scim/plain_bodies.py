"""Which POST/PUT bodies scim2-models plainly accepts, known without running it.

Validating a User with scim2-models cost ~150 µs, the largest step of a POST (py-spy and
pyinstrument under load, bench/post_inprocess.py): its validators walk every field of every
nested model in Python. Most bodies IdPs send hold only plain attributes: strings, booleans,
complex attributes of those (`name`), multi-valued ones of those (`emails`, `phoneNumbers`,
`members`), extension blocks of strings. For such a body the model's verdict is known:
pydantic accepts a str for a str field and a bool for a bool field; scim2-models' own rules
then ask that required attributes are there (RFC 7643 §2.5), that at most one entry of a
multi-valued attribute is primary (§2.4), and that `schemas` holds the core schema (§3).

`accepts(resource_type, payload)` is True only for such a body; anything else (an int where a
string goes, a Reference, a manager, a value no field takes) goes to scim2-models as before,
which answers it. This never refuses anything: it only skips a validation whose outcome is
known. What is plain is read from the model classes at import, so a field whose type changes
stops being plain; a class carrying a validator this module does not know about (a scim2-models
upgrade) is not plain at all, so the shortcut cannot drift from the model silently.
tests/scim/test_plain_bodies.py holds it to scim2-models' verdict on generated bodies.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass, field
from typing import Any

from scim2_models import (
    CaseExact,
    ComplexAttribute,
    ExtensibleStringEnum,
    Extension,
    Mutability,
    Required,
    Returned,
    Uniqueness,
)

from .schemas import RESOURCE_TYPES, ResourceTypeInfo

# The validators scim2-models 0.12 runs, and why each one's verdict on a plain body is known:
KNOWN_VALIDATORS = frozenset(
    {
        "_resolve_attribute_names",  # maps names to fields; the payload already uses the canonical ones
        "_enforce_scim_context",  # required present, readOnly dropped, one primary: checked below
        "_populate_schemas_default",  # fills schemas outside a SCIM context only
        "_validate_schemas_attribute",  # the core schema in `schemas`: checked below
        "_validate_extension_schemas",  # refuses only under ScimPolicy.Unknown.forbid (ours ignores)
        "_validate_resource_requirements",  # responses only
        "_validate_comparison_forms",  # skipped under the default comparison key (ours)
    }
)
_ANNOTATIONS = (CaseExact, Mutability, Required, Returned, Uniqueness)  # SCIM facts, no constraint

# ENUM: a str field typed by an ExtensibleStringEnum (`type`), which takes any string that is valid
# Unicode; a plain str field also takes one with a lone surrogate (pydantic passes it through).
STRING, ENUM, BOOLEAN, COMPLEX, MULTI = "string", "enum", "boolean", "complex", "multi"


@dataclass(frozen=True)
class PlainField:
    kind: str
    sub: dict[str, PlainField] = field(default_factory=dict)  # complex, multi: the plain sub-attributes
    required: tuple[str, ...] = ()  # complex, multi: sub-attributes an entry must hold


@dataclass(frozen=True)
class PlainShape:
    core_schema: str
    schemas: frozenset[str]  # the core schema and the extensions the model holds
    fields: dict[str, PlainField]  # by SCIM name (extension blocks by URN)
    required: tuple[str, ...]

    def accepts(self, payload: dict[str, Any]) -> bool:
        schemas = payload.get("schemas")
        if type(schemas) is not list or self.core_schema not in schemas:
            return False
        for urn in schemas:
            if urn not in self.schemas:
                return False
        return _plain_object(payload, self.fields, self.required, skip="schemas")


def accepts(resource_type: ResourceTypeInfo, payload: dict[str, Any]) -> bool:
    """Whether scim2-models is known to accept this normalised POST/PUT body (module docstring)."""
    shape = SHAPES.get(resource_type.name)
    return shape is not None and shape.accepts(payload)


def _plain_object(
    value: dict[str, Any], table: dict[str, PlainField], required: tuple[str, ...], skip: str = ""
) -> bool:
    for key, item in value.items():
        if key == skip:
            continue
        plain = table.get(key)
        if plain is None:
            return False
        kind = plain.kind
        if kind is STRING:
            if type(item) is not str:
                return False
        elif kind is BOOLEAN:
            if type(item) is not bool:
                return False
        elif kind is ENUM:
            if type(item) is not str or not (item.isascii() or _unicode(item)):
                return False
        elif kind is COMPLEX:
            if type(item) is not dict or not _plain_object(item, plain.sub, plain.required):
                return False
        else:  # MULTI
            if type(item) is not list:
                return False
            primaries = 0
            for entry in item:
                if type(entry) is not dict or not _plain_object(entry, plain.sub, plain.required):
                    return False
                primaries += entry.get("primary") is True
            if primaries > 1:
                return False
    return all(name in value for name in required)


def _unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate (only from a caller's dict: orjson refuses them)
        return False
    return True


# from the model classes ----------------------------------------------------------------------


def _known_validators(cls: type) -> bool:
    decorators = cls.__pydantic_decorators__  # type: ignore[attr-defined]  # every pydantic model has it
    return (
        not decorators.field_validators
        and not decorators.validators
        and not decorators.root_validators
        and set(decorators.model_validators) <= KNOWN_VALIDATORS
    )


def _inner(annotation: Any) -> Any:
    """`X | None` → X; anything else (a union of two types, a bare type) as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else None
    return annotation


def _fields(model: Any, nested: bool) -> tuple[dict[str, PlainField], tuple[str, ...]] | None:
    """The plain fields of a model by SCIM name, and its required ones; None when a required
    field is not plain (no body can then be plainly valid) or the model has unknown validators."""
    if not _known_validators(model):
        return None
    table: dict[str, PlainField] = {}
    required: list[str] = []
    for name, info in model.model_fields.items():
        scim_name = info.serialization_alias or name
        is_required = model.get_field_annotation(name, Required) == Required.true
        if name == "schemas" or model.get_field_annotation(name, Mutability) == Mutability.read_only:
            if is_required and name != "schemas":
                return None
            continue  # `schemas` is checked by the shape; read-only values are dropped before validation
        plain = _plain_field(info.annotation, info.metadata, nested)
        if plain is not None:
            table[scim_name] = plain
        if is_required:
            if plain is None:
                return None
            required.append(scim_name)
    return table, tuple(required)


def _plain_field(annotation: Any, metadata: list[Any], nested: bool) -> PlainField | None:
    if any(not isinstance(m, _ANNOTATIONS) for m in metadata):
        # a constraint (length, pattern…) or a serializer: not a plain field, unless it is the
        # serializer scim2-models puts on every extension field (dumps only, never validates)
        if not (nested is False and all(isinstance(m, _ANNOTATIONS) or _is_serializer(m) for m in metadata)):
            return None
    inner = _inner(annotation)
    if inner is str:
        return PlainField(STRING)
    if isinstance(inner, type) and issubclass(inner, ExtensibleStringEnum):
        return PlainField(ENUM)
    if inner is bool:
        return PlainField(BOOLEAN)
    if nested:
        return None  # sub-attributes of complex attributes are strings and booleans (RFC 7643 §2.3.8)
    multi = typing.get_origin(inner) is list
    element = typing.get_args(inner)[0] if multi else inner
    if not (isinstance(element, type) and issubclass(element, (ComplexAttribute, Extension))):
        return None
    found = _fields(element, nested=True)
    if found is None:
        return None
    return PlainField(MULTI if multi else COMPLEX, found[0], found[1])


def _is_serializer(metadata: Any) -> bool:
    return type(metadata).__name__ in ("WrapSerializer", "PlainSerializer")


def _shape(resource_type: ResourceTypeInfo) -> PlainShape | None:
    found = _fields(resource_type.model, nested=False)
    if found is None:
        return None
    return PlainShape(
        resource_type.core_schema, frozenset((resource_type.core_schema, *resource_type.extensions)), *found
    )


SHAPES: dict[str, PlainShape] = {
    name: shape for name, info in RESOURCE_TYPES.items() if (shape := _shape(info)) is not None
}
