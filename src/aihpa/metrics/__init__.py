"""Metrics: where each workload's CPU usage comes from (metrics.k8s.io or Prometheus) and where it is kept (History).

Adapter layer: sources do network I/O; `History` is plain data. Nothing here decides how to scale.
"""

from aihpa.metrics.history import History, Series
from aihpa.metrics.metrics_api import MetricsAPISource
from aihpa.metrics.prometheus import DEFAULT_QUERY, PrometheusSource
from aihpa.metrics.quantity import parse_cpu
from aihpa.metrics.source import MetricsError, MetricsSource, WorkloadRef, selector_matches, selector_to_string

__all__ = [
    "DEFAULT_QUERY",
    "History",
    "MetricsAPISource",
    "MetricsError",
    "MetricsSource",
    "PrometheusSource",
    "Series",
    "WorkloadRef",
    "parse_cpu",
    "selector_matches",
    "selector_to_string",
]
