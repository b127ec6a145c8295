"""The cycle's forecast: every workload at a new model step, in batched calls of `CHUNK` workloads, in a worker thread.

A workload with too little history is left out (the policy then falls back to the reactive HPA); a forecaster that
raises costs this step's forecasts, never the cycle. What the model said one step ago about the step that just
closed feeds the drift monitor (relative errors: a workload on a named metric counts in its own unit, and the
model scales each series by its own level, so any positive series is forecast alike). Blocking model code never runs
on the event loop.
"""

from __future__ import annotations

import asyncio
import functools
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


#: Workloads whose histories are read and forecast together: each history is a day and more of points, and the batch
#: holds them only a chunk at a time (10,000 of them at once were ~60 MB on top of the model's own working memory).
CHUNK = 1024


@dataclass
class ForecastBatch:
    """The workloads to forecast this step (their histories are read again, a chunk at a time, by `predict`)."""

    workloads: list[Workload] = field(default_factory=list)
    now: float = 0.0


def gather(
    workloads: Sequence[Workload], *, history: History, forecaster: Forecaster, drift: DriftMonitor, now: float
) -> ForecastBatch:
    """The workloads with enough history for `forecaster`; every workload's previous forecast is cleared."""
    batch = ForecastBatch(now=now)
    for w in workloads:
        series = history.series(w.key, now=now)
        w.forecast = None
        if series is None or np.isfinite(series.values).sum() < forecaster.min_history:
            continue
        if w.last_forecast is not None:
            # what the model said one step ago about the step that just closed
            drift.observe(forecast=w.last_forecast, actual=float(series.values[-1]))
        batch.workloads.append(w)
    return batch


async def predict(
    batch: ForecastBatch, *, history: History, forecaster: Forecaster, step_s: float, metrics: ControllerMetrics
) -> int:
    """Forecast the batch off the event loop, `CHUNK` workloads at a time (their histories read here, on the event
    loop, which is the only writer of `history`); returns how many workloads got a forecast. A chunk the forecaster
    fails on gets none (its workloads are decided reactively this step), the others still do."""
    loop = asyncio.get_running_loop()
    done = 0
    spent = 0.0
    median = int(np.argmin(np.abs(np.asarray(forecaster.quantiles) - 0.5)))
    for lo in range(0, len(batch.workloads), CHUNK):
        chunk: list[Workload] = []
        histories: list[npt.NDArray[np.floating]] = []
        ends: list[float] = []
        for w in batch.workloads[lo : lo + CHUNK]:
            series = history.series(w.key, now=batch.now)
            if series is None:  # forgotten meanwhile (its Deployment deleted)
                continue
            chunk.append(w)
            histories.append(series.values[-forecaster.context :])
            ends.append(series.end)
        if not chunk:
            continue
        t0 = loop.time()
        try:
            out = await loop.run_in_executor(
                None, functools.partial(forecaster.predict, histories, end_times=ends, step_s=step_s)
            )
        except Exception:
            logger.exception("forecast failed; deciding reactively this step")
            metrics.errors.labels(kind="forecast").inc()
            continue
        finally:
            spent += loop.time() - t0
        done += len(chunk)
        for w, f in zip(chunk, out, strict=True):
            w.forecast = f
            w.last_forecast = float(f[0, median])
            if w.metric is not None:  # the gauges count cores
                continue
            for qi, q in enumerate(forecaster.quantiles):
                label = f"p{round(q * 100)}"
                metrics.forecast.labels(w.ref.namespace, w.ref.name, label).set(float(f[0, qi]))
                metrics.forecast_peak.labels(w.ref.namespace, w.ref.name, label).set(float(f[:, qi].max()))
    if batch.workloads:
        metrics.forecast_latency.observe(spent)
    return done
