"""From raw series to model inputs: windows, per-series scaling by recent level, calendar and seasonal features.

One function, `features`, builds inputs for training (many positions of one long series) and for inference (the end
of many short histories) alike, so the two can never drift apart. Everything here is numpy on the host (the model
runs jitted in training, in NumPy when serving). Pure: no I/O, no wall clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from aihpa.forecast.config import SUMMARY_FEATURES, ModelConfig

__all__ = [
    "N_FEATURES",
    "Inputs",
    "Series",
    "features",
    "fill_nonfinite",
    "inference_inputs",
    "season_period",
    "series_batch",
    "training_positions",
]

#: Per-step input features: level ratio, sin/cos time of day, sin/cos day of week, calendar flag, log step size.
N_FEATURES = 7
_DAY = 86400.0
_TARGET_CLIP = 20.0
_WEEK = 7 * _DAY

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Inputs:
    """A batch of model inputs. `level` turns the model's ratios back into the series' units."""

    seq: F32  # [B, window, N_FEATURES]
    # [B, context_features]: last day's values around the horizon and a validity flag, then the same one dominant
    # short period ago (when the model has a period search)
    season: F32
    level: F32  # [B]


@dataclass(frozen=True)
class Series:
    """One training series: values at one step per sample, with absolute times when known."""

    name: str
    values: F32
    step_s: float | None
    # absolute Unix seconds per sample, or None (relative time does not say the time of day)
    times: F64 | None = None


def season_period(step_s: float | None, cfg: ModelConfig) -> int | None:
    """Steps in one day, when the step size is known and the seasonal context supports it."""
    if step_s is None or not np.isfinite(step_s) or step_s <= 0:
        return None
    period = round(_DAY / step_s)
    if period < cfg.horizon or period > cfg.max_season:
        return None
    return period


def features(
    get: Callable[[npt.NDArray[np.int64]], F32],
    *,
    available: I64,
    times_t: F64,
    step_s: float | None,
    cfg: ModelConfig,
) -> Inputs:
    """Model inputs for B series, each "now" at its own position t.

    `get(offsets)` returns float32 [B, len(offsets)] with each series' values at t + offset (offsets <= 0 are the
    past); offsets reaching before a series' start must already be clamped by `get`. `available[b]` is how many
    points series b has up to and including t. `times_t[b]` is the absolute time of t in seconds, NaN when unknown.
    """
    w = cfg.window
    hist = get(np.arange(-w + 1, 1, dtype=np.int64))
    level = hist[:, -cfg.level_window :].mean(axis=1)
    # A series that is (nearly) zero at the end of the window: fall back to the window's own scale, then to 1e-6,
    # so ratios stay finite and the forecast is about zero.
    floor = np.maximum(np.abs(hist).mean(axis=1) * 0.05, 1e-6)
    level = np.maximum(level, floor).astype(np.float32)
    inv = (1.0 / level)[:, None]
    ratio = np.clip(hist * inv, 0.0, cfg.input_clip)

    b = hist.shape[0]
    seq = np.zeros((b, w, N_FEATURES), dtype=np.float32)
    seq[:, :, 0] = ratio
    known = np.isfinite(times_t)
    if known.any() and step_s is not None:
        t = times_t[known][:, None] + (np.arange(w, dtype=np.float64) - (w - 1))[None, :] * step_s
        tod = 2 * np.pi * (np.mod(t, _DAY) / _DAY)
        # the Unix epoch was a Thursday: shift so that Monday 00:00 is phase 0
        dow = 2 * np.pi * (np.mod(t + 3 * _DAY, _WEEK) / _WEEK)
        seq[known, :, 1] = np.sin(tod)
        seq[known, :, 2] = np.cos(tod)
        seq[known, :, 3] = np.sin(dow)
        seq[known, :, 4] = np.cos(dow)
        seq[known, :, 5] = 1.0
    if step_s is not None and step_s > 0:
        seq[:, :, 6] = np.log10(step_s) / 4.0

    season = np.zeros((b, cfg.context_features), dtype=np.float32)
    if cfg.period_window > 0:
        season[:, cfg.season_len + 1 : 2 * (cfg.season_len + 1)] = _period_context(
            get, available=available, inv=inv, cfg=cfg
        )
    if cfg.summary_window > 0:
        season[:, -SUMMARY_FEATURES:] = _summary(get, available=available, inv=inv, cfg=cfg)
    period = season_period(step_s, cfg)
    if period is not None:
        ok = available >= period + cfg.season_lead
        if ok.any():
            offs = np.arange(-period - cfg.season_lead + 1, -period + cfg.horizon + 1, dtype=np.int64)
            vals = get(offs)
            season[:, : cfg.season_len] = np.where(ok[:, None], np.clip(vals * inv, 0.0, cfg.input_clip), 0.0)
            season[:, cfg.season_len] = ok.astype(np.float32)
    return Inputs(seq=seq, season=season, level=level)


def _summary(
    get: Callable[[npt.NDArray[np.int64]], F32], *, available: I64, inv: F32, cfg: ModelConfig
) -> F32:
    """Mean, peak and standard deviation of the last `summary_window` points and of their last quarter (ratios to
    the level, clipped as the window is), then whether the whole span is real history (a short one is padded with its
    first point, so its spread reads low)."""
    span = cfg.summary_window
    ratios = np.clip(get(np.arange(-span + 1, 1, dtype=np.int64)) * inv, 0.0, cfg.input_clip)
    recent = ratios[:, -(span // 4) :]
    out = np.stack(
        [ratios.mean(axis=1), ratios.max(axis=1), ratios.std(axis=1),
         recent.mean(axis=1), recent.max(axis=1), recent.std(axis=1),
         (available >= span).astype(np.float32)],
        axis=1,
    )
    return out.astype(np.float32)


def dominant_period(x: F32, *, lo: int, hi: int) -> tuple[I64, F32]:
    """Per row of `x` ([B, L], oldest first): the lag in [lo, hi] with the highest autocorrelation, and that value.

    Each row is first high-passed (minus its 31-step moving average), so slow drift and the daily swing do not
    drown short bursts; then the unbiased autocorrelation through one FFT per row (zero-padded, not circular).
    """
    n = x.shape[1]
    width = 31
    padded = np.pad(x.astype(np.float64), ((0, 0), (width // 2, width // 2)), mode="edge")
    sums = np.concatenate([np.zeros((x.shape[0], 1)), np.cumsum(padded, axis=1)], axis=1)
    centred = x - (sums[:, width:] - sums[:, :-width]) / width
    spec = np.fft.rfft(centred, 2 * n, axis=1)
    acov = np.fft.irfft(spec * np.conj(spec), 2 * n, axis=1)[:, :n]
    var = acov[:, :1]
    lags = np.arange(lo, min(hi, n - 1) + 1)
    acf = (acov[:, lags] / np.maximum(var, 1e-12)) * (n / (n - lags))[None, :]
    best = np.argmax(acf, axis=1)
    return lags[best].astype(np.int64), acf[np.arange(x.shape[0]), best].astype(np.float32)


def _period_context(
    get: Callable[[npt.NDArray[np.int64]], F32], *, available: I64, inv: F32, cfg: ModelConfig
) -> F32:
    """Values one dominant short period ago around the horizon (ratio to level), then a flag; zeros without one."""
    b = available.shape[0]
    out = np.zeros((b, cfg.season_len + 1), dtype=np.float32)
    length = cfg.period_window
    # only rows with a full search window: a padded one would find a false period in its flat start
    rows = np.flatnonzero(available >= length)
    if rows.size == 0:
        return out
    recent = get(np.arange(-length + 1, 1, dtype=np.int64))[rows]
    periods, strength = dominant_period(recent, lo=cfg.period_min, hi=cfg.period_max)
    use = strength >= cfg.period_min_acf
    offsets = np.arange(-cfg.season_lead + 1, cfg.horizon + 1, dtype=np.int64)
    idx = (length - 1 - periods)[:, None] + offsets[None, :]
    vals = recent[np.arange(rows.size)[:, None], idx]
    scaled = np.clip(vals * inv[rows], 0.0, cfg.input_clip)
    out[rows, :-1] = np.where(use[:, None], scaled, 0.0)
    out[rows, -1] = use.astype(np.float32)
    return out


def fill_nonfinite(a: F32) -> F32:
    """Replace NaN/inf in each row by the previous finite value (leading ones by the first; an all-bad row by 0)."""
    bad = ~np.isfinite(a)
    if not bad.any():
        return a
    a = a.copy()
    idx_all = np.arange(a.shape[1])
    for i in map(int, np.flatnonzero(bad.any(axis=1))):
        good = ~bad[i]
        if not good.any():
            a[i] = 0.0
            continue
        idx = np.where(good, idx_all, 0)
        np.maximum.accumulate(idx, out=idx)
        first = int(np.argmax(good))
        idx[:first] = first
        a[i] = a[i, idx]
    return a


def inference_inputs(
    window: F32,
    *,
    lengths: I64,
    end_times: F64,
    step_s: float | None,
    cfg: ModelConfig,
) -> Inputs:
    """Inputs for the end of each row of `window` ([B, any width], newest last; `lengths` real points per row).

    Rows shorter than the window are extended to the left with their first point; only the points the model reads
    are gathered, and non-finite ones among them are filled (`fill_nonfinite`).
    """
    c = window.shape[1]
    if c == 0:
        raise ValueError("histories must have at least one point")

    def get(offsets: npt.NDArray[np.int64]) -> F32:
        return fill_nonfinite(window[:, np.maximum(c - 1 + offsets, 0)])

    return features(get, available=lengths, times_t=end_times, step_s=step_s, cfg=cfg)


def training_positions(n: int, cfg: ModelConfig, *, stride: int = 1) -> I64:
    """Positions t (index of the last observed point) with a full window behind and a full horizon ahead."""
    start = cfg.window - 1
    stop = n - cfg.horizon
    if stop <= start:
        return np.zeros(0, dtype=np.int64)
    return np.arange(start, stop, stride, dtype=np.int64)


def series_batch(
    series: Series,
    positions: I64,
    cfg: ModelConfig,
    *,
    ramp: F32 | None = None,
    day_shift: I64 | None = None,
    lengths: I64 | None = None,
) -> tuple[Inputs, F32]:
    """Inputs and targets ([B, horizon], as ratios to each window's level) at `positions` of one series.

    `lengths[b]`, when given, cuts window b's history to its last `lengths[b]` points, the earlier ones replaced by the
    first kept point (as `stack_histories` pads a short history at inference) and the seasonal context hidden the
    same way (too little history has no yesterday): a workload's first minutes, taught.

    `ramp[b]`, when given, bends window b and its targets by exp(ramp * offset / window): a trend or level shift the
    data may not contain, applied consistently to what the model sees and what it must predict. `day_shift[b]`
    moves window b's timestamps by whole days: the time of day stays, the weekday changes, so a few weeks of data
    cannot teach the model a weekday pattern that is not there.
    """
    values = series.values
    n = values.shape[0]
    w = cfg.window

    first = np.zeros_like(positions) if lengths is None else np.maximum(positions - lengths + 1, 0)

    def raw(offsets: npt.NDArray[np.int64]) -> F32:
        idx = np.clip(positions[:, None] + offsets[None, :], first[:, None], n - 1)
        out: F32 = values[idx]
        if ramp is not None:
            bend = np.clip(offsets, -w, cfg.horizon).astype(np.float32) / w
            near = (np.abs(offsets) <= w)[None, :]
            out = np.where(near, out * np.exp(ramp[:, None] * bend[None, :]), out).astype(np.float32)
        return out

    times = (
        series.times[positions] if series.times is not None else np.full(positions.shape[0], np.nan, dtype=np.float64)
    )
    if day_shift is not None:
        times = times + day_shift.astype(np.float64) * _DAY
    available = positions + 1 if lengths is None else np.minimum(positions + 1, lengths)
    inputs = features(raw, available=available, times_t=times, step_s=series.step_s, cfg=cfg)
    future = raw(np.arange(1, cfg.horizon + 1, dtype=np.int64))
    # Clipped so a series coming back from an outage (level ~ 0) cannot blow up the loss.
    targets = np.clip(future / inputs.level[:, None], 0.0, _TARGET_CLIP).astype(np.float32)
    return inputs, targets
