"""OpenAPI v3 documents, just enough for kubectl.

kubectl fetches `/openapi/v3` before `apply` to learn whether the server validates fields itself (the
`fieldValidation` query parameter on each kind's PATCH operation). Declaring it lets kubectl skip client-side schema
validation, which would otherwise need the full Kubernetes schemas. Component schemas are deliberately left out, so
kubectl computes strategic merge patches from its compiled-in types, as it does for any server without schemas.
`/openapi/v2` answers 404 (kubectl then uses v3 only). Pure document building, no state.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from aiohttp import web

from aihpa.sim.errors import ApiError
from aihpa.sim.resources import Registry, ResourceType

__all__ = ["OpenApi"]


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


class OpenApi:
    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def _group_versions(self) -> list[tuple[str, str]]:
        out = [("", "v1")]
        for doc in self.registry.group_list()["groups"]:
            for v in doc["versions"]:
                out.append((doc["name"], v["version"]))
        return out

    def _document(self, group: str, version: str) -> dict[str, Any]:
        paths: dict[str, Any] = {}
        for rt in self.registry.types_in(group, version):
            if rt.virtual or "patch" not in rt.verbs:
                continue
            paths[self._item_path(rt)] = {"patch": self._patch_op(rt)}
        return {
            "openapi": "3.0.0",
            "info": {"title": "Kubernetes", "version": "v1.36.0"},
            "paths": paths,
            "components": {"schemas": {}},
        }

    @staticmethod
    def _item_path(rt: ResourceType) -> str:
        root = "/" + _gv_path(rt.group, rt.version)
        if rt.namespaced:
            return f"{root}/namespaces/{{namespace}}/{rt.plural}/{{name}}"
        return f"{root}/{rt.plural}/{{name}}"

    @staticmethod
    def _patch_op(rt: ResourceType) -> dict[str, Any]:
        return {
            "operationId": f"patch{rt.kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
            "parameters": [
                {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                for name in ("dryRun", "fieldManager", "fieldValidation", "force")
            ],
            "responses": {"200": {"description": "OK"}},
        }

    def handle(self, segs: list[str], request: web.Request) -> web.StreamResponse:
        if segs[:1] != ["v3"]:
            raise ApiError(404, "the server could not find the requested resource")
        rest = segs[1:]
        if not rest:
            listing = {}
            for group, version in self._group_versions():
                body = json.dumps(self._document(group, version), sort_keys=True).encode()
                digest = hashlib.sha512(body).hexdigest()[:64].upper()
                path = _gv_path(group, version)
                listing[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
            return web.json_response({"paths": listing})
        if rest[0] == "api" and len(rest) == 2:
            group, version = "", rest[1]
        elif rest[0] == "apis" and len(rest) == 3:
            group, version = rest[1], rest[2]
        else:
            raise ApiError(404, "the server could not find the requested resource")
        if not self.registry.has_group_version(group, version):
            raise ApiError(404, "the server could not find the requested resource")
        return web.json_response(self._document(group, version))
