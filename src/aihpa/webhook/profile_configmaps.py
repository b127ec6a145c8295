"""Replica profiles read from the ConfigMaps the controller publishes, kept current by a watch.

The controller writes its profiles into ConfigMaps `aihpa-profiles-<shard>` in its own namespace, labeled
`aihpa/profiles: "true"` (`aihpa.profiles.configmaps_for`). `ConfigMapProfileSource` lists and watches those
ConfigMaps and serves lookups from an in-memory cache, so an admission never waits on the API server or the
controller: before the first list, or while the API server is unreachable, lookups answer from what is cached (or
nothing), and the webhook admits without a forecast.

Never crashes on what it reads: a bad entry or ConfigMap is logged and skipped, the others keep serving.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import K8sError
from aihpa.k8s.watching import WatchEvent, WatchSettings, watch_objects
from aihpa.profiles import PROFILES_LABEL, InMemoryProfileSource, ReplicaProfile

__all__ = ["ConfigMapProfileSource"]

log = logging.getLogger(__name__)


class ConfigMapProfileSource:
    """A `ProfileSource` over the labeled profile ConfigMaps of one namespace, cached and kept current by `run()`.

    SYNC (every list, first or after a reconnect) replaces the whole cache; ADDED and MODIFIED replace one
    ConfigMap's entries; DELETED drops them. Each change rebuilds the lookup tables off to the side and swaps them in
    with one assignment, so a lookup sees the old set or the new one, never a mix.
    """

    def __init__(
        self,
        kube: KubeClient,
        *,
        namespace: str,
        settings: WatchSettings | None = None,
        retry_after_error_s: float = 30.0,
    ) -> None:
        if not namespace:
            raise ValueError("a namespace is required")
        self.namespace = namespace
        self._kube = kube
        self._settings = settings
        self._retry_after_error_s = retry_after_error_s
        # ConfigMap name -> the profiles it holds; the merged view below is derived from it.
        self._by_configmap: dict[str, tuple[ReplicaProfile, ...]] = {}
        self._current = InMemoryProfileSource()
        self._changed = asyncio.Event()
        self._synced = False
        #: ConfigMap name -> one line per entry skipped on its last read.
        self.errors: dict[str, list[str]] = {}
        #: The last failure of the watch itself (RBAC, a missing namespace), None while it runs fine.
        self.last_error: str | None = None

    @property
    def path(self) -> str:
        return f"/api/v1/namespaces/{self.namespace}/configmaps"

    @property
    def synced(self) -> bool:
        """True once the ConfigMaps have been listed at least once."""
        return self._synced

    def by_workload(self, namespace: str, name: str) -> ReplicaProfile | None:
        return self._current.by_workload(namespace, name)

    def by_app(self, namespace: str, app: str) -> ReplicaProfile | None:
        return self._current.by_app(namespace, app)

    def __len__(self) -> int:
        return len(self._current)

    async def wait_until(self, condition: Callable[[ConfigMapProfileSource], bool]) -> None:
        """Return once `condition(self)` holds, checked after every change; bound it with `asyncio.timeout`."""
        while not condition(self):
            await self._changed.wait()

    async def run(self, *, max_cycles: int | None = None) -> None:
        """Watch the profile ConfigMaps: forever, or for `max_cycles` lists (a test seam).

        Temporary failures reconnect inside the watch. A permanent one (no RBAC to list ConfigMaps, a missing
        namespace) keeps the cache serving, is recorded in `last_error`, and is retried after `retry_after_error_s`
        on the client's clock; with `max_cycles` set it ends the run instead.
        """
        params = {"labelSelector": f"{PROFILES_LABEL}=true"}
        while True:
            try:
                async for event in watch_objects(
                    self._kube, self.path, params=params, settings=self._settings, max_cycles=max_cycles
                ):
                    try:
                        self.apply(event)
                    except Exception:  # one unreadable event must not end the watch
                        log.exception("replica profiles: cannot apply a %s event", event.type)
                return
            except K8sError as exc:
                self.last_error = f"watching {self.path}: {exc}"
                log.error("replica profiles: %s; keeping %d cached, retrying in %.0f s", exc, len(self),
                          self._retry_after_error_s)
                if max_cycles is not None:
                    return
                await self._kube.clock.sleep(self._retry_after_error_s)

    def apply(self, event: WatchEvent) -> None:
        """Fold one watch event into the cache (public so tests and other watchers can drive it)."""
        if event.type == "SYNC":
            fresh: dict[str, tuple[ReplicaProfile, ...]] = {}
            errors: dict[str, list[str]] = {}
            for obj in event.items:
                name = _name_of(obj)
                if name is None:
                    continue
                fresh[name], errors[name] = _decode(name, obj)
            self._by_configmap = fresh
            self.errors = errors
            self._synced = True
            self.last_error = None
        elif event.type in ("ADDED", "MODIFIED"):
            name = _name_of(event.object)
            if name is None:
                return
            self._by_configmap[name], self.errors[name] = _decode(name, event.object)
        elif event.type == "DELETED":
            name = _name_of(event.object)
            if name is None:
                return
            self._by_configmap.pop(name, None)
            self.errors.pop(name, None)
        else:
            return
        self._current = _merge(self._by_configmap.values())
        log.debug("replica profiles: %d from %d ConfigMaps", len(self._current), len(self._by_configmap))
        # Wake the waiters, then arm a fresh event for the next change.
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


def _name_of(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    if not isinstance(name, str) or not name:
        log.warning("replica profiles: skipping a ConfigMap without a name")
        return None
    return name


def _decode(configmap: str, obj: Mapping[str, Any]) -> tuple[tuple[ReplicaProfile, ...], list[str]]:
    """The profiles one ConfigMap holds, and one line per entry skipped (each logged)."""
    data = obj.get("data") or {}
    profiles: tuple[ReplicaProfile, ...] = ()
    if not isinstance(data, Mapping):
        errors = ["data: not a map"]
    else:
        # The API server only stores string values; anything else is not a profile this reader can trust.
        strings = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
        errors = [f"{str(k)[:80]}: not a string value" for k in data if k not in strings]
        source, decode_errors = InMemoryProfileSource.from_configmap_data(strings)
        errors += decode_errors
        # Keys that decoded are `namespace.name` with a dot-free namespace (a DNS label), so the first dot splits.
        halves = (key.partition(".") for key in sorted(strings))
        found = (source.by_workload(ns, name) for ns, _, name in halves)
        profiles = tuple(p for p in found if p is not None)
    for line in errors:
        log.warning("replica profiles: ConfigMap %s: skipping %s", configmap, line)
    return profiles, errors


def _merge(groups: Iterable[tuple[ReplicaProfile, ...]]) -> InMemoryProfileSource:
    # While the controller reshards, a workload can sit in two ConfigMaps for a moment: the newer profile wins.
    ordered = sorted((p for group in groups for p in group), key=lambda p: p.generated_at)
    return InMemoryProfileSource(ordered)
