"""aihpa inside the backtest: one batched forecaster call per step, what the forecaster is given, and fallback."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from aihpa.backtest import replay, run_backtest
from aihpa.backtest.policies import AIHPA_KNOBS, AihpaBatch
from aihpa.forecast.forecaster import DEFAULT_QUANTILES
from aihpa.traces import series_from_values


class CountingForecaster:
    """A fake forecaster: predicts the last value, and records every call."""

    version = "counting"
    horizon = 15
    quantiles = DEFAULT_QUANTILES
    context = 64
    min_history = 10
    step_s = None

    def __init__(self) -> None:
        self.calls: list[tuple[int, int, object, float | None]] = []

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        arr = np.asarray(histories, dtype=np.float32)
        self.calls.append((arr.shape[0], arr.shape[1], None if end_times is None else list(end_times), step_s))
        last = arr[:, -1]
        return np.broadcast_to(last[:, None, None], (arr.shape[0], self.horizon, len(self.quantiles))).copy()


def _demand(n: int = 300) -> np.ndarray:
    t = np.arange(n)
    return 8 + 4 * np.sin(2 * np.pi * t / 60)


def test_all_sweep_settings_share_one_forecaster_call_per_step() -> None:
    demand = _demand()
    times = 1.6e9 + 300.0 * np.arange(demand.shape[0])
    fake = CountingForecaster()
    batch = AihpaBatch(AIHPA_KNOBS, fake, times=times, step_s=300.0)
    replay(demand, batch, rows=len(AIHPA_KNOBS), times=times)
    # steps 10 .. 299 have enough history: one call each, every setting a row of it
    assert len(fake.calls) == demand.shape[0] - fake.min_history
    rows, width, end_times, step_s = fake.calls[-1]
    assert rows == len(AIHPA_KNOBS)
    assert width == fake.context
    assert end_times == [times[-2]] * rows
    assert step_s == 300.0


def test_aihpa_falls_back_to_the_reactive_hpa_until_the_forecaster_has_enough_history() -> None:
    demand = _demand()
    fake = CountingForecaster()
    batch = AihpaBatch([0.01], fake)
    replay(demand[:12], batch, rows=1)
    assert len(fake.calls) == 2  # steps 10 and 11


def test_aihpa_sweep_spans_the_one_percent_slo_on_a_simple_series() -> None:
    trace = series_from_values(_demand(600), name="sine", step_s=60.0)
    result = run_backtest(trace, policies=["aihpa"], forecaster=CountingForecaster())
    shares = [p.saturated_share for p in result.policies["aihpa"].sweep]
    assert min(shares) <= 0.01
    assert result.policies["aihpa"].cost_at_slo is not None
