"""The HTTP face of the simulated cluster: Kubernetes REST paths, discovery, content negotiation (JSON and server-side
Tables), watch streams with bookmarks, the metrics API, fault injection, and `Status` bodies for every error.

Request semantics live in `aihpa.sim.api`; this module parses and renders. It must never let a Python exception reach
a client as anything but a `Status` (the error middleware turns unexpected ones into a 500 `InternalError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import yaml
from aiohttp import web
from multidict import CIMultiDict

from aihpa._version import __version__
from aihpa.clock import Clock
from aihpa.sim.api import PATCH_TYPES, Api
from aihpa.sim.errors import ApiError, status_object
from aihpa.sim.faults import Fault, Faults
from aihpa.sim.openapi import OpenApi
from aihpa.sim.protobuf import CONTENT_TYPE as PROTOBUF
from aihpa.sim.protobuf import ProtobufError, decode_object
from aihpa.sim.resources import Registry, ResourceType
from aihpa.sim.selectors import field_labels, field_selector, label_selector
from aihpa.sim.store import Event, Store
from aihpa.sim.tables import to_table
from aihpa.sim.types import Obj
from aihpa.sim.workload import Workloads

__all__ = ["MAX_BODY_BYTES", "MAX_BODY_DEPTH", "MAX_YAML_ALIAS_NODES", "ServerSettings", "build_app"]

logger = logging.getLogger(__name__)

#: The API server's request body limit (3 MiB).
MAX_BODY_BYTES = 3 * 1024 * 1024
#: The deepest nesting of objects and arrays a request body may have.
MAX_BODY_DEPTH = 100
#: How many nodes YAML aliases may add to a document when expanded (an alias bomb expands to millions).
MAX_YAML_ALIAS_NODES = 10_000

_JSON = "application/json"
_VERBS_BY_METHOD = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass
class ServerSettings:
    """Transport behaviour; times are real (event-loop) seconds, not virtual ones."""

    bookmark_interval: float = 5.0
    default_watch_timeout: float = 1800.0
    major: str = "1"
    minor: str = "36"


def _dumps(obj: Any) -> bytes:
    # msgspec writes the same compact JSON as json.dumps (UTF-8 instead of \u escapes) in a tenth of the time: a
    # PodMetrics list of 40,000 pods is 20 MB
    return msgspec.json.encode(obj)


def _json_response(
    obj: Any, *, status: int = 200, headers: dict[str, str] | CIMultiDict[str] | None = None
) -> web.Response:
    return web.Response(body=_dumps(obj), status=status, content_type=_JSON, headers=headers)


def _error_response(err: ApiError) -> web.Response:
    return _json_response(err.status, status=err.code, headers=err.headers or None)


def _warning_headers(warnings: list[str]) -> CIMultiDict[str] | None:
    """One `Warning: 299 - "text"` header per admission warning, as the API server sends them."""
    if not warnings:
        return None
    return CIMultiDict(("Warning", '299 - "{}"'.format(w.replace('"', "'"))) for w in warnings)


@dataclass
class _Target:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


class Server:
    """Request handlers bound to one cluster's state."""

    def __init__(
        self,
        *,
        api: Api,
        store: Store,
        registry: Registry,
        workloads: Workloads,
        faults: Faults,
        clock: Clock,
        settings: ServerSettings,
    ) -> None:
        self.api = api
        self.store = store
        self.registry = registry
        self.workloads = workloads
        self.faults = faults
        self.clock = clock
        self.settings = settings
        self.openapi = OpenApi(registry)
        self.closing = asyncio.Event()
        self.requests: dict[str, int] = {}
        self.in_flight = 0

    # ---- routing ----------------------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await self._handle(request)
        finally:
            self.in_flight -= 1

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        segs = [s for s in path.split("/") if s]
        if not segs:
            return _json_response({"paths": ["/api", "/api/v1", "/apis", "/openapi/v2", "/openapi/v3", "/version"]})
        head = segs[0]
        if head in ("healthz", "readyz", "livez"):
            return web.Response(text="ok")
        if head == "version":
            return _json_response({
                "major": self.settings.major, "minor": self.settings.minor,
                "gitVersion": f"v{self.settings.major}.{self.settings.minor}.0-aihpa-sim+{__version__}",
                "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
                "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24", "compiler": "gc",
                "platform": "linux/amd64",
            })
        if head == "openapi":
            return self.openapi.handle(segs[1:], request)
        if head == "api":
            if len(segs) == 1:
                return _json_response(self.registry.core_versions())
            return await self._group_version(request, "", segs[1], segs[2:])
        if head == "apis":
            if len(segs) == 1:
                return _json_response(self.registry.group_list())
            if len(segs) == 2:
                doc = self.registry.group_document(segs[1])
                if doc is None:
                    raise ApiError(404, "the server could not find the requested resource")
                return _json_response(doc)
            return await self._group_version(request, segs[1], segs[2], segs[3:])
        raise ApiError(404, "the server could not find the requested resource")

    async def _group_version(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        if not self.registry.has_group_version(group, version):
            raise ApiError(404, "the server could not find the requested resource")
        if not rest:
            doc = self.registry.resource_list(group, version)
            assert doc is not None
            return _json_response(doc)
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        target = self._target(group, version, rest)
        method = request.method
        query = request.query
        if method == "GET":
            watching = watch_path or _flag(query, "watch")
            verb = "watch" if watching else ("get" if target.name is not None else "list")
        elif method == "DELETE":
            verb = "delete" if target.name is not None else "deletecollection"
        elif method in _VERBS_BY_METHOD:
            verb = _VERBS_BY_METHOD[method]
        else:
            raise ApiError(405, f"the server does not allow this method on the requested resource ({method})",
                           reason="MethodNotAllowed")
        self.requests[verb] = self.requests.get(verb, 0) + 1
        rt = target.rt
        if verb not in rt.verbs and not (verb in ("update", "patch") and target.subresource):
            raise ApiError(405, f"the server does not allow this method on the requested resource ({rt.plural})",
                           reason="MethodNotAllowed")
        if verb == "create" and target.name is not None:
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           reason="MethodNotAllowed")
        if verb in ("update", "patch") and target.name is None:
            raise ApiError(405, "the server does not allow this method on the requested resource",
                           reason="MethodNotAllowed")
        fault = self.faults.match(
            verb=verb, group=group,
            resource=f"{rt.plural}/{target.subresource}" if target.subresource else rt.plural,
            namespace=target.namespace, name=target.name,
        ) if len(self.faults) else None
        if fault is not None:
            await self._apply_fault(fault, verb=verb)
        if rt.virtual:
            return self._metrics(request, target, verb)
        if verb == "watch":
            return await self._watch(request, target, fault)
        if verb == "list":
            return self._list(request, target)
        if verb == "get":
            assert target.name is not None
            obj = self.api.get(rt, namespace=target.namespace, name=target.name, subresource=target.subresource)
            if _wants_table(request) and target.subresource is None:
                return _json_response(self._table(rt, [obj], request, rv=obj["metadata"]["resourceVersion"]))
            return _json_response(obj)
        dry_run = "All" in query.getall("dryRun", [])
        if verb == "delete":
            assert target.name is not None
            body = await self._body(request, optional=True)
            obj_or_status, code = self.api.delete(rt, namespace=target.namespace, name=target.name,
                                                  options=body if isinstance(body, dict) else None, dry_run=dry_run)
            return _json_response(obj_or_status, status=code)
        if verb == "deletecollection":
            listed = self.api.delete_collection(rt, namespace=target.namespace, label=query.get("labelSelector"),
                                                fields=query.get("fieldSelector"))
            return _json_response(listed)
        body = await self._body(request, optional=False)
        if verb == "create":
            result = await self.api.create(rt, body, namespace=target.namespace, dry_run=dry_run)
        elif verb == "update":
            assert target.name is not None
            result = await self.api.update(rt, body, namespace=target.namespace, name=target.name,
                                           subresource=target.subresource, dry_run=dry_run)
        else:
            assert target.name is not None
            ctype = request.content_type
            if ctype not in PATCH_TYPES:
                raise ApiError(415, f"the body of the request was in an unknown format - accepted media types "
                               f"include: {', '.join(sorted(PATCH_TYPES))}", reason="UnsupportedMediaType")
            result = await self.api.patch(rt, body, patch_type=ctype, namespace=target.namespace, name=target.name,
                                          subresource=target.subresource, dry_run=dry_run)
        return _json_response(result.obj, status=result.code, headers=_warning_headers(result.warnings))

    def _target(self, group: str, version: str, rest: list[str]) -> _Target:
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
            namespace = rest[1]
            rest = rest[2:]
        plural = rest[0]
        rt = self.registry.lookup(group, version, plural)
        if rt is None:
            raise ApiError(404, "the server could not find the requested resource")
        if namespace is not None and not rt.namespaced:
            raise ApiError(404, "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if len(rest) > 3 or (sub is not None and sub not in rt.subresources and not (
                rt.kind == "Namespace" and sub == "finalize")):
            raise ApiError(404, "the server could not find the requested resource")
        return _Target(rt=rt, namespace=namespace, name=name, subresource=sub)

    async def _body(self, request: web.Request, *, optional: bool) -> Any:
        raw = await request.read()  # aiohttp enforces client_max_size and raises 413 beyond it
        if not raw.strip():
            if optional:
                return None
            raise ApiError.bad_request("the body of the request is empty")
        ctype = request.content_type
        if ctype == PROTOBUF:
            try:
                return decode_object(raw)
            except (ProtobufError, UnicodeDecodeError) as exc:
                raise ApiError(415, str(exc), reason="UnsupportedMediaType") from exc
        try:
            return _decode_yaml(raw) if "yaml" in ctype else _decode_json(raw)
        except RecursionError as exc:
            raise ApiError.bad_request(f"couldn't decode the request body: nesting deeper than {MAX_BODY_DEPTH} "
                                       "levels") from exc
        except (ValueError, yaml.YAMLError) as exc:
            raise ApiError.bad_request(f"couldn't decode the request body: {str(exc).splitlines()[0]}") from exc

    # ---- faults -----------------------------------------------------------------------------------------------

    async def _apply_fault(self, fault: Fault, *, verb: str) -> None:
        if fault.delay > 0:
            await asyncio.sleep(fault.delay)
        if fault.status is None or (verb == "watch" and fault.status == 410):
            return  # watch-stream faults are carried out by the stream itself
        err = ApiError(fault.status, fault.message)
        if fault.retry_after is not None:
            err.status.setdefault("details", {})["retryAfterSeconds"] = int(fault.retry_after)
            err.headers["Retry-After"] = str(int(fault.retry_after))
        raise err

    # ---- list, tables ------------------------------------------------------------------------------------------

    def _list(self, request: web.Request, target: _Target) -> web.Response:
        q = request.query
        limit = _int_param(q, "limit")
        listed = self.api.list(target.rt, namespace=target.namespace, label=q.get("labelSelector"),
                               fields=q.get("fieldSelector"), limit=limit, continue_token=q.get("continue"))
        rv = _resource_version(q.get("resourceVersion"))
        if rv is not None and q.get("resourceVersionMatch") == "Exact" and str(rv) != listed["metadata"][
                "resourceVersion"]:
            raise ApiError.gone(f"too old resource version: {rv}")
        if _wants_table(request):
            meta = {k: v for k, v in listed["metadata"].items() if k != "resourceVersion"}
            return _json_response(self._table(target.rt, listed["items"], request,
                                              rv=listed["metadata"]["resourceVersion"], list_meta=meta))
        return _json_response(listed)

    def _table(self, rt: ResourceType, objs: list[Obj], request: web.Request, *, rv: str,
               with_columns: bool = True, list_meta: Obj | None = None) -> Obj:
        return to_table(rt, objs, now=self.clock.now(), resource_version=rv,
                        include_object=request.query.get("includeObject", "Metadata"), with_columns=with_columns,
                        list_meta=list_meta)

    # ---- watch ------------------------------------------------------------------------------------------------

    async def _watch(self, request: web.Request, target: _Target, fault: Fault | None) -> web.StreamResponse:
        q = request.query
        timeout = _int_param(q, "timeoutSeconds")
        timeout_s = float(timeout) if timeout is not None and timeout > 0 else self.settings.default_watch_timeout
        bookmarks = _flag(q, "allowWatchBookmarks")
        initial_events = _flag(q, "sendInitialEvents")
        raw_rv = q.get("resourceVersion", "")
        since = _resource_version(raw_rv)
        if initial_events:
            since = None
        table = _wants_table(request)
        labels = label_selector(q.get("labelSelector"))
        selector = q.get("fieldSelector") or ""
        if target.name is not None:  # watching one object (a legacy path form): a name field selector
            selector = ",".join(s for s in (selector, f"metadata.name={target.name}") if s)
        fields = field_selector(selector, field_labels(target.rt.group, target.rt.kind))
        resp = web.StreamResponse(status=200, headers={"Content-Type": _JSON, "Cache-Control": "no-cache"})
        resp.enable_chunked_encoding()
        expired: ApiError | None = None
        watcher = None
        if fault is not None and fault.status == 410:
            expired = ApiError.gone(f"too old resource version: {raw_rv or 0} (injected)")
        else:
            try:
                watcher = self.store.watch(target.rt, namespace=target.namespace, labels=labels, fields=fields,
                                           since=since)
            except ApiError as err:
                if err.code != 410:
                    raise
                expired = err
        await resp.prepare(request)
        if watcher is None:
            assert expired is not None
            await resp.write(_dumps({"type": "ERROR", "object": expired.status}) + b"\n")
            await resp.write_eof()
            return resp
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        sent = 0
        drop_after = fault.drop_after_events if fault is not None else None
        first_table = True
        initial_done = not initial_events
        pending = watcher.events
        try:
            while not watcher.is_closed():
                if initial_done is False and not pending:
                    initial_done = True
                    await resp.write(self._bookmark(target.rt, initial_end=True))
                now = loop.time()
                if now >= deadline:
                    break
                if not pending:
                    wait = min(deadline - now, self.settings.bookmark_interval if bookmarks else deadline - now)
                    watcher.waiter = loop.create_future()
                    try:
                        await asyncio.wait_for(watcher.waiter, timeout=wait)
                    except TimeoutError:
                        if bookmarks and loop.time() < deadline:
                            await resp.write(self._bookmark(target.rt))
                        continue
                    finally:
                        watcher.waiter = None
                    if watcher.is_closed():
                        break
                events: list[Event] = []
                while pending and len(events) < 512:
                    events.append(pending.popleft())
                if drop_after is not None and sent + len(events) >= drop_after:
                    events = events[: max(0, drop_after - sent)]
                    await resp.write(self._lines(events, target.rt, request, table, first_table))
                    if fault is not None and fault.abort:
                        if request.transport is not None:
                            request.transport.abort()
                        return resp
                    break
                await resp.write(self._lines(events, target.rt, request, table, first_table))
                first_table = False
                sent += len(events)
        except ConnectionResetError:
            return resp  # the client left: nothing more to say
        finally:
            self.store.unwatch(watcher)
        with contextlib.suppress(ConnectionResetError):  # the client went first
            await resp.write_eof()
        return resp

    def _lines(self, events: list[Event], rt: ResourceType, request: web.Request, table: bool, first: bool) -> bytes:
        if not table:
            return b"".join(ev.line() for ev in events)
        out = []
        for i, ev in enumerate(events):
            t = self._table(rt, [ev.obj], request, rv=str(ev.rv), with_columns=first and i == 0)
            out.append(_dumps({"type": ev.type, "object": t}) + b"\n")
        return b"".join(out)

    def _bookmark(self, rt: ResourceType, *, initial_end: bool = False) -> bytes:
        meta: Obj = {"resourceVersion": str(self.store.resource_version)}
        if initial_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        return _dumps({"type": "BOOKMARK", "object": {"kind": rt.kind, "apiVersion": rt.api_version,
                                                      "metadata": meta}}) + b"\n"

    # ---- metrics.k8s.io -----------------------------------------------------------------------------------------

    def _metrics(self, request: web.Request, target: _Target, verb: str) -> web.Response:
        if verb not in ("get", "list"):
            raise ApiError(405, f"the server does not allow this method on the requested resource ({verb})",
                           reason="MethodNotAllowed")
        now = self.clock.now()
        if target.rt.kind == "NodeMetrics":
            if verb == "get":
                raise ApiError.not_found("nodes.metrics.k8s.io", str(target.name), group="metrics.k8s.io")
            return _json_response({"kind": "NodeMetricsList", "apiVersion": "metrics.k8s.io/v1beta1",
                                   "metadata": {}, "items": []})
        pods_rt = self.registry.by_kind("v1", "Pod")
        assert pods_rt is not None
        cache: dict[str, tuple[float, int]] = {}
        if verb == "get":
            assert target.name is not None
            pod = self.store.get(pods_rt, target.namespace or "", target.name)
            item = self.workloads.pod_metrics(pod, now=now, demand_cache=cache) if pod is not None else None
            if item is None:
                raise ApiError.not_found("pods.metrics.k8s.io", target.name, group="metrics.k8s.io", kind="pods")
            return _json_response(item)
        q = request.query
        pods, _ = self.store.list(pods_rt, namespace=target.namespace, labels=label_selector(q.get("labelSelector")),
                                  fields=field_selector(q.get("fieldSelector"), field_labels("", "Pod")))
        items = [m for p in pods if (m := self.workloads.pod_metrics(p, now=now, demand_cache=cache)) is not None]
        return _json_response({"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {},
                               "items": items})


def _resource_version(raw: str | None) -> int | None:
    """A list or watch `resourceVersion`: None when unset or "0" (any version), else a uint64 (400 otherwise)."""
    if raw is None or raw in ("", "0"):
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 20 or int(raw) >= 2**64:
        raise ApiError.bad_request(f"invalid resource version: {raw!r} is not a non-negative integer")
    return int(raw)


def _decode_json(raw: bytes) -> Any:
    value = json.loads(raw)  # a RecursionError on absurd nesting; the depth check catches the merely deep
    _check_depth(value)
    return value


def _check_depth(value: Any) -> None:
    """Refuse nesting deeper than MAX_BODY_DEPTH, walking without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        if depth > MAX_BODY_DEPTH:
            raise ValueError(f"nesting deeper than {MAX_BODY_DEPTH} levels")
        stack.extend((child, depth + 1) for child in children)


def _decode_yaml(raw: bytes) -> Any:
    """One YAML document, refused before construction when it nests too deep or its aliases expand too far."""
    loader = yaml.SafeLoader(raw)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml_node(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_yaml_node(root: yaml.Node) -> None:
    """Depth and expanded size of a composed document, measured without expanding it: an alias is the same node
    object met again, so each node's size is computed once."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 0 if isinstance(node, yaml.ScalarNode) else 1 + max(
                (depth[id(c)] for c in children), default=0)
            if depth[key] > MAX_BODY_DEPTH:
                raise ValueError(f"nesting deeper than {MAX_BODY_DEPTH} levels")
            continue
        if key in size:
            continue  # an alias of a node already measured
        if key in on_path:
            raise ValueError("document contains a recursive alias")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)
    if size[id(root)] - len(size) > MAX_YAML_ALIAS_NODES:
        raise ValueError("document contains excessive aliasing")


def _int_param(q: Any, name: str) -> int | None:
    raw = q.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError as exc:
        raise ApiError.bad_request(f"invalid {name} {raw!r}: not an integer") from exc


def _flag(q: Any, name: str) -> bool:
    """Boolean query parameters arrive as true/True/1 depending on the client."""
    return str(q.get(name, "")).lower() in ("true", "1")


def _wants_table(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "as=Table" in accept


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as err:
        return _error_response(err)
    except web.HTTPRequestEntityTooLarge:
        return _error_response(ApiError(413, f"the request body is larger than {MAX_BODY_BYTES} bytes",
                                        reason="RequestEntityTooLarge"))
    except web.HTTPException as exc:
        return _json_response(status_object(exc.status, exc.reason), status=exc.status)
    except (asyncio.CancelledError, ConnectionResetError):
        raise
    except Exception:  # the contract: a client never sees a traceback
        logger.exception("internal error serving %s %s", request.method, request.path)
        return _error_response(ApiError(500, "an error on the server (\"\") has prevented the request from "
                                        "succeeding", reason="InternalError"))


def build_app(server: Server) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app.router.add_route("*", "/{tail:.*}", server.handle)
    return app
