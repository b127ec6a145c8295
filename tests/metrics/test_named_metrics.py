"""Named metrics: Prometheus's named queries against a real server, the router that sends CPU and named metrics to
their sources, and the checks a query template gets before the controller starts."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.k8s import KubeClient
from aihpa.metrics import (
    MetricsAPISource,
    MetricsError,
    PrometheusSource,
    RoutedSource,
    WorkloadRef,
    check_template,
    known_metrics,
)
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import *  # noqa: F403
from aihpa.sim.testing import deployment_manifest
from tests.metrics.conftest import PromServer

RPS = 'sum(http_requests_per_second{namespace="$namespace",deployment="$name"})'
WEB_RPS = WorkloadRef(namespace="shop", name="web", metric="rps")
API_RPS = WorkloadRef(namespace="shop", name="web-api", metric="rps")
WEB_CPU = WorkloadRef(namespace="shop", name="web")
GONE_RPS = WorkloadRef(namespace="shop", name="absent", metric="rps")
TYPO = WorkloadRef(namespace="shop", name="web", metric="rsp")


class FixedCpu:
    """A CPU source that answers 2 cores for everyone and records what it was asked (no history)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    async def usage(self, workloads: Sequence[WorkloadRef], *, at: float | None = None) -> dict[str, float | None]:
        self.asked += [w.key for w in workloads]
        return {w.key: 2.0 for w in workloads}


@pytest.mark.slow
async def test_a_named_query_answers_for_the_workloads_that_chose_it_and_cpu_stays_cpu(prometheus: PromServer) -> None:
    at = prometheus.start + 3600
    async with PrometheusSource(prometheus.url, queries={"rps": RPS}) as source:
        assert source.metric_names == {"rps"} and known_metrics(source) == {"rps"}
        rps = await source.usage([WEB_RPS, API_RPS, GONE_RPS], at=at)
        cpu = await source.usage([WEB_CPU], at=at)
        typo = await source.usage([TYPO], at=at)
    assert rps == {"shop/web": pytest.approx(120.5), "shop/web-api": pytest.approx(40.0), "shop/absent": None}
    assert cpu["shop/web"] == pytest.approx(1.75, rel=1e-6)  # the CPU query: 0.5 + 1.25 cores
    assert typo["shop/web"] is None  # a name without a query is unknown, never zero and never CPU


@pytest.mark.slow
async def test_a_named_metric_rebuilds_its_history_from_a_range_query(prometheus: PromServer) -> None:
    start = prometheus.start + 600
    async with PrometheusSource(prometheus.url, queries={"rps": RPS}) as source:
        times, values = await source.history(WEB_RPS, start=start, end=start + 29 * 60, step_s=60)
        with pytest.raises(MetricsError, match="no query named 'rsp' \\(known: rps\\)"):
            await source.history(TYPO, start=start, end=start + 60, step_s=60)
    assert times.shape == (30,)
    np.testing.assert_allclose(values, 120.5)


@pytest.mark.slow
async def test_the_router_sends_cpu_and_named_metrics_to_their_sources(prometheus: PromServer) -> None:
    cpu = FixedCpu()
    named = PrometheusSource(prometheus.url, queries={"rps": RPS})
    router = RoutedSource(cpu=cpu, named=named)
    at = prometheus.start + 3600
    try:
        assert router.metric_names == {"rps"}
        usage = await router.usage([WEB_RPS, WorkloadRef(namespace="shop", name="batch"), GONE_RPS], at=at)
        assert usage == {"shop/web": pytest.approx(120.5), "shop/batch": 2.0, "shop/absent": None}
        assert cpu.asked == ["shop/batch"]  # the CPU source never sees a named metric's workload
        _, values = await router.history(API_RPS, start=at - 600, end=at, step_s=60)
        np.testing.assert_allclose(values, 40.0)
        with pytest.raises(MetricsError, match="keeps no history"):
            await router.history(WEB_CPU, start=at - 600, end=at, step_s=60)
    finally:
        await router.close()


async def test_without_a_named_source_a_named_metric_is_unknown() -> None:
    cpu = FixedCpu()
    router = RoutedSource(cpu=cpu, named=None)
    assert router.metric_names == frozenset()
    assert await router.usage([WEB_RPS, WEB_CPU]) == {"shop/web": 2.0}
    assert await router.usage([WEB_RPS]) == {"shop/web": None}
    assert cpu.asked == ["shop/web"]


async def test_metrics_server_never_answers_a_named_metric_with_cpu(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    await sim_cluster.create(deployment_manifest("web", replicas=2, annotations={"sim.aihpa.io/demand-cores": "0.6"}))
    await sim_cluster.advance(10)
    selector = {"matchLabels": {"app": "web"}}
    source = MetricsAPISource(KubeClient(sim_api_client))
    cpu = await source.usage([WorkloadRef(namespace="default", name="web", selector=selector)])
    named = await source.usage([WorkloadRef(namespace="default", name="web", selector=selector, metric="rps")])
    assert cpu["default/web"] == pytest.approx(0.6, abs=1e-3)
    assert named == {"default/web": None} and "default/web" not in source.pods
    assert known_metrics(source) == frozenset()


@pytest.mark.parametrize(
    ("query", "why"),
    [
        ("", "empty"),
        ("sum(rate(x{ns=\"$namespace\"}[$window]))", "unknown placeholder $window"),
        ("sum(x{cost=\"$5\"})", "lone '$'"),
        ("sum(x{name=\"${names}\"})", "unknown placeholder $names"),
    ],
)
def test_a_query_template_with_a_mistake_is_refused_before_any_query(query: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("$", "\\$")):
        check_template(query)
    with pytest.raises(ValueError, match=why.replace("$", "\\$")):
        PrometheusSource("http://127.0.0.1:9", queries={"rps": query})


def test_every_placeholder_and_an_escaped_dollar_are_accepted() -> None:
    template = check_template('x{a="$namespace",b="${name}",c=~"$pod_regex",d="$$"}[$rate_window]')
    assert template.substitute(namespace="n", name="d", pod_regex="p", rate_window="2m") == \
        'x{a="n",b="d",c=~"p",d="$"}[2m]'
