"""Metrics: where each workload's usage comes from (CPU from metrics.k8s.io or Prometheus, a named metric from
Prometheus) and where it is kept (History).

Adapter layer: sources do network I/O; `History` is plain data. Nothing here decides how to scale.
"""

from aihpa.metrics.history import History, Series
from aihpa.metrics.metrics_api import MetricsAPISource
from aihpa.metrics.prometheus import DEFAULT_QUERY, PrometheusSource, check_template
from aihpa.metrics.quantity import parse_cpu
from aihpa.metrics.routing import RoutedSource
from aihpa.metrics.source import (
    MetricsError,
    MetricsSource,
    WorkloadRef,
    known_metrics,
    selector_matches,
    selector_to_string,
)

__all__ = [
    "DEFAULT_QUERY",
    "History",
    "MetricsAPISource",
    "MetricsError",
    "MetricsSource",
    "PrometheusSource",
    "RoutedSource",
    "Series",
    "WorkloadRef",
    "check_template",
    "known_metrics",
    "parse_cpu",
    "selector_matches",
    "selector_to_string",
]
