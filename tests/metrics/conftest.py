"""A real Prometheus server on 127.0.0.1, started per test session, with cAdvisor-style CPU counters and a request-rate
gauge backfilled (`tests.metrics.promserver`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.metrics.promserver import gauge_lines, serve_prometheus

STEP = 15  # seconds between counter samples, as a kubelet scrape
# (namespace, pod, cores used): the `web` Deployment has two pods; `web-api` is another Deployment whose pod names
# also start with "web-", which a correct query must not count.
PODS = [
    ("shop", "web-5d9f7c6b8-abcde", 0.5),
    ("shop", "web-5d9f7c6b8-fghij", 1.25),
    ("shop", "web-api-7f8c9d6b5-xyz12", 3.0),
    ("other", "web-5d9f7c6b8-zzzzz", 7.0),
]
# (namespace, deployment, requests per second) as an ingress controller would export them, one series per Deployment
REQUEST_RATES = [("shop", "web", 120.5), ("shop", "web-api", 40.0)]


@dataclass(frozen=True)
class PromServer:
    url: str
    start: float  # first sample
    end: float  # last sample


def _openmetrics(start: int, end: int) -> str:
    lines = ["# TYPE container_cpu_usage_seconds_total counter"]
    for ns, pod, cores in PODS:
        for t in range(start, end + 1, STEP):
            value = cores * (t - start)
            lines.append(
                f'container_cpu_usage_seconds_total{{namespace="{ns}",pod="{pod}",container="app"}} {value} {t}'
            )
        # the pause container: must be excluded by container!="POD"
        for t in range(start, end + 1, STEP):
            lines.append(
                f'container_cpu_usage_seconds_total{{namespace="{ns}",pod="{pod}",container="POD"}} {t - start} {t}'
            )
    lines.append("# TYPE http_requests_per_second gauge")
    for ns, deployment, rate in REQUEST_RATES:
        points = [(t, rate) for t in range(start, end + 1, STEP)]
        lines += gauge_lines("http_requests_per_second", {"namespace": ns, "deployment": deployment}, points)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromServer]:
    root = tmp_path_factory.mktemp("prometheus")
    end = (int(time.time()) // 3600) * 3600 - 3600  # whole hours in the past: complete blocks, within retention
    start = end - 2 * 3600
    with serve_prometheus(root, _openmetrics(start, end)) as url:
        yield PromServer(url=url, start=float(start), end=float(end))
