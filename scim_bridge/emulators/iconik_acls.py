"""iconik ACLs service (`/API/acls/v1/`): per-object permissions for users and groups.

From ../shared/specs/iconik/acls.json and research/iconik.md §4 and §9.8. One record per object
(`state.acls["<object_type>/<object_key>"]`) holds direct user and group entries and, when the
propagation switch is on, propagating ones. What a principal may do is the union of its own entries,
its groups' entries, entries inherited from ancestor collections; admins and an object's creator get
everything (research/iconik.md §4.3).

Not emulated: ACL templates, share ACLs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .iconik_common import PERMISSIONS, Refusal, ancestors, descendants, find, json_body, now

if TYPE_CHECKING:
    from .iconik import IconikState, IconikSwitches

PREFIX = "/API/acls/v1"
PROPAGATING_CAP = 1000  # "max 1,000 propagating ACLs per domain" (research/iconik.md §4.3)
Notify = Callable[[str, str, str, str, dict[str, Any]], None]


def record(state: IconikState, object_type: str, object_key: str) -> dict[str, Any]:
    key = f"{object_type}/{object_key}"
    if key not in state.acls:
        state.acls[key] = {
            "object_type": object_type,
            "object_key": object_key,
            "users": {},
            "groups": {},
            "propagating_users": {},
            "propagating_groups": {},
        }
    return state.acls[key]


def object_exists(state: IconikState, object_type: str, object_key: str) -> bool:
    # The emulator holds collections and assets. For any other object type (storages, saved_searches…)
    # every key is accepted — what iconik answers for an unknown key there is UNCONFIRMED.
    if object_type == "collections":
        return object_key in state.collections
    if object_type == "assets":
        return object_key in state.assets
    return True


def _inherited(state: IconikState, object_type: str, object_key: str, field: str) -> list[tuple[str, str, list[str]]]:
    """(source collection, principal id, permissions) received from ancestors' propagating entries."""
    if object_type != "collections":
        return []  # assets would inherit from the collections holding them; the emulator holds no assets
    found = []
    for source in ancestors(state, object_key):
        for principal, entry in state.acls.get(f"collections/{source}", {}).get(field, {}).items():
            found.append((source, principal, entry["permissions"]))
    return found


def effective(
    state: IconikState, switches: IconikSwitches, user_id: str, object_type: str, object_key: str
) -> list[str]:
    user = state.users.get(user_id)
    if user is None:
        return []
    if user.get("is_admin"):
        return list(PERMISSIONS)
    granted: set[str] = set()
    direct = state.acls.get(f"{object_type}/{object_key}", {})
    granted.update(direct.get("users", {}).get(user_id, {}).get("permissions", []))
    for group_id in user["groups"]:
        granted.update(direct.get("groups", {}).get(group_id, {}).get("permissions", []))
    for _, principal, permissions in _inherited(state, object_type, object_key, "propagating_users"):
        if principal == user_id:
            granted.update(permissions)
    for _, principal, permissions in _inherited(state, object_type, object_key, "propagating_groups"):
        if principal in user["groups"]:
            granted.update(permissions)
    if object_type == "collections":
        collection = state.collections.get(object_key, {})
        if collection.get("created_by_user") == user_id:
            granted.update(PERMISSIONS)
        # UNCONFIRMED (research/iconik.md §11 q8): whether project membership grants access to the
        # project collection (and what). Off by default; when on, members get read and write.
        if switches.project_members_get_collection_acl:
            for project in state.projects.values():
                members = state.project_members.get(project["id"], {})
                if project.get("collection_id") == object_key and user_id in members:
                    granted.update(("read", "write"))
    return [p for p in PERMISSIONS if p in granted]


def acl_view(state: IconikState, object_type: str, object_key: str) -> dict[str, Any]:
    """ACLSchema."""
    rec = state.acls.get(f"{object_type}/{object_key}", {})

    def direct(field: str, id_key: str) -> list[dict[str, Any]]:
        return [{id_key: pid, "permissions": e["permissions"]} for pid, e in rec.get(field, {}).items()]

    def propagating(field: str, id_key: str) -> list[dict[str, Any]]:
        return [
            {id_key: pid, "object_type": object_type, "object_key": object_key, "permissions": e["permissions"]}
            for pid, e in rec.get(field, {}).items()
        ]

    def inherited(field: str, id_key: str) -> list[dict[str, Any]]:
        # object_key names the collection the entry comes from — its meaning is UNCONFIRMED (§4.1).
        return [
            {id_key: pid, "object_type": "collections", "object_key": source, "permissions": perms}
            for source, pid, perms in _inherited(state, object_type, object_key, field)
        ]

    return {
        "users_acl": direct("users", "user_id"),
        "groups_acl": direct("groups", "group_id"),
        "propagating_users_acl": propagating("propagating_users", "user_id"),
        "propagating_groups_acl": propagating("propagating_groups", "group_id"),
        "inherited_users_acl": inherited("propagating_users", "user_id"),
        "inherited_groups_acl": inherited("propagating_groups", "group_id"),
    }


def _permissions(body: dict[str, Any], required: bool = True) -> list[str]:
    permissions = body.get("permissions")
    if permissions is None and not required:
        return []
    if not isinstance(permissions, list):
        raise Refusal({"permissions": ["Missing data for required field."]}, 400)
    if any(p not in PERMISSIONS for p in permissions):
        raise Refusal({"permissions": [f"Must be one of: {', '.join(PERMISSIONS)}."]}, 400)
    return [p for p in PERMISSIONS if p in permissions]


def _id_list(body: dict[str, Any], name: str, table: dict[str, Any], limit: int = 500) -> list[str]:
    ids = body.get(name) or []
    if not isinstance(ids, list) or len(ids) > limit:
        raise Refusal({name: [f"Must be a list of at most {limit} ids."]}, 400)
    unknown = [i for i in ids if i not in table]
    if unknown:  # UNCONFIRMED whether iconik checks principals here; an unknown one is surely a bug upstream
        raise Refusal({name: [f"{i} does not exist" for i in unknown]}, 400)
    return list(ids)


def apply(entries: dict[str, Any], principal_ids: list[str], permissions: list[str], mode: str) -> None:
    """APPEND merges into what a principal has; OVERWRITE replaces it (scope: see apply_bulk)."""
    stamp = now()
    for pid in principal_ids:
        current = entries.get(pid)
        merged = set(permissions) | (set(current["permissions"]) if current and mode == "APPEND" else set())
        entries[pid] = {
            "permissions": [p for p in PERMISSIONS if p in merged],
            "date_created": current["date_created"] if current else stamp,
            "date_modified": stamp,
        }


def routes(state: IconikState, switches: IconikSwitches, notify: Notify) -> list[Route]:
    def existing(object_type: str, object_key: str) -> None:
        if not object_exists(state, object_type, object_key):
            raise Refusal(["Object does not exist"], 404)

    def changed(object_type: str, object_key: str, operation: str, detail: dict[str, Any]) -> None:
        notify(
            object_type, "acls", operation, object_key, {"object_type": object_type, "object_key": object_key, **detail}
        )

    def apply_bulk(
        rec: dict[str, Any], prefix: str, user_ids: list[str], group_ids: list[str], permissions: list[str], mode: str
    ) -> None:
        if mode == "OVERWRITE" and switches.acl_overwrite_scope == "object":
            # UNCONFIRMED: OVERWRITE is read as "these principals become the object's whole ACL" (why the
            # research warns that parallel OVERWRITE writers wipe each other); "principal" only replaces
            # the listed principals' permissions.
            rec[f"{prefix}users"], rec[f"{prefix}groups"] = {}, {}
        apply(rec[f"{prefix}users"], user_ids, permissions, mode)
        apply(rec[f"{prefix}groups"], group_ids, permissions, mode)

    def bulk_mode(body: dict[str, Any]) -> str:
        mode = body.get("mode", "OVERWRITE")  # the default is OVERWRITE (CreateACLsSchema)
        if mode not in ("APPEND", "OVERWRITE"):
            raise Refusal({"mode": ["Must be one of: APPEND, OVERWRITE."]}, 400)
        return str(mode)

    # reads for the calling user --------------------------------------------------------------
    async def read_acl(request: Request) -> JSONResponse:
        p = request.path_params
        existing(p["object_type"], p["object_key"])
        return JSONResponse(acl_view(state, p["object_type"], p["object_key"]))

    async def my_permissions(request: Request) -> JSONResponse:
        p = request.path_params
        existing(p["object_type"], p["object_key"])
        return JSONResponse(
            {"permissions": effective(state, switches, state.token_user_id, p["object_type"], p["object_key"])}
        )

    async def i_have(request: Request) -> JSONResponse:
        p = request.path_params
        _permissions({"permissions": [p["permission"]]})
        existing(p["object_type"], p["object_key"])
        held = p["permission"] in effective(state, switches, state.token_user_id, p["object_type"], p["object_key"])
        return JSONResponse({}, status_code=200 if held else 403)

    def check(object_type: str, keys: list[str], permissions: list[str], into: dict[str, list[str]]) -> None:
        for key in keys:
            held = set(effective(state, switches, state.token_user_id, object_type, key))
            ok = object_exists(state, object_type, key) and set(permissions) <= held
            into["access_granted" if ok else "access_denied"].append(key)

    async def check_keys(request: Request) -> JSONResponse:
        p = request.path_params
        permission = _permissions({"permissions": [p["permission"]]})
        keys = (await json_body(request)).get("object_keys") or []
        if len(keys) > 500:
            raise Refusal({"object_keys": ["Must be at most 500 keys."]}, 400)
        answer: dict[str, list[str]] = {"access_granted": [], "access_denied": []}
        check(p["object_type"], keys, permission, answer)
        return JSONResponse(answer)

    async def check_objects(request: Request) -> JSONResponse:
        objects = (await json_body(request)).get("objects")
        if not isinstance(objects, list) or len(objects) > 500:
            raise Refusal({"objects": ["Must be a list of at most 500 objects."]}, 400)
        answer: dict[str, list[str]] = {"access_granted": [], "access_denied": []}
        for item in objects:
            check(item.get("object_type", ""), item.get("object_keys") or [], _permissions(item), answer)
        return JSONResponse(answer)

    # one principal ----------------------------------------------------------------------------
    def principal_routes(kind: str) -> list[Route]:
        table = state.users if kind == "users" else state.groups
        id_key, noun = ("user_id", "User") if kind == "users" else ("group_id", "Group")
        path = f"{PREFIX}/{kind}/{{principal}}/acl/{{object_type}}/{{object_key}}/"

        def entry_view(pid: str, object_type: str, object_key: str, entry: dict[str, Any]) -> dict[str, Any]:
            return {id_key: pid, "object_type": object_type, "object_key": object_key, **entry}

        def located(request: Request) -> tuple[str, str, str]:
            p = request.path_params
            find(noun, table, p["principal"])  # UNCONFIRMED: the 404 text for an unknown principal
            existing(p["object_type"], p["object_key"])
            return p["principal"], p["object_type"], p["object_key"]

        async def read(request: Request) -> JSONResponse:
            pid, object_type, object_key = located(request)
            entry = state.acls.get(f"{object_type}/{object_key}", {}).get(kind, {}).get(pid)
            if entry is None:
                # The spec documents this 404 for groups ("Group doesn't have permissions"); for users
                # it documents none, and the same answer is assumed (UNCONFIRMED).
                raise Refusal([f"{noun} doesn't have permissions"], 404)
            return JSONResponse(entry_view(pid, object_type, object_key, entry))

        async def write(request: Request) -> JSONResponse:
            pid, object_type, object_key = located(request)
            permissions = _permissions(await json_body(request))
            entries = record(state, object_type, object_key)[kind]
            created = pid not in entries
            # PUT replaces this principal's permission list ("Update or create"); replace rather than
            # merge is inferred, UNCONFIRMED.
            apply(entries, [pid], permissions, "OVERWRITE")
            changed(object_type, object_key, "update", {id_key: pid, "permissions": permissions})
            return JSONResponse(
                entry_view(pid, object_type, object_key, entries[pid]), status_code=201 if created else 200
            )

        async def remove(request: Request) -> Response:
            pid, object_type, object_key = located(request)
            entries = state.acls.get(f"{object_type}/{object_key}", {}).get(kind, {})
            if pid not in entries:
                raise Refusal(["ACL does not exist"], 404)
            del entries[pid]
            changed(object_type, object_key, "delete", {id_key: pid, "permissions": []})
            return Response(status_code=204)

        async def has(request: Request) -> JSONResponse:
            pid, object_type, object_key = (
                request.path_params["principal"],
                request.path_params["object_type"],
                request.path_params["object_key"],
            )
            _permissions({"permissions": [request.path_params["permission"]]})
            find(noun, table, pid)
            if kind == "users":
                held = effective(state, switches, pid, object_type, object_key)
            else:
                own = state.acls.get(f"{object_type}/{object_key}", {}).get("groups", {}).get(pid, {})
                held = list(own.get("permissions", []))
                held += [
                    p
                    for _, g, perms in _inherited(state, object_type, object_key, "propagating_groups")
                    if g == pid
                    for p in perms
                ]
            if request.path_params["permission"] not in held:
                return JSONResponse({}, status_code=403)
            if kind == "groups":
                return JSONResponse({})  # "Returns an empty body"
            return JSONResponse(
                {id_key: pid, "object_type": object_type, "object_key": object_key, "permissions": held}
            )  # UserACLSchema

        return [
            Route(path, read, methods=["GET"]),
            Route(path, write, methods=["PUT"]),
            Route(path, remove, methods=["DELETE"]),
            Route(path + "{permission}/", has, methods=["GET"]),
        ]

    # bulk ---------------------------------------------------------------------------------------
    def bulk_write(object_type: str, body: dict[str, Any], limit: int) -> dict[str, list[str]]:
        keys = body.get("object_keys")
        if not isinstance(keys, list) or len(keys) > limit:
            raise Refusal({"object_keys": [f"Must be a list of at most {limit} keys."]}, 400)
        permissions, mode = _permissions(body), bulk_mode(body)
        user_ids = _id_list(body, "user_ids", state.users)
        group_ids = _id_list(body, "group_ids", state.groups)
        updated = [k for k in keys if object_exists(state, object_type, k)]  # unknown keys skipped: UNCONFIRMED
        for key in updated:
            apply_bulk(record(state, object_type, key), "", user_ids, group_ids, permissions, mode)
            changed(
                object_type,
                key,
                "update",
                {"user_ids": user_ids, "group_ids": group_ids, "permissions": permissions, "mode": mode},
            )
        return {"updated_object_keys": updated}

    async def put_many(request: Request) -> JSONResponse:
        return JSONResponse(bulk_write(request.path_params["object_type"], await json_body(request), 500))

    async def put_bulk(request: Request) -> JSONResponse:
        objects = (await json_body(request)).get("objects")
        if not isinstance(objects, list) or not 1 <= len(objects) <= 100:
            raise Refusal({"objects": ["Length must be between 1 and 100."]}, 400)
        if any(not isinstance(o, dict) or len(o.get("object_keys") or []) != 1 for o in objects):
            raise Refusal({"objects": ["Each object takes exactly one object_key."]}, 400)
        return JSONResponse([bulk_write(request.path_params["object_type"], o, 1) for o in objects])

    async def delete_many(request: Request) -> JSONResponse:
        object_type, body = request.path_params["object_type"], await json_body(request)
        keys = body.get("object_keys") or []
        user_ids, group_ids = body.get("user_ids") or [], body.get("group_ids") or []
        removed = []
        for key in keys:
            rec = state.acls.get(f"{object_type}/{key}")
            if rec is None:
                continue
            for pid in user_ids:
                rec["users"].pop(pid, None)
            for pid in group_ids:
                rec["groups"].pop(pid, None)
            removed.append(key)
            changed(object_type, key, "delete", {"user_ids": user_ids, "group_ids": group_ids})
        # 200 "Returns the deleted objects", shape undocumented: the key list is UNCONFIRMED.
        return JSONResponse({"updated_object_keys": removed})

    # content of collections ---------------------------------------------------------------------
    def content_targets(body: dict[str, Any]) -> tuple[list[str], list[str]]:
        for name in ("include_assets", "include_collections"):
            if not isinstance(body.get(name), bool):
                raise Refusal({name: ["Missing data for required field."]}, 400)
        roots = body.get("object_ids") or []
        if len(roots) > 500:
            raise Refusal({"object_ids": ["Must be at most 500 ids."]}, 400)
        for root in roots:
            existing("collections", root)
        # Assets would be covered by include_assets; the emulator holds none.
        inside = [c for root in roots for c in descendants(state, root)] if body["include_collections"] else []
        return roots, inside

    async def put_content(request: Request) -> Response:
        if request.path_params["object_type"] != "collections":
            raise Refusal(["Invalid object type"], 501)
        body = await json_body(request)
        roots, inside = content_targets(body)
        permissions, mode = _permissions(body), bulk_mode(body)
        user_ids = _id_list(body, "user_ids", state.users)
        group_ids = _id_list(body, "group_ids", state.groups)
        if switches.acl_content_propagates:
            # UNCONFIRMED (research/iconik.md §4.3): the public spec documents no way to create a
            # propagating ACL; with this switch the content endpoint is read as one, applying to the
            # current and future content of each collection (shown as propagating_* on the collection
            # and inherited_* below it).
            held = sum(len(r["propagating_users"]) + len(r["propagating_groups"]) for r in state.acls.values())
            if held + len(roots) * (len(user_ids) + len(group_ids)) > PROPAGATING_CAP:
                raise Refusal([f"No more than {PROPAGATING_CAP} propagating ACLs are allowed"], 400)
            for root in roots:
                apply_bulk(record(state, "collections", root), "propagating_", user_ids, group_ids, permissions, mode)
        else:
            # Default: a one-shot copy onto the content that exists now (the research's reading of the spec).
            for key in inside:
                apply_bulk(record(state, "collections", key), "", user_ids, group_ids, permissions, mode)
        for key in roots + inside:
            changed(
                "collections",
                key,
                "update",
                {
                    "user_ids": user_ids,
                    "group_ids": group_ids,
                    "permissions": permissions,
                    "mode": mode,
                    "content": True,
                },
            )
        # 202: iconik applies this in the background; the emulator has finished by the time it answers.
        return Response(status_code=202)

    async def delete_content(request: Request) -> JSONResponse:
        if request.path_params["object_type"] != "collections":
            raise Refusal(["Invalid object type"], 501)
        body = await json_body(request)
        roots, inside = content_targets(body)
        user_ids, group_ids = body.get("user_ids") or [], body.get("group_ids") or []
        for key in roots + inside:
            rec = record(state, "collections", key)
            fields = ("propagating_users", "propagating_groups") if key in roots else ("users", "groups")
            for pid in user_ids:
                rec[fields[0]].pop(pid, None)
            for pid in group_ids:
                rec[fields[1]].pop(pid, None)
            changed("collections", key, "delete", {"user_ids": user_ids, "group_ids": group_ids, "content": True})
        return JSONResponse({"updated_object_keys": roots + inside})  # shape undocumented: UNCONFIRMED

    return [
        Route(f"{PREFIX}/acl/", check_objects, methods=["POST"]),
        Route(f"{PREFIX}/acl/{{object_type}}/", put_many, methods=["PUT"]),
        Route(f"{PREFIX}/acl/{{object_type}}/", delete_many, methods=["DELETE"]),
        Route(f"{PREFIX}/acl/{{object_type}}/bulk/", put_bulk, methods=["PUT"]),
        Route(f"{PREFIX}/acl/{{object_type}}/content/", put_content, methods=["PUT"]),
        Route(f"{PREFIX}/acl/{{object_type}}/content/", delete_content, methods=["DELETE"]),
        Route(f"{PREFIX}/acl/{{object_type}}/{{permission}}/", check_keys, methods=["POST"]),
        Route(f"{PREFIX}/acl/{{object_type}}/{{object_key}}/", read_acl, methods=["GET"]),
        Route(f"{PREFIX}/acl/{{object_type}}/{{object_key}}/permissions/", my_permissions, methods=["GET"]),
        Route(f"{PREFIX}/acl/{{object_type}}/{{object_key}}/{{permission}}/", i_have, methods=["GET"]),
        *principal_routes("groups"),
        *principal_routes("users"),
    ]
