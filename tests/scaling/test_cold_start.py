"""A new workload's first hours: a band prior stands in for the scores it does not have, and until it has its own the
count stays within a bounded margin of the fallback HPA's."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest

from aihpa.scaling import Calibration, CalibrationState, Observation, PredictivePolicy, PredictiveState, Scoring
from aihpa.scaling.factory import predictive_policy
from aihpa.scaling.prior import BAND_PRIOR, PRIOR_KEY, prior_from_metadata, prior_of

QUANTILES = (0.5, 0.9, 0.99)


def _obs(usage: float, *, current: int = 4) -> Observation:
    return Observation(usage=usage, pods_with_metrics=current, current_replicas=current, now=6000.0, history_len=100)


def _band(median: float, top: float) -> np.ndarray:
    return np.array([[median, (median + top) / 2, top]] * 3, dtype=np.float32)


def test_prior_picks_fill_in_for_missing_scores_and_give_way_to_the_workloads_own() -> None:
    cal = Calibration(risk=0.01, min_samples=30, prior=tuple(np.linspace(0.0, 1.0, 200)))
    need = cal.context_min_samples
    assert need == 99
    empty = CalibrationState()
    # no scores of its own: the prior alone, its top picks near its top
    assert cal.quantile(empty) == pytest.approx(1.0, abs=0.01)
    assert cal.with_prior(empty.log_ratios).shape[0] == need
    state = empty
    for _ in range(60):
        state = cal.update(state, realized=1.0, forecast=1.0, censored=False, saturated=False)
    mixed = cal.with_prior(state.log_ratios)
    assert mixed.shape[0] == need and np.count_nonzero(mixed != 0.0) <= need - 60
    for _ in range(need - 60):
        state = cal.update(state, realized=1.0, forecast=1.0, censored=False, saturated=False)
    assert cal.calibrated(state) and cal.quantile(state) == pytest.approx(0.0)  # its own scores only
    with pytest.raises(ValueError, match="ascending"):
        Calibration(prior=(1.0, 0.0))


def test_the_band_prior_sizes_a_new_workload_from_the_models_own_band() -> None:
    prior = tuple(np.linspace(0.0, 2.0, 200))  # its conformal quantile at 1%: about 2 bands above the median
    policy = PredictivePolicy(target_utilization=1.0, band_prior=prior, warmup_margin=None)
    decision, _ = policy.decide(_obs(4.0), PredictiveState(), forecast=_band(4.0, 5.0), quantiles=QUANTILES)
    assert decision.recommended == math.ceil(4.0 + 2.0 * 1.0 - 0.05)
    assert "band prior while calibrating" in decision.reason
    plain = PredictivePolicy(target_utilization=1.0, warmup_margin=None)
    decision, _ = plain.decide(_obs(4.0), PredictiveState(), forecast=_band(4.0, 5.0), quantiles=QUANTILES)
    assert decision.recommended == 5 and "top quantile while calibrating" in decision.reason


def test_until_calibrated_the_count_stays_within_the_margin_of_the_fallback() -> None:
    # a calibrated scoring alone (the HPA candidate is calibrated by its shadows: tests/scaling/test_hpa_grid.py)
    held = Scoring(base="last", mode="ratio", hold=5, name="held")
    policy = PredictivePolicy(target_utilization=1.0, fallback_utilization=0.5, warmup_margin=0.5, scorings=(held,))
    # a wild top quantile (40 cores) on 4 cores of usage: the fallback HPA at 50% wants 8 pods, the bound is 12
    decision, state = policy.decide(_obs(4.0), PredictiveState(), forecast=_band(4.0, 40.0), quantiles=QUANTILES)
    assert decision.recommended == 12
    assert "capped at 12 while calibrating" in decision.reason
    # once the scoring in use holds its own 99 scores, the bound is gone
    calibrated = Calibration(risk=policy.risk, mode="ratio", offset=0.0)
    assert calibrated.context_min_samples == 99
    cal = CalibrationState()
    for _ in range(99):
        cal = calibrated.update(cal, realized=20.0, forecast=4.0, censored=False, saturated=False)
    state = PredictiveState(calibrations=(cal, *state.calibrations[1:]))
    decision, _ = policy.decide(_obs(4.0), state, forecast=_band(4.0, 40.0), quantiles=QUANTILES)
    # 4 cores held, 5x its own scores
    assert decision.recommended == 20 and "while calibrating" not in decision.reason


def test_a_bound_of_zero_still_allows_one_pod_above_the_fallback() -> None:
    policy = PredictivePolicy(target_utilization=1.0, fallback_utilization=0.5, warmup_margin=0.0)
    decision, _ = policy.decide(_obs(4.0), PredictiveState(), forecast=_band(4.0, 40.0), quantiles=QUANTILES)
    assert decision.recommended == 9
    with pytest.raises(ValueError, match="warmup_margin"):
        PredictivePolicy(warmup_margin=-0.1)


def test_the_prior_is_read_from_checkpoint_metadata_and_a_bad_one_is_ignored_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    good = {PRIOR_KEY: {"scorings": {BAND_PRIOR: [0.3, 0.1, 0.2]}}}
    assert prior_from_metadata(good) == {BAND_PRIOR: (0.1, 0.2, 0.3)}
    assert predictive_policy(prior=prior_from_metadata(good)).band_prior == (0.1, 0.2, 0.3)
    assert prior_from_metadata({}) == {} and prior_from_metadata(None) == {}
    with caplog.at_level(logging.WARNING, logger="aihpa.scaling.prior"):
        assert prior_from_metadata({PRIOR_KEY: {"scorings": {BAND_PRIOR: [0.1, float("nan")]}}}) == {}
        assert prior_from_metadata({PRIOR_KEY: "nonsense"}) == {}
        assert prior_from_metadata({PRIOR_KEY: {"scorings": {BAND_PRIOR: "0.1"}}}) == {}
    assert len(caplog.records) == 3

    class WithMetadata:
        metadata = good

    assert prior_of(WithMetadata()) == {BAND_PRIOR: (0.1, 0.2, 0.3)}
    assert prior_of(object()) == {}


def test_the_shipped_model_carries_a_band_prior_and_the_default_policy_uses_it() -> None:
    from aihpa.backtest.policies import default_backtest_policy
    from aihpa.forecast.forecaster import load_default_forecaster

    fc = load_default_forecaster()
    prior = prior_of(fc)
    assert len(prior[BAND_PRIOR]) == 200
    policy = default_backtest_policy(fc)
    assert policy.band_prior == prior[BAND_PRIOR] and policy.min_history == 8
    assert fc.metadata[PRIOR_KEY]["traces"]  # it says what it was learned on
