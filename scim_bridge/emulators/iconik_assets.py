"""iconik Assets service, the parts the bridge uses for workspaces and project teams
(`/API/assets/v1/collections/`, `/projects/`, `/projects/{id}/members/`).

From ../shared/specs/iconik/assets.json and research/iconik.md §3.4, §5 and §9.9. Collections form a
tree through `parent_id` (`parents` and `in_collections` are derived); a project owns one collection
(`collection_id`, shown back as the collection's `project_id`); project members are users only.
Deletes answer 202 "Deletion has been scheduled" and are finished when they answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .iconik_acls import Notify, effective, record
from .iconik_common import Refusal, Scrolls, ancestors, descendants, find, json_body, new_id, now

if TYPE_CHECKING:
    from .iconik import IconikState, IconikSwitches

PREFIX = "/API/assets/v1"
COLLECTION_STATUSES = ("ACTIVE", "HIDDEN", "DELETED")
COLLECTION_FIELDS = ("title", "parent_id", "external_id", "category", "is_root", "status", "storage_id")


def _flag(request: Request, name: str, default: bool) -> bool:
    value = request.query_params.get(name)
    return default if value is None else value.lower() in ("true", "1")


def routes(state: IconikState, switches: IconikSwitches, notify: Notify) -> list[Route]:
    scrolls = Scrolls()

    def project_of(collection_id: str) -> str | None:
        return next((p["id"] for p in state.projects.values() if p.get("collection_id") == collection_id), None)

    def collection_view(collection: dict[str, Any]) -> dict[str, Any]:
        """CollectionSchema: stored fields plus what is derived; unset non-nullable fields are left out."""
        view = {
            k: v
            for k, v in collection.items()
            if v is not None or k in ("parent_id", "external_id", "category", "storage_id")
        }
        view["parents"] = ancestors(state, collection["id"])
        view["in_collections"] = [collection["parent_id"]] if collection.get("parent_id") else []
        view["permissions"] = effective(state, switches, state.token_user_id, "collections", collection["id"])
        project_id = project_of(collection["id"])
        if project_id:
            view["project_id"] = project_id
        return view

    def check_collection(body: dict[str, Any], self_id: str | None, full: bool) -> None:
        problems: dict[str, list[str]] = {}
        if (full or "title" in body) and not (isinstance(body.get("title"), str) and body["title"]):
            problems["title"] = ["Missing data for required field."]
        if body.get("status") is not None and body["status"] not in COLLECTION_STATUSES:
            problems["status"] = [f"Must be one of: {', '.join(COLLECTION_STATUSES)}."]
        parent = body.get("parent_id")
        if parent is not None:
            if parent not in state.collections or state.collections[parent]["status"] == "DELETED":
                problems["parent_id"] = ["Collection does not exist"]
            elif self_id and (parent == self_id or parent in descendants(state, self_id)):
                problems["parent_id"] = ["A collection cannot be moved into itself"]
        if problems:
            raise Refusal(problems, 400)

    def new_collection(body: dict[str, Any]) -> dict[str, Any]:
        stamp = now()
        collection = {
            "id": new_id(),
            "object_type": "collections",
            "title": body["title"],
            "parent_id": body.get("parent_id"),
            "external_id": body.get("external_id"),
            "category": body.get("category"),
            # UNCONFIRMED: is_root defaulting to "has no parent" (the spec gives no default).
            "is_root": bool(body.get("is_root", body.get("parent_id") is None)),
            "status": body.get("status") or "ACTIVE",
            "storage_id": body.get("storage_id"),
            "created_by_user": state.token_user_id,
            "custom_order_status": "DISABLED",
            "keyframe_asset_ids": [],
            "metadata": {},
            "favoured": False,
            "date_created": stamp,
            "date_modified": stamp,
        }
        state.collections[collection["id"]] = collection
        notify("collections", "entity", "create", collection["id"], collection_view(collection))
        return collection

    # collections -------------------------------------------------------------------------------
    async def list_collections(request: Request) -> JSONResponse:
        q = request.query_params
        wanted_status = q.get("status")
        found = [
            c
            for c in state.collections.values()
            if (c["status"] == wanted_status if wanted_status else c["status"] != "DELETED")
        ]
        if q.get("is_root"):
            found = [c for c in found if c["is_root"] == (q["is_root"].lower() == "true")]
        return JSONResponse(scrolls.answer(request, [collection_view(c) for c in found], switches))

    async def create_collection(request: Request) -> JSONResponse:
        body = await json_body(request)
        check_collection(body, None, full=True)
        collection = new_collection(body)
        # apply_default_acls (default true) would add the creator's default ACLs; which ones is
        # UNCONFIRMED, so none are added (the creator still gets full rights, research §4.3).
        if _flag(request, "apply_collection_acls", False) and collection["parent_id"]:
            parent = state.acls.get(f"collections/{collection['parent_id']}")
            if parent:
                mine = record(state, "collections", collection["id"])
                mine["users"] = {k: dict(v) for k, v in parent["users"].items()}
                mine["groups"] = {k: dict(v) for k, v in parent["groups"].items()}
        return JSONResponse(collection_view(collection), status_code=201)

    async def get_collection(request: Request) -> JSONResponse:
        collection = find("Collection", state.collections, request.path_params["collection_id"])
        return JSONResponse(collection_view(collection))

    async def update_collection(request: Request) -> JSONResponse:
        collection = find("Collection", state.collections, request.path_params["collection_id"])
        body = await json_body(request)
        check_collection(body, collection["id"], full=request.method == "PUT")
        # change_parent_mode=copy (keep the old parent too) is not emulated: both modes move. UNCONFIRMED.
        for name in COLLECTION_FIELDS:
            if name in body:
                collection[name] = body[name]
        collection["date_modified"] = now()
        notify("collections", "entity", "update", collection["id"], collection_view(collection))
        return JSONResponse(collection_view(collection))

    async def delete_collection(request: Request) -> Response:
        collection = find("Collection", state.collections, request.path_params["collection_id"])
        doomed = [collection["id"], *descendants(state, collection["id"])]  # sub-collections go too: UNCONFIRMED
        for key in doomed:
            notify("collections", "entity", "delete", key, collection_view(state.collections[key]))
            if switches.collection_delete_purges:
                del state.collections[key]
                state.acls.pop(f"collections/{key}", None)
            else:
                # Default: into the delete queue (status DELETED, restorable; the spec has
                # /delete_queue/collections/), still readable by id. Whether GET then answers 200 or
                # 404 is UNCONFIRMED.
                state.collections[key].update(status="DELETED", date_deleted=now(), deleted_by_user=state.token_user_id)
        return Response(status_code=202)  # "Deletion has been scheduled"

    # projects ----------------------------------------------------------------------------------
    def check_project(body: dict[str, Any], project_id: str | None, full: bool) -> None:
        problems: dict[str, list[str]] = {}
        if (full or "name" in body) and not (isinstance(body.get("name"), str) and body["name"]):
            problems["name"] = ["Missing data for required field."]
        if body.get("status") is not None and body["status"] != "ACTIVE":
            problems["status"] = ["Must be one of: ACTIVE."]  # the spec's enum has nothing else (no archive)
        for name in ("collection_id", "collection_parent_id"):
            if body.get(name) is not None and body[name] not in state.collections:
                problems[name] = ["Collection does not exist"]
        owner = project_of(body["collection_id"]) if body.get("collection_id") else None
        if owner and owner != project_id:
            problems["collection_id"] = ["Collection already belongs to a project"]
        if full and project_id and not body.get("collection_id"):
            problems["collection_id"] = ["Missing data for required field."]
        if problems:
            raise Refusal(problems, 400)

    async def list_projects(request: Request) -> JSONResponse:
        found = list(state.projects.values())
        if request.query_params.get("status"):
            found = [p for p in found if p["status"] == request.query_params["status"]]
        return JSONResponse(scrolls.answer(request, found, switches))

    async def create_project(request: Request) -> JSONResponse:
        body = await json_body(request)
        check_project(body, None, full=True)
        collection_id = (
            body.get("collection_id")
            or new_collection({"title": body["name"], "parent_id": body.get("collection_parent_id")})["id"]
        )
        stamp = now()
        project = {
            "id": new_id(),
            "name": body["name"],
            "collection_id": collection_id,
            "status": body.get("status") or "ACTIVE",
            "storage_id": body.get("storage_id"),
            "created_by_user": state.token_user_id,
            "system_domain_id": state.system_domain_id,
            "date_created": stamp,
            "date_modified": stamp,
        }
        state.projects[project["id"]] = project
        state.project_members[project["id"]] = {}  # the creator is not made a member: UNCONFIRMED
        return JSONResponse(project, status_code=201)

    async def get_project(request: Request) -> JSONResponse:
        # include_users=true adds nothing: ProjectSchema has no field for it (UNCONFIRMED what it adds).
        return JSONResponse(find("Project", state.projects, request.path_params["project_id"]))

    async def update_project(request: Request) -> JSONResponse:
        project = find("Project", state.projects, request.path_params["project_id"])
        body = await json_body(request)
        check_project(body, project["id"], full=request.method == "PUT")
        for name in ("name", "collection_id", "status", "storage_id"):
            if name in body:
                project[name] = body[name]
        project["date_modified"] = now()
        return JSONResponse(project)

    async def delete_project(request: Request) -> Response:
        project = find("Project", state.projects, request.path_params["project_id"])
        # The project collection stays (only its project_id goes): UNCONFIRMED.
        del state.projects[project["id"]]
        state.project_members.pop(project["id"], None)
        return Response(status_code=202)

    # project members ---------------------------------------------------------------------------
    def members_of(request: Request) -> dict[str, dict[str, Any]]:
        project = find("Project", state.projects, request.path_params["project_id"])
        return state.project_members.setdefault(project["id"], {})

    async def list_members(request: Request) -> JSONResponse:
        return JSONResponse({"objects": list(members_of(request).values())})  # unpaginated

    async def add_member(request: Request) -> JSONResponse:
        members = members_of(request)
        user_id = (await json_body(request)).get("id")
        if not user_id:
            raise Refusal({"id": ["Missing data for required field."]}, 400)
        if user_id not in state.users:
            raise Refusal({"id": ["User does not exist"]}, 400)
        if user_id not in members:  # adding a member twice answers the existing one: UNCONFIRMED
            stamp = now()
            members[user_id] = {
                "id": user_id,
                "project_id": request.path_params["project_id"],
                "created_by_user": state.token_user_id,
                "system_domain_id": state.system_domain_id,
                "date_created": stamp,
                "date_modified": stamp,
            }
        return JSONResponse(members[user_id], status_code=201)

    async def get_member(request: Request) -> JSONResponse:
        return JSONResponse(find("Member", members_of(request), request.path_params["member_id"]))

    async def remove_member(request: Request) -> Response:
        members = members_of(request)
        find("Member", members, request.path_params["member_id"])
        del members[request.path_params["member_id"]]
        return Response(status_code=204)

    return [
        Route(f"{PREFIX}/collections/", list_collections, methods=["GET"]),
        Route(f"{PREFIX}/collections/", create_collection, methods=["POST"]),
        Route(f"{PREFIX}/collections/{{collection_id}}/", get_collection, methods=["GET"]),
        Route(f"{PREFIX}/collections/{{collection_id}}/", update_collection, methods=["PATCH", "PUT"]),
        Route(f"{PREFIX}/collections/{{collection_id}}/", delete_collection, methods=["DELETE"]),
        Route(f"{PREFIX}/projects/", list_projects, methods=["GET"]),
        Route(f"{PREFIX}/projects/", create_project, methods=["POST"]),
        Route(f"{PREFIX}/projects/{{project_id}}/", get_project, methods=["GET"]),
        Route(f"{PREFIX}/projects/{{project_id}}/", update_project, methods=["PATCH", "PUT"]),
        Route(f"{PREFIX}/projects/{{project_id}}/", delete_project, methods=["DELETE"]),
        Route(f"{PREFIX}/projects/{{project_id}}/members/", list_members, methods=["GET"]),
        Route(f"{PREFIX}/projects/{{project_id}}/members/", add_member, methods=["POST"]),
        Route(f"{PREFIX}/projects/{{project_id}}/members/{{member_id}}/", get_member, methods=["GET"]),
        Route(f"{PREFIX}/projects/{{project_id}}/members/{{member_id}}/", remove_member, methods=["DELETE"]),
    ]
