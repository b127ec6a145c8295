"""The data plane: pods become ready after their start-up delay on the virtual clock, deployment status follows,
and PodMetrics split the workload's demand over ready pods, capped at each pod's CPU limit."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from aihpa.clock import VirtualClock
from aihpa.sim import Cluster
from aihpa.sim.testing import deployment_manifest
from aihpa.sim.workload import STARTUP_ANNOTATION, TRACE_ANNOTATION, TraceDemand, parse_cpu
from aihpa.step import DEFAULT_STEP_S
from aihpa.traces import series_from_values


def _status(cluster: Cluster, name: str = "web") -> dict[str, int]:
    dep = cluster.get("apps/v1", "Deployment", name)
    assert dep is not None
    return dep.get("status", {})


def _pod_cpu(cluster: Cluster) -> list[float]:
    cache: dict[str, tuple[float, int]] = {}
    out = []
    for pod in cluster.list("v1", "Pod", "default"):
        m = cluster.workloads.pod_metrics(pod, now=cluster.clock.now(), demand_cache=cache)
        if m is not None:
            out.append(sum(parse_cpu(c["usage"]["cpu"]) for c in m["containers"]))
    return out


async def test_pods_become_ready_only_after_the_startup_delay(sim_cluster: Cluster) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=3))
    status = _status(sim_cluster)
    assert status["replicas"] == 3
    assert "readyReplicas" not in status
    assert {p["status"]["phase"] for p in sim_cluster.list("v1", "Pod", "default")} == {"Pending"}

    await sim_cluster.advance(4)
    assert "readyReplicas" not in _status(sim_cluster)

    await sim_cluster.advance(1)
    status = _status(sim_cluster)
    assert status["readyReplicas"] == 3
    assert status["availableReplicas"] == 3
    assert status["updatedReplicas"] == 3
    assert status["observedGeneration"] == 1


async def test_scaling_down_removes_pods_and_scaling_up_waits_for_new_ones(sim_cluster: Cluster) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=4))
    await sim_cluster.advance(5)
    await sim_cluster.scale("web", 2)
    assert _status(sim_cluster)["readyReplicas"] == 2
    assert len(sim_cluster.list("v1", "Pod", "default")) == 2

    await sim_cluster.scale("web", 5)
    status = _status(sim_cluster)
    assert (status["replicas"], status["readyReplicas"]) == (5, 2)
    await sim_cluster.advance(5)
    assert _status(sim_cluster)["readyReplicas"] == 5


async def test_deleted_pod_is_replaced(sim_cluster: Cluster) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    await sim_cluster.advance(5)
    victim = sim_cluster.list("v1", "Pod", "default")[0]
    pods_rt = sim_cluster.registry.by_kind("v1", "Pod")
    assert pods_rt is not None
    sim_cluster.api.delete(pods_rt, namespace="default", name=victim["metadata"]["name"])
    names = [p["metadata"]["name"] for p in sim_cluster.list("v1", "Pod", "default")]
    assert len(names) == 2
    assert victim["metadata"]["name"] not in names
    assert _status(sim_cluster)["readyReplicas"] == 1


async def test_template_change_rolls_pods_over_to_the_new_template(sim_cluster: Cluster) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    await sim_cluster.advance(5)
    dep_rt = sim_cluster.api.resolve("apps/v1", "Deployment")
    await sim_cluster.api.patch(dep_rt, {"spec": {"template": {"metadata": {"annotations": {"v": "2"}}}}},
                                patch_type="application/strategic-merge-patch+json", namespace="default", name="web")
    assert len(sim_cluster.list("v1", "Pod", "default")) == 4  # old pods stay until new ones are ready
    await sim_cluster.advance(5)
    pods = sim_cluster.list("v1", "Pod", "default")
    assert len(pods) == 2
    assert all(p["metadata"].get("annotations") == {"v": "2"} for p in pods)
    status = _status(sim_cluster)
    assert (status["updatedReplicas"], status["readyReplicas"], status["observedGeneration"]) == (2, 2, 2)


async def test_demand_is_split_over_ready_pods_and_capped_at_the_cpu_limit(sim_cluster: Cluster) -> None:
    sim_cluster.attach("default", "web", lambda _t: 3.0)
    await sim_cluster.create(deployment_manifest("web", replicas=2, cpu_limit="1"))
    assert _pod_cpu(sim_cluster) == []  # nothing ready, no metrics (metrics-server has none either)
    await sim_cluster.advance(5)
    assert _pod_cpu(sim_cluster) == [1.0, 1.0]  # 1.5 each, capped at the 1-core limit
    await sim_cluster.scale("web", 6)
    await sim_cluster.advance(5)
    assert _pod_cpu(sim_cluster) == [0.5] * 6


async def test_cap_falls_back_to_the_cpu_request_without_a_limit(sim_cluster: Cluster) -> None:
    sim_cluster.attach("default", "web", lambda _t: 10.0)
    await sim_cluster.create(deployment_manifest("web", replicas=2, cpu_request="250m", cpu_limit=None))
    await sim_cluster.advance(5)
    assert _pod_cpu(sim_cluster) == [0.25, 0.25]


async def test_trace_annotation_drives_demand_over_virtual_time(sim_cluster: Cluster) -> None:
    trace = series_from_values(np.array([1.0, 2.0, 3.0, 4.0]), name="ramp", step_s=60.0)
    sim_cluster.register_trace("ramp", trace, scale=0.5)  # sample 0 plays now
    await sim_cluster.create(deployment_manifest("web", replicas=1, cpu_limit="4",
                                                 annotations={TRACE_ANNOTATION: "ramp"}))
    await sim_cluster.advance(5)
    assert _pod_cpu(sim_cluster) == [pytest.approx(0.5 * (1.0 + 5 / 60), abs=1e-9)]
    await sim_cluster.advance(115)  # t = 120 s: sample 2
    assert _pod_cpu(sim_cluster) == [1.5]


def test_trace_demand_interpolates_and_loops() -> None:
    trace = series_from_values([0.0, 10.0], name="t", step_s=10.0)
    demand = TraceDemand(trace, start=100.0)
    assert demand(100.0) == 0.0
    assert demand(105.0) == 5.0
    assert demand(115.0) == 5.0  # interpolates back from the last sample to the first
    assert demand(120.0) == 0.0


async def test_a_shorter_startup_delay_wakes_the_pod_starter_early(
    sim_cluster: Cluster, sim_clock: VirtualClock
) -> None:
    await sim_cluster.create(deployment_manifest("slow", replicas=1))  # ready at +5 s: the starter sleeps till then
    for _ in range(5):
        await asyncio.sleep(0)
    fast = deployment_manifest("fast", replicas=1)
    fast["spec"]["template"]["metadata"]["annotations"] = {STARTUP_ANNOTATION: "1"}
    await sim_cluster.create(fast)
    sim_clock.advance(1)  # the clock alone, not cluster.advance(): only the background starter can react
    for _ in range(20):
        await asyncio.sleep(0)
    assert _status(sim_cluster, "fast").get("readyReplicas") == 1
    assert "readyReplicas" not in _status(sim_cluster, "slow")


def test_trace_demand_steps_at_the_traces_own_step_else_the_model_step() -> None:
    stepped = series_from_values([0.0, 10.0], name="t", step_s=10.0)
    assert TraceDemand(stepped).step_s == 10.0
    assert TraceDemand(stepped, step_s=30.0).step_s == TraceDemand(stepped, interval_s=30.0).step_s == 30.0
    assert TraceDemand(series_from_values([0.0, 10.0], name="u")).step_s == DEFAULT_STEP_S
