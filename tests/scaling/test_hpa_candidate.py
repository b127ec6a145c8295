"""The reactive HPA as a candidate beside the forecast-based scorings, the choice between them, and hysteresis against
churn."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

from aihpa.scaling import (
    DEFAULT_BEHAVIOR,
    DEFAULT_SCORINGS,
    HPA_SCORING,
    Calibration,
    Observation,
    PredictivePolicy,
    PredictiveState,
    Scoring,
)

QUANTILES = (0.5, 0.9, 0.99)


def _policy(**kw: object) -> PredictivePolicy:
    settings: dict[str, object] = {
        "calibration": Calibration(risk=0.02, offset=1.0),
        "target_utilization": 1.0,
        "behavior": DEFAULT_BEHAVIOR.with_scale_down_stabilization(0),
    }
    settings.update(kw)
    return PredictivePolicy(**settings)  # type: ignore[arg-type]


def _loop(
    policy: PredictivePolicy, demand: np.ndarray, forecast_at: Callable[[int, float], np.ndarray]
) -> tuple[float, float, int, PredictiveState, str]:
    """The protocol's pod model; returns (saturated share, mean pods, scale changes) over the second half, the final
    state and the last reason."""
    state = PredictiveState()
    replicas = ready = 20
    usage = float(demand[0])
    saturated = pods = changes = 0
    half = demand.shape[0] // 2
    reason = ""
    for t in range(1, demand.shape[0]):
        obs = Observation(usage=usage, pods_with_metrics=ready, current_replicas=replicas, now=60.0 * t, history_len=t)
        decision, state = policy.decide(obs, state, forecast=forecast_at(t, usage), quantiles=QUANTILES)
        reason = decision.reason
        if t >= half:
            changes += decision.replicas != replicas
        ready = min(replicas, decision.replicas)
        replicas = decision.replicas
        usage = min(float(demand[t]), ready)
        if t >= half:
            saturated += demand[t] > ready
            pods += replicas
    n = demand.shape[0] - half
    return saturated / n, pods / n, changes, state, reason


def _noisy_walk(steps: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    level = 20.0 + np.cumsum(rng.normal(0.0, 0.15, steps))
    return np.clip(level + rng.normal(0.0, 0.8, steps), 2.0, None)


def test_a_held_last_usage_scores_the_peak_of_the_last_samples() -> None:
    policy = _policy(scorings=(Scoring(base="last", mode="ratio", hold=5),))
    state = PredictiveState()
    usages = [3.0, 9.0, 4.0, 4.0, 4.0, 4.0, 5.0]
    bases = []
    for t, usage in enumerate(usages, start=1):
        obs = Observation(usage=usage, pods_with_metrics=20, current_replicas=20, now=60.0 * t, history_len=t)
        _, state = policy.decide(obs, state, forecast=np.full((2, 3), usage, np.float32), quantiles=QUANTILES)
        bases.append(state.pending[-1].peaks[0].base)
    # 9 cores stay the base for five samples, then leave
    assert bases == [3.0, 9.0, 9.0, 9.0, 9.0, 9.0, 5.0]


def test_a_useless_forecast_degrades_to_the_hpa_at_no_extra_cost() -> None:
    demand = _noisy_walk(4000, seed=3)
    rng = np.random.default_rng(7)

    def misleading(t: int, usage: float) -> np.ndarray:
        # quantiles that say nothing about the next steps: the usage times a random factor
        return np.full((2, 3), usage * rng.uniform(0.3, 3.0), dtype=np.float32)

    fast = {"select_after": 300, "memory": 300.0}
    sat_all, pods_all, _, state, _ = _loop(_policy(**fast), demand, misleading)
    sat_hpa, pods_hpa, _, _, _ = _loop(_policy(scorings=(HPA_SCORING,), **fast), demand, misleading)
    assert DEFAULT_SCORINGS[state.choice].label in ("hpa", "last-usage")  # never the model's forecast
    assert sat_all <= 0.04 and sat_hpa <= 0.04
    assert pods_all <= 1.03 * pods_hpa


def test_hysteresis_cuts_scale_changes_and_the_calibration_pays_for_it() -> None:
    demand = _noisy_walk(3000, seed=11)

    def flat(t: int, usage: float) -> np.ndarray:
        return np.full((2, 3), usage, dtype=np.float32)

    held = (Scoring(base="last", mode="ratio", hold=5),)  # a calibrated scoring (the HPA candidate has its own)
    sat_0, pods_0, changes_0, _, _ = _loop(_policy(scorings=held, hysteresis=0.0), demand, flat)
    sat_h, pods_h, changes_h, _, _ = _loop(_policy(scorings=held, hysteresis=0.1), demand, flat)
    assert changes_h < 0.5 * changes_0
    # both hold the risk (2%) within the slack of online learning, and holding costs little capacity
    assert sat_0 <= 0.04 and sat_h <= 0.04
    assert pods_h <= 1.1 * pods_0


def test_a_scoring_with_its_own_hysteresis_is_held_by_it_not_by_the_policys() -> None:
    demand = _noisy_walk(3000, seed=11)

    def flat(t: int, usage: float) -> np.ndarray:
        return np.full((2, 3), usage, dtype=np.float32)

    def held(hysteresis: float | None) -> tuple[Scoring, ...]:
        return (Scoring(base="last", mode="ratio", hold=5, hysteresis=hysteresis),)

    runs = {
        (policy_h, own): _loop(_policy(scorings=held(own), hysteresis=policy_h), demand, flat)
        for policy_h, own in ((0.0, None), (0.1, None), (0.1, 0.0), (0.0, 0.1))
    }
    # the scoring's own band wins over the policy's, whichever way round: same decisions as the policy's own band
    assert runs[(0.1, 0.0)][:3] == runs[(0.0, None)][:3]
    assert runs[(0.0, 0.1)][:3] == runs[(0.1, None)][:3]
    assert runs[(0.0, 0.1)][2] < 0.5 * runs[(0.1, 0.0)][2]
    with pytest.raises(ValueError, match="hysteresis"):
        Scoring(hysteresis=1.0)


@pytest.mark.parametrize(("per_pod", "expected"), [(2.0, 20), (1.0, 23)])
def test_hysteresis_never_holds_a_saturated_step(per_pod: float, expected: int) -> None:
    # 20 cores on 20 pods at a 90% target: the reactive HPA wants 23, within 20% of 20. Pods that may use 2 cores
    # each are not saturated: held at 20. Pods capped at 1 core each are: demand is cut off, so 23 now.
    policy = _policy(target_utilization=0.9, hysteresis=0.2, min_history=10_000)
    obs = Observation(
        usage=20.0, pods_with_metrics=20, current_replicas=20, now=60.0, history_len=1, capacity_per_pod=per_pod
    )
    decision, _ = policy.decide(obs, PredictiveState(), forecast=None, quantiles=QUANTILES)
    assert decision.replicas == expected
    if expected == 20:
        assert "within 20% of the current 20: kept" in decision.reason


def test_the_reason_names_the_candidate_in_use_and_why() -> None:
    demand = _noisy_walk(1200, seed=5)

    def flat(t: int, usage: float) -> np.ndarray:
        return np.full((2, 3), usage, dtype=np.float32)

    *_, state, reason = _loop(_policy(select_after=200, memory=200.0, hysteresis=0.0), demand, flat)
    in_use = DEFAULT_SCORINGS[state.choice].label
    assert f"{in_use} is the cheapest candidate within 1.5x the risk" in reason
    for scoring in DEFAULT_SCORINGS:
        assert f"{scoring.label} " in reason and "short" in reason


def test_hysteresis_is_validated() -> None:
    with pytest.raises(ValueError, match="hysteresis"):
        _policy(hysteresis=1.0)
    with pytest.raises(ValueError, match="hold"):
        Scoring(hold=0)


def _compared(policy: PredictivePolicy, change_rates: tuple[float, ...]) -> int:
    """The candidate chosen after one more outcome, when the forecast (1) is half the HPA candidate's (0) cost and both
    hold the risk, given how often each would change its count."""
    state = PredictiveState(
        costs=(10.0, 5.0), shortfall_rates=(0.0, 0.0), compared=policy.select_after, choice=0,
        change_rates=change_rates,
    )
    return policy._compare(state, (10.0, 5.0), (False, False)).choice


def test_a_cheaper_candidate_that_would_scale_far_more_often_than_the_hpa_is_not_used() -> None:
    policy = _policy(scorings=(HPA_SCORING, Scoring(name="forecast")), select_after=10)
    assert _compared(policy, (0.02, 0.029)) == 1  # 1.45x as many changes: cheaper, used
    assert _compared(policy, (0.02, 0.031)) == 0  # 1.55x: kept on the HPA
    assert _compared(replace(policy, select_changes=None), (0.02, 0.031)) == 1
    # the counts it is judged on are held as the policy would hold them, so a candidate's hysteresis counts
    demand = _noisy_walk(600, seed=2)
    flat = lambda t, u: np.full((2, 3), u, np.float32)  # noqa: E731
    *_, state, reason = _loop(_policy(select_after=200, memory=200.0), demand, flat)
    assert len(state.held) == len(state.change_rates) == len(DEFAULT_SCORINGS)
    assert "changing at most 1.5x as often as hpa" in reason and "changed" in reason


def test_the_hpa_candidate_acts_at_the_highest_target_that_held_the_risk() -> None:
    demand = _noisy_walk(1500, seed=4)
    policy = _policy(scorings=(HPA_SCORING,), select_after=10_000)
    sat, _, _, state, reason = _loop(policy, demand, lambda t, u: np.full((2, 3), u, np.float32))
    grid = policy.grid
    assert grid is not None
    index = grid.leader(state.grid, policy.risk)
    assert index is not None and reason.startswith(f"hpa: the HPA at a target of {grid.targets[index]:.0%}")
    # every higher target's pods fell short more often than the risk allows; this one's did not
    rates = (state.grid.shortfalls + 1) / (state.grid.outcomes + 1)
    assert rates[index] <= policy.risk and np.all(rates[index + 1 :] > policy.risk)
    assert sat <= 2 * policy.risk

