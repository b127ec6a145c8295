"""The one place a predictive policy is built: the controller (from a workload's annotations and its pods' CPU) and
the backtest's `aihpa` row both call `predictive_policy`, so what the backtest scores is what runs live.

What a pod "may use": its CPU limit when it has one, else its CPU request. A pod without a limit can burst past its
request only while its node has idle CPU, which nobody promised it, so aihpa does not count on it. A workload is short
of CPU in a minute when its demand exceeds its ready pods times what each may use; `saturation_risk` is the share of
minutes it may be short, and predictive mode sizes to exactly that (the calibrated headroom is the only headroom:
there is no target utilization stacked on it). The user's `target_utilization` keeps the HPA's meaning and applies
only where the HPA's reasoning runs alone: reactive mode, and the fallback while no forecast can be trusted.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from aihpa.defaults import (
    DEFAULT_SATURATION_RISK,
    DEFAULT_TARGET_UTILIZATION,
    PREDICTIVE_SCALE_DOWN_STABILIZATION_S,
    REACTIVE_SCALE_DOWN_STABILIZATION_S,
)
from aihpa.scaling.behavior import DEFAULT_BEHAVIOR, Behavior, ScalingPolicy, ScalingRules
from aihpa.scaling.calibration import Calibration
from aihpa.scaling.hpa import DEFAULT_TOLERANCE
from aihpa.scaling.policy import PredictivePolicy, ReactivePolicy
from aihpa.scaling.prior import BAND_PRIOR
from aihpa.step import DEFAULT_STEP_S

__all__ = [
    "PodCpu",
    "predictive_policy",
    "reactive_policy",
]

@dataclass(frozen=True, slots=True)
class PodCpu:
    """One pod's CPU in cores, from its containers' resources: `request` (None: not set) and `limit` (None: not set)."""

    request: float | None = 1.0
    limit: float | None = None

    @property
    def base(self) -> float:
        """The per-pod base of utilization figures: the request (1 core when unset, as the backtest's pods)."""
        return self.request if self.request is not None and self.request > 0 else 1.0

    @property
    def may_use(self) -> float:
        """The most one pod may use: its limit, else its request."""
        return self.limit if self.limit is not None and self.limit > 0 else self.base


def _behavior(min_replicas: int, max_replicas: int, scale_down_stabilization_s: int) -> Behavior:
    # the forecast decides how many pods to add: no scale-up window and no rate limit below max (a rate limit would
    # only delay a count that was sized for the coming load); scale-down keeps the HPA's rate rules
    return Behavior(
        scale_up=ScalingRules(
            stabilization_window_seconds=0, policies=(ScalingPolicy("Pods", max_replicas, 15),), select_policy="Max"
        ),
        scale_down=DEFAULT_BEHAVIOR.scale_down,
        min_replicas=min_replicas,
        max_replicas=max_replicas,
    ).with_scale_down_stabilization(scale_down_stabilization_s)


#: The forecast candidates hold their count within twice the HPA's tolerance (0.2 by default): leave-one-trace-out
#: chose 0.2 over 0.1 on every held-out trace (`benchmarks/bench_scaling.py`; with 0.1 the forecast candidates change
#: the count more than 1.5x as often as the HPA and are set aside on the bursty traces), at most `MAX_HYSTERESIS`.
HYSTERESIS_PER_TOLERANCE = 2.0
MAX_HYSTERESIS = 0.5


def predictive_policy(
    *,
    saturation_risk: float = DEFAULT_SATURATION_RISK,
    min_replicas: int = 1,
    max_replicas: int = 100,
    tolerance: float = DEFAULT_TOLERANCE,
    scale_down_stabilization_s: int = PREDICTIVE_SCALE_DOWN_STABILIZATION_S,
    fallback_utilization: float = DEFAULT_TARGET_UTILIZATION,
    pod: PodCpu = PodCpu(),
    min_history: int = 1,
    step_s: float = DEFAULT_STEP_S,
    prior: Mapping[str, Sequence[float]] | None = None,
) -> PredictivePolicy:
    """aihpa's predictive policy for one workload.

    Sized to `saturation_risk` against what its pods may use (`PodCpu.may_use`, as a utilization of the request: above
    100% when the limit is above the request); the 95% quantile's peak over the next two steps calibrated as a ratio
    with an offset of one pod (an error model that is multiplicative at high load and additive near zero); the reactive
    HPA at the same ceiling as a floor; the stock HPA at the target that held the risk on the workload's history as a
    candidate (`aihpa.scaling.hpa_grid`); the HPA's `tolerance` as that candidate's tolerance, twice it as the
    others' hysteresis (`HYSTERESIS_PER_TOLERANCE`); the HPA
    at `fallback_utilization` while no forecast is trusted. `prior`: the model's calibration prior
    (`aihpa.scaling.prior`): its band prior sizes a new workload until it has scores of its own (none: the
    forecaster's top quantile does), bounded by the policy's warm-up margin over the fallback.
    """
    if not (math.isfinite(saturation_risk) and 0.0 < saturation_risk < 1.0):
        raise ValueError(f"saturation risk must be in (0, 1), got {saturation_risk!r}")
    return PredictivePolicy(
        calibration=Calibration(risk=saturation_risk, mode="ratio", offset=pod.may_use),
        target_utilization=pod.may_use / pod.base,
        fallback_utilization=fallback_utilization,
        request_per_pod=pod.base,
        lead_steps=2,
        base_quantile=0.95,
        min_history=max(1, min_history),
        tolerance=tolerance,
        hysteresis=min(HYSTERESIS_PER_TOLERANCE * tolerance, MAX_HYSTERESIS),
        behavior=_behavior(min_replicas, max_replicas, scale_down_stabilization_s),
        step_s=step_s,
        band_prior=tuple(sorted(float(x) for x in (prior or {}).get(BAND_PRIOR, ()))),
    )


def reactive_policy(
    *,
    target_utilization: float = DEFAULT_TARGET_UTILIZATION,
    min_replicas: int = 1,
    max_replicas: int = 100,
    tolerance: float = DEFAULT_TOLERANCE,
    scale_down_stabilization_s: int = REACTIVE_SCALE_DOWN_STABILIZATION_S,
    pod: PodCpu = PodCpu(),
) -> ReactivePolicy:
    """The Kubernetes HPA on CPU utilization of the request, with its default behavior (reactive mode)."""
    return ReactivePolicy(
        target_utilization=target_utilization,
        request_per_pod=pod.base,
        tolerance=tolerance,
        behavior=Behavior(min_replicas=min_replicas, max_replicas=max_replicas).with_scale_down_stabilization(
            scale_down_stabilization_s
        ),
    )
