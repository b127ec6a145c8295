"""Forecast-quality scoring: the loss definitions and the scored window."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.forecast.evaluate import evaluate, pinball
from aihpa.forecast.forecaster import LastValueForecaster, SeasonalNaiveForecaster
from aihpa.traces import series_from_values


def test_pinball_is_asymmetric_as_defined() -> None:
    y = np.asarray([10.0])
    assert pinball(y, np.asarray([8.0]), 0.9) == pytest.approx(1.8)  # under-forecast costs q * err
    assert pinball(y, np.asarray([12.0]), 0.9) == pytest.approx(0.2)  # over-forecast costs (1 - q) * err


def test_a_perfectly_periodic_series_is_scored_zero_for_seasonal_naive_only() -> None:
    period = 24
    values = np.tile(np.arange(period, dtype=np.float64) + 1, 30)
    trace = series_from_values(values, step_s=3600.0)
    rows = {
        r.forecaster: r
        for r in evaluate(
            trace,
            {"sn": SeasonalNaiveForecaster(period=period, horizon=4), "lv": LastValueForecaster(horizon=4)},
        )
    }
    assert rows["sn"].mae == 0 and rows["sn"].pinball[0.9] == 0
    assert rows["lv"].mae > 0
    # the last 80% of 720 points, 2 steps ahead
    assert rows["sn"].points == 720 - 144


def test_too_short_a_trace_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        evaluate(series_from_values([1.0, 2.0]), {"lv": LastValueForecaster()}, steps_ahead=2)
