"""Mutating admission as the API server does it: call each matching MutatingWebhookConfiguration over HTTPS with an
AdmissionReview v1, apply the JSONPatch it returns, and collect its warnings.

Webhooks are matched by rules, namespaceSelector and objectSelector; the TLS peer is verified with the webhook's
caBundle against the service DNS name (`<name>.<namespace>.svc`) or the URL's host. A `ServiceResolver` maps a
service to a host and port, since the simulated cluster has no cluster network. Failures obey `failurePolicy`.
Reinvocation and CEL matchConditions are not evaluated. This module never writes to the store.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
import ssl
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from aihpa.labels import selector_matches
from aihpa.sim.errors import ApiError
from aihpa.sim.patch import PatchError, json_patch
from aihpa.sim.resources import Registry, ResourceType
from aihpa.sim.store import Store
from aihpa.sim.types import AdmissionRequest, AdmissionReview, Obj

__all__ = ["Admission", "ServiceResolver"]

logger = logging.getLogger(__name__)

#: (service namespace, service name, service port) -> (host, port) to connect to.
ServiceResolver = Callable[[str, str, int], tuple[str, int]]




def _selects(hook: Obj, selector: Any, labels: Mapping[str, str]) -> bool:
    """A webhook's objectSelector or namespaceSelector against labels; one the API server cannot read fails the
    request with a 500, as upstream's matcher does."""
    try:
        return selector_matches(selector, labels)
    except (AttributeError, ValueError) as exc:
        raise ApiError(500, f'Internal error occurred: webhook "{hook.get("name")}" has an invalid selector: {exc}',
                       reason="InternalError") from exc


def _rule_matches(rule: Obj, *, rt: ResourceType, operation: str, subresource: str | None) -> bool:
    ops = rule.get("operations") or []
    if "*" not in ops and operation not in ops:
        return False
    groups = rule.get("apiGroups") or []
    if "*" not in groups and rt.group not in groups:
        return False
    versions = rule.get("apiVersions") or []
    if "*" not in versions and rt.version not in versions:
        return False
    wanted = f"{rt.plural}/{subresource}" if subresource else rt.plural
    resources = rule.get("resources") or []
    if not any(_resource_matches(str(r), plural=rt.plural, wanted=wanted, subresource=subresource)
               for r in resources):
        return False
    scope = rule.get("scope", "*")
    return bool(scope == "*" or (scope == "Namespaced") == rt.namespaced)


def _resource_matches(r: str, *, plural: str, wanted: str, subresource: str | None) -> bool:
    """Rule resources: `deployments`, `deployments/scale`, `*` (main resources), `*/*`, `*/scale`, `deployments/*`."""
    if r == wanted or r == "*/*":
        return True
    if r == "*":
        return subresource is None
    if subresource is not None and r.startswith("*/"):
        return r[2:] == subresource
    return subresource is not None and r.endswith("/*") and r[:-2] == plural


class Admission:
    """Calls mutating webhooks for create and update requests."""

    def __init__(self, *, store: Store, registry: Registry, resolver: ServiceResolver | None = None) -> None:
        self.store = store
        self.registry = registry
        self.resolver = resolver
        # (namespace, name) -> (host, port): services registered by tests, consulted before `resolver`
        self.services: dict[tuple[str, str], tuple[str, int]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._mwc = registry.by_kind("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration")
        self._ns = registry.by_kind("v1", "Namespace")
        self.calls = 0  # webhook calls made, for tests and benchmarks

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _ssl(self, ca_bundle: str | None) -> ssl.SSLContext:
        key = ca_bundle or ""
        ctx = self._contexts.get(key)
        if ctx is None:
            if ca_bundle:
                try:
                    pem = base64.b64decode(ca_bundle, validate=True).decode()
                except (binascii.Error, UnicodeDecodeError) as exc:
                    raise ValueError(f"caBundle is not base64 PEM: {exc}") from exc
                ctx = ssl.create_default_context(cadata=pem)
            else:
                ctx = ssl.create_default_context()
            self._contexts[key] = ctx
        return ctx

    def _webhooks(self) -> list[tuple[str, Obj]]:
        if self._mwc is None:
            return []
        out = []
        configs = sorted(self.store.items(self._mwc), key=lambda o: o["metadata"]["name"])
        for cfg in configs:
            for hook in cfg.get("webhooks") or []:
                out.append((cfg["metadata"]["name"], hook))
        return out

    async def mutate(
        self,
        *,
        rt: ResourceType,
        operation: str,
        obj: Obj,
        old: Obj | None,
        namespace: str | None,
        subresource: str | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, list[str]]:
        """The object after every matching webhook has had its say, and the warnings they returned."""
        hooks = self._webhooks()
        if not hooks:
            return obj, []
        warnings: list[str] = []
        for _config, hook in hooks:
            if not self._matches(hook, rt=rt, operation=operation, obj=obj, old=old, namespace=namespace,
                                 subresource=subresource):
                continue
            side_effects = hook.get("sideEffects", "Unknown")
            if dry_run and side_effects not in ("None", "NoneOnDryRun"):
                raise ApiError(400, f'admission webhook "{hook.get("name")}" does not support dry run')
            try:
                obj, hook_warnings = await self._call(hook, rt=rt, operation=operation, obj=obj, old=old,
                                                      namespace=namespace, subresource=subresource, dry_run=dry_run)
                warnings.extend(hook_warnings)
            except ApiError:
                raise
            except Exception as exc:  # any transport or protocol failure goes through failurePolicy
                if hook.get("failurePolicy", "Fail") == "Ignore":
                    logger.warning("webhook %s failed, ignored by failurePolicy: %s", hook.get("name"), exc)
                    continue
                raise ApiError(500, f'Internal error occurred: failed calling webhook "{hook.get("name")}": {exc}',
                               reason="InternalError") from exc
        return obj, warnings

    def _matches(
        self, hook: Obj, *, rt: ResourceType, operation: str, obj: Obj, old: Obj | None, namespace: str | None,
        subresource: str | None,
    ) -> bool:
        if not any(_rule_matches(r, rt=rt, operation=operation, subresource=subresource)
                   for r in hook.get("rules") or []):
            return False
        labels = (obj.get("metadata") or {}).get("labels") or {}
        old_labels = ((old or {}).get("metadata") or {}).get("labels") or {}
        selector = hook.get("objectSelector")
        if selector and not (_selects(hook, selector, labels)
                             or (old is not None and _selects(hook, selector, old_labels))):
            return False
        ns_selector = hook.get("namespaceSelector")
        if ns_selector and self._ns is not None:
            if rt.kind == "Namespace" and not rt.group:
                ns_labels = labels
            elif rt.namespaced and namespace:
                ns_obj = self.store.get(self._ns, "", namespace)
                ns_labels = ((ns_obj or {}).get("metadata") or {}).get("labels") or {}
            else:
                return True  # cluster-scoped objects are not subject to namespaceSelector
            if not _selects(hook, ns_selector, ns_labels):
                return False
        return True

    def _target(self, hook: Obj) -> tuple[str, str | None]:
        """The URL to POST to, and the TLS server name to verify (None: the URL's host)."""
        cc = hook.get("clientConfig") or {}
        if cc.get("url"):
            return str(cc["url"]), None
        svc = cc.get("service") or {}
        ns, name = str(svc.get("namespace", "")), str(svc.get("name", ""))
        port = int(svc.get("port", 443))
        if (ns, name) in self.services:
            host, real_port = self.services[(ns, name)]
        elif self.resolver is not None:
            host, real_port = self.resolver(ns, name, port)
        else:
            raise LookupError(f"no address for service {ns}/{name}:{port} (register it with the cluster)")
        path = str(svc.get("path", "/"))
        if not path.startswith("/"):
            path = "/" + path
        return f"https://{host}:{real_port}{path}", f"{name}.{ns}.svc"

    async def _call(
        self, hook: Obj, *, rt: ResourceType, operation: str, obj: Obj, old: Obj | None, namespace: str | None,
        subresource: str | None, dry_run: bool,
    ) -> tuple[Obj, list[str]]:
        versions = hook.get("admissionReviewVersions") or ["v1"]
        if "v1" not in versions:
            raise ValueError(f"admissionReviewVersions {versions} does not include v1")
        uid = str(uuid.uuid4())
        meta = obj.get("metadata") or {}
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        gvr = {"group": rt.group, "version": rt.version, "resource": rt.plural}
        if subresource == "scale":
            gvk = {"group": "autoscaling", "version": "v1", "kind": "Scale"}
        request: AdmissionRequest = {
            "uid": uid, "kind": gvk, "resource": gvr, "requestKind": gvk, "requestResource": gvr,
            "name": str(meta.get("name", "")), "operation": "CREATE" if operation == "CREATE" else "UPDATE",
            "userInfo": {"username": "system:admin", "groups": ["system:masters", "system:authenticated"]},
            "object": obj, "oldObject": old, "dryRun": dry_run,
            "options": {"kind": "CreateOptions" if operation == "CREATE" else "UpdateOptions",
                        "apiVersion": "meta.k8s.io/v1"},
        }
        if subresource:
            request["subResource"] = subresource
        if namespace and rt.namespaced:
            request["namespace"] = namespace
        review: AdmissionReview = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                                   "request": request}
        url, server_name = self._target(hook)
        cc = hook.get("clientConfig") or {}
        ctx = self._ssl(cc.get("caBundle")) if url.startswith("https://") else None
        timeout = float(hook.get("timeoutSeconds", 10))
        if self._session is None:
            self._session = aiohttp.ClientSession()
        self.calls += 1
        kwargs: dict[str, Any] = {"json": review, "timeout": aiohttp.ClientTimeout(total=timeout)}
        if ctx is not None:
            kwargs["ssl"] = ctx
            if server_name:
                kwargs["server_hostname"] = server_name
        try:
            async with self._session.post(url, **kwargs) as resp:
                if resp.status != 200:
                    raise ValueError(f"webhook answered HTTP {resp.status}")
                answer = await resp.json(content_type=None)
        except TimeoutError as exc:
            raise TimeoutError(f"Post {url!r}: context deadline exceeded ({timeout:g}s)") from exc
        except asyncio.CancelledError:
            raise
        response = (answer or {}).get("response") if isinstance(answer, dict) else None
        if not isinstance(response, dict):
            raise ValueError("webhook response has no AdmissionReview response")
        if response.get("uid") != uid:
            raise ValueError(f"expected response.uid={uid!r}, got {response.get('uid')!r}")
        warnings = [str(w) for w in response.get("warnings") or []]
        if not response.get("allowed", False):
            st = response.get("status") or {}
            code = int(st.get("code") or 403)
            msg = st.get("message") or "denied"
            raise ApiError(code, f'admission webhook "{hook.get("name")}" denied the request: {msg}',
                           reason=str(st.get("reason") or ("Forbidden" if code == 403 else "")) or None)
        patch = response.get("patch")
        if patch:
            if response.get("patchType", "JSONPatch") != "JSONPatch":
                raise ValueError(f"unsupported patchType {response.get('patchType')!r}")
            try:
                ops = json.loads(base64.b64decode(patch))
                obj = json_patch(obj, ops)
            except (ValueError, PatchError) as exc:
                raise ValueError(f"bad JSONPatch from webhook: {exc}") from exc
        return obj, warnings
