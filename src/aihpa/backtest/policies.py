"""The policies a backtest compares, each run for every setting of its one knob at once (one row per setting).

- `hpa`: the Kubernetes HPA on CPU utilization (DESIGN 6.8): the replica formula with tolerance 0.1 and the default
  behavior, whose 300 s scale-down stabilization is "the highest recommendation of the last 5 steps" at 60 s steps.
  Knob: target utilization.
- `phpa-lr`, `phpa-hw`: the Predictive Horizontal Pod Autoscaler (jthomperoo/predictive-horizontal-pod-autoscaler,
  docs/user-guide/models.md, internal/controllers/controller.go, internal/scalebehavior/scalebehavior.go): every sync
  period it computes the HPA's replica count, stores it in the model's replica history, predicts from that history
  (linear regression or Holt-Winters, `aihpa.backtest.phpa`), takes decisionType "maximum" of the HPA value and the
  prediction, then applies its HPA-style behavior (defaults: scale-down stabilization 300 s, -100% per 60 s; scale-up
  max(+100%, +4 pods) per 60 s) and min/max. syncPeriod is one 60 s step. Model settings are tuned on the history part
  (`tune_linear`, `tune_holt_winters`). Knob: target utilization.
- `oracle`: knows d and asks at each step for max(ceil(d[t]/u), ceil(d[t+1]/u)), the cheapest schedule that has
  ceil(d/u) pods ready at every step, given that pods start in one step and scale-down is immediate. Knob: u.
- `aihpa`: `aihpa.scaling.PredictivePolicy` at 100% target utilization, with forecasts from an injected `Forecaster`
  (one batched call per step for all settings). Knob: the risk (target share of saturated steps).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from aihpa.backtest.phpa import HoltWintersModel, LinearModel
from aihpa.backtest.protocol import (
    MAX_PODS,
    MIN_PODS,
    REQUEST_CORES,
    StepView,
    replay,
    scored_start,
)
from aihpa.forecast.forecaster import Forecaster
from aihpa.scaling.behavior import (
    DEFAULT_BEHAVIOR,
    Behavior,
    BehaviorState,
    ScalingPolicy,
    ScalingRules,
    apply_behavior,
    record_scale,
)
from aihpa.scaling.factory import PodCpu, predictive_policy
from aihpa.scaling.hpa import DEFAULT_TOLERANCE, hpa_replicas
from aihpa.scaling.policy import Observation, PredictivePolicy, PredictiveState, ReactivePolicy, ReactiveState
from aihpa.scaling.prior import prior_of
from aihpa.step import DEFAULT_STEP_S

__all__ = [
    "AIHPA_BEHAVIOR",
    "AIHPA_KNOBS",
    "HPA_KNOBS",
    "ORACLE_KNOBS",
    "PHPA_BEHAVIOR",
    "AihpaBatch",
    "HpaBatch",
    "HpaFloorBatch",
    "OracleBatch",
    "PhpaBatch",
    "tune_holt_winters",
    "tune_linear",
]

#: Target utilizations swept for the HPA-like policies.
HPA_KNOBS: tuple[float, ...] = (
    0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95,
)
#: Target utilizations swept for the oracle. Above 1.0 it under-provisions on purpose, to cross 1% saturation; the
#: share of saturated steps climbs steeply there (d only has to pass an integer), hence the fine steps.
ORACLE_KNOBS: tuple[float, ...] = (
    0.8, 0.9, 0.95, 1.0, 1.0005, 1.001, 1.002, 1.003, 1.005, 1.0075, 1.01, 1.02, 1.05,
)
#: Risks (target share of saturated steps) swept for aihpa, finer around the 1% SLO: the cost-vs-saturation curve is
#: convex, so the chord between distant settings would overstate the cost at exactly 1%.
AIHPA_KNOBS: tuple[float, ...] = (
    0.001, 0.002, 0.003, 0.005, 0.0075, 0.009, 0.01, 0.011, 0.0125, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1,
)

#: PHPA's behavior defaults (internal/controllers/controller.go): like the HPA's, with 60 s policy periods.
PHPA_BEHAVIOR = Behavior(
    scale_up=ScalingRules(
        stabilization_window_seconds=0,
        policies=(ScalingPolicy("Percent", 100, 60), ScalingPolicy("Pods", 4, 60)),
        select_policy="Max",
    ),
    scale_down=ScalingRules(
        stabilization_window_seconds=300,
        policies=(ScalingPolicy("Percent", 100, 60),),
        select_policy="Max",
    ),
    min_replicas=MIN_PODS,
    max_replicas=MAX_PODS,
)

_BACKTEST_BEHAVIOR = replace(DEFAULT_BEHAVIOR, min_replicas=MIN_PODS, max_replicas=MAX_PODS)


def _observation(view: StepView, row: int) -> Observation:
    t = view.t
    return Observation(
        usage=float(view.observed[row, t - 1]),
        pods_with_metrics=int(view.ready[row, t - 1]),
        current_replicas=int(view.replicas[row, t - 1]),
        now=view.now,
        history_len=t,
    )


class HpaBatch:
    """The Kubernetes HPA, one row per target utilization. `calculated` keeps each row's raw recommendations."""

    def __init__(self, knobs: Sequence[float], *, behavior: Behavior = _BACKTEST_BEHAVIOR) -> None:
        self.policies = [
            ReactivePolicy(target_utilization=u, request_per_pod=REQUEST_CORES, behavior=behavior) for u in knobs
        ]
        self.states = [ReactiveState() for _ in knobs]
        self.calculated: list[list[int]] = [[] for _ in knobs]

    def decide(self, view: StepView) -> npt.NDArray[np.int64]:
        out = np.empty(len(self.policies), dtype=np.int64)
        for i, policy in enumerate(self.policies):
            obs = _observation(view, i)
            self.calculated[i].append(policy.recommend(obs)[0])
            decision, self.states[i] = policy.decide(obs, self.states[i])
            out[i] = decision.replicas
        return out


class OracleBatch:
    """Perfect foresight: ceil(d/u) pods ready at every step, asked for one step ahead."""

    def __init__(self, knobs: Sequence[float], demand: npt.NDArray[np.float64]) -> None:
        need = np.ceil(demand[None, :] / np.asarray(knobs, dtype=np.float64)[:, None])
        nxt = np.concatenate([need[:, 1:], need[:, -1:]], axis=1)
        self.plan = np.clip(np.maximum(need, nxt), MIN_PODS, MAX_PODS).astype(np.int64)

    def decide(self, view: StepView) -> npt.NDArray[np.int64]:
        step: npt.NDArray[np.int64] = self.plan[:, view.t]
        return step


class PhpaBatch:
    """PHPA with one model (linear regression or Holt-Winters), one row per target utilization."""

    def __init__(
        self,
        knobs: Sequence[float],
        model: LinearModel | HoltWintersModel,
        *,
        behavior: Behavior = PHPA_BEHAVIOR,
        tolerance: float = DEFAULT_TOLERANCE,
    ) -> None:
        self.knobs = tuple(float(u) for u in knobs)
        self.model = model
        self.behavior = behavior
        self.tolerance = tolerance
        rows = len(self.knobs)
        if isinstance(model, LinearModel):
            cap = model.history_size + 1
        else:
            cap = (model.stored_seasons + 1) * model.seasonal_periods + 1
        self.history = np.zeros((rows, cap), dtype=np.float64)
        self.stored = 0
        self.states = [BehaviorState() for _ in range(rows)]

    def decide(self, view: StepView) -> npt.NDArray[np.int64]:
        rows = len(self.knobs)
        calculated = np.empty(rows, dtype=np.int64)
        for i, u in enumerate(self.knobs):
            obs = _observation(view, i)
            calculated[i] = hpa_replicas(
                current_replicas=obs.current_replicas,
                usage=obs.usage,
                pods_with_metrics=obs.pods_with_metrics,
                missing_pods=obs.missing_pods,
                target_utilization=u,
                request_per_pod=REQUEST_CORES,
                tolerance=self.tolerance,
            ).replicas
        self.history[:, self.stored] = calculated
        self.stored += 1
        predicted = self.model.predict(self.history[:, : self.stored], step_s=view.step_s)
        keep = self.model.history_after_prune(self.stored)
        if keep < self.stored:
            drop = self.stored - keep
            self.history[:, :keep] = self.history[:, drop : self.stored].copy()
            self.stored = keep
        target = np.maximum(calculated, predicted)  # decisionType: maximum
        out = np.empty(rows, dtype=np.int64)
        for i in range(rows):
            current = int(view.replicas[i, view.t - 1])
            decision, state = apply_behavior(
                current=current,
                desired=int(target[i]),
                behavior=self.behavior,
                state=self.states[i],
                now=view.now,
                reason="PHPA maximum of HPA and model",
            )
            self.states[i] = record_scale(
                state=state, behavior=self.behavior, old=current, new=decision.replicas, now=view.now
            )
            out[i] = decision.replicas
        return out


class AihpaBatch:
    """aihpa's predictive policy, one row per risk, forecasts batched over the rows in one call per step."""

    def __init__(
        self,
        knobs: Sequence[float],
        forecaster: Forecaster,
        *,
        policy: PredictivePolicy | None = None,
        times: npt.NDArray[np.float64] | None = None,
        step_s: float | None = None,
    ) -> None:
        base = policy or default_backtest_policy(forecaster)
        self.policies = [base.with_risk(float(r)) for r in knobs]
        self.states = [PredictiveState() for _ in knobs]
        self.forecaster = forecaster
        self.times = times
        self.step_s = step_s
        self.quantiles = tuple(forecaster.quantiles)

    def decide(self, view: StepView) -> npt.NDArray[np.int64]:
        t = view.t
        rows = len(self.policies)
        forecast: npt.NDArray[np.float32] | None = None
        if t >= self.forecaster.min_history:
            window = view.observed[:, max(0, t - self.forecaster.context) : t]
            end_times = None
            if self.times is not None:
                end_times = np.full(rows, float(self.times[t - 1]))
            forecast = self.forecaster.predict(window, end_times=end_times, step_s=self.step_s)
        out = np.empty(rows, dtype=np.int64)
        observations = [_observation(view, i) for i in range(rows)]
        # the rows share their HPA candidate's grid (only the risk differs): its shadows step for all rows at once
        grids = PredictivePolicy.step_grids(list(zip(self.policies, observations, self.states, strict=True)))
        for i, policy in enumerate(self.policies):
            decision, self.states[i] = policy.decide(
                observations[i],
                self.states[i],
                forecast=None if forecast is None else forecast[i],
                quantiles=self.quantiles,
                grid_state=grids[i],
            )
            out[i] = decision.replicas
        return out


class HpaFloorBatch:
    """The HPA beside aihpa (`aihpa/with-hpa: floor`), one row per HPA target utilization: each step aihpa's
    predictive count (the default policy at its default risk) becomes the HPA's minReplicas, and the HPA decides above
    it with its own formula and behavior. aihpa's forecasts are batched over the rows, as in `AihpaBatch`."""

    def __init__(
        self,
        knobs: Sequence[float],
        forecaster: Forecaster,
        *,
        policy: PredictivePolicy | None = None,
        times: npt.NDArray[np.float64] | None = None,
        step_s: float | None = None,
        behavior: Behavior = _BACKTEST_BEHAVIOR,
    ) -> None:
        base = policy or default_backtest_policy(forecaster)
        # the default risk on every row: the sweep is the HPA's target
        self.floors = AihpaBatch([base.risk] * len(knobs), forecaster, policy=base, times=times, step_s=step_s)
        self.hpa = [ReactivePolicy(target_utilization=u, request_per_pod=REQUEST_CORES, behavior=behavior)
                    for u in knobs]
        self.states = [ReactiveState() for _ in knobs]

    def decide(self, view: StepView) -> npt.NDArray[np.int64]:
        floors = self.floors.decide(view)
        out = np.empty(len(self.hpa), dtype=np.int64)
        for i, policy in enumerate(self.hpa):
            floor = int(min(max(floors[i], policy.behavior.min_replicas), policy.behavior.max_replicas))
            with_floor = replace(policy, behavior=replace(policy.behavior, min_replicas=floor))
            decision, self.states[i] = with_floor.decide(_observation(view, i), self.states[i])
            out[i] = decision.replicas
        return out


def default_backtest_policy(forecaster: Forecaster) -> PredictivePolicy:
    """aihpa as the backtest runs it: the controller's policy for a Deployment with no aihpa annotations whose pods
    request one core with a limit of one core (`aihpa.scaling.factory.predictive_policy`: sized to the saturation risk
    against what pods may use, the reactive HPA at the same ceiling as floor and candidate, the 95% quantile's peak
    calibrated as a ratio with an offset of one pod, the HPA's tolerance as hysteresis, no scale-down stabilization),
    with the protocol's bounds and step."""
    return predictive_policy(
        min_replicas=MIN_PODS,
        max_replicas=MAX_PODS,
        pod=PodCpu(request=REQUEST_CORES, limit=REQUEST_CORES),
        min_history=forecaster.min_history,
        step_s=DEFAULT_STEP_S,
        prior=prior_of(forecaster),
    )


#: aihpa's behavior in the backtest (the factory's, at the protocol's bounds): no scale-down stabilization window
#: and no scale-up rate limit (+100 pods per 15 s). The count is sized from a calibrated forecast, so a window that
#: holds every peak for five minutes only adds cost (Wikipedia 1.334 with it against 1.135 without, and it did not cut
#: the scale changes on Twitter); churn is held by the policy's hysteresis instead.
AIHPA_BEHAVIOR = predictive_policy(min_replicas=MIN_PODS, max_replicas=MAX_PODS).behavior


# ---------------------------------------------------------------------------------------------------------------
# Tuning PHPA's models on the history part: run the HPA there (target utilization 0.7), then choose the model settings
# whose decisions (PHPA's "maximum" of the HPA value and the model's prediction) best predict the HPA's next calculated
# replica count, by squared error (PHPA's docs: tune alpha, beta and gamma until predictions stop over- or
# under-estimating).

#: Target utilization of the HPA run whose replica history the PHPA models are tuned on (DESIGN 2 default).
TUNING_UTILIZATION = 0.7
_LR_HISTORY_SIZES = (2, 3, 4, 6, 8, 12, 24)
_HW_SMOOTHING = (0.1, 0.5, 0.9)
_HW_STORED_SEASONS = 4


def hpa_replica_history(demand: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The HPA's calculated replica counts over the history part of `demand` (one per step from t = 1)."""
    history = demand[: max(2, scored_start(demand.shape[0]))]
    batch = HpaBatch([TUNING_UTILIZATION])
    replay(history, batch, rows=1)
    return np.asarray(batch.calculated[0], dtype=np.float64)


def _one_step_error(series: npt.NDArray[np.float64], model: LinearModel | HoltWintersModel, start: int) -> float:
    """Mean squared error of predicting series[t + 1] from the model's stored history after evaluation t."""
    errors = []
    stored = 0
    for t in range(series.shape[0] - 1):
        stored += 1
        window = series[t + 1 - stored : t + 1][None, :]
        predicted = float(model.predict(window, step_s=DEFAULT_STEP_S)[0])
        stored = model.history_after_prune(stored)
        if t >= start:
            errors.append((max(predicted, series[t]) - series[t + 1]) ** 2)
    return float(np.mean(errors)) if errors else math.inf


def tune_linear(series: npt.NDArray[np.float64]) -> LinearModel:
    """historySize chosen on the HPA replica history; lookAhead is the protocol's lead time, one 60 s step."""
    look_ahead_ms = int(DEFAULT_STEP_S * 1000)
    start = max(_LR_HISTORY_SIZES)
    candidates = [LinearModel(look_ahead_ms=look_ahead_ms, history_size=h) for h in _LR_HISTORY_SIZES]
    if series.shape[0] <= start + 1:
        return LinearModel(look_ahead_ms=look_ahead_ms, history_size=6)
    return min(candidates, key=lambda m: _one_step_error(series, m, start))


def _season_candidates(series_len: int, steps_per_day: int | None) -> list[int]:
    seasons = {6, 12, 24, 60}
    if steps_per_day is not None and steps_per_day <= 288:
        seasons.add(steps_per_day)
    # a candidate must fill its stored seasons within the first half of the history, to be scored on the second
    return sorted(m for m in seasons if (_HW_STORED_SEASONS + 1) * m <= series_len // 2)


def tune_holt_winters(series: npt.NDArray[np.float64], *, steps_per_day: int | None) -> HoltWintersModel:
    """seasonalPeriods and alpha/beta/gamma chosen on the HPA replica history (trend and season additive,
    storedSeasons 4 as in PHPA's docs). Falls back to PHPA's documented example when the history is too short."""
    seasons = _season_candidates(series.shape[0], steps_per_day)
    if not seasons:
        return HoltWintersModel()
    start = series.shape[0] // 2
    best: tuple[float, HoltWintersModel] | None = None
    for m, (a, b, g) in itertools.product(seasons, itertools.product(_HW_SMOOTHING, repeat=3)):
        model = HoltWintersModel(alpha=a, beta=b, gamma=g, seasonal_periods=m, stored_seasons=_HW_STORED_SEASONS)
        err = _one_step_error(series, model, start)
        if best is None or err < best[0]:
            best = (err, model)
    assert best is not None
    return best[1]
