"""The workload cache keeps only what the controller needs, and only its own shard's Deployments."""

from __future__ import annotations

from kubernetes_asyncio.client import ApiClient

from aihpa.controller.cache import WorkloadCache
from aihpa.controller.outbox import EventOutbox
from aihpa.k8s import KubeClient, RetrySettings
from aihpa.k8s.events import EventRecorder
from aihpa.metrics import MetricsAPISource
from aihpa.metrics.history import History
from aihpa.observability import ControllerMetrics
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import SETTINGS

LABELS = {"aihpa/enabled": "true"}
NAMES = [f"w{i}" for i in range(8)]


def _cache(kube: KubeClient, cluster: Cluster, owned: set[str]) -> WorkloadCache:
    return WorkloadCache(
        client=kube, metrics_source=MetricsAPISource(kube), history=History(step_s=60.0, capacity=16),
        settings=SETTINGS, clock=cluster.clock, metrics=ControllerMetrics(),
        outbox=EventOutbox(EventRecorder(kube, instance="test")), owns=lambda ns, name: name in owned,
    )


async def test_a_shard_keeps_only_the_deployments_it_owns_and_takes_over_new_ones(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    for name in NAMES:
        await sim_cluster.create(deployment_manifest(name, labels=LABELS))
    owned = {"w0", "w2", "w4"}
    cache = _cache(kube, sim_cluster, owned)
    cache.start()
    try:
        await cache.wait_synced(timeout_s=10.0)
        assert sorted(cache.workloads) == ["default/w0", "default/w2", "default/w4"]
        # a watch event for another shard's Deployment is not kept either
        await sim_cluster.create(deployment_manifest("w8", labels=LABELS))
        await sim_cluster.create(deployment_manifest("w6x", labels=LABELS))
        owned.add("w8")
        await cache.wait_until(lambda: "default/w8" in cache.workloads, timeout_s=10.0)
        assert "default/w6x" not in cache.workloads

        # the shard's share moves: w0 goes to another shard, w1 and w6x come to this one
        owned.difference_update({"w0"})
        owned.update({"w1", "w6x"})
        assert await cache.reconsider() == 1
        assert "default/w0" not in cache.workloads
        await cache.wait_until(lambda: {"default/w1", "default/w6x"} <= set(cache.workloads), timeout_s=10.0)
        assert sorted(cache.workloads) == ["default/w1", "default/w2", "default/w4", "default/w6x", "default/w8"]
        assert cache.synced
    finally:
        await cache.stop()
        await sim_cluster.quiesce()
