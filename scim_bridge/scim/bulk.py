"""Bulk operations (RFC 7644 §3.7): bulkId references, failOnErrors, announced limits.

Each operation goes through the same service calls as its single-request form, so a bulk
operation is exactly as valid (and as atomic) as the request it stands for, and answers for
itself (§3.7.3: its own `status` and `response`): one bad operation is that operation's 4xx,
never the whole request's 500.

Order (§3.7.2): an operation that references a bulkId runs after the POST that defines it.
`schedule` builds that dependency graph once and orders it topologically (Kahn's algorithm, the
lowest index first among the ready ones), so 1,000 operations that reference each other in
reverse order cost one pass, not one pass per resolved reference (that was quadratic: ~3–5 s).
References that can never resolve (a cycle, or a bulkId no POST defines) fail with 409 as
§3.7.1 says; so does an operation whose bulkId's POST failed.
"""

from __future__ import annotations

import heapq
import logging
import re
from dataclasses import dataclass
from typing import Any

import orjson

from .discovery import BULK_MAX_OPERATIONS
from .errors import ScimError, invalid_syntax, invalid_value
from .resources import ResourceService, etag
from .schemas import BULK_REQUEST, BULK_RESPONSE, RESOURCE_TYPES, ResourceTypeInfo

log = logging.getLogger("scim_bridge.scim")

_BULK_REF = re.compile(r"bulkId:([A-Za-z0-9._~-]+)")


@dataclass
class Schedule:
    """The order to run a bulk request's operations in, computed once."""

    order: list[int]  # indexes whose references all have a defining POST, dependencies first
    unresolvable: list[int]  # in a cycle, or referencing a bulkId no POST defines
    references: list[set[str]]  # per operation, the bulkIds it references
    steps: int = 0  # work done: operations visited plus edges followed (linear in the request)


def schedule(operations: list[Any]) -> Schedule:
    """Dependency order of the operations (§3.7.2), in O(operations + references)."""
    references = [_references(operation) for operation in operations]
    defined: dict[str, int] = {}
    for index, operation in enumerate(operations):
        bulk_id = _defined_bulk_id(operation)
        if bulk_id is not None:
            defined.setdefault(bulk_id, index)
    dependents: dict[int, list[int]] = {}
    waiting = [0] * len(operations)
    steps = 0
    for index, refs in enumerate(references):
        for ref in refs:
            steps += 1
            definer = defined.get(ref)
            if definer is None:
                waiting[index] = -1  # never ready
                break
            dependents.setdefault(definer, []).append(index)
            waiting[index] += 1
    ready = [index for index, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        index = heapq.heappop(ready)
        order.append(index)
        steps += 1
        for dependent in dependents.get(index, ()):
            steps += 1
            if waiting[dependent] > 0:
                waiting[dependent] -= 1
                if waiting[dependent] == 0:
                    heapq.heappush(ready, dependent)
    placed = set(order)
    unresolvable = [index for index in range(len(operations)) if index not in placed]
    return Schedule(order, unresolvable, references, steps)


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
        if fail_on_errors is not None and (
            isinstance(fail_on_errors, bool) or not isinstance(fail_on_errors, int) or fail_on_errors < 1
        ):
            raise invalid_value("failOnErrors must be a positive integer")

        plan = schedule(operations)
        created: dict[str, str] = {}  # bulkId → resource id
        results: list[dict[str, Any] | None] = [None] * len(operations)
        errors = 0
        for index in plan.order:
            operation = operations[index]
            missing = sorted(ref for ref in plan.references[index] if ref not in created)
            if missing:  # its bulkId's POST ran and failed
                result = _error(
                    operation,
                    ScimError(409, f"bulkId {missing[0]} was not created: its operation failed", "invalidValue"),
                )
            else:
                result = await self._apply(operation, created, base_url)
            results[index] = result
            if int(result["status"]) >= 400:
                errors += 1
                if fail_on_errors and errors >= fail_on_errors:
                    return 200, _response(results)
        for index in plan.unresolvable:  # cycles or references to bulkIds nothing creates
            results[index] = _error(
                operations[index],
                ScimError(409, "bulkId reference cannot be resolved (circular or unknown)", "invalidValue"),
            )
            errors += 1
            if fail_on_errors and errors >= fail_on_errors:
                break
        return 200, _response(results)

    async def _apply(self, operation: Any, created: dict[str, str], base_url: str) -> dict[str, Any]:
        try:
            return await self._apply_checked(operation, created, base_url)
        except ScimError as error:
            return _error(operation, error)
        except Exception:  # a bug: this operation's answer, not the whole request's (§3.7.3)
            log.exception("unexpected error in a bulk operation")
            return _error(
                operation,
                ScimError(500, "internal error in this operation; read the resource to see whether it applied"),
            )

    async def _apply_checked(self, operation: Any, created: dict[str, str], base_url: str) -> dict[str, Any]:
        if not isinstance(operation, dict):
            raise invalid_syntax("each operation must be a JSON object")
        method = operation.get("method")
        if not isinstance(method, str):
            raise invalid_value("method must be POST, PUT, PATCH or DELETE")
        method = method.upper()
        path = operation.get("path")
        if not isinstance(path, str):
            raise invalid_value("path must be a string, e.g. /Users or /Users/<id>")
        # RFC 7644 §3.7: `version` is the ETag the client holds (If-Match); a string, like the header.
        if_match = operation.get("version")
        if if_match is not None and not isinstance(if_match, str):
            raise invalid_value('version must be a string holding an ETag, e.g. W/"3"')
        data = _resolve(operation.get("data"), created)
        resource_type, resource_id = _target(_resolve(path, created))
        if method == "POST":
            if resource_id:
                raise invalid_value("POST path must name a resource endpoint, e.g. /Users")
            bulk_id = operation.get("bulkId")
            if not bulk_id:
                raise invalid_value("POST operations need a bulkId")
            if not isinstance(bulk_id, str):
                raise invalid_value("bulkId must be a string")
            outcome = await self.service.create(resource_type, data, base_url)
            created[bulk_id] = outcome.record.id
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


def _defined_bulk_id(operation: Any) -> str | None:
    """The bulkId a POST operation defines, if it is a usable one."""
    if not isinstance(operation, dict) or not isinstance(operation.get("method"), str):
        return None
    bulk_id = operation.get("bulkId")
    if operation["method"].upper() != "POST" or not isinstance(bulk_id, str) or not bulk_id:
        return None
    return bulk_id


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


def _response(results: list[dict[str, Any] | None]) -> dict[str, Any]:
    """The operations that ran (or were refused), in the order the client sent them."""
    return {"schemas": [BULK_RESPONSE], "Operations": [r for r in results if r is not None]}
