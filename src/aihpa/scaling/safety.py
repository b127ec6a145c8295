"""The rules that keep capacity when no policy runs: a missing metric, and the steps between two forecasts.

The controller forecasts and runs the predictive policy once per model step, but syncs more often (every 15 s by
default). Between model steps only the reactive HPA may act, and only to add pods (up to the maximum): the forecast
has the final word once per step, and a scale-down between forecasts would undo it. Without a usage metric nothing
is decided at all: a missing metric never causes a scale-down.

Pure: no I/O, no clock. Each function returns a `Decision` whose `kind` says which rule chose the count.
"""

from __future__ import annotations

from aihpa.scaling.decision import Decision, DecisionKind

__all__ = ["hold_beside_hpa", "hold_without_metric", "safety_net"]


def hold_without_metric(*, current: int) -> Decision:
    """No usage metric this cycle: keep the current count."""
    return Decision(
        replicas=current,
        recommended=current,
        reason=f"metrics unavailable: holding {current} replicas (never scale down without a metric)",
        kind=DecisionKind.HOLD,
    )


def hold_beside_hpa(*, current: int) -> Decision:
    """Between model steps beside an HPA (`aihpa/with-hpa: floor`): the HPA itself reacts; aihpa moves its floor
    once a step, so it keeps the current count."""
    return Decision(
        replicas=current,
        recommended=current,
        reason="between model steps the HPA scales; aihpa sets its floor once a step",
        kind=DecisionKind.HOLD,
    )


def safety_net(*, current: int, reactive: int, max_replicas: int) -> Decision:
    """Between model steps: the reactive HPA's count `reactive` when it is above `current`, else the current count;
    never more than `max_replicas` (a count above it goes to it, the one change down this rule makes).

    A change it decides is the caller's to record for the rate limits (`record_scale`) once it is applied: the
    policies record the scale events of their own decisions, and the rate limits must see this one too.
    """
    target = min(max(reactive, current), max_replicas)
    return Decision(
        replicas=target,
        recommended=reactive,
        reason=f"reactive safety net between forecast steps: HPA wants {reactive}",
        kind=DecisionKind.SAFETY_NET if target != current else DecisionKind.HOLD,
    )
