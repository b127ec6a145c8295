"""Forecast quality on a trace's scored window: MAE and pinball loss k steps ahead, for any `Forecaster`.

Every forecaster sees the true past up to t (this is forecast quality, not a scaling backtest) and is scored on
y[t + k] for every t in the last 80% of the trace. Losses are divided by the mean of y over the scored points, so
traces of any unit compare. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aihpa.forecast.forecaster import Forecaster
from aihpa.traces import Trace

__all__ = ["EvalRow", "evaluate", "pinball"]

SCORED_FRACTION = 0.8
REPORT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)


@dataclass(frozen=True)
class EvalRow:
    forecaster: str
    version: str
    points: int
    # mean absolute error of the median, relative to the mean of y
    mae: float
    # mean pinball loss per quantile, relative to the mean of y
    pinball: dict[float, float]


def pinball(y: npt.NDArray[np.float64], q_hat: npt.NDArray[np.float64], q: float) -> float:
    err = y - q_hat
    return float(np.mean(np.maximum(q * err, (q - 1.0) * err)))


def _quantile_index(quantiles: tuple[float, ...], q: float) -> int:
    return int(np.argmin(np.abs(np.asarray(quantiles) - q)))


def evaluate(
    trace: Trace,
    forecasters: Mapping[str, Forecaster],
    *,
    steps_ahead: int = 2,
    scored_fraction: float = SCORED_FRACTION,
    chunk: int = 4096,
) -> list[EvalRow]:
    """Score each forecaster on predicting y[t + steps_ahead] from y[..t] over the scored window."""
    values = trace.values
    n = len(values)
    first = n - int(n * scored_fraction)
    # every target y[t + k] inside the scored window, forecast from the history up to t
    positions = np.arange(max(first - steps_ahead, 0), n - steps_ahead, dtype=np.int64)
    if positions.size == 0:
        raise ValueError(f"{trace.name}: too short to score {steps_ahead} steps ahead")
    y = values[positions + steps_ahead].astype(np.float64)
    scale = max(float(np.mean(np.abs(y))), 1e-12)
    times = trace.seconds()
    rows = []
    for name, fc in forecasters.items():
        if steps_ahead > fc.horizon:
            raise ValueError(f"{name}: horizon {fc.horizon} is shorter than {steps_ahead} steps")
        ctx = fc.context
        preds = np.empty((positions.size, len(fc.quantiles)), dtype=np.float64)
        for lo in range(0, positions.size, chunk):
            pos = positions[lo : lo + chunk]
            histories = [values[max(0, t - ctx + 1) : t + 1] for t in pos]
            end = None if times is None else times[pos]
            out = fc.predict(histories, end_times=end, step_s=trace.step_s)
            preds[lo : lo + pos.size] = out[:, steps_ahead - 1, :]
        median = preds[:, _quantile_index(fc.quantiles, 0.5)]
        losses = {q: pinball(y, preds[:, _quantile_index(fc.quantiles, q)], q) / scale for q in REPORT_QUANTILES}
        rows.append(
            EvalRow(
                forecaster=name,
                version=fc.version,
                points=int(positions.size),
                mae=float(np.mean(np.abs(y - median))) / scale,
                pinball=losses,
            )
        )
    return rows
