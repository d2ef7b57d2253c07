"""The resource types the bridge serves, and the attribute facts the protocol layer needs.

The schemas come from scim2-models (RFC 7643 §4, §8.7), so `/Schemas` tells exactly what the
models validate. From them we keep a case-insensitive attribute table (type, multiValued,
caseExact, returned, mutability) that filters, sorting, projection and indexing read, so that
the read path works on stored JSON without building pydantic models.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import orjson
from scim2_models import Context, EnterpriseUser, Group, ResourceType, User
from scim2_models.resources.user import Email

CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"
CORE_GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
# The bridge's own read-only extension: where the resource stands in each target (sync/status.py).
SYNC_STATUS = "urn:scim-bridge:schemas:extension:sync:2.0:SyncStatus"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
SEARCH_REQUEST = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
BULK_REQUEST = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"


@dataclass
class AttributeInfo:
    name: str  # canonical spelling, as stored
    type: str = "string"
    multi_valued: bool = False
    case_exact: bool = False
    returned: str = "default"
    mutability: str = "readWrite"
    required: bool = False
    sub_attributes: dict[str, AttributeInfo] = field(default_factory=dict)  # keyed by lower name

    def sub(self, name: str) -> AttributeInfo | None:
        return self.sub_attributes.get(name.lower())


def _attribute_from_schema(document: dict[str, Any]) -> AttributeInfo:
    return AttributeInfo(
        name=document["name"],
        type=document.get("type", "string"),
        multi_valued=bool(document.get("multiValued")),
        case_exact=bool(document.get("caseExact")),
        returned=document.get("returned", "default"),
        mutability=document.get("mutability", "readWrite"),
        required=bool(document.get("required")),
        sub_attributes={sub["name"].lower(): _attribute_from_schema(sub) for sub in document.get("subAttributes", [])},
    )


# RFC 7643 §3.1: attributes of every resource, not part of any schema document.
_COMMON = {
    "id": AttributeInfo("id", case_exact=True, returned="always", mutability="readOnly"),
    "externalid": AttributeInfo("externalId", case_exact=True),
    "meta": AttributeInfo(
        "meta",
        type="complex",
        mutability="readOnly",
        sub_attributes={
            "resourcetype": AttributeInfo("resourceType", case_exact=True, mutability="readOnly"),
            "created": AttributeInfo("created", type="dateTime", mutability="readOnly"),
            "lastmodified": AttributeInfo("lastModified", type="dateTime", mutability="readOnly"),
            "location": AttributeInfo("location", type="reference", case_exact=True, mutability="readOnly"),
            "version": AttributeInfo("version", case_exact=True, mutability="readOnly"),
        },
    ),
}


@dataclass
class ResourceTypeInfo:
    name: str
    endpoint: str
    core_schema: str
    extensions: tuple[str, ...]
    model: Any  # the scim2-models class that validates writes
    schema_documents: dict[str, dict[str, Any]]  # urn → /Schemas document
    # Extensions the server fills and clients never write (sent values are ignored, PATCH refused).
    read_only_extensions: tuple[str, ...] = ()

    @cached_property
    def attributes(self) -> dict[str, dict[str, AttributeInfo]]:
        """urn (lower) → attribute (lower) → info; the core schema also under ''."""
        table: dict[str, dict[str, AttributeInfo]] = {}
        for urn, document in self.schema_documents.items():
            table[urn.lower()] = {a["name"].lower(): _attribute_from_schema(a) for a in document["attributes"]}
        table[""] = {**_COMMON, **table[self.core_schema.lower()]}
        return table

    @property
    def all_schemas(self) -> tuple[str, ...]:
        return (self.core_schema, *self.extensions, *self.read_only_extensions)

    def resolve(self, attr: str, uri: str | None = None) -> tuple[str | None, AttributeInfo] | None:
        """Find an attribute by (possibly URN-qualified) name; returns (extension urn or None, info)."""
        if uri:
            table = self.attributes.get(uri.lower())
            if table is None:
                return None
            info = table.get(attr.lower())
            if info is None:
                return None
            return (None if uri.lower() == self.core_schema.lower() else self._canonical_urn(uri), info)
        info = self.attributes[""].get(attr.lower())
        return (None, info) if info else None

    def _canonical_urn(self, uri: str) -> str:
        return next(urn for urn in self.all_schemas if urn.lower() == uri.lower())

    def resource_type_document(self, base_url: str, read_only_extensions: bool = True) -> dict[str, Any]:
        extensions = (*self.extensions, *(self.read_only_extensions if read_only_extensions else ()))
        # By the documents' own (aliased) names: the keyword spellings do not type-check.
        document = ResourceType.model_validate(
            {
                "id": self.name,
                "name": self.name,
                "description": self.name,
                "endpoint": self.endpoint,
                "schema": self.core_schema,
                "schemaExtensions": [{"schema": urn, "required": False} for urn in extensions],
            }
        ).model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
        document["meta"] = {"resourceType": "ResourceType", "location": f"{base_url}/ResourceTypes/{self.name}"}
        return document


def _schema_document(model: Any) -> dict[str, Any]:
    document: dict[str, Any] = model.to_schema().model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE)
    # RFC 7643 §3.1: `id`, `externalId` and `meta` are common attributes, not schema attributes.
    document["attributes"] = [a for a in document["attributes"] if a["name"] not in ("id", "externalId", "meta")]
    return document


class _AsSentEmail(Email):
    # scim2-models types emails.value as pydantic's EmailStr, which refuses special-use domains
    # (Okta's own spec test sends "@okta.local") and lower-cases domains. RFC 7643 §4.1.2 only
    # says SHOULD for RFC 5321 syntax, and IdPs expect values stored as sent (checklist 81).
    value: str | None = None


class _BridgeUser(User[EnterpriseUser]):  # type: ignore[misc]
    emails: list[_AsSentEmail] | None = None  # type: ignore[assignment]  # a narrower Email, on purpose


def _sub(name: str, description: str, type_: str = "string") -> dict[str, Any]:
    return {
        "name": name,
        "type": type_,
        "multiValued": False,
        "description": description,
        "required": False,
        "caseExact": False,
        "mutability": "readOnly",
        "returned": "default",
        "uniqueness": "none",
    }


# returned "request" (RFC 7643 §7): only when asked for with ?attributes=, so plain reads keep
# their speed and IdPs that compare what they wrote with what they read see nothing new.
_SYNC_STATUS_DOCUMENT: dict[str, Any] = {
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": SYNC_STATUS,
    "name": "SyncStatus",
    "description": "Where this resource stands in each target the bridge provisions (read-only).",
    "attributes": [
        {
            "name": "targets",
            "type": "complex",
            "multiValued": True,
            "required": False,
            "caseExact": False,
            "mutability": "readOnly",
            "returned": "request",
            "uniqueness": "none",
            "description": "One entry per target (cloudinary, iconik).",
            "subAttributes": [
                _sub("target", "The target's name."),
                _sub("state", "pending, synced, partial, failed or not-provisioned."),
                _sub("targetId", "The resource's id in the target."),
                _sub("lastSync", "When the bridge last wrote this resource's state for the target.", "dateTime"),
                _sub("error", "The last error, while the state is failed."),
                _sub("role", "The role or user type applied (users)."),
                _sub("enabled", "Whether the account is enabled in the target (users).", "boolean"),
                _sub("groups", "The target groups the user is in through the policy.") | {"multiValued": True},
            ],
        }
    ],
}

USER = ResourceTypeInfo(
    name="User",
    endpoint="/Users",
    core_schema=CORE_USER,
    extensions=(ENTERPRISE_USER,),
    model=_BridgeUser,
    schema_documents={
        CORE_USER: _schema_document(User),
        ENTERPRISE_USER: _schema_document(EnterpriseUser),
        SYNC_STATUS: _SYNC_STATUS_DOCUMENT,
    },
    read_only_extensions=(SYNC_STATUS,),
)
GROUP = ResourceTypeInfo(
    name="Group",
    endpoint="/Groups",
    core_schema=CORE_GROUP,
    extensions=(),
    model=Group,
    schema_documents={CORE_GROUP: _schema_document(Group), SYNC_STATUS: _SYNC_STATUS_DOCUMENT},
    read_only_extensions=(SYNC_STATUS,),
)
RESOURCE_TYPES: dict[str, ResourceTypeInfo] = {"User": USER, "Group": GROUP}


def schema_documents(base_url: str, read_only_extensions: bool = True) -> list[dict[str, Any]]:
    """The /Schemas listing: every schema a resource type uses, with its location."""
    documents, seen = [], set()
    for info in RESOURCE_TYPES.values():
        for urn, document in info.schema_documents.items():
            if urn in seen or (urn in info.read_only_extensions and not read_only_extensions):
                continue  # the sync-status extension serves both resource types; only when syncing
            seen.add(urn)
            documents.append({**document, "meta": {"resourceType": "Schema", "location": f"{base_url}/Schemas/{urn}"}})
    return documents


def dumps(document: Any) -> bytes:
    return orjson.dumps(document)
