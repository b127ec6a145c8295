"""Prometheus metrics of the controller, and the /metrics, /healthz, /readyz endpoints that serve them.

Each controller has its own `CollectorRegistry`, so several can live in one process (tests, the demo).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["ControllerMetrics", "JsonFormatter", "health_app", "use_json_logs"]


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


class ControllerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.forecast = Gauge(
            "aihpa_forecast_cores", "Forecast CPU demand (cores) for the next model step, by quantile",
            ["namespace", "deployment", "quantile"], registry=r,
        )
        self.forecast_peak = Gauge(
            "aihpa_forecast_peak_cores", "Forecast peak CPU demand (cores) over the horizon, by quantile",
            ["namespace", "deployment", "quantile"], registry=r,
        )
        self.usage = Gauge("aihpa_usage_cores", "Observed CPU usage (cores), summed over the workload's pods",
                           ["namespace", "deployment"], registry=r)
        self.replicas = Gauge(
            "aihpa_replicas", "Replica counts: current, desired (the decision) and reactive (the HPA's answer)",
            ["namespace", "deployment", "kind"], registry=r,
        )
        self.saturation_risk = Gauge(
            "aihpa_saturation_risk", "The workload's SLO: the share of minutes it may be short of CPU",
            ["namespace", "deployment"], registry=r,
        )
        self.saturated_share = Gauge(
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
        self.leader = Gauge("aihpa_leader", "1 when this replica is the leader", registry=r)
        self.model = Gauge("aihpa_model_info", "The forecasting model in use (1) and earlier ones (0)", ["version"],
                           registry=r)
        self.challenges = Counter("aihpa_model_challenges_total", "Champion/challenger outcomes", ["outcome"],
                                  registry=r)

    def forget(self, namespace: str, deployment: str) -> None:
        """Drop the series of a workload that is gone, so /metrics does not grow without bound."""
        for gauge in (self.forecast, self.forecast_peak):
            for labels in list(gauge._metrics):  # prometheus-client keeps children by label tuple
                if labels[:2] == (namespace, deployment):
                    gauge.remove(*labels)
        for gauge in (self.usage, self.replicas, self.saturation_risk, self.saturated_share):
            for labels in list(gauge._metrics):
                if labels[:2] == (namespace, deployment):
                    gauge.remove(*labels)

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
