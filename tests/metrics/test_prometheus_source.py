"""PrometheusSource against a real Prometheus server with backfilled cAdvisor counters."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.metrics import History, MetricsError, PrometheusSource, WorkloadRef
from tests.metrics.conftest import PromServer

pytestmark = pytest.mark.slow

WEB = WorkloadRef(namespace="shop", name="web", selector={"matchLabels": {"app": "web"}})
API = WorkloadRef(namespace="shop", name="web-api")
GONE = WorkloadRef(namespace="shop", name="absent")


async def test_usage_sums_the_deployments_pods_and_nothing_else(prometheus: PromServer) -> None:
    async with PrometheusSource(prometheus.url) as source:
        at = prometheus.start + 3600
        usage = await source.usage([WEB, API, GONE], at=at)
    # 0.5 + 1.25 cores; not web-api's pod, not the other namespace, not the pause container
    assert usage["shop/web"] == pytest.approx(1.75, rel=1e-6)
    assert usage["shop/web-api"] == pytest.approx(3.0, rel=1e-6)
    assert usage["shop/absent"] is None


async def test_range_query_rebuilds_history_after_a_restart(prometheus: PromServer) -> None:
    start = prometheus.start + 600
    end = start + 59 * 60
    async with PrometheusSource(prometheus.url) as source:
        times, values = await source.history(WEB, start=start, end=end, step_s=60)
    assert times.shape == (60,) and times[0] == start and times[-1] == end
    np.testing.assert_allclose(values, 1.75, rtol=1e-6)
    history = History(step_s=60)
    history.backfill(WEB.key, start=start, values=values)
    series = history.series(WEB.key)
    assert series is not None and series.end == end and len(series.values) == 60


async def test_a_custom_query_template_is_used(prometheus: PromServer) -> None:
    query = 'sum(rate(container_cpu_usage_seconds_total{namespace="$namespace",pod=~"$name-.*",container="app"}[5m]))'
    async with PrometheusSource(prometheus.url, query=query) as source:
        usage = await source.usage([WEB], at=prometheus.start + 3600)
    # the loose name pattern also counts web-api: what the operator's query says is what they get
    assert usage["shop/web"] == pytest.approx(4.75, rel=1e-6)


async def test_a_bad_query_and_an_unreachable_server_mean_unknown_not_zero(prometheus: PromServer) -> None:
    async with PrometheusSource(prometheus.url, query="sum(rate(") as source:
        assert (await source.usage([WEB]))["shop/web"] is None
        with pytest.raises(MetricsError, match="parse error"):
            await source.history(WEB, start=prometheus.start, end=prometheus.end, step_s=60)
    async with PrometheusSource("http://127.0.0.1:9", timeout_s=2) as down:
        assert (await down.usage([WEB]))["shop/web"] is None
