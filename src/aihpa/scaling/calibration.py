"""Online calibration of forecast headroom: a rolling conformal quantile, corrected by realized saturation.

The predictive policy asks `provision(...)` for the capacity to hold for a forecast. Two scores are supported:

- `mode="ratio"`: scores (realized peak + offset) / (forecast peak + offset); capacity is
  (forecast peak + offset) × q - offset, q the (1 - risk) quantile of recent scores on a rolling window
  (split-conformal; an offset damps the ratios of near-zero forecasts, and `max_headroom` bounds them);
- `mode="spread"`: conformalized quantile regression (Romano, Patterson & Candès 2019): scores
  (realized peak - centre) / spread, where centre is the median forecast's peak and spread the distance from it to
  the top quantile's peak; capacity is centre + q × spread. This keeps the forecaster's own sense of when the
  future is uncertain (a wide top quantile before a likely burst) and only rescales it;
- `mode="additive"`: scores (realized peak - forecast peak) / offset, errors in units of the offset whatever the
  level; capacity is forecast peak + q × offset. For workloads whose errors are steps of a few cores at any level.
  The policy may pass a different offset with each decision (locally weighted conformal prediction: a unit that
  follows the recent volatility); each score is divided by the unit of the decision it scores.

The capacity (in additive mode, the headroom above the forecast) is then multiplied by a correction that follows
the realized saturation indicator (quantile tracking, as in conformal PID control, Angelopoulos, Candès & Tibshirani
2023): log c <- log c + rate × (saturated - risk). A saturated step raises the headroom, quiet steps lower it
slowly, so the long-run share of saturated steps approaches the chosen risk even when the window's ratios are biased
(they are: observations while saturated are censored). Steps that no calibrated capacity served (the cold start,
when one pod meets the first load) leave the correction alone: they say nothing about the headroom, and a
correction raised by them would take a day of quiet steps to come back down.

Forecasts made right after a saturated step are scored in a separate window (Mondrian conformal prediction, one
category per kind of input): their input was censored (a saturated pod cannot report more than it has), so their
errors are of another size, and a sudden burst that was missed once is then met with the surge that such bursts have
needed before, not with the ordinary headroom. Censored scores (the outcome itself saturated) are recorded as at least
their observed value times `censored_bump`.

Ordinary forecasts are scored by context as well (Mondrian categories with back-off): whether the decision fell on a
"hot" phase of a recurring cycle, whether it came soon after the last surprise, and whether usage stood near the top of
its recent range. The errors of a forecaster are not exchangeable across these contexts: cron-style bursts land on the
same minute of a 30- or 60-minute cycle, steps up cluster in time and rarely start from the top of the range. A
context's own scores give its headroom once there are enough of them for a finite conformal quantile at the risk;
until then the next coarser context (the last feature dropped) stands in, and finally the whole window. The cycle is
found online: for each candidate period the surprises (scores above the window's `surprise_level` quantile) are
counted per phase with exponential forgetting; the period whose most surprising phases catch the largest share of
surprises for the smallest share of phases (a Kolmogorov-Smirnov-like gain) is used when that gain is clear.

Pure: no I/O, no clock. Every update returns a new state; arrays inside a state are never written after creation.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from aihpa.scaling.evolve import evolve

__all__ = ["Calibration", "CalibrationState", "pack_context"]


#: Decayed counts are kept in single precision, and the scores' windows in half precision: a calibration state is
#: kept for every workload (a day or three of scores each, 5,760 by default: most of a workload's memory, tens of
#: thousands of workloads), and a half holds a score to 0.05% of itself (11 bits), far finer than one pod of headroom.
#: A score beyond a half's range (65,504, a forecast off by that many units) is kept at its end.
SCORE_DTYPE = np.float32
WINDOW_DTYPE = np.float16
_WINDOW_MAX = float(np.finfo(WINDOW_DTYPE).max)


def _empty() -> npt.NDArray[np.float32]:
    return np.zeros(0, dtype=SCORE_DTYPE)


def _empty_window() -> npt.NDArray[np.float16]:
    return np.zeros(0, dtype=WINDOW_DTYPE)


def _empty_codes() -> npt.NDArray[np.uint8]:
    return np.zeros(0, dtype=np.uint8)


def _empty_mask() -> npt.NDArray[np.bool_]:
    return np.zeros(0, dtype=np.bool_)


#: Context features of a score, in the order they are dropped last to first when a context has too few scores: (hot
#: phase, recency of the last surprise, level in range, rising, volatile).
CONTEXT_FEATURES = 5
#: A context: one small integer per feature.
Context = tuple[int, int, int, int, int]
NO_CONTEXT: Context = (0, 0, 0, 0, 0)
#: A context is kept as one byte per score: each feature's bits (hot 1, recency 2, level 2, rising 1, volatile 1), so
#: at most 3 recency and 3 level bins. `_PREFIX_MASKS[d]` keeps the bits of the first d features.
_FEATURE_BITS = (1, 2, 2, 1, 1)
_PREFIX_MASKS = tuple((1 << sum(_FEATURE_BITS[:d])) - 1 for d in range(CONTEXT_FEATURES + 1))


def pack_context(context: Context) -> int:
    """A context as the byte it is kept as: each feature at the sum of the bits before it (`_FEATURE_BITS`)."""
    hot, recent, level, rising, volatile = context
    return hot | recent << 1 | level << 3 | rising << 5 | volatile << 6


@dataclass(frozen=True)
class CalibrationState:
    """Recent log-scores (a ring buffer, oldest overwritten first) and the log of the saturation correction."""

    log_ratios: npt.NDArray[np.floating] = field(default_factory=_empty_window)
    position: int = 0
    correction: float = 0.0
    # scores of forecasts made right after a saturated step
    surge_ratios: npt.NDArray[np.floating] = field(default_factory=_empty_window)
    surge_position: int = 0
    # the context of each score in log_ratios (same ring positions), packed (`pack_context`)
    contexts: npt.NDArray[np.uint8] = field(default_factory=_empty_codes)
    # scores recorded since the last surprise (a score above the window's surprise_level quantile)
    since_surprise: int = 1 << 30
    # the cycle detector: decayed surprise and score counts per phase of every candidate period (concatenated)
    phase_surprises: npt.NDArray[np.float32] = field(default_factory=_empty)
    phase_scores: npt.NDArray[np.float32] = field(default_factory=_empty)
    scored: int = 0
    # the period in use (0: none) and its hot phases
    period: int = 0
    hot: npt.NDArray[np.bool_] = field(default_factory=_empty_mask)


@dataclass(frozen=True)
class Calibration:
    """Settings of the calibrator (all have defaults that work for one-minute control steps)."""

    risk: float = 0.01  # target share of saturated steps; the policy's one risk knob
    # how a forecast is scored against its outcome (module docstring)
    mode: Literal["ratio", "spread", "additive"] = "ratio"
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
    contextual: bool = True  # score ordinary forecasts by context (module docstring)
    surprise_level: float = 0.9  # a score above this quantile of the window is a surprise (for recency)
    cycle_level: float = 0.98  # the cycle detector counts the scores above this quantile of the window
    # bins of "scores since the last surprise" (none by default: on the shared traces it helped the bursty Bitbrains
    # trace a little and cost the smooth ones more)
    recent_steps: tuple[int, ...] = ()
    # where usage stands in its recent range (0 bottom, 1 top), binned at these shares: the level context's code is
    # the number of them at or below the level (by default one bin, "high", from 80% of the range up)
    level_bins: tuple[float, ...] = (0.8,)
    # usage that rose by this share of its recent range since the sample before is "rising" (inf: no such context)
    rise_level: float = math.inf
    # a mean step-to-step change (over the policy's recent samples) of this share of the range is "volatile"
    volatile_level: float = math.inf
    periods: tuple[int, ...] = (15, 30, 60, 120)  # candidate cycles, in control steps
    phase_memory: float = 5760.0  # the cycle detector forgets with this time constant (scores)
    phase_lift: float = 3.0  # a phase is hot when its surprise rate is this many times the overall rate
    phase_min_gain: float = 0.3  # a cycle is used when its hot phases catch this much more than their share
    phase_every: int = 60  # scores between re-selections of the cycle
    # a prior: scores learned offline (ascending quantiles of the scores the same scoring recorded on other workloads).
    # Until the window holds `context_min_samples` scores of its own, evenly spaced picks from it fill the gap, fewer
    # with every score observed, so a new workload is calibrated from its first forecast and its own errors take
    # over within a day's first hours (a Bayesian prior of that many pseudo-scores, in effect)
    prior: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.risk < 1.0:
            raise ValueError(f"risk must be in (0, 1), got {self.risk}")
        if self.window < self.min_samples or self.min_samples < 1:
            raise ValueError("calibration window must hold at least min_samples >= 1 scores")
        if self.offset < 0:
            raise ValueError("offset must not be negative")
        if self.mode not in ("ratio", "spread", "additive"):
            raise ValueError(f"calibration mode must be ratio, spread or additive, not {self.mode!r}")
        if self.min_spread <= 0:
            raise ValueError("min_spread must be positive")
        if len(self.recent_steps) > 3 or len(self.level_bins) > 3:
            raise ValueError("at most 3 recent_steps and 3 level_bins (a context is kept in one byte)")
        if any(p < 2 for p in self.periods):
            raise ValueError("candidate periods must be at least 2 steps")
        if any(not math.isfinite(x) for x in self.prior) or any(a > b for a, b in itertools.pairwise(self.prior)):
            raise ValueError("a calibration prior must be finite scores in ascending order")

    @property
    def unit(self) -> float:
        """Additive mode: the size (cores) that scores are counted in."""
        return max(self.offset, self.min_spread)

    @property
    def context_min_samples(self) -> int:
        """The fewest scores that give a finite conformal quantile at the risk (and at least min_samples)."""
        return max(self.min_samples, math.ceil((1.0 - self.risk) / self.risk - 1e-9))

    def context(
        self,
        state: CalibrationState,
        *,
        step: int,
        level: float | None,
        rise: float | None = None,
        volatility: float | None = None,
    ) -> Context:
        """The context of a decision at control step `step`, with usage at `level` (0..1) of its recent range, `rise`
        the last change of usage and `volatility` its mean recent change (both as shares of that range)."""
        if not self.contextual:
            return NO_CONTEXT
        hot = int(state.period > 0 and bool(state.hot[step % state.period]))
        recent = sum(1 for b in self.recent_steps if state.since_surprise >= b)
        level_code = 0 if level is None else sum(1 for b in self.level_bins if level >= b)
        rising = int(rise is not None and rise >= self.rise_level)
        volatile = int(volatility is not None and volatility >= self.volatile_level)
        return (hot, recent, level_code, rising, volatile)

    def _context_scores(self, state: CalibrationState, context: Context) -> npt.NDArray[np.floating] | None:
        """The scores of the finest context that has enough of them (None: only the whole window has)."""
        codes, need = state.contexts, self.context_min_samples
        if codes.shape[0] != state.log_ratios.shape[0] or codes.shape[0] < need:
            return None
        code = pack_context(context)
        # the bits any score or this context has set: a feature that none has (a context setting not in use)
        # matches as the coarser context does, which has been or will be tried anyway
        present = int(np.bitwise_or.reduce(codes)) | code
        for depth in range(CONTEXT_FEATURES, 0, -1):
            mask = _PREFIX_MASKS[depth]
            if depth < CONTEXT_FEATURES and not (_PREFIX_MASKS[depth + 1] & ~mask & present):
                continue  # the same scores as the finer context just tried (too few)
            match: npt.NDArray[np.bool_] = (codes & mask) == (code & mask)
            if int(np.count_nonzero(match)) >= need:
                return state.log_ratios[match]
        return None

    def with_prior(self, scores: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
        """`scores` and, while they are fewer than `context_min_samples`, that many less evenly spaced picks from the
        prior (its middle first: one pick is its median, all of them span it)."""
        missing = self.context_min_samples - scores.shape[0]
        if not self.prior or missing <= 0:
            return scores
        size = len(self.prior)
        picks = np.minimum(((np.arange(missing) + 0.5) * size / missing).astype(np.int64), size - 1)
        return np.concatenate([scores, np.asarray(self.prior, dtype=scores.dtype)[picks]])

    def calibrated(self, state: CalibrationState) -> bool:
        """Whether the window holds enough scores of its own for a finite conformal quantile at the risk."""
        return bool(state.log_ratios.shape[0] >= self.context_min_samples)

    def quantile(
        self, state: CalibrationState, *, after_saturation: bool = False, context: Context | None = None
    ) -> float | None:
        """The conformal quantile of the scores (log-ratios or spreads), or None while there are too few.

        `after_saturation`: the forecast was made from a history whose last step was saturated; `context`: the
        decision's context (module docstring), None for the whole window.
        """
        scores = state.log_ratios
        whole = True
        if after_saturation and state.surge_ratios.shape[0] >= self.surge_min_samples:
            scores, whole = state.surge_ratios, False
        elif context is not None and self.contextual:
            chosen = self._context_scores(state, context)
            if chosen is not None:
                scores, whole = chosen, False
        if whole:
            scores = self.with_prior(scores)
        n = scores.shape[0]
        if n < self.min_samples and whole:
            return None
        if n == 0:
            return None
        # the ceil((n + 1)(1 - risk))-th smallest of n scores (the largest when that exceeds n)
        k = min(n, math.ceil((n + 1) * (1.0 - self.risk)))
        return float(np.partition(scores, k - 1)[k - 1])

    def headroom(
        self, state: CalibrationState, *, after_saturation: bool = False, context: Context | None = None
    ) -> float | None:
        """Ratio mode: the multiplier for (forecast peak + offset); spread and additive modes: the multiple of the
        spread (of the offset) before the saturation correction. None while there are too few scores."""
        q = self.quantile(state, after_saturation=after_saturation, context=context)
        if q is None:
            return None
        if self.mode != "ratio":
            return q
        return min(math.exp(q + state.correction), self.max_headroom)

    def provision(
        self,
        state: CalibrationState,
        *,
        peak: float,
        spread: float = 0.0,
        after_saturation: bool = False,
        context: Context | None = None,
    ) -> float | None:
        """Capacity (cores) to hold for a forecast peak (and, in spread mode, its spread), or None if uncalibrated."""
        headroom = self.headroom(state, after_saturation=after_saturation, context=context)
        if headroom is None:
            return None
        if self.mode == "ratio":
            return max(0.0, (peak + self.offset) * headroom - self.offset)
        if self.mode == "additive":
            extra = headroom * self.unit
            if extra > 0:  # the correction scales the headroom, not the forecast under it
                extra *= math.exp(state.correction)
            return max(0.0, min(peak + extra, (peak + self.unit) * self.max_headroom))
        capacity = (peak + headroom * max(spread, self.min_spread)) * math.exp(state.correction)
        return max(0.0, min(capacity, (peak + self.min_spread) * self.max_headroom))

    def update(
        self,
        state: CalibrationState,
        *,
        realized: float,
        forecast: float,
        censored: bool,
        saturated: bool | None,
        after_saturation: bool = False,
        spread: float = 0.0,
        context: Context = NO_CONTEXT,
        step: int | None = None,
    ) -> CalibrationState:
        """Record one realized peak against the forecast peak (and spread) made for it, and one saturation outcome
        (None: the step was not served by a calibrated capacity, as during the cold start; the correction stays).

        `after_saturation` says which window the score belongs to (see `quantile`); `context` and `step` are the
        context and control step of the decision that made the forecast (for contexts and the cycle detector).
        """
        new = state
        if saturated is not None:
            correction = state.correction + self.adapt_rate * ((1.0 if saturated else 0.0) - self.risk)
            correction = min(max(correction, -self.max_correction), self.max_correction)
            new = evolve(state, correction=correction)
        if math.isfinite(forecast) and math.isfinite(realized) and forecast >= 0 and realized >= 0:
            if censored:
                realized *= self.censored_bump
            if self.mode == "spread":
                value = (realized - forecast) / max(spread if math.isfinite(spread) else 0.0, self.min_spread)
            elif self.mode == "additive":
                value = (realized - forecast) / self.unit
            else:
                value = math.log(max((realized + self.offset) / max(forecast + self.offset, 1e-9), 1e-9))
            if self.contextual:
                new = self._observe_surprise(new, value, step)
            value = min(max(value, -_WINDOW_MAX), _WINDOW_MAX)  # as the window keeps it (`WINDOW_DTYPE`)
            if after_saturation:
                ratios, position = ring_push(state.surge_ratios, state.surge_position, value, self.surge_window)
                new = evolve(new, surge_ratios=ratios, surge_position=position)
            else:
                codes = state.contexts
                if codes.shape[0] != state.log_ratios.shape[0]:  # no contexts yet: start them now
                    codes = np.zeros(state.log_ratios.shape[0], dtype=np.uint8)
                ratios, position = ring_push(state.log_ratios, state.position, value, self.window)
                codes, _ = ring_push(codes, state.position, pack_context(context), self.window)  # same positions
                new = evolve(new, log_ratios=ratios, position=position, contexts=codes)
        return new

    def _observe_surprise(self, state: CalibrationState, value: float, step: int | None) -> CalibrationState:
        """Count a score for the surprise recency and the cycle detector; re-select the cycle now and then."""
        scores = state.log_ratios
        surprise = rare = False
        n = scores.shape[0]
        if n >= self.min_samples:
            ks = [min(n, max(1, math.ceil(n * level))) - 1 for level in (self.surprise_level, self.cycle_level)]
            # value is above the (k+1)-th smallest score exactly when more than k scores are below it: one count
            # answers both levels without sorting the window (compared in double precision, as the scores' values)
            below = int(np.count_nonzero(scores < np.float64(value)))
            surprise, rare = below > ks[0], below > ks[1]
        since = 0 if surprise else min(state.since_surprise + 1, 1 << 30)
        if step is None or not self.periods:
            return evolve(state, since_surprise=since)
        size = sum(self.periods)
        counts, hits = state.phase_scores, state.phase_surprises
        if counts.shape[0] != size:
            counts, hits = np.zeros(size, dtype=SCORE_DTYPE), np.zeros(size, dtype=SCORE_DTYPE)
        keep = 1.0 - 1.0 / self.phase_memory
        counts, hits = counts * keep, hits * keep
        offset = 0
        for period in self.periods:
            counts[offset + step % period] += 1.0
            if rare:
                hits[offset + step % period] += 1.0
            offset += period
        new = evolve(state, since_surprise=since, phase_scores=counts, phase_surprises=hits, scored=state.scored + 1)
        if new.scored % self.phase_every == 0:
            new = self._select_period(new)
        return new

    @functools.cached_property
    def _phase_layout(self) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp], npt.NDArray[np.float64]]:
        """Where each candidate period's phases start in the concatenated counts, which period each phase is of, and
        the fewest surprises that tell each period's cycle from chance (4 sqrt(period))."""
        sizes = np.asarray(self.periods, dtype=np.intp)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        return starts, np.repeat(np.arange(len(self.periods)), sizes), 4.0 * np.sqrt(sizes.astype(np.float64))

    def _select_period(self, state: CalibrationState) -> CalibrationState:
        """The candidate period whose hot phases catch the largest share of surprises for the smallest share of
        phases (the module docstring), all periods at once: every workload's calibration re-selects at the same
        step when their scores began together, thousands in one model step."""
        counts, hits = state.phase_scores, state.phase_surprises
        starts, owner, least = self._phase_layout
        # per period: its scores and surprises (each segment summed as its own slice would be), its emptiest phase
        totals, total_hits = np.add.reduceat(counts, starts), np.add.reduceat(hits, starts)
        # each phase needs a few scores, and the surprises must be many enough to tell a cycle from chance
        usable = (totals > 0) & (total_hits >= least) & (np.minimum.reduceat(counts, starts) >= 5)
        if not usable.any():
            return evolve(state, period=0, hot=_empty_mask())
        # the overall surprise rate, a double rounded to the counts' precision as a float times them would be
        base = (total_hits.astype(np.float64) / np.where(usable, totals, 1.0)).astype(counts.dtype)
        expected = counts * base[owner]
        # hot: a surprise rate well above the overall one, and more surprises than chance would put there
        hot = (hits >= self.phase_lift * expected) & (hits >= expected + 3.0 * np.sqrt(expected))
        best_gain, best_period, best_hot = self.phase_min_gain, 0, _empty_mask()
        for i in np.flatnonzero(usable):
            start, period = int(starts[i]), self.periods[i]
            mask = hot[start : start + period]
            gain = (float(hits[start : start + period][mask].sum()) / float(total_hits[i])
                    - float(counts[start : start + period][mask].sum()) / float(totals[i]))
            if gain > best_gain + 1e-9:
                best_gain, best_period, best_hot = gain, period, mask
        return evolve(state, period=best_period, hot=best_hot)


def ring_push(ring: npt.NDArray[Any], position: int, value: Any, window: int) -> tuple[npt.NDArray[Any], int]:
    """A copy of the ring buffer (entries along its first axis) with `value` added, the oldest overwritten once
    full; and the next position to overwrite."""
    if ring.shape[0] < window:
        return np.concatenate([ring, np.asarray(value, dtype=ring.dtype)[None, ...]]), position
    out = ring.copy()
    out[position] = value
    return out, (position + 1) % window
