"""End to end on the simulated cluster: 3 shards of 2 replicas over 300 labeled Deployments; one shard's holder dies
without giving its Lease back. Its standby holds the Lease within lease + retry (17 s), scales every one of the dead
shard's workloads within 17 s of the death, and no workload is ever scaled twice in one model step.

Scales are counted by the simulated API server's store (`ScaleLog`), not by the controllers.
"""

from __future__ import annotations

import asyncio
import math

import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.controller.sharding import FencedActuator, shard_of
from aihpa.sim.cluster import Cluster
from tests.controller.test_sharding import (
    LEASE,
    STEP_S,
    TAKEOVER_S,
    ScaleLog,
    create_workloads,
    cycles,
    elections,
    forecast,
    leads,
    lease_acquired,
    minute_value,
    start_replica,
    stop_all,
    wait_for_own,
)

SHARDS = 3
WORKLOADS = 300


@pytest.mark.slow
async def test_300_workloads_on_3_shards_survive_a_killed_shard_within_17_s_and_none_twice_in_a_step(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sim_cluster.ensure_namespace("aihpa")
    names = [f"svc-{i:03d}" for i in range(WORKLOADS)]
    await create_workloads(sim_cluster, names, concurrency=64)
    everyone = {f"default/{n}" for n in names}
    log = ScaleLog(sim_cluster)
    holders = [await start_replica(sim_cluster, sim_api_client, identity=f"shard-{i}-a", shard=i, shards=SHARDS)
               for i in range(SHARDS)]
    standbys = [await start_replica(sim_cluster, sim_api_client, identity=f"shard-{i}-b", shard=i, shards=SHARDS)
                for i in range(SHARDS)]
    fleet = holders + standbys
    try:
        await wait_for_own(fleet, names)
        sizes = [len(r.controller.workloads) for r in holders]
        assert sum(sizes) == WORKLOADS and min(sizes) > WORKLOADS / SHARDS / 2, sizes
        for r in fleet:  # the first of each pair takes its shard
            await r.controller.elector.step()
        assert all(leads(r) for r in holders) and not any(leads(r) for r in standbys)

        for _ in range(5):  # 3 steps of history for the model, then every workload scales every step
            await elections(sim_cluster, fleet, seconds=STEP_S)
            forecast(fleet, minute_value(math.floor(sim_cluster.clock.now() / STEP_S)))
            await cycles(fleet)
        step = math.floor(sim_cluster.clock.now() / STEP_S)
        assert log.scaled(step=step) == everyone

        # a new step begins; shard 1's holder dies before its cycle, without giving its Lease back
        await elections(sim_cluster, fleet, seconds=STEP_S)
        step = math.floor(sim_cluster.clock.now() / STEP_S)
        victim, taker = holders[1], standbys[1]
        await victim.controller.stop()
        died = sim_cluster.clock.now()
        live = [r for r in fleet if r is not victim]
        forecast(live, minute_value(step))
        await cycles(live)  # shards 0 and 2 act; shard 1's standby decides but does not act
        dead_shard = {k for k in everyone if shard_of("default", k.split("/")[1], SHARDS) == 1}
        assert log.scaled(step=step) == everyone - dead_shard

        took_over: float | None = None
        for _ in range(math.ceil(TAKEOVER_S / LEASE.retry_s)):
            await elections(sim_cluster, live, seconds=LEASE.retry_s)
            if leads(taker):
                took_over = sim_cluster.clock.now()
                await cycles([taker])  # the loop's wait ends on the Lease change: a cycle at once
                break
        assert took_over is not None, "shard 1 was not taken over within lease + retry"
        holder, acquired = lease_acquired(sim_cluster, f"aihpa-controller-shard-1-of-{SHARDS}")
        assert holder == taker.name and 0 < acquired - died <= TAKEOVER_S
        rescaled = {key: t for t, key, _ in log.changes if key in dead_shard and t >= died}
        assert set(rescaled) == dead_shard, "every workload of the dead shard scaled again"
        slowest = max(rescaled.values()) - died
        assert slowest <= TAKEOVER_S, f"the dead shard's workloads waited {slowest:.0f} s"

        # two more steps on the survivors: everyone scales once a step, the dead shard by its standby
        for _ in range(2):
            await elections(sim_cluster, live, seconds=STEP_S)
            step = math.floor(sim_cluster.clock.now() / STEP_S)
            forecast(live, minute_value(step))
            await cycles(live)
            assert log.scaled(step=step) == everyone
        assert not log.twice(), sorted(log.twice().items())[:10]
        assert isinstance(taker.controller.actuator, FencedActuator)
        print(f"\n{WORKLOADS} workloads on {SHARDS} shards: {len(log.changes)} scales, the dead shard's "
              f"{len(dead_shard)} taken over {acquired - died:.0f} s and all scaled {slowest:.0f} s after the death; "
              f"{loop.time() - started:.1f} s real time")
    finally:
        await stop_all(sim_cluster, fleet)
    # bounded: the whole scenario (300 Deployments, 6 controllers, 8 model steps) stays well within a CI budget
    assert loop.time() - started < 120

