"""SCIM errors (RFC 7644 §3.12): one exception type, one response shape.

Every failure a client can cause becomes a `ScimError` with the right status and `scimType`;
the app turns anything else into a plain 500 body without a trace (never the exception text).
"""

from __future__ import annotations

import orjson

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
SCIM_CONTENT_TYPE = "application/scim+json"


class ScimError(Exception):
    def __init__(
        self,
        status: int,
        detail: str,
        scim_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.headers = headers or {}

    def body(self) -> bytes:
        document: dict[str, object] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type:
            document["scimType"] = self.scim_type
        return orjson.dumps(document)


def bad_request(detail: str, scim_type: str | None = None) -> ScimError:
    return ScimError(400, detail, scim_type)


def invalid_value(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidValue")


def invalid_syntax(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidSyntax")


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


def not_found(resource_type: str, id: str) -> ScimError:
    return ScimError(404, f"{resource_type} {id} not found")


def uniqueness(detail: str) -> ScimError:
    return ScimError(409, detail, "uniqueness")


def precondition_failed(detail: str = "the resource has changed (ETag mismatch)") -> ScimError:
    return ScimError(412, detail)


def unavailable(detail: str = "the store is unavailable, retry later", retry_after: int = 5) -> ScimError:
    return ScimError(503, detail, headers={"Retry-After": str(retry_after)})
