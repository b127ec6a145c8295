"""The controller: collect -> forecast -> decide -> scale, for every Deployment labeled `aihpa/enabled=true`.

One cycle every sync period (15 s by default):

1. read each workload's total CPU usage from the metrics source into its `History` (one point per model step);
2. at each new model step, forecast every workload with enough history in ONE batched call (in a worker thread,
   never on the event loop) and decide with `aihpa.scaling.PredictivePolicy` (policy from the annotations);
   between model steps only the reactive HPA recommendation may scale up (a safety net; never down);
3. if this replica leads, patch the scale subresource when the count changes (never in dry-run), with an Event that
   says why, the `aihpa/status` annotation, and Prometheus metrics;
4. publish per-workload replica profiles (sharded ConfigMaps) for the webhook's initial forecast.

Units: cores throughout (usage, forecasts, the pods' CPU request per pod).
A missing metric never causes a scale-down; a non-finite forecast falls back to reactive; a
Deployment that a HorizontalPodAutoscaler also targets is left alone, with a Warning Event.

Composition layer: it does I/O through the adapters and holds no scaling math of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import inspect
import json
import logging
import math
import multiprocessing
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from aihpa.annotations import ANNOTATION_STATUS, ParsedPolicy, PolicyDefaults, parse_policy
from aihpa.clock import Clock, SystemClock
from aihpa.forecast.forecaster import BiLSTMForecaster, Forecaster
from aihpa.forecast.input_pipeline import Series
from aihpa.k8s.client import MERGE_PATCH, KubeClient
from aihpa.k8s.errors import K8sError, NotFoundError
from aihpa.k8s.events import EventRecorder, ObjectRef
from aihpa.k8s.leader import LeaderElector, LeaseSettings
from aihpa.k8s.scale import update_scale
from aihpa.k8s.watching import WatchEvent, WatchSettings, watch_objects
from aihpa.lifecycle import (
    Challenge,
    DriftMonitor,
    LifecycleSettings,
    challenge,
    challenge_from_checkpoint,
    limit_worker,
)
from aihpa.metrics.history import History
from aihpa.metrics.quantity import parse_cpu
from aihpa.metrics.source import MetricsSource, WorkloadRef
from aihpa.observability import ControllerMetrics
from aihpa.profiles import ReplicaProfile
from aihpa.scaling import (
    Behavior,
    Calibration,
    Decision,
    Observation,
    PredictivePolicy,
    PredictiveState,
    ReactiveState,
    record_scale,
)

__all__ = ["Controller", "ControllerSettings", "CycleReport", "WorkloadDecision"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_NUMBERS = re.compile(r"[-+]?\d[\d.,]*%?")

PROFILE_SLOT_S = 900
PROFILE_SLOTS = 86400 // PROFILE_SLOT_S


@dataclass(frozen=True)
class ControllerSettings:
    """How the controller runs (the Helm chart's values map onto these)."""

    # seconds between cycles (the HPA's --horizontal-pod-autoscaler-sync-period)
    sync_period_s: float = 15.0
    # seconds per model step: the history's resolution and the forecast's step
    step_s: float = 60.0
    # the controller's own namespace: its Lease and the published profiles live there
    namespace: str = "aihpa"
    # watch one namespace only (None: all namespaces)
    watch_namespace: str | None = None
    label_selector: str = "aihpa/enabled=true"
    # this replica's name in the leader election
    identity: str = field(default_factory=socket.gethostname)
    leader_election: bool = True
    lease_name: str = "aihpa-controller"
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    defaults: PolicyDefaults = field(default_factory=PolicyDefaults)
    # the share of saturated steps to aim for (the one risk knob)
    risk: float = 0.01
    # steps of history kept per workload (a day at 60 s plus the model's window)
    history_capacity: int = 1536
    # persist the history here and restore it on start (e.g. on a PVC); None: memory only
    history_file: str | None = None
    # how often (seconds) the leader publishes replica profiles and persists the history
    publish_every_s: float = 300.0
    profile_shards: int = 4
    watch: WatchSettings = field(default_factory=WatchSettings)
    # run cycles and election rounds on the clock (False: the owner calls run_cycle() and elector.step(), e.g. a
    # test stepping a virtual clock)
    run_loop: bool = True
    # decide and report for every workload, never patch a scale (as if every workload said aihpa/mode: dry-run)
    dry_run: bool = False
    # API writes (scale, status, Events) in flight at once
    api_concurrency: int = 32
    # model life cycle: challenge the champion with a fine-tuned challenger every `retrain_every_s` (and at once on
    # drift); None: the model never changes while the controller runs
    lifecycle: LifecycleSettings | None = None
    retrain_every_s: float = 6 * 3600.0
    # the aihpa/status annotation is rewritten when the replicas, mode or kind of decision change, else at most
    # this often (seconds): one write per workload per model step would load the API server for nothing
    status_every_s: float = 300.0


@dataclass(frozen=True)
class WorkloadDecision:
    key: str
    current: int
    decision: Decision
    reactive: int
    usage: float | None
    applied: bool
    mode: str


@dataclass(frozen=True)
class CycleReport:
    time: float
    decisions: tuple[WorkloadDecision, ...]
    forecasted: int
    skipped: dict[str, str]


@dataclass
class _Pending:
    """A decision made, not yet carried out."""

    w: _Workload
    policy: PredictivePolicy
    decision: Decision
    kind: str
    reactive: int
    usage: float | None
    current: int
    mode: str

    def result(self, *, applied: bool) -> WorkloadDecision:
        return WorkloadDecision(key=self.w.key, current=self.current, decision=self.decision, reactive=self.reactive,
                                usage=self.usage, applied=applied, mode=self.mode)


@dataclass
class _Workload:
    ref: WorkloadRef
    obj: dict[str, Any]
    parsed: ParsedPolicy
    request_cores: float | None
    state: PredictiveState = field(default_factory=PredictiveState)
    warned: tuple[str, ...] = ()
    hpa_warned: bool = False
    last_step_decided: int | None = None
    forecast: np.ndarray | None = None  # [horizon, quantiles] in cores
    last_forecast: float | None = None  # the median for the next step, from the last forecast
    profile: list[int] = field(default_factory=lambda: [-1] * PROFILE_SLOTS)
    status: str = ""  # what the last status write said (replicas, mode, kind), and when
    status_time: float = -math.inf

    @property
    def key(self) -> str:
        return self.ref.key

    @property
    def replicas(self) -> int:
        return int((self.obj.get("spec") or {}).get("replicas") or 0)

    @property
    def ready(self) -> int:
        status = self.obj.get("status") or {}
        return int(status.get("readyReplicas") or 0)


def _object_key(obj: object) -> str:
    """namespace/name of a raw object, whatever shape it has."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        meta = {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _pod_cpu(deployment: dict[str, Any], kind: str) -> float | None:
    """The CPU `kind` ("requests" or "limits") of one pod, summed over its containers; None when a container has
    none (no request: utilization is undefined; no limit: no hard cap) or a value does not parse."""
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    total = 0.0
    for c in containers:
        cpu = ((c.get("resources") or {}).get(kind) or {}).get("cpu")
        if cpu is None:
            return None
        try:
            total += parse_cpu(cpu)
        except ValueError:
            return None
    return total if total > 0 else None


class Controller:
    """The aihpa operator loop. Use as `async with Controller(...) as c:`; `run_cycle()` runs one cycle by hand."""

    def __init__(
        self,
        *,
        client: KubeClient,
        metrics: MetricsSource,
        forecaster: Forecaster,
        settings: ControllerSettings | None = None,
        clock: Clock | None = None,
        observability: ControllerMetrics | None = None,
    ) -> None:
        self.client = client
        self.metrics_source = metrics
        self.forecaster = forecaster
        self.settings = settings or ControllerSettings()
        self.clock = clock or client.clock or SystemClock()
        self.metrics = observability or ControllerMetrics()
        self.history = History(step_s=self.settings.step_s, capacity=self.settings.history_capacity)
        self.events = EventRecorder(client, instance=self.settings.identity)
        self.workloads: dict[str, _Workload] = {}
        self.hpa_targets: set[str] = set()
        self._synced = {"deployments": False, "hpas": False}
        # why a watch's cache is not backed by a complete list (shown on /readyz)
        self._unsynced = {"deployments": "waiting for the first list", "hpas": "waiting for the first list"}
        self._synced_event = asyncio.Event()
        self._watch_seen = asyncio.Condition()
        self.elector = LeaderElector(
            client,
            namespace=self.settings.namespace,
            name=self.settings.lease_name,
            identity=self.settings.identity,
            settings=self.settings.lease,
        )
        self._tasks: list[asyncio.Task[None]] = []
        self._last_cycle: float | None = None
        self._last_publish: float | None = None
        self._pending: list[tuple[ObjectRef, str, str, str]] = []
        self.drift = DriftMonitor()
        self.challenges: list[Challenge] = []
        self._training: asyncio.Task[None] | None = None
        # after a promotion: the model it replaced, until the new one has a window of live errors to judge by
        self._probation: Forecaster | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._last_challenge: float | None = None
        self._drift_since: float | None = None
        self.metrics.model.labels(version=forecaster.version).set(1)
        if self.settings.history_file:
            self._restore_history(Path(self.settings.history_file))

    # ---- life cycle ---------------------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        return self.elector.is_leader if self.settings.leader_election else True

    @property
    def synced(self) -> bool:
        return all(self._synced.values())

    def healthy(self) -> tuple[bool, str]:
        if self._last_cycle is None:
            return True, "starting"
        late = self.clock.now() - self._last_cycle
        ok = late < 4 * self.settings.sync_period_s + 60
        return ok, f"last cycle {late:.0f}s ago"

    def ready(self) -> tuple[bool, str]:
        if self.synced:
            return True, "caches synced"
        return False, "; ".join(f"{name}: {self._unsynced[name]}" for name, ok in self._synced.items() if not ok)

    async def __aenter__(self) -> Controller:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        ns = self.settings.watch_namespace
        deployments = f"/apis/apps/v1/namespaces/{ns}/deployments" if ns else "/apis/apps/v1/deployments"
        hpas = (f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers" if ns
                else "/apis/autoscaling/v2/horizontalpodautoscalers")
        self._tasks = [
            asyncio.create_task(self._watch(deployments, {"labelSelector": self.settings.label_selector},
                                            self._on_deployment, "deployments"), name="aihpa-watch-deployments"),
            asyncio.create_task(self._watch(hpas, {}, self._on_hpa, "hpas"), name="aihpa-watch-hpas"),
        ]
        if self.settings.run_loop:
            self._tasks.append(asyncio.create_task(self._loop(), name="aihpa-cycle"))
        if self.settings.leader_election and self.settings.run_loop:
            self._tasks.append(asyncio.create_task(self.elector.run(), name="aihpa-leader"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self.settings.history_file:
            self._save_history(Path(self.settings.history_file))

    async def wait_synced(self, *, timeout_s: float = 10.0) -> None:
        """Wait (real time, bounded) until both watches have listed once."""
        async with asyncio.timeout(timeout_s):
            await self._synced_event.wait()

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
        """Wait (real time, bounded) until `predicate()` holds after a watch event (e.g. a Deployment is known)."""
        async with asyncio.timeout(timeout_s), self._watch_seen:
            await self._watch_seen.wait_for(predicate)

    async def _watch(
        self, path: str, params: dict[str, Any], handle: Callable[[WatchEvent], None], name: str
    ) -> None:
        async def list_failed(exc: K8sError) -> None:
            await self._unsync(name, f"list failed: {exc}")

        backoff = self.settings.watch.backoff
        failures = 0
        while True:
            try:
                async for event in watch_objects(self.client, path, params=params, settings=self.settings.watch,
                                                 on_list_error=list_failed):
                    failures = 0
                    await self._dispatch(event, handle, name, path)
            except K8sError as exc:  # permanent (e.g. RBAC): not ready while it lasts, and try again later
                logger.error("watch %s stopped: %s", path, exc)
                await self._unsync(name, f"watch stopped: {exc}")
                await self.client.clock.sleep(backoff[min(failures, len(backoff) - 1)] if backoff else 1.0)
                failures += 1

    async def _dispatch(self, event: WatchEvent, handle: Callable[[WatchEvent], None], name: str, path: str) -> None:
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

    async def _loop(self) -> None:
        period = self.settings.sync_period_s
        while True:
            try:
                await self.run_cycle()
            except Exception:  # the loop must survive anything one cycle throws
                logger.exception("controller cycle failed")
                self.metrics.errors.labels(kind="cycle").inc()
            now = self.clock.now()
            await self.clock.sleep(period - (now % period) if period > 0 else 0)

    # ---- caches -------------------------------------------------------------------------------------------------

    def _on_deployment(self, event: WatchEvent) -> None:
        """Update the cache from one watch event; an object that cannot be handled is reported and skipped."""
        if event.type == "SYNC":
            keep = set()
            for obj in event.items:
                # a failed object keeps what the cache knew of it: it is neither dropped nor half-updated
                keep.add(self._isolated("Deployment", obj, self._upsert) or _object_key(obj))
            for key in [k for k in self.workloads if k not in keep]:
                self._drop(key)
        elif event.type == "DELETED":
            self._isolated("Deployment", event.object, lambda obj: self._drop(_object_key(obj)))
        else:
            self._isolated("Deployment", event.object, self._upsert)

    def _isolated(self, kind: str, obj: dict[str, Any], handle: Callable[[dict[str, Any]], T]) -> T | None:
        """`handle(obj)`, or None when it raises: logged, counted, and a Warning Event on that object."""
        try:
            return handle(obj)
        except Exception as exc:
            key = _object_key(obj)
            reason = type(exc).__name__
            logger.exception("%s %s: cannot handle it, left as it was", kind, key)
            self.metrics.object_errors.labels(kind=kind, reason=reason).inc()
            with contextlib.suppress(Exception):  # an object too broken to name gets no Event, only the log
                api_version = "apps/v1" if kind == "Deployment" else "autoscaling/v2"
                ref = ObjectRef.of({**obj, "apiVersion": api_version, "kind": kind})
                if ref.name:
                    self._pending.append((ref, "Warning", "HandlingFailed",
                                          f"aihpa cannot handle this {kind} ({reason}: {str(exc)[:200]}); "
                                          "it keeps its last known state"))
            return None

    def _upsert(self, obj: dict[str, Any]) -> str:
        meta = obj.get("metadata") or {}
        ref = WorkloadRef(namespace=str(meta.get("namespace")), name=str(meta.get("name")),
                          selector=(obj.get("spec") or {}).get("selector") or {})
        parsed = parse_policy(meta.get("annotations") or {}, defaults=self.settings.defaults)
        w = self.workloads.get(ref.key)
        if w is None:
            w = _Workload(ref=ref, obj=obj, parsed=parsed, request_cores=_pod_cpu(obj, "requests"))
            self.workloads[ref.key] = w
            self._backfill(w)
        else:
            w.ref, w.obj, w.parsed, w.request_cores = ref, obj, parsed, _pod_cpu(obj, "requests")
        if parsed.warnings != w.warned:
            w.warned = parsed.warnings
            for text in parsed.warnings:
                # each warning already says what it falls back to
                self._queue_event(w, "Warning", "InvalidAnnotation", text)
        return ref.key

    def _drop(self, key: str) -> None:
        w = self.workloads.pop(key, None)
        self.history.forget(key)
        if w is not None:
            self.metrics.forget(w.ref.namespace, w.ref.name)

    def _on_hpa(self, event: WatchEvent) -> None:
        def target(hpa: dict[str, Any]) -> str | None:
            ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
            if ref.get("kind") != "Deployment":
                return None
            return f"{(hpa.get('metadata') or {}).get('namespace')}/{ref.get('name')}"

        if event.type == "SYNC":
            self.hpa_targets = {t for t in (self._isolated("HorizontalPodAutoscaler", h, target)
                                             for h in event.items) if t}
        elif event.type == "DELETED":
            t = self._isolated("HorizontalPodAutoscaler", event.object, target)
            if t:
                self.hpa_targets.discard(t)
        else:
            t = self._isolated("HorizontalPodAutoscaler", event.object, target)
            if t:
                self.hpa_targets.add(t)

    def _backfill(self, w: _Workload) -> None:
        """Rebuild a new workload's history from the metrics source when it can (Prometheus range queries)."""
        if w.key in self.history or not hasattr(self.metrics_source, "history"):
            return
        task = asyncio.get_running_loop().create_task(self._backfill_from_source(w.ref))
        self._tasks.append(task)

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

    # ---- the cycle ----------------------------------------------------------------------------------------------

    async def run_cycle(self) -> CycleReport:
        started = asyncio.get_running_loop().time()
        now = self.clock.now()
        step = math.floor(now / self.settings.step_s)
        skipped: dict[str, str] = {}
        active: list[_Workload] = []
        for w in self.workloads.values():
            if w.key in self.hpa_targets:
                skipped[w.key] = "targeted by a HorizontalPodAutoscaler"
                if not w.hpa_warned:
                    w.hpa_warned = True
                    self._queue_event(w, "Warning", "HPAConflict",
                                      "a HorizontalPodAutoscaler also targets this Deployment: aihpa leaves it alone")
                continue
            w.hpa_warned = False
            if w.request_cores is None:
                skipped[w.key] = "no CPU request on its containers"
                if "no-request" not in w.warned:
                    w.warned = (*w.warned, "no-request")
                    self._queue_event(w, "Warning", "NoCPURequest",
                                      "every container needs a CPU request for utilization-based scaling")
                continue
            active.append(w)

        usage = await self.metrics_source.usage([w.ref for w in active]) if active else {}
        for w in active:
            u = usage.get(w.key)
            self.history.observe(w.key, now, u)
            if u is not None:
                self.metrics.usage.labels(w.ref.namespace, w.ref.name).set(u)

        new_step = [w for w in active if w.last_step_decided != step]
        forecasted = await self._forecast(new_step, now=now) if new_step else 0

        pending = [self._decide(w, usage=usage.get(w.key), now=now, step=step) for w in active]
        if self.is_leader:
            decisions = await self._bounded(self._actuate(p, now=now) for p in pending)
            await self._flush_events()
            self._maybe_challenge(now)
            if self._last_publish is None or now - self._last_publish >= self.settings.publish_every_s:
                self._last_publish = now
                await self.publish_profiles(now=now)
                if self.settings.history_file:
                    self._save_history(Path(self.settings.history_file))
        else:
            decisions = [p.result(applied=False) for p in pending]
            self._pending.clear()  # standbys do not speak for the cluster
        self.metrics.leader.set(1 if self.is_leader else 0)
        self.metrics.workloads.labels(state="active").set(len(active))
        self.metrics.workloads.labels(state="skipped").set(len(skipped))
        self.metrics.cycle.observe(asyncio.get_running_loop().time() - started)
        self._last_cycle = now
        return CycleReport(time=now, decisions=tuple(decisions), forecasted=forecasted, skipped=skipped)

    async def _forecast(self, workloads: Sequence[_Workload], *, now: float) -> int:
        """One batched forecast for every workload with enough history, off the event loop."""
        histories, chosen, ends = [], [], []
        for w in workloads:
            series = self.history.series(w.key, now=now)
            w.forecast = None
            if series is None or np.isfinite(series.values).sum() < self.forecaster.min_history:
                continue
            if w.forecast is None and w.last_forecast is not None:
                # what the model said one step ago about the step that just closed
                self.drift.observe(forecast=w.last_forecast, actual=float(series.values[-1]))
            histories.append(series.values[-self.forecaster.context:])
            ends.append(series.end)
            chosen.append(w)
        self._check_probation()
        if not chosen:
            return 0
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        try:
            out = await loop.run_in_executor(
                None, lambda: self.forecaster.predict(histories, end_times=ends, step_s=self.settings.step_s)
            )
        except Exception:
            logger.exception("forecast failed; deciding reactively this step")
            self.metrics.errors.labels(kind="forecast").inc()
            return 0
        self.metrics.forecast_latency.observe(loop.time() - t0)
        for w, f in zip(chosen, out, strict=True):
            w.forecast = f
            w.last_forecast = float(f[0, int(np.argmin(np.abs(np.asarray(self.forecaster.quantiles) - 0.5)))])
            for qi, q in enumerate(self.forecaster.quantiles):
                label = f"p{round(q * 100)}"
                self.metrics.forecast.labels(w.ref.namespace, w.ref.name, label).set(float(f[0, qi]))
                self.metrics.forecast_peak.labels(w.ref.namespace, w.ref.name, label).set(float(f[:, qi].max()))
        return len(chosen)

    def _policy(self, w: _Workload) -> PredictivePolicy:
        p = w.parsed.policy
        behavior = Behavior(min_replicas=p.min_replicas, max_replicas=p.max_replicas).with_scale_down_stabilization(
            p.scale_down_stabilization_s
        )
        return PredictivePolicy(
            calibration=Calibration(risk=self.settings.risk),
            target_utilization=p.target_utilization,
            request_per_pod=w.request_cores or 1.0,
            tolerance=p.tolerance,
            # the same band holds a predictive count: no change of fewer pods than this share of the current count
            hysteresis=p.tolerance,
            behavior=behavior,
            min_history=self.forecaster.min_history,
            step_s=self.settings.step_s,
        )

    def _decide(self, w: _Workload, *, usage: float | None, now: float, step: int) -> _Pending:
        """The decision for one workload (CPU only, no I/O); `_actuate` carries it out."""
        policy = self._policy(w)
        mode = "dry-run" if self.settings.dry_run else w.parsed.policy.mode
        current = w.replicas
        pods = max(w.ready, 0)
        series = self.history.series(w.key)
        history_len = 0 if series is None else int(np.isfinite(series.values).sum())
        obs = Observation(
            usage=0.0 if usage is None else usage,
            pods_with_metrics=pods,
            current_replicas=current,
            now=now,
            history_len=history_len,
            # without a limit a pod can burst past its request: only a limit makes a usage ceiling
            capacity_per_pod=_pod_cpu(w.obj, "limits") or math.inf,
        )
        reactive = policy.reactive.recommend(obs)[0] if usage is not None else current
        if usage is None:
            decision = Decision(
                replicas=current, recommended=current,
                reason=f"metrics unavailable: holding {current} replicas (never scale down without a metric)",
            )
            kind = "hold"
        elif w.last_step_decided == step:
            # between model steps: the reactive HPA may only add capacity; the forecast decides once per step
            target = min(max(reactive, current), policy.behavior.max_replicas)
            decision = Decision(replicas=target, recommended=reactive,
                                reason=f"reactive safety net between forecast steps: HPA wants {reactive}")
            kind = "reactive-safety" if target > current else "hold"
        else:
            w.last_step_decided = step
            if mode == "reactive":
                decision, rstate = policy.reactive.decide(obs, ReactiveState(behavior=w.state.behavior))
                w.state = replace(w.state, behavior=rstate.behavior)
                kind = "reactive"
            else:
                forecast = None if w.forecast is None else np.asarray(w.forecast, dtype=np.float64)
                decision, w.state = policy.decide(obs, w.state, forecast=forecast, quantiles=self.forecaster.quantiles)
                kind = ("fallback" if "fallback" in decision.reason else
                        "reactive-floor" if "reactive floor" in decision.reason else "forecast")
            w.profile[int((now % 86400) // PROFILE_SLOT_S)] = decision.replicas
        self.metrics.decisions.labels(reason=kind).inc()
        self.metrics.replicas.labels(w.ref.namespace, w.ref.name, "current").set(current)
        self.metrics.replicas.labels(w.ref.namespace, w.ref.name, "desired").set(decision.replicas)
        self.metrics.replicas.labels(w.ref.namespace, w.ref.name, "reactive").set(reactive)
        return _Pending(w=w, policy=policy, decision=decision, kind=kind, reactive=reactive, usage=usage,
                        current=current, mode=mode)

    async def _actuate(self, p: _Pending, *, now: float) -> WorkloadDecision:
        """Leader only: patch the scale when it changes (never in dry-run), then the status annotation."""
        w, decision, current = p.w, p.decision, p.current
        applied = False
        if p.mode != "dry-run" and decision.replicas != current:
            applied = await self._apply(w, decision, current=current, now=now)
            if applied and p.kind == "reactive-safety":
                # the policies record the scale events of their own decisions; this one the rate limits must see too
                w.state = replace(w.state, behavior=record_scale(
                    state=w.state.behavior, behavior=p.policy.behavior, old=current, new=decision.replicas, now=now))
        # between forecast steps a steady workload has nothing new to say: no status write
        if p.kind not in ("hold",) or applied or not w.status:
            scorings = p.policy.scorings
            candidate = scorings[w.state.choice].label if 0 <= w.state.choice < len(scorings) else None
            await self._write_status(w, decision, reactive=p.reactive, usage=p.usage, now=now, mode=p.mode,
                                     candidate=candidate if p.mode != "reactive" else None)
        return p.result(applied=applied)

    async def _apply(self, w: _Workload, decision: Decision, *, current: int, now: float) -> bool:
        try:
            result = await update_scale(self.client, namespace=w.ref.namespace, name=w.ref.name,
                                        decide=lambda _scale: decision.replicas, expected=current)
        except NotFoundError:
            return False
        except K8sError as exc:
            logger.warning("%s: scale to %d failed: %s", w.key, decision.replicas, exc)
            self.metrics.errors.labels(kind="scale").inc()
            return False
        if not result.changed:
            return False
        (w.obj.setdefault("spec", {}))["replicas"] = result.after
        self.metrics.scalings.labels(direction="up" if result.after > result.before else "down").inc()
        self._queue_event(w, "Normal", "Scaled", f"{result.before} -> {result.after}: {decision.reason}")
        return True

    async def _write_status(
        self, w: _Workload, decision: Decision, *, reactive: int, usage: float | None, now: float, mode: str,
        candidate: str | None = None,
    ) -> None:
        forecast: dict[str, Any] | None = None
        if w.forecast is not None:
            f = np.asarray(w.forecast, dtype=np.float64)
            forecast = {
                "horizon_s": int(f.shape[0] * self.settings.step_s),
                "next": {f"p{round(q * 100)}": round(float(f[0, i]), 4)
                         for i, q in enumerate(self.forecaster.quantiles)},
                "peak": {f"p{round(q * 100)}": round(float(f[:, i].max()), 4)
                         for i, q in enumerate(self.forecaster.quantiles)},
            }
        status = {
            "replicas": decision.replicas,
            "reactive": reactive,
            "usage": None if usage is None else round(usage, 4),
            "forecast": forecast,
            "reason": decision.reason,
            # the candidate the predictive policy acts on (the calibrated HPA, the model's forecast, the last usage)
            "candidate": candidate,
            "mode": mode,
            "model": self.forecaster.version,
        }
        # the reason's wording counts, its numbers (utilization, forecast) do not: they move every step
        key = json.dumps([decision.replicas, reactive, mode, decision.limited_by, _NUMBERS.sub("#", decision.reason)])
        if key == w.status and now - w.status_time < self.settings.status_every_s:
            return
        stamped = json.dumps({**status, "time": datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")},
                             separators=(",", ":"), sort_keys=True)
        try:
            await self.client.request(
                "PATCH", f"/apis/apps/v1/namespaces/{w.ref.namespace}/deployments/{w.ref.name}",
                body={"metadata": {"annotations": {ANNOTATION_STATUS: stamped}}}, content_type=MERGE_PATCH,
            )
            w.status, w.status_time = key, now
        except K8sError as exc:
            logger.info("%s: status not written: %s", w.key, exc)

    def _queue_event(self, w: _Workload, type_: str, reason: str, message: str) -> None:
        ref = ObjectRef.of({**w.obj, "apiVersion": "apps/v1", "kind": "Deployment"})
        self._pending.append((ref, type_, reason, message))

    async def _flush_events(self) -> None:
        # the same Event queued twice in one cycle (an object failing on each of its updates) is sent once
        pending, self._pending = list(dict.fromkeys(self._pending)), []
        await self._bounded(
            self.events.emit(ref, type=type_, reason=reason, message=message)
            for ref, type_, reason, message in pending
        )

    async def _bounded(self, jobs: Iterable[Awaitable[T]]) -> list[T]:
        """Run API calls concurrently, at most `api_concurrency` at a time, results in order."""
        sem = asyncio.Semaphore(self.settings.api_concurrency)
        waiting = list(jobs)

        async def one(job: Awaitable[T]) -> T:
            async with sem:
                return await job

        try:
            return list(await asyncio.gather(*(one(j) for j in waiting)))
        finally:
            # cancelled (shutdown) before some of them started: close those, so none is left never awaited
            for job in waiting:
                if inspect.iscoroutine(job) and inspect.getcoroutinestate(job) == inspect.CORO_CREATED:
                    job.close()

    # ---- model life cycle ---------------------------------------------------------------------------------------

    def _maybe_challenge(self, now: float) -> None:
        """Start a challenge in a worker when one is due (schedule or drift) and none is running."""
        cfg = self.settings.lifecycle
        if cfg is None or not isinstance(self.forecaster, BiLSTMForecaster):
            return
        if self._training is not None and not self._training.done():
            return
        if self._last_challenge is None:
            self._last_challenge = now  # the schedule starts with the controller
        due = now - self._last_challenge >= self.settings.retrain_every_s
        step_s = self.settings.step_s
        if self.drift.drifted:
            # the change began about a monitor window before the monitor saw it
            self._drift_since = (self._drift_since if self._drift_since is not None
                                 else now - self.drift.window * step_s)
        else:
            self._drift_since = None
        # after a change, wait until the held-out window and the steps to train on all show the new behaviour, and
        # leave a refused challenger's data a window to grow before the next try
        window_s = cfg.holdout_steps * step_s
        train_steps = cfg.drift_train_steps or cfg.holdout_steps
        drift_due = (self._drift_since is not None and now - self._drift_since >= window_s + train_steps * step_s
                     and now - self._last_challenge >= window_s)
        if not (due or drift_due):
            return
        series = self._training_series()
        if not series:
            return
        if drift_due and not due and self._drift_since is not None:
            # train on the new behaviour only: the steps since the change, less the held-out tail
            # (never fewer than a few of the model's training windows)
            since = int((now - self._drift_since) // step_s) - cfg.holdout_steps
            model = self.forecaster.config
            cfg = replace(cfg, train_recent_steps=max(since, train_steps, 2 * (model.window + model.horizon + 1)))
        self._last_challenge = now
        created = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")
        self._training = asyncio.create_task(self._challenge(series, cfg, created=created), name="aihpa-challenge")
        self._tasks.append(self._training)

    def _training_series(self) -> list[Series]:
        from aihpa.forecast.input_pipeline import fill_nonfinite

        cfg = self.settings.lifecycle
        assert cfg is not None
        out = []
        for key in self.history:
            s = self.history.series(key)
            if s is None or s.values.shape[0] <= cfg.holdout_steps + self.forecaster.min_history + 16:
                continue
            values = fill_nonfinite(s.values[None, :].astype(np.float32))[0]
            times = s.end - s.step_s * np.arange(values.shape[0] - 1, -1, -1, dtype=np.float64)
            out.append(Series(name=key, values=values, step_s=s.step_s, times=times))
        return out

    async def _challenge(self, series: list[Series], cfg: LifecycleSettings, *, created: str) -> None:
        champion = self.forecaster
        assert isinstance(champion, BiLSTMForecaster)
        loop = asyncio.get_running_loop()
        try:
            if cfg.in_process_worker and champion.path is not None:
                outcome, promoted_path = await loop.run_in_executor(
                    self._worker(cfg), challenge_from_checkpoint, str(champion.path), series, cfg, created
                )
                promoted = None if promoted_path is None else BiLSTMForecaster.from_checkpoint(promoted_path)
            else:
                outcome, promoted = await loop.run_in_executor(
                    None, lambda: challenge(champion, series, cfg, created=created)
                )
        except Exception:
            logger.exception("model challenge failed; keeping %s", champion.version)
            self.metrics.errors.labels(kind="challenge").inc()
            return
        self.challenges.append(outcome)
        self.metrics.challenges.labels(outcome="promoted" if outcome.promoted else "refused").inc()
        logger.info("model challenge: %s", outcome.reason)
        if promoted is not None and self.forecaster is champion:
            self.metrics.model.labels(version=champion.version).set(0)
            self.metrics.model.labels(version=promoted.version).set(1)
            self.forecaster = promoted
            self.drift.reset()  # the champion's live error becomes the bar the new model must keep under
            self._drift_since = None
            self._probation = champion
            for w in self.workloads.values():
                self._queue_event(w, "Normal", "ModelPromoted",
                                  f"forecasting with {promoted.version} (was {champion.version}): {outcome.reason}")

    def _check_probation(self) -> None:
        """Roll a promoted model back when its live error, over a full window, exceeds the one it replaced."""
        previous, cfg = self._probation, self.settings.lifecycle
        if previous is None or cfg is None or len(self.drift.recent) < self.drift.window:
            return
        self._probation = None
        live = float(np.mean(self.drift.recent))
        bar = self.drift.reference
        if bar is None or live <= bar * (1.0 + cfg.margin):
            return
        from aihpa.forecast.checkpoint import set_latest_version

        regressed = self.forecaster
        try:
            set_latest_version(cfg.models_dir, previous.version)
        except Exception as exc:  # the old version stays in memory: serve it even if the pointer cannot move
            logger.warning("rollback: %s", exc)
        self.forecaster = previous
        self.metrics.model.labels(version=regressed.version).set(0)
        self.metrics.model.labels(version=previous.version).set(1)
        self.metrics.challenges.labels(outcome="rolled-back").inc()
        self.drift.reset()
        logger.warning("model %s regressed live (error %.3f vs %.3f): rolled back to %s", regressed.version, live,
                       bar, previous.version)
        for w in self.workloads.values():
            self._queue_event(w, "Warning", "ModelRolledBack",
                              f"{regressed.version} regressed live (relative error {live:.3f} against {bar:.3f}): "
                              f"back to {previous.version}")

    def _worker(self, cfg: LifecycleSettings) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the parent has threads (JAX, the event loop's executor) that fork would copy broken
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=limit_worker, initargs=(cfg.worker_memory_bytes,),
            )
        return self._pool

    async def wait_for_challenge(self, *, timeout_s: float = 120.0) -> Challenge | None:
        """Wait (real time, bounded) for a running challenge to end; its outcome, or None when none ran."""
        if self._training is None:
            return None
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(self._training)
        return self.challenges[-1] if self.challenges else None

    # ---- profiles and persistence -------------------------------------------------------------------------------

    def profiles(self, *, now: float) -> list[ReplicaProfile]:
        """Each workload's replicas by 15-minute slot of the day; unseen slots take the nearest seen one before."""
        out = []
        for w in self.workloads.values():
            seen = [r for r in w.profile if r >= 0]
            if not seen:
                continue
            slots = list(w.profile)
            last = next((r for r in reversed(slots) if r >= 0), seen[0])
            for i, r in enumerate(slots):
                if r < 0:
                    slots[i] = last
                else:
                    last = r
            labels = (w.obj.get("metadata") or {}).get("labels") or {}
            out.append(ReplicaProfile(
                namespace=w.ref.namespace, name=w.ref.name, replicas=tuple(slots),
                model_version=self.forecaster.version, slot_s=PROFILE_SLOT_S,
                app=labels.get("app.kubernetes.io/name") or labels.get("app"), generated_at=now,
            ))
        return out

    async def publish_profiles(self, *, now: float) -> int:
        """Write the profiles into sharded ConfigMaps in the controller's namespace; returns how many were written."""
        from aihpa.profiles import configmaps_for

        profiles = self.profiles(now=now)
        written = 0
        for cm in configmaps_for(profiles, namespace=self.settings.namespace, shards=self.settings.profile_shards):
            path = f"/api/v1/namespaces/{self.settings.namespace}/configmaps"
            name = cm["metadata"]["name"]
            try:
                try:
                    await self.client.request("PUT", f"{path}/{name}", body=cm)
                except NotFoundError:
                    await self.client.request("POST", path, body=cm)
                written += 1
            except K8sError as exc:
                logger.warning("profiles %s not published: %s", name, exc)
                self.metrics.errors.labels(kind="publish").inc()
        return written

    def _save_history(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            tmp.write_text(json.dumps(self.history.snapshot()))
            tmp.replace(path)
        except OSError as exc:
            logger.warning("history not saved to %s: %s", path, exc)

    def _restore_history(self, path: Path) -> None:
        if not path.is_file():
            return
        try:
            self.history = History.restore(json.loads(path.read_text()), capacity=self.settings.history_capacity)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            logger.warning("history at %s not restored: %s", path, exc)

