"""HPA `behavior`: the documented defaults and examples of the Kubernetes HPA page ("Configurable scaling behavior")."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from aihpa.scaling import (
    DEFAULT_BEHAVIOR,
    Behavior,
    BehaviorState,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    apply_behavior,
    record_scale,
)
from aihpa.scaling.behavior import LegacyBehavior

DOCS_SCALE_DOWN_POLICIES = ScalingRules(
    stabilization_window_seconds=0,
    policies=(ScalingPolicy("Pods", 4, 60), ScalingPolicy("Percent", 10, 60)),
)


@dataclass(frozen=True)
class Case:
    name: str
    current: int
    desired: int
    expected: int
    behavior: Behavior = DEFAULT_BEHAVIOR
    state: BehaviorState = field(default_factory=BehaviorState)
    now: float = 1000.0


CASES = [
    # default scaleUp: the higher of 100% and 4 pods per 15 s
    Case("default_scale_up_adds_4_pods_to_a_small_deployment", current=1, desired=10, expected=5),
    Case("default_scale_up_doubles_a_large_deployment", current=10, desired=50, expected=20),
    Case("default_scale_up_allows_the_desired_count_within_limits", current=10, desired=13, expected=13),
    Case(
        "default_scale_up_counts_pods_added_earlier_in_the_period",
        current=8,
        desired=40,
        expected=8,
        # 4 pods were added 10 s ago, so the period started at 4 pods: max(4 + 4, 2 × 4) = 8 is the limit
        state=BehaviorState(scale_up_events=(ScaleEvent(990.0, 4),)),
    ),
    Case(
        "default_scale_up_forgets_events_older_than_the_period",
        current=8,
        desired=40,
        expected=16,
        state=BehaviorState(scale_up_events=(ScaleEvent(980.0, 4),)),
    ),
    # default scaleDown: 300 s stabilization, then up to 100% per 15 s
    Case(
        "default_scale_down_holds_the_highest_recommendation_of_the_stabilization_window",
        current=10,
        desired=2,
        expected=8,
        state=BehaviorState(recommendations=((800.0, 8), (900.0, 5))),
    ),
    Case(
        "default_scale_down_ignores_recommendations_older_than_300_s",
        current=10,
        desired=2,
        expected=5,
        state=BehaviorState(recommendations=((700.0, 8), (900.0, 5))),
    ),
    Case(
        "stabilization_never_raises_above_the_current_count",
        current=6,
        desired=2,
        expected=6,
        state=BehaviorState(recommendations=((900.0, 9),)),
    ),
    # docs example "Scaling policies": Pods 4 / 60 s and Percent 10 / 60 s, 80 replicas scaled down towards 10
    Case(
        "docs_scaling_policies_example_first_step_removes_8_of_80",
        current=80,
        desired=10,
        expected=72,
        behavior=Behavior(scale_down=DOCS_SCALE_DOWN_POLICIES),
    ),
    Case(
        "docs_scaling_policies_example_next_period_removes_8_of_72",
        current=72,
        desired=10,
        expected=64,
        behavior=Behavior(scale_down=DOCS_SCALE_DOWN_POLICIES),
        state=BehaviorState(scale_down_events=(ScaleEvent(900.0, 8),)),
    ),
    Case(
        "docs_scaling_policies_example_uses_pods_policy_at_40_or_fewer",
        current=30,
        desired=10,
        expected=26,
        behavior=Behavior(scale_down=DOCS_SCALE_DOWN_POLICIES),
    ),
    Case(
        "docs_scaling_policies_changes_are_limited_per_period_not_per_cycle",
        current=72,
        desired=10,
        expected=72,
        behavior=Behavior(scale_down=DOCS_SCALE_DOWN_POLICIES),
        state=BehaviorState(scale_down_events=(ScaleEvent(985.0, 8),)),
    ),
    # docs: selectPolicy Min picks the policy with the smallest change
    Case(
        "docs_select_policy_min_chooses_the_smaller_change",
        current=80,
        desired=10,
        expected=76,
        behavior=Behavior(
            scale_down=ScalingRules(0, DOCS_SCALE_DOWN_POLICIES.policies, select_policy="Min")
        ),
    ),
    # docs example "Disable scale down"
    Case(
        "docs_disable_scale_down_keeps_the_count",
        current=10,
        desired=1,
        expected=10,
        behavior=Behavior(scale_down=ScalingRules(300, (ScalingPolicy("Percent", 100, 15),), "Disabled")),
    ),
    # docs example "Change downscale stabilization window" to 60 s
    Case(
        "docs_shorter_downscale_stabilization_window_forgets_sooner",
        current=10,
        desired=3,
        expected=3,
        behavior=DEFAULT_BEHAVIOR.with_scale_down_stabilization(60),
        state=BehaviorState(recommendations=((900.0, 8),)),
    ),
    # docs example "Limit scale down rate": at most 10% per 60 s
    Case(
        "docs_limit_scale_down_rate_to_10_percent_per_minute",
        current=50,
        desired=1,
        expected=45,
        behavior=Behavior(scale_down=ScalingRules(0, (ScalingPolicy("Percent", 10, 60),))),
    ),
    Case(
        "scale_up_stabilization_holds_the_lowest_recent_recommendation",
        current=4,
        desired=12,
        expected=6,
        behavior=Behavior(scale_up=ScalingRules(120, (ScalingPolicy("Percent", 100, 15),))),
        state=BehaviorState(recommendations=((950.0, 6),)),
    ),
    Case("max_replicas_caps_a_scale_up", current=90, desired=150, expected=100),
    Case(
        "min_replicas_raises_a_scale_down", current=5, desired=0, expected=2, behavior=Behavior(min_replicas=2)
    ),
    Case(
        "a_current_count_above_max_goes_to_max", current=12, desired=15, expected=10,
        behavior=Behavior(max_replicas=10),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_behavior_matches_the_documented_kubernetes_semantics(case: Case) -> None:
    decision, _ = apply_behavior(
        current=case.current,
        desired=case.desired,
        behavior=case.behavior,
        state=case.state,
        now=case.now,
        reason="test",
    )
    assert decision.replicas == case.expected
    assert decision.changed_by_behavior == (case.expected != case.desired)
    if decision.changed_by_behavior:
        assert decision.limited_by
        assert decision.limited_by and "test" in decision.reason


def test_scale_down_waits_for_the_stabilization_window_then_follows() -> None:
    """Load drops at t=0: the default HPA keeps 10 pods for 300 s, then drops to the new recommendation."""
    state = BehaviorState()
    replicas = 10
    seen = []
    for step in range(8):
        now = 60.0 * step
        desired = 10 if step == 0 else 3
        decision, state = apply_behavior(
            current=replicas, desired=desired, behavior=DEFAULT_BEHAVIOR, state=state, now=now, reason="r"
        )
        state = record_scale(state=state, behavior=DEFAULT_BEHAVIOR, old=replicas, new=decision.replicas, now=now)
        replicas = decision.replicas
        seen.append(replicas)
    # the recommendation of 10 at t=0 is visible while it is newer than now - 300 s: steps 1..4
    assert seen == [10, 10, 10, 10, 10, 3, 3, 3]


def test_behavior_functions_leave_their_input_state_unchanged() -> None:
    state = BehaviorState(recommendations=((900.0, 8),))
    apply_behavior(current=10, desired=2, behavior=DEFAULT_BEHAVIOR, state=state, now=1000.0, reason="r")
    assert state.recommendations == ((900.0, 8),)


def test_recorded_scale_events_expire_after_the_longest_policy_period() -> None:
    state = record_scale(state=BehaviorState(), behavior=DEFAULT_BEHAVIOR, old=2, new=6, now=0.0)
    assert state.scale_up_events == (ScaleEvent(0.0, 4),)
    later = record_scale(state=state, behavior=DEFAULT_BEHAVIOR, old=6, new=6, now=60.0)
    assert later.scale_up_events == ()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"type": "Replicas", "value": 1, "period_seconds": 15},
        {"type": "Pods", "value": 0, "period_seconds": 15},
        {"type": "Pods", "value": 1, "period_seconds": 0},
    ],
    ids=["unknown_type", "zero_value", "zero_period"],
)
def test_invalid_scaling_policies_are_rejected(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ScalingPolicy(**kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class BoundCase:
    name: str
    current: int
    desired: int
    expected: int
    limited_by: str
    says: str  # what the reason must name
    behavior: Behavior | LegacyBehavior = DEFAULT_BEHAVIOR
    state: BehaviorState = field(default_factory=BehaviorState)


BOUND_CASES = [
    BoundCase("a_target_at_zero_is_paused", current=0, desired=5, expected=0, limited_by="ScalingDisabled",
              says="scaling is disabled", behavior=Behavior(min_replicas=1)),
    BoundCase("a_target_at_zero_is_paused_on_the_legacy_path", current=0, desired=5, expected=0,
              limited_by="ScalingDisabled", says="zero", behavior=LegacyBehavior(min_replicas=2)),
    # min raised from 1 to 10: straight to 10, not +4 pods per 15 s
    BoundCase("below_min_goes_to_min_without_rate_limits", current=1, desired=1, expected=10,
              limited_by="TooFewReplicas", says="raised to min 10 directly, without stabilization or rate limits",
              behavior=Behavior(min_replicas=10, max_replicas=20)),
    # max lowered to 10 while the scale-down window still holds a recommendation of 20
    BoundCase("above_max_goes_to_max_without_stabilization", current=20, desired=20, expected=10,
              limited_by="TooManyReplicas", says="capped at max 10 directly, without stabilization",
              behavior=Behavior(max_replicas=10), state=BehaviorState(recommendations=((990.0, 20),))),
    BoundCase("above_max_goes_to_max_without_the_scale_down_rate", current=40, desired=40, expected=10,
              limited_by="TooManyReplicas", says="capped at max 10",
              behavior=Behavior(scale_down=ScalingRules(0, (ScalingPolicy("Percent", 10, 60),)), max_replicas=10)),
    BoundCase("above_max_goes_to_max_on_the_legacy_path", current=30, desired=30, expected=10,
              limited_by="TooManyReplicas", says="capped at max 10",
              behavior=LegacyBehavior(max_replicas=10), state=BehaviorState(recommendations=((990.0, 30),))),
    # a recommendation capped by max or min says so, with the bound
    BoundCase("a_scale_up_capped_by_max_says_so", current=90, desired=150, expected=100,
              limited_by="TooManyReplicas", says="recommended 150, capped at max 100"),
    BoundCase("a_scale_down_raised_to_min_says_so", current=5, desired=0, expected=2, limited_by="TooFewReplicas",
              says="recommended 0, raised to min 2", behavior=Behavior(min_replicas=2)),
]


@pytest.mark.parametrize("case", BOUND_CASES, ids=[c.name for c in BOUND_CASES])
def test_paused_and_out_of_range_targets_follow_reconcile_autoscaler(case: BoundCase) -> None:
    """horizontal.go reconcileAutoscaler: `scale.Spec.Replicas == 0 && minReplicas != 0` disables scaling (desired 0,
    no rescale); `currentReplicas > MaxReplicas` / `< minReplicas` sets the bound without computing metrics or calling
    normalizeDesiredReplicas[WithBehaviors], so no stabilization, no rate limit and no recorded recommendation; and
    convertDesiredReplicasWithBehaviorRate / convertDesiredReplicasWithRules name TooManyReplicas / TooFewReplicas."""
    decision, state = apply_behavior(
        current=case.current, desired=case.desired, behavior=case.behavior, state=case.state, now=1000.0,
        reason="metrics",
    )
    assert (decision.replicas, decision.limited_by) == (case.expected, case.limited_by)
    assert case.says in decision.reason
    if case.current == 0 or not case.behavior.min_replicas <= case.current <= case.behavior.max_replicas:
        assert state == case.state  # nothing recorded: upstream skips the normalize step here


def test_raising_min_reaches_it_in_one_sync() -> None:
    """reconcileAutoscaler: "Current number of replicas below Spec.MinReplicas" -> desiredReplicas = minReplicas, in
    one rescale: the rate limits of convertDesiredReplicasWithBehaviorRate never see it."""
    behavior = Behavior(min_replicas=10, max_replicas=50)
    state, replicas = BehaviorState(), 1
    for step in range(3):
        now = 15.0 * step
        decision, state = apply_behavior(current=replicas, desired=1, behavior=behavior, state=state, now=now,
                                         reason="idle")
        state = record_scale(state=state, behavior=behavior, old=replicas, new=decision.replicas, now=now)
        replicas = decision.replicas
        assert replicas == 10, step


LEGACY = LegacyBehavior(min_replicas=1, max_replicas=100)

LEGACY_CASES = [
    # calculateScaleUpLimit = max(2 × current, 4): 1 -> 4 (the v2 defaults would allow 5)
    Case("legacy_scale_up_reaches_at_most_4_pods_from_1", current=1, desired=10, expected=4),
    # 3 -> 6 (the v2 defaults would allow 7)
    Case("legacy_scale_up_at_most_doubles", current=3, desired=20, expected=6),
    # no rate history: pods added 10 s ago do not lower the limit (the v2 defaults would hold at 8)
    Case("legacy_scale_up_ignores_recent_scale_events", current=8, desired=40, expected=16,
         state=BehaviorState(scale_up_events=(ScaleEvent(990.0, 4),))),
    Case("legacy_max_caps_below_the_scale_up_limit", current=8, desired=40, expected=10,
         behavior=Behavior(max_replicas=10)),
    # stabilizeRecommendation: the highest recommendation of the 300 s window, this one included
    Case("legacy_scale_down_holds_the_highest_recent_recommendation", current=10, desired=2, expected=8,
         state=BehaviorState(recommendations=((800.0, 8), (900.0, 5)))),
    # a record exactly 300 s old is not Before(cutoff): it still counts (the v2 path uses After(cutoff))
    Case("legacy_window_includes_its_start", current=10, desired=2, expected=8,
         state=BehaviorState(recommendations=((700.0, 8),))),
    # nothing bounds the stabilized value by the current count: a higher recent recommendation scales up
    Case("legacy_stabilization_can_raise_the_count", current=5, desired=6, expected=9,
         state=BehaviorState(recommendations=((900.0, 9),))),
    Case("legacy_min_raises_a_scale_down", current=5, desired=0, expected=2, behavior=Behavior(min_replicas=2)),
]


@pytest.mark.parametrize("case", LEGACY_CASES, ids=[c.name for c in LEGACY_CASES])
def test_an_hpa_without_behavior_follows_the_legacy_rules(case: Case) -> None:
    """horizontal.go normalizeDesiredReplicas (taken when hpa.Spec.Behavior == nil): stabilizeRecommendation over the
    downscale window, then convertDesiredReplicasWithRules with calculateScaleUpLimit = max(2 × current, 4)."""
    legacy = LegacyBehavior(min_replicas=case.behavior.min_replicas, max_replicas=case.behavior.max_replicas)
    decision, state = apply_behavior(
        current=case.current, desired=case.desired, behavior=legacy, state=case.state, now=case.now, reason="r"
    )
    assert decision.replicas == case.expected
    assert state.recommendations[-1] == (case.now, case.desired)
    assert decision.changed_by_behavior == (case.expected != case.desired)


def test_the_legacy_path_keeps_no_scale_events() -> None:
    """horizontal.go storeScaleEvent returns at once when behavior is nil: the legacy path has no rate policies."""
    state = record_scale(state=BehaviorState(), behavior=LEGACY, old=2, new=6, now=0.0)
    assert state == BehaviorState()
