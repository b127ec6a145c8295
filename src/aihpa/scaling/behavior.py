"""HPA `behavior` semantics: stabilization windows, scaling policies (Pods, Percent), selectPolicy, min/max.

This follows the upstream controller (kubernetes pkg/controller/podautoscaler/horizontal.go:
stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors) and the defaults of the autoscaling/v2 API:

- scaleUp: no stabilization; the larger of +100% and +4 pods per 15 s (selectPolicy Max);
- scaleDown: a 300 s stabilization window; -100% per 15 s.

Upstream keeps the recommendation and scale-event histories in mutable maps and reads `time.Now()` inside helpers; here
the history is a frozen `BehaviorState`, `now` (seconds, any epoch) is an argument, and every function returns a new
state. Timestamps compare as upstream does: a record counts while it is strictly newer than `now - window`.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from aihpa.scaling.decision import Decision

__all__ = [
    "DEFAULT_BEHAVIOR",
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "Behavior",
    "BehaviorState",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "apply_behavior",
    "record_scale",
    "scale_down_limit",
    "scale_up_limit",
    "stabilize",
]

PolicyType = Literal["Pods", "Percent"]
SelectPolicy = Literal["Max", "Min", "Disabled"]


@dataclass(frozen=True)
class ScalingPolicy:
    """One HPAScalingPolicy: change by at most `value` pods (or `value` percent) per `period_seconds`."""

    type: PolicyType
    value: int
    period_seconds: int

    def __post_init__(self) -> None:
        if self.type not in ("Pods", "Percent"):
            raise ValueError(f"scaling policy type must be Pods or Percent, not {self.type!r}")
        if self.value <= 0:
            raise ValueError("scaling policy value must be positive")
        if not 0 < self.period_seconds <= 1800:
            raise ValueError("scaling policy periodSeconds must be in (0, 1800]")


@dataclass(frozen=True)
class ScalingRules:
    """HPAScalingRules for one direction."""

    stabilization_window_seconds: int
    policies: tuple[ScalingPolicy, ...]
    select_policy: SelectPolicy = "Max"

    def __post_init__(self) -> None:
        if not 0 <= self.stabilization_window_seconds <= 3600:
            raise ValueError("stabilizationWindowSeconds must be in [0, 3600]")
        if self.select_policy not in ("Max", "Min", "Disabled"):
            raise ValueError(f"selectPolicy must be Max, Min or Disabled, not {self.select_policy!r}")

    @property
    def longest_period(self) -> int:
        return max((p.period_seconds for p in self.policies), default=0)


DEFAULT_SCALE_UP = ScalingRules(
    stabilization_window_seconds=0,
    policies=(ScalingPolicy("Percent", 100, 15), ScalingPolicy("Pods", 4, 15)),
    select_policy="Max",
)
DEFAULT_SCALE_DOWN = ScalingRules(
    stabilization_window_seconds=300,
    policies=(ScalingPolicy("Percent", 100, 15),),
    select_policy="Max",
)


@dataclass(frozen=True)
class Behavior:
    """HorizontalPodAutoscalerBehavior with the Kubernetes defaults, plus the min/max bounds it enforces."""

    scale_up: ScalingRules = DEFAULT_SCALE_UP
    scale_down: ScalingRules = DEFAULT_SCALE_DOWN
    min_replicas: int = 1
    max_replicas: int = 100

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"need 0 <= min ({self.min_replicas}) <= max ({self.max_replicas})")

    def with_scale_down_stabilization(self, seconds: int) -> Behavior:
        return replace(self, scale_down=replace(self.scale_down, stabilization_window_seconds=seconds))


DEFAULT_BEHAVIOR = Behavior()


@dataclass(frozen=True)
class ScaleEvent:
    """A change of the scale made at `time`: `change` pods added (scale-up list) or removed (scale-down list)."""

    time: float
    change: int


@dataclass(frozen=True)
class BehaviorState:
    """What behavior remembers between cycles: raw recommendations and recent scale events."""

    recommendations: tuple[tuple[float, int], ...] = field(default=())
    scale_up_events: tuple[ScaleEvent, ...] = field(default=())
    scale_down_events: tuple[ScaleEvent, ...] = field(default=())


def _changes_in_period(events: tuple[ScaleEvent, ...], period_seconds: int, now: float) -> int:
    cutoff = now - period_seconds
    return sum(e.change for e in events if e.time > cutoff)


def scale_up_limit(*, current: int, rules: ScalingRules, state: BehaviorState, now: float) -> int:
    """The most replicas the scale-up policies allow now (calculateScaleUpLimitWithScalingRules)."""
    if rules.select_policy == "Disabled":
        return current
    limits = []
    for policy in rules.policies:
        added = _changes_in_period(state.scale_up_events, policy.period_seconds, now)
        deleted = _changes_in_period(state.scale_down_events, policy.period_seconds, now)
        period_start = current - added + deleted
        if policy.type == "Pods":
            limits.append(period_start + policy.value)
        else:
            # rounded up, or a small deployment could never grow
            limits.append(math.ceil(period_start * (1 + policy.value / 100)))
    if not limits:
        return current
    return min(limits) if rules.select_policy == "Min" else max(limits)


def scale_down_limit(*, current: int, rules: ScalingRules, state: BehaviorState, now: float) -> int:
    """The fewest replicas the scale-down policies allow now (calculateScaleDownLimitWithBehaviors)."""
    if rules.select_policy == "Disabled":
        return current
    limits = []
    for policy in rules.policies:
        added = _changes_in_period(state.scale_up_events, policy.period_seconds, now)
        deleted = _changes_in_period(state.scale_down_events, policy.period_seconds, now)
        period_start = current - added + deleted
        if policy.type == "Pods":
            limits.append(period_start - policy.value)
        else:
            # Go's int32() truncates toward zero
            limits.append(int(period_start * (1 - policy.value / 100)))
    if not limits:
        return current
    # "Min" selects the smallest change, which for a scale-down is the largest floor
    return max(limits) if rules.select_policy == "Min" else min(limits)


def stabilize(
    *, current: int, desired: int, behavior: Behavior, state: BehaviorState, now: float
) -> tuple[int, str, BehaviorState]:
    """Stabilization windows (stabilizeRecommendationWithBehaviors): the recommendation moves only as far as the
    lowest recent recommendation (scale-up window) and the highest one (scale-down window) allow.

    Returns (stabilized, limiting reason or "", new state with `desired` recorded).
    """
    up_cutoff = now - behavior.scale_up.stabilization_window_seconds
    down_cutoff = now - behavior.scale_down.stabilization_window_seconds
    up_rec = desired
    down_rec = desired
    for time, rec in state.recommendations:
        if time > up_cutoff:
            up_rec = min(up_rec, rec)
        if time > down_cutoff:
            down_rec = max(down_rec, rec)
    stabilized = max(current, up_rec)
    stabilized = min(stabilized, down_rec)
    # keep only what either window can still see; upstream overwrites one stale slot, the visible set is the same
    keep_after = min(up_cutoff, down_cutoff)
    kept = tuple((t, r) for t, r in state.recommendations if t > keep_after)
    new_state = replace(state, recommendations=(*kept, (now, desired)))
    reason = ""
    if stabilized != desired:
        reason = "ScaleUpStabilized" if desired >= current else "ScaleDownStabilized"
    return stabilized, reason, new_state


def _rate_limit(
    *, current: int, desired: int, behavior: Behavior, state: BehaviorState, now: float
) -> tuple[int, str]:
    """Rate limits and min/max (convertDesiredReplicasWithBehaviorRate)."""
    if desired > current:
        up_limit = max(scale_up_limit(current=current, rules=behavior.scale_up, state=state, now=now), current)
        if behavior.max_replicas > up_limit:
            allowed, why = up_limit, "ScaleUpLimit"
        else:
            allowed, why = behavior.max_replicas, "TooManyReplicas"
        if desired > allowed:
            return allowed, why
    elif desired < current:
        down_limit = min(scale_down_limit(current=current, rules=behavior.scale_down, state=state, now=now), current)
        if behavior.min_replicas < down_limit:
            allowed, why = down_limit, "ScaleDownLimit"
        else:
            allowed, why = behavior.min_replicas, "TooFewReplicas"
        if desired < allowed:
            return allowed, why
    return desired, ""


_EXPLAIN = {
    "ScaleUpStabilized": "held by the scale-up stabilization window",
    "ScaleDownStabilized": "held by the scale-down stabilization window (a recent recommendation was higher)",
    "ScaleUpLimit": "limited by the scale-up rate policy",
    "ScaleDownLimit": "limited by the scale-down rate policy",
    "TooManyReplicas": "capped at maxReplicas",
    "TooFewReplicas": "raised to minReplicas",
}


def apply_behavior(
    *,
    current: int,
    desired: int,
    behavior: Behavior,
    state: BehaviorState,
    now: float,
    reason: str,
) -> tuple[Decision, BehaviorState]:
    """The HPA's normalize step: min/max on the current count, stabilization, then rate limits and min/max.

    `desired` is the raw recommendation and `reason` why it was made. Scale events are not recorded here: call
    `record_scale` once the new count has actually been applied.
    """
    recommended = desired
    out_of_range = ""
    if current > behavior.max_replicas:
        # upstream skips the metrics and goes to the bound when the current count is out of range
        desired, out_of_range = behavior.max_replicas, "TooManyReplicas"
    elif current < behavior.min_replicas:
        desired, out_of_range = behavior.min_replicas, "TooFewReplicas"
    stabilized, why_stable, state = stabilize(
        current=current, desired=desired, behavior=behavior, state=state, now=now
    )
    replicas, why_rate = _rate_limit(current=current, desired=stabilized, behavior=behavior, state=state, now=now)
    limited_by = why_rate or why_stable or out_of_range
    text = reason
    if limited_by:
        text = f"{reason}; recommended {recommended}, {_EXPLAIN[limited_by]}"
    return Decision(replicas=replicas, reason=text, recommended=recommended, limited_by=limited_by), state


def record_scale(*, state: BehaviorState, behavior: Behavior, old: int, new: int, now: float) -> BehaviorState:
    """Remember a scale change for the rate policies, dropping events older than the longest policy period."""
    up = tuple(e for e in state.scale_up_events if e.time > now - behavior.scale_up.longest_period)
    down = tuple(e for e in state.scale_down_events if e.time > now - behavior.scale_down.longest_period)
    if new > old:
        up = (*up, ScaleEvent(now, new - old))
    elif new < old:
        down = (*down, ScaleEvent(now, old - new))
    return replace(state, scale_up_events=up, scale_down_events=down)
