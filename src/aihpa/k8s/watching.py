"""Layered watch: reconnect forever > list-then-watch (410 Gone relists) > one watch stream with inactivity timeout.

`watch_objects` yields `WatchEvent`s for one resource collection. After every (re)list it yields a `SYNC` event with
the complete list, so a consumer's cache can drop objects deleted while the watch was down; between lists it yields
ADDED / MODIFIED / DELETED as they come. Bookmarks only move the resourceVersion. Temporary errors back off and
reconnect; `max_cycles` bounds the outer loop for tests.

A list is read in pages (`page_size`, the API server's limit/continue), and a consumer that keeps only part of each
object passes `transform`, applied to every listed object as its page arrives and to every event's object: a list of
tens of thousands of Deployments then never stands in memory whole (each full object is ~17 KB of Python objects).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import GoneError, K8sError, TemporaryError, error_from_response

__all__ = ["WatchEvent", "WatchSettings", "watch_objects"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WatchSettings:
    # server-side timeout of each watch request (the API server ends the stream; we re-watch from the last version)
    timeout_seconds: int = 300
    # no line (event or bookmark) for this long means a dead connection
    inactivity_timeout: float = 360.0
    # pause before reconnecting after a temporary failure, growing to the last value
    backoff: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    # objects per list request (limit/continue); 0: the whole list in one response
    page_size: int = 500


@dataclass(frozen=True)
class WatchEvent:
    type: str  # SYNC, ADDED, MODIFIED, DELETED
    object: dict[str, Any] = field(default_factory=dict)
    # for SYNC: every object in the collection
    items: tuple[dict[str, Any], ...] = ()


async def watch_objects(
    client: KubeClient,
    path: str,
    *,
    params: Mapping[str, Any] | None = None,
    settings: WatchSettings | None = None,
    max_cycles: int | None = None,
    on_list_error: Callable[[K8sError], Awaitable[None]] | None = None,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
) -> AsyncIterator[WatchEvent]:
    """Events of the collection at `path` (e.g. /apis/apps/v1/deployments), forever or for `max_cycles` lists.

    `on_list_error` hears of every list that failed (before the retry or the raise), so a consumer can stop
    claiming a synced cache while no complete list backs it. `transform` maps each object before it is handed on
    (the part a consumer keeps).
    """
    cfg = settings or WatchSettings()
    base = dict(params or {})
    cycles = 0
    failures = 0
    while max_cycles is None or cycles < max_cycles:
        cycles += 1
        try:
            try:
                version, items = await _list(client, path, base, page_size=cfg.page_size, transform=transform)
            except K8sError as exc:
                if on_list_error is not None:
                    await on_list_error(exc)
                raise
            yield WatchEvent(type="SYNC", items=items)
            failures = 0
            while True:
                async for raw in client.stream(
                    path,
                    params={**base, "resourceVersion": version, "allowWatchBookmarks": True,
                            "timeoutSeconds": cfg.timeout_seconds},
                    inactivity_timeout=cfg.inactivity_timeout,
                ):
                    kind = raw.get("type")
                    obj = raw.get("object") or {}
                    if kind == "ERROR":
                        raise error_from_response(status=int(obj.get("code") or 500), body=obj, what=f"WATCH {path}")
                    version = str((obj.get("metadata") or {}).get("resourceVersion", version))
                    if kind == "BOOKMARK":
                        continue
                    if kind in ("ADDED", "MODIFIED", "DELETED"):
                        yield WatchEvent(type=kind, object=obj if transform is None else transform(obj))
                # the server closed the stream (timeoutSeconds): watch again from where we are
        except GoneError:
            logger.info("watch %s: resourceVersion too old, listing again", path)
        except TemporaryError as exc:
            wait = cfg.backoff[min(failures, len(cfg.backoff) - 1)]
            failures += 1
            logger.warning("watch %s: %s; reconnecting in %.1fs", path, exc, wait)
            await client.clock.sleep(wait)
        except K8sError:
            raise


async def _list(
    client: KubeClient,
    path: str,
    params: Mapping[str, Any],
    *,
    page_size: int,
    transform: Callable[[dict[str, Any]], dict[str, Any]] | None,
) -> tuple[str, tuple[dict[str, Any], ...]]:
    """The whole collection, page by page, and the resourceVersion to watch from: the first page's (the API server
    serves the later pages from that same snapshot, so the watch misses nothing that changed meanwhile)."""
    items: list[dict[str, Any]] = []
    version: str | None = None
    token: str | None = None
    while True:
        page_params = dict(params)
        if page_size > 0:
            page_params["limit"] = page_size
        if token:
            page_params["continue"] = token
        page = await client.request("GET", path, params=page_params)
        meta = page.get("metadata") or {}
        if version is None:
            version = str(meta.get("resourceVersion", ""))
        found = page.get("items") or []
        items.extend(found if transform is None else (transform(o) for o in found))
        del page, found  # a page's full objects go before the next page is read
        token = meta.get("continue") or None
        if not token or page_size <= 0:
            return version, tuple(items)
