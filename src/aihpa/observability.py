"""Prometheus metrics of the controller, and the /metrics, /healthz, /readyz endpoints that serve them.

Each controller has its own `CollectorRegistry`, so several can live in one process (tests, the demo).

The per-workload gauges (a dozen series per workload, tens of thousands of workloads) are `WorkloadGauge`s: plain
floats by label tuple, rendered at scrape time, as kube-state-metrics does. prometheus-client's own labeled Gauge
keeps an object with two locks per series (about 800 bytes), which at 10,000 workloads was a tenth of the process.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

__all__ = ["ControllerMetrics", "JsonFormatter", "WorkloadGauge", "health_app", "use_json_logs"]


# the attributes every LogRecord has: anything else on a record came in through `extra=` and is logged as a key
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, message, the fields given as `extra=` (a decision's
    workload, replicas, kind...), and the exception, when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in doc:
                doc[key] = value
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, default=str)


def use_json_logs(level: int = logging.INFO) -> None:
    """Route every log record to stderr as JSON lines (for log collectors in a cluster)."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class _Slot:
    """One series of a `WorkloadGauge`, as `labels()` returns it (only `set` is asked of it)."""

    __slots__ = ("_gauge", "_key")

    def __init__(self, gauge: WorkloadGauge, key: tuple[str, ...]) -> None:
        self._gauge = gauge
        self._key = key

    def set(self, value: float) -> None:
        self._gauge._values[self._key] = float(value)
        if len(self._key) > 2:
            self._gauge._suffixes.add(self._key[2:])


class WorkloadGauge(Collector):
    """A labeled gauge kept as plain floats by label tuple and rendered when scraped: `labels(*values).set(v)` and
    `remove(*values)` as prometheus-client's Gauge, at a fifth of its memory per series."""

    def __init__(self, name: str, documentation: str, labelnames: list[str], *, registry: CollectorRegistry) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._values: dict[tuple[str, ...], float] = {}
        # the label values after namespace and deployment seen so far (quantiles, kinds): a few, so that forgetting
        # a workload costs a few lookups, not a pass over every series
        self._suffixes: set[tuple[str, ...]] = set()
        registry.register(self)

    def labels(self, *values: str) -> _Slot:
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected, got {len(values)}")
        return _Slot(self, values)

    def remove(self, *values: str) -> None:
        self._values.pop(tuple(values), None)

    def forget(self, namespace: str, deployment: str) -> None:
        """Drop every series of one workload."""
        self._values.pop((namespace, deployment), None)
        for suffix in self._suffixes:
            self._values.pop((namespace, deployment, *suffix), None)

    def series(self) -> list[tuple[str, ...]]:
        """The label tuples with a value."""
        return list(self._values)

    def value(self, *values: str) -> float | None:
        return self._values.get(tuple(values))

    def describe(self) -> list[Metric]:
        return [GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labelnames)
        for labels, value in list(self._values.items()):  # a copy: the loop may write while a scrape renders
            family.add_metric([str(v) for v in labels], value)
        yield family


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.forecast = WorkloadGauge(
            "aihpa_forecast_cores", "Forecast CPU demand (cores) for the next model step, by quantile",
            ["namespace", "deployment", "quantile"], registry=r,
        )
        self.forecast_peak = WorkloadGauge(
            "aihpa_forecast_peak_cores", "Forecast peak CPU demand (cores) over the horizon, by quantile",
            ["namespace", "deployment", "quantile"], registry=r,
        )
        self.usage = WorkloadGauge("aihpa_usage_cores", "Observed CPU usage (cores), summed over the workload's pods",
                                   ["namespace", "deployment"], registry=r)
        self.replicas = WorkloadGauge(
            "aihpa_replicas", "Replica counts: current, desired (the decision) and reactive (the HPA's answer)",
            ["namespace", "deployment", "kind"], registry=r,
        )
        self.saturation_risk = WorkloadGauge(
            "aihpa_saturation_risk", "The workload's SLO: the share of minutes it may be short of CPU",
            ["namespace", "deployment"], registry=r,
        )
        self.saturated_share = WorkloadGauge(
            "aihpa_saturated_share",
            "Realized share of model steps over the last day (or since the workload was first seen, from its 60th "
            "step) in which usage reached what its ready pods may use (the CPU limit, else the request)",
            ["namespace", "deployment"], registry=r,
        )
        self.decisions = Counter("aihpa_decisions_total", "Scaling decisions by kind of reason",
                                 ["reason"], registry=r)
        self.scalings = Counter("aihpa_scale_changes_total", "Scale subresource writes", ["direction"], registry=r)
        self.errors = Counter("aihpa_errors_total", "Errors by kind", ["kind"], registry=r)
        self.object_errors = Counter(
            "aihpa_object_errors_total", "Watched objects whose event could not be handled (each left as it was), "
            "by kind of object and exception", ["kind", "reason"], registry=r,
        )
        self.cycle = Histogram(
            "aihpa_cycle_duration_seconds", "Duration of one controller cycle",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r,
        )
        self.forecast_latency = Histogram(
            "aihpa_forecast_duration_seconds", "Duration of one batched forecast over all workloads",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5), registry=r,
        )
        self.workloads = Gauge("aihpa_workloads", "Workloads by state", ["state"], registry=r)
        self.api_writes = Counter(
            "aihpa_api_writes", "Writes to the API server by what they change: scale, status (the aihpa/status "
            "annotation, or the scale with its step record), event, leases, configmaps, horizontalpodautoscalers",
            ["kind"], registry=r,
        )
        self.writes_per_cycle = Histogram(
            "aihpa_api_writes_per_cycle", "Writes to the API server in one controller cycle",
            buckets=(0, 1, 10, 100, 300, 1000, 3000, 10000, 30000), registry=r,
        )
        self.last_cycle_writes = Gauge("aihpa_api_writes_last_cycle", "Writes to the API server in the last cycle",
                                       registry=r)
        self.api_throttle = Histogram(
            "aihpa_api_throttle_wait_seconds", "Time a write waited for the client-side rate limit (qps, burst)",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30), registry=r,
        )
        self._cycle_writes = 0
        self.leader = Gauge("aihpa_leader", "1 when this replica is the leader", registry=r)
        self.model = Gauge("aihpa_model_info", "The forecasting model in use (1) and earlier ones (0)", ["version"],
                           registry=r)
        self.challenges = Counter("aihpa_model_challenges_total", "Champion/challenger outcomes", ["outcome"],
                                  registry=r)

    def forget(self, namespace: str, deployment: str) -> None:
        """Drop the series of a workload that is gone, so /metrics does not grow without bound."""
        for gauge in (self.forecast, self.forecast_peak, self.usage, self.replicas, self.saturation_risk,
                      self.saturated_share):
            gauge.forget(namespace, deployment)

    # ---- the API writes (`aihpa.k8s.client.RequestObserver`) ---------------------------------------------------

    def on_write(self, kind: str) -> None:
        self.api_writes.labels(kind=kind).inc()
        self._cycle_writes += 1

    def on_throttle(self, wait_s: float) -> None:
        self.api_throttle.observe(wait_s)

    def end_cycle(self) -> int:
        """Close the cycle's count of writes (exported as a histogram and as the last cycle's gauge); returns it."""
        n, self._cycle_writes = self._cycle_writes, 0
        self.writes_per_cycle.observe(n)
        self.last_cycle_writes.set(n)
        return n

    def render(self) -> bytes:
        return generate_latest(self.registry)


def health_app(
    metrics: ControllerMetrics, *, healthy: Callable[[], tuple[bool, str]], ready: Callable[[], tuple[bool, str]]
) -> web.Application:
    """/metrics, /healthz (the loop is alive) and /readyz (caches synced, model loaded)."""

    async def get_metrics(_: web.Request) -> web.Response:
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    def probe(check: Callable[[], tuple[bool, str]]) -> Callable[[web.Request], object]:
        async def handler(_: web.Request) -> web.Response:
            ok, why = check()
            return web.Response(status=200 if ok else 503, text=("ok" if ok else "not ok") + f": {why}\n")

        return handler

    app = web.Application()
    app.router.add_get("/metrics", get_metrics)
    app.router.add_get("/healthz", probe(healthy))  # type: ignore[arg-type]
    app.router.add_get("/readyz", probe(ready))  # type: ignore[arg-type]
    return app
