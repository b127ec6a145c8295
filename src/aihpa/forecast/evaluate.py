"""Forecast quality on a trace's scored window: MAE and pinball loss k steps ahead, for any `Forecaster`.

Every forecaster sees the true past up to t (this is forecast quality, not a scaling backtest) and is scored on
y[t + k] for every t in the last 80% of the trace. Losses are divided by the mean of y over the scored points, so
traces of any unit compare. `training_overlap` tells, from a checkpoint's record of its training data, whether the
scored targets include rows the model was trained on; `verdict` says in one line how the model fares against the
baselines. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import numpy as np
import numpy.typing as npt

from aihpa.forecast.forecaster import Forecaster
from aihpa.traces import Trace

__all__ = ["EvalRow", "Overlap", "evaluate", "mean_pinball", "pinball", "scored_targets", "training_overlap", "verdict"]

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


def scored_targets(n: int, *, steps_ahead: int, scored_fraction: float = SCORED_FRACTION) -> tuple[int, int]:
    """The rows [first, stop) whose values `evaluate` scores on a trace of `n` rows."""
    return max(n - int(n * scored_fraction), steps_ahead), n


@dataclass(frozen=True)
class Overlap:
    """Scored rows that a model was trained on."""

    # the trace file as the checkpoint names it
    file: str
    # the rows [0, trained_rows) of that file the model was fitted on
    trained_rows: int
    # the first scored row, and how many scored rows lie among the trained ones
    first_scored: int
    rows: int
    # all scored rows
    scored: int

    def message(self) -> str:
        share = self.rows / self.scored if self.scored else 0.0
        return (f"the model was trained on rows 0-{self.trained_rows - 1} of {self.file} (its checkpoint says so), "
                f"and the scores start at row {self.first_scored}: {self.rows} of the {self.scored} scored rows "
                f"({share:.0%}) are ones it was trained on, so its scores here are optimistic; evaluate it on a "
                "file it was not trained on, or train with a smaller --history-fraction")


def training_overlap(
    *,
    file: str,
    column: str | None,
    rows: int,
    metadata: Mapping[str, Any],
    steps_ahead: int,
    sha256: str | None = None,
    scored_fraction: float = SCORED_FRACTION,
) -> Overlap | None:
    """The scored rows of `file` (`rows` rows, demand `column`) that the checkpoint `metadata` says its model was
    trained on; None when there are none.

    A file is the one trained on when its name or its content digest is the one recorded (a renamed copy is still
    the same data; a longer export of the same series still starts with the rows trained on). Training always takes
    a trace's first rows (`history_part`).
    """
    name = PurePath(file).name
    stem = PurePath(file).stem
    provenance = metadata.get("provenance")
    recorded: Sequence[Any] = provenance.get("traces", []) if isinstance(provenance, Mapping) else []
    trained = 0
    for entry in recorded:
        if not isinstance(entry, Mapping):
            continue
        same = entry.get("file") == name or (sha256 is not None and entry.get("sha256") == sha256)
        if not same or (column and entry.get("column") and entry.get("column") != column):
            continue
        trained = max(trained, int(entry.get("points_used") or 0))
    if not recorded:  # checkpoints without provenance (tuned, fine-tuned) name their series by the file's stem
        for entry in metadata.get("data") or []:
            if isinstance(entry, Mapping) and entry.get("name") == stem:
                trained = max(trained, int(entry.get("points") or 0))
    first, stop = scored_targets(rows, steps_ahead=steps_ahead, scored_fraction=scored_fraction)
    inside = max(0, min(trained, stop) - first)
    if inside == 0:
        return None
    return Overlap(file=name, trained_rows=trained, first_scored=first, rows=inside, scored=max(0, stop - first))


def mean_pinball(row: EvalRow) -> float:
    """The row's pinball loss averaged over the reported quantiles: the one figure the verdict compares."""
    return float(np.mean(list(row.pinball.values())))


def verdict(rows: Sequence[EvalRow], *, model: str = "bilstm") -> str:
    """One line: whether `model` beats each of the other rows (the naive baselines) on mean pinball loss."""
    by_name = {r.forecaster: r for r in rows}
    if model not in by_name:
        raise ValueError(f"no row for {model!r}")
    ours = mean_pinball(by_name[model])
    others = [r for r in rows if r.forecaster != model]
    beaten = [r.forecaster for r in others if ours < mean_pinball(r)]
    not_beaten = [r.forecaster for r in others if ours >= mean_pinball(r)]
    figures = ", ".join([f"{model} {ours:.4f}"] + [f"{r.forecaster} {mean_pinball(r):.4f}" for r in others])
    if not not_beaten:
        head = f"{model} beats {' and '.join(beaten)}"
    elif not beaten:
        head = f"{model} does not beat {' or '.join(not_beaten)}"
    else:
        head = f"{model} beats {' and '.join(beaten)} but not {' or '.join(not_beaten)}"
    quantiles = "/".join(f"p{round(q * 100)}" for q in REPORT_QUANTILES)
    return f"{head} on mean pinball loss over {quantiles} ({figures}; lower is better)"


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
    first, _ = scored_targets(n, steps_ahead=steps_ahead, scored_fraction=scored_fraction)
    # every target y[t + k] inside the scored window, forecast from the history up to t
    positions = np.arange(first - steps_ahead, n - steps_ahead, dtype=np.int64)
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
