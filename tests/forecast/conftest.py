"""Small models and series for fast forecaster tests."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.input_pipeline import Series

SMALL = ModelConfig(window=16, hidden=8, layers=2, head_hidden=16, horizon=4, level_window=4, season_lead=2,
                    max_season=48)


def daily_series(n: int = 2000, *, period: int = 48, seed: int = 0, name: str = "sine") -> Series:
    """A noisy daily cycle at 30-minute steps with absolute times starting on a Monday."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 10 + 5 * np.sin(2 * np.pi * t / period) + rng.normal(0, 0.3, n)
    start = 1_700_438_400.0  # Monday 2023-11-20 00:00 UTC
    return Series(name=name, values=values.astype(np.float32), step_s=86400.0 / period, times=start + 1800.0 * t)


@pytest.fixture
def small_cfg() -> ModelConfig:
    return SMALL


@pytest.fixture
def fast_train() -> TrainConfig:
    return TrainConfig(seed=1, batch_size=64, max_steps=60, eval_every=20, patience=3, progress=False)
