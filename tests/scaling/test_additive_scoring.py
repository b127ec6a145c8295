"""Additive scores, the recent-peak cap, volatility-weighted units, and the shortfall of scorings not in use."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from aihpa.scaling import (
    DEFAULT_BEHAVIOR,
    Calibration,
    CalibrationState,
    Observation,
    PredictivePolicy,
    PredictiveState,
    Scoring,
)

from .closed_loop import run_loop

QUANTILES = (0.5, 0.9, 0.99)


def _additive(**kw: object) -> Calibration:
    settings: dict[str, object] = {"mode": "additive", "offset": 2.0, "min_samples": 5, "contextual": False}
    settings.update(kw)
    return Calibration(**settings)  # type: ignore[arg-type]


def _fed(config: Calibration, *, forecast: float, errors: list[float], saturated: bool = False) -> CalibrationState:
    cal = CalibrationState()
    for error in errors:
        cal = config.update(cal, realized=forecast + error, forecast=forecast, censored=False, saturated=saturated)
    return cal


def test_additive_scores_are_counted_in_units_of_the_offset() -> None:
    config = _additive()
    cal = _fed(config, forecast=10.0, errors=[2.0] * 20)
    assert config.quantile(cal) == pytest.approx(1.0)  # (12 - 10) / 2
    # the quiet steps lowered the correction a little; it scales the 2-core headroom, not the forecast
    assert cal.correction < 0
    assert config.provision(cal, peak=10.0) == pytest.approx(10.0 + 2.0 * math.exp(cal.correction))


def test_additive_headroom_is_the_same_at_any_level() -> None:
    # errors of +3 cores recorded at a forecast of 4: the same 3 cores are added at a forecast of 40, where a
    # ratio calibration would have multiplied them by ten
    additive, ratio = _additive(), Calibration(mode="ratio", offset=0.0, min_samples=5, contextual=False)
    add_cal = _fed(additive, forecast=4.0, errors=[3.0] * 20, saturated=True)
    ratio_cal = _fed(ratio, forecast=4.0, errors=[3.0] * 20, saturated=True)
    low, high = additive.provision(add_cal, peak=4.0), additive.provision(add_cal, peak=40.0)
    assert low is not None and high is not None
    assert high - 40.0 == pytest.approx(low - 4.0)
    assert low - 4.0 > 3.0  # saturated outcomes raised the correction above 1
    ratio_high = ratio.provision(ratio_cal, peak=40.0)
    assert ratio_high is not None and ratio_high - 40.0 > 5 * (high - 40.0)


def test_calibration_modes_are_validated() -> None:
    with pytest.raises(ValueError, match="ratio, spread or additive"):
        Calibration(mode="sum")  # type: ignore[arg-type]


def _policy(*scorings: Scoring, **kw: object) -> PredictivePolicy:
    settings: dict[str, object] = {
        "calibration": Calibration(risk=0.02, offset=1.0, min_samples=5),
        "target_utilization": 1.0,
        "scorings": scorings,
        "behavior": DEFAULT_BEHAVIOR.with_scale_down_stabilization(0),
        # the scorings' own headroom is what these tests measure: no hysteresis on top
        "hysteresis": 0.0,
    }
    settings.update(kw)
    return PredictivePolicy(**settings)  # type: ignore[arg-type]


def _replay(policy: PredictivePolicy, usages: list[float], *, replicas: int = 30) -> tuple[int, PredictiveState]:
    """Feed observed usages (never saturated: plenty of pods) and return the last decision's replicas."""
    state = PredictiveState()
    decided = replicas
    forecast = np.zeros((3, 3), dtype=np.float32)
    for t, usage in enumerate(usages, start=1):
        obs = Observation(
            usage=usage, pods_with_metrics=replicas, current_replicas=replicas, now=60.0 * t, history_len=t
        )
        forecast[:] = usage
        decision, state = policy.decide(obs, state, forecast=forecast, quantiles=QUANTILES)
        decided = decision.replicas
    return decided, state


def test_the_peak_cap_holds_capacity_near_the_recent_peak() -> None:
    # usage swings between 5 and 10 cores: from 10 the additive headroom alone (5 cores of error) would ask for 15
    # pods, but usage has not been above 10 in the level window, so the capped scoring asks for ceil(10 * 1.05)
    usages = [5.0, 10.0] * 40
    free, _ = _replay(_policy(Scoring(base="last", mode="additive")), usages)
    capped, _ = _replay(_policy(Scoring(base="last", mode="additive", peak_cap=0.05)), usages)
    assert free >= 15
    assert capped == 11
    # the recent peak is kept whether or not scores are filed by context
    plain = Calibration(risk=0.02, offset=1.0, min_samples=5, contextual=False)
    capped_plain, _ = _replay(_policy(Scoring(base="last", mode="additive", peak_cap=0.05), calibration=plain), usages)
    assert capped_plain == 11


def _clustered(steps: int, seed: int = 11) -> np.ndarray:
    """Demand with calm stretches and turbulent ones (steps of a few cores every few minutes), as batch jobs start
    in bursts."""
    rng = np.random.default_rng(seed)
    level, out = 8.0, np.empty(steps)
    for t in range(steps):
        turbulent = (t // 300) % 2 == 1
        if turbulent and rng.random() < 0.15:
            level = float(np.clip(level + rng.choice([-3.0, 3.0]), 2.0, 14.0))
        out[t] = level + rng.normal(0.0, 0.05)
    return np.maximum(out, 0.0)


def test_volatility_weighted_units_spend_headroom_where_the_steps_are() -> None:
    demand = _clustered(3000)

    def forecast_at(t: int, usage: float) -> np.ndarray:
        return np.full((3, 3), usage, dtype=np.float32)

    fixed = _policy(Scoring(base="last", mode="additive", window=2000))
    weighted = _policy(Scoring(base="last", mode="additive", window=2000, volatility_scale=0.02))
    fixed_sat, fixed_pods, _ = run_loop(fixed, demand, forecast_at, quantiles=QUANTILES, replicas=10)
    weighted_sat, weighted_pods, _ = run_loop(weighted, demand, forecast_at, quantiles=QUANTILES, replicas=10)
    assert fixed_sat <= 0.03 and weighted_sat <= 0.03
    assert weighted_pods < 0.95 * fixed_pods


def test_volatility_settings_are_validated() -> None:
    with pytest.raises(ValueError, match="volatility_scale"):
        Scoring(volatility_scale=0.0)
    with pytest.raises(ValueError, match="volatility_floor"):
        Scoring(volatility_floor=0.0)
    with pytest.raises(ValueError, match="peak_cap"):
        Scoring(peak_cap=-0.1)


def test_a_scoring_not_in_use_is_held_to_the_same_measure_of_saturation() -> None:
    # the shortfall rate of a scoring watched from the side matches its saturation rate when it is in use: both
    # count the steps its pods would not have held
    demand = _clustered(3000, seed=4)
    rng = np.random.default_rng(2)

    def forecast_at(t: int, usage: float) -> np.ndarray:
        noisy = demand[min(t, demand.shape[0] - 1)] * rng.lognormal(0.0, 0.2)
        return np.full((3, 3), noisy, dtype=np.float32) * np.array([1.0, 1.2, 1.5], dtype=np.float32)

    model, last = Scoring(), Scoring(base="last", mode="additive", window=2000)
    pinned = {"select_after": 10**9, "memory": 1500.0}
    _, _, watched = run_loop(_policy(model, last, **pinned), demand, forecast_at, quantiles=QUANTILES, replicas=10)
    _, _, used = run_loop(_policy(last, model, **pinned), demand, forecast_at, quantiles=QUANTILES, replicas=10)
    assert watched.choice == 0 and used.choice == 0
    side, in_use = watched.shortfall_rates[1], used.shortfall_rates[0]
    assert 0.005 < in_use < 0.05
    assert side == pytest.approx(in_use, rel=0.35)


def test_without_a_cpu_limit_shortfalls_are_measured_against_the_requests() -> None:
    # pods without a limit never report saturation; usage above what the pods request still counts as a shortfall,
    # for the scoring in use as for the other
    policy = _policy(Scoring(), Scoring(base="last", mode="additive"), memory=10.0)
    state = PredictiveState()
    forecast = np.full((3, 3), 2.0, dtype=np.float32)
    rates: list[tuple[float, ...]] = []
    for t in range(1, 32):
        usage = 2.0 if t < 31 else 9.0  # a jump that the 3 pods asked for cannot hold
        obs = Observation(
            usage=usage, pods_with_metrics=3, current_replicas=3, now=60.0 * t, history_len=t, capacity_per_pod=math.inf
        )
        assert not obs.saturated
        _, state = policy.decide(obs, state, forecast=forecast, quantiles=QUANTILES)
        rates.append(state.shortfall_rates)
    assert len(rates[-2]) == 2 and rates[-2] == (0.0, 0.0)
    # one short step in ten remembered: each average moves by a tenth of the way to 1
    assert rates[-1] == pytest.approx((0.1, 0.1))


def test_additive_units_are_one_pods_request_weighted_by_the_volatility() -> None:
    # the controller's calibration has no offset of its own: the unit is the pods' request (0.5 cores here), times
    # the mean recent change over 2% of the recent peak, within [0.2, 1]
    scoring = Scoring(base="last", mode="additive", volatility_scale=0.02)
    policy = _policy(scoring, calibration=Calibration(risk=0.02, min_samples=5), request_per_pod=0.5)
    _, calm = _replay(policy, [10.0] * 40)
    _, stormy = _replay(policy, [5.0, 10.0] * 20)
    _, mild = _replay(policy, [10.0, 10.05] * 20)  # mean change 0.05 = 25% of 2% of the peak
    units = [s.pending[-1].peaks[0].offset for s in (calm, stormy, mild)]
    assert units == pytest.approx([0.5 * 0.2, 0.5, 0.5 * 0.05 / (0.02 * 10.05)])


@pytest.mark.parametrize(
    ("mode", "scoring"),
    [
        ("additive", Scoring(base="last", volatility_scale=0.02)),
        ("spread", Scoring()),
    ],
    ids=["additive_volatility", "spread"],
)
def test_a_scorings_mode_means_the_same_whether_it_or_the_calibration_sets_it(mode: str, scoring: Scoring) -> None:
    calibration = Calibration(risk=0.02, offset=1.0, min_samples=5, mode=mode)  # type: ignore[arg-type]
    by_calibration = _policy(scoring, calibration=calibration)
    by_scoring = _policy(replace(scoring, mode=mode))  # type: ignore[arg-type]
    rng = np.random.default_rng(8)
    states = [PredictiveState(), PredictiveState()]
    seen: list[list[int]] = [[], []]
    for t in range(1, 120):
        # calm and stormy stretches, so that a volatility-weighted unit moves
        usage = float(6.0 + math.sin(t / 15.0) + rng.normal(0.0, 0.8 if (t // 30) % 2 else 0.01))
        obs = Observation(usage=usage, pods_with_metrics=20, current_replicas=20, now=60.0 * t, history_len=t)
        median = usage * rng.lognormal(0.0, 0.1)
        forecast = np.array([[median, median * 1.2, median * 1.6]] * 3, dtype=np.float32)
        for i, policy in enumerate((by_calibration, by_scoring)):
            decision, states[i] = policy.decide(obs, states[i], forecast=forecast, quantiles=QUANTILES)
            seen[i].append(decision.replicas)
    assert seen[0] == seen[1]
    assert len(set(seen[0])) > 3  # the decisions moved with the load
