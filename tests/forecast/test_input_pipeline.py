"""Inputs: scale-free windows, calendar phases, seasonal context and its validity flag, the summary of recent hours."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from aihpa.forecast.config import SUMMARY_FEATURES, ModelConfig
from aihpa.forecast.input_pipeline import (
    Series,
    dominant_period,
    inference_inputs,
    season_period,
    series_batch,
    training_positions,
)
from tests.forecast.conftest import daily_series


def test_inputs_and_targets_do_not_depend_on_the_series_unit(small_cfg: ModelConfig) -> None:
    s = daily_series(400)
    big = Series(name="big", values=s.values * 1000, step_s=s.step_s, times=s.times)
    pos = training_positions(400, small_cfg)[::37]
    a_in, a_t = series_batch(s, pos, small_cfg)
    b_in, b_t = series_batch(big, pos, small_cfg)
    np.testing.assert_allclose(a_in.seq, b_in.seq, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a_in.season, b_in.season, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a_t, b_t, rtol=1e-5)
    np.testing.assert_allclose(b_in.level, a_in.level * 1000, rtol=1e-5)


def test_calendar_phase_is_zero_on_monday_midnight(small_cfg: ModelConfig) -> None:
    s = daily_series(400)  # starts Monday 00:00 UTC, 30-minute steps
    t = small_cfg.window - 1 + 48 * 7  # a week later, at the window's end... minus the window
    inputs, _ = series_batch(s, np.asarray([t]), small_cfg)
    last = inputs.seq[0, -1]
    # time of the last step: (window - 1) steps after a Monday midnight
    phase = 2 * np.pi * ((small_cfg.window - 1) * 1800) / 86400
    np.testing.assert_allclose(last[1:3], [np.sin(phase), np.cos(phase)], atol=1e-5)
    assert last[5] == 1.0


def test_missing_times_leave_calendar_features_off(small_cfg: ModelConfig) -> None:
    s = daily_series(200)
    no_time = Series(name="x", values=s.values, step_s=s.step_s, times=None)
    inputs, _ = series_batch(no_time, training_positions(200, small_cfg)[:3], small_cfg)
    assert (inputs.seq[:, :, 1:6] == 0).all()


def test_seasonal_context_is_last_days_values_around_the_horizon(small_cfg: ModelConfig) -> None:
    period = 48
    values = np.arange(300, dtype=np.float32) + 1.0
    s = Series(name="ramp", values=values, step_s=86400.0 / period)
    t = 200
    inputs, targets = series_batch(s, np.asarray([t]), small_cfg)
    assert season_period(s.step_s, small_cfg) == period
    level = inputs.level[0]
    expected = values[t - period - small_cfg.season_lead + 1 : t - period + small_cfg.horizon + 1] / level
    s = small_cfg.season_len
    np.testing.assert_allclose(inputs.season[0, :s], expected, rtol=1e-5)
    assert inputs.season[0, s] == 1.0
    np.testing.assert_allclose(targets[0], values[t + 1 : t + 1 + small_cfg.horizon] / level, rtol=1e-5)


def test_seasonal_context_is_flagged_off_when_history_is_shorter_than_a_day(small_cfg: ModelConfig) -> None:
    period = 48
    window = np.zeros((2, small_cfg.context), dtype=np.float32) + 5.0
    inputs = inference_inputs(
        window,
        lengths=np.asarray([small_cfg.context, period // 2]),
        end_times=np.full(2, np.nan),
        step_s=86400.0 / period,
        cfg=small_cfg,
    )
    s = small_cfg.season_len
    assert inputs.season[0, s] == 1.0
    assert inputs.season[1, s] == 0.0
    assert (inputs.season[1, : s + 1] == 0).all()


def test_a_series_of_zeros_gives_finite_inputs(small_cfg: ModelConfig) -> None:
    s = Series(name="zeros", values=np.zeros(100, dtype=np.float32), step_s=60.0)
    inputs, targets = series_batch(s, training_positions(100, small_cfg)[:5], small_cfg)
    assert np.isfinite(inputs.seq).all() and np.isfinite(targets).all() and (inputs.level > 0).all()


def test_dominant_period_finds_bursts_that_are_not_daily() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(512)
    bursts = np.where(t % 40 < 5, 5.0, 1.0) + rng.normal(0, 0.05, (3, 512))
    noise = rng.normal(1.0, 0.1, (1, 512))
    periods, strength = dominant_period(np.vstack([bursts, noise]).astype(np.float32), lo=16, hi=240)
    assert all(p % 40 == 0 for p in periods[:3]) and (strength[:3] > 0.5).all()
    assert strength[3] < 0.3


def test_the_short_period_context_shows_the_last_burst_around_the_horizon(small_cfg: ModelConfig) -> None:
    small_cfg = dataclasses.replace(small_cfg, period_window=512)
    values = np.where(np.arange(1200) % 40 < 5, 5.0, 1.0).astype(np.float32)
    s = Series(name="bursty", values=values, step_s=None)
    t = 1200 - 1 - small_cfg.horizon - 3  # a burst is due within the horizon
    inputs, targets = series_batch(s, np.asarray([t]), small_cfg)
    ctx = inputs.season[0, small_cfg.season_len + 1 :]
    assert ctx[-1] == 1.0
    # the context one period ago, scaled like the targets, foreshadows the burst ahead
    ahead = ctx[small_cfg.season_lead : small_cfg.season_lead + small_cfg.horizon]
    np.testing.assert_allclose(ahead, targets[0], rtol=1e-5)


def test_the_summary_shows_the_mean_peak_and_spread_of_the_last_hours(small_cfg: ModelConfig) -> None:
    cfg = dataclasses.replace(small_cfg, summary_window=64, period_window=512)
    assert cfg.context_features == small_cfg.context_features * 2 + SUMMARY_FEATURES
    assert cfg.context >= 512
    rng = np.random.default_rng(5)
    values = rng.uniform(1.0, 3.0, 300).astype(np.float32)
    values[280:285] = 9.0  # a burst in the last quarter of the span
    s = Series(name="noisy", values=values, step_s=None)
    t = 290
    inputs, _ = series_batch(s, np.asarray([t]), cfg)
    summary = inputs.season[0, -SUMMARY_FEATURES:]
    ratios = np.clip(values[t - 63 : t + 1] / inputs.level[0], 0.0, cfg.input_clip)
    recent = ratios[-16:]
    want = [ratios.mean(), ratios.max(), ratios.std(), recent.mean(), recent.max(), recent.std(), 1.0]
    np.testing.assert_allclose(summary, want, rtol=1e-5)
    # the period context keeps its own place before the summary
    assert inputs.season[0, small_cfg.season_len + 1 : 2 * (small_cfg.season_len + 1)].shape[0] == cfg.season_len + 1
    # a history shorter than the span is flagged: its padding is not history
    short, _ = series_batch(s, np.asarray([40]), cfg)
    assert short.season[0, -1] == 0.0


def test_a_summary_shorter_than_four_levels_is_refused(small_cfg: ModelConfig) -> None:
    with pytest.raises(ValueError, match="summary_window"):
        dataclasses.replace(small_cfg, summary_window=small_cfg.level_window).validate()
