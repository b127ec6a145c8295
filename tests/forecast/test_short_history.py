"""A model that forecasts from a few minutes of history: trained on windows cut short the way inference pads them."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.forecaster import load_default_forecaster, stack_histories
from aihpa.forecast.input_pipeline import inference_inputs, series_batch
from aihpa.forecast.train import train

from .conftest import SMALL, daily_series


def test_a_config_without_the_field_is_a_model_trained_on_whole_windows() -> None:
    assert ModelConfig().min_history == 8 and ModelConfig().shortest_history == 8
    old = {k: v for k, v in ModelConfig().to_dict().items() if k != "min_history"}
    assert ModelConfig.from_dict(old).shortest_history == ModelConfig().window
    with pytest.raises(ValueError, match="min_history"):
        ModelConfig(min_history=40).validate()


def test_a_window_cut_short_in_training_is_what_inference_sees_for_that_short_history() -> None:
    series = daily_series(400)
    cfg = SMALL
    position, length = 300, 5
    inputs, _ = series_batch(series, np.array([position]), cfg, lengths=np.array([length]))
    history = series.values[position - length + 1 : position + 1]
    window = stack_histories([history], cfg.context)
    live = inference_inputs(window, lengths=np.array([length]), end_times=series.times[[position]],
                            step_s=series.step_s, cfg=cfg)
    np.testing.assert_allclose(inputs.seq, live.seq, rtol=1e-6)
    np.testing.assert_allclose(inputs.season, live.season, rtol=1e-6)
    np.testing.assert_allclose(inputs.level, live.level, rtol=1e-6)
    # and the cut is real: the whole window differs
    whole, _ = series_batch(series, np.array([position]), cfg)
    assert not np.allclose(whole.seq[..., 0], inputs.seq[..., 0])


def test_a_share_of_training_windows_is_cut_short_and_a_bad_share_is_refused(fast_train: TrainConfig) -> None:
    cfg = ModelConfig(**{**SMALL.to_dict(), "min_history": 4})
    result = train([daily_series(600)], cfg, TrainConfig(**{**fast_train.to_dict(), "short_history": 0.5,
                                                            "max_steps": 20}))
    assert np.isfinite(result.metrics["val_pinball"])
    with pytest.raises(ValueError, match="short_history"):
        train([daily_series(600)], cfg, TrainConfig(**{**fast_train.to_dict(), "short_history": 1.5}))


def test_the_shipped_model_forecasts_from_eight_minutes_and_says_so() -> None:
    fc = load_default_forecaster()
    assert fc.min_history == 8 < fc.config.window
    eight = np.full(8, 4.0, dtype=np.float32)
    out = fc.predict([eight], end_times=[1_700_000_000.0], step_s=60.0)
    assert np.isfinite(out).all()
    median = out[0, :, int(np.argmin(np.abs(np.asarray(fc.quantiles) - 0.5)))]
    # a flat history of 4 cores: the median stays near it
    assert np.all(np.abs(median - 4.0) < 1.5)
