"""The NumPy forward pass that serves every forecast: the flax module's outputs, its parameter layout, and its
checkpoint encoding, read without JAX."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from flax import nnx, serialization

from aihpa.forecast.checkpoint import build_model, pure_params
from aihpa.forecast.config import ModelConfig
from aihpa.forecast.forecaster import BiLSTMForecaster, default_model_dir
from aihpa.forecast.input_pipeline import N_FEATURES
from aihpa.forecast.model import BiLSTM
from aihpa.forecast.serving import NumpyBiLSTM, decode_params, flat_params, param_shapes

from .conftest import SMALL

# the small model, one with a single layer, wider units and the summary inputs, and one with the short-period context
CONFIGS = [
    SMALL,
    replace(SMALL, layers=1, hidden=12, head_hidden=8, horizon=6, summary_window=24),
    replace(SMALL, layers=3, period_window=64, period_min=8, period_max=32),
]


def _random_params(model: BiLSTM, seed: int) -> None:
    """Parameters far from their initial values (the output kernel starts near zero, which would hide the head)."""
    rng = np.random.default_rng(seed)
    for _, param in nnx.iter_graph(model):
        if isinstance(param, nnx.Param):
            param[...] = rng.normal(0.0, 0.4, param.shape).astype(np.float32)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["small", "one-layer", "three-layers-period"])
def test_the_numpy_forward_pass_gives_the_flax_modules_outputs(cfg: ModelConfig) -> None:
    model = BiLSTM(cfg, rngs=nnx.Rngs(0))
    _random_params(model, seed=1)
    served = NumpyBiLSTM(cfg, flat_params(pure_params(model)))
    rng = np.random.default_rng(2)
    seq = rng.uniform(0.0, 3.0, (33, cfg.window, N_FEATURES)).astype(np.float32)
    season = rng.uniform(0.0, 2.0, (33, cfg.context_features)).astype(np.float32)
    want = np.asarray(model(seq, season))
    got = served(seq, season)
    assert got.shape == want.shape == (33, cfg.horizon, cfg.n_quantiles)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    # the backward direction matters: reversing the window changes the forecast the same way in both
    flipped = seq[:, ::-1].copy()
    np.testing.assert_allclose(served(flipped, season), np.asarray(model(flipped, season)), rtol=1e-4, atol=1e-5)
    assert not np.allclose(served(flipped, season), got)


@pytest.mark.parametrize("cfg", CONFIGS, ids=["small", "one-layer", "three-layers-period"])
def test_param_shapes_name_every_parameter_of_the_flax_module(cfg: ModelConfig) -> None:
    params = flat_params(pure_params(BiLSTM(cfg, rngs=nnx.Rngs(0))))
    assert {k: tuple(v.shape) for k, v in params.items()} == param_shapes(cfg)


def test_decode_params_reads_what_flax_wrote_and_build_model_restores_it() -> None:
    model = BiLSTM(SMALL, rngs=nnx.Rngs(0))
    _random_params(model, seed=3)
    payload = serialization.msgpack_serialize(pure_params(model))
    ours, theirs = flat_params(decode_params(payload)), flat_params(serialization.msgpack_restore(payload))
    assert ours.keys() == theirs.keys()
    for key in ours:
        np.testing.assert_array_equal(ours[key], theirs[key])
        assert ours[key].dtype == theirs[key].dtype
    rebuilt = build_model(SMALL, decode_params(payload))
    seq = np.ones((2, SMALL.window, N_FEATURES), np.float32)
    season = np.ones((2, SMALL.context_features), np.float32)
    np.testing.assert_array_equal(np.asarray(rebuilt(seq, season)), np.asarray(model(seq, season)))


def test_anything_but_arrays_in_the_parameters_is_refused() -> None:
    import msgpack

    with pytest.raises(ValueError, match="not a mapping"):
        decode_params(msgpack.packb([1, 2, 3]))
    with pytest.raises(ValueError, match="extension type 2"):
        decode_params(msgpack.packb({"a": msgpack.ExtType(2, b"\x00")}))


def test_the_shipped_model_served_by_numpy_agrees_with_its_jitted_flax_module() -> None:
    served = BiLSTMForecaster.from_checkpoint(default_model_dir())
    jitted = BiLSTMForecaster(served.model, version=served.version, metadata=served.metadata, engine="jax")
    rng = np.random.default_rng(4)
    t = np.arange(served.context + 200)
    histories = 5.0 + 3.0 * np.sin(2 * np.pi * t / 1440)[None, :] + rng.normal(0, 0.3, (40, t.shape[0]))
    ends = np.full(40, 1_700_000_000.0)
    a = served.predict(histories, end_times=ends, step_s=60.0)
    b = jitted.predict(histories, end_times=ends, step_s=60.0)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_a_batch_of_histories_forecast_in_small_chunks_is_the_batch_forecast_at_once() -> None:
    """Histories are stacked a chunk at a time: rows of any length (some longer than the context, some with gaps),
    in chunks of 7 rows, give what one chunk of all of them gives."""
    rng = np.random.default_rng(5)
    histories = [np.abs(rng.normal(2.0, 0.5, int(n))).astype(np.float32) for n in rng.integers(3, 1700, 40)]
    for h in histories[::6]:
        h[rng.integers(0, h.size)] = np.nan
    ends = [1.7e9 + 60.0 * i for i in range(len(histories))]
    whole = BiLSTMForecaster.from_checkpoint(default_model_dir())
    chunked = BiLSTMForecaster.from_checkpoint(default_model_dir())
    whole.max_batch, chunked.max_batch = 1000, 7
    a = whole.predict(histories, end_times=ends, step_s=60.0)
    b = chunked.predict(histories, end_times=ends, step_s=60.0)
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(a).all()
