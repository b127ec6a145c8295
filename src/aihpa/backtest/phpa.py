"""PHPA's two statistical models, as linear maps over a replica history, so a backtest can batch them.

Source: jthomperoo/predictive-horizontal-pod-autoscaler, docs/user-guide/models.md and
algorithms/linear_regression/linear_regression.py, algorithms/holt_winters/holt_winters.py.

- Linear regression: ordinary least squares (statsmodels OLS with a constant) of the stored replica counts on
  x = (search time - evaluation time) in seconds, where search time = now + lookAhead; the prediction is
  ceil(intercept). `historySize` evaluations are kept; with a single one PHPA returns it unchanged.
- Holt-Winters: statsmodels `ExponentialSmoothing(series, trend, seasonal, seasonal_periods,
  initialization_method="estimated").fit(smoothing_level=alpha, smoothing_trend=beta, smoothing_seasonal=gamma,
  optimized=False).forecast(1)`, ceiled. PHPA answers 0 (no prediction) until the history holds 2 × seasonalPeriods
  and 10 + 2 × (seasonalPeriods // 2) values, and keeps `storedSeasons` whole seasons.

Both predictions are linear in the history for fixed settings (OLS with fixed abscissae; additive Holt-Winters with
fixed smoothing and heuristic initial states), so each is a weight vector applied to the window. The weights are
computed once per window length and checked against statsmodels itself in the tests. PHPA runs a Python process per
prediction; this module is what the backtest uses instead, with identical results up to floating-point rounding.

Two deliberate departures, both documented: predictions are rounded to 1e-9 before the ceiling (so that a constant
history of 3 predicts 3, not 4 from floating-point noise), and the Holt-Winters series is given oldest first, as a time
series must be (PHPA's pruning re-sorts its stored history newest first, which its docs do not describe).

Pure: no I/O, no clock.
"""

from __future__ import annotations

import functools
import math
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "HoltWintersModel",
    "LinearModel",
    "holt_winters_weights",
    "linear_weights",
]


def _ceil_counts(values: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    return np.ceil(np.round(values, 9)).astype(np.int64)


@functools.lru_cache(maxsize=256)
def _linear_weights_cached(n: int, look_ahead_s: float, step_s: float) -> npt.NDArray[np.float64]:
    # evaluation i (0 = oldest of n) was made (n - 1 - i) steps before now
    x = look_ahead_s + step_s * (n - 1 - np.arange(n, dtype=np.float64))
    design = np.column_stack([np.ones(n), x])
    weights: npt.NDArray[np.float64] = np.linalg.pinv(design)[0]  # the intercept row: the prediction at x = 0
    weights.setflags(write=False)
    return weights


def linear_weights(n: int, *, look_ahead_s: float, step_s: float) -> npt.NDArray[np.float64]:
    """Weights w such that PHPA's linear regression over n evaluations, one per step, predicts ceil(w · history)."""
    if n < 2:
        raise ValueError("linear regression needs at least two evaluations")
    weights: npt.NDArray[np.float64] = _linear_weights_cached(n, float(look_ahead_s), float(step_s))
    return weights


@dataclass(frozen=True)
class LinearModel:
    """PHPA `type: Linear` with `linear: {lookAhead, historySize}` (lookAhead in milliseconds, as PHPA has it)."""

    look_ahead_ms: int = 10000
    history_size: int = 6

    def history_after_prune(self, stored: int) -> int:
        """How many evaluations remain after PHPA prunes (it prunes after predicting)."""
        return min(stored, self.history_size)

    def predict(self, histories: npt.NDArray[np.float64], *, step_s: float) -> npt.NDArray[np.int64]:
        """Predictions for each row of `histories` [rows, n] (oldest first, one evaluation per step)."""
        n = histories.shape[1]
        if n == 0:
            return np.zeros(histories.shape[0], dtype=np.int64)
        if n == 1:
            return histories[:, 0].astype(np.int64)
        w = linear_weights(n, look_ahead_s=self.look_ahead_ms / 1000.0, step_s=step_s)
        return _ceil_counts(histories @ w)


def _heuristic_initial_states(
    y: npt.NDArray[np.float64], m: int, k_cycles: int, n_obs: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """statsmodels' `_initialization_heuristic` (additive trend and season) for every column of y [time, cols],
    as for a series of `n_obs` values (k_cycles whole seasons may be more than there are)."""
    series = y[: min(m * k_cycles, n_obs)]
    cols = series.shape[1]
    # centred moving average of width m (pandas rolling(m, center=True)), then a 2-MA for even m
    csum = np.vstack([np.zeros((1, cols)), np.cumsum(series, axis=0)])
    ma = np.full(series.shape, np.nan)
    n = series.shape[0]
    offset = m // 2  # pandas puts the label of an even window one past its middle
    for i in range(n):
        lo = i - offset
        hi = lo + m
        if lo >= 0 and hi <= n:
            ma[i] = (csum[hi] - csum[lo]) / m
    if m % 2 == 0:
        shifted = np.full(series.shape, np.nan)
        shifted[:-1] = ma[1:]
        ma2 = np.full(series.shape, np.nan)
        ma2[1:] = (shifted[1:] + shifted[:-1]) / 2.0
        ma = ma2
    detrended = np.full((m * k_cycles, cols), np.nan)
    detrended[:n] = series - ma
    with warnings.catch_warnings():
        # a season position with no detrended value would be NaN; PHPA's length checks rule that out
        warnings.simplefilter("ignore", RuntimeWarning)
        seasonal = np.nanmean(detrended.reshape(k_cycles, m, cols), axis=0)
    seasonal = seasonal - seasonal.mean(axis=0, keepdims=True)
    valid = ~np.isnan(ma[:, 0])
    trend_values = ma[valid][:10]
    exog = np.column_stack([np.ones(10), np.arange(10) + 1.0])
    beta = np.linalg.pinv(exog) @ trend_values
    return beta[0], beta[1], seasonal


@functools.lru_cache(maxsize=64)
def _holt_winters_weight_table(
    m: int, k_cycles: int, init_len: int, max_len: int, alpha: float, beta: float, gamma: float
) -> npt.NDArray[np.float64]:
    """Row L holds the weights for a history of length L (meaningful for the lengths that share this
    initialization: the same k_cycles and the same number of values read by it)."""
    eye = np.eye(max_len)
    level0, trend0, season0 = _heuristic_initial_states(eye, m, k_cycles, init_len)
    table = np.zeros((max_len + 1, max_len))
    level, trend = level0.copy(), trend0.copy()
    seasons = [season0[j].copy() for j in range(m)]  # seasons[i] is s[i] in statsmodels' indexing
    for i in range(1, max_len + 1):
        prev_level, prev_trend = level, trend
        s_old = seasons[i - 1]
        level = alpha * eye[i - 1] - alpha * s_old + (1 - alpha) * (prev_level + prev_trend)
        trend = beta * (level - prev_level) + (1 - beta) * prev_trend
        seasons.append(gamma * eye[i - 1] - gamma * (prev_level + prev_trend) + (1 - gamma) * s_old)
        # one step ahead after i observations: l[i] + b[i] + s[i]
        table[i] = level + trend + seasons[i]
    table.setflags(write=False)
    return table


def _k_cycles(n: int, m: int) -> int:
    min_obs = 10 + 2 * (m // 2)
    return max(min(5, n // m), math.ceil(min_obs / m))


def holt_winters_weights(
    n: int, *, seasonal_periods: int, alpha: float, beta: float, gamma: float
) -> npt.NDArray[np.float64]:
    """Weights w such that statsmodels' additive Holt-Winters (PHPA's settings) forecasts w · series one step ahead."""
    m = seasonal_periods
    if n < 2 * m or n < 10 + 2 * (m // 2):
        raise ValueError(f"Holt-Winters needs at least max(2m, 10 + 2(m // 2)) values, got {n} for m={m}")
    k = _k_cycles(n, m)
    max_len = max(n, 6 * m)  # one table serves every length PHPA's pruning produces
    table = _holt_winters_weight_table(m, k, min(m * k, n), max_len, float(alpha), float(beta), float(gamma))
    return table[n, :n]


@dataclass(frozen=True)
class HoltWintersModel:
    """PHPA `type: HoltWinters` with additive trend and season (`holtWinters: {alpha, beta, gamma, seasonalPeriods,
    storedSeasons, trend: add, seasonal: add}`)."""

    alpha: float = 0.9
    beta: float = 0.9
    gamma: float = 0.9
    seasonal_periods: int = 6
    stored_seasons: int = 4

    def history_after_prune(self, stored: int) -> int:
        """PHPA keeps whole seasons: with more than storedSeasons of them stored, the oldest are dropped."""
        m = self.seasonal_periods
        extra = stored // m - self.stored_seasons
        return stored - extra * m if extra > 0 else stored

    def ready(self, n: int) -> bool:
        m = self.seasonal_periods
        return n >= 2 * m and n >= 10 + 2 * (m // 2)

    def predict(self, histories: npt.NDArray[np.float64], *, step_s: float) -> npt.NDArray[np.int64]:
        """Predictions for each row of `histories` [rows, n]; 0 (no prediction) while the history is too short."""
        n = histories.shape[1]
        if not self.ready(n):
            return np.zeros(histories.shape[0], dtype=np.int64)
        w = holt_winters_weights(
            n, seasonal_periods=self.seasonal_periods, alpha=self.alpha, beta=self.beta, gamma=self.gamma
        )
        return _ceil_counts(histories @ w)
