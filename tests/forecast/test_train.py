"""Training: it learns, it is deterministic for a seed, it stops early, it refuses unusable data."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import pytest
from flax import nnx

from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.evaluate import evaluate
from aihpa.forecast.forecaster import BiLSTMForecaster, LastValueForecaster
from aihpa.forecast.input_pipeline import Series
from aihpa.forecast.train import train
from aihpa.traces import series_from_values
from tests.forecast.conftest import daily_series


def _params(model: object) -> list[np.ndarray]:
    return [np.asarray(x) for x in jax.tree.leaves(nnx.state(model, nnx.Param))]  # type: ignore[arg-type]


def test_same_seed_gives_the_same_model(small_cfg: ModelConfig, fast_train: TrainConfig) -> None:
    s = [daily_series(800)]
    a = train(s, small_cfg, fast_train)
    b = train(s, small_cfg, fast_train)
    for x, y in zip(_params(a.model), _params(b.model), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.digest == b.digest


@pytest.mark.slow
def test_trained_model_beats_last_value_on_a_daily_cycle(small_cfg: ModelConfig) -> None:
    series = daily_series(3000, seed=4)
    cfg = TrainConfig(seed=0, batch_size=128, max_steps=400, eval_every=50, patience=4, progress=False)
    result = train([series], small_cfg, cfg)
    fc = BiLSTMForecaster(result.model, version="t")
    trace = series_from_values(series.values, step_s=series.step_s, timestamps=series.times)
    rows = {r.forecaster: r for r in evaluate(trace, {"bilstm": fc, "last": LastValueForecaster(horizon=4)})}
    assert rows["bilstm"].pinball[0.9] < rows["last"].pinball[0.9]
    assert rows["bilstm"].mae < rows["last"].mae


def test_early_stopping_ends_before_the_step_budget(small_cfg: ModelConfig) -> None:
    noise = Series(name="noise", values=np.random.default_rng(0).uniform(0, 1, 600).astype(np.float32), step_s=60.0)
    cfg = TrainConfig(seed=0, batch_size=32, max_steps=2000, eval_every=5, patience=2, learning_rate=0.05,
                      progress=False)
    result = train([noise], small_cfg, cfg)
    assert result.metrics["steps"] < 2000
    assert result.metrics["best_step"] <= result.metrics["steps"]


def test_fine_tuning_starts_from_the_given_model(small_cfg: ModelConfig, fast_train: TrainConfig) -> None:
    s = [daily_series(600)]
    base = train(s, small_cfg, fast_train)
    tuned = train(s, small_cfg, dataclasses.replace(fast_train, max_steps=1, eval_every=1), init_from=base.model)
    # one small step away from the base model, not a fresh initialisation
    diffs = [np.abs(x - y).max() for x, y in zip(_params(base.model), _params(tuned.model), strict=True)]
    assert max(diffs) < 0.05


def test_series_too_short_for_a_window_are_refused(small_cfg: ModelConfig, fast_train: TrainConfig) -> None:
    short = Series(name="short", values=np.ones(10, dtype=np.float32), step_s=60.0)
    with pytest.raises(ValueError, match="long enough"):
        train([short], small_cfg, fast_train)


def test_the_shortest_trainable_series_is_what_min_training_points_says(
    small_cfg: ModelConfig, fast_train: TrainConfig
) -> None:
    from aihpa.forecast.train import min_training_points

    need = min_training_points(small_cfg, fast_train)
    assert need > small_cfg.window + small_cfg.horizon  # validation windows come after the training ones
    series = daily_series(need)
    cfg = dataclasses.replace(fast_train, max_steps=2, eval_every=1)
    assert train([series], small_cfg, cfg).data[0]["points"] == need
    shorter = Series(name="short", values=series.values[: need - 1], step_s=series.step_s)
    with pytest.raises(ValueError) as refused:
        train([shorter], small_cfg, cfg)
    # in rows and in time, as the user's file counts them (30-minute steps here)
    message = str(refused.value)
    assert f"has {need - 1} rows (" in message and f"at least {need} rows (" in message
    assert "at 1800 s)" in message


def test_progress_is_plain_lines_on_stderr_when_it_is_not_a_terminal(
    small_cfg: ModelConfig, fast_train: TrainConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = dataclasses.replace(fast_train, max_steps=40, eval_every=20, patience=10, progress=True)
    train([daily_series(600)], small_cfg, cfg)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("training: ")]
    assert [line.split(",")[0] for line in lines] == ["training: step 20/40", "training: step 40/40"]
    assert all("validation pinball" in line for line in lines) and captured.out == ""
