"""The cycle's forecast: every workload at a new model step, in ONE batched call, in a worker thread.

A workload with too little history is left out (the policy then falls back to the reactive HPA); a forecaster that
raises costs this step's forecasts, never the cycle. What the model said one step ago about the step that just
closed feeds the drift monitor (relative errors: a workload on a named metric counts in its own unit, and the
model scales each series by its own level, so any positive series is forecast alike). Blocking model code never runs
on the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from aihpa.controller.workload import Workload
from aihpa.forecast.forecaster import Forecaster
from aihpa.lifecycle import DriftMonitor
from aihpa.metrics.history import History
from aihpa.observability import ControllerMetrics

__all__ = ["ForecastBatch", "gather", "predict"]

logger = logging.getLogger(__name__)


@dataclass
class ForecastBatch:
    """The workloads to forecast this step, each with its recent history and the time of its last sample."""

    workloads: list[Workload] = field(default_factory=list)
    histories: list[npt.NDArray[np.floating]] = field(default_factory=list)
    ends: list[float] = field(default_factory=list)


def gather(
    workloads: Sequence[Workload], *, history: History, forecaster: Forecaster, drift: DriftMonitor, now: float
) -> ForecastBatch:
    """The workloads with enough history for `forecaster`; every workload's previous forecast is cleared."""
    batch = ForecastBatch()
    for w in workloads:
        series = history.series(w.key, now=now)
        w.forecast = None
        if series is None or np.isfinite(series.values).sum() < forecaster.min_history:
            continue
        if w.last_forecast is not None:
            # what the model said one step ago about the step that just closed
            drift.observe(forecast=w.last_forecast, actual=float(series.values[-1]))
        batch.histories.append(series.values[-forecaster.context:])
        batch.ends.append(series.end)
        batch.workloads.append(w)
    return batch


async def predict(
    batch: ForecastBatch, *, forecaster: Forecaster, step_s: float, metrics: ControllerMetrics
) -> int:
    """Forecast the batch off the event loop; returns how many workloads got a forecast (0 when it failed)."""
    if not batch.workloads:
        return 0
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    try:
        out = await loop.run_in_executor(
            None, lambda: forecaster.predict(batch.histories, end_times=batch.ends, step_s=step_s)
        )
    except Exception:
        logger.exception("forecast failed; deciding reactively this step")
        metrics.errors.labels(kind="forecast").inc()
        return 0
    metrics.forecast_latency.observe(loop.time() - t0)
    median = int(np.argmin(np.abs(np.asarray(forecaster.quantiles) - 0.5)))
    for w, f in zip(batch.workloads, out, strict=True):
        w.forecast = f
        w.last_forecast = float(f[0, median])
        if w.metric is not None:  # the gauges count cores
            continue
        for qi, q in enumerate(forecaster.quantiles):
            label = f"p{round(q * 100)}"
            metrics.forecast.labels(w.ref.namespace, w.ref.name, label).set(float(f[0, qi]))
            metrics.forecast_peak.labels(w.ref.namespace, w.ref.name, label).set(float(f[:, qi].max()))
    return len(batch.workloads)
