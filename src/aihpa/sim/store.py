"""The object store behind the simulated API server: resourceVersions, watch history, watchers and owner-based
garbage collection.

Stored objects are immutable snapshots (plain dicts): writers always store a new dict, so an object handed to a
watcher or a response can be serialized later without copying. The store knows nothing about HTTP, admission or
kinds' semantics; it must never await (every operation is atomic with respect to the event loop).
"""

from __future__ import annotations

import asyncio
import builtins
import functools
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

import msgspec

from aihpa.sim.errors import ApiError
from aihpa.sim.resources import ResourceType
from aihpa.sim.selectors import Matcher
from aihpa.sim.types import Obj

__all__ = ["Event", "Store", "Watcher", "rfc3339"]

EventType = Literal["ADDED", "MODIFIED", "DELETED"]
ObjKey = tuple[str, str]  # (namespace or "", name)
TypeKey = tuple[str, str]  # (group, plural)


@functools.lru_cache(maxsize=1024)
def _rfc3339_second(second: int) -> str:
    return datetime.fromtimestamp(second, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc3339(ts: float) -> str:
    """Kubernetes' timestamp format (whole seconds, UTC)."""
    return _rfc3339_second(int(ts))


@dataclass(slots=True)
class Event:
    rv: int
    type: EventType
    obj: Obj
    old: Obj | None
    namespace: str
    _line: bytes | None = None

    def line(self) -> bytes:
        """The watch-stream line for this event, serialized once for all watchers."""
        if self._line is None:
            self._line = msgspec.json.encode({"type": self.type, "object": self.obj}) + b"\n"
        return self._line


@dataclass(frozen=True)
class View:
    """A resource type served from another type's storage, converted on the way in and out."""

    storage: ResourceType
    to_storage: Callable[[Obj], Obj]
    from_storage: Callable[[Obj], Obj]


@dataclass(eq=False)
class Watcher:
    """One watch: the events that pass its filters are queued for the HTTP stream to write."""

    type_key: TypeKey
    namespace: str | None
    labels: Matcher | None
    fields: Matcher | None
    events: deque[Event] = field(default_factory=deque)
    # for a View: stored objects are converted before filtering and delivery
    convert: Callable[[Obj], Obj] | None = None
    # set by the stream while it waits, resolved by the next event: a bare future, so no helper task is needed
    waiter: asyncio.Future[None] | None = None
    closed: bool = False

    def _push(self, ev: Event) -> None:
        self.events.append(ev)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def is_closed(self) -> bool:
        return self.closed

    def close(self) -> None:
        """End the stream (server shutdown)."""
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _matches(self, obj: Obj) -> bool:
        return (self.labels is None or self.labels(obj)) and (self.fields is None or self.fields(obj))

    def offer(self, ev: Event) -> None:
        if self.namespace is not None and ev.namespace != self.namespace:
            return
        if self.convert is not None:
            ev = Event(rv=ev.rv, type=ev.type, obj=self.convert(ev.obj),
                       old=None if ev.old is None else self.convert(ev.old), namespace=ev.namespace)
        if self.labels is None and self.fields is None:
            self._push(ev)
            return
        now = self._matches(ev.obj)
        before = ev.old is not None and self._matches(ev.old)
        if ev.type == "MODIFIED" and now != before:
            # an object entering or leaving a filtered watch appears as ADDED or DELETED, as the watch cache does
            ev = Event(rv=ev.rv, type="ADDED" if now else "DELETED", obj=ev.obj, old=ev.old, namespace=ev.namespace)
            self._push(ev)
        elif now:
            self._push(ev)


Listener = Callable[[ResourceType, Event], None]


class Store:
    """All objects of all kinds, one global resourceVersion counter, and a bounded per-kind event history."""

    def __init__(self, *, now: Callable[[], float], history: int = 50_000) -> None:
        self._now = now
        self._rv = 1
        self._history_len = history
        self._objects: dict[TypeKey, dict[ObjKey, Obj]] = {}
        self._history: dict[TypeKey, deque[Event]] = {}
        # events at or below this resourceVersion are gone: watching from older answers 410 Expired
        self._compacted: dict[TypeKey, int] = {}
        self._watchers: dict[TypeKey, set[Watcher]] = {}
        self._types: dict[TypeKey, ResourceType] = {}
        self._owned: dict[str, set[tuple[TypeKey, ObjKey]]] = {}
        self._listeners: list[Listener] = []
        self._views: dict[TypeKey, View] = {}

    @property
    def resource_version(self) -> int:
        return self._rv

    def add_listener(self, listener: Listener) -> None:
        """Called synchronously after each event has reached the watchers (used by the workload model)."""
        self._listeners.append(listener)

    def add_view(self, rt: ResourceType, view: View) -> None:
        """Serve `rt` from `view.storage`'s objects (e.g. events.k8s.io/v1 Events from core v1 Events)."""
        self._views[rt.key] = view

    # ---- reads ------------------------------------------------------------------------------------------------

    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj | None:
        view = self._views.get(rt.key)
        if view is not None:
            found = self.get(view.storage, namespace, name)
            return None if found is None else view.from_storage(found)
        return self._objects.get(rt.key, {}).get((namespace if rt.namespaced else "", name))

    def require(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.get(rt, namespace, name)
        if obj is None:
            raise ApiError.not_found(rt.qualified, name, group=rt.group, kind=rt.plural)
        return obj

    def items(self, rt: ResourceType, namespace: str | None = None) -> Iterator[Obj]:
        view = self._views.get(rt.key)
        if view is not None:
            for obj in self.items(view.storage, namespace):
                yield view.from_storage(obj)
            return
        objs = self._objects.get(rt.key, {})
        if namespace is None or not rt.namespaced:
            yield from objs.values()
        else:
            for (ns, _), obj in objs.items():
                if ns == namespace:
                    yield obj

    def list(
        self, rt: ResourceType, *, namespace: str | None, labels: Matcher | None, fields: Matcher | None
    ) -> tuple[builtins.list[Obj], int]:
        out = [
            o for o in self.items(rt, namespace)
            if (labels is None or labels(o)) and (fields is None or fields(o))
        ]
        out.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return out, self._rv

    def dependents(self, owner_uid: str, rt: ResourceType) -> builtins.list[Obj]:
        """Objects of type `rt` whose ownerReferences name `owner_uid` (from an index: no scan)."""
        objs = self._objects.get(rt.key, {})
        out = [objs[k] for t, k in self._owned.get(owner_uid, ()) if t == rt.key and k in objs]
        out.sort(key=lambda o: o["metadata"]["name"])
        return out

    def count(self, rt: ResourceType) -> int:
        return len(self._objects.get(rt.key, {}))

    # ---- writes -----------------------------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def create(self, rt: ResourceType, obj: Obj) -> Obj:
        """Store a new object (a dict the caller gives up); sets uid, creationTimestamp, generation, rv."""
        view = self._views.get(rt.key)
        if view is not None:
            return view.from_storage(self.create(view.storage, view.to_storage(obj)))
        meta = dict(obj.get("metadata") or {})
        ns = meta.get("namespace", "") if rt.namespaced else ""
        key = (ns, meta["name"])
        objs = self._objects.setdefault(rt.key, {})
        if key in objs:
            raise ApiError.already_exists(rt.qualified, meta["name"], group=rt.group, kind=rt.plural)
        rv = self._next_rv()
        meta["uid"] = str(uuid.uuid4())
        meta["resourceVersion"] = str(rv)
        meta["creationTimestamp"] = rfc3339(self._now())
        meta.setdefault("generation", 1)
        if not rt.namespaced:
            meta.pop("namespace", None)
        meta.pop("deletionTimestamp", None)
        stored = {"apiVersion": rt.api_version, "kind": rt.kind, **obj, "metadata": meta}
        objs[key] = stored
        self._types[rt.key] = rt
        self._index_owners(rt, key, None, stored)
        self._emit(rt, Event(rv=rv, type="ADDED", obj=stored, old=None, namespace=ns))
        return stored

    def update(self, rt: ResourceType, obj: Obj, *, expect_rv: str | None = None, bump_generation: bool = True) -> Obj:
        """Replace an object. `expect_rv` (when set) must equal the stored resourceVersion, else 409 Conflict.

        Identity fields (uid, creationTimestamp) are kept from the stored object; generation goes up by one when
        anything but metadata and status changed.
        """
        view = self._views.get(rt.key)
        if view is not None:
            return view.from_storage(self.update(view.storage, view.to_storage(obj), expect_rv=expect_rv,
                                                 bump_generation=bump_generation))
        meta = dict(obj.get("metadata") or {})
        ns = meta.get("namespace", "") if rt.namespaced else ""
        key = (ns, meta["name"])
        objs = self._objects.get(rt.key, {})
        old = objs.get(key)
        if old is None:
            raise ApiError.not_found(rt.qualified, meta["name"], group=rt.group, kind=rt.plural)
        old_meta = old["metadata"]
        if expect_rv and expect_rv != old_meta["resourceVersion"]:
            raise ApiError.conflict(rt.qualified, meta["name"], group=rt.group, kind=rt.plural)
        if meta.get("uid") and meta["uid"] != old_meta["uid"]:
            raise ApiError.conflict(rt.qualified, meta["name"], group=rt.group, kind=rt.plural)
        meta["uid"] = old_meta["uid"]
        meta["creationTimestamp"] = old_meta["creationTimestamp"]
        generation = int(old_meta.get("generation", 1))
        if bump_generation and any(
            old.get(k) != obj.get(k) for k in set(old) | set(obj) if k not in ("metadata", "status")
        ):
            generation += 1
        meta["generation"] = generation
        if not rt.namespaced:
            meta.pop("namespace", None)
        candidate = {**obj, "apiVersion": rt.api_version, "kind": rt.kind, "metadata": {**meta,
                     "resourceVersion": old_meta["resourceVersion"]}}
        if candidate == old:
            return old  # a no-op write keeps the resourceVersion and emits nothing, as the API server does
        rv = self._next_rv()
        candidate["metadata"]["resourceVersion"] = str(rv)
        objs[key] = candidate
        self._index_owners(rt, key, old, candidate)
        self._emit(rt, Event(rv=rv, type="MODIFIED", obj=candidate, old=old, namespace=ns))
        return candidate

    def delete(self, rt: ResourceType, namespace: str, name: str, *, expect_uid: str | None = None) -> Obj:
        view = self._views.get(rt.key)
        if view is not None:
            return view.from_storage(self.delete(view.storage, namespace, name, expect_uid=expect_uid))
        ns = namespace if rt.namespaced else ""
        objs = self._objects.get(rt.key, {})
        old = objs.get((ns, name))
        if old is None:
            raise ApiError.not_found(rt.qualified, name, group=rt.group, kind=rt.plural)
        if expect_uid and old["metadata"]["uid"] != expect_uid:
            raise ApiError.conflict(rt.qualified, name, group=rt.group, kind=rt.plural)
        del objs[(ns, name)]
        rv = self._next_rv()
        gone = {**old, "metadata": {**old["metadata"], "resourceVersion": str(rv)}}
        self._index_owners(rt, (ns, name), old, None)
        self._emit(rt, Event(rv=rv, type="DELETED", obj=gone, old=old, namespace=ns))
        # garbage collection: dependents go with their owner (background propagation, done at once)
        for type_key, okey in sorted(self._owned.pop(old["metadata"]["uid"], set())):
            child_rt = self._types.get(type_key)
            if child_rt is not None and okey in self._objects.get(type_key, {}):
                self.delete(child_rt, okey[0], okey[1])
        return gone

    def delete_namespace_contents(self, namespace: str) -> None:
        for type_key, objs in list(self._objects.items()):
            rt = self._types.get(type_key)
            if rt is None or not rt.namespaced:
                continue
            for ns, name in [k for k in objs if k[0] == namespace]:
                if (ns, name) in objs:
                    self.delete(rt, ns, name)

    def _index_owners(self, rt: ResourceType, key: ObjKey, old: Obj | None, new: Obj | None) -> None:
        old_refs = None if old is None else old["metadata"].get("ownerReferences")
        new_refs = None if new is None else new["metadata"].get("ownerReferences")
        if old is not None and new is not None and old_refs is new_refs:
            return  # the common update: owners untouched (shared, immutable list)

        def uids(o: Obj | None) -> set[str]:
            if o is None:
                return set()
            return {str(r.get("uid")) for r in o["metadata"].get("ownerReferences") or [] if r.get("uid")}

        before, after = uids(old), uids(new)
        if before == after:
            return
        for uid in before - after:
            self._owned.get(uid, set()).discard((rt.key, key))
        for uid in after - before:
            self._owned.setdefault(uid, set()).add((rt.key, key))

    # ---- watch ------------------------------------------------------------------------------------------------

    def _emit(self, rt: ResourceType, ev: Event) -> None:
        hist = self._history.get(rt.key)
        if hist is None:
            hist = self._history[rt.key] = deque()
        if len(hist) >= self._history_len:
            self._compacted[rt.key] = hist.popleft().rv
        hist.append(ev)
        for w in self._watchers.get(rt.key, ()):
            w.offer(ev)
        for listener in self._listeners:
            listener(rt, ev)

    def compact(self) -> None:
        """Forget all watch history: resuming any watch from an older resourceVersion answers 410 Expired."""
        for key in set(self._history) | set(self._objects):
            self._history.pop(key, None)
            self._compacted[key] = self._rv

    def watch(
        self,
        rt: ResourceType,
        *,
        namespace: str | None,
        labels: Matcher | None,
        fields: Matcher | None,
        since: int | None,
    ) -> Watcher:
        """Register a watcher. `since=None` starts with synthetic ADDED events for the current objects; otherwise
        the history after `since` is replayed, or 410 Expired when it has been compacted away."""
        view = self._views.get(rt.key)
        storage = view.storage if view is not None else rt
        w = Watcher(type_key=storage.key, namespace=namespace if rt.namespaced else None, labels=labels,
                    fields=fields, convert=view.from_storage if view is not None else None)
        if since is None:
            objs, rv = self.list(rt, namespace=w.namespace, labels=labels, fields=fields)
            for o in objs:
                ns = o["metadata"].get("namespace", "")
                w.events.append(Event(rv=rv, type="ADDED", obj=o, old=None, namespace=ns))
        else:
            if since < 0:
                raise ApiError.bad_request(f"invalid resource version: {since} is negative")
            compacted = self._compacted.get(storage.key, 0)
            if since < compacted:
                raise ApiError.gone(f"too old resource version: {since} ({compacted + 1})")
            if since > self._rv:
                # a resourceVersion from the future is not one this server issued
                raise ApiError(504, f"Too large resource version: {since}, current: {self._rv}", reason="Timeout",
                               details={"causes": [{"reason": "ResourceVersionTooLarge",
                                                    "message": "Too large resource version"}],
                                        "retryAfterSeconds": 1})
            pending = []
            for ev in reversed(self._history.get(storage.key, ())):
                if ev.rv <= since:
                    break
                pending.append(ev)
            for ev in reversed(pending):
                w.offer(ev)
        self._watchers.setdefault(storage.key, set()).add(w)
        return w

    def unwatch(self, w: Watcher) -> None:
        self._watchers.get(w.type_key, set()).discard(w)

    def watcher_count(self) -> int:
        return sum(len(ws) for ws in self._watchers.values())

    def close_watchers(self) -> None:
        for ws in self._watchers.values():
            for w in ws:
                w.close()
