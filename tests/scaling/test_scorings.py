"""Scorings calibrated side by side: the policy uses the one whose calibrated capacity has cost least."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.scaling import DEFAULT_BEHAVIOR, Calibration, Observation, PredictivePolicy, PredictiveState, Scoring

from .closed_loop import run_loop

QUANTILES = (0.5, 0.9, 0.99)
QUANTILE = Scoring()
LAST = Scoring(base="last", offset_share=1.0, window=2000)


def _closed_loop(
    scorings: tuple[Scoring, ...], *, demand: np.ndarray, forecast_noise: float, seed: int = 3
) -> tuple[float, float, PredictiveState]:
    """Replay `demand` with a forecaster whose quantiles are the truth times lognormal noise (a poor model when the
    noise is large). Returns (saturated share, mean pods) over the second half, and the final state."""
    rng = np.random.default_rng(seed)
    policy = PredictivePolicy(
        calibration=Calibration(risk=0.02, offset=1.0),
        target_utilization=1.0,
        scorings=scorings,
        behavior=DEFAULT_BEHAVIOR.with_scale_down_stabilization(0),
        select_after=300,
        memory=300.0,
    )
    steps = demand.shape[0]

    def forecast_at(t: int, usage: float) -> np.ndarray:
        # the next three steps' demand, quantiles 1, 1.2 and 1.5 times it, all times one noise draw
        truth = demand[np.minimum(np.arange(t, t + 3), steps - 1)]
        noise = rng.lognormal(0.0, forecast_noise)
        return (truth[:, None] * np.array([1.0, 1.2, 1.5])[None, :] * noise).astype(np.float32)

    return run_loop(policy, demand, forecast_at, quantiles=QUANTILES, replicas=10)


def _steps(steps: int, seed: int = 5) -> np.ndarray:
    """Demand that moves in unpredictable steps of a few cores between plateaus, with a little noise."""
    rng = np.random.default_rng(seed)
    level, out = 6.0, np.empty(steps)
    for t in range(steps):
        if rng.random() < 0.02:
            level = float(rng.choice([3.0, 6.0, 9.0, 12.0]))
        out[t] = level + rng.normal(0.0, 0.1)
    return np.maximum(out, 0.0)


def test_a_noisy_model_on_step_demand_loses_to_the_last_value_scored_additively() -> None:
    demand = _steps(2400)
    alone_sat, alone_pods, _ = _closed_loop((QUANTILE,), demand=demand, forecast_noise=0.4)
    both_sat, both_pods, state = _closed_loop((QUANTILE, LAST), demand=demand, forecast_noise=0.4)
    assert state.choice == 1
    # both hold the risk (2%); the noisy model's headroom had to cover its own noise as well
    assert alone_sat <= 0.03 and both_sat <= 0.03
    assert both_pods < 0.9 * alone_pods


def test_a_sharp_model_keeps_its_own_scoring() -> None:
    demand = _steps(2400)
    _, _, state = _closed_loop((QUANTILE, LAST), demand=demand, forecast_noise=0.0)
    assert state.choice == 0
    assert len(state.costs) == 2 and state.costs[0] < state.costs[1]
    assert all(rate < 0.04 for rate in state.shortfall_rates)


def test_the_reason_names_the_scoring_in_use() -> None:
    policy = PredictivePolicy(calibration=Calibration(min_samples=5), target_utilization=1.0, scorings=(QUANTILE, LAST))
    state = PredictiveState()
    decision = None
    for t in range(1, 30):
        obs = Observation(usage=4.0, pods_with_metrics=5, current_replicas=5, now=60.0 * t, history_len=t)
        forecast = np.full((3, 3), 4.0, dtype=np.float32)
        decision, state = policy.decide(obs, state, forecast=forecast, quantiles=QUANTILES)
    assert decision is not None and "on the quantile forecast" in decision.reason


def test_scorings_are_validated() -> None:
    with pytest.raises(ValueError, match="scoring base"):
        Scoring(base="mean")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="offset_share"):
        Scoring(offset_share=-1.0)
    with pytest.raises(ValueError, match="at least one scoring"):
        PredictivePolicy(scorings=())
    with pytest.raises(ValueError, match="select_margin"):
        PredictivePolicy(select_margin=1.0)


def test_a_state_made_under_other_scorings_starts_afresh() -> None:
    one = PredictivePolicy(calibration=Calibration(min_samples=5), target_utilization=1.0, scorings=(QUANTILE,))
    two = PredictivePolicy(calibration=Calibration(min_samples=5), target_utilization=1.0, scorings=(QUANTILE, LAST))
    state = PredictiveState()
    forecast = np.full((3, 3), 4.0, dtype=np.float32)
    for t in range(1, 10):
        obs = Observation(usage=4.0, pods_with_metrics=5, current_replicas=5, now=60.0 * t, history_len=t)
        _, state = one.decide(obs, state, forecast=forecast, quantiles=QUANTILES)
    obs = Observation(usage=4.0, pods_with_metrics=5, current_replicas=5, now=600.0, history_len=10)
    decision, state = two.decide(obs, state, forecast=forecast, quantiles=QUANTILES)
    assert decision.replicas >= 4
    assert len(state.calibrations) == 2 and len(state.pending) == 1
