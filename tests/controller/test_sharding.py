"""Sharded controllers on the simulated cluster: the hash, the settings, a shard's failover within lease + retry, a
holder killed mid-cycle, a holder whose renewals stopped, and a change of N from 3 to 4, none of which may scale a
workload twice in one model step.

Every scale is counted on the simulated API server's side (`ScaleLog`: the store's own change events of each
Deployment's spec.replicas), never from what the controllers report about themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import subprocess
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime

import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.controller import Controller, ControllerSettings, publishing
from aihpa.controller.actuation import Actuator
from aihpa.controller.sharding import (
    ANNOTATION_ACTUATED,
    FencedActuator,
    ShardAssignment,
    StepRecord,
    lease_name,
    may_actuate,
    shard_of,
)
from aihpa.k8s import KubeClient, LeaseSettings, RetrySettings
from aihpa.metrics import MetricsAPISource
from aihpa.observability import ControllerMetrics
from aihpa.profiles import ReplicaProfile, configmap_name
from aihpa.sim.cluster import Cluster
from aihpa.sim.resources import ResourceType
from aihpa.sim.store import Event
from aihpa.sim.testing import deployment_manifest
from aihpa.webhook.profile_configmaps import ConfigMapProfileSource
from tests.controller.conftest import SETTINGS, ScriptedForecaster

STEP_S = 60.0
LEASE = LeaseSettings()
# client-go's timings: a dead holder's lease runs out `lease_s` after its last renewal; the standby retries every
# `retry_s`, so it holds the lease at most lease_s + retry_s after the holder died
TAKEOVER_S = LEASE.lease_s + LEASE.retry_s


# ---- the hash and the settings ------------------------------------------------------------------------------------


def test_the_shard_of_a_workload_is_the_same_in_every_process() -> None:
    names = [("default", f"web-{i}") for i in range(50)] + [("payments", "api"), ("a", "b/c")]
    here = [shard_of(ns, name, 7) for ns, name in names]
    script = (
        "import sys; from aihpa.controller.sharding import shard_of\n"
        f"print([shard_of(ns, n, 7) for ns, n in {names!r}])"
    )
    # Python salts str hashes per process (this one's salt is random): the shard must not move with the salt
    env = {**os.environ, "PYTHONHASHSEED": "1"}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True,
                         timeout=60)
    assert out.stdout.strip() == str(here)


@pytest.mark.parametrize("shards", [2, 3, 4, 7])
def test_shards_share_the_workloads_evenly(shards: int) -> None:
    count = 3000
    sizes = Counter(shard_of(f"ns-{i % 17}", f"deploy-{i}", shards) for i in range(count))
    assert set(sizes) == set(range(shards))
    fair = count / shards
    # a binomial share's standard deviation is under sqrt(fair); 5 of them is a generous bound
    assert all(abs(n - fair) < 5 * math.sqrt(fair) for n in sizes.values()), sizes


def test_growing_from_3_to_4_shards_moves_about_a_quarter_and_keeps_the_rest_spread() -> None:
    keys = [("default", f"w{i}") for i in range(2000)]
    moved = sum(shard_of(ns, n, 3) != shard_of(ns, n, 4) for ns, n in keys)
    # mod-N hashing is not consistent hashing: most workloads change shard with N; the fence, not the hash, keeps
    # the change safe. Stated here so that a change of scheme is a conscious one.
    assert moved > len(keys) // 2


def test_one_shard_is_the_unsharded_controller_and_its_lease() -> None:
    one = ShardAssignment()
    assert not one.sharded and one.owns("any", "thing")
    assert one.lease_name("aihpa-controller") == "aihpa-controller" == lease_name("aihpa-controller", shard=0,
                                                                                  shards=1)
    three = ShardAssignment(shard=2, shards=3)
    assert three.lease_name("aihpa-controller") == "aihpa-controller-shard-2-of-3"
    owned = [n for n in (f"w{i}" for i in range(30)) if three.owns("default", n)]
    assert owned and len(owned) < 30
    assert all(shard_of("default", n, 3) == 2 for n in owned)


@pytest.mark.parametrize(("shards", "shard"), [(0, 0), (-1, 0), (3, 3), (3, -1), (2, 5)])
def test_settings_refuse_a_shard_outside_its_count(shards: int, shard: int) -> None:
    with pytest.raises(ValueError, match="shard"):
        ControllerSettings(shards=shards, shard=shard)
    with pytest.raises(ValueError, match="shard"):
        ShardAssignment(shard=shard, shards=shards)


def test_settings_default_to_one_shard() -> None:
    settings = ControllerSettings()
    assert (settings.shards, settings.shard) == (1, 0)


# ---- the step record ----------------------------------------------------------------------------------------------

RECORD_CASES = [
    # record (step, holder) or None, the step now, who asks -> may it scale?
    (None, 10, "a", True),
    ((9, "b"), 10, "a", True),  # an earlier step: anyone
    ((10, "a"), 10, "a", True),  # its own step: the safety net may add more
    ((10, "b"), 10, "a", False),  # another replica's step: never
    ((11, "b"), 10, "a", False),  # a later step (a clock behind): never undo it
    ((11, "a"), 10, "a", False),
]


@pytest.mark.parametrize(("record", "step", "who", "allowed"), RECORD_CASES)
def test_a_step_record_admits_one_replica_per_step(
    record: tuple[int, str] | None, step: int, who: str, allowed: bool
) -> None:
    parsed = None if record is None else StepRecord(*record)
    assert may_actuate(parsed, step=step, identity=who) is allowed


@pytest.mark.parametrize("text", ["", "12", "x/a", "12/", None, 12])
def test_an_unreadable_step_record_reads_as_none(text: object) -> None:
    assert StepRecord.parse(text) is None


def test_a_step_record_round_trips_with_a_pod_name() -> None:
    record = StepRecord(step=29_000_123, holder="aihpa-controller-shard-1-7d9f-x2x")
    assert StepRecord.parse(record.render()) == record


# ---- the fleet on the simulated cluster ---------------------------------------------------------------------------


@dataclass
class ScaleLog:
    """Every change of a Deployment's spec.replicas as the simulated API server stored it: (time, key, after)."""

    cluster: Cluster
    changes: list[tuple[float, str, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.cluster.store.add_listener(self._on_event)

    def _on_event(self, rt: ResourceType, ev: Event) -> None:
        if rt.kind != "Deployment" or ev.type != "MODIFIED" or ev.old is None:
            return
        before = (ev.old.get("spec") or {}).get("replicas")
        after = (ev.obj.get("spec") or {}).get("replicas")
        if before != after:
            meta = ev.obj["metadata"]
            self.changes.append((self.cluster.clock.now(), f"{meta['namespace']}/{meta['name']}", int(after or 0)))

    def per_step(self) -> dict[tuple[str, int], int]:
        counts: dict[tuple[str, int], int] = defaultdict(int)
        for t, key, _ in self.changes:
            counts[(key, math.floor(t / STEP_S))] += 1
        return counts

    def twice(self) -> dict[tuple[str, int], int]:
        """(workload, model step) scaled more than once: must stay empty."""
        return {k: n for k, n in self.per_step().items() if n > 1}

    def scaled(self, *, step: int) -> set[str]:
        return {key for t, key, _ in self.changes if math.floor(t / STEP_S) == step}


@dataclass
class Replica:
    controller: Controller
    forecaster: ScriptedForecaster

    @property
    def name(self) -> str:
        return self.controller.settings.identity


def leads(r: Replica) -> bool:
    """Whether the replica acts (a function, so that a type checker does not carry an earlier answer over)."""
    return r.controller.is_leader


async def start_replica(
    cluster: Cluster, api: ApiClient, *, identity: str, shard: int, shards: int, api_concurrency: int = 32
) -> Replica:
    kube = KubeClient(api, retry=RetrySettings(backoff=(0.01,)), clock=cluster.clock)
    forecaster = ScriptedForecaster()
    settings = replace(SETTINGS, identity=identity, leader_election=True, lease=LEASE, shard=shard, shards=shards,
                       api_concurrency=api_concurrency)
    controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster, settings=settings,
                            clock=cluster.clock)
    await controller.start()
    await controller.wait_synced()
    return Replica(controller, forecaster)


async def create_workloads(cluster: Cluster, names: Iterable[str], *, concurrency: int = 32) -> None:
    """Labeled Deployments at 1 replica using 0.4 cores, free to scale down at once; created concurrently."""
    gate = asyncio.Semaphore(concurrency)

    async def one(name: str) -> None:
        async with gate:
            await cluster.create(deployment_manifest(
                name, replicas=1, cpu_request="500m", cpu_limit="1", labels={"aihpa/enabled": "true"},
                annotations={"sim.aihpa.io/demand-cores": "0.4", "aihpa/scale-down-stabilization": "0"}))

    await asyncio.gather(*(one(n) for n in names))


async def wait_for_own(replicas: Iterable[Replica], names: list[str]) -> None:
    for r in replicas:
        c = r.controller
        mine = {f"default/{n}" for n in names if c.shard.owns("default", n)}

        def known(c: Controller = c, mine: set[str] = mine) -> bool:
            return set(c.workloads) == mine

        await c.wait_until(known, timeout_s=30.0)


async def elections(cluster: Cluster, live: list[Replica], *, seconds: float) -> None:
    """Election rounds every retry_s (2 s) of virtual time for `seconds`."""
    for _ in range(round(seconds / LEASE.retry_s)):
        await cluster.advance(LEASE.retry_s)
        for r in live:
            await r.controller.elector.step()


async def cycles(live: list[Replica]) -> None:
    """One cycle of every live replica at once (their requests interleave, as separate pods' would)."""
    await asyncio.gather(*(r.controller.run_cycle() for r in live))


def forecast(replicas: Iterable[Replica], value: float) -> None:
    for r in replicas:
        r.forecaster.value = value


def minute_value(step: int) -> float:
    """1 core, then 3 cores, one step each: a workload at 0.5 cores a pod goes 1 <-> 3 replicas every step."""
    return 3.0 if step % 2 else 1.0


async def stop_all(cluster: Cluster, replicas: Iterable[Replica]) -> None:
    for r in replicas:
        await r.controller.stop()
    await cluster.quiesce()


def lease_acquired(cluster: Cluster, name: str) -> tuple[str, float]:
    lease = cluster.get("coordination.k8s.io/v1", "Lease", name, "aihpa")
    assert lease is not None
    spec = lease["spec"]
    return spec["holderIdentity"], datetime.fromisoformat(spec["acquireTime"].replace("Z", "+00:00")).timestamp()


NAMES = [f"w{i:02d}" for i in range(24)]


async def test_a_holder_killed_mid_cycle_is_replaced_within_lease_and_retry_and_no_step_is_applied_twice(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    await sim_cluster.ensure_namespace("aihpa")
    await create_workloads(sim_cluster, NAMES)
    log = ScaleLog(sim_cluster)
    # a writes one at a time, so that it can die with some of its step's writes done and the rest not sent
    a = await start_replica(sim_cluster, sim_api_client, identity="a", shard=0, shards=2, api_concurrency=1)
    b = await start_replica(sim_cluster, sim_api_client, identity="b", shard=0, shards=2)
    both = [a, b]
    try:
        await wait_for_own(both, NAMES)
        mine = sorted(a.controller.workloads)
        assert len(mine) >= 6
        await a.controller.elector.step()
        await b.controller.elector.step()
        assert a.controller.is_leader and not b.controller.is_leader
        assert lease_acquired(sim_cluster, "aihpa-controller-shard-0-of-2")[0] == "a"
        for _ in range(5):  # history for the model (3 steps), then steps that scale every workload
            await elections(sim_cluster, both, seconds=STEP_S)
            forecast(both, minute_value(math.floor(sim_cluster.clock.now() / STEP_S)))
            await cycles(both)
        step = math.floor(sim_cluster.clock.now() / STEP_S)
        assert log.scaled(step=step) == set(mine), "every workload of the shard scales each step"

        # the next step: a dies after 3 of its scale writes, before its cycle ends, without giving the lease back
        await elections(sim_cluster, both, seconds=STEP_S)
        step = math.floor(sim_cluster.clock.now() / STEP_S)
        forecast([a], minute_value(step))
        cycle = asyncio.create_task(a.controller.run_cycle())
        killed_after = 3

        def kill_after_writes(rt: ResourceType, ev: Event) -> None:
            if len(log.scaled(step=step)) >= killed_after:
                cycle.cancel()

        sim_cluster.store.add_listener(kill_after_writes)
        with pytest.raises(asyncio.CancelledError):
            await cycle
        await a.controller.stop()
        died = sim_cluster.clock.now()
        done_by_a = log.scaled(step=step)
        assert killed_after <= len(done_by_a) < len(mine)

        # b decides otherwise for this step (its model answers 2 cores where a's said 3): a second write at this
        # step would be a double actuation, and the fence must refuse it
        forecast([b], 2.0 if minute_value(step) > 1 else 1.5)
        for _ in range(round(TAKEOVER_S / LEASE.retry_s)):
            await elections(sim_cluster, [b], seconds=LEASE.retry_s)
            if leads(b):
                break
        holder, acquired = lease_acquired(sim_cluster, "aihpa-controller-shard-0-of-2")
        assert holder == "b" and 0 < acquired - died <= TAKEOVER_S
        assert math.floor(sim_cluster.clock.now() / STEP_S) == step, "the takeover falls in the step a died in"
        await cycles([b])
        assert isinstance(b.controller.actuator, FencedActuator)
        assert b.controller.actuator.fenced == len(done_by_a), "b left alone what a had scaled at this step"
        assert log.scaled(step=step) == set(mine), "b scaled the rest of the step"
        assert not log.twice(), log.twice()

        # from the next step on b scales every workload of the shard, once a step
        for _ in range(2):
            await elections(sim_cluster, [b], seconds=STEP_S)
            step = math.floor(sim_cluster.clock.now() / STEP_S)
            forecast([b], minute_value(step))
            await cycles([b])
            assert log.scaled(step=step) == set(mine)
        assert not log.twice(), log.twice()
        deployments = [sim_cluster.get("apps/v1", "Deployment", key.split("/")[1], "default") for key in mine]
        records = {(d or {})["metadata"]["annotations"][ANNOTATION_ACTUATED] for d in deployments}
        assert records == {f"{step}/b"}
        assert not any(shard_of("default", key.split("/")[1], 2) != 0 for key, _ in log.per_step())
    finally:
        await stop_all(sim_cluster, both)


async def test_a_holder_that_cannot_renew_stops_scaling_at_the_renew_deadline(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    await sim_cluster.ensure_namespace("aihpa")
    await create_workloads(sim_cluster, NAMES[:8])
    log = ScaleLog(sim_cluster)
    a = await start_replica(sim_cluster, sim_api_client, identity="a", shard=1, shards=2)
    try:
        await wait_for_own([a], NAMES[:8])
        assert a.controller.workloads
        await a.controller.elector.step()
        for _ in range(4):
            await elections(sim_cluster, [a], seconds=STEP_S)
            forecast([a], minute_value(math.floor(sim_cluster.clock.now() / STEP_S)))
            await cycles([a])
        assert log.changes, "it scaled while it renewed"
        scaled = len(log.changes)
        # its election rounds stop (a stalled loop, an API server it cannot reach); the cycles go on
        await sim_cluster.advance(LEASE.renew_deadline_s)
        assert a.controller.elector.is_leader, "no round has stepped it down"
        assert not a.controller.is_leader, "but it cannot prove it holds the lease"
        await sim_cluster.advance(STEP_S - LEASE.renew_deadline_s)
        forecast([a], minute_value(math.floor(sim_cluster.clock.now() / STEP_S)))
        await cycles([a])
        assert len(log.changes) == scaled
    finally:
        await stop_all(sim_cluster, [a])


@pytest.mark.parametrize("fenced", [True, False], ids=["fenced", "unfenced-control"])
async def test_changing_3_to_4_shards_never_scales_a_workload_twice_in_a_step(
    sim_cluster: Cluster, sim_api_client: ApiClient, fenced: bool
) -> None:
    """Old and new shards overlap for three steps (a rolling change of N), each side deciding otherwise. With the
    fence no workload is scaled twice in a step; the control without it shows that the scenario does race."""
    await sim_cluster.ensure_namespace("aihpa")
    await create_workloads(sim_cluster, NAMES)
    log = ScaleLog(sim_cluster)
    old = [await start_replica(sim_cluster, sim_api_client, identity=f"old-{i}", shard=i, shards=3)
           for i in range(3)]
    new: list[Replica] = []
    try:
        await wait_for_own(old, NAMES)
        for r in old:
            await r.controller.elector.step()
        for _ in range(4):
            await elections(sim_cluster, old, seconds=STEP_S)
            forecast(old, minute_value(math.floor(sim_cluster.clock.now() / STEP_S)))
            await cycles(old)
        assert log.changes and not log.twice()

        new = [await start_replica(sim_cluster, sim_api_client, identity=f"new-{i}", shard=i, shards=4)
               for i in range(4)]
        await wait_for_own(new, NAMES)
        if not fenced:
            for r in (*old, *new):
                c = r.controller
                c.actuator = Actuator(c.client, settings=c.settings, metrics=c.metrics, outbox=c.outbox)
        for r in new:
            await r.controller.elector.step()
            assert r.controller.is_leader, "the shards of 4 have Leases of their own"
        overlap = []
        for _ in range(3):
            await elections(sim_cluster, old + new, seconds=STEP_S)
            step = math.floor(sim_cluster.clock.now() / STEP_S)
            overlap.append(step)
            forecast(old, minute_value(step))
            forecast(new, 2.0 if minute_value(step) > 1 else 1.0)  # the new shards' model answers otherwise
            await cycles(old + new)
        if not fenced:
            assert log.twice(), "the scenario must race without the fence, or it proves nothing"
            return
        assert not log.twice(), log.twice()
        assert sum(r.controller.actuator.fenced for r in old + new
                   if isinstance(r.controller.actuator, FencedActuator)) > 0, "the fence never had to act"
        for step in overlap:
            assert log.scaled(step=step) == {f"default/{n}" for n in NAMES}, "each workload scaled once a step"

        # the old shards end (a rollout: they give their Leases back); the new ones carry on alone
        for r in old:
            await r.controller.elector._release()
            await r.controller.stop()
        for _ in range(2):
            await elections(sim_cluster, new, seconds=STEP_S)
            step = math.floor(sim_cluster.clock.now() / STEP_S)
            forecast(new, minute_value(step))
            await cycles(new)
            assert log.scaled(step=step) == {f"default/{n}" for n in NAMES}
        assert not log.twice(), log.twice()
        # the step record is the controller's own annotation: no replica warns a user about it
        warnings = [e for e in sim_cluster.list("v1", "Event", "default") if e.get("type") == "Warning"]
        assert log.changes and not warnings, [e.get("message") for e in warnings]
    finally:
        await stop_all(sim_cluster, old + new)


async def test_a_standby_that_wins_its_shard_runs_a_cycle_at_once(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    """The cycle loop's wait ends when the shard's Lease changes hands, so a taker scales the dead holder's
    workloads within lease + retry, not up to a sync period (15 s) later."""
    await sim_cluster.ensure_namespace("aihpa")
    b = await start_replica(sim_cluster, sim_api_client, identity="b", shard=1, shards=3)
    try:
        b.controller.elector.changed.clear()  # as the loop does when a cycle begins
        before = sim_cluster.clock.now()
        pause = asyncio.create_task(b.controller._pause(b.controller.settings.sync_period_s))
        await asyncio.sleep(0)
        assert not pause.done()
        await b.controller.elector.step()  # the shard's Lease is free: b takes it
        assert b.controller.is_leader
        async with asyncio.timeout(5):
            await pause
        assert sim_cluster.clock.now() == before, "the wait ended on the Lease, not on the clock"
    finally:
        await stop_all(sim_cluster, [b])


# ---- replica profiles: each shard writes its own, the webhook merges them ------------------------------------------


def flat(name: str, replicas: int, *, at: float) -> ReplicaProfile:
    return ReplicaProfile(namespace="default", name=name, replicas=(replicas,) * 96, model_version="m",
                          generated_at=at)


async def test_each_shard_publishes_its_own_profiles_and_the_webhook_merges_them_newest_first(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    await sim_cluster.ensure_namespace("aihpa")
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)), clock=sim_cluster.clock)
    metrics = ControllerMetrics()
    now = sim_cluster.clock.now()
    # a shard of an old N (3) published "web" an hour ago; shard 1 of 2 publishes it now, shard 0 of 2 another one
    stale = [flat("web", 9, at=now - 3600)]
    await publishing.publish_profiles(kube, stale, namespace="aihpa", shards=2, metrics=metrics, writer=(2, 3))
    for shard, items in ((0, [flat("api", 4, at=now)]), (1, [flat("web", 5, at=now)])):
        written = await publishing.publish_profiles(kube, items, namespace="aihpa", shards=2, metrics=metrics,
                                                    writer=(shard, 2))
        assert written == 2
    names = {cm["metadata"]["name"] for cm in sim_cluster.list("v1", "ConfigMap", "aihpa")}
    assert names == {configmap_name(i, writer=w) for w in ((2, 3), (0, 2), (1, 2)) for i in range(2)}
    source = ConfigMapProfileSource(kube, namespace="aihpa")
    watch = asyncio.create_task(source.run())
    try:
        async with asyncio.timeout(10):
            await source.wait_until(lambda s: s.synced)
    finally:
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
    assert len(source) == 2
    web, api = source.by_workload("default", "web"), source.by_workload("default", "api")
    assert web is not None and web.replicas_at(now) == 5, "the newer profile wins over the old N's"
    assert api is not None and api.replicas_at(now) == 4
    await sim_cluster.quiesce()
