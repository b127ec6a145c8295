"""A simulated Kubernetes cluster that real clients (kubectl, kubernetes-asyncio) cannot tell from an API server.

Serves the Kubernetes REST protocol on 127.0.0.1 with real semantics (resourceVersions, conflicts, watches, patches,
the Scale subresource, mutating admission), Deployments whose pods start after a delay and consume a demand trace,
metrics.k8s.io PodMetrics, the HPA controller for autoscaling/v2 HorizontalPodAutoscalers, and fault injection, all on
an injectable clock. For tests and the demo only: it must never be imported by the pure core (`aihpa.traces`,
`aihpa.forecast`, `aihpa.scaling`, `aihpa.backtest`).

Names are loaded on first use, so that `aihpa --help` (which imports `aihpa.sim.cli`) does not load aiohttp.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aihpa.sim.cluster import TOKEN, Cluster
    from aihpa.sim.errors import ApiError
    from aihpa.sim.faults import Fault, Faults
    from aihpa.sim.hpa import HorizontalPodAutoscalers
    from aihpa.sim.server import ServerSettings
    from aihpa.sim.workload import STARTUP_ANNOTATION, TRACE_ANNOTATION, Demand, TraceDemand

__all__ = [
    "STARTUP_ANNOTATION",
    "TOKEN",
    "TRACE_ANNOTATION",
    "ApiError",
    "Cluster",
    "Demand",
    "Fault",
    "Faults",
    "HorizontalPodAutoscalers",
    "ServerSettings",
    "TraceDemand",
]

_HOMES = {
    "TOKEN": "cluster", "Cluster": "cluster", "ApiError": "errors", "Fault": "faults", "Faults": "faults",
    "HorizontalPodAutoscalers": "hpa", "ServerSettings": "server", "STARTUP_ANNOTATION": "workload",
    "TRACE_ANNOTATION": "workload", "Demand": "workload", "TraceDemand": "workload",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'aihpa.sim' has no attribute {name!r}")
    return getattr(importlib.import_module(f"aihpa.sim.{home}"), name)
