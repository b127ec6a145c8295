"""The workload cache keeps only what the controller needs, and only its own shard's Deployments."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.controller.cache import WorkloadCache
from aihpa.controller.outbox import EventOutbox
from aihpa.controller.workload import StepWindow, pod_cpu, slim_deployment
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


def test_the_slim_object_keeps_what_the_controller_reads_and_drops_the_rest() -> None:
    full = deployment_manifest("web", cpu_request="250m", cpu_limit="1", labels=LABELS,
                               annotations={"aihpa/min-replicas": "2", "aihpa/status": "{\"replicas\": 3}",
                                            "kubectl.kubernetes.io/last-applied-configuration": "{}" * 500})
    full["metadata"].update(uid="u-1", resourceVersion="42", managedFields=[{"manager": "kubectl"}] * 20)
    full["status"] = {"replicas": 2, "readyReplicas": 1, "conditions": [{"type": "Available"}]}

    slim = slim_deployment(full)
    assert slim["metadata"] == {"namespace": "default", "name": "web", "uid": "u-1", "resourceVersion": "42",
                                "labels": full["metadata"]["labels"],
                                "annotations": {"aihpa/min-replicas": "2"}}
    assert slim["spec"] == {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}}
    assert slim["status"] == {"replicas": 2, "readyReplicas": 1}
    # what the watch hands the cache also carries each container's CPU, and only that
    with_cpu = slim_deployment(full, pod_cpu=True)
    assert pod_cpu(with_cpu, "requests") == 0.25 and pod_cpu(with_cpu, "limits") == 1.0
    assert with_cpu["spec"]["template"] == {"spec": {"containers": [
        {"resources": {"requests": {"cpu": "250m"}, "limits": {"cpu": "1"}}}]}}
    # none of aihpa's annotations: the map stays (a JSON patch adding one member must not replace it whole)
    plain = deployment_manifest("plain", annotations={"team": "a"})
    assert slim_deployment(plain)["metadata"]["annotations"] == {}
    assert "annotations" not in slim_deployment(deployment_manifest("bare"))["metadata"]


def test_the_slo_window_counts_short_steps_over_its_last_steps_only() -> None:
    window = StepWindow(capacity=4)
    assert not window and len(window) == 0
    for short in (True, True, False, False):
        window.append(short)
    assert (len(window), window.short) == (4, 2)
    window.append(False)  # the first short step leaves the window
    window.append(True)  # the second one leaves, this one comes in
    assert (len(window), window.short) == (4, 1)


@pytest.mark.parametrize("capacity", [1, 7, 8, 9, 1440])
def test_the_slo_window_of_bits_counts_as_the_last_steps_themselves(capacity: int) -> None:
    window, flags = StepWindow(capacity=capacity), []
    rng = np.random.default_rng(capacity)
    for short in rng.random(3 * capacity + 5) < 0.3:
        window.append(bool(short))
        flags.append(bool(short))
        assert (len(window), window.short) == (min(len(flags), capacity), sum(flags[-capacity:]))
    with pytest.raises(ValueError, match="at least one step"):
        StepWindow(capacity=0)


async def test_the_cache_holds_slim_objects_listed_in_pages(sim_cluster: Cluster, sim_api_client: ApiClient) -> None:
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    for name in NAMES:
        await sim_cluster.create(deployment_manifest(name, labels=LABELS, cpu_request="250m", cpu_limit="2"))
    settings = replace(SETTINGS, watch=replace(SETTINGS.watch, page_size=3))  # 8 Deployments: three pages
    cache = WorkloadCache(
        client=kube, metrics_source=MetricsAPISource(kube), history=History(step_s=60.0, capacity=16),
        settings=settings, clock=sim_cluster.clock, metrics=ControllerMetrics(),
        outbox=EventOutbox(EventRecorder(kube, instance="test")),
    )
    cache.start()
    try:
        await cache.wait_synced(timeout_s=10.0)
        assert sorted(cache.workloads) == [f"default/{n}" for n in NAMES]
        w = cache.workloads["default/w3"]
        assert (w.request_cores, w.limit_cores) == (0.25, 2.0)
        assert "template" not in w.obj["spec"] and "managedFields" not in w.obj["metadata"]
        assert w.obj["metadata"]["resourceVersion"] and w.replicas == 1
    finally:
        await cache.stop()
        await sim_cluster.quiesce()


def test_per_workload_gauges_render_as_prometheus_text_and_are_forgotten_whole() -> None:
    metrics = ControllerMetrics()
    metrics.replicas.labels("default", "web", "current").set(3)
    metrics.replicas.labels("default", "web", "desired").set(5)
    metrics.replicas.labels("default", "api", "current").set(1)
    metrics.usage.labels("default", "web").set(1.25)
    text = metrics.render().decode()
    assert 'aihpa_replicas{deployment="web",kind="desired",namespace="default"} 5.0' in text
    assert 'aihpa_usage_cores{deployment="web",namespace="default"} 1.25' in text
    metrics.forget("default", "web")
    text = metrics.render().decode()
    assert 'deployment="web"' not in text
    assert 'aihpa_replicas{deployment="api",kind="current",namespace="default"} 1.0' in text
