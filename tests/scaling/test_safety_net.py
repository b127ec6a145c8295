"""Between model steps only the reactive HPA may act, and only to add pods; without a metric nothing changes.

Both are pure rules in `aihpa.scaling.safety`: current count and the HPA's count in, a Decision with its kind out.
"""

from __future__ import annotations

import pytest

from aihpa.scaling import DecisionKind, hold_beside_hpa, hold_without_metric, safety_net

# (current, the reactive HPA's count, max) -> (replicas, kind)
CASES = {
    "the_hpa_wants_more": ((4, 7, 10), (7, DecisionKind.SAFETY_NET)),
    "the_hpa_wants_fewer": ((4, 2, 10), (4, DecisionKind.HOLD)),
    "the_hpa_agrees": ((4, 4, 10), (4, DecisionKind.HOLD)),
    "the_hpa_wants_more_than_max": ((4, 30, 10), (10, DecisionKind.SAFETY_NET)),
    "already_above_max": ((12, 3, 10), (10, DecisionKind.SAFETY_NET)),
}


@pytest.mark.parametrize(("given", "expected"), CASES.values(), ids=list(CASES))
def test_the_safety_net_only_adds_capacity_up_to_max(
    given: tuple[int, int, int], expected: tuple[int, DecisionKind]
) -> None:
    current, reactive, max_replicas = given
    decision = safety_net(current=current, reactive=reactive, max_replicas=max_replicas)
    assert (decision.replicas, decision.kind) == expected
    assert decision.recommended == reactive
    assert f"HPA wants {reactive}" in decision.reason


def test_without_a_metric_the_count_is_held_and_the_reason_says_why() -> None:
    decision = hold_without_metric(current=6)
    assert (decision.replicas, decision.recommended, decision.kind) == (6, 6, DecisionKind.HOLD)
    assert "metrics unavailable" in decision.reason


def test_beside_an_hpa_the_count_is_held_between_model_steps() -> None:
    decision = hold_beside_hpa(current=7)
    assert (decision.replicas, decision.recommended, decision.kind) == (7, 7, DecisionKind.HOLD)
    assert "the HPA scales" in decision.reason
