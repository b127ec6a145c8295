"""A full cluster behaves like one: pods beyond the pod capacity stay Pending (unschedulable) until room frees up, pod
writes come in batches that leave the event loop free, and `aihpa sim serve` stops on SIGTERM even mid scale-up."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
import yaml

from aihpa.clock import VirtualClock
from aihpa.sim import Cluster
from aihpa.sim.testing import TEST_SETTINGS, deployment_manifest
from tests.sim.conftest import assert_valid, eventually

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
MERGE = {"Content-Type": "application/merge-patch+json"}
INT32_MAX = 2**31 - 1


@pytest_asyncio.fixture
async def small_cluster(sim_clock: VirtualClock) -> AsyncIterator[Cluster]:
    """Room for 3 scheduled pods and 2 unschedulable ones."""
    async with Cluster(clock=sim_clock, settings=TEST_SETTINGS, pod_capacity=3, max_pending_pods=2) as cluster:
        yield cluster


def _scheduled_condition(pod: dict[str, Any]) -> dict[str, Any]:
    conds = [c for c in pod["status"].get("conditions", []) if c["type"] == "PodScheduled"]
    assert len(conds) == 1, pod["status"]
    return dict(conds[0])


async def _pods(http: aiohttp.ClientSession, **params: str) -> list[dict[str, Any]]:
    async with http.get(PODS, params=params) as resp:
        assert resp.status == 200, await resp.text()
        return list((await resp.json())["items"])


async def test_pods_beyond_the_capacity_stay_pending_and_unschedulable(small_cluster: Cluster) -> None:
    async with aiohttp.ClientSession(base_url=small_cluster.url) as http:
        async with http.post(DEPLOYMENTS, json=deployment_manifest("web", replicas=5)) as resp:
            assert resp.status == 201, await resp.text()
        await small_cluster.advance(5)
        running = await _pods(http, fieldSelector="status.phase=Running")
        pending = await _pods(http, fieldSelector="status.phase=Pending")
    assert len(running) == 3
    assert len(pending) == 2
    for pod in pending:
        cond = _scheduled_condition(pod)
        assert (cond["status"], cond["reason"]) == ("False", "Unschedulable")
        assert "Too many pods" in cond["message"]
        assert "nodeName" not in pod["spec"]
        assert_valid(pod)
    for pod in running:
        assert _scheduled_condition(pod)["status"] == "True"
        assert pod["spec"]["nodeName"]
    dep = small_cluster.get("apps/v1", "Deployment", "web")
    assert dep is not None
    assert (dep["status"]["replicas"], dep["status"]["readyReplicas"]) == (5, 3)
    assert "ReplicaFailure" not in {c["type"] for c in dep["status"]["conditions"]}


async def test_a_deployment_asking_beyond_the_pending_bound_gets_a_replica_failure(small_cluster: Cluster) -> None:
    await small_cluster.create(deployment_manifest("web", replicas=INT32_MAX))
    assert len(small_cluster.list("v1", "Pod")) == 5  # 3 scheduled + 2 pending: no more pod objects
    dep = small_cluster.get("apps/v1", "Deployment", "web")
    assert dep is not None
    failure = [c for c in dep["status"]["conditions"] if c["type"] == "ReplicaFailure"]
    assert len(failure) == 1
    assert (failure[0]["status"], failure[0]["reason"]) == ("True", "FailedCreate")
    assert_valid(dep)
    # back within bounds: the condition goes away
    await small_cluster.scale("web", 4)
    await small_cluster.advance(5)
    dep = small_cluster.get("apps/v1", "Deployment", "web")
    assert dep is not None
    assert "ReplicaFailure" not in {c["type"] for c in dep["status"]["conditions"]}
    assert small_cluster.workloads.scheduled_pods == 3
    assert small_cluster.workloads.unschedulable_pods == 1


async def test_freed_room_schedules_the_waiting_pods_first_come_first_served(small_cluster: Cluster) -> None:
    await small_cluster.create(deployment_manifest("first", replicas=3))
    await small_cluster.create(deployment_manifest("second", replicas=2))
    await small_cluster.advance(5)
    second = [p for p in small_cluster.list("v1", "Pod") if p["metadata"]["name"].startswith("second-")]
    assert [p["status"]["phase"] for p in second] == ["Pending", "Pending"]
    await small_cluster.scale("first", 1)  # two slots free up

    def second_scheduled() -> bool:
        pods = [p for p in small_cluster.list("v1", "Pod") if p["metadata"]["name"].startswith("second-")]
        return all(_scheduled_condition(p)["status"] == "True" for p in pods)

    await eventually(second_scheduled, what="the waiting pods to be scheduled")
    await small_cluster.advance(5)
    dep = small_cluster.get("apps/v1", "Deployment", "second")
    assert dep is not None
    assert dep["status"].get("readyReplicas") == 2
    assert small_cluster.workloads.scheduled_pods == 3
    assert small_cluster.workloads.unschedulable_pods == 0


async def test_a_pod_created_by_a_client_on_a_full_cluster_is_unschedulable(small_cluster: Cluster) -> None:
    await small_cluster.create(deployment_manifest("web", replicas=3))
    await small_cluster.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "extra"},
                                "spec": {"containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]}})
    stored = small_cluster.get("v1", "Pod", "extra")
    assert stored is not None
    assert _scheduled_condition(stored)["reason"] == "Unschedulable"
    await small_cluster.advance(60)
    stored = small_cluster.get("v1", "Pod", "extra")
    assert stored is not None
    assert stored["status"]["phase"] == "Pending"


async def test_a_huge_scale_request_writes_pods_in_batches_and_other_requests_are_served_meanwhile(
    sim_clock: VirtualClock,
) -> None:
    async with Cluster(clock=sim_clock, settings=TEST_SETTINGS, pod_capacity=400, max_pending_pods=400) as cluster:
        cluster.workloads.batch = 10
        await cluster.create(deployment_manifest("web", replicas=1))
        assert len(cluster.list("v1", "Pod")) == 1
        async with aiohttp.ClientSession(base_url=cluster.url) as http:
            async with http.patch(f"{DEPLOYMENTS}/web/scale", json={"spec": {"replicas": INT32_MAX}},
                                  headers=MERGE) as resp:
                assert resp.status == 200, await resp.text()
            # the scale request came back long before all 799 new pods exist: one batch at a time
            assert len(cluster.list("v1", "Pod")) < 800
            # and another request is served while the rest are still being written
            async with http.get("/version") as resp:
                assert resp.status == 200
            assert len(cluster.list("v1", "Pod")) < 800
            await eventually(lambda: len(cluster.list("v1", "Pod")) == 800, limit_s=60,
                             what="the pods up to the cluster's bounds")
            pending = await _pods(http, fieldSelector="status.phase=Pending", limit="1000")
        assert cluster.workloads.scheduled_pods == 400
        assert cluster.workloads.unschedulable_pods == 400
        assert sum(1 for p in pending if _scheduled_condition(p)["status"] == "False") == 400


async def test_one_reconciliation_writes_at_most_one_batch(sim_cluster: Cluster) -> None:
    sim_cluster.workloads.batch = 7
    await sim_cluster.create(deployment_manifest("web", replicas=50))
    assert len(sim_cluster.list("v1", "Pod")) == 7  # nothing awaited yet: exactly one batch
    await eventually(lambda: len(sim_cluster.list("v1", "Pod")) == 50, what="all 50 pods")


@pytest.mark.slow
async def test_serve_stops_promptly_on_sigterm_in_the_middle_of_a_huge_scale_up(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aihpa.cli", "sim", "serve", "--kubeconfig-out", str(kubeconfig),
        "--pod-capacity", "50000", "--duration", "120",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert server.stdout is not None
        line = await asyncio.wait_for(server.stdout.readline(), 30)
        assert line.decode().startswith("serving http://127.0.0.1:"), line
        url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        async with aiohttp.ClientSession(base_url=url, timeout=aiohttp.ClientTimeout(total=30)) as http:
            async with http.post(DEPLOYMENTS, json=deployment_manifest("web", replicas=INT32_MAX)) as resp:
                assert resp.status == 201, await resp.text()
            async with http.get(PODS, params={"limit": "1"}) as resp:  # served while pods are being written
                assert resp.status == 200
                listed = await resp.json()
            assert listed["metadata"].get("remainingItemCount", 0) + len(listed["items"]) < 100_000
        server.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(server.wait(), 20)
    finally:
        if server.returncode is None:
            server.kill()
            await server.wait()
    assert code == 0
