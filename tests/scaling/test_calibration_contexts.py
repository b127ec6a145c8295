"""Context-aware calibration: cycle detection, Mondrian contexts with back-off, and what they buy in a closed loop."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.scaling import Calibration, CalibrationState, Observation, PredictivePolicy, PredictiveState, Scoring
from aihpa.scaling.calibration import NO_CONTEXT

from .closed_loop import run_loop

QUANTILES = (0.5, 0.9, 0.99)

# calibration windows keep their scores in half precision: a headroom read off them is within 0.05% of the score
HALF = 1e-3


def _feed(cal: Calibration, ratios: np.ndarray, *, start_step: int = 0) -> CalibrationState:
    """Record ratio scores (realized / forecast with forecast 1) made at consecutive control steps."""
    state = CalibrationState()
    for i, ratio in enumerate(ratios):
        step = start_step + i
        context = cal.context(state, step=step, level=None)
        state = cal.update(
            state, realized=float(ratio), forecast=1.0, censored=False, saturated=False, context=context, step=step
        )
    return state


def _bursty_ratios(steps: int, *, period: int, phase: int, seed: int = 3) -> np.ndarray:
    """Noise around 1, and a burst (ratio 4) on one phase of a cycle in one cycle out of three."""
    rng = np.random.default_rng(seed)
    ratios = rng.lognormal(0.0, 0.05, size=steps)
    for t in range(steps):
        if t % period == phase and rng.random() < 1 / 3:
            ratios[t] = 4.0
    return ratios


def test_the_cycle_detector_finds_bursts_that_land_on_one_phase_of_a_30_step_cycle() -> None:
    cal = Calibration(risk=0.01, offset=0.0, adapt_rate=0.0)
    state = _feed(cal, _bursty_ratios(6000, period=30, phase=2))
    assert state.period in (30, 60, 120)  # the cycle or a multiple of it
    hot = np.flatnonzero(state.hot)
    assert set(hot % 30) == {2}
    assert cal.context(state, step=32, level=None)[0] == 1
    assert cal.context(state, step=33, level=None)[0] == 0


def test_no_cycle_is_claimed_for_bursts_at_random_times() -> None:
    rng = np.random.default_rng(5)
    ratios = rng.lognormal(0.0, 0.05, size=6000)
    ratios[rng.random(6000) < 0.02] = 4.0
    cal = Calibration(risk=0.01, offset=0.0, adapt_rate=0.0)
    state = _feed(cal, ratios)
    assert state.period == 0
    assert cal.context(state, step=2, level=None)[0] == 0


def test_a_hot_phase_gets_the_burst_headroom_and_the_other_phases_the_ordinary_one() -> None:
    cal = Calibration(risk=0.01, offset=0.0, adapt_rate=0.0, window=4000)
    state = _feed(cal, _bursty_ratios(6000, period=30, phase=2))
    hot_step = 6000 + (2 - 6000 % 30) % 30
    hot = cal.headroom(state, context=cal.context(state, step=hot_step, level=None))
    cold = cal.headroom(state, context=cal.context(state, step=hot_step + 10, level=None))
    whole = cal.headroom(state)
    assert hot is not None and cold is not None and whole is not None
    assert hot == pytest.approx(4.0, rel=HALF)
    assert cold < 1.3 < whole


def test_a_context_with_too_few_scores_backs_off_to_the_coarser_one() -> None:
    cal = Calibration(risk=0.1, offset=0.0, adapt_rate=0.0, min_samples=5, periods=())
    assert cal.context_min_samples == 9  # a finite conformal quantile at 10% needs 9 scores
    state = CalibrationState()
    # 20 quiet scores of 1.0 at a low level, then 3 scores of 3.0 at a high level
    for _ in range(20):
        state = cal.update(state, realized=1.0, forecast=1.0, censored=False, saturated=False, context=(0, 2, 0, 0, 0))
    for _ in range(3):
        state = cal.update(state, realized=3.0, forecast=1.0, censored=False, saturated=False, context=(0, 2, 1, 0, 0))
    # the high-level context has 3 scores: its parent (hot 0, quiet 2) answers, with all 23 scores
    assert cal.headroom(state, context=(0, 2, 1, 0, 0)) == pytest.approx(3.0, rel=HALF)
    for _ in range(10):
        state = cal.update(state, realized=3.0, forecast=1.0, censored=False, saturated=False, context=(0, 2, 1, 0, 0))
    assert cal.headroom(state, context=(0, 2, 1, 0, 0)) == pytest.approx(3.0, rel=HALF)
    # the low-level context has its own 20 scores now
    assert cal.headroom(state, context=(0, 2, 0, 0, 0)) == pytest.approx(1.0)


def test_recency_counts_scores_since_the_last_surprise() -> None:
    cal = Calibration(risk=0.01, offset=0.0, adapt_rate=0.0, min_samples=10, recent_steps=(3, 10), periods=())
    state = CalibrationState()
    rng = np.random.default_rng(0)
    for value in rng.lognormal(0.0, 0.05, size=50):
        state = cal.update(state, realized=float(value), forecast=1.0, censored=False, saturated=False)
    state = cal.update(state, realized=5.0, forecast=1.0, censored=False, saturated=False)
    assert state.since_surprise == 0
    assert cal.context(state, step=0, level=None)[1] == 0
    for _ in range(3):
        state = cal.update(state, realized=1.0, forecast=1.0, censored=False, saturated=False)
    assert cal.context(state, step=0, level=None)[1] == 1


def test_the_level_context_says_where_usage_stands_in_its_recent_range() -> None:
    cal = Calibration(level_bins=(0.5, 0.75, 0.9))
    assert [cal.context(CalibrationState(), step=0, level=x)[2] for x in (0.1, 0.5, 0.8, 0.95)] == [0, 1, 2, 3]
    assert cal.context(CalibrationState(), step=0, level=None)[2] == 0
    assert Calibration(level_bins=(0.8,)).context(CalibrationState(), step=0, level=0.85)[2] == 1
    assert Calibration(contextual=False).context(CalibrationState(), step=0, level=0.9) == NO_CONTEXT


def test_rising_and_volatile_contexts_come_from_the_last_change_and_the_mean_recent_change() -> None:
    cal = Calibration(rise_level=0.05, volatile_level=0.03)
    assert cal.context(CalibrationState(), step=0, level=0.2, rise=0.1, volatility=0.01)[3:] == (1, 0)
    # off by default
    assert Calibration().context(CalibrationState(), step=0, level=0.2, rise=0.5, volatility=0.5)[3:] == (0, 0)
    assert cal.context(CalibrationState(), step=0, level=0.2, rise=-0.1, volatility=0.05)[3:] == (0, 1)
    assert cal.context(CalibrationState(), step=0, level=0.2)[3:] == (0, 0)


def test_the_policy_measures_level_rise_and_volatility_as_shares_of_the_recent_range() -> None:
    calibration = Calibration(level_bins=(0.5, 0.75, 0.9), rise_level=0.05, volatile_level=0.03)
    policy = PredictivePolicy(calibration=calibration, target_utilization=1.0, volatility_window=4)
    state = PredictiveState()
    for t, usage in enumerate([2.0, 2.0, 2.0, 2.0, 2.0, 10.0], start=1):
        obs = Observation(usage=usage, pods_with_metrics=10, current_replicas=10, now=60.0 * t, history_len=t)
        state = policy.observe(obs, state)
    level, rise, volatility = policy._shape(state, 10.0)
    assert level == pytest.approx(1.0)
    assert rise == pytest.approx(1.0)  # from the bottom of the range to its top in one step
    assert volatility == pytest.approx(0.25)  # one full-range change among the last four
    context = policy.calibration.context(CalibrationState(), step=6, level=level, rise=rise, volatility=volatility)
    assert context[2:] == (3, 1, 1)


def _closed_loop(contextual: bool, *, risk: float, steps: int = 8000) -> tuple[float, float]:
    """Base demand 5 cores, bursts to 20 cores for 8 steps on minute 2 of a 30-minute cycle in one cycle out of
    three; the forecast is the last usage (it never sees a burst coming).

    Returns (saturated share, mean pods) over the last half."""
    rng = np.random.default_rng(11)
    policy = PredictivePolicy(
        calibration=Calibration(risk=risk, offset=1.0, contextual=contextual),
        target_utilization=1.0,
        min_history=1,
        scorings=(Scoring(name="forecast"),),  # the contexts are the calibration's: a calibrated scoring alone
    )
    demand = np.full(steps, 5.0) * rng.lognormal(0.0, 0.03, size=steps)
    for start in range(2, steps, 30):
        if rng.random() < 1 / 3:
            demand[start : start + 8] = 20.0
    saturated, pods, _ = run_loop(
        policy,
        demand,
        lambda t, usage: np.full((3, 3), usage, dtype=np.float32),
        quantiles=QUANTILES,
        replicas=6,
    )
    return saturated, pods


def test_contexts_meet_cycle_bursts_for_far_fewer_pods_at_the_same_saturation() -> None:
    plain_sat, plain_pods = _closed_loop(False, risk=0.01)
    ctx_sat, ctx_pods = _closed_loop(True, risk=0.01)
    # both hold the risk; without contexts covering the bursts means burst headroom at every step
    assert plain_sat <= 0.015 and ctx_sat <= 0.015
    assert ctx_pods < 0.7 * plain_pods
