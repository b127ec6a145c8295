"""Online calibration of forecast headroom: a rolling conformal quantile, corrected by realized saturation.

The predictive policy asks `provision(...)` for the capacity to hold for a forecast. Two scores are supported:

- `mode="ratio"`: scores (realized peak + offset) / (forecast peak + offset); capacity is
  (forecast peak + offset) × q - offset, q the (1 - risk) quantile of recent scores on a rolling window
  (split-conformal; an offset damps the ratios of near-zero forecasts, and `max_headroom` bounds them);
- `mode="spread"`: conformalized quantile regression (Romano, Patterson & Candès 2019): scores
  (realized peak - centre) / spread, where centre is the median forecast's peak and spread the distance from it to
  the top quantile's peak; capacity is centre + q × spread. This keeps the forecaster's own sense of when the
  future is uncertain (a wide top quantile before a likely burst) and only rescales it.

Both are then multiplied by
a correction that follows the realized saturation indicator (quantile tracking, as in conformal PID control,
  Angelopoulos, Candès & Tibshirani 2023): log c <- log c + rate × (saturated - risk). A saturated step raises the
  headroom, quiet steps lower it slowly, so the long-run share of saturated steps approaches the chosen risk even
  when the window's ratios are biased (they are: observations while saturated are censored).

Forecasts made right after a saturated step are scored in a separate window (Mondrian conformal prediction, one
category per kind of input): their input was censored (a saturated pod cannot report more than it has), so their
errors are of another size, and a sudden burst that was missed once is then met with the surge that such bursts have
needed before, not with the ordinary headroom. Censored scores (the outcome itself saturated) are recorded as at least
their observed value times `censored_bump`.

Pure: no I/O, no clock. Every update returns a new state; arrays inside a state are never written after creation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["Calibration", "CalibrationState"]


def _empty() -> npt.NDArray[np.float64]:
    return np.zeros(0, dtype=np.float64)


@dataclass(frozen=True)
class CalibrationState:
    """Recent log-scores (a ring buffer, oldest overwritten first) and the log of the saturation correction."""

    log_ratios: npt.NDArray[np.float64] = field(default_factory=_empty)
    position: int = 0
    correction: float = 0.0
    # scores of forecasts made right after a saturated step
    surge_ratios: npt.NDArray[np.float64] = field(default_factory=_empty)
    surge_position: int = 0


@dataclass(frozen=True)
class Calibration:
    """Settings of the calibrator (all have defaults that work for one-minute control steps)."""

    risk: float = 0.01  # target share of saturated steps; the policy's one risk knob
    mode: Literal["ratio", "spread"] = "ratio"  # how a forecast is scored against its outcome (module docstring)
    min_spread: float = 0.1  # spread mode: the smallest spread (cores) a score is divided by
    window: int = 1440  # scores kept (a day of minutes)
    min_samples: int = 30  # fewer scores than this: no headroom estimate yet
    offset: float = 0.0  # ratio mode: added to both peaks before their ratio (cores; about one pod's request works)
    adapt_rate: float = 0.05  # step of the log correction per saturated step
    max_correction: float = math.log(2.0)  # the correction stays within [1/2, 2]
    censored_bump: float = 1.1  # a censored score counts as at least this times its observed value
    max_headroom: float = 10.0  # a sanity cap on the multiplier
    surge_window: int = 240  # scores kept for forecasts made right after a saturated step
    surge_min_samples: int = 30  # fewer: those forecasts use the ordinary window

    def __post_init__(self) -> None:
        if not 0.0 < self.risk < 1.0:
            raise ValueError(f"risk must be in (0, 1), got {self.risk}")
        if self.window < self.min_samples or self.min_samples < 1:
            raise ValueError("calibration window must hold at least min_samples >= 1 scores")
        if self.offset < 0:
            raise ValueError("offset must not be negative")
        if self.mode not in ("ratio", "spread"):
            raise ValueError(f"calibration mode must be ratio or spread, not {self.mode!r}")
        if self.min_spread <= 0:
            raise ValueError("min_spread must be positive")

    def quantile(self, state: CalibrationState, *, after_saturation: bool = False) -> float | None:
        """The conformal quantile of the scores (log-ratios or spreads), or None while there are too few.

        `after_saturation`: the forecast was made from a history whose last step was saturated.
        """
        scores = state.log_ratios
        if after_saturation and state.surge_ratios.shape[0] >= self.surge_min_samples:
            scores = state.surge_ratios
        n = scores.shape[0]
        if n < self.min_samples and scores is state.log_ratios:
            return None
        # the ceil((n + 1)(1 - risk))-th smallest of n scores (the largest when that exceeds n)
        k = min(n, math.ceil((n + 1) * (1.0 - self.risk)))
        return float(np.partition(scores, k - 1)[k - 1])

    def headroom(self, state: CalibrationState, *, after_saturation: bool = False) -> float | None:
        """Ratio mode: the multiplier for (forecast peak + offset); spread mode: the multiple of the spread before
        the saturation correction. None while there are too few scores."""
        q = self.quantile(state, after_saturation=after_saturation)
        if q is None:
            return None
        if self.mode == "spread":
            return q
        return min(math.exp(q + state.correction), self.max_headroom)

    def provision(
        self, state: CalibrationState, *, peak: float, spread: float = 0.0, after_saturation: bool = False
    ) -> float | None:
        """Capacity (cores) to hold for a forecast peak (and, in spread mode, its spread), or None if uncalibrated."""
        headroom = self.headroom(state, after_saturation=after_saturation)
        if headroom is None:
            return None
        if self.mode == "ratio":
            return max(0.0, (peak + self.offset) * headroom - self.offset)
        capacity = (peak + headroom * max(spread, self.min_spread)) * math.exp(state.correction)
        return max(0.0, min(capacity, (peak + self.min_spread) * self.max_headroom))

    def update(
        self,
        state: CalibrationState,
        *,
        realized: float,
        forecast: float,
        censored: bool,
        saturated: bool,
        after_saturation: bool = False,
        spread: float = 0.0,
    ) -> CalibrationState:
        """Record one realized peak against the forecast peak (and spread) made for it, and one saturation outcome.

        `after_saturation` says which window the score belongs to (see `quantile`).
        """
        correction = state.correction + self.adapt_rate * ((1.0 if saturated else 0.0) - self.risk)
        correction = min(max(correction, -self.max_correction), self.max_correction)
        new = replace(state, correction=correction)
        if math.isfinite(forecast) and math.isfinite(realized) and forecast >= 0 and realized >= 0:
            if censored:
                realized *= self.censored_bump
            if self.mode == "spread":
                value = (realized - forecast) / max(spread if math.isfinite(spread) else 0.0, self.min_spread)
            else:
                value = math.log(max((realized + self.offset) / max(forecast + self.offset, 1e-9), 1e-9))
            if after_saturation:
                ratios, position = _push(state.surge_ratios, state.surge_position, value, self.surge_window)
                new = replace(new, surge_ratios=ratios, surge_position=position)
            else:
                ratios, position = _push(state.log_ratios, state.position, value, self.window)
                new = replace(new, log_ratios=ratios, position=position)
        return new


def _push(
    ratios: npt.NDArray[np.float64], position: int, value: float, window: int
) -> tuple[npt.NDArray[np.float64], int]:
    """A copy of the ring buffer with `value` added (the oldest overwritten once full)."""
    if ratios.shape[0] < window:
        return np.append(ratios, value), position
    out = ratios.copy()
    out[position] = value
    return out, (position + 1) % window
