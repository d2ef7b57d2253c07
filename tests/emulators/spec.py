"""Validate emulator responses against the vendors' own OpenAPI response schemas (../shared/specs)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator

SPECS = Path(__file__).resolve().parents[3] / "shared" / "specs"


@cache
def _document(name: str) -> dict[str, Any]:
    path = SPECS / name
    if not path.exists():
        raise FileNotFoundError(f"vendor spec {path} is missing: the tests need ../shared/specs beside the project")
    text = path.read_text()
    return yaml.safe_load(text) if name.endswith((".yml", ".yaml")) else json.loads(text)


def response_schema(spec: str, path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema of one documented response, with its $refs resolvable."""
    document = _document(spec)
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    if "$ref" in response:
        response = _resolve(document, response["$ref"])
    schema = response["content"]["application/json"]["schema"]
    return {**schema, "components": document.get("components", {})}


def _resolve(document: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = document
    for part in ref.lstrip("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def assert_matches(spec: str, path: str, method: str, status: int, body: Any) -> None:
    # The components travel inside the schema, so its "#/components/..." references resolve locally.
    validator = Draft202012Validator(_nullable(response_schema(spec, path, method, status)))
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{method} {path} {status}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors[:5])


def _nullable(schema: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` → JSON Schema's type list, recursively."""
    if isinstance(schema, dict):
        converted = {k: _nullable(v) for k, v in schema.items()}
        if converted.pop("nullable", False):
            if "type" in converted:
                converted["type"] = [converted["type"], "null"]
            elif converted:  # e.g. {"allOf": [{"$ref": …}], "nullable": true}
                return {"anyOf": [converted, {"type": "null"}]}
        return converted
    if isinstance(schema, list):
        return [_nullable(item) for item in schema]
    return schema
