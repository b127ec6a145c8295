"""Batched inference: NumPy serving in chunks, JAX bucket padding without recompilation, robust histories, the shipped
default model."""

from __future__ import annotations

import numpy as np
import pytest
from flax import nnx

from aihpa.forecast.config import ModelConfig
from aihpa.forecast.forecaster import (
    BiLSTMForecaster,
    Forecaster,
    LastValueForecaster,
    SeasonalNaiveForecaster,
    bucket_size,
    default_model_dir,
    load_default_forecaster,
    stack_histories,
)
from aihpa.forecast.model import BiLSTM


@pytest.fixture
def forecaster(small_cfg: ModelConfig) -> BiLSTMForecaster:
    return BiLSTMForecaster(BiLSTM(small_cfg, rngs=nnx.Rngs(0)), version="test")


@pytest.fixture
def jitted(small_cfg: ModelConfig) -> BiLSTMForecaster:
    return BiLSTMForecaster(BiLSTM(small_cfg, rngs=nnx.Rngs(0)), version="test", engine="jax")


def test_a_second_batch_size_in_the_same_bucket_does_not_compile_again(jitted: BiLSTMForecaster) -> None:
    rng = np.random.default_rng(0)
    assert bucket_size(3) == bucket_size(5) == 8
    first = jitted.predict(rng.uniform(1, 2, size=(3, 60)), step_s=1800.0)
    assert jitted.compilations == 1
    second = jitted.predict(rng.uniform(1, 2, size=(5, 60)), step_s=1800.0)
    assert jitted.compilations == 1
    assert first.shape == (3, 4, 5) and second.shape == (5, 4, 5)
    jitted.predict(rng.uniform(1, 2, size=(9, 60)), step_s=1800.0)  # bucket 32: one more
    assert jitted.compilations == 2


def test_a_batch_larger_than_max_batch_is_forecast_in_chunks_of_at_most_that_size(
    jitted: BiLSTMForecaster,
) -> None:
    rng = np.random.default_rng(2)
    batch = rng.uniform(1, 2, size=(20, 60))
    whole = jitted.predict(batch, step_s=1800.0)  # one call: bucket 32
    assert jitted.compilations == 1
    jitted.max_batch = 8
    chunked = jitted.predict(batch, step_s=1800.0)  # 8 + 8 + 4: every chunk in bucket 8, one more shape
    assert jitted.compilations == 2
    assert chunked.shape == whole.shape == (20, 4, 5)
    np.testing.assert_allclose(chunked, whole, rtol=1e-5)


def test_the_numpy_engine_forecasts_as_the_jitted_flax_module_in_chunks_or_whole(
    forecaster: BiLSTMForecaster, jitted: BiLSTMForecaster
) -> None:
    rng = np.random.default_rng(3)
    batch = rng.uniform(0.5, 3.0, size=(20, 60))
    whole = forecaster.predict(batch, step_s=1800.0)
    forecaster.max_batch = 8
    chunked = forecaster.predict(batch, step_s=1800.0)
    np.testing.assert_array_equal(chunked, whole)  # rows are independent: chunking changes nothing
    np.testing.assert_allclose(whole, jitted.predict(batch, step_s=1800.0), rtol=2e-5, atol=1e-6)
    assert forecaster.compilations == 0  # the NumPy engine never compiles


def test_an_unknown_engine_is_refused(small_cfg: ModelConfig) -> None:
    with pytest.raises(ValueError, match="engine must be"):
        BiLSTMForecaster(BiLSTM(small_cfg, rngs=nnx.Rngs(0)), version="test", engine="torch")  # type: ignore[arg-type]


def test_rows_of_a_batch_are_independent_of_their_neighbours(forecaster: BiLSTMForecaster) -> None:
    rng = np.random.default_rng(1)
    batch = rng.uniform(1, 2, size=(6, 60))
    together = forecaster.predict(batch, step_s=1800.0)
    alone = forecaster.predict(batch[2:3], step_s=1800.0)
    np.testing.assert_allclose(together[2], alone[0], rtol=1e-5)


def test_forecasts_scale_with_the_series_and_are_never_negative(forecaster: BiLSTMForecaster) -> None:
    rng = np.random.default_rng(2)
    h = rng.uniform(1, 2, size=(1, 60))
    small = forecaster.predict(h, step_s=1800.0)
    big = forecaster.predict(h * 1000, step_s=1800.0)
    np.testing.assert_allclose(big, small * 1000, rtol=1e-4)
    assert (small >= 0).all()


def test_nan_and_short_histories_still_give_finite_forecasts(forecaster: BiLSTMForecaster) -> None:
    histories = [np.r_[np.ones(30), np.nan, np.ones(5)], [3.0], [], np.full(10, np.nan)]
    out = forecaster.predict(histories, end_times=[1.7e9, None, None, None], step_s=60.0)
    assert out.shape == (4, 4, 5)
    assert np.isfinite(out).all()


def test_stack_histories_pads_left_and_carries_last_finite_value_forward() -> None:
    out = stack_histories([[1.0, np.nan, 3.0], [5.0], [np.nan, 2.0]], 4)
    np.testing.assert_array_equal(out, [[1, 1, 1, 3], [5, 5, 5, 5], [2, 2, 2, 2]])


def test_baselines_follow_the_protocol() -> None:
    for fc in (LastValueForecaster(horizon=3), SeasonalNaiveForecaster(period=4, horizon=3)):
        assert isinstance(fc, Forecaster)
    series = np.arange(12, dtype=np.float32)
    last = LastValueForecaster(horizon=3).predict([series])
    assert (last == 11).all()
    seasonal = SeasonalNaiveForecaster(period=4, horizon=3).predict([series])
    np.testing.assert_array_equal(seasonal[0, :, 0], [8, 9, 10])


def test_the_default_model_ships_in_the_package_small_and_documented() -> None:
    fc = load_default_forecaster()
    assert isinstance(fc, Forecaster)
    size = sum(p.stat().st_size for p in default_model_dir().rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024
    meta = fc.metadata
    assert meta["provenance"]["command"].startswith("aihpa train")
    assert meta["data_digest"] and meta["version"] == fc.version
    out = fc.predict([np.linspace(1, 2, 500)], step_s=300.0)
    assert out.shape == (1, fc.horizon, len(fc.quantiles)) and np.isfinite(out).all()
