"""Bulk operations (RFC 7644 §3.7): bulkId references, failOnErrors, announced limits.

Each operation goes through the same service calls as its single-request form, so a bulk
operation is exactly as valid (and as atomic) as the request it stands for. Operations that
reference a bulkId not yet created wait for it; references that can never resolve (a cycle, or
a bulkId no POST defines) fail with 409 as §3.7.1 says.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from .discovery import BULK_MAX_OPERATIONS
from .errors import ScimError, invalid_syntax, invalid_value
from .resources import ResourceService, etag
from .schemas import BULK_REQUEST, BULK_RESPONSE, RESOURCE_TYPES, ResourceTypeInfo

_BULK_REF = re.compile(r"bulkId:([A-Za-z0-9._~-]+)")


class BulkProcessor:
    def __init__(self, service: ResourceService) -> None:
        self.service = service

    async def run(self, body: Any, base_url: str) -> tuple[int, dict[str, Any]]:
        if not isinstance(body, dict):
            raise invalid_syntax("the request body must be a JSON object")
        schemas = body.get("schemas")
        if not isinstance(schemas, list) or BULK_REQUEST.lower() not in {str(s).lower() for s in schemas}:
            raise invalid_value(f"schemas must contain {BULK_REQUEST}")
        operations = next((v for k, v in body.items() if k.lower() == "operations"), None)
        if not isinstance(operations, list):
            raise invalid_value("Operations must be a list")
        if len(operations) > BULK_MAX_OPERATIONS:
            raise ScimError(413, f"a bulk request may hold at most {BULK_MAX_OPERATIONS} operations")
        fail_on_errors = body.get("failOnErrors")
        if fail_on_errors is not None and (not isinstance(fail_on_errors, int) or fail_on_errors < 1):
            raise invalid_value("failOnErrors must be a positive integer")

        created: dict[str, str] = {}  # bulkId → resource id
        results: list[dict[str, Any] | None] = [None] * len(operations)
        pending = list(range(len(operations)))
        errors = 0
        while pending:
            progressed = False
            waiting = []
            for index in pending:
                operation = operations[index]
                references = _references(operation)
                if any(ref not in created for ref in references):
                    waiting.append(index)
                    continue
                progressed = True
                result = results[index] = await self._apply(operation, created, base_url)
                if int(result["status"]) >= 400:
                    errors += 1
                    if fail_on_errors and errors >= fail_on_errors:
                        return 200, _response([r for r in results if r is not None])
            pending = waiting
            if not progressed:  # cycles or references to bulkIds nothing creates
                for index in pending:
                    results[index] = _error(
                        operations[index],
                        ScimError(409, "bulkId reference cannot be resolved (circular or unknown)", "invalidValue"),
                    )
                    errors += 1
                break
        return 200, _response([r for r in results if r is not None])

    async def _apply(self, operation: Any, created: dict[str, str], base_url: str) -> dict[str, Any]:
        try:
            if not isinstance(operation, dict):
                raise invalid_syntax("each operation must be a JSON object")
            method = str(operation.get("method", "")).upper()
            path = str(operation.get("path", ""))
            data = _resolve(operation.get("data"), created)
            resource_type, resource_id = _target(_resolve(path, created))
            if_match = operation.get("version")
            if method == "POST":
                if resource_id:
                    raise invalid_value("POST path must name a resource endpoint, e.g. /Users")
                bulk_id = operation.get("bulkId")
                if not bulk_id:
                    raise invalid_value("POST operations need a bulkId")
                outcome = await self.service.create(resource_type, data, base_url)
                created[str(bulk_id)] = outcome.record.id
                return _done(operation, "201", outcome.document["meta"]["location"], outcome.record.version)
            if not resource_id:
                raise invalid_value(f"{method} path must name a resource, e.g. /Users/<id>")
            if method == "PUT":
                outcome = await self.service.replace(resource_type, resource_id, data, base_url, if_match)
            elif method == "PATCH":
                outcome = await self.service.patch(resource_type, resource_id, data, base_url, if_match)
            elif method == "DELETE":
                await self.service.delete(resource_type, resource_id, if_match, base_url)
                return _done(operation, "204", f"{base_url}{resource_type.endpoint}/{resource_id}", None)
            else:
                raise invalid_value(f"unsupported bulk method {method!r}")
            return _done(operation, "200", outcome.document["meta"]["location"], outcome.record.version)
        except ScimError as error:
            return _error(operation, error)


def _references(operation: Any) -> set[str]:
    if not isinstance(operation, dict):
        return set()
    text = orjson.dumps({"path": operation.get("path"), "data": operation.get("data")}).decode()
    return set(_BULK_REF.findall(text))


def _resolve(value: Any, created: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _BULK_REF.sub(lambda m: created.get(m.group(1), m.group(0)), value)
    if isinstance(value, list):
        return [_resolve(item, created) for item in value]
    if isinstance(value, dict):
        return {key: _resolve(item, created) for key, item in value.items()}
    return value


def _target(path: str) -> tuple[ResourceTypeInfo, str | None]:
    parts = [part for part in path.split("/") if part]
    if not parts or len(parts) > 2:
        raise invalid_value(f"invalid bulk path {path!r}")
    info = next((i for i in RESOURCE_TYPES.values() if i.endpoint.lower() == "/" + parts[0].lower()), None)
    if info is None:
        raise invalid_value(f"unknown resource endpoint in bulk path {path!r}")
    return info, (parts[1] if len(parts) == 2 else None)


def _done(operation: dict[str, Any], status: str, location: str, version: int | None) -> dict[str, Any]:
    result: dict[str, Any] = {
        "method": str(operation.get("method", "")).upper(),
        "location": location,
        "status": status,
    }
    if operation.get("bulkId"):
        result["bulkId"] = operation["bulkId"]
    if version is not None:
        result["version"] = etag(version)
    return result


def _error(operation: Any, error: ScimError) -> dict[str, Any]:
    result: dict[str, Any] = {"status": str(error.status), "response": orjson.loads(error.body())}
    if isinstance(operation, dict):
        result["method"] = str(operation.get("method", "")).upper()
        if operation.get("bulkId"):
            result["bulkId"] = operation["bulkId"]
    return result


def _response(results: list[dict[str, Any]]) -> dict[str, Any]:
    return {"schemas": [BULK_RESPONSE], "Operations": results}
