"""HPA `behavior` semantics: stabilization windows, scaling policies (Pods, Percent), selectPolicy, min/max.

This follows the upstream controller (kubernetes pkg/controller/podautoscaler/horizontal.go:
stabilizeRecommendationWithBehaviors, convertDesiredReplicasWithBehaviorRate, calculateScaleUpLimitWithScalingRules,
calculateScaleDownLimitWithBehaviors) and the defaults of the autoscaling/v2 API:

- scaleUp: no stabilization; the larger of +100% and +4 pods per 15 s (selectPolicy Max);
- scaleDown: a 300 s stabilization window; -100% per 15 s.

Before either normalization, reconcileAutoscaler handles two states on its own: a target scaled to 0 replicas (with
min > 0) is paused and stays at 0, and a current count outside [min, max] goes straight to the bound, without
stabilization or rate limits. An HPA without `spec.behavior` takes the legacy path (`LegacyBehavior`:
normalizeDesiredReplicas, stabilizeRecommendation, convertDesiredReplicasWithRules), which is not the same as the
v2 defaults: scale-up is capped at max(2 × current, 4) per sync, scale-down only stabilized.

Upstream keeps the recommendation and scale-event histories in mutable maps and reads `time.Now()` inside helpers; here
the history is a frozen `BehaviorState`, `now` (seconds, any epoch) is an argument, and every function returns a new
state. Timestamps compare as upstream does: a record counts while it is strictly newer than `now - window`.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

from aihpa.scaling.decision import Decision, DecisionKind
from aihpa.scaling.evolve import evolve

__all__ = [
    "DEFAULT_BEHAVIOR",
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "LEGACY_SCALE_UP_FACTOR",
    "LEGACY_SCALE_UP_MINIMUM",
    "Behavior",
    "BehaviorState",
    "LegacyBehavior",
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

#: calculateScaleUpLimit: without behavior a sync may at most double the count, or reach this many pods.
LEGACY_SCALE_UP_FACTOR = 2
LEGACY_SCALE_UP_MINIMUM = 4


@dataclass(frozen=True)
class LegacyBehavior:
    """What an HPA without `spec.behavior` gets: a scale-down stabilization window and the min/max bounds.

    `downscale_stabilization_seconds` is kube-controller-manager's --horizontal-pod-autoscaler-downscale-stabilization.
    No scale events are kept: the legacy path has no rate policies.
    """

    min_replicas: int = 1
    max_replicas: int = 100
    downscale_stabilization_seconds: int = 300

    def __post_init__(self) -> None:
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError(f"need 0 <= min ({self.min_replicas}) <= max ({self.max_replicas})")
        if self.downscale_stabilization_seconds < 0:
            raise ValueError("downscale stabilization must be >= 0 seconds")


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
    new_state = evolve(state, recommendations=(*kept, (now, desired)))
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


def _legacy_stabilize(
    *, desired: int, window_seconds: int, state: BehaviorState, now: float
) -> tuple[int, BehaviorState]:
    """stabilizeRecommendation: the highest recommendation of the downscale window, this one included.

    Upstream counts a record unless it is strictly older than the cutoff (`Before(cutoff)`), so one exactly
    `window_seconds` old still counts; and nothing bounds the result by the current count.
    """
    cutoff = now - window_seconds
    kept = tuple((t, r) for t, r in state.recommendations if t >= cutoff)
    stabilized = max((r for _, r in kept), default=desired)
    return max(stabilized, desired), evolve(state, recommendations=(*kept, (now, desired)))


def _legacy_rules(*, current: int, desired: int, behavior: LegacyBehavior) -> tuple[int, str]:
    """convertDesiredReplicasWithRules: min, then the lower of max and max(2 × current, 4)."""
    scale_up_limit = max(LEGACY_SCALE_UP_FACTOR * current, LEGACY_SCALE_UP_MINIMUM)
    if behavior.max_replicas > scale_up_limit:
        allowed, why = scale_up_limit, "ScaleUpLimit"
    else:
        allowed, why = behavior.max_replicas, "TooManyReplicas"
    if desired < behavior.min_replicas:
        return behavior.min_replicas, "TooFewReplicas"
    if desired > allowed:
        return allowed, why
    return desired, ""


def _explain(limited_by: str, *, min_replicas: int, max_replicas: int) -> str:
    return {
        "ScaleUpStabilized": "held by the scale-up stabilization window",
        "ScaleDownStabilized": "held by the scale-down stabilization window (a recent recommendation was higher)",
        "ScaleUpLimit": "limited by the scale-up rate policy",
        "ScaleDownLimit": "limited by the scale-down rate policy",
        "TooManyReplicas": f"capped at max {max_replicas}",
        "TooFewReplicas": f"raised to min {min_replicas}",
    }[limited_by]


def apply_behavior(
    *,
    current: int,
    desired: int,
    behavior: Behavior | LegacyBehavior,
    state: BehaviorState,
    now: float,
    reason: str,
    kind: DecisionKind = DecisionKind.REACTIVE,
) -> tuple[Decision, BehaviorState]:
    """The HPA's normalize step, in reconcileAutoscaler's order.

    - a target at 0 replicas with min > 0 is paused ("ScalingDisabled"): it stays at 0;
    - a current count above max (below min) goes to max (min) directly: no stabilization, no rate limits, and no
      recommendation recorded;
    - otherwise stabilization, then rate limits and min/max (`Behavior`, normalizeDesiredReplicasWithBehaviors), or
      the legacy rules of an HPA without `spec.behavior` (`LegacyBehavior`, normalizeDesiredReplicas).

    `desired` is the raw recommendation, `reason` why it was made and `kind` the rule that made it (the Decision
    carries both on, whatever behavior does to the count). Scale events are not recorded here: call
    `record_scale` once the new count has actually been applied.
    """
    lo, hi = behavior.min_replicas, behavior.max_replicas
    if current == 0 and lo > 0:
        text = f"scaling is disabled since the replica count of the target is zero (min {lo}); keeping 0"
        return Decision(replicas=0, reason=text, recommended=desired, limited_by="ScalingDisabled", kind=kind), state
    if current > hi or current < lo:
        bound, why, side = (hi, "TooManyReplicas", "above max") if current > hi else (lo, "TooFewReplicas", "below min")
        text = (
            f"{reason}; recommended {desired}; the current count {current} is {side} {bound}: "
            f"{_explain(why, min_replicas=lo, max_replicas=hi)} directly, without stabilization or rate limits"
        )
        return Decision(replicas=bound, reason=text, recommended=desired, limited_by=why, kind=kind), state
    if isinstance(behavior, LegacyBehavior):
        stabilized, state = _legacy_stabilize(
            desired=desired, window_seconds=behavior.downscale_stabilization_seconds, state=state, now=now
        )
        why_stable = "ScaleDownStabilized" if stabilized != desired else ""
        replicas, why_rate = _legacy_rules(current=current, desired=stabilized, behavior=behavior)
    else:
        stabilized, why_stable, state = stabilize(
            current=current, desired=desired, behavior=behavior, state=state, now=now
        )
        replicas, why_rate = _rate_limit(current=current, desired=stabilized, behavior=behavior, state=state, now=now)
    limited_by = why_rate or why_stable
    text = reason
    if limited_by:
        text = f"{reason}; recommended {desired}, {_explain(limited_by, min_replicas=lo, max_replicas=hi)}"
    return Decision(replicas=replicas, reason=text, recommended=desired, limited_by=limited_by, kind=kind), state


def record_scale(
    *, state: BehaviorState, behavior: Behavior | LegacyBehavior, old: int, new: int, now: float
) -> BehaviorState:
    """Remember a scale change for the rate policies, dropping events older than the longest policy period.

    storeScaleEvent keeps nothing for an HPA without behavior (`LegacyBehavior`): it has no rate policies.
    """
    if isinstance(behavior, LegacyBehavior):
        return state
    up = tuple(e for e in state.scale_up_events if e.time > now - behavior.scale_up.longest_period)
    down = tuple(e for e in state.scale_down_events if e.time > now - behavior.scale_down.longest_period)
    if new > old:
        up = (*up, ScaleEvent(now, new - old))
    elif new < old:
        down = (*down, ScaleEvent(now, old - new))
    return evolve(state, scale_up_events=up, scale_down_events=down)
