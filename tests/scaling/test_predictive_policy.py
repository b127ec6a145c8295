"""aihpa's predictive policy: forecast peak over the lead time, reactive floor, fallback, online calibration."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aihpa.scaling import Calibration, CalibrationState, Observation, PredictivePolicy, PredictiveState, Scoring

QUANTILES = (0.5, 0.9, 0.99)
# no warm-up bound: these tests are about what the forecast and the calibration ask for (the bound has its own)
POLICY = PredictivePolicy(target_utilization=0.5, min_history=10, warmup_margin=None)

# calibration windows keep their scores in half precision: a headroom read off them is within 0.05% of the score
HALF = 1e-3


def _obs(*, usage: float = 1.0, ready: int = 4, current: int = 4, history: int = 100) -> Observation:
    return Observation(usage=usage, pods_with_metrics=ready, current_replicas=current, now=6000.0, history_len=history)


def _forecast(p50: list[float], p99: list[float] | None = None) -> np.ndarray:
    p99 = p99 or p50
    return np.array([[a, (a + b) / 2, b] for a, b in zip(p50, p99, strict=True)], dtype=np.float32)


def test_replicas_cover_the_peak_of_the_top_quantile_over_the_lead_time_before_calibration() -> None:
    forecast = _forecast([1.0, 2.0, 9.0], p99=[2.0, 3.1, 50.0])  # step 3 is beyond the 2-step lead time
    decision, _ = POLICY.decide(_obs(usage=2.0), PredictiveState(), forecast=forecast, quantiles=QUANTILES)
    assert decision.recommended == math.ceil(3.1 / 0.5)
    assert "forecast peak" in decision.reason


def test_the_reactive_hpa_is_a_floor_under_the_forecast() -> None:
    # 4 pods at 100% against a 50% target: the HPA wants 8, the forecast only 2
    forecast = _forecast([0.5, 0.5, 0.5])
    decision, _ = POLICY.decide(_obs(usage=4.0), PredictiveState(), forecast=forecast, quantiles=QUANTILES)
    assert decision.recommended == 8
    assert "reactive floor" in decision.reason


@pytest.mark.parametrize(
    ("forecast", "history", "why"),
    [
        (None, 100, "no forecast"),
        (_forecast([1.0, 1.0, 1.0]), 3, "history too short"),
        (_forecast([1.0, math.nan, 1.0]), 100, "not finite"),
        (_forecast([1.0, math.inf, 1.0]), 100, "not finite"),
    ],
    ids=["no_forecast", "short_history", "nan_forecast", "infinite_forecast"],
)
def test_falls_back_to_the_reactive_hpa_and_says_why(forecast: np.ndarray | None, history: int, why: str) -> None:
    obs = _obs(usage=3.0, history=history)
    decision, _ = POLICY.decide(obs, PredictiveState(), forecast=forecast, quantiles=QUANTILES)
    reactive, _ = POLICY.reactive.recommend(obs)
    assert decision.recommended == reactive
    assert "fallback" in decision.reason and why in decision.reason


def test_behavior_still_applies_to_predictive_decisions() -> None:
    # default scale-up allows max(+100%, +4 pods) per 15 s from 2 pods: at most 6
    forecast = _forecast([20.0, 20.0, 20.0])
    obs = _obs(usage=1.0, ready=2, current=2)
    decision, _ = POLICY.decide(obs, PredictiveState(), forecast=forecast, quantiles=QUANTILES)
    assert decision.recommended == 40
    assert decision.replicas == 6
    assert decision.limited_by == "ScaleUpLimit"


@pytest.mark.parametrize(("risk", "expected"), [(0.1, 9.0), (0.5, 5.0)], ids=["risk_10pct", "risk_50pct"])
def test_conformal_headroom_is_the_quantile_of_recorded_ratios(risk: float, expected: float) -> None:
    cal = Calibration(risk=risk, min_samples=9, window=100, adapt_rate=0.0, offset=0.0)
    state = CalibrationState()
    for ratio in range(1, 10):  # ratios 1..9 (no offset)
        state = cal.update(state, realized=float(ratio), forecast=1.0, censored=False, saturated=False)
    # the ceil((n + 1)(1 - risk))-th smallest of n = 9: the 9th for 10%, the 5th for 50%
    assert cal.headroom(state) == pytest.approx(expected, rel=HALF)


def test_calibration_needs_enough_ratios_before_it_answers() -> None:
    cal = Calibration(min_samples=5)
    state = cal.update(CalibrationState(), realized=2.0, forecast=1.0, censored=False, saturated=False)
    assert cal.headroom(state) is None


def test_saturation_raises_the_headroom_and_quiet_steps_lower_it() -> None:
    cal = Calibration(risk=0.05, adapt_rate=0.01, min_samples=1)
    hit = cal.update(CalibrationState(), realized=1.0, forecast=1.0, censored=False, saturated=True)
    quiet = cal.update(CalibrationState(), realized=1.0, forecast=1.0, censored=False, saturated=False)
    hit_headroom, quiet_headroom = cal.headroom(hit), cal.headroom(quiet)
    assert hit_headroom is not None and quiet_headroom is not None
    assert quiet_headroom < 1.0 < hit_headroom


def test_a_saturated_cold_start_does_not_raise_the_headroom() -> None:
    # one pod meets a load of 6 cores: saturated while the forecast is not trusted yet (reactive fallback), then
    # while the calibration has too few scores (top quantile); those steps say nothing about the headroom
    policy = PredictivePolicy(
        calibration=Calibration(min_samples=20), target_utilization=1.0, min_history=5,
        scorings=(Scoring(base="last", mode="ratio", hold=5),),
    )
    state, replicas, ready = PredictiveState(), 1, 1
    corrections = []
    for t in range(1, 60):
        usage = min(6.0, float(ready))
        obs = Observation(usage=usage, pods_with_metrics=ready, current_replicas=replicas, now=60.0 * t, history_len=t)
        decision, state = policy.decide(obs, state, forecast=np.full((3, 3), 6.0, np.float32), quantiles=QUANTILES)
        ready, replicas = min(replicas, decision.replicas), decision.replicas
        corrections.append(state.calibrations[0].correction)
    assert corrections[3] == 0.0  # saturated steps of the fallback
    assert corrections[-1] < 0.0  # quiet calibrated steps since then lowered it


def test_forecasts_made_after_a_saturated_step_get_their_own_headroom() -> None:
    cal = Calibration(min_samples=2, surge_min_samples=2, adapt_rate=0.0, risk=0.2)
    state = CalibrationState()
    for _ in range(3):
        state = cal.update(state, realized=1.0, forecast=1.0, censored=False, saturated=False)
        state = cal.update(state, realized=4.0, forecast=1.0, censored=False, saturated=False, after_saturation=True)
    assert cal.headroom(state) == pytest.approx(1.0)
    assert cal.headroom(state, after_saturation=True) == pytest.approx(4.0, rel=HALF)


def test_after_a_saturated_step_the_ordinary_headroom_stands_in_until_enough_surges_are_seen() -> None:
    cal = Calibration(min_samples=1, surge_min_samples=5, adapt_rate=0.0)
    state = cal.update(CalibrationState(), realized=2.0, forecast=1.0, censored=False, saturated=False)
    state = cal.update(state, realized=9.0, forecast=1.0, censored=False, saturated=False, after_saturation=True)
    assert cal.headroom(state, after_saturation=True) == pytest.approx(2.0, rel=HALF)


def test_scores_are_offset_so_a_zero_forecast_stays_bounded() -> None:
    cal = Calibration(min_samples=1, adapt_rate=0.0, offset=1.0)
    state = cal.update(CalibrationState(), realized=3.0, forecast=0.0, censored=False, saturated=False)
    assert cal.headroom(state) == pytest.approx(4.0, rel=HALF)
    assert cal.provision(state, peak=0.0) == pytest.approx(3.0, rel=HALF)


def test_calibration_window_keeps_only_the_most_recent_ratios() -> None:
    cal = Calibration(window=3, min_samples=1, adapt_rate=0.0, risk=0.01, offset=0.0)
    state = CalibrationState()
    for ratio in (100.0, 1.0, 1.0, 1.0):
        state = cal.update(state, realized=ratio, forecast=1.0, censored=False, saturated=False)
    assert cal.headroom(state) == pytest.approx(1.0)


def _saturation_rate(risk: float, *, bias: float, steps: int = 3000) -> float:
    """Closed loop: demand is noisy, the forecast is the true mean times `bias`; count saturated steps."""
    rng = np.random.default_rng(7)
    policy = PredictivePolicy(
        calibration=Calibration(risk=risk, window=500, min_samples=30),
        target_utilization=1.0,
        min_history=1,
    )
    state = PredictiveState()
    mean = 20.0
    replicas = ready = 20
    usage = mean
    saturated = 0
    for t in range(1, steps):
        obs = Observation(usage=usage, pods_with_metrics=ready, current_replicas=replicas, now=60.0 * t, history_len=t)
        forecast = np.full((3, 3), mean * bias, dtype=np.float32)
        decision, state = policy.decide(obs, state, forecast=forecast, quantiles=QUANTILES)
        ready = min(replicas, decision.replicas)
        replicas = decision.replicas
        demand = mean * float(rng.lognormal(0.0, 0.15))
        usage = min(demand, ready)
        if t > steps // 3:
            saturated += demand > ready
    return saturated / (steps - steps // 3 - 1)


@pytest.mark.parametrize("bias", [0.5, 1.0, 1.5], ids=["forecast_too_low", "forecast_unbiased", "forecast_too_high"])
def test_online_calibration_brings_saturation_near_the_chosen_risk(bias: float) -> None:
    rate = _saturation_rate(0.05, bias=bias)
    assert 0.01 <= rate <= 0.1


def test_a_lower_risk_buys_less_saturation() -> None:
    assert _saturation_rate(0.01, bias=1.0) < _saturation_rate(0.1, bias=1.0)


def test_spread_mode_scales_the_forecast_spread_conformally() -> None:
    cal = Calibration(mode="spread", risk=0.5, min_samples=3, adapt_rate=0.0)
    state = CalibrationState()
    # outcomes 0.5, 1 and 2 spreads above the centre
    for realized in (6.0, 7.0, 9.0):
        state = cal.update(state, realized=realized, forecast=5.0, spread=2.0, censored=False, saturated=False)
    assert cal.headroom(state) == pytest.approx(1.0)
    # a wider spread now means more capacity: centre 5 + 1 × 4
    assert cal.provision(state, peak=5.0, spread=4.0) == pytest.approx(9.0)


def test_spread_mode_policy_reads_the_median_and_the_top_quantile() -> None:
    policy = PredictivePolicy(
        calibration=Calibration(mode="spread", min_samples=1, adapt_rate=0.0),
        target_utilization=1.0,
        min_history=1,
        scorings=(Scoring(),),
    )
    state = PredictiveState()
    forecast = _forecast([4.0, 4.0, 4.0], p99=[6.0, 8.0, 8.0])
    decisions = []
    for t in range(1, 6):
        obs = Observation(usage=4.0, pods_with_metrics=10, current_replicas=10, now=60.0 * t, history_len=t)
        decision, state = policy.decide(obs, state, forecast=forecast, quantiles=QUANTILES)
        decisions.append(decision)
    # realized peaks of 4 equal the median: the calibrated multiple of the spread is 0, capacity the median
    assert decisions[-1].recommended == 4
    assert "calibrated" in decisions[-1].reason
