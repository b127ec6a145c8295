"""Hyper-parameter search for the Bi-LSTM by successive halving, under a wall-time budget.

Each rung trains every surviving configuration for more optimizer steps and keeps the best third by validation
pinball loss (the time-ordered validation split of the training data, never the backtest's scored window). The
finalists are then ranked by backtest cost at SLO (aihpa's policy, DESIGN section 6) on held-back traces that no
trial trained on, when the caller gives them; validation pinball breaks ties and ranks when there are none. The
search is deterministic for a seed (configurations are drawn from a seeded generator, training is seeded); a wall-time
budget may end it early, with the best configuration found so far. Pure: no network; the caller passes the clock
(`elapsed`) and writes the results.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aihpa.backtest.run import run_backtest
from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.forecaster import BiLSTMForecaster
from aihpa.forecast.input_pipeline import Series
from aihpa.forecast.train import TrainResult, train
from aihpa.traces import Trace

__all__ = ["SEARCH_SPACE", "Trial", "TuneResult", "sample_configs", "successive_halving"]

#: Values each hyper-parameter is drawn from (model fields and training fields alike).
SEARCH_SPACE: dict[str, tuple[Any, ...]] = {
    "window": (16, 32, 48),
    "hidden": (8, 16, 24),
    "layers": (1, 2),
    "learning_rate": (1e-3, 3e-3, 1e-2),
    "horizon_decay": (0.0, 0.5),
    "quantiles": ((0.5, 0.9, 0.99), (0.5, 0.75, 0.9, 0.95, 0.99)),
}
_MODEL_FIELDS = {f.name for f in dataclasses.fields(ModelConfig)}


@dataclass
class Trial:
    id: int
    params: dict[str, Any]
    # validation pinball loss after each rung it took part in
    scores: list[float] = field(default_factory=list)
    steps: list[int] = field(default_factory=list)
    result: TrainResult | None = None
    # mean backtest cost at SLO on the held-back traces (finalists only; None: not measured or no 1% crossing)
    cost_at_slo: float | None = None

    @property
    def score(self) -> float:
        return self.scores[-1] if self.scores else math.inf


@dataclass
class TuneResult:
    trials: list[Trial]
    best: Trial
    rungs: int
    stopped_early: bool

    def table(self) -> list[dict[str, Any]]:
        """One row per trial, best first (JSON-able)."""
        rows = []
        for t in sorted(self.trials, key=lambda t: (t.score, t.id)):
            rows.append({
                "trial": t.id,
                **{k: list(v) if isinstance(v, tuple) else v for k, v in t.params.items()},
                "steps": t.steps[-1] if t.steps else 0,
                "val_pinball": None if math.isinf(t.score) else t.score,
                "cost_at_slo": t.cost_at_slo,
                "rungs": len(t.scores),
            })
        return rows

    def markdown(self) -> str:
        rows = self.table()
        if not rows:
            return ""
        keys = list(rows[0])
        lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        for r in rows:
            cells = [f"{v:.5f}" if isinstance(v, float) else str(v) for v in r.values()]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines) + "\n"


def sample_configs(n: int, *, seed: int, base: ModelConfig | None = None) -> list[dict[str, Any]]:
    """`n` distinct parameter sets drawn from SEARCH_SPACE (fewer if the space is smaller)."""
    rng = np.random.default_rng(seed)
    seen: set[str] = set()
    out: list[dict[str, Any]] = []
    base = base or ModelConfig()
    for _ in range(n * 20):
        if len(out) >= n:
            break
        params = {k: v[int(rng.integers(len(v)))] for k, v in SEARCH_SPACE.items()}
        # the level window must fit in the window
        if params["window"] < base.level_window:
            continue
        key = repr(sorted(params.items()))
        if key not in seen:
            seen.add(key)
            out.append(params)
    return out


def _configs(params: dict[str, Any], *, base_model: ModelConfig, base_train: TrainConfig,
             steps: int) -> tuple[ModelConfig, TrainConfig]:
    model_kw = {k: v for k, v in params.items() if k in _MODEL_FIELDS}
    train_kw = {k: v for k, v in params.items() if k not in _MODEL_FIELDS}
    model = dataclasses.replace(base_model, **model_kw)
    model.validate()
    trainer = dataclasses.replace(base_train, **train_kw, max_steps=steps, eval_every=max(1, min(50, steps // 4)),
                                  progress=False)
    return model, trainer


def successive_halving(
    series: Sequence[Series],
    *,
    trials: int = 9,
    min_steps: int = 100,
    eta: int = 3,
    rungs: int = 3,
    seed: int = 0,
    base_model: ModelConfig | None = None,
    base_train: TrainConfig | None = None,
    elapsed: Callable[[], float] | None = None,
    budget_s: float | None = None,
    on_trial: Callable[[Trial, int], None] | None = None,
    holdback: Sequence[Trace] = (),
    finalists: int = 3,
) -> TuneResult:
    """Successive halving: rung r trains the survivors for min_steps * eta**r steps and keeps the best 1/eta.

    `elapsed()` (seconds since the search began) and `budget_s` bound the wall time: no new training starts once the
    budget is spent. `on_trial(trial, rung)` is called after each training (for a progress view).
    """
    base_model = base_model or ModelConfig()
    base_train = dataclasses.replace(base_train or TrainConfig(), seed=seed)
    pool = [Trial(id=i, params=p) for i, p in enumerate(sample_configs(trials, seed=seed, base=base_model))]
    if not pool:
        raise ValueError("the search space gave no configuration")
    alive = list(pool)
    stopped = False
    done_rungs = 0
    for rung in range(rungs):
        steps = min_steps * eta**rung
        for trial in alive:
            if budget_s is not None and elapsed is not None and elapsed() >= budget_s:
                stopped = True
                break
            model_cfg, train_cfg = _configs(trial.params, base_model=base_model, base_train=base_train, steps=steps)
            result = train(series, model_cfg, train_cfg)
            trial.result = result
            trial.scores.append(float(result.metrics["val_pinball"]))
            trial.steps.append(steps)
            if on_trial is not None:
                on_trial(trial, rung)
        ranked = sorted((t for t in alive if len(t.scores) == rung + 1), key=lambda t: (t.score, t.id))
        if not ranked:
            break
        done_rungs = rung + 1
        if stopped:
            break
        alive = ranked[: max(1, len(ranked) // eta)]
    candidates = [t for t in pool if t.scores]
    if not candidates:
        raise ValueError("the budget ended before the first training finished")
    # the best is judged at the highest rung reached by anyone, so a long-trained trial is not beaten by a short one
    top = max(len(t.scores) for t in candidates)
    final = sorted((t for t in candidates if len(t.scores) == top), key=lambda t: (t.score, t.id))[:finalists]
    if holdback and not (budget_s is not None and elapsed is not None and elapsed() >= budget_s):
        for t in final:
            t.cost_at_slo = _holdback_cost(t, holdback)
    best = min(final, key=lambda t: (math.inf if t.cost_at_slo is None else t.cost_at_slo, t.score, t.id))
    return TuneResult(trials=pool, best=best, rungs=done_rungs, stopped_early=stopped)


def _holdback_cost(trial: Trial, traces: Sequence[Trace]) -> float | None:
    """Mean cost at SLO of aihpa's policy with this trial's model over the held-back traces."""
    assert trial.result is not None
    forecaster = BiLSTMForecaster(trial.result.model, version=f"trial-{trial.id}")
    costs = []
    for trace in traces:
        result = run_backtest(trace, policies=["aihpa"], forecaster=forecaster)
        cost = result.policies["aihpa"].cost_at_slo
        if cost is None:
            return None
        costs.append(cost)
    return float(np.mean(costs)) if costs else None
