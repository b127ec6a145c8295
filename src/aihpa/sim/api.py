"""The REST semantics of the simulated API server, without HTTP: create, get, list, update, patch and delete with
defaulting, validation, optimistic concurrency, subresources (scale, status), admission and dry runs.

Transport concerns (paths, content negotiation, watch streams, faults) live in `aihpa.sim.server`; this module must
stay callable in-process so tests and the demo can seed objects without a client. Every refusal is an `ApiError`.
"""

from __future__ import annotations

import base64
import contextlib
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

from aihpa.labels import OPERATORS, selector_matches
from aihpa.sim.admission import Admission
from aihpa.sim.conversions import core_event_to_events_v1, events_v1_to_core_event
from aihpa.sim.errors import ApiError
from aihpa.sim.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from aihpa.sim.resources import Registry, ResourceType
from aihpa.sim.selectors import field_labels, field_selector, label_selector
from aihpa.sim.store import Store, View
from aihpa.sim.types import Obj, Status

__all__ = ["PATCH_TYPES", "Api", "WriteResult"]

PATCH_TYPES = frozenset({
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+json",
})

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
#: spec.replicas is an int32 in every workload API.
INT32_MAX = 2**31 - 1
#: Kinds whose spec.replicas the API server bounds (the apps kinds with a scale subresource).
_REPLICATED_KINDS = frozenset({("apps", "Deployment"), ("apps", "ReplicaSet"), ("apps", "StatefulSet")})


@dataclass
class WriteResult:
    """What a write returns to the client: the object, its HTTP code, and admission warnings."""

    obj: Obj
    code: int = 200
    warnings: list[str] = field(default_factory=list)


def _selector_string(selector: Obj | None) -> str:
    """A LabelSelector object as the string form that Scale.status.selector carries."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for e in selector.get("matchExpressions") or []:
        op, key, values = e.get("operator"), e.get("key"), ",".join(sorted(e.get("values") or []))
        parts.append({"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": f"{key}",
                      "DoesNotExist": f"!{key}"}.get(str(op), ""))
    return ",".join(p for p in parts if p)


class Api:
    """Kubernetes API semantics over a `Store`."""

    def __init__(self, *, store: Store, registry: Registry, admission: Admission) -> None:
        self.store = store
        self.registry = registry
        self.admission = admission
        ns_type = registry.by_kind("v1", "Namespace")
        assert ns_type is not None
        self.namespaces = ns_type
        self._rng = random.Random(7)
        core_events, events_v1 = registry.by_kind("v1", "Event"), registry.by_kind("events.k8s.io/v1", "Event")
        if core_events is not None and events_v1 is not None:
            store.add_view(events_v1, View(storage=core_events, to_storage=events_v1_to_core_event,
                                           from_storage=core_event_to_events_v1))
        for ns in _SYSTEM_NAMESPACES:
            self.store.create(self.namespaces, self._default_namespace({"metadata": {"name": ns}}))

    # ---- helpers ----------------------------------------------------------------------------------------------

    def resolve(self, api_version: str, kind: str) -> ResourceType:
        rt = self.registry.by_kind(api_version, kind)
        if rt is None:
            raise ApiError(404, f'no matches for kind "{kind}" in version "{api_version}"')
        return rt

    def _check_namespace(self, rt: ResourceType, namespace: str | None) -> None:
        if rt.namespaced and namespace and self.store.get(self.namespaces, "", namespace) is None:
            raise ApiError.not_found("namespaces", namespace, kind="namespaces")

    def _check_identity(self, rt: ResourceType, body: Any, *, namespace: str | None, name: str | None) -> Obj:
        if not isinstance(body, dict):
            raise ApiError.bad_request(f"the body of the request is not a {rt.kind} object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version is not None and api_version != rt.api_version:
            raise ApiError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})")
        if kind is not None and kind != rt.kind:
            raise ApiError.bad_request(f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})")
        meta = body.get("metadata")
        if meta is None:
            meta = {}
        if not isinstance(meta, dict):
            raise ApiError.bad_request("metadata must be an object")
        causes = _metadata_shape(meta)
        if causes:
            raise ApiError.invalid(rt.kind, str(meta.get("name", "")) if isinstance(meta.get("name"), str) else "",
                                   causes, group=rt.group, kind=rt.kind)
        meta = dict(meta)
        if rt.namespaced and namespace:
            body_ns = meta.get("namespace")
            if body_ns and body_ns != namespace:
                raise ApiError.bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request")
            meta["namespace"] = namespace
        if name is not None:
            if meta.get("name") and meta["name"] != name:
                raise ApiError.bad_request("the name of the object does not match the name on the URL")
            meta["name"] = name
        return {**body, "apiVersion": rt.api_version, "kind": rt.kind, "metadata": meta}

    def _check_shape(self, rt: ResourceType, obj: Obj) -> Obj:
        """Reject wrongly typed fields (422) before defaulting and the workload model read them."""
        causes = _metadata_shape(obj.get("metadata"))
        if not causes and rt.kind == "Deployment" and rt.group == "apps":
            causes = _deployment_shape(obj)
        if not causes and (rt.group, rt.kind) in _REPLICATED_KINDS:
            # checked before admission: a webhook never sees a count the API server could not have decoded
            spec = obj.get("spec")
            if isinstance(spec, dict) and spec.get("replicas") is not None:
                causes = _replicas_causes(spec["replicas"])
        if causes:
            meta = obj.get("metadata")
            name = str(meta.get("name", "")) if isinstance(meta, dict) else ""
            raise ApiError.invalid(f"{rt.kind}.{rt.group}" if rt.group else rt.kind, name, causes, group=rt.group,
                                   kind=rt.kind)
        return obj

    def _validate(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        meta = obj["metadata"]
        name = meta.get("name") or ""
        causes: list[tuple[str, str]] = []
        pattern = _DNS_LABEL if rt.kind in ("Namespace", "Service") else _DNS_SUBDOMAIN
        if not name:
            causes.append(("metadata.name", "Required value: name or generateName is required"))
        elif len(name) > 253 or not pattern.match(name):
            causes.append(("metadata.name", f'Invalid value: "{name}": must be a lowercase RFC 1123 name'))
        for fld in ("labels", "annotations"):
            value = meta.get(fld)
            if value is not None and (not isinstance(value, dict)
                                      or not all(isinstance(v, str) for v in value.values())):
                causes.append((f"metadata.{fld}", "Invalid value: must be a map of strings"))
        if rt.kind == "Deployment" and rt.group == "apps":
            causes.extend(_deployment_causes(obj, old))
        if causes:
            raise ApiError.invalid(f"{rt.kind}.{rt.group}" if rt.group else rt.kind, name, causes,
                                   group=rt.group, kind=rt.kind)

    def _defaults(self, rt: ResourceType, obj: Obj) -> Obj:
        if rt.kind == "Deployment" and rt.group == "apps":
            return _default_deployment(obj)
        if rt.kind == "Namespace" and not rt.group:
            return self._default_namespace(obj)
        return obj

    @staticmethod
    def _default_namespace(obj: Obj) -> Obj:
        meta = dict(obj.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), "kubernetes.io/metadata.name": meta.get("name", "")}
        return {**obj, "metadata": meta, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def _generate_name(self, rt: ResourceType, obj: Obj, namespace: str | None) -> Obj:
        meta = obj["metadata"]
        if meta.get("name") or not meta.get("generateName"):
            return obj
        for _ in range(20):
            name = str(meta["generateName"]) + "".join(self._rng.choice("bcdfghjklmnpqrstvwxz2456789")
                                                       for _ in range(5))
            if self.store.get(rt, namespace or "", name) is None:
                return {**obj, "metadata": {**meta, "name": name}}
        raise ApiError(500, "could not generate a unique name")

    # ---- reads ------------------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, *, namespace: str | None, name: str, subresource: str | None = None) -> Obj:
        obj = self.store.require(rt, namespace or "", name)
        if subresource == "scale":
            return self._scale_of(rt, obj)
        return obj

    def list(
        self,
        rt: ResourceType,
        *,
        namespace: str | None,
        label: str | None = None,
        fields: str | None = None,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> Obj:
        items, rv = self.store.list(rt, namespace=namespace, labels=label_selector(label),
                                    fields=field_selector(fields, field_labels(rt.group, rt.kind)))
        meta: Obj = {"resourceVersion": str(rv)}
        if continue_token:
            try:
                start = json.loads(base64.urlsafe_b64decode(continue_token.encode()))
                after = (str(start["ns"]), str(start["name"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise ApiError.bad_request(f"continue key is not valid: {exc}") from exc
            items = [o for o in items if (o["metadata"].get("namespace", ""), o["metadata"]["name"]) > after]
        if limit and limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            token = json.dumps({"ns": last.get("namespace", ""), "name": last["name"]})
            meta["continue"] = base64.urlsafe_b64encode(token.encode()).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        return {"kind": f"{rt.kind}List", "apiVersion": rt.api_version, "metadata": meta, "items": items}

    def _scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        status = obj.get("status") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                         if k in meta},
            "spec": {"replicas": int(spec.get("replicas", 1) or 0)},
            "status": {"replicas": int(status.get("replicas", 0) or 0),
                       "selector": _selector_string(spec.get("selector"))},
        }

    # ---- writes -----------------------------------------------------------------------------------------------

    async def create(
        self, rt: ResourceType, body: Any, *, namespace: str | None, dry_run: bool = False
    ) -> WriteResult:
        if rt.virtual:
            raise ApiError(405, f'the server does not allow this method on the requested resource ({rt.plural})',
                           reason="MethodNotAllowed")
        obj = self._check_identity(rt, body, namespace=namespace, name=None)
        if rt.namespaced and not obj["metadata"].get("namespace"):
            obj["metadata"]["namespace"] = "default"
        ns = obj["metadata"].get("namespace") if rt.namespaced else None
        self._check_namespace(rt, ns)
        obj = self._generate_name(rt, obj, ns)
        for k in ("uid", "resourceVersion", "creationTimestamp", "generation", "deletionTimestamp"):
            obj["metadata"].pop(k, None)
        obj = self._defaults(rt, self._check_shape(rt, obj))
        obj, warnings = await self.admission.mutate(rt=rt, operation="CREATE", obj=obj, old=None, namespace=ns,
                                                    dry_run=dry_run)
        obj = self._defaults(rt, self._check_shape(rt, obj))
        self._validate(rt, obj, None)
        if rt.kind == "CustomResourceDefinition":
            self._register_crd(obj)
        if dry_run:
            if self.store.get(rt, ns or "", obj["metadata"]["name"]) is not None:
                raise ApiError.already_exists(rt.qualified, obj["metadata"]["name"], group=rt.group, kind=rt.plural)
            return WriteResult(obj, 201, warnings)
        return WriteResult(self.store.create(rt, obj), 201, warnings)

    def _register_crd(self, crd: Obj) -> None:
        for t in self.registry.crd_types(crd):
            self.registry.add(t)

    async def update(
        self,
        rt: ResourceType,
        body: Any,
        *,
        namespace: str | None,
        name: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        old = self.store.require(rt, namespace or "", name)
        if subresource == "scale":
            return await self._write_scale(rt, old, body, dry_run=dry_run)
        obj = self._check_identity(rt, body, namespace=namespace, name=name)
        return await self._write(rt, old, obj, subresource=subresource, dry_run=dry_run,
                                 expect_rv=obj["metadata"].get("resourceVersion"))

    async def patch(
        self,
        rt: ResourceType,
        patch: Any,
        *,
        patch_type: str,
        namespace: str | None,
        name: str,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> WriteResult:
        current = self.store.get(rt, namespace or "", name)
        if current is None:
            if patch_type.startswith("application/apply-patch"):
                # server-side apply creates what does not exist yet
                return await self.create(rt, {**patch, "metadata": {**(patch.get("metadata") or {}), "name": name}},
                                         namespace=namespace, dry_run=dry_run)
            raise ApiError.not_found(rt.qualified, name, group=rt.group, kind=rt.plural)
        base = self._scale_of(rt, current) if subresource == "scale" else current
        try:
            if patch_type == "application/json-patch+json":
                patched = json_patch(base, patch)
            elif patch_type == "application/merge-patch+json":
                patched = merge_patch(base, patch)
            elif patch_type == "application/strategic-merge-patch+json":
                if rt.group not in _BUILTIN_GROUPS:
                    raise ApiError(415, "strategic merge patch is not supported for custom resources",
                                   reason="UnsupportedMediaType")
                patched = strategic_merge_patch(base, patch)
            elif patch_type.startswith("application/apply-patch"):
                patched = merge_patch(base, patch)
            else:
                raise ApiError(415, f"the media type {patch_type!r} is not a supported patch type",
                               reason="UnsupportedMediaType")
        except PatchError as exc:
            raise ApiError(exc.code, str(exc)) from exc
        if not isinstance(patched, dict):
            raise ApiError(422, "the patch does not result in an object")
        if isinstance(patch, dict) and not (patch.get("metadata") or {}).get("resourceVersion"):
            # a patch without a resourceVersion applies to whatever is current: no precondition
            patched = {**patched, "metadata": {**(patched.get("metadata") or {}),
                                               "resourceVersion": base["metadata"].get("resourceVersion")}}
        if subresource == "scale":
            return await self._write_scale(rt, current, patched, dry_run=dry_run)
        obj = self._check_identity(rt, patched, namespace=namespace, name=name)
        return await self._write(rt, current, obj, subresource=subresource, dry_run=dry_run,
                                 expect_rv=obj["metadata"].get("resourceVersion"))

    async def _write_scale(self, rt: ResourceType, current: Obj, body: Any, *, dry_run: bool) -> WriteResult:
        if "scale" not in rt.subresources:
            raise ApiError.not_found(f"{rt.qualified}/scale", current["metadata"]["name"])
        if not isinstance(body, dict) or body.get("kind", "Scale") != "Scale":
            raise ApiError.bad_request("the body of the request is not a Scale object")
        if body.get("apiVersion", "autoscaling/v1") != "autoscaling/v1":
            raise ApiError.bad_request(
                f"the API version in the data ({body.get('apiVersion')}) does not match the expected API version "
                "(autoscaling/v1)")
        meta = body.get("metadata") or {}
        name = current["metadata"]["name"]
        if meta.get("name") and meta["name"] != name:
            raise ApiError.bad_request("the name of the object does not match the name on the URL")
        spec = body.get("spec")
        replicas = spec.get("replicas", 0) if isinstance(spec, dict) else 0
        causes = _replicas_causes(replicas)
        if causes:
            raise ApiError.invalid("Scale.autoscaling", name, causes, group="autoscaling", kind="Scale")
        expect = meta.get("resourceVersion")
        if expect and expect != current["metadata"]["resourceVersion"]:
            raise ApiError.conflict(rt.qualified, name, group=rt.group, kind=rt.plural)
        scale = {**self._scale_of(rt, current), "spec": {"replicas": replicas}}
        scale, warnings = await self.admission.mutate(rt=rt, operation="UPDATE", obj=scale,
                                                      old=self._scale_of(rt, current),
                                                      namespace=current["metadata"].get("namespace"),
                                                      subresource="scale", dry_run=dry_run)
        replicas = (scale.get("spec") or {}).get("replicas", replicas)
        causes = _replicas_causes(replicas)
        if causes:  # a mutating webhook's patch is held to the same rule
            raise ApiError.invalid("Scale.autoscaling", name, causes, group="autoscaling", kind="Scale")
        new = {**current, "spec": {**(current.get("spec") or {}), "replicas": replicas}}
        if dry_run:
            return WriteResult(self._scale_of(rt, new), 200, warnings)
        stored = self.store.update(rt, new, expect_rv=current["metadata"]["resourceVersion"])
        return WriteResult(self._scale_of(rt, stored), 200, warnings)

    async def _write(
        self, rt: ResourceType, old: Obj, obj: Obj, *, subresource: str | None, dry_run: bool, expect_rv: str | None
    ) -> WriteResult:
        if rt.virtual:
            raise ApiError(405, f"the server does not allow this method on the requested resource ({rt.plural})",
                           reason="MethodNotAllowed")
        if expect_rv and expect_rv != old["metadata"]["resourceVersion"]:
            raise ApiError.conflict(rt.qualified, old["metadata"]["name"], group=rt.group, kind=rt.plural)
        if subresource == "status":
            obj = {**old, "status": obj.get("status")} if obj.get("status") is not None else {
                k: v for k, v in old.items() if k != "status"}
        elif subresource is not None:
            raise ApiError.not_found(f"{rt.qualified}/{subresource}", old["metadata"]["name"])
        elif "status" in rt.subresources:
            # the main resource ignores status changes when a status subresource exists
            obj = {k: v for k, v in obj.items() if k != "status"}
            if "status" in old:
                obj["status"] = old["status"]
        obj = self._defaults(rt, self._check_shape(rt, obj))
        if subresource is None:
            obj, warnings = await self.admission.mutate(
                rt=rt, operation="UPDATE", obj=obj, old=old, namespace=old["metadata"].get("namespace"),
                dry_run=dry_run)
            obj = self._defaults(rt, self._check_shape(rt, obj))
        else:
            warnings = []
        self._validate(rt, obj, old)
        if dry_run:
            return WriteResult(obj, 200, warnings)
        stored = self.store.update(rt, obj, expect_rv=old["metadata"]["resourceVersion"])
        if rt.kind == "CustomResourceDefinition":
            self._register_crd(stored)
        return WriteResult(stored, 200, warnings)

    def delete(
        self, rt: ResourceType, *, namespace: str | None, name: str, options: Obj | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj | Status, int]:
        if rt.virtual:
            raise ApiError(405, f"the server does not allow this method on the requested resource ({rt.plural})",
                           reason="MethodNotAllowed")
        current = self.store.require(rt, namespace or "", name)
        pre = (options or {}).get("preconditions") or {}
        if (pre.get("uid") and pre["uid"] != current["metadata"]["uid"]) or (
            pre.get("resourceVersion") and pre["resourceVersion"] != current["metadata"]["resourceVersion"]
        ):
            raise ApiError.conflict(rt.qualified, name, group=rt.group, kind=rt.plural)
        if dry_run:
            return current, 200
        if rt.kind == "Namespace" and not rt.group:
            if name in _SYSTEM_NAMESPACES:
                raise ApiError(403, f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                               reason="Forbidden")
            self.store.delete_namespace_contents(name)
        if rt.kind == "CustomResourceDefinition":
            for t in self.registry.crd_types(current):
                self.registry.remove_group_resource(t.group, t.plural)
        gone = self.store.delete(rt, namespace or "", name)
        if rt.kind == "Pod" and not rt.group:
            return gone, 200
        status: Status = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": current["metadata"]["uid"]},
        }
        return status, 200

    def delete_collection(
        self, rt: ResourceType, *, namespace: str | None, label: str | None, fields: str | None
    ) -> Obj:
        listed = self.list(rt, namespace=namespace, label=label, fields=fields)
        for o in listed["items"]:
            with contextlib.suppress(ApiError):  # removed meanwhile by garbage collection
                self.delete(rt, namespace=o["metadata"].get("namespace"), name=o["metadata"]["name"])
        return listed


_BUILTIN_GROUPS = frozenset({
    "", "apps", "autoscaling", "batch", "policy", "rbac.authorization.k8s.io", "networking.k8s.io",
    "coordination.k8s.io", "events.k8s.io", "admissionregistration.k8s.io", "apiextensions.k8s.io",
    "scheduling.k8s.io",
})


def _is_str_map(value: Any) -> bool:
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _metadata_shape(meta: Any) -> list[tuple[str, str]]:
    if not isinstance(meta, dict):
        return [("metadata", "Invalid value: must be an object")]
    causes = []
    for key in ("name", "generateName", "namespace", "resourceVersion", "uid"):
        if key in meta and meta[key] is not None and not isinstance(meta[key], str):
            causes.append((f"metadata.{key}", "Invalid value: must be a string"))
    for key in ("labels", "annotations"):
        if meta.get(key) is not None and not _is_str_map(meta[key]):
            causes.append((f"metadata.{key}", "Invalid value: must be a map of strings"))
    refs = meta.get("ownerReferences")
    if refs is not None and not (isinstance(refs, list) and all(isinstance(r, dict) for r in refs)):
        causes.append(("metadata.ownerReferences", "Invalid value: must be a list of objects"))
    finalizers = meta.get("finalizers")
    if finalizers is not None and not (isinstance(finalizers, list) and all(isinstance(f, str) for f in finalizers)):
        causes.append(("metadata.finalizers", "Invalid value: must be a list of strings"))
    return causes


def _replicas_causes(replicas: Any) -> list[tuple[str, str]]:
    """spec.replicas must be an int32 that is not negative."""
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        return [("spec.replicas", f"Invalid value: {replicas!r}: must be an integer")]
    if replicas < 0:
        return [("spec.replicas", f"Invalid value: {replicas}: must be greater than or equal to 0")]
    if replicas > INT32_MAX:
        return [("spec.replicas", f"Invalid value: {replicas}: must be less than or equal to {INT32_MAX}")]
    return []


def _deployment_shape(obj: Obj) -> list[tuple[str, str]]:
    """Types of the Deployment fields the sim reads; values are checked later by `_deployment_causes`."""
    spec = obj.get("spec")
    if spec is None:
        return []
    if not isinstance(spec, dict):
        return [("spec", "Invalid value: must be an object")]
    causes = []
    for key in ("selector", "template", "strategy"):
        if spec.get(key) is not None and not isinstance(spec[key], dict):
            causes.append((f"spec.{key}", "Invalid value: must be an object"))
    template = spec.get("template")
    if isinstance(template, dict):
        tmeta = template.get("metadata")
        if tmeta is not None:
            causes.extend((f"spec.template.{f}", m) for f, m in _metadata_shape(tmeta))
        pod_spec = template.get("spec")
        if pod_spec is not None and not isinstance(pod_spec, dict):
            causes.append(("spec.template.spec", "Invalid value: must be an object"))
        elif isinstance(pod_spec, dict):
            containers = pod_spec.get("containers")
            if containers is not None and not isinstance(containers, list):
                causes.append(("spec.template.spec.containers", "Invalid value: must be a list"))
            for i, c in enumerate(containers if isinstance(containers, list) else []):
                where = f"spec.template.spec.containers[{i}]"
                if not isinstance(c, dict):
                    causes.append((where, "Invalid value: must be an object"))
                    continue
                for key in ("name", "image"):
                    if c.get(key) is not None and not isinstance(c[key], str):
                        causes.append((f"{where}.{key}", "Invalid value: must be a string"))
                res = c.get("resources")
                if res is not None and not (isinstance(res, dict) and all(
                        v is None or isinstance(v, dict) for v in res.values())):
                    causes.append((f"{where}.resources", "Invalid value: must be an object of quantity maps"))
    strategy = spec.get("strategy")
    if isinstance(strategy, dict) and strategy.get("rollingUpdate") is not None and not isinstance(
            strategy["rollingUpdate"], dict):
        causes.append(("spec.strategy.rollingUpdate", "Invalid value: must be an object"))
    selector = spec.get("selector")
    if isinstance(selector, dict):
        if selector.get("matchLabels") is not None and not _is_str_map(selector["matchLabels"]):
            causes.append(("spec.selector.matchLabels", "Invalid value: must be a map of strings"))
        exprs = selector.get("matchExpressions")
        if exprs is not None and not (isinstance(exprs, list) and all(isinstance(e, dict) for e in exprs)):
            causes.append(("spec.selector.matchExpressions", "Invalid value: must be a list of objects"))
        elif exprs is not None:
            supported = ", ".join(f'"{op}"' for op in OPERATORS)
            causes.extend((f"spec.selector.matchExpressions[{i}].operator",
                           f"Unsupported value: {e.get('operator')!r}: supported values: {supported}")
                          for i, e in enumerate(exprs) if e.get("operator") not in OPERATORS)
    return causes


def _deployment_causes(obj: Obj, old: Obj | None) -> list[tuple[str, str]]:
    causes: list[tuple[str, str]] = []
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [("spec", "Required value")]
    causes.extend(_replicas_causes(spec.get("replicas")))
    selector = spec.get("selector")
    if not isinstance(selector, dict) or not (selector.get("matchLabels") or selector.get("matchExpressions")):
        causes.append(("spec.selector", "Required value"))
        return causes
    template = spec.get("template") or {}
    labels = (template.get("metadata") or {}).get("labels") or {}
    if not selector_matches(selector, labels):
        causes.append(("spec.template.metadata.labels",
                       f"Invalid value: {labels!r}: `selector` does not match template `labels`"))
    containers = (template.get("spec") or {}).get("containers")
    if not isinstance(containers, list) or not containers:
        causes.append(("spec.template.spec.containers", "Required value"))
    else:
        for i, c in enumerate(containers):
            if not isinstance(c, dict) or not c.get("name"):
                causes.append((f"spec.template.spec.containers[{i}].name", "Required value"))
            elif not c.get("image"):
                causes.append((f"spec.template.spec.containers[{i}].image", "Required value"))
    if old is not None and (old.get("spec") or {}).get("selector") != selector:
        causes.append(("spec.selector", "Invalid value: field is immutable"))
    return causes


def _default_deployment(obj: Obj) -> Obj:
    spec = dict(obj.get("spec") or {})
    spec.setdefault("replicas", 1)
    spec.setdefault("revisionHistoryLimit", 10)
    spec.setdefault("progressDeadlineSeconds", 600)
    strategy = dict(spec.get("strategy") or {})
    strategy.setdefault("type", "RollingUpdate")
    if strategy["type"] == "RollingUpdate":
        strategy["rollingUpdate"] = {"maxUnavailable": "25%", "maxSurge": "25%", **(strategy.get("rollingUpdate")
                                                                                   or {})}
    spec["strategy"] = strategy
    template = dict(spec.get("template") or {})
    pod_spec = dict(template.get("spec") or {})
    if "containers" in pod_spec and isinstance(pod_spec["containers"], list):
        containers = []
        for c in pod_spec["containers"]:
            if not isinstance(c, dict):
                containers.append(c)
                continue
            c = dict(c)
            image = str(c.get("image", ""))
            tagged = ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest")
            c.setdefault("imagePullPolicy", "IfNotPresent" if tagged or "@" in image else "Always")
            c.setdefault("terminationMessagePath", "/dev/termination-log")
            c.setdefault("terminationMessagePolicy", "File")
            c.setdefault("resources", {})
            containers.append(c)
        pod_spec["containers"] = containers
    pod_spec.setdefault("restartPolicy", "Always")
    pod_spec.setdefault("terminationGracePeriodSeconds", 30)
    pod_spec.setdefault("dnsPolicy", "ClusterFirst")
    pod_spec.setdefault("securityContext", {})
    pod_spec.setdefault("schedulerName", "default-scheduler")
    template["spec"] = pod_spec
    template["metadata"] = dict(template.get("metadata") or {})
    spec["template"] = template
    return {**obj, "spec": spec}

