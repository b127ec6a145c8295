"""Scaling policies that turn observations (and forecasts) into a `Decision`: the reactive HPA and aihpa's own.

The predictive policy provisions for the peak of the forecast over the lead time:

    replicas = ceil(capacity(q(peak demand over the lead time)) / (target utilization × CPU request per pod))

where capacity() adds the calibrated headroom; the reactive HPA recommendation is a floor (max), then HPA `behavior`
applies. The headroom comes from online calibration (`aihpa.scaling.calibration`): a rolling conformal quantile of
realized / forecast peaks, corrected by the realized saturation so that its long-run share approaches the chosen
risk. When the history is too short or the forecast is not finite the policy falls back to the reactive HPA and says
so in the Decision's reason.

Pure: no I/O, no clock (`now` is an argument, in seconds), no forecaster calls: the caller batches forecasts for all
workloads and passes each workload's slice in. Configs and states are frozen; each call returns a new state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from aihpa.scaling.behavior import DEFAULT_BEHAVIOR, Behavior, BehaviorState, apply_behavior, record_scale
from aihpa.scaling.calibration import NO_CONTEXT, Calibration, CalibrationState, Context, ring_push
from aihpa.scaling.decision import Decision
from aihpa.scaling.hpa import DEFAULT_TOLERANCE, hpa_replicas

__all__ = [
    "Observation",
    "PredictivePolicy",
    "PredictiveState",
    "ReactivePolicy",
    "ReactiveState",
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
    obs: Observation, *, desired: int, reason: str, behavior: Behavior, state: BehaviorState
) -> tuple[Decision, BehaviorState]:
    """The HPA's normalize step for a recommendation, and the scale it leads to remembered for the rate limits."""
    decision, bstate = apply_behavior(
        current=obs.current_replicas, desired=desired, behavior=behavior, state=state, now=obs.now, reason=reason
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

    def recommend(self, obs: Observation) -> tuple[int, str]:
        rec = hpa_replicas(
            current_replicas=obs.current_replicas,
            usage=obs.usage,
            pods_with_metrics=obs.pods_with_metrics,
            missing_pods=obs.missing_pods,
            target_utilization=self.target_utilization,
            request_per_pod=self.request_per_pod,
            tolerance=self.tolerance,
        )
        return rec.replicas, f"reactive HPA: {rec.reason}"

    def decide(self, obs: Observation, state: ReactiveState) -> tuple[Decision, ReactiveState]:
        desired, reason = self.recommend(obs)
        decision, bstate = _normalize(obs, desired=desired, reason=reason, behavior=self.behavior, state=state.behavior)
        return decision, ReactiveState(behavior=bstate)


@dataclass(frozen=True)
class PredictiveState:
    """Behavior history, calibration, and the forecasts still waiting for their outcome."""

    behavior: BehaviorState = field(default_factory=BehaviorState)
    calibration: CalibrationState = field(default_factory=CalibrationState)
    # (forecast peak, its spread, made right after a saturated step, the decision's context and control step) of the
    # last decisions, oldest first; each is compared with its realized peak lead_steps later
    pending: tuple[tuple[float, float, bool, Context, int], ...] = ()
    # (usage, saturated) of the most recent observations, oldest first, at most lead_steps of them
    recent: tuple[tuple[float, bool], ...] = ()
    # the last level_window usage samples (a ring), for the level context: where usage stands in its recent range
    levels: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0, dtype=np.float64))
    levels_position: int = 0


@dataclass(frozen=True)
class PredictivePolicy:
    """aihpa's policy. The one risk knob is `calibration.risk`: the share of saturated steps to aim for.

    `lead_steps` is how many forecast steps must be covered: with pods that are ready one step after they are asked
    for and an immediate scale-down, a count chosen now serves this step and the next, so 2. `base_quantile` is the
    forecast quantile whose peak is calibrated in ratio mode (the nearest one the forecaster has; spread mode centres
    on the median and reaches to the top quantile). `min_history` is the shortest history the forecast is trusted on.
    """

    calibration: Calibration = field(default_factory=Calibration)
    target_utilization: float = 0.7
    request_per_pod: float = 1.0
    lead_steps: int = 2
    base_quantile: float = 0.95
    min_history: int = 1
    tolerance: float = DEFAULT_TOLERANCE
    behavior: Behavior = DEFAULT_BEHAVIOR
    # the control step (seconds): decisions are numbered floor(now / step_seconds) for the calibration's cycle phases
    step_seconds: float = 60.0
    # usage samples the level context looks back over
    level_window: int = 720

    def __post_init__(self) -> None:
        if self.step_seconds <= 0:
            raise ValueError("step_seconds must be positive")
        if self.lead_steps < 1:
            raise ValueError("lead_steps must be at least 1")
        if not 0.0 < self.target_utilization <= 1.0:
            raise ValueError("target utilization must be in (0, 1]")

    @property
    def risk(self) -> float:
        return self.calibration.risk

    def with_risk(self, risk: float) -> PredictivePolicy:
        return replace(self, calibration=replace(self.calibration, risk=risk))

    @property
    def reactive(self) -> ReactivePolicy:
        return ReactivePolicy(
            target_utilization=self.target_utilization,
            request_per_pod=self.request_per_pod,
            tolerance=self.tolerance,
            behavior=self.behavior,
        )

    @staticmethod
    def _quantile_index(quantiles: Sequence[float], level: float) -> int:
        return int(np.argmin(np.abs(np.asarray(quantiles, dtype=np.float64) - level)))

    def observe(self, obs: Observation, state: PredictiveState) -> PredictiveState:
        """Fold the newest observation into calibration (the outcome of the forecast made lead_steps ago)."""
        recent = (*state.recent, (obs.usage, obs.saturated))[-self.lead_steps :]
        calibration = state.calibration
        pending = state.pending
        levels, levels_position = state.levels, state.levels_position
        if obs.history_len > 0 and math.isfinite(obs.usage) and self.calibration.contextual:
            levels, levels_position = ring_push(levels, levels_position, obs.usage, self.level_window)
        if len(pending) >= self.lead_steps and len(recent) == self.lead_steps:
            (forecast, spread, after_saturation, context, step), pending = pending[0], pending[1:]
            realized = max(u for u, _ in recent)
            censored = any(s for _, s in recent)
            calibration = self.calibration.update(
                calibration,
                realized=realized,
                forecast=forecast,
                censored=censored,
                saturated=obs.saturated,
                after_saturation=after_saturation,
                spread=spread,
                context=context,
                step=step,
            )
        elif obs.history_len > 0:
            calibration = self.calibration.update(
                calibration, realized=math.nan, forecast=math.nan, censored=False, saturated=obs.saturated
            )
        return replace(
            state,
            recent=recent,
            calibration=calibration,
            pending=pending,
            levels=levels,
            levels_position=levels_position,
        )

    def _level(self, state: PredictiveState, usage: float) -> float | None:
        """Where `usage` stands in the range of the recent samples (0 at the bottom, 1 at the top), or None."""
        if state.levels.shape[0] < 2 or not math.isfinite(usage):
            return None
        low, high = float(state.levels.min()), float(state.levels.max())
        if high - low <= 1e-9 * max(abs(high), 1.0):
            return None
        return (usage - low) / (high - low)

    def decide(
        self,
        obs: Observation,
        state: PredictiveState,
        *,
        forecast: npt.NDArray[np.floating] | None,
        quantiles: Sequence[float],
    ) -> tuple[Decision, PredictiveState]:
        """One cycle. `forecast` is this workload's [horizon, n_quantiles] demand forecast in cores (or None)."""
        state = self.observe(obs, state)
        step = math.floor(obs.now / self.step_seconds + 1e-9)
        context = NO_CONTEXT
        if self.calibration.contextual:
            context = self.calibration.context(state.calibration, step=step, level=self._level(state, obs.usage))
        reactive, reactive_reason = self.reactive.recommend(obs)
        peak = math.nan
        why_not = ""
        if forecast is None:
            why_not = "no forecast"
        elif obs.history_len < self.min_history:
            why_not = f"history too short ({obs.history_len} of {self.min_history} samples)"
        else:
            arr = np.asarray(forecast, dtype=np.float64)
            if arr.ndim != 2 or arr.shape[0] < 1:
                why_not = "forecast has the wrong shape"
            else:
                lead = arr[: self.lead_steps]
                if not np.isfinite(lead).all():
                    why_not = "forecast is not finite"
                else:
                    top = float(lead[:, -1].max())
                    if self.calibration.mode == "spread":
                        # centre on the median forecast; the spread reaches the top quantile
                        peak_base = float(lead[:, self._quantile_index(quantiles, 0.5)].max())
                    else:
                        peak_base = float(lead[:, self._quantile_index(quantiles, self.base_quantile)].max())
                    spread = max(0.0, top - peak_base)
                    capacity = self.calibration.provision(
                        state.calibration,
                        peak=peak_base,
                        spread=spread,
                        after_saturation=obs.saturated,
                        context=context,
                    )
                    if capacity is None:
                        # not calibrated yet: the forecaster's own top quantile stands in
                        peak = top
                        headroom_text = f"top quantile while calibrating ({len(state.calibration.log_ratios)} scores)"
                    else:
                        peak = capacity
                        headroom_text = f"calibrated at risk {self.risk:.2%}"
                        if obs.saturated:
                            headroom_text += ", after a saturated step"
                    state = replace(
                        state, pending=(*state.pending, (max(peak_base, 0.0), spread, obs.saturated, context, step))
                    )

        if math.isnan(peak):
            desired, reason = reactive, f"{reactive_reason} (fallback: {why_not})"
            # keep the calibration queue aligned with decisions even when no forecast was used
            state = replace(state, pending=(*state.pending, (math.nan, math.nan, obs.saturated, context, step)))
        else:
            predicted = max(0, math.ceil(max(peak, 0.0) / (self.target_utilization * self.request_per_pod) - 1e-9))
            if predicted >= reactive:
                desired = predicted
                reason = (
                    f"forecast peak {peak_base:.2f} cores over {self.lead_steps} step(s), {peak:.2f} with headroom "
                    f"({headroom_text}), needs {predicted} pods at {self.target_utilization:.0%}"
                )
            else:
                desired = reactive
                reason = f"{reactive_reason}, above the forecast's {predicted} pods (reactive floor)"
        decision, bstate = _normalize(obs, desired=desired, reason=reason, behavior=self.behavior, state=state.behavior)
        return decision, replace(state, behavior=bstate)
