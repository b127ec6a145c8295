"""Scaling policies that turn observations (and forecasts) into a `Decision`: the reactive HPA and aihpa's own.

The predictive policy provisions for the peak of the forecast over the lead time:

    replicas = ceil(capacity(q(peak demand over the lead time)) / (target utilization × CPU request per pod))

where capacity() adds the calibrated headroom; the reactive HPA recommendation is a floor (max), then HPA `behavior`
applies. The headroom comes from online calibration (`aihpa.scaling.calibration`): a rolling conformal quantile of
realized / forecast peaks, corrected by the realized saturation so that its long-run share approaches the chosen
risk. When the history is too short or the forecast is not finite the policy falls back to the reactive HPA and says
so in the Decision's reason.

Several `Scoring`s are calibrated side by side on the same outcomes (by default the model's quantile forecast as a
ratio, and the last observed usage additively, in volatility-weighted units and capped near the recent peak). The
one in use is corrected by the realized saturation, the others by whether the pods they would have had would have
saturated on the same step, so each holds the risk on its own and all are measured alike; the policy uses the one
whose capacity has averaged least among those whose shortfall rate is near the risk.

Pure: no I/O, no clock (`now` is an argument, in seconds), no forecaster calls: the caller batches forecasts for all
workloads and passes each workload's slice in. Configs and states are frozen; each call returns a new state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property, lru_cache
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt

from aihpa.scaling.behavior import (
    DEFAULT_BEHAVIOR,
    DEFAULT_SCALE_DOWN,
    Behavior,
    BehaviorState,
    apply_behavior,
    record_scale,
)
from aihpa.scaling.calibration import NO_CONTEXT, Calibration, CalibrationState, Context, ring_push
from aihpa.scaling.decision import Decision, DecisionKind
from aihpa.scaling.evolve import evolve
from aihpa.scaling.hpa import DEFAULT_TOLERANCE, Tolerance, hpa_replicas
from aihpa.scaling.hpa_grid import HpaGrid, HpaGridState
from aihpa.step import DEFAULT_STEP_S

__all__ = [
    "DEFAULT_SCORINGS",
    "HPA_SCORING",
    "Observation",
    "PendingOutcome",
    "PredictivePolicy",
    "PredictiveState",
    "ReactivePolicy",
    "ReactiveState",
    "ScoredPeak",
    "Scoring",
]


@dataclass(frozen=True)
class Observation:
    """What a policy knows at the start of a cycle.

    `usage` is the CPU (cores) used over the last interval by the `pods_with_metrics` pods that served it;
    `current_replicas` is the scale's count now (pods that became ready since have no metric yet: they count as
    missing, as in the HPA). `history_len` is how many usage samples exist so far.
    """

    usage: float
    pods_with_metrics: int
    current_replicas: int
    now: float
    history_len: int = 0
    # the most one pod can use (its CPU limit, else its request), in the units of `usage`
    capacity_per_pod: float = 1.0

    @property
    def missing_pods(self) -> int:
        return max(0, self.current_replicas - self.pods_with_metrics)

    @property
    def saturated(self) -> bool:
        # a pod cannot report more than it may use: usage at that cap means demand was cut off
        return self.pods_with_metrics > 0 and self.usage >= self.pods_with_metrics * self.capacity_per_pod * (1 - 1e-9)


def _normalize(
    obs: Observation, *, desired: int, reason: str, kind: DecisionKind, behavior: Behavior, state: BehaviorState
) -> tuple[Decision, BehaviorState]:
    """The HPA's normalize step for a recommendation, and the scale it leads to remembered for the rate limits."""
    decision, bstate = apply_behavior(
        current=obs.current_replicas, desired=desired, behavior=behavior, state=state, now=obs.now, reason=reason,
        kind=kind,
    )
    bstate = record_scale(state=bstate, behavior=behavior, old=obs.current_replicas, new=decision.replicas, now=obs.now)
    return decision, bstate


@dataclass(frozen=True)
class ReactiveState:
    behavior: BehaviorState = field(default_factory=BehaviorState)


@dataclass(frozen=True)
class ReactivePolicy:
    """The Kubernetes HPA on CPU utilization: replica formula with tolerance, then behavior."""

    target_utilization: float = 0.7
    request_per_pod: float = 1.0
    tolerance: float = DEFAULT_TOLERANCE
    behavior: Behavior = DEFAULT_BEHAVIOR

    @cached_property
    def _band(self) -> Tolerance:
        """The tolerance band, checked once per policy (the controller asks a shared policy thousands of times)."""
        return Tolerance.of(self.tolerance)

    def recommend(self, obs: Observation) -> tuple[int, str]:
        rec = hpa_replicas(
            current_replicas=obs.current_replicas,
            usage=obs.usage,
            pods_with_metrics=obs.pods_with_metrics,
            missing_pods=obs.missing_pods,
            target_utilization=self.target_utilization,
            request_per_pod=self.request_per_pod,
            tolerance=self._band,
        )
        return rec.replicas, f"reactive HPA: {rec.reason}"

    def decide(self, obs: Observation, state: ReactiveState) -> tuple[Decision, ReactiveState]:
        desired, reason = self.recommend(obs)
        decision, bstate = _normalize(
            obs, desired=desired, reason=reason, kind=DecisionKind.REACTIVE, behavior=self.behavior,
            state=state.behavior,
        )
        return decision, ReactiveState(behavior=bstate)


@dataclass(frozen=True)
class Scoring:
    """One way of scoring forecasts against their outcomes, calibrated side by side with the others.

    `base`: the forecast the headroom is added to: the peak of the policy's `base_quantile` over the lead time
    ("quantile"), of the median ("median"), or the last observed usage ("last", a naive forecast that is hard to beat
    where demand moves in unpredictable steps); "hpa" is not a forecast with a headroom but the reactive HPA at the
    target that held the risk on the workload's own history (`aihpa.scaling.hpa_grid`), compared with the others on
    the same steps. `mode`: how errors are scored (`Calibration.mode`): as ratios, which
    grow with the level, or additively, in cores whatever the level. `offset_share`: the ratio's offset (in additive
    mode, the unit of the scores) as a share of the peak usage (None: the calibration's own `offset`, in cores; the
    peak is the highest of the level context's samples, so a one-off spike is forgotten once it leaves that window).
    `window`: scores kept (None: the calibration's). The context settings let a scoring file its scores under finer
    contexts than the others. `peak_cap` and the volatility settings are described where they are declared."""

    base: Literal["quantile", "median", "last", "hpa"] = "quantile"
    # how its scores are counted (None: the calibration's `mode`); "additive" counts them in units of the offset
    mode: Literal["ratio", "spread", "additive"] | None = None
    offset_share: float | None = None
    window: int | None = None
    # context settings of this scoring's calibration (None: the policy's calibration's; see `Calibration`)
    level_bins: tuple[float, ...] | None = None
    rise_level: float | None = None
    volatile_level: float | None = None
    # the capacity this scoring asks for is at most (1 + peak_cap) times the recent peak usage (None: no cap)
    peak_cap: float | None = None
    # additive mode, locally weighted scores: the unit is the offset times the mean absolute change of usage over the
    # last `volatility_window` samples divided by `volatility_scale` times the recent peak, kept within
    # [volatility_floor, 1] (None: a fixed unit). Steps come in clusters: a calm stretch needs less headroom.
    volatility_scale: float | None = None
    volatility_floor: float = 0.2
    volatility_window: int = 30
    # base "last": the highest usage of the last `hold` samples (5 at one-minute steps is the HPA's own 300 s
    # scale-down stabilization: the HPA formula applied to this peak at a target the calibration chooses)
    hold: int = 1
    # the hysteresis of this candidate's count (None: the policy's `hysteresis`); the HPA candidate keeps the HPA's
    # own tolerance
    hysteresis: float | None = None
    # what the Decision's reason and the status call this scoring (empty: its base)
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.base

    def settings(self) -> dict[str, object]:
        """The calibration settings this scoring changes (besides the offset)."""
        names = ("mode", "window", "level_bins", "rise_level", "volatile_level")
        return {name: getattr(self, name) for name in names if getattr(self, name) is not None}

    def __post_init__(self) -> None:
        if self.base not in ("quantile", "median", "last", "hpa"):
            raise ValueError(f"scoring base must be quantile, median, last or hpa, not {self.base!r}")
        if self.offset_share is not None and self.offset_share < 0:
            raise ValueError("offset_share must not be negative")
        if self.peak_cap is not None and self.peak_cap < 0:
            raise ValueError("peak_cap must not be negative")
        if self.volatility_scale is not None and self.volatility_scale <= 0:
            raise ValueError("volatility_scale must be positive")
        if not 0.0 < self.volatility_floor <= 1.0 or self.volatility_window < 1:
            raise ValueError("volatility_floor must be in (0, 1] and volatility_window at least 1")
        if self.hold < 1:
            raise ValueError("hold must be at least 1 sample")
        if self.hysteresis is not None and not 0.0 <= self.hysteresis < 1.0:
            raise ValueError("hysteresis must be in [0, 1)")


#: The reactive HPA as a candidate: the HPA itself (its formula, tolerance, 300 s scale-down stabilization and
#: scale-up limit) run in shadow at 45 fixed targets from 10% to 100% of what a pod may use, acting at the highest
#: target whose pods held the risk over the workload's history (a week's memory; `aihpa.scaling.hpa_grid`). Over a
#: long history that is the HPA at the best fixed target in hindsight.
HPA_SCORING = Scoring(base="hpa", name="hpa")

#: The scorings aihpa compares side by side by default: the reactive HPA (`HPA_SCORING`, used first, so that a
#: workload whose forecast adds nothing gets the HPA at the target that held the risk), the model's quantile
#: forecast scored as a ratio (errors that grow with the level), and the last observed usage scored additively (a
#: three-day window, scores in units of one pod's request weighted by the recent volatility, capacity at most 5%
#: above the recent peak), for workloads that move in unpredictable steps of a few cores that no model sees coming.
DEFAULT_SCORINGS: tuple[Scoring, ...] = (
    HPA_SCORING,
    Scoring(name="forecast"),
    Scoring(
        base="last",
        mode="additive",
        window=4320,
        peak_cap=0.05,
        volatility_scale=0.02,
        name="last-usage",
    ),
)

class ScoredPeak(NamedTuple):
    """One scoring's side of a decision, kept until the decision's outcome is known."""

    # the forecast the headroom is added to (cores, at least 0; NaN when no forecast was used)
    base: float
    # the calibration's offset for this score (additive mode: its unit)
    offset: float
    # the capacity the scoring asked for (cores; NaN while it is not calibrated or without a forecast)
    capacity: float
    # the pods that would have served that capacity, with the reactive floor (NaN where `capacity` is)
    pods: float


class PendingOutcome(NamedTuple):
    """A decision waiting `lead_steps` steps for the realized peak it is scored against."""

    # per scoring, in the policy's order
    peaks: tuple[ScoredPeak, ...]
    # the forecast's top quantile over its median at the peak (cores; NaN without a forecast)
    spread: float
    # made right after a saturated step
    after_saturation: bool
    # per scoring, the calibration context the score is filed under
    contexts: tuple[Context, ...]
    # the control step it was made at
    step: int


class _Frame(NamedTuple):
    """What every scoring's calibration needs on this step, forecast or not."""

    step: int
    # the highest of the recent usage samples (None before the first)
    recent_peak: float | None
    # per scoring: the offset of its next score, its calibration settings, the context it is filed under
    offsets: tuple[float, ...]
    configs: tuple[Calibration, ...]
    contexts: tuple[Context, ...]


class _Candidates(NamedTuple):
    """Each scoring's capacity for one usable forecast."""

    # the forecast's top quantile and its base quantile, peaks over the lead time (cores)
    top: float
    quantile_peak: float
    # per scoring: the forecast the headroom is added to, and the capacity asked for (None: not calibrated yet)
    bases: tuple[float, ...]
    capacities: tuple[float | None, ...]
    spread: float
    # the HPA candidate's shadow in use: its index in the grid (None: no target has held the risk, or no grid)
    leader: int | None = None


class _Proposal(NamedTuple):
    """A recommendation before the hysteresis and behavior."""

    desired: int
    reason: str
    kind: DecisionKind


@dataclass(frozen=True)
class PredictiveState:
    """Behavior history, one calibration per scoring, and the forecasts still waiting for their outcome."""

    behavior: BehaviorState = field(default_factory=BehaviorState)
    calibrations: tuple[CalibrationState, ...] = ()
    # the decisions of the last lead_steps steps, oldest first; each is compared with its realized peak later
    pending: tuple[PendingOutcome, ...] = ()
    # per scoring, moving averages of the capacity it asked for and of how often that fell short of the realized peak
    costs: tuple[float, ...] = ()
    shortfall_rates: tuple[float, ...] = ()
    # the scoring in use, and how many outcomes every scoring has been scored on
    choice: int = 0
    compared: int = 0
    # (usage, saturated) of the most recent observations, oldest first, at most lead_steps of them
    recent: tuple[tuple[float, bool], ...] = ()
    # the last level_window usage samples (a ring): where usage stands in its recent range, and its recent peak
    levels: npt.NDArray[np.float32] = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    levels_position: int = 0
    # the most recent usage samples, oldest first (for the rising and volatile contexts and volatility-weighted scores)
    trail: tuple[float, ...] = ()
    # the HPA candidate's shadows (a scoring with base "hpa")
    grid: HpaGridState = field(default_factory=HpaGridState)
    # per scoring, the count it would hold if it were in use (`_shadows`), and a moving average of how often it changed
    held: tuple[float, ...] = ()
    change_rates: tuple[float, ...] = ()


@lru_cache(maxsize=256)  # asked twice a decision, with a model or two's quantiles and the same few levels
def _nearest_quantile(quantiles: tuple[float, ...], level: float) -> int:
    """The index of the quantile nearest `level` (the first of equals)."""
    return int(np.argmin(np.abs(np.asarray(quantiles, dtype=np.float64) - level)))


@dataclass(frozen=True)
class PredictivePolicy:
    """aihpa's policy. The one risk knob is `calibration.risk`: the share of saturated steps to aim for.

    `lead_steps` is how many forecast steps must be covered: with pods that are ready one step after they are asked
    for and an immediate scale-down, a count chosen now serves this step and the next, so 2. `base_quantile` is the
    forecast quantile whose peak is calibrated in ratio mode (the nearest one the forecaster has; spread mode centres
    on the median and reaches to the top quantile). `min_history` is the shortest history the forecast is trusted on.
    """

    calibration: Calibration = field(default_factory=Calibration)
    # the share of each pod's request that capacity is sized to: what a pod may use (above 1 when its limit is above
    # its request); also the reactive floor's target
    target_utilization: float = 0.7
    request_per_pod: float = 1.0
    # the HPA's target while no forecast is trusted (the fallback); None: `target_utilization`
    fallback_utilization: float | None = None
    lead_steps: int = 2
    base_quantile: float = 0.95
    min_history: int = 1
    tolerance: float = DEFAULT_TOLERANCE
    behavior: Behavior = DEFAULT_BEHAVIOR
    # the control step (seconds): decisions are numbered floor(now / step_s) for the calibration's cycle phases
    step_s: float = DEFAULT_STEP_S
    # usage samples the level context and the recent peak (offset_share, peak_cap) look back over
    level_window: int = 720
    # usage changes the volatile context averages over
    volatility_window: int = 12
    # the scorings calibrated side by side: the first is used until all have been compared on `select_after`
    # outcomes; then the cheapest of those that hold the risk (`_compare`)
    scorings: tuple[Scoring, ...] = DEFAULT_SCORINGS
    memory: float = 1440.0  # outcomes the averages of `_compare` remember (time constant)
    select_after: int = 720
    # a switch needs the other scoring's average capacity to be this share cheaper (none by default: the averages
    # move slowly enough not to flap, and a margin kept the bursty Bitbrains trace on the costlier scoring for long)
    select_margin: float = 0.0
    select_slack: float = 1.5
    # a candidate is used only if its count would change at most this many times as often as the HPA candidate's
    # (a scoring with base "hpa"; None: no limit). Scale changes cost too: pod churn, cold caches, API writes.
    select_changes: float | None = 1.5
    # hysteresis of the forecast candidates, a tolerance band like the HPA's: a desired count within this share of the
    # current one (either way) keeps the current count (the HPA candidate keeps the HPA's own `tolerance`). Changes
    # cost too (pod churn, cold caches, API writes); the calibration sees the saturation that holding causes and
    # widens the headroom to pay for it. Twice the HPA's tolerance by default (`HYSTERESIS_PER_TOLERANCE`).
    hysteresis: float = 2 * DEFAULT_TOLERANCE
    # while the scoring in use has fewer scores of its own than a finite conformal quantile at the risk needs (its
    # prior, or the forecaster's top quantile, standing in), the count is at most the fallback HPA's (at
    # `fallback_utilization`) plus this share of it, at least one pod more (None: no bound). A prior learned on other
    # workloads can be far from this one's; the bound keeps a new workload's first hours near what the HPA would run.
    warmup_margin: float | None = 0.1
    # the calibration prior of the forecaster's own quantile band (`aihpa.scaling.prior`): scores (realized peak -
    # median peak) / (top quantile's peak - median peak) that the model made on its training data. While the scoring
    # in use has too few scores for a headroom of its own, the capacity is the median plus their conformal quantile
    # at the risk times the band (none: the top quantile itself). The band is the model's sense of this workload's
    # uncertainty, so the prior adapts to the workload where a pooled headroom could not.
    band_prior: tuple[float, ...] = ()
    # the HPA candidate's memory (seconds): how long a step's shortfall counts in choosing its target
    grid_memory_s: float = 7 * 86400.0

    def __post_init__(self) -> None:
        if self.warmup_margin is not None and not (
            math.isfinite(self.warmup_margin) and self.warmup_margin >= 0
        ):
            raise ValueError("warmup_margin must be a non-negative number or None")
        if any(not math.isfinite(x) for x in self.band_prior):
            raise ValueError("band_prior must hold finite scores")
        if not self.step_s > 0:
            raise ValueError(f"step_s must be positive, got {self.step_s}")
        if self.lead_steps < 1:
            raise ValueError("lead_steps must be at least 1")
        if not (math.isfinite(self.target_utilization) and self.target_utilization > 0.0):
            raise ValueError("target utilization must be a positive number")
        if self.fallback_utilization is not None and not (
            math.isfinite(self.fallback_utilization) and 0.0 < self.fallback_utilization <= 1.0
        ):
            raise ValueError("fallback utilization must be in (0, 1]")
        if not self.scorings:
            raise ValueError("at least one scoring is needed")
        if not 0.0 <= self.hysteresis < 1.0:
            raise ValueError("hysteresis must be in [0, 1)")
        if not self.grid_memory_s >= self.step_s:
            raise ValueError("grid_memory_s must be at least one step")
        if self.memory < 1 or self.select_after < 1 or self.select_slack <= 0 or not 0 <= self.select_margin < 1:
            raise ValueError(
                "memory and select_after must be at least 1, select_slack positive, select_margin in [0, 1)"
            )

    @property
    def risk(self) -> float:
        return self.calibration.risk

    def with_risk(self, risk: float) -> PredictivePolicy:
        return replace(self, calibration=replace(self.calibration, risk=risk))

    # built once per policy (a policy is immutable): the controller decides thousands of workloads a cycle on shared
    # policies, and rebuilding these, each checked, for every decision was a third of its time
    @cached_property
    def reactive(self) -> ReactivePolicy:
        return ReactivePolicy(
            target_utilization=self.target_utilization,
            request_per_pod=self.request_per_pod,
            tolerance=self.tolerance,
            behavior=self.behavior,
        )

    @cached_property
    def fallback(self) -> ReactivePolicy:
        """The reactive HPA that stands in while no forecast is trusted."""
        if self.fallback_utilization is None:
            return self.reactive
        return replace(self.reactive, target_utilization=self.fallback_utilization)

    @cached_property
    def grid(self) -> HpaGrid | None:
        """The HPA candidate's shadows, when a scoring has base "hpa": the policy's tolerance and bounds, the stock
        HPA's scale-down stabilization (300 s) and scale-up limit."""
        if self._hpa_index is None:
            return None
        window = DEFAULT_SCALE_DOWN.stabilization_window_seconds
        return HpaGrid(
            per_pod=self._per_pod(),
            tolerance=self.tolerance,
            stabilization=max(1, math.ceil(window / self.step_s - 1e-9)),
            min_replicas=self.behavior.min_replicas,
            max_replicas=self.behavior.max_replicas,
            memory=max(1.0, self.grid_memory_s / self.step_s),
            lead_steps=self.lead_steps,
        )

    @cached_property
    def _scoring_calibrations(self) -> dict[int, Calibration]:
        """Each scoring's calibration settings at the policy's offset (checked once), by the scoring's identity (the
        policy holds its scorings, so their ids stay theirs)."""
        out: dict[int, Calibration] = {}
        for scoring in self.scorings:
            settings = scoring.settings()
            out[id(scoring)] = replace(self.calibration, **settings) if settings else self.calibration  # type: ignore[arg-type]
        return out

    @staticmethod
    def _quantile_index(quantiles: Sequence[float], level: float) -> int:
        return _nearest_quantile(tuple(quantiles), level)

    def _calibration(self, scoring: Scoring, offset: float) -> Calibration:
        """The calibration settings of one scoring (the policy's, with that scoring's offset, window and contexts)."""
        config = self._scoring_calibrations.get(id(scoring))
        if config is None:  # a scoring not of this policy
            settings = scoring.settings()
            return replace(self.calibration, offset=offset, **settings)  # type: ignore[arg-type]
        if offset == config.offset:
            return config
        if not (offset >= 0.0):
            raise ValueError("offset must not be negative")
        return evolve(config, offset=offset)  # the settings were checked once; an offset >= 0 keeps them valid

    def _mode(self, scoring: Scoring) -> str:
        return scoring.mode or self.calibration.mode

    def _offset(self, scoring: Scoring, state: PredictiveState, peak: float | None) -> float:
        """The offset (additive mode: the unit) of a scoring's next score; `peak` is the recent peak usage."""
        offset = self.calibration.offset
        if self._mode(scoring) == "additive":  # scores in units of at least one pod's request
            offset = max(offset, self.request_per_pod)
        if peak is None:
            return offset
        if scoring.offset_share is not None:
            offset = max(offset, scoring.offset_share * peak)
        if scoring.volatility_scale is not None and len(state.trail) > 1 and peak > 0:
            changes = np.abs(np.diff(np.asarray(state.trail[-(scoring.volatility_window + 1) :], dtype=np.float64)))
            factor = float(changes.mean()) / (scoring.volatility_scale * peak)
            offset *= min(1.0, max(scoring.volatility_floor, factor))
        return offset

    @property
    def _trail_length(self) -> int:
        return 1 + max(self.volatility_window, *(max(s.volatility_window, s.hold) for s in self.scorings))

    def _per_pod(self) -> float:
        """What one pod may use (cores): the request times the target utilization the count is sized to."""
        return self.target_utilization * self.request_per_pod

    def _pods(self, capacity: float, floor: int) -> int:
        """The pods that hold `capacity` cores at the target utilization, at least `floor`."""
        need = math.ceil(max(capacity, 0.0) / (self.target_utilization * self.request_per_pod) - 1e-9)
        return max(floor, need)

    @staticmethod
    def _capped(scoring: Scoring, capacity: float | None, peak: float | None) -> float | None:
        if capacity is None or scoring.peak_cap is None or peak is None:
            return capacity
        return min(capacity, (1.0 + scoring.peak_cap) * peak)

    def _calibrations(self, state: PredictiveState) -> tuple[CalibrationState, ...]:
        if len(state.calibrations) == len(self.scorings):
            return state.calibrations
        return tuple(CalibrationState() for _ in self.scorings)

    def _demand(self, obs: Observation) -> float:
        """The demand a step is scored against: what was used, or on a saturated step (where the demand above the
        ceiling is hidden) censored_bump times that."""
        return obs.usage * self.calibration.censored_bump if obs.saturated else obs.usage

    def observe(
        self, obs: Observation, state: PredictiveState, *, demand: float | None = None,
        grid_state: HpaGridState | None = None,
    ) -> PredictiveState:
        """Fold the newest observation into calibration (the outcome of the forecast made lead_steps ago).
        `demand`: `_demand(obs)`, when the caller has it already; `grid_state`: the HPA candidate's shadows stepped on
        `obs` already (`step_grids`)."""
        used = self._demand(obs) if demand is None else demand
        recent = (*state.recent, (obs.usage, obs.saturated))[-self.lead_steps :]
        calibrations = self._calibrations(state)
        pending = state.pending
        levels, levels_position, trail = state.levels, state.levels_position, state.trail
        if obs.history_len > 0 and math.isfinite(obs.usage):
            levels, levels_position = ring_push(levels, levels_position, obs.usage, self.level_window)
            trail = (*trail, obs.usage)[-self._trail_length :]
        if any(len(p.peaks) != len(self.scorings) for p in pending):  # made under other scorings: start afresh
            pending = ()
        grid = self.grid
        if grid is None:
            grid_state = state.grid
        elif grid_state is None:
            grid_state = grid.step(
                state.grid, usage=obs.usage, used=used, current=obs.current_replicas,
                capacity_per_pod=obs.capacity_per_pod,
            )
        if len(pending) >= self.lead_steps and len(recent) == self.lead_steps:
            # the pods that served the step just observed: with pods ready a step after they are asked for and an
            # immediate scale-down, the fewest that the last lead_steps decisions asked for
            served = tuple(
                min((p.peaks[i].pods for p in pending), key=lambda x: -math.inf if math.isnan(x) else x)
                for i in range(len(self.scorings))
            )
            outcome, pending = pending[0], pending[1:]
            realized = max(u for u, _ in recent)
            censored = any(s for _, s in recent)
            # what each asked for, in pods (whole pods, the reactive floor included: what it would have cost)
            asked = tuple(peak.pods * self._per_pod() for peak in outcome.peaks)
            # the scoring in use is corrected by the realized saturation; the others by whether the pods they would
            # have had would have saturated on this step too (a saturated observation hides the demand above it: it
            # counts as censored_bump times what was seen), so all are held to the same measure of the risk. Pods
            # without a CPU limit never show saturation: then all are measured against their requests. A step not
            # served by a calibrated capacity (the cold start) does not move the correction (None).
            exact = math.isfinite(obs.capacity_per_pod)
            per_pod = obs.capacity_per_pod if exact else self.request_per_pod
            shortfalls = tuple(
                None
                if not math.isfinite(pods)
                else obs.saturated
                if i == state.choice and exact
                else used > pods * per_pod * (1 + 1e-9)
                for i, pods in enumerate(served)
            )
            state = self._compare(state, asked, shortfalls)
            calibrations = tuple(
                cal
                if scoring.base == "hpa"  # the HPA candidate's shadows keep their own counts
                else self._calibration(scoring, peak.offset).update(
                    cal,
                    realized=realized,
                    forecast=peak.base,
                    censored=censored,
                    saturated=short,
                    after_saturation=outcome.after_saturation,
                    spread=outcome.spread,
                    context=context,
                    step=outcome.step,
                )
                for scoring, cal, peak, context, short in zip(
                    self.scorings, calibrations, outcome.peaks, outcome.contexts, shortfalls, strict=True
                )
            )
        return evolve(
            state,
            recent=recent,
            calibrations=calibrations,
            pending=pending,
            levels=levels,
            levels_position=levels_position,
            trail=trail,
            grid=grid_state,
        )

    @staticmethod
    def step_grids(
        items: Sequence[tuple[PredictivePolicy, Observation, PredictiveState]],
    ) -> list[HpaGridState | None]:
        """The HPA candidate's shadows of many workloads, each stepped on its observation as `decide` would step them
        first, in one pass per grid (most workloads share their pod size and bounds, hence their grid): pass each to
        `decide` as its `grid_state`. None for a policy without an HPA candidate."""
        out: list[HpaGridState | None] = [None] * len(items)
        groups: dict[HpaGrid, list[int]] = {}  # equal grids step together (a grid is a frozen value)
        for i, (policy, _, _) in enumerate(items):
            grid = policy.grid
            if grid is not None:
                groups.setdefault(grid, []).append(i)
        for grid, rows in groups.items():
            obs = [items[i][1] for i in rows]
            stepped = grid.step_many(
                [items[i][2].grid for i in rows],
                usage=[o.usage for o in obs],
                used=[items[i][0]._demand(o) for i, o in zip(rows, obs, strict=True)],
                current=[o.current_replicas for o in obs],
                capacity_per_pod=[o.capacity_per_pod for o in obs],
            )
            for i, state in zip(rows, stepped, strict=True):
                out[i] = state
        return out

    @staticmethod
    def _held(state: PredictiveState, last: float, hold: int) -> float:
        """The highest of the last `hold` usage samples (the newest is `last`)."""
        if hold <= 1 or not state.trail:
            return last
        return max(last, max(state.trail[-hold:]))

    def _shape(self, state: PredictiveState, usage: float) -> tuple[float | None, float | None, float | None]:
        """Where `usage` stands in the range of the recent samples (0 at the bottom, 1 at the top), its last change
        and the mean absolute change over the last volatility_window samples, both as shares of that range; None
        where the samples are too few (or the range is flat)."""
        if state.levels.shape[0] < 2 or not math.isfinite(usage):
            return None, None, None
        low, high = float(state.levels.min()), float(state.levels.max())
        span = high - low
        if span <= 1e-9 * max(abs(high), 1.0):
            return None, None, None
        trail = np.asarray(state.trail[-(self.volatility_window + 1) :], dtype=np.float64)
        if trail.shape[0] < 2:
            return (usage - low) / span, None, None
        changes = np.diff(trail)
        return (usage - low) / span, float(changes[-1]) / span, float(np.abs(changes).mean()) / span

    def decide(
        self,
        obs: Observation,
        state: PredictiveState,
        *,
        forecast: npt.NDArray[np.floating] | None,
        quantiles: Sequence[float],
        grid_state: HpaGridState | None = None,
    ) -> tuple[Decision, PredictiveState]:
        """One cycle. `forecast` is this workload's [horizon, n_quantiles] demand forecast in cores (or None);
        `grid_state`: the HPA candidate's shadows already stepped on `obs` (`step_grids`, for many workloads at once).

        The steps: fold the observation into the calibration (`observe`); frame this step's calibration contexts
        (`_frame`); take the forecast's lead-time peaks, or say why there are none (`_lead`); size each scoring's
        capacity (`_candidates`) and file it to be scored (`_pending`); recommend the pods for the scoring in use,
        floored by the reactive HPA (`_predictive`), or fall back to the reactive HPA (`_fallback`); keep the current
        count within the hysteresis (`_hold_within_tolerance`); then the HPA's behavior (`_normalize`).
        """
        demand = self._demand(obs)
        state = self.observe(obs, state, demand=demand, grid_state=grid_state)
        frame = self._frame(obs, state)
        reactive = self.reactive.recommend(obs)
        lead = self._lead(obs, forecast)
        own_tolerance = False
        if isinstance(lead, str):
            fallback = reactive if self.fallback_utilization is None else self.fallback.recommend(obs)
            proposal = self._fallback(fallback, why_not=lead)
            outcome = self._unscored(obs, frame)
        else:
            candidates = self._candidates(obs, state, frame, lead, quantiles)
            held, state = self._shadows(state, candidates, reactive=reactive[0], demand=demand)
            outcome = self._pending(obs, frame, candidates, held)
            proposal = self._predictive(obs, state, candidates, reactive)
            # the HPA candidate's count has the HPA's own tolerance already
            own_tolerance = (
                proposal.kind == DecisionKind.FORECAST
                and self.scorings[state.choice].base == "hpa"
                and candidates.capacities[state.choice] is not None
            )
        state = evolve(state, pending=(*state.pending, outcome))
        if not own_tolerance:
            in_use = None if isinstance(lead, str) else self.scorings[state.choice].hysteresis
            proposal = self._hold_within_tolerance(obs, proposal, hysteresis=in_use)
        decision, bstate = _normalize(
            obs, desired=proposal.desired, reason=proposal.reason, kind=proposal.kind, behavior=self.behavior,
            state=state.behavior,
        )
        return decision, evolve(state, behavior=bstate)

    def _frame(self, obs: Observation, state: PredictiveState) -> _Frame:
        """This step's number, the recent peak, and each scoring's offset, calibration settings and context."""
        step = math.floor(obs.now / self.step_s + 1e-9)
        level = rise = volatility = None
        if self.calibration.contextual:
            level, rise, volatility = self._shape(state, obs.usage)
        recent_peak = float(state.levels.max()) if state.levels.shape[0] else None
        # the HPA candidate is scored by its shadows (`HpaGrid`), not by a calibration: it files the policy's
        # settings and no context
        offsets = tuple(
            self.calibration.offset if s.base == "hpa" else self._offset(s, state, recent_peak) for s in self.scorings
        )
        configs = tuple(self._calibration(s, o) for s, o in zip(self.scorings, offsets, strict=True))
        contexts = tuple(
            NO_CONTEXT if s.base == "hpa"
            else config.context(cal, step=step, level=level, rise=rise, volatility=volatility)
            for s, config, cal in zip(self.scorings, configs, state.calibrations, strict=True)
        )
        return _Frame(step=step, recent_peak=recent_peak, offsets=offsets, configs=configs, contexts=contexts)

    def _lead(
        self, obs: Observation, forecast: npt.NDArray[np.floating] | None
    ) -> npt.NDArray[np.float64] | str:
        """The forecast over the lead time ([lead_steps, n_quantiles]), or why it cannot be used."""
        if forecast is None:
            return "no forecast"
        if obs.history_len < self.min_history:
            return f"history too short ({obs.history_len} of {self.min_history} samples)"
        arr = np.asarray(forecast, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[0] < 1:
            return "forecast has the wrong shape"
        lead = arr[: self.lead_steps]
        if not np.isfinite(lead).all():
            return "forecast is not finite"
        return lead

    def _candidates(
        self,
        obs: Observation,
        state: PredictiveState,
        frame: _Frame,
        lead: npt.NDArray[np.float64],
        quantiles: Sequence[float],
    ) -> _Candidates:
        """Each scoring's base (the forecast its headroom is added to) and the capacity its calibration asks for."""
        top = float(lead[:, -1].max())
        median = float(lead[:, self._quantile_index(quantiles, 0.5)].max())
        quantile_peak = float(lead[:, self._quantile_index(quantiles, self.base_quantile)].max())
        last = max(obs.usage, 0.0) if math.isfinite(obs.usage) else median
        # spread mode centres the model's forecast on the median, its spread reaching the top quantile
        bases = tuple(
            median
            if s.base == "quantile" and self._mode(s) == "spread"
            else self._held(state, last, s.hold)
            if s.base in ("last", "hpa")
            else quantile_peak
            if s.base == "quantile"
            else median
            for s in self.scorings
        )
        spread = max(0.0, top - median)
        grid = self.grid
        leader = None if grid is None else grid.leader(state.grid, self.risk)
        # the HPA candidate's capacity: the pods of the shadow at the highest target that held the risk
        hpa = None if grid is None or leader is None else grid.pods(state.grid, leader) * self._per_pod()
        capacities = tuple(
            hpa
            if scoring.base == "hpa"
            else self._capped(
                scoring,
                config.provision(cal, peak=base, spread=spread, after_saturation=obs.saturated, context=context),
                frame.recent_peak,
            )
            for scoring, config, cal, base, context in zip(
                self.scorings, frame.configs, state.calibrations, bases, frame.contexts, strict=True
            )
        )
        return _Candidates(
            top=top, quantile_peak=quantile_peak, bases=bases, capacities=capacities, spread=spread, leader=leader
        )

    @cached_property
    def _hysteresis_band(self) -> Tolerance:
        return Tolerance.of(self.hysteresis)

    def _shadows(
        self, state: PredictiveState, candidates: _Candidates, *, reactive: int, demand: float
    ) -> tuple[tuple[float, ...], PredictiveState]:
        """The count each scoring would keep if it were in use: the pods it asks for (with the reactive floor), held
        within the hysteresis of its own previous count as the policy holds the real one (the HPA candidate has its
        own tolerance); NaN while it has no capacity. The state remembers them and how often each changed, so that
        the candidates are compared on what they would cost and how often they would scale, hysteresis included."""
        n = len(self.scorings)
        previous = state.held if len(state.held) == n else (math.nan,) * n
        per_pod = self._per_pod()
        held: list[float] = []
        for scoring, capacity, before in zip(self.scorings, candidates.capacities, previous, strict=True):
            if capacity is None:
                held.append(math.nan)
                continue
            want = self._pods(capacity, reactive)
            # would its own pods have been short on this step? (never for a count it has not held yet: NaN)
            short = demand > before * per_pod * (1 + 1e-9)
            if scoring.base != "hpa" and self._holds(want, before, short=short, hysteresis=scoring.hysteresis):
                want = int(before)
            held.append(float(want))
        out = tuple(held)
        changes = tuple(1.0 if now != before else 0.0 for now, before in zip(out, previous, strict=True))
        if all(math.isfinite(x) for x in (*out, *previous)):
            keep = 1.0 - 1.0 / self.memory
            if len(state.change_rates) == n:
                rates = tuple(keep * r + (1.0 - keep) * c for r, c in zip(state.change_rates, changes, strict=True))
            else:
                rates = changes
            state = evolve(state, held=out, change_rates=rates)
        else:
            state = evolve(state, held=out)
        return out, state

    def _pending(
        self, obs: Observation, frame: _Frame, candidates: _Candidates, held: tuple[float, ...]
    ) -> PendingOutcome:
        """What each scoring asked for on this step (its count held as it would have been), to be scored once its
        outcome is known."""
        peaks = tuple(
            ScoredPeak(max(b, 0.0), o, math.nan, math.nan) if c is None
            else ScoredPeak(max(b, 0.0), o, c, pods)
            for b, o, c, pods in zip(candidates.bases, frame.offsets, candidates.capacities, held, strict=True)
        )
        return PendingOutcome(
            peaks=peaks, spread=candidates.spread, after_saturation=obs.saturated, contexts=frame.contexts,
            step=frame.step,
        )

    @staticmethod
    def _unscored(obs: Observation, frame: _Frame) -> PendingOutcome:
        """A step without a usable forecast: nothing to score, but the queue stays aligned with the decisions."""
        peaks = tuple(ScoredPeak(math.nan, o, math.nan, math.nan) for o in frame.offsets)
        return PendingOutcome(
            peaks=peaks, spread=math.nan, after_saturation=obs.saturated, contexts=frame.contexts, step=frame.step
        )

    @staticmethod
    def _fallback(reactive: tuple[int, str], *, why_not: str) -> _Proposal:
        desired, reason = reactive
        return _Proposal(desired, f"{reason} (fallback: {why_not})", DecisionKind.FALLBACK)

    def _predictive(
        self, obs: Observation, state: PredictiveState, candidates: _Candidates, reactive: tuple[int, str]
    ) -> _Proposal:
        """The pods for the scoring in use (its calibrated capacity, or the forecast's top quantile while it has too
        few scores), unless the reactive HPA asks for more."""
        chosen = state.choice
        scoring = self.scorings[chosen]
        capacity = candidates.capacities[chosen]
        if capacity is None:
            # not calibrated yet: the forecaster's own quantile band stands in, calibrated by the prior (over its base
            # quantile); without a prior, its top quantile
            peak, peak_base = self._band_capacity(candidates), candidates.quantile_peak
            headroom_text = (
                f"{'band prior' if self.band_prior else 'top quantile'} while calibrating "
                f"({self._progress_text(scoring, state, chosen)})"
            )
        else:
            peak, peak_base = capacity, candidates.bases[chosen]
            headroom_text = f"calibrated at risk {self.risk:.2%}"
            if len(self.scorings) > 1:
                headroom_text += f" on the {scoring.label} forecast"
            if obs.saturated:
                headroom_text += ", after a saturated step"
        predicted = self._pods(peak, 0)
        if self.warmup_margin is not None and not self._calibrated(scoring, state, chosen, capacity):
            fallback = self.fallback.recommend(obs)[0]
            bound = max(math.ceil(fallback * (1.0 + self.warmup_margin) - 1e-9), fallback + 1)
            if predicted > bound:
                headroom_text += (
                    f"; {predicted} pods capped at {bound} while calibrating "
                    f"({self._progress_text(scoring, state, chosen)}: "
                    f"the fallback's {fallback} + {self.warmup_margin:.0%})"
                )
                predicted = bound
        floor, floor_reason = reactive
        if predicted < floor:
            return _Proposal(
                floor, f"{floor_reason}, above the forecast's {predicted} pods (reactive floor)",
                DecisionKind.REACTIVE_FLOOR,
            )
        grid, index = self.grid, candidates.leader
        if scoring.base == "hpa" and capacity is not None and grid is not None and index is not None:
            reason = (
                f"hpa: the HPA at a target of {grid.targets[index]:.0%} of what a pod may use needs {predicted} pods "
                f"of {self._per_pod():.3g} cores (the highest of {len(grid.targets)} targets whose pods held the risk "
                f"{self.risk:.2%} on this workload's history: {grid.shortfall_rate(state.grid, index):.2%} short)"
            )
        elif scoring.base == "last" and scoring.mode != "additive" and capacity is not None:
            target = peak_base / peak if peak > 0 else 1.0
            reason = (
                f"{scoring.label}: peak usage of the last {scoring.hold} sample(s) {peak_base:.2f} cores at "
                f"a calibrated target of {target:.0%} ({headroom_text}) is {peak:.2f} cores, needs "
                f"{predicted} pods of {self._per_pod():.3g} cores"
            )
        else:
            reason = (
                f"forecast peak {peak_base:.2f} cores over {self.lead_steps} step(s), {peak:.2f} with "
                f"headroom ({headroom_text}), needs {predicted} pods of {self._per_pod():.3g} cores"
            )
        return _Proposal(predicted, reason + self._selection_text(state), DecisionKind.FORECAST)

    def _calibrated(self, scoring: Scoring, state: PredictiveState, index: int, capacity: float | None) -> bool:
        """Whether the scoring at `index` has outcomes enough of its own (the HPA candidate: a target that held the
        risk; the others: a finite conformal quantile at the risk)."""
        if scoring.base == "hpa":
            return capacity is not None
        config = self._calibration(scoring, self.calibration.offset)
        return config.calibrated(state.calibrations[index])

    def _progress_text(self, scoring: Scoring, state: PredictiveState, index: int) -> str:
        if scoring.base == "hpa":
            steps = state.grid.outcomes
            return f"no HPA target has held the risk yet, {steps:.0f} steps scored"
        config = self._calibration(scoring, self.calibration.offset)
        return f"{len(state.calibrations[index].log_ratios)} of {config.context_min_samples} scores"

    def _band_capacity(self, candidates: _Candidates) -> float:
        """The top quantile's peak, or with a band prior the median's peak plus the prior's conformal quantile at the
        risk times the band (`band_prior`)."""
        multiple, min_spread = self._band_multiple
        if multiple is None:
            return candidates.top
        median = candidates.top - candidates.spread
        return max(0.0, median + multiple * max(candidates.spread, min_spread))

    @cached_property
    def _band_multiple(self) -> tuple[float | None, float]:
        """The band prior's conformal quantile at the risk (None without a prior), and the smallest band."""
        if not self.band_prior:
            return None, 0.0
        config = Calibration(risk=self.risk, mode="spread", prior=self.band_prior, min_samples=1)
        return config.quantile(CalibrationState()), config.min_spread

    def _holds(self, desired: float, current: float, *, short: bool, hysteresis: float | None = None) -> bool:
        """Whether the hysteresis (None: the policy's) keeps `current` instead of `desired`: their ratio within the
        band, and no scale-up held after a step the current pods fell short on (its demand is already cut off).
        `current` NaN: never."""
        if hysteresis is None or hysteresis == self.hysteresis:
            hysteresis, band = self.hysteresis, self._hysteresis_band
        else:
            band = Tolerance.of(hysteresis)
        return (
            hysteresis > 0
            and current > 0  # False for NaN
            and (desired < current or not short)
            and band.is_within(desired / current)
        )

    def _hold_within_tolerance(
        self, obs: Observation, proposal: _Proposal, *, hysteresis: float | None = None
    ) -> _Proposal:
        """The hysteresis band (None: the policy's) over desired / current keeps the current count (`_holds`; a
        saturated step is the real pods falling short)."""
        desired, current = proposal.desired, obs.current_replicas
        if self._holds(desired, current, short=obs.saturated, hysteresis=hysteresis):
            band = self.hysteresis if hysteresis is None else hysteresis
            reason = f"{proposal.reason}; {desired} is within {band:.0%} of the current {current}: kept"
            return proposal._replace(desired=current, reason=reason)
        return proposal

    def _selection_text(self, state: PredictiveState) -> str:
        """Why the scoring in use is the one in use: each candidate's average capacity and shortfall rate."""
        n = len(self.scorings)
        if n < 2:
            return ""
        if len(state.costs) != n or state.compared < self.select_after:
            return f"; {self.scorings[state.choice].label} until the {n} candidates are compared"
        changes = state.change_rates if len(state.change_rates) == n else (math.nan,) * n
        figures = ", ".join(
            f"{s.label} {cost:.2f} cores {rate:.1%} short"
            + (f" {change:.1%} changed" if math.isfinite(change) else "")
            for s, cost, rate, change in zip(
                self.scorings, state.costs, state.shortfall_rates, changes, strict=True
            )
        )
        limits = f"within {self.select_slack:g}x the risk"
        if self.select_changes is not None and self._hpa_index is not None:
            limits += f" changing at most {self.select_changes:g}x as often as hpa"
        return f"; {self.scorings[state.choice].label} is the cheapest candidate {limits} ({figures})"

    @cached_property
    def _hpa_index(self) -> int | None:
        """The index of the HPA candidate among the scorings (None: there is none)."""
        return next((i for i, s in enumerate(self.scorings) if s.base == "hpa"), None)

    def _calm(self, state: PredictiveState, index: int) -> bool:
        """Whether the scoring at `index` changes its count at most `select_changes` times as often as the HPA
        candidate would (always, without an HPA candidate or a limit, or before the rates are known)."""
        reference = self._hpa_index
        if self.select_changes is None or reference is None or len(state.change_rates) != len(self.scorings):
            return True
        return state.change_rates[index] <= self.select_changes * state.change_rates[reference] + 1e-12

    def _compare(
        self, state: PredictiveState, capacities: tuple[float, ...], shortfalls: tuple[bool | None, ...]
    ) -> PredictiveState:
        """Average each scoring's capacity and how often its pods would not have held the step. Once all have
        `select_after` outcomes, use the cheapest of those whose shortfall rate is within `select_slack` times the
        risk (each is calibrated to the risk, so at equal shortfalls the cheaper one is the sharper), switching when
        it is cheaper by `select_margin`."""
        if len(capacities) < 2 or not all(math.isfinite(c) for c in capacities) or None in shortfalls:
            return state
        shorts = tuple(1.0 if s else 0.0 for s in shortfalls)
        if len(state.costs) != len(capacities):
            return evolve(state, costs=capacities, shortfall_rates=shorts, compared=1)
        keep = 1.0 - 1.0 / self.memory
        costs = tuple(keep * old + (1.0 - keep) * x for old, x in zip(state.costs, capacities, strict=True))
        rates = tuple(keep * old + (1.0 - keep) * x for old, x in zip(state.shortfall_rates, shorts, strict=True))
        n = len(capacities)
        choice = state.choice
        if state.compared + 1 >= self.select_after:
            eligible = [i for i in range(n) if rates[i] <= self.select_slack * self.risk and self._calm(state, i)]
            eligible = eligible or [choice]
            best = min(eligible, key=lambda i: costs[i])
            if costs[best] < (1.0 - self.select_margin) * costs[choice] or choice not in eligible:
                choice = best
        return evolve(state, costs=costs, shortfall_rates=rates, choice=choice, compared=state.compared + 1)
