"""Every Decision says which rule chose its count (`Decision.kind`), set by the rule itself, whatever behavior or the
hysteresis then did to the count; nobody has to read the reason's wording to know."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aihpa.scaling import (
    Behavior,
    BehaviorState,
    DecisionKind,
    Observation,
    PredictivePolicy,
    PredictiveState,
    ReactivePolicy,
    ReactiveState,
    apply_behavior,
)

QUANTILES = (0.5, 0.9, 0.99)
POLICY = PredictivePolicy(target_utilization=0.5, min_history=10, hysteresis=0.0)


def _obs(*, usage: float, current: int = 4, history: int = 100) -> Observation:
    return Observation(usage=usage, pods_with_metrics=current, current_replicas=current, now=6000.0,
                       history_len=history)


def _flat(cores: float) -> np.ndarray:
    return np.full((3, len(QUANTILES)), cores, dtype=np.float32)


# scenario: (usage in cores over 4 pods of 1 core, forecast, history length) -> the kind the policy must set
PREDICTIVE_CASES = {
    "forecast_above_the_hpa": ((1.0, _flat(6.0), 100), DecisionKind.FORECAST),
    "hpa_above_the_forecast": ((4.0, _flat(0.5), 100), DecisionKind.REACTIVE_FLOOR),
    "no_forecast": ((3.0, None, 100), DecisionKind.FALLBACK),
    "history_too_short": ((3.0, _flat(6.0), 3), DecisionKind.FALLBACK),
    "forecast_not_finite": ((3.0, _flat(math.nan), 100), DecisionKind.FALLBACK),
    "forecast_of_the_wrong_shape": ((3.0, np.ones(3, dtype=np.float32), 100), DecisionKind.FALLBACK),
}


@pytest.mark.parametrize(("scenario", "kind"), PREDICTIVE_CASES.values(), ids=list(PREDICTIVE_CASES))
def test_the_predictive_policy_sets_the_kind_of_each_path(
    scenario: tuple[float, np.ndarray | None, int], kind: DecisionKind
) -> None:
    usage, forecast, history = scenario
    decision, _ = POLICY.decide(_obs(usage=usage, history=history), PredictiveState(), forecast=forecast,
                                quantiles=QUANTILES)
    assert decision.kind is kind


def test_the_reactive_policy_says_reactive() -> None:
    decision, _ = ReactivePolicy(target_utilization=0.5).decide(_obs(usage=4.0), ReactiveState())
    assert decision.kind is DecisionKind.REACTIVE and decision.recommended == 8


def test_the_kind_survives_behavior_and_the_hysteresis() -> None:
    capped = PredictivePolicy(target_utilization=0.5, min_history=10, behavior=Behavior(max_replicas=5),
                              warmup_margin=None)
    decision, _ = capped.decide(_obs(usage=1.0), PredictiveState(), forecast=_flat(6.0), quantiles=QUANTILES)
    assert decision.replicas == 5 and decision.limited_by == "TooManyReplicas"
    assert decision.kind is DecisionKind.FORECAST
    # 4.2 cores at 50% of one core per pod: 9 pods wanted of 8, within a 20% band: the count is kept
    held = PredictivePolicy(target_utilization=0.5, min_history=10, hysteresis=0.2, warmup_margin=None)
    decision, _ = held.decide(_obs(usage=1.0, current=8), PredictiveState(), forecast=_flat(4.2), quantiles=QUANTILES)
    assert decision.replicas == 8 and "kept" in decision.reason
    assert decision.kind is DecisionKind.FORECAST


def test_apply_behavior_carries_the_kind_it_is_given_through_each_of_its_paths() -> None:
    for current in (0, 3, 50):  # paused at zero, within the bounds, above max
        decision, _ = apply_behavior(current=current, desired=4, behavior=Behavior(max_replicas=10),
                                     state=BehaviorState(), now=0.0, reason="test", kind=DecisionKind.FALLBACK)
        assert decision.kind is DecisionKind.FALLBACK
