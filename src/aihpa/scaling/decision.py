"""The outcome of one scaling computation: a replica count together with the reason for it.

Events, logs and the status annotation quote `Decision.reason` as is, so nobody re-derives why a count was chosen.
Pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Decision"]


@dataclass(frozen=True)
class Decision:
    """A replica count and why.

    `replicas` is what to set the scale to. `recommended` is the count before behavior (stabilization, rate limits,
    min/max) shaped it. `reason` is one human sentence; `limited_by` names the behavior step that changed the
    recommendation ("" when none did), in the Kubernetes condition vocabulary (ScaleDownStabilized, ScaleUpLimit...,
    TooManyReplicas / TooFewReplicas when max / min decided the count, ScalingDisabled for a target paused at 0).
    Whenever max or min decided the count, `reason` says so with the bound ("capped at max 10", "raised to min 2").
    """

    replicas: int
    reason: str
    recommended: int
    limited_by: str = ""

    @property
    def changed_by_behavior(self) -> bool:
        return self.replicas != self.recommended
