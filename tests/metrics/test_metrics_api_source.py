"""MetricsAPISource on the simulated cluster: exact selectors, per-workload queries and namespace lists agree."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient

from aihpa.k8s import KubeClient, RetrySettings
from aihpa.metrics import MetricsAPISource, WorkloadRef, selector_matches
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.sim.testing import *  # noqa: F403
from aihpa.sim.testing import deployment_manifest


@pytest_asyncio.fixture
async def cluster_with_pods(sim_cluster: Cluster) -> AsyncIterator[Cluster]:
    # "web" and "web-api": names share a prefix, selectors do not overlap
    for name, replicas, cores in (("web", 2, 0.6), ("web-api", 3, 1.2), ("batch", 1, 0.3)):
        await sim_cluster.create(deployment_manifest(name, replicas=replicas, cpu_request="500m", cpu_limit="1",
                                                     annotations={"sim.aihpa.io/demand-cores": str(cores)}))
    await sim_cluster.advance(10)  # pods become ready and report
    yield sim_cluster


def _refs(cluster: Cluster) -> list[WorkloadRef]:
    out = []
    for name in ("web", "web-api", "batch", "absent"):
        dep = cluster.get("apps/v1", "Deployment", name, "default")
        selector = dep["spec"]["selector"] if dep else {"matchLabels": {"app": name}}
        out.append(WorkloadRef(namespace="default", name=name, selector=selector))
    return out


@pytest.mark.parametrize("list_from", [100, 1], ids=["query-per-workload", "one-list-per-namespace"])
async def test_usage_is_the_sum_over_exactly_the_selected_pods(
    cluster_with_pods: Cluster, sim_api_client: ApiClient, list_from: int
) -> None:
    source = MetricsAPISource(KubeClient(sim_api_client), list_namespace_from=list_from)
    usage = await source.usage(_refs(cluster_with_pods))
    assert usage["default/web"] == pytest.approx(0.6, abs=1e-3)
    assert usage["default/web-api"] == pytest.approx(1.2, abs=1e-3)
    assert usage["default/batch"] == pytest.approx(0.3, abs=1e-3)
    assert usage["default/absent"] is None
    assert source.pods["default/web-api"] == 3


async def test_a_metrics_outage_means_unknown(cluster_with_pods: Cluster, sim_api_client: ApiClient) -> None:
    cluster_with_pods.faults.add(Fault(group="metrics.k8s.io", status=503))
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    for list_from in (1, 100):
        usage = await MetricsAPISource(kube, list_namespace_from=list_from).usage(_refs(cluster_with_pods))
        assert all(v is None for v in usage.values())


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        ({"matchLabels": {"app": "web"}}, {"app": "web", "x": "1"}, True),
        ({"matchLabels": {"app": "web"}}, {"app": "web-api"}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}, {"tier": "b"}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["a"]}]}, {}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {"tier": ""}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {"tier": "a"}, False),
        ({}, {"app": "web"}, False),
    ],
)
def test_selector_matching_follows_the_api_servers_rules(
    selector: dict[str, object], labels: dict[str, str], expected: bool
) -> None:
    assert selector_matches(selector, labels) is expected
