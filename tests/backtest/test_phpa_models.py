"""PHPA's models as the backtest runs them agree with the statsmodels calls PHPA makes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from aihpa.backtest.phpa import HoltWintersModel, LinearModel, holt_winters_weights, linear_weights
from aihpa.backtest.policies import PhpaBatch, hpa_replica_history, tune_holt_winters, tune_linear
from aihpa.backtest.protocol import replay

HW_CASES = [
    # (seasonalPeriods, history length, alpha, beta, gamma)
    (6, 16, 0.9, 0.9, 0.9),  # PHPA's smallest accepted history for its documented example
    (6, 24, 0.9, 0.9, 0.9),
    (6, 30, 0.1, 0.5, 0.3),
    (5, 23, 0.5, 0.1, 0.9),
    (12, 60, 0.3, 0.3, 0.3),
    (24, 119, 0.9, 0.1, 0.5),
]


def _statsmodels_holt_winters(series: np.ndarray, m: int, a: float, b: float, g: float) -> float:
    """algorithms/holt_winters/holt_winters.py in PHPA, minus the ceiling."""
    with warnings.catch_warnings():
        # PHPA silences ConvergenceWarning the same way; with optimized=False nothing is fitted anyway
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = ExponentialSmoothing(
            series, trend="add", seasonal="add", seasonal_periods=m, initialization_method="estimated"
        )
        fitted = model.fit(smoothing_level=a, smoothing_trend=b, smoothing_seasonal=g, optimized=False)
        return float(fitted.forecast(steps=1)[0])


@pytest.mark.parametrize(("m", "n", "a", "b", "g"), HW_CASES, ids=[f"m{c[0]}_n{c[1]}" for c in HW_CASES])
def test_holt_winters_weights_reproduce_statsmodels(m: int, n: int, a: float, b: float, g: float) -> None:
    rng = np.random.default_rng(n)
    w = holt_winters_weights(n, seasonal_periods=m, alpha=a, beta=b, gamma=g)
    for _ in range(3):
        series = rng.integers(1, 40, size=n).astype(np.float64)
        assert w @ series == pytest.approx(_statsmodels_holt_winters(series, m, a, b, g), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize(("n", "look_ahead_s"), [(2, 10.0), (6, 10.0), (7, 60.0), (25, 300.0)])
def test_linear_weights_reproduce_statsmodels_ols(n: int, look_ahead_s: float) -> None:
    rng = np.random.default_rng(n)
    y = rng.integers(1, 40, size=n).astype(np.float64)
    x = look_ahead_s + 60.0 * (n - 1 - np.arange(n))  # search time minus each evaluation's time
    expected = sm.OLS(y, sm.add_constant(x)).fit().predict([[1.0, 0.0]])[0]
    assert linear_weights(n, look_ahead_s=look_ahead_s, step_s=60.0) @ y == pytest.approx(expected)


def test_a_constant_history_predicts_the_same_count() -> None:
    history = np.full((1, 7), 3.0)
    assert LinearModel(history_size=6).predict(history, step_s=60.0).tolist() == [3]
    assert HoltWintersModel().predict(np.full((1, 30), 3.0), step_s=60.0).tolist() == [3]


def test_holt_winters_predicts_nothing_until_two_seasons_are_stored() -> None:
    model = HoltWintersModel(seasonal_periods=6)
    assert model.predict(np.ones((2, 15)), step_s=60.0).tolist() == [0, 0]
    assert model.ready(16)


@pytest.mark.parametrize(("stored", "kept"), [(24, 24), (29, 29), (30, 24), (31, 25)])
def test_holt_winters_history_keeps_whole_stored_seasons(stored: int, kept: int) -> None:
    assert HoltWintersModel(seasonal_periods=6, stored_seasons=4).history_after_prune(stored) == kept


def test_linear_history_keeps_history_size_evaluations() -> None:
    assert LinearModel(history_size=6).history_after_prune(7) == 6


def test_phpa_never_goes_below_the_hpa_it_wraps() -> None:
    demand = np.concatenate([np.linspace(1, 30, 150), np.linspace(30, 2, 150)])
    hw = PhpaBatch([0.5], HoltWintersModel())
    out = replay(demand, hw, rows=1)
    assert out.replicas.min() >= 1
    assert out.replicas.max() <= 100


def test_tuning_picks_settings_from_the_documented_grid() -> None:
    t = np.arange(2000)
    demand = 10 + 5 * np.sin(2 * math.pi * t / 24)
    series = hpa_replica_history(demand)
    assert series.shape[0] == 2000 // 5 - 1
    lr = tune_linear(series)
    hw = tune_holt_winters(series, steps_per_day=24)
    assert lr.history_size in (2, 3, 4, 6, 8, 12, 24)
    assert lr.look_ahead_ms == 60000
    assert hw.seasonal_periods in (6, 12, 24, 60)
    assert {hw.alpha, hw.beta, hw.gamma} <= {0.1, 0.5, 0.9}
