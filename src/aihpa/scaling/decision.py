"""The outcome of one scaling computation: a replica count together with the reason for it and the rule that chose it.

Events, logs and the status annotation quote `Decision.reason` as is, so nobody re-derives why a count was chosen;
the controller counts and acts on `Decision.kind`, so nobody reads the reason's wording to learn what kind of
decision it was. Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["Decision", "DecisionKind"]


class DecisionKind(StrEnum):
    """Which rule recommended the count, before behavior (stabilization, rate limits, min/max) shaped it.

    The values are the `reason` label of the `aihpa_decisions_total` metric.
    """

    #: the predictive policy: the forecast's peak with its calibrated headroom (or the model's top quantile while the
    #: calibration has too few scores)
    FORECAST = "forecast"
    #: the predictive policy, where the reactive HPA asked for more pods than the forecast
    REACTIVE_FLOOR = "reactive-floor"
    #: the predictive policy without a usable forecast (none, too little history, not finite): the reactive HPA
    FALLBACK = "fallback"
    #: the reactive HPA alone (a workload in reactive mode, or the HPA itself)
    REACTIVE = "reactive"
    #: between model steps: the reactive HPA adding capacity (the safety net never removes any)
    SAFETY_NET = "reactive-safety"
    #: nothing to act on (no metric, or the safety net has nothing to add): the current count is kept
    HOLD = "hold"


@dataclass(frozen=True)
class Decision:
    """A replica count and why.

    `replicas` is what to set the scale to. `recommended` is the count before behavior (stabilization, rate limits,
    min/max) shaped it. `reason` is one human sentence; `limited_by` names the behavior step that changed the
    recommendation ("" when none did), in the Kubernetes condition vocabulary (ScaleDownStabilized, ScaleUpLimit...,
    TooManyReplicas / TooFewReplicas when max / min decided the count, ScalingDisabled for a target paused at 0).
    Whenever max or min decided the count, `reason` says so with the bound ("capped at max 10", "raised to min 2").
    `kind` is the rule that recommended the count, set by whoever made the recommendation.
    """

    replicas: int
    reason: str
    recommended: int
    limited_by: str = ""
    kind: DecisionKind = DecisionKind.REACTIVE

    @property
    def changed_by_behavior(self) -> bool:
        return self.replicas != self.recommended
