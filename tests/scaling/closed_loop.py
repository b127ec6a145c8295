"""A closed loop for policy tests: the protocol's pod model (new pods ready one step later, scale-down immediate)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from aihpa.scaling import Observation, PredictivePolicy, PredictiveState


def run_loop(
    policy: PredictivePolicy,
    demand: np.ndarray,
    forecast_at: Callable[[int, float], np.ndarray],
    *,
    quantiles: Sequence[float],
    replicas: int,
) -> tuple[float, float, PredictiveState]:
    """Replay `demand`; `forecast_at(t, usage)` gives the forecast at step t. Returns (saturated share, mean pods)
    over the second half, and the final state."""
    state = PredictiveState()
    steps = demand.shape[0]
    ready = replicas
    usage = float(demand[0])
    saturated = pods = 0
    half = steps // 2
    for t in range(1, steps):
        obs = Observation(usage=usage, pods_with_metrics=ready, current_replicas=replicas, now=60.0 * t, history_len=t)
        decision, state = policy.decide(obs, state, forecast=forecast_at(t, usage), quantiles=quantiles)
        ready = min(replicas, decision.replicas)  # scale-down is immediate, new pods are ready next step
        replicas = decision.replicas
        usage = min(float(demand[t]), ready)
        if t >= half:
            saturated += demand[t] > ready
            pods += replicas
    return saturated / (steps - half), pods / (steps - half), state
