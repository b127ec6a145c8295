"""The workload cache: the Deployments labeled for aihpa and the Deployments an HPA targets, kept by two watches.

Each watch lists, then watches, and lists again after a 410 or a failure (`aihpa.k8s.watching`); the cache is
synced (and the controller ready) while both have a complete list behind them. An object that cannot be handled is
reported (log, metric, a Warning Event queued) and keeps its last known state: one bad object never stops the
watch or the others. A new workload's history is backfilled from the metrics source when it can, and so is the
history of a workload that changes the metric it scales on (`aihpa/metric`: the old values are in another unit). A
workload that names a metric the source does not serve gets a Warning Event naming the ones it does; the source
answers None for it, so its replicas are held (never scaled down) until the name or the controller's queries change.

Sharded, a cache keeps only the Deployments its `owns(namespace, name)` predicate claims: the others are neither
parsed nor kept, so a shard's memory follows its own share of the cluster. When the shard's share changes at run time,
`reconsider()` drops what it no longer owns and lists again to pick up what it now does.

It reads the API and the metrics source; it never writes to the cluster (Events go to the outbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import numpy as np

from aihpa.annotations import parse_policy
from aihpa.clock import Clock
from aihpa.controller.coexist import target_of
from aihpa.controller.outbox import EventOutbox
from aihpa.controller.settings import ControllerSettings
from aihpa.controller.workload import Workload, object_key, pod_cpu, slim_deployment
from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import K8sError
from aihpa.k8s.events import ObjectRef
from aihpa.k8s.watching import WatchEvent, watch_objects
from aihpa.metrics.history import History
from aihpa.metrics.source import MetricsSource, WorkloadRef, known_metrics
from aihpa.observability import ControllerMetrics

__all__ = ["WorkloadCache"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_DEPLOYMENTS, _HPAS = "deployments", "hpas"


class WorkloadCache:
    """What the controller knows of the cluster: `workloads` by namespace/name, and `hpa_targets`."""

    def __init__(
        self,
        *,
        client: KubeClient,
        metrics_source: MetricsSource,
        history: History,
        settings: ControllerSettings,
        clock: Clock,
        metrics: ControllerMetrics,
        outbox: EventOutbox,
        owns: Callable[[str, str], bool] | None = None,
    ) -> None:
        """`owns(namespace, name)` says whether this controller (its shard) keeps a Deployment; None: all of them.
        It is called for every watch event, so it must be cheap (a hash, not a request)."""
        self.client = client
        self.owns = owns
        self.metrics_source = metrics_source
        self.history = history
        self.settings = settings
        self.clock = clock
        self.metrics = metrics
        self.outbox = outbox
        self.workloads: dict[str, Workload] = {}
        self.hpa_targets: set[str] = set()
        self._synced = {_DEPLOYMENTS: False, _HPAS: False}
        # why a watch's cache is not backed by a complete list (shown on /readyz)
        self._unsynced = {_DEPLOYMENTS: "waiting for the first list", _HPAS: "waiting for the first list"}
        self._synced_event = asyncio.Event()
        self._watch_seen = asyncio.Condition()
        self._tasks: set[asyncio.Task[None]] = set()
        self._backfills: set[asyncio.Task[None]] = set()
        self._deployment_watch: asyncio.Task[None] | None = None

    # ---- readiness ----------------------------------------------------------------------------------------------

    @property
    def synced(self) -> bool:
        return all(self._synced.values())

    def ready(self) -> tuple[bool, str]:
        if self.synced:
            return True, "caches synced"
        return False, "; ".join(f"{name}: {self._unsynced[name]}" for name, ok in self._synced.items() if not ok)

    async def wait_synced(self, *, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s):
            await self._synced_event.wait()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float) -> None:
        async with asyncio.timeout(timeout_s), self._watch_seen:
            await self._watch_seen.wait_for(predicate)

    async def wait_backfills(self, *, timeout_s: float) -> None:
        """Wait (real time, bounded) for the history backfills started so far to end (each is best effort)."""
        pending = list(self._backfills)
        if pending:
            async with asyncio.timeout(timeout_s):
                await asyncio.wait(pending)

    # ---- the watches --------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start both watches (tasks this cache owns until `stop`)."""
        ns = self.settings.watch_namespace
        hpas = (f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers" if ns
                else "/apis/autoscaling/v2/horizontalpodautoscalers")
        self.start_deployment_watch()
        self._spawn(self._watch(hpas, {}, self.on_hpa, _HPAS), name="aihpa-watch-hpas")

    def start_deployment_watch(self) -> None:
        ns = self.settings.watch_namespace
        deployments = f"/apis/apps/v1/namespaces/{ns}/deployments" if ns else "/apis/apps/v1/deployments"
        self._deployment_watch = self._spawn(
            self._watch(deployments, {"labelSelector": self.settings.label_selector}, self.on_deployment,
                        _DEPLOYMENTS, transform=self._for_the_cache), name="aihpa-watch-deployments")

    async def reconsider(self) -> int:
        """Ownership changed (`owns` now answers otherwise): drop the workloads no longer owned and list the
        Deployments again, so the ones now owned are parsed. Returns how many were dropped. The cache stays synced
        meanwhile: what it still holds is still true."""
        dropped = [key for key, w in self.workloads.items() if not self._owned(w.ref.namespace, w.ref.name)]
        for key in dropped:
            self._drop(key)
        task = self._deployment_watch
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            self.start_deployment_watch()
        return len(dropped)

    def _owned(self, namespace: str, name: str) -> bool:
        return self.owns is None or self.owns(namespace, name)

    def _for_the_cache(self, obj: dict[str, Any]) -> dict[str, Any]:
        """What the watch hands on of a Deployment: the slim object with its pods' CPU (read once, then dropped);
        of another shard's, its name only. An object too odd to slim is handed on whole: its handler reports it (the
        watch itself must never fail on one object)."""
        try:
            meta = obj.get("metadata")
            if self.owns is not None and isinstance(meta, dict) and not self._owned(str(meta.get("namespace")),
                                                                                   str(meta.get("name"))):
                return {"metadata": {"namespace": meta.get("namespace"), "name": meta.get("name")}}
            return slim_deployment(obj, pod_cpu=True)
        except Exception:
            return obj

    async def stop(self) -> None:
        """Cancel the watches and any backfill still running, and wait for them."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()

    def _spawn(self, job: Coroutine[Any, Any, None], *, name: str | None = None) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(job, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _watch(
        self, path: str, params: dict[str, Any], handle: Callable[[WatchEvent], None], name: str,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    ) -> None:
        async def list_failed(exc: K8sError) -> None:
            await self._unsync(name, f"list failed: {exc}")

        backoff = self.settings.watch.backoff
        failures = 0
        while True:
            try:
                async for event in watch_objects(self.client, path, params=params, settings=self.settings.watch,
                                                 on_list_error=list_failed, transform=transform):
                    failures = 0
                    await self.dispatch(event, handle, name, path)
            except K8sError as exc:  # permanent (e.g. RBAC): not ready while it lasts, and try again later
                logger.error("watch %s stopped: %s", path, exc)
                await self._unsync(name, f"watch stopped: {exc}")
                await self.client.clock.sleep(backoff[min(failures, len(backoff) - 1)] if backoff else 1.0)
                failures += 1

    async def dispatch(self, event: WatchEvent, handle: Callable[[WatchEvent], None], name: str, path: str) -> None:
        """Hand one watch event to its handler; a list handled to its end marks that watch synced."""
        try:
            handle(event)
        except Exception as exc:  # the handlers isolate each object; this is the last line
            logger.exception("watch %s: cannot handle %s event", path, event.type)
            self.metrics.errors.labels(kind="watch-handler").inc()
            if event.type == "SYNC":
                await self._unsync(name, f"handling the list failed: {type(exc).__name__}")
        else:
            if event.type == "SYNC":
                self._synced[name] = True
                self._unsynced[name] = ""
                if self.synced:
                    self._synced_event.set()
        async with self._watch_seen:
            self._watch_seen.notify_all()

    async def _unsync(self, name: str, why: str) -> None:
        self._synced[name] = False
        self._unsynced[name] = why[:200]
        async with self._watch_seen:
            self._watch_seen.notify_all()

    # ---- the handlers -------------------------------------------------------------------------------------------

    def on_deployment(self, event: WatchEvent) -> None:
        """Update the cache from one watch event; an object that cannot be handled is reported and skipped."""
        if event.type == "SYNC":
            keep = set()
            for obj in event.items:
                # a failed object keeps what the cache knew of it: it is neither dropped nor half-updated
                keep.add(self._isolated("Deployment", obj, self._upsert) or object_key(obj))
            for key in [k for k in self.workloads if k not in keep]:
                self._drop(key)
        elif event.type == "DELETED":
            self._isolated("Deployment", event.object, lambda obj: self._drop(object_key(obj)))
        else:
            self._isolated("Deployment", event.object, self._upsert)

    def on_hpa(self, event: WatchEvent) -> None:
        """Keep the Deployments an HPA scales (`coexist.target_of`)."""
        if event.type == "SYNC":
            self.hpa_targets = {t for t in (self._isolated("HorizontalPodAutoscaler", h, target_of)
                                             for h in event.items) if t}
        elif event.type == "DELETED":
            t = self._isolated("HorizontalPodAutoscaler", event.object, target_of)
            if t:
                self.hpa_targets.discard(t)
        else:
            t = self._isolated("HorizontalPodAutoscaler", event.object, target_of)
            if t:
                self.hpa_targets.add(t)

    def _isolated(self, kind: str, obj: dict[str, Any], handle: Callable[[dict[str, Any]], T]) -> T | None:
        """`handle(obj)`, or None when it raises: logged, counted, and a Warning Event on that object."""
        try:
            return handle(obj)
        except Exception as exc:
            key = object_key(obj)
            reason = type(exc).__name__
            logger.exception("%s %s: cannot handle it, left as it was", kind, key)
            self.metrics.object_errors.labels(kind=kind, reason=reason).inc()
            with contextlib.suppress(Exception):  # an object too broken to name gets no Event, only the log
                api_version = "apps/v1" if kind == "Deployment" else "autoscaling/v2"
                ref = ObjectRef.of({**obj, "apiVersion": api_version, "kind": kind})
                if ref.name:
                    self.outbox.add(ref, "Warning", "HandlingFailed",
                                    f"aihpa cannot handle this {kind} ({reason}: {str(exc)[:200]}); "
                                    "it keeps its last known state")
            return None

    def _upsert(self, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        if self.owns is not None and not self.owns(str(meta.get("namespace")), str(meta.get("name"))):
            # another shard's: not parsed, not kept (and dropped if it was ours before)
            key = f"{meta.get('namespace')}/{meta.get('name')}"
            if key in self.workloads:
                self._drop(key)
            return key
        parsed = parse_policy(meta.get("annotations") or {}, defaults=self.settings.defaults)
        ref = WorkloadRef(namespace=str(meta.get("namespace")), name=str(meta.get("name")),
                          selector=(obj.get("spec") or {}).get("selector") or {}, metric=parsed.policy.metric)
        w = self.workloads.get(ref.key)
        if w is not None and w.metric != ref.metric:
            # another metric: its history, forecasts and calibration are in another unit; start again from the source
            logger.info("%s: now scaling on %s (was %s)", ref.key, ref.metric or "CPU", w.metric or "CPU")
            self.history.forget(ref.key)
            self.workloads.pop(ref.key)
            w = None
        # the pods' CPU is read off the full object once; the cache keeps only the slim part of it
        request, limit, slim = pod_cpu(obj, "requests"), pod_cpu(obj, "limits"), slim_deployment(obj)
        if w is None:
            w = Workload(ref=ref, obj=slim, parsed=parsed, request_cores=request, limit_cores=limit)
            self.workloads[ref.key] = w
            self._backfill(w)
        else:
            w.ref, w.obj, w.parsed, w.request_cores, w.limit_cores = ref, slim, parsed, request, limit
        unknown = self._unknown_metric(ref.metric)
        warnings = parsed.warnings if unknown is None else (*parsed.warnings, unknown)
        if warnings != w.warned:
            w.warned = warnings
            for text in warnings:
                # each warning already says what it falls back to
                self.outbox.about(w, "Warning", "UnknownMetric" if text is unknown else "InvalidAnnotation", text)
        return ref.key

    def _unknown_metric(self, metric: str | None) -> str | None:
        """The warning for a metric the source does not serve (None when it does, or for CPU)."""
        known = known_metrics(self.metrics_source)
        if metric is None or metric in known:
            return None
        names = ", ".join(sorted(known)[:8]) if known else "none: the controller has no --metric-query"
        return (f"aihpa/metric {metric!r} is not one of the controller's queries (known: {names}); "
                "replicas held until it is")

    def _drop(self, key: str) -> None:
        w = self.workloads.pop(key, None)
        self.history.forget(key)
        if w is not None:
            self.metrics.forget(w.ref.namespace, w.ref.name)

    # ---- history backfill ---------------------------------------------------------------------------------------

    def _backfill(self, w: Workload) -> None:
        """Rebuild a new workload's history from the metrics source when it can (Prometheus range queries)."""
        if w.key in self.history or not hasattr(self.metrics_source, "history"):
            return
        task = self._spawn(self._backfill_from_source(w.ref))
        self._backfills.add(task)
        task.add_done_callback(self._backfills.discard)

    async def _backfill_from_source(self, ref: WorkloadRef) -> None:
        step = self.settings.step_s
        end = math.floor(self.clock.now() / step) * step - step
        start = end - step * (self.settings.history_capacity - 1)
        try:
            _, values = await self.metrics_source.history(ref, start=start, end=end, step_s=step)  # type: ignore[attr-defined]
        except Exception as exc:  # a backfill is best effort: the history then starts empty
            logger.info("%s: no history backfill: %s", ref.key, exc)
            return
        finite = np.flatnonzero(np.isfinite(values))
        if finite.size and ref.key not in self.history:
            first = int(finite[0])
            self.history.backfill(ref.key, start=start + first * step, values=values[first:])
