"""End to end on the simulated cluster over HTTP: ahead of a ramp, through injected faults, and across a failover."""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.controller import Controller
from aihpa.forecast.forecaster import load_default_forecaster
from aihpa.k8s import KubeClient, LeaseSettings, RetrySettings
from aihpa.metrics import MetricsAPISource
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.sim.testing import deployment_manifest
from aihpa.traces import load_trace
from tests.controller.conftest import SETTINGS, Rig, ScriptedForecaster
from tests.controller.test_cycle import _deploy, _deployment

LIMIT = 0.5  # cores per pod (request = limit): a pod cannot serve more


@pytest.mark.slow
async def test_replicas_rise_ahead_of_a_ramp_with_the_shipped_model(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    start = sim_cluster.clock.now()

    def demand(t: float) -> float:  # flat for 40 minutes, then +0.15 cores a minute
        minutes = (t - start) / 60.0
        return 1.0 + max(0.0, minutes - 40.0) * 0.15

    sim_cluster.attach("default", "web", demand)
    await sim_cluster.ensure_namespace("aihpa")
    await sim_cluster.create(deployment_manifest("web", replicas=3, cpu_request="500m", cpu_limit="500m",
                                                 labels={"aihpa/enabled": "true"}))
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=load_default_forecaster(),
                            settings=SETTINGS, clock=sim_cluster.clock)
    saturated_during_ramp = 0
    headroom = []
    async with controller:
        await controller.wait_synced()
        await controller.wait_until(lambda: "default/web" in controller.workloads)
        for minute in range(1, 71):
            await sim_cluster.advance(60)
            await controller.run_cycle()
            dep = _deployment_of(sim_cluster)
            ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
            need = demand(sim_cluster.clock.now())
            if minute > 42:
                saturated_during_ramp += need > ready * LIMIT
                headroom.append(ready * LIMIT - need)
    await sim_cluster.quiesce()
    # the ramp adds a pod's worth of demand every ~3 minutes; capacity stays ahead of it
    assert saturated_during_ramp <= 2, headroom
    assert min(headroom[5:]) > -LIMIT


def _deployment_of(cluster: Cluster) -> dict[str, object]:
    dep = cluster.get("apps/v1", "Deployment", "web", "default")
    assert dep is not None
    return dep


@pytest.mark.usefixtures("no_warmup_bound")
async def test_injected_faults_leave_it_running_within_bounds(rig: Rig) -> None:
    await _deploy(rig, "web", cores=1.5, replicas=4, **{"aihpa/min-replicas": "2", "aihpa/max-replicas": "9"})
    rig.forecaster.value = 1.5
    await rig.cycles(4)
    faults = rig.cluster.faults
    plan = [
        Fault(verb="patch", resource="deployments/scale", status=409, times=2),
        Fault(verb="get", resource="deployments/scale", status=429, retry_after=0, times=2),
        Fault(verb="patch", resource="deployments", status=500, times=3),
        Fault(verb="watch", resource="deployments", drop_after_events=0, abort=True, times=1),
        Fault(verb="watch", resource="deployments", status=410, times=1),
        Fault(group="metrics.k8s.io", status=503, times=6),
    ]
    replicas_seen = []
    for fault in plan:
        faults.add(fault)
        rig.forecaster.value = 0.05 if fault.group == "metrics.k8s.io" else 4.0  # outage + a forecast of nothing
        before = _deployment(rig, "web")["spec"]["replicas"]
        report = await rig.controller.run_cycle()
        await rig.cycles(2)
        after = _deployment(rig, "web")["spec"]["replicas"]
        replicas_seen.append(after)
        if fault.group == "metrics.k8s.io":
            assert after >= before, "scaled down during a metrics outage"
        assert report.decisions, "a cycle stopped deciding"
    assert all(2 <= r <= 9 for r in replicas_seen)
    rig.forecaster.value = 12.0  # 12 cores / a 1-core limit = 12 pods, capped at 9
    await rig.cycles(6)
    assert _deployment(rig, "web")["spec"]["replicas"] == 9
    assert rig.controller.metrics.render().decode().count("aihpa_errors_total") >= 1


@pytest.mark.usefixtures("no_warmup_bound")
async def test_failover_to_the_standby_within_the_lease_and_no_step_applied_twice(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    await sim_cluster.ensure_namespace("aihpa")
    clock = sim_cluster.clock
    settings = replace(SETTINGS, leader_election=True, lease=LeaseSettings())
    controllers = []
    for name in ("a", "b"):
        kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)), clock=clock)
        forecaster = ScriptedForecaster()
        forecaster.value = 3.0
        controllers.append(Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster,
                                      settings=replace(settings, identity=name), clock=clock))
    a, b = controllers
    await sim_cluster.create(deployment_manifest("web", replicas=1, cpu_request="500m", cpu_limit="1",
                                                 labels={"aihpa/enabled": "true"},
                                                 annotations={"sim.aihpa.io/demand-cores": "0.4"}))
    applied: dict[int, list[str]] = {}
    await a.start()
    await b.start()
    try:
        for c in controllers:
            await c.wait_synced()
            await c.wait_until(lambda c=c: "default/web" in c.workloads)
        await a.elector.step()  # a asks first and takes the lease
        await b.elector.step()
        assert a.is_leader and not b.is_leader

        async def minute(live: list[Controller]) -> None:
            for _ in range(30):  # election rounds every 2 s (client-go's retry period)
                await sim_cluster.advance(2)
                for c in live:
                    await c.elector.step()
            for c in live:
                report = await c.run_cycle()
                step = math.floor(report.time / 60)
                applied.setdefault(step, []).extend(c.settings.identity for d in report.decisions if d.applied)

        for _ in range(5):
            await minute([a, b])
        # a dies without giving the lease back (no graceful release)
        await a.stop()
        died = clock.now()
        b.forecaster.value = 6.0  # type: ignore[attr-defined]
        for _ in range(15):
            if b.is_leader:
                break
            await sim_cluster.advance(2)
            await b.elector.step()
        lease = sim_cluster.get("coordination.k8s.io/v1", "Lease", "aihpa-controller", "aihpa")
        assert lease is not None and lease["spec"]["holderIdentity"] == "b"
        took_over = datetime.fromisoformat(lease["spec"]["acquireTime"].replace("Z", "+00:00")).timestamp()
        # client-go timings: the dead leader's lease runs out 15 s after its last renewal, and the standby
        # retries every 2 s
        assert 0 < took_over - died <= LeaseSettings().lease_s + LeaseSettings().retry_s
        for _ in range(3):
            await minute([b])
        assert _deployment_of(sim_cluster)["spec"]["replicas"] > 1
        assert "b" in {who for ids in applied.values() for who in ids}
        assert all(len(ids) <= 1 for ids in applied.values()), applied
    finally:
        for c in controllers:
            await c.stop()
        await sim_cluster.quiesce()



@pytest.mark.slow
async def test_a_shared_trace_ramp_is_met_before_it_saturates_and_better_than_reactive(
    sim_cluster: Cluster, sim_api_client: ApiClient, shared_traces: Path
) -> None:
    trace = load_trace(shared_traces / "wikipedia_pagecounts_2008_2009_1h.csv")
    values = trace.values.astype(np.float64)
    rise = values[8:] - values[:-8]
    top = int(np.argmax(rise[100:])) + 100  # the steepest 8-sample morning ramp
    start = top - 40  # 40 steps of history first
    segment = values[start : top + 14]
    cores = segment / segment.max() * 10.0  # peak 10 cores: 20 pods of 0.5 at full use
    t0 = sim_cluster.clock.now()

    def demand(t: float) -> float:
        i = min(int((t - t0) // 60), len(cores) - 1)
        return float(cores[i])

    await sim_cluster.ensure_namespace("aihpa")
    for name, mode in (("predictive", "predictive"), ("reactive", "reactive")):
        sim_cluster.attach("default", name, demand)
        await sim_cluster.create(deployment_manifest(
            name, replicas=int(np.ceil(cores[0] / LIMIT / 0.7)), cpu_request="500m", cpu_limit="500m",
            labels={"aihpa/enabled": "true"}, annotations={"aihpa/mode": mode},
        ))
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=load_default_forecaster(),
                            settings=SETTINGS, clock=sim_cluster.clock)
    saturated = {"predictive": 0, "reactive": 0}
    async with controller:
        await controller.wait_synced()
        await controller.wait_until(lambda: len(controller.workloads) == 2)
        for step in range(1, len(cores)):
            await sim_cluster.advance(60)
            await controller.run_cycle()
            if step < 40:
                continue
            need = demand(sim_cluster.clock.now())
            for name in saturated:
                dep = sim_cluster.get("apps/v1", "Deployment", name, "default")
                assert dep is not None
                ready = int((dep.get("status") or {}).get("readyReplicas") or 0)
                saturated[name] += need > ready * LIMIT + 1e-9
    await sim_cluster.quiesce()
    assert saturated["predictive"] <= saturated["reactive"], saturated
    assert saturated["predictive"] <= 1, saturated
