"""The `Forecaster` protocol and its implementations.

A forecaster turns recent history of many workloads into quantile forecasts for each step of a horizon, in one call:
`predict(histories) -> float32[batch, horizon, len(quantiles)]`, in each series' own units. Callers (the backtest,
the controller) never spawn a process per prediction: they batch every workload into one in-process call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_QUANTILES",
    "Forecaster",
    "LastValueForecaster",
    "SeasonalNaiveForecaster",
    "stack_histories",
]

DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)


@runtime_checkable
class Forecaster(Protocol):
    """Batched quantile forecasts.

    `histories[i]` is the recent past of workload i, oldest first, at one step per sample (at least `min_history`
    points; longer is fine, only the last `context` points are read). `end_times[i]` is the time in seconds (Unix
    epoch, UTC, or relative) of the last sample of workload i, when known: it feeds calendar features. `step_s` is the
    spacing of samples in seconds, when known (a scalar for all rows).
    """

    @property
    def version(self) -> str: ...

    @property
    def horizon(self) -> int: ...

    @property
    def quantiles(self) -> tuple[float, ...]: ...

    @property
    def context(self) -> int:
        """How many of the most recent points `predict` reads."""
        ...

    @property
    def min_history(self) -> int:
        """The fewest points a history may have; shorter ones are padded by the caller's choice or rejected."""
        ...

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]: ...


def stack_histories(
    histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating], length: int
) -> npt.NDArray[np.float32]:
    """The last `length` points of each history as one float32 [batch, length] array.

    Shorter histories are left-padded with their first value (an empty one with zeros); non-finite points are
    replaced by the previous finite value, so one bad sample never poisons a batch.
    """
    if isinstance(histories, np.ndarray) and histories.ndim == 2 and histories.shape[1] >= length:
        out = np.asarray(histories[:, histories.shape[1] - length :], dtype=np.float32).copy()
    else:
        out = np.zeros((len(histories), length), dtype=np.float32)
        for i, h in enumerate(histories):
            row = np.asarray(h, dtype=np.float32).reshape(-1)[-length:]
            if row.size:
                out[i, length - row.size :] = row
                out[i, : length - row.size] = row[0]
    bad = ~np.isfinite(out)
    if bad.any():
        for i in np.flatnonzero(bad.any(axis=1)):
            row = out[i]
            good = np.isfinite(row)
            if not good.any():
                row[:] = 0.0
                continue
            idx = np.where(good, np.arange(length), 0)
            np.maximum.accumulate(idx, out=idx)
            first = int(np.argmax(good))
            idx[:first] = first
            out[i] = row[idx]
    return out


class LastValueForecaster:
    """Every quantile of every future step equals the last observed value."""

    def __init__(self, *, horizon: int = 15, quantiles: tuple[float, ...] = DEFAULT_QUANTILES) -> None:
        self._horizon = horizon
        self._quantiles = quantiles

    version = "last-value"

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self._quantiles

    @property
    def context(self) -> int:
        return 1

    @property
    def min_history(self) -> int:
        return 1

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        last = stack_histories(histories, 1)[:, 0]
        return np.broadcast_to(last[:, None, None], (last.shape[0], self._horizon, len(self._quantiles))).copy()


class SeasonalNaiveForecaster:
    """Step h ahead equals the value one season (`period` steps) before it; every quantile alike.

    The period is one day of steps when `step_s` is given to `predict`, else `period` (default 1440: a day of minutes).
    """

    def __init__(
        self, *, period: int = 1440, horizon: int = 15, quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    ) -> None:
        if period < horizon:
            raise ValueError(f"season of {period} steps is shorter than the horizon {horizon}")
        self._period = period
        self._horizon = horizon
        self._quantiles = quantiles

    version = "seasonal-naive"

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self._quantiles

    @property
    def context(self) -> int:
        return self._period

    @property
    def min_history(self) -> int:
        return self._period

    def period_for(self, step_s: float | None) -> int:
        if step_s is None or step_s <= 0:
            return self._period
        return max(self._horizon, round(86400.0 / step_s))

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        period = self.period_for(step_s)
        window = stack_histories(histories, period)
        # the value one season before step t+h (h = 1..H) sits at index period - 1 + h - period = h - 1
        ahead = window[:, : self._horizon]
        return np.repeat(ahead[:, :, None], len(self._quantiles), axis=2)
