"""MetricsAPISource on the simulated cluster: exact selectors, per-workload queries and namespace lists agree."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

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


class _Answers:
    """A client that answers every request with one fixed body, decoded as `KubeClient.request` would."""

    def __init__(self, body: bytes) -> None:
        self.body = body

    async def request(self, method: str, path: str, *, decoder: Any = None, **_: Any) -> Any:
        return (decoder or json.loads)(self.body)


def _pod(app: str, cpu: object, **extra: object) -> dict[str, Any]:
    return {"metadata": {"name": f"{app}-1", "labels": {"app": app}, **extra},
            "containers": [{"name": "main", "usage": {"cpu": cpu, "memory": "1Mi"}}]}


def _apps(*apps: str) -> list[WorkloadRef]:
    return [WorkloadRef(namespace="default", name=a, selector={"matchLabels": {"app": a}}) for a in apps]


async def test_a_namespace_list_is_read_for_labels_and_usage_whatever_else_it_holds() -> None:
    body = {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {"resourceVersion": "7"},
            "items": [_pod("web", "250m", namespace="default", annotations={"a": "b"}), _pod("web", 0.5),
                      {"metadata": {"name": "bare"}}, {"containers": []}, _pod("api", "1500000000n")]}
    source = MetricsAPISource(_Answers(json.dumps(body).encode()), list_namespace_from=1)  # type: ignore[arg-type]
    # a selector of expressions only has no pair to be indexed under: checked against every pod
    either = {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}
    web_or_api = WorkloadRef(namespace="default", name="either", selector=either)
    usage = await source.usage([*_apps("web", "api", "absent"), web_or_api])
    assert usage == {"default/web": pytest.approx(0.75), "default/api": pytest.approx(1.5), "default/absent": None,
                     "default/either": pytest.approx(2.25)}
    assert source.pods == {"default/web": 2, "default/api": 1, "default/either": 3}


async def test_a_bad_quantity_costs_its_own_workload_only() -> None:
    body = {"items": [_pod("web", "a lot"), _pod("web", "100m"), _pod("api", "200m"), _pod("db", {"cores": 1}),
                      _pod("cache", True)]}
    source = MetricsAPISource(_Answers(json.dumps(body).encode()), list_namespace_from=1)  # type: ignore[arg-type]
    usage = await source.usage(_apps("web", "api", "db", "cache"))
    assert usage == {"default/web": None, "default/api": pytest.approx(0.2), "default/db": None, "default/cache": None}


@pytest.mark.parametrize("body", [b"<html>502 Bad Gateway</html>", b'{"items": "none"}', b'{"items": [1, 2]}',
                                  b'{"items": [{"metadata": "web"}]}', b'{"items": [{"containers": {"a": 1}}]}',
                                  b'{"items": [{"metadata": {"labels": {"app": ["web"]}}}]}'],
                         ids=["not-json", "items-not-a-list", "items-not-objects", "metadata-not-an-object",
                              "containers-not-a-list", "a-label-not-a-string"])
async def test_an_unreadable_list_means_unknown_for_the_namespace_never_an_exception(
    body: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    source = MetricsAPISource(_Answers(body), list_namespace_from=1)  # type: ignore[arg-type]
    usage = await source.usage(_apps("web", "api"))
    assert usage == {"default/web": None, "default/api": None}
    assert "unreadable PodMetrics list" in caplog.text
