"""The controller: collect -> forecast -> decide -> scale, for every Deployment labeled `aihpa/enabled=true`.

One cycle every sync period (15 s by default):

1. read each workload's total usage (CPU, or its named metric) from the metrics source into its `History` (one point
   per model step);
2. at each new model step, forecast every workload with enough history in batched calls (`forecasting`, in a
   worker thread, never on the event loop); decide each workload with `aihpa.scaling` (`deciding`): its policy once
   per model step, between model steps the reactive safety net, which only adds capacity;
3. if this replica leads, carry the decisions out (`actuation`: the scale patch, never in dry-run, and the
   `aihpa/status` annotation), send the cycle's Events (`outbox`), start a model challenge when one is due
   (`models`), and now and then publish the replica profiles for the webhook and save the history (`publishing`).

Sharded (`settings.shards` > 1, `sharding`): the replica keeps and acts on its shard's workloads only, leads that
shard's Lease, and every scale write carries the workload's model-step record, so no workload is scaled by two
replicas at one model step.

Units: each workload's own, throughout (usage, forecasts, what a pod may use): cores, or, for a workload that
scales on a named metric (`aihpa/metric`, e.g. requests per second), that metric's unit with the per-pod target as a
pod's capacity; its reasons name the metric and the target. A missing metric never causes a scale-down; a
non-finite forecast falls back to reactive; a Deployment that a HorizontalPodAutoscaler also targets is left alone,
with a Warning Event.

Composition layer: this module wires the parts together and orders the cycle. It holds no scaling rule (those are
`aihpa.scaling`'s) and does I/O only through the adapters (the metrics source, the Kubernetes client).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from aihpa.clock import Clock, SystemClock
from aihpa.controller import coexist, forecasting, process, publishing, sharding
from aihpa.controller.actuation import Actuator
from aihpa.controller.cache import WorkloadCache
from aihpa.controller.deciding import PendingAction, PolicyCache, WorkloadDecision, decide, select, step_grids
from aihpa.controller.models import ModelScheduler
from aihpa.controller.outbox import EventOutbox, bounded
from aihpa.controller.settings import ControllerSettings, check_model_step
from aihpa.controller.workload import Workload
from aihpa.forecast.forecaster import Forecaster
from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import K8sError
from aihpa.k8s.events import EventRecorder
from aihpa.k8s.leader import LeaderElector
from aihpa.lifecycle import Challenge, DriftMonitor
from aihpa.metrics.history import History
from aihpa.metrics.source import MetricsSource
from aihpa.observability import ControllerMetrics
from aihpa.profiles import ReplicaProfile

__all__ = ["Controller", "CycleReport"]

logger = logging.getLogger(__name__)

# the scaling rules count in cores; a workload on a named metric counts in its own unit
_CORES = re.compile(r"\bcores\b")


@dataclass(frozen=True)
class CycleReport:
    time: float
    decisions: tuple[WorkloadDecision, ...]
    forecasted: int
    skipped: dict[str, str]


class Controller:
    """The aihpa operator loop. Use as `async with Controller(...) as c:`; `run_cycle()` runs one cycle by hand.

    Raises `aihpa.errors.UserError` when the forecaster recorded a model step other than `settings.step_s`.
    """

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
        settings = settings or ControllerSettings()
        check_model_step(settings, forecaster)
        self.client = client
        # the model step at which the HPA floors aihpa set were last checked (`_restore_hpa_floors`)
        self._floors_checked: int | None = None
        self.metrics_source = metrics
        self.clock = clock or client.clock or SystemClock()
        self.metrics = observability or ControllerMetrics()
        self._settings = settings
        restored = None
        if settings.history_file:
            restored = publishing.restore_history(Path(settings.history_file), capacity=settings.history_capacity)
        self._history = restored or History(step_s=settings.step_s, capacity=settings.history_capacity)
        self.events = EventRecorder(client, instance=settings.identity)
        self.outbox = EventOutbox(self.events)
        # the shard this replica serves, fixed for its life (`sharding`): its cache keeps that shard's workloads only
        self.shard = sharding.ShardAssignment(shard=settings.shard, shards=settings.shards)
        self.cache = WorkloadCache(client=client, metrics_source=metrics, history=self._history, settings=settings,
                                   clock=self.clock, metrics=self.metrics, outbox=self.outbox,
                                   owns=self.shard.owns if self.shard.sharded else None)
        self.models = ModelScheduler(forecaster, settings=settings, history=self._history,
                                     workloads=self.cache.workloads, metrics=self.metrics, outbox=self.outbox)
        self.actuator: Actuator
        if self.shard.sharded:
            # every scale write carries the step record, and none leaves once the shard's Lease is not provably held
            self.actuator = sharding.FencedActuator(client, settings=settings, metrics=self.metrics,
                                                    outbox=self.outbox, holds=self._holds)
        else:
            self.actuator = Actuator(client, settings=settings, metrics=self.metrics, outbox=self.outbox)
        self.elector = LeaderElector(
            client,
            namespace=settings.namespace,
            name=self.shard.lease_name(settings.lease_name),
            identity=settings.identity,
            settings=settings.lease,
        )
        self.policies = PolicyCache()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_cycle: float | None = None
        self._last_publish: float | None = None
        # sharded: the model step this replica last decided as a standby, and those step decisions (not carried out),
        # so that taking the shard over within that step carries them out instead of waiting for the next step
        self._standby_step: int | None = None
        self._standby_pending: dict[str, PendingAction] = {}
        self.metrics.model.labels(version=forecaster.version).set(1)

    # ---- what it holds ------------------------------------------------------------------------------------------

    @property
    def settings(self) -> ControllerSettings:
        return self._settings

    @settings.setter
    def settings(self, value: ControllerSettings) -> None:
        """New settings take effect from the next cycle (the identity, lease and history size stay as built)."""
        self._settings = value
        for part in (self.cache, self.models, self.actuator):
            part.settings = value

    @property
    def history(self) -> History:
        return self._history

    @property
    def forecaster(self) -> Forecaster:
        """The model in use (a promotion or a rollback changes it)."""
        return self.models.forecaster

    @forecaster.setter
    def forecaster(self, value: Forecaster) -> None:
        self.models.forecaster = value

    @property
    def drift(self) -> DriftMonitor:
        return self.models.drift

    @drift.setter
    def drift(self, value: DriftMonitor) -> None:
        self.models.drift = value

    @property
    def challenges(self) -> list[Challenge]:
        return self.models.challenges

    @property
    def workloads(self) -> dict[str, Workload]:
        return self.cache.workloads

    @property
    def hpa_targets(self) -> set[str]:
        return self.cache.hpa_targets

    # ---- life cycle ---------------------------------------------------------------------------------------------

    @property
    def is_leader(self) -> bool:
        """Whether this replica acts: it leads its Lease (sharded: it can still prove so, `LeaderElector.holds`)."""
        if self.shard.sharded:
            return self._holds()
        return self.elector.is_leader if self.settings.leader_election else True

    def _holds(self) -> bool:
        return self.elector.holds() if self.settings.leader_election else True

    @property
    def synced(self) -> bool:
        return self.cache.synced

    def healthy(self) -> tuple[bool, str]:
        if self._last_cycle is None:
            return True, "starting"
        late = self.clock.now() - self._last_cycle
        ok = late < 4 * self.settings.sync_period_s + 60
        return ok, f"last cycle {late:.0f}s ago"

    def ready(self) -> tuple[bool, str]:
        return self.cache.ready()

    async def __aenter__(self) -> Controller:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self.cache.start()
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
        await self.cache.stop()
        await self.models.stop()
        if self.is_leader and any(w.beside_hpa for w in self.workloads.values()):
            # shutting down: the HPAs whose floor aihpa set get their users' own minimum back
            with contextlib.suppress(K8sError):
                await coexist.restore_all(self.client, namespace=self.settings.watch_namespace)
        if self.settings.history_file:
            publishing.save_history(self._history, Path(self.settings.history_file))

    async def wait_synced(self, *, timeout_s: float = 10.0) -> None:
        """Wait (real time, bounded) until both watches have listed once."""
        await self.cache.wait_synced(timeout_s=timeout_s)

    async def wait_until(self, predicate: Callable[[], bool], *, timeout_s: float = 10.0) -> None:
        """Wait (real time, bounded) until `predicate()` holds after a watch event (e.g. a Deployment is known)."""
        await self.cache.wait_until(predicate, timeout_s=timeout_s)

    async def wait_backfills(self, *, timeout_s: float = 10.0) -> None:
        """Wait (real time, bounded) until the history backfills of the workloads seen so far have ended."""
        await self.cache.wait_backfills(timeout_s=timeout_s)

    async def _loop(self) -> None:
        period = self.settings.sync_period_s
        while True:
            self.elector.changed.clear()
            try:
                await self.run_cycle()
            except Exception:  # the loop must survive anything one cycle throws
                logger.exception("controller cycle failed")
                self.metrics.errors.labels(kind="cycle").inc()
            now = self.clock.now()
            await self._pause(period - (now % period) if period > 0 else 0)

    async def _pause(self, seconds: float) -> None:
        """Wait until the next cycle is due; sharded, also stop waiting when this replica wins (or loses) its
        shard's Lease, so that a standby taking over a dead holder's shard acts at once, not up to a sync period
        later: the shard's workloads are scaled again within lease + retry of the holder's death."""
        if not (self.shard.sharded and self.settings.leader_election):
            await self.clock.sleep(seconds)
            return
        # cleared when the cycle began (`_loop`): a change during the cycle ends the wait at once
        waits = [asyncio.ensure_future(self.clock.sleep(seconds)), asyncio.ensure_future(self.elector.changed.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
            await asyncio.gather(*waits, return_exceptions=True)

    # ---- the cycle ----------------------------------------------------------------------------------------------

    async def run_cycle(self) -> CycleReport:
        started = asyncio.get_running_loop().time()
        settings = self.settings
        now = self.clock.now()
        step = math.floor(now / settings.step_s)
        active, skipped = select(self.workloads.values(), hpa_targets=self.hpa_targets, outbox=self.outbox)

        # asked for the cycle's moment: a source with history (Prometheus) answers for the controller's clock
        usage = await self.metrics_source.usage([w.ref for w in active], at=now) if active else {}
        for w in active:
            u = usage.get(w.key)
            self._history.observe(w.key, now, u)
            if u is not None and w.metric is None:  # the gauge counts cores
                self.metrics.usage.labels(w.ref.namespace, w.ref.name).set(u)

        new_step = [w for w in active if w.last_step_decided != step]
        forecasted = await self._forecast(new_step, now=now) if new_step else 0

        forecaster = self.forecaster
        grids = step_grids(new_step, usage=usage, now=now, step=step, settings=settings, forecaster=forecaster,
                           policies=self.policies)
        pending = [decide(w, usage=usage.get(w.key), now=now, step=step, settings=settings, history=self._history,
                          forecaster=forecaster, metrics=self.metrics, policies=self.policies,
                          grid_state=grids.get(w.key)) for w in active]
        for p in pending:
            _in_its_unit(p)
        if self.is_leader:
            if isinstance(self.actuator, sharding.FencedActuator):
                self.actuator.step = step
                pending = self._took_over(pending, step=step)
            decisions = await self._carry_out(pending, now=now, forecaster=forecaster)
            await self.outbox.flush(concurrency=settings.api_concurrency)
            if self._floors_checked != step:
                self._floors_checked = step
                await self._restore_hpa_floors(active)
            self.models.maybe_challenge(now)
            if self._last_publish is None or now - self._last_publish >= settings.publish_every_s:
                self._last_publish = now
                await self.publish_profiles(now=now)
                if settings.history_file:
                    publishing.save_history(self._history, Path(settings.history_file))
        else:
            decisions = [p.result(applied=False) for p in pending]
            if self.shard.sharded:
                if self._standby_step != step:
                    self._standby_step, self._standby_pending = step, {}
                decided = {w.key for w in new_step}
                self._standby_pending.update((p.workload.key, p) for p in pending if p.workload.key in decided)
            self.outbox.clear()  # standbys do not speak for the cluster
        self.metrics.leader.set(1 if self.is_leader else 0)
        self.metrics.workloads.labels(state="active").set(len(active))
        self.metrics.workloads.labels(state="skipped").set(len(skipped))
        process.after_cycle()  # the young generations, in a process tuned for a controller (`process`)
        self.metrics.cycle.observe(asyncio.get_running_loop().time() - started)
        self.metrics.end_cycle()
        self._last_cycle = now
        return CycleReport(time=now, decisions=tuple(decisions), forecasted=forecasted, skipped=skipped)

    async def _carry_out(self, pending: list[PendingAction], *, now: float,
                         forecaster: Forecaster) -> list[WorkloadDecision]:
        """Carry the decisions out: those that write nothing (most, most cycles) at once; of the others, every scale
        write first, scale-ups first and the largest first (`Actuator.urgency`), then the status writes, as
        concurrent API calls (at most `api_concurrency` at a time). A status or an Event never waits in the rate
        limit ahead of a scale: pods that are short are asked for before anything is reported."""
        out: list[WorkloadDecision | None] = [None] * len(pending)
        busy: list[int] = []
        for i, p in enumerate(pending):
            if self.actuator.quiet(p, now=now, forecaster=forecaster):
                out[i] = self.actuator.settle(p)
            else:
                busy.append(i)
        limit = self.settings.api_concurrency
        busy.sort(key=lambda i: -self.actuator.urgency(pending[i]))  # stable: ties keep the cycle's order
        applied = await bounded((self.actuator.scale(pending[i], now=now) for i in busy), limit=limit)
        done = await bounded((self.actuator.report(pending[i], applied=a, now=now, forecaster=forecaster)
                              for i, a in zip(busy, applied, strict=True)), limit=limit)
        for i, d in zip(busy, done, strict=True):
            out[i] = d
        return [d for d in out if d is not None]

    def _took_over(self, pending: list[PendingAction], *, step: int) -> list[PendingAction]:
        """This cycle's actions, with the step decisions this replica made as a standby earlier in this model step
        in place of this cycle's between-steps ones: a taker carries out the step at once. The fence still refuses
        a workload the dead holder already scaled at this step."""
        stored, self._standby_pending = self._standby_pending, {}
        if self._standby_step != step or not stored:
            return pending
        out = []
        for p in pending:
            step_decision = stored.get(p.workload.key)
            if step_decision is not None and p.decision.replicas == p.current:  # this cycle's would change nothing
                p = replace(step_decision, current=p.current)
            out.append(p)
        return out

    async def _restore_hpa_floors(self, active: list[Workload]) -> None:
        """Once a model step: give back the floor of every HPA whose workload no longer coexists with aihpa."""
        try:
            await coexist.restore_stale(self.client, coexisting={w.key for w in active if w.beside_hpa},
                                        namespace=self.settings.watch_namespace)
        except K8sError as exc:
            logger.warning("HPA floors not checked: %s", exc)
            self.metrics.errors.labels(kind="hpa-floor").inc()

    async def _forecast(self, workloads: list[Workload], *, now: float) -> int:
        """The batched forecast of the workloads at a new model step (`forecasting`); a promoted model on probation
        is judged on the errors this gathers, before it forecasts again."""
        batch = forecasting.gather(workloads, history=self._history, forecaster=self.forecaster, drift=self.drift,
                                   now=now)
        self.models.check_probation()
        return await forecasting.predict(batch, history=self._history, forecaster=self.forecaster,
                                         step_s=self.settings.step_s, metrics=self.metrics)

    # ---- profiles and the model life cycle ----------------------------------------------------------------------

    def profiles(self, *, now: float) -> list[ReplicaProfile]:
        """Each workload's replicas by 15-minute slot of the day; unseen slots take the nearest seen one before."""
        return publishing.profiles(self.workloads.values(), model_version=self.forecaster.version, now=now)

    async def publish_profiles(self, *, now: float) -> int:
        """Write the profiles into sharded ConfigMaps in the controller's namespace; returns how many were written."""
        return await publishing.publish_profiles(
            self.client, self.profiles(now=now), namespace=self.settings.namespace,
            shards=self.settings.profile_shards, metrics=self.metrics,
            writer=(self.shard.shard, self.shard.shards) if self.shard.sharded else None,
        )

    async def wait_for_challenge(self, *, timeout_s: float = 120.0) -> Challenge | None:
        """Wait (real time, bounded) for a running challenge to end; its outcome, or None when none ran."""
        return await self.models.wait_for_challenge(timeout_s=timeout_s)


def _in_its_unit(p: PendingAction) -> None:
    """A named metric's decision says so: its reason (for the Events, the status and the log) names the metric and the
    per-pod target, and counts in the metric's unit where the rules wrote cores."""
    w = p.workload
    target = w.parsed.policy.metric_target
    if w.metric is None or target is None:
        return
    reason = _CORES.sub(w.unit, p.decision.reason)
    p.decision = replace(p.decision, reason=f"on {w.metric} at {target:g} per pod: {reason}")

