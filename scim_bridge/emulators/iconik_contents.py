"""iconik assets and collection contents, the parts reviewer routing needs (`/API/assets/v1/assets/`,
`/API/assets/v1/collections/{id}/contents/`).

From ../shared/specs/iconik/assets.json (AssetCreateSchema: `title` required; `?assign_to_collection=`
puts the new asset in the body's `collection_id`; CollectionContentSchema: `object_id`,
`object_type` required, 201 "Content added") and research/iconik.md §5.1. An asset's
`in_collections` (AssetSchema, read-only) lists the collections holding it. Not emulated: versions,
files, formats, metadata, transcodes, segments, relations.

Webhooks (research/iconik.md §7.2, payload fields UNCONFIRMED as in iconik_webhooks.py): a new asset
is `assets`/`entity`/`create` with the asset under `data`; content added to a collection is
`collections`/`contents`/`create` on the collection, `data` the CollectionContentSchema. Which
event iconik sends when an upload lands in a collection (one, the other, or both) is UNCONFIRMED:
the emulator sends both, the create first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .iconik_acls import Notify
from .iconik_common import Refusal, find, json_body, new_id, now, paged

if TYPE_CHECKING:
    from .iconik import IconikState, IconikSwitches

PREFIX = "/API/assets/v1"
ASSET_TYPES = ("ASSET", "SEQUENCE", "NLE_PROJECT", "PLACEHOLDER", "CUSTOM", "LINK", "SUBCLIP")
CONTENT_TYPES = ("assets", "collections")


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() in ("true", "1")


def routes(state: IconikState, switches: IconikSwitches, notify: Notify) -> list[Route]:
    def live_collection(collection_id: str) -> dict[str, Any]:
        collection = state.collections.get(collection_id)
        if collection is None or collection["status"] == "DELETED":
            raise Refusal(["Collection not found"], 404)
        return collection

    def asset_view(asset: dict[str, Any]) -> dict[str, Any]:
        holders = [c for c, objects in state.contents.items() if ("assets", asset["id"]) in objects]
        return {**asset, "in_collections": holders}

    def add_content(collection_id: str, object_type: str, object_id: str) -> dict[str, Any]:
        held = state.contents.setdefault(collection_id, {})
        entry = held.get((object_type, object_id))
        if entry is None:  # adding what the collection already holds changes nothing: UNCONFIRMED
            entry = {"collection_id": collection_id, "object_id": object_id, "object_type": object_type}
            entry["date_created"] = now()
            held[(object_type, object_id)] = entry
            notify("collections", "contents", "create", collection_id, dict(entry))
        return entry

    async def create_asset(request: Request) -> JSONResponse:
        body = await json_body(request)
        problems: dict[str, list[str]] = {}
        if not (isinstance(body.get("title"), str) and body["title"]):
            problems["title"] = ["Missing data for required field."]
        if body.get("type") is not None and body["type"] not in ASSET_TYPES:
            problems["type"] = [f"Must be one of: {', '.join(ASSET_TYPES)}."]
        into = body.get("collection_id") if _flag(request, "assign_to_collection", False) else None
        if into is not None and (into not in state.collections or state.collections[into]["status"] == "DELETED"):
            problems["collection_id"] = ["Collection does not exist"]
        if problems:
            raise Refusal(problems, 400)
        stamp = now()
        asset = {
            "id": new_id(),
            "title": body["title"],
            "type": body.get("type") or "ASSET",
            "status": "ACTIVE",
            "external_id": body.get("external_id"),
            "category": body.get("category"),
            "created_by_user": state.token_user_id,
            "date_created": stamp,
            "date_modified": stamp,
        }
        state.assets[asset["id"]] = asset
        notify("assets", "entity", "create", asset["id"], asset_view(asset))
        if into is not None:
            add_content(into, "assets", asset["id"])
        return JSONResponse(asset_view(asset), status_code=201)

    async def get_asset(request: Request) -> JSONResponse:
        return JSONResponse(asset_view(find("Asset", state.assets, request.path_params["asset_id"])))

    async def delete_asset(request: Request) -> Response:
        asset = find("Asset", state.assets, request.path_params["asset_id"])
        del state.assets[asset["id"]]
        for held in state.contents.values():
            held.pop(("assets", asset["id"]), None)
        return Response(status_code=204)

    async def list_contents(request: Request) -> JSONResponse:
        collection = live_collection(request.path_params["collection_id"])
        wanted = (request.query_params.get("object_types") or ",".join(CONTENT_TYPES)).split(",")
        objects = []
        for object_type, object_id in list(state.contents.get(collection["id"], {})):
            if object_type == "assets" and "assets" in wanted and object_id in state.assets:
                objects.append({**asset_view(state.assets[object_id]), "object_type": "assets"})
        # Sub-collections are contents too (their parent_id); the bridge reads them from /collections/.
        return JSONResponse(paged(request, objects, switches))

    async def post_content(request: Request) -> Response:
        collection = live_collection(request.path_params["collection_id"])
        body = await json_body(request)
        problems: dict[str, list[str]] = {}
        for name in ("object_id", "object_type"):
            if not body.get(name):
                problems[name] = ["Missing data for required field."]
        if body.get("object_type") and body["object_type"] not in CONTENT_TYPES:
            problems["object_type"] = [f"Must be one of: {', '.join(CONTENT_TYPES)}."]
        elif body.get("object_type") == "assets" and body.get("object_id") not in state.assets:
            problems["object_id"] = ["Asset does not exist"]
        if problems:
            raise Refusal(problems, 400)
        add_content(collection["id"], body["object_type"], body["object_id"])
        return Response(status_code=201)  # "Content added": the spec gives no body

    async def remove_content(request: Request) -> Response:
        collection = live_collection(request.path_params["collection_id"])
        key = (request.path_params["object_type"], request.path_params["object_id"])
        if state.contents.get(collection["id"], {}).pop(key, None) is None:
            raise Refusal(["Content not found"], 404)
        return Response(status_code=204)

    return [
        Route(f"{PREFIX}/assets/", create_asset, methods=["POST"]),
        Route(f"{PREFIX}/assets/{{asset_id}}/", get_asset, methods=["GET"]),
        Route(f"{PREFIX}/assets/{{asset_id}}/", delete_asset, methods=["DELETE"]),
        Route(f"{PREFIX}/collections/{{collection_id}}/contents/", list_contents, methods=["GET"]),
        Route(f"{PREFIX}/collections/{{collection_id}}/contents/", post_content, methods=["POST"]),
        Route(
            f"{PREFIX}/collections/{{collection_id}}/contents/{{object_type}}/{{object_id}}/",
            remove_content,
            methods=["DELETE"],
        ),
    ]
