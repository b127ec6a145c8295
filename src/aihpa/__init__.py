"""aihpa: a predictive Horizontal Pod Autoscaler for Kubernetes.

A Bi-LSTM (trained with JAX/Flax, served with NumPy) forecasts each labeled Deployment's CPU demand over the scaling
lead time, and aihpa scales the Deployment before the load arrives. The package is also an async library; the building
blocks are importable from here:

- `Controller`, `ControllerSettings`: the operator loop, an async context manager (`async with Controller(...)`),
  over a `KubeClient` and a metrics source (`MetricsAPISource` for metrics.k8s.io, `PrometheusSource`).
- `load_default_forecaster`, `BiLSTMForecaster`, `Forecaster`: the shipped model and the forecaster protocol.
- `PredictivePolicy`, `ReactivePolicy`, `Observation`, `Decision`, `Behavior`, `hpa_replicas`, `apply_behavior`:
  the pure scaling math (the HPA's algorithm and aihpa's own), `now` always an argument.
- `create_app`, `start_server`, `WebhookSettings`: the mutating admission webhook (aiohttp); `certs` generates a CA
  and serving certificates (`certs.generate`), `CertificateSource` serves and renews them.
- `Cluster`, `VirtualClock`: the simulated Kubernetes API on 127.0.0.1, on a stepped or accelerated clock.
- `run_backtest`, `load_trace`: the offline protocol that every scaling claim is measured with.
- `run_demo`, `DemoOptions`: `aihpa demo` as a function.

Names load on first use (`__getattr__`), so `import aihpa` stays light and `aihpa --help` fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from aihpa._version import __version__

if TYPE_CHECKING:
    from aihpa.backtest import run_backtest
    from aihpa.clock import Clock, SystemClock, VirtualClock
    from aihpa.controller import Controller, ControllerSettings, CycleReport, WorkloadDecision
    from aihpa.demo import DemoOptions, run_demo
    from aihpa.forecast.forecaster import BiLSTMForecaster, Forecaster, load_default_forecaster
    from aihpa.k8s import KubeClient
    from aihpa.metrics import MetricsAPISource, MetricsSource, PrometheusSource
    from aihpa.scaling import (
        DEFAULT_BEHAVIOR,
        Behavior,
        Decision,
        Observation,
        PredictivePolicy,
        ReactivePolicy,
        apply_behavior,
        hpa_replicas,
    )
    from aihpa.sim.cluster import Cluster
    from aihpa.traces import Trace, load_trace
    from aihpa.webhook import certs
    from aihpa.webhook.certs import CertificateSource
    from aihpa.webhook.server import create_app, start_server
    from aihpa.webhook.settings import WebhookSettings

#: Where each public name lives; resolved on first access.
_HOMES: dict[str, str] = {
    "Controller": "aihpa.controller",
    "ControllerSettings": "aihpa.controller",
    "CycleReport": "aihpa.controller",
    "WorkloadDecision": "aihpa.controller",
    "KubeClient": "aihpa.k8s",
    "MetricsAPISource": "aihpa.metrics",
    "MetricsSource": "aihpa.metrics",
    "PrometheusSource": "aihpa.metrics",
    "BiLSTMForecaster": "aihpa.forecast.forecaster",
    "Forecaster": "aihpa.forecast.forecaster",
    "load_default_forecaster": "aihpa.forecast.forecaster",
    "DEFAULT_BEHAVIOR": "aihpa.scaling",
    "Behavior": "aihpa.scaling",
    "Decision": "aihpa.scaling",
    "Observation": "aihpa.scaling",
    "PredictivePolicy": "aihpa.scaling",
    "ReactivePolicy": "aihpa.scaling",
    "apply_behavior": "aihpa.scaling",
    "hpa_replicas": "aihpa.scaling",
    "create_app": "aihpa.webhook.server",
    "start_server": "aihpa.webhook.server",
    "WebhookSettings": "aihpa.webhook.settings",
    "CertificateSource": "aihpa.webhook.certs",
    "Cluster": "aihpa.sim.cluster",
    "Clock": "aihpa.clock",
    "SystemClock": "aihpa.clock",
    "VirtualClock": "aihpa.clock",
    "run_backtest": "aihpa.backtest",
    "Trace": "aihpa.traces",
    "load_trace": "aihpa.traces",
    "DemoOptions": "aihpa.demo",
    "run_demo": "aihpa.demo",
}
#: Public submodules reachable as attributes.
_MODULES = {"certs": "aihpa.webhook.certs"}

__all__ = [
    "DEFAULT_BEHAVIOR",
    "Behavior",
    "BiLSTMForecaster",
    "CertificateSource",
    "Clock",
    "Cluster",
    "Controller",
    "ControllerSettings",
    "CycleReport",
    "Decision",
    "DemoOptions",
    "Forecaster",
    "KubeClient",
    "MetricsAPISource",
    "MetricsSource",
    "Observation",
    "PredictivePolicy",
    "PrometheusSource",
    "ReactivePolicy",
    "SystemClock",
    "Trace",
    "VirtualClock",
    "WebhookSettings",
    "WorkloadDecision",
    "__version__",
    "apply_behavior",
    "certs",
    "create_app",
    "hpa_replicas",
    "load_default_forecaster",
    "load_trace",
    "run_backtest",
    "run_demo",
    "start_server",
]


def __getattr__(name: str) -> Any:
    if name in _MODULES:
        value = importlib.import_module(_MODULES[name])
    elif name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
    else:
        raise AttributeError(f"module 'aihpa' has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
