"""Scaling on any metric, end to end on the simulated cluster with a real Prometheus: a workload annotated with a named
query and a per-pod target scales to ceil(value / target) pods, holds when its series is missing, and CPU workloads
beside it scale as before. Also the --metric-query flag's checks."""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import AsyncIterator, Iterator
from typing import Any

import numpy as np
import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient

from aihpa.controller import Controller
from aihpa.controller_cli import metric_queries
from aihpa.errors import UserError
from aihpa.k8s import KubeClient, RetrySettings
from aihpa.k8s.client import MERGE_PATCH
from aihpa.metrics import MetricsAPISource, PrometheusSource, RoutedSource
from aihpa.scaling import DecisionKind
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import SETTINGS, Rig, ScriptedForecaster
from tests.metrics.promserver import gauge_lines, serve_prometheus

pytestmark = pytest.mark.slow

T0 = 1_735_689_600  # the simulated cluster's clock starts here (`aihpa.sim.testing.sim_clock`)
STEP = 15
RPS = 'sum(http_requests_per_second{namespace="$namespace",deployment="$name"})'
LABELS = {"aihpa/enabled": "true"}
ON_RPS = {"aihpa/metric": "rps", "aihpa/metric-target": "100"}
REACTIVE = {"aihpa/mode": "reactive", "aihpa/scale-down-stabilization": "0"}


def _web(t: int) -> float | None:
    """Requests per second of `web`: 450, then 950 from minute 20, 320 from minute 40, no series from minute 60."""
    minute = (t - T0) / 60
    if minute >= 60:
        return None
    return 450.0 if minute < 20 else 950.0 if minute < 40 else 320.0


def _openmetrics() -> str:
    times = range(T0 - 3 * 3600, T0 + 90 * 60 + 1, STEP)
    lines = ["# TYPE http_requests_per_second gauge"]
    web = [(t, v) for t in times if (v := _web(t)) is not None]
    lines += gauge_lines("http_requests_per_second", {"namespace": "default", "deployment": "web"}, web)
    lines += gauge_lines("http_requests_per_second", {"namespace": "default", "deployment": "steady"},
                         [(t, 300.0) for t in times])
    # another namespace's `web`: the query's namespace label keeps it out
    lines += gauge_lines("http_requests_per_second", {"namespace": "other", "deployment": "web"},
                         [(t, 5000.0) for t in times])
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def prometheus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_prometheus(tmp_path_factory.mktemp("prometheus-rps"), _openmetrics()) as url:
        yield url


@pytest_asyncio.fixture
async def rig(sim_cluster: Cluster, sim_api_client: ApiClient, prometheus_url: str) -> AsyncIterator[Rig]:
    await sim_cluster.ensure_namespace("aihpa")
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    forecaster = ScriptedForecaster()
    # CPU from metrics.k8s.io as before, the named query from Prometheus: what `--metric-query rps=...` builds
    source = RoutedSource(cpu=MetricsAPISource(kube), named=PrometheusSource(prometheus_url, queries={"rps": RPS}))
    controller = Controller(client=kube, metrics=source, forecaster=forecaster, settings=SETTINGS,
                            clock=sim_cluster.clock)
    try:
        async with controller:
            await controller.wait_synced()
            yield Rig(cluster=sim_cluster, controller=controller, forecaster=forecaster, kube=kube)
    finally:
        await source.close()
    await sim_cluster.quiesce()


async def _deploy(rig: Rig, name: str, *, cores: float, replicas: int, **annotations: str) -> None:
    await rig.cluster.create(deployment_manifest(name, replicas=replicas, labels=LABELS, cpu_request="500m",
                                                 cpu_limit="1",
                                                 annotations={"sim.aihpa.io/demand-cores": str(cores), **annotations}))
    await rig.controller.wait_until(lambda: f"default/{name}" in rig.controller.workloads)
    await rig.controller.wait_backfills()


def _replicas(rig: Rig, name: str) -> int:
    dep = rig.cluster.get("apps/v1", "Deployment", name, "default")
    assert dep is not None
    return int(dep["spec"]["replicas"])


def _status(rig: Rig, name: str) -> dict[str, Any]:
    dep = rig.cluster.get("apps/v1", "Deployment", name, "default")
    assert dep is not None
    status: dict[str, Any] = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
    return status


def _events(rig: Rig, reason: str, name: str) -> list[str]:
    return [e["message"] for e in rig.cluster.list("v1", "Event", "default")
            if e.get("reason") == reason and e["involvedObject"]["name"] == name]


async def _until_minute(rig: Rig, minute: int) -> None:
    """Run a cycle a minute until the clock reads T0 + minute."""
    await rig.cycles(round((T0 + minute * 60 - rig.cluster.clock.now()) / 60))


async def test_a_workload_on_requests_per_second_scales_to_ceil_of_value_over_target(rig: Rig) -> None:
    # little CPU: on CPU the HPA would shrink it; on requests per second it needs ceil(450 / 100) = 5 pods
    await _deploy(rig, "web", cores=0.1, replicas=2, **ON_RPS, **REACTIVE)
    await _deploy(rig, "cpu", cores=2.1, replicas=2, **REACTIVE)
    await _until_minute(rig, 10)
    assert _replicas(rig, "web") == 5
    # beside it, the CPU workload as before: 2.1 cores at 70% of 0.5-core requests is 6 pods
    assert _replicas(rig, "cpu") == 6
    await _until_minute(rig, 30)
    assert _replicas(rig, "web") == 10  # 950 requests per second
    await _until_minute(rig, 50)
    assert _replicas(rig, "web") == 4  # 320: down to ceil(3.2)
    scaled = _events(rig, "Scaled", "web")
    assert any("-> 5:" in m and "on rps at 100 per pod" in m for m in scaled), scaled
    status = _status(rig, "web")
    assert status["usage"] == pytest.approx(320.0) and "on rps at 100 per pod" in status["reason"]
    # the CPU gauge counts cores only: the workload on requests per second is not in it
    registry = rig.controller.metrics.registry
    labels = {"namespace": "default", "deployment": "web"}
    assert registry.get_sample_value("aihpa_usage_cores", labels) is None
    assert registry.get_sample_value("aihpa_usage_cores", {**labels, "deployment": "cpu"}) == pytest.approx(2.1)


async def test_when_the_series_stops_the_count_holds(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.1, replicas=4, **ON_RPS, **REACTIVE)
    await rig.cluster.advance(55 * 60)  # to the last minutes of the series (320 requests per second: 4 pods)
    await rig.cycles(5)
    assert _replicas(rig, "web") == 4
    await _until_minute(rig, 80)  # the series ended at minute 60
    assert _replicas(rig, "web") == 4
    decision = (await rig.controller.run_cycle()).decisions[0]
    assert decision.usage is None and decision.decision.kind is DecisionKind.HOLD
    assert "metrics unavailable" in decision.decision.reason


async def test_a_missing_series_or_an_unknown_metric_holds_while_cpu_scales_down(rig: Rig) -> None:
    rig.forecaster.value = 0.1  # the forecast says almost nothing is coming
    await _deploy(rig, "ghost", cores=0.1, replicas=6, **ON_RPS)  # no series at all
    await _deploy(rig, "typo", cores=0.1, replicas=6, **{"aihpa/metric": "rsp", "aihpa/metric-target": "100"})
    await _deploy(rig, "idle", cores=0.1, replicas=6, **REACTIVE)  # on CPU
    await rig.cycles(8)
    assert _replicas(rig, "ghost") == 6 and _replicas(rig, "typo") == 6
    assert _replicas(rig, "idle") == 1  # CPU workloads are unchanged: 0.1 cores need one pod
    assert "metrics unavailable" in _status(rig, "ghost")["reason"]
    unknown = _events(rig, "UnknownMetric", "typo")
    assert len(unknown) == 1 and "'rsp'" in unknown[0] and "known: rps" in unknown[0]
    assert not _events(rig, "UnknownMetric", "ghost")


async def test_the_forecast_and_its_history_count_requests_per_second(rig: Rig) -> None:
    await _deploy(rig, "steady", cores=0.1, replicas=1, **ON_RPS)
    # the history was rebuilt from a range query of the named metric: three hours of 300 requests per second
    series = rig.controller.history.series("default/steady")
    assert series is not None and np.isfinite(series.values).sum() >= 170
    np.testing.assert_allclose(series.values[np.isfinite(series.values)], 300.0)
    rig.forecaster.value = 300.0
    await rig.cycles(6)
    replicas = _replicas(rig, "steady")
    # at least ceil(300 / 100) pods, and the calibrated headroom of the predictive policy on top at most a few
    assert 3 <= replicas <= 6
    status = _status(rig, "steady")
    assert status["usage"] == pytest.approx(300.0)
    assert status["reason"].startswith("on rps at 100 per pod: ") and not re.search(r"\bcores\b", status["reason"])
    assert "300.00 rps" in status["reason"]
    # the HPA beside the forecast is the Pods-metric rule at the target: ceil(300 / 100)
    decision = (await rig.controller.run_cycle()).decisions[0]
    assert decision.usage == pytest.approx(300.0) and decision.reactive == 3


async def test_a_workload_that_moves_from_cpu_to_a_metric_starts_its_history_again(rig: Rig) -> None:
    await _deploy(rig, "steady", cores=0.5, replicas=2)
    await rig.cycles(3)
    cpu = rig.controller.history.series("default/steady")
    assert cpu is not None and np.nanmax(cpu.values) < 1.0  # cores
    await rig.kube.request("PATCH", "/apis/apps/v1/namespaces/default/deployments/steady",
                           body={"metadata": {"annotations": ON_RPS}}, content_type=MERGE_PATCH)
    await rig.controller.wait_until(lambda: rig.controller.workloads["default/steady"].metric == "rps")
    await rig.controller.wait_backfills()
    rps = rig.controller.history.series("default/steady")
    assert rps is not None and np.nanmin(rps.values) == pytest.approx(300.0)  # no core left in it


def _args(*queries: str, url: str | None = "http://127.0.0.1:9090", cpu_query: str | None = None) -> Any:
    return argparse.Namespace(metric_query=list(queries), prometheus_url=url, prometheus_query=cpu_query)


def test_metric_queries_are_read_from_name_equals_promql() -> None:
    queries = metric_queries(_args(f"rps={RPS}", "queue.depth=max(queue_depth{q=\"$name\"})"))
    assert queries == {"rps": RPS, "queue.depth": 'max(queue_depth{q="$name"})'}
    assert metric_queries(_args(url=None)) == {}


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (_args("rps"), "write NAME=PROMQL"),
        (_args("r s=up"), "a name is letters"),
        (_args("rps=up", "rps=down"), "given twice"),
        (_args("rps=sum($window)"), "--metric-query rps: unknown placeholder $window"),
        (_args("rps="), "--metric-query rps: the query is empty"),
        (_args("rps=up", url=None), "needs --prometheus-url"),
        (_args(cpu_query="sum($cores)"), "--prometheus-query: unknown placeholder $cores"),
    ],
)
def test_a_bad_metric_query_stops_the_start_with_the_fix(args: Any, says: str) -> None:
    with pytest.raises(UserError, match=says.replace("$", "\\$")):
        metric_queries(args)



CHART_VALUES = {"webhook": {"enabled": False}, "controller": {"metrics": {
    "prometheus": {"url": "http://prometheus.monitoring:9090"},
    "queries": {"rps": RPS, "queue.depth": 'max(queue_depth{queue="$name"}) > 0'},
}}}


def _render(values: dict[str, Any]) -> list[dict[str, Any]]:
    helm = pytest.importorskip("helm_python", reason="the dev extra helm-python-sdk renders the chart")
    from tests.chart.conftest import CHART, NAMESPACE, RELEASE, split_documents

    with helm.Chart.load(CHART) as chart:
        return split_documents(chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)).objects


def test_the_charts_queries_become_the_flags_the_controller_reads() -> None:
    from aihpa.cli import build_parser

    [deployment] = [o for o in _render(CHART_VALUES) if o["kind"] == "Deployment"]
    argv = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--metrics=metrics-api" in argv and "--prometheus-url=http://prometheus.monitoring:9090" in argv
    assert argv[0] == "controller"
    args = build_parser("controller").parse_args(argv)
    assert metric_queries(args) == CHART_VALUES["controller"]["metrics"]["queries"]  # type: ignore[index]


@pytest.mark.parametrize(
    ("metrics", "says"),
    [
        ({"queries": {"rps": RPS}}, "controller.metrics.queries needs controller.metrics.prometheus.url"),
        ({"prometheus": {"url": "http://p:9090"}, "queries": {"r s": RPS}}, "invalid propertyName 'r s'"),
        ({"prometheus": {"url": "http://p:9090"}, "queries": {"rps": ""}}, "/controller/metrics/queries/rps"),
    ],
)
def test_the_chart_refuses_queries_it_could_not_run(metrics: dict[str, Any], says: str) -> None:
    with pytest.raises(Exception, match=says):
        _render({"webhook": {"enabled": False}, "controller": {"metrics": metrics}})


async def test_without_a_cpu_request_a_workload_on_a_metric_scales(rig: Rig) -> None:
    # no CPU request at all: a CPU workload would be skipped (utilization is undefined); one on a metric is not
    annotations = {"sim.aihpa.io/demand-cores": "0.1", **ON_RPS, **REACTIVE}
    await rig.cluster.create(deployment_manifest("web", replicas=2, labels=LABELS, cpu_request="0", cpu_limit=None,
                                                 annotations=annotations))
    await rig.controller.wait_until(lambda: "default/web" in rig.controller.workloads)
    await _until_minute(rig, 10)
    assert _replicas(rig, "web") == 5
    assert not _events(rig, "NoCPURequest", "web")


async def test_the_status_says_the_unit_and_what_a_pod_may_serve(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.1, replicas=2, **ON_RPS, **REACTIVE)
    await _until_minute(rig, 5)
    dep = rig.cluster.get("apps/v1", "Deployment", "web", "default")
    assert dep is not None
    status = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
    assert status["unit"] == "rps" and status["per_pod"] == 100.0
