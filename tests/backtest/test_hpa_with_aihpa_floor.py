"""The "hpa+aihpa" backtest row: the HPA with aihpa setting its minReplicas each step, as `aihpa/with-hpa: floor` runs
live; swept over the HPA's target at aihpa's default risk."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from aihpa.backtest import run_backtest
from aihpa.backtest.run import KNOWN_POLICIES, POLICY_NAMES, check_policies
from aihpa.errors import UserError
from aihpa.forecast.forecaster import DEFAULT_QUANTILES
from aihpa.traces import series_from_values


class AheadForecaster:
    """Knows the trace: forecasts the true demand of the coming steps (as if it had seen the future)."""

    version = "ahead"
    horizon = 15
    quantiles = DEFAULT_QUANTILES
    context = 32
    min_history = 10
    step_s = None

    def __init__(self, values: npt.NDArray[np.float64]) -> None:
        self.values = values

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        rows = len(histories)
        t = int(np.asarray(end_times)[0]) // 60 + 1  # the step after the last one seen
        ahead = np.resize(self.values[t : t + self.horizon], self.horizon)
        return np.broadcast_to(ahead[None, :, None], (rows, self.horizon, len(self.quantiles))).astype(np.float32)


def _bursty(n: int = 1200) -> npt.NDArray[np.float64]:
    # 3 cores, with a 12-core burst of 4 steps every 30 steps: a reactive HPA meets every burst late
    t = np.arange(n)
    return np.where(t % 30 < 4, 12.0, 3.0)


def test_the_row_is_known_but_not_run_by_default_and_needs_a_model() -> None:
    assert "hpa+aihpa" in KNOWN_POLICIES and "hpa+aihpa" not in POLICY_NAMES
    assert check_policies(["hpa", "hpa+aihpa"]) == ("hpa", "hpa+aihpa")
    trace = series_from_values(_bursty(), step_s=60.0, timestamps=np.arange(1200) * 60.0)
    with pytest.raises(UserError, match="'hpa\\+aihpa' needs a forecaster"):
        run_backtest(trace, policies=("hpa+aihpa",))


def test_a_floor_set_ahead_of_the_bursts_saves_the_hpa_its_saturated_steps() -> None:
    values = _bursty()
    trace = series_from_values(values, step_s=60.0, timestamps=np.arange(values.shape[0]) * 60.0)
    knobs = {"hpa": (0.7,), "hpa+aihpa": (0.7,)}
    result = run_backtest(trace, policies=("hpa", "hpa+aihpa"), forecaster=AheadForecaster(values), knobs=knobs)
    hpa, both = result.policies["hpa"].sweep[0], result.policies["hpa+aihpa"].sweep[0]
    # the HPA alone is short at the start of every burst; with aihpa's floor raised before it, far less often
    assert hpa.saturated_share > 0.05
    assert both.saturated_share < hpa.saturated_share / 2
    # and the HPA still decides above the floor: never fewer ready pods than the HPA alone would hold at the base
    assert (result.policies["hpa+aihpa"].replicas[0, 400:] >= 5).all()
