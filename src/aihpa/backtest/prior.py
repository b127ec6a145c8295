"""Learning the calibration prior that a model ships with (`aihpa.scaling.prior` reads it).

The default policy (`default_backtest_policy`, what the controller runs) is replayed under the backtest protocol on the
part of each trace that the model was trained on (its first 20%: the scored window stays unseen), and each scoring's
calibration scores at the end of the replay (its window: the last day of scores, three for the last-usage scoring) are
kept. Every trace weighs the same: each contributes the same quantiles of its own scores, and the prior is those
quantiles of the pool. A trace can be left out (`exclude`), which is how the prior's effect is measured out of sample:
a workload's cold start is scored with a prior learned on the other traces only.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from aihpa.backtest.policies import AihpaBatch, default_backtest_policy
from aihpa.backtest.protocol import demand_from_values, replay
from aihpa.forecast.forecaster import Forecaster
from aihpa.forecast.train import HISTORY_FRACTION, history_part
from aihpa.scaling.policy import DEFAULT_SCORINGS, Scoring
from aihpa.scaling.prior import BAND_PRIOR
from aihpa.traces import Trace

__all__ = ["PRIOR_POINTS", "learn_prior", "pool_scores", "trace_scores"]

#: Quantiles kept per scoring (twice the scores a 1% risk needs, so the picks can span it evenly).
PRIOR_POINTS = 200
#: A trace whose replay left fewer scores than this for a scoring does not speak for it.
MIN_SCORES = 100
METHOD = (
    "the default policy replayed under the backtest protocol on each trace's training part; per scoring, "
    f"{PRIOR_POINTS} quantiles of the pooled per-trace quantiles of its calibration scores (traces weigh the same)"
)


def trace_scores(
    trace: Trace, forecaster: Forecaster, *, fraction: float = HISTORY_FRACTION
) -> dict[str, npt.NDArray[np.float64]]:
    """Per scoring label, the calibration scores (ascending) left in its window after replaying the first `fraction` of
    `trace` under the default policy, without a prior (the scores are the trace's own), with one more scoring beside
    the default ones: the forecaster's quantile band (`BAND_PRIOR`: the median's peak, scored in units of the distance
    to the top quantile's), which is never acted on."""
    part = history_part(trace, fraction)
    demand = demand_from_values(part.values)
    band = Scoring(base="quantile", mode="spread", name=BAND_PRIOR)
    policy = replace(default_backtest_policy(forecaster), scorings=(*DEFAULT_SCORINGS, band), band_prior=())
    times = part.seconds()
    batch = AihpaBatch([policy.risk], forecaster, policy=policy, times=times, step_s=part.step_s)
    replay(demand, batch, rows=1, times=times)
    state = batch.states[0]
    return {
        scoring.label: np.sort(np.asarray(cal.log_ratios, dtype=np.float64))
        for scoring, cal in zip(policy.scorings, state.calibrations, strict=True)
    }


def pool_scores(
    per_trace: Sequence[Mapping[str, npt.NDArray[np.float64]]], *, points: int = PRIOR_POINTS
) -> dict[str, list[float]]:
    """Per scoring label, `points` quantiles (at (i + 0.5) / points) of the pool of every trace's same quantiles."""
    levels = (np.arange(points) + 0.5) / points
    names = sorted({name for scores in per_trace for name in scores})
    out: dict[str, list[float]] = {}
    for name in names:
        parts = [
            np.quantile(scores[name], levels)
            for scores in per_trace
            if name in scores and np.isfinite(scores[name]).sum() >= MIN_SCORES
        ]
        if parts:
            pooled = np.concatenate([p[np.isfinite(p)] for p in parts])
            out[name] = [round(float(x), 6) for x in np.quantile(pooled, levels)]
    return out


def learn_prior(
    traces: Sequence[Trace],
    forecaster: Forecaster,
    *,
    exclude: Collection[str] = (),
    fraction: float = HISTORY_FRACTION,
) -> dict[str, Any]:
    """The prior of `forecaster` learned on `traces` (those named in `exclude` left out), as checkpoint metadata."""
    used = [t for t in traces if t.name not in exclude]
    if not used:
        raise ValueError("no trace left to learn a calibration prior on")
    pooled = pool_scores([trace_scores(t, forecaster, fraction=fraction) for t in used])
    scorings = {BAND_PRIOR: pooled[BAND_PRIOR]} if BAND_PRIOR in pooled else {}
    return {"points": PRIOR_POINTS, "scorings": scorings, "traces": [t.name for t in used], "fraction": fraction,
            "method": METHOD}
