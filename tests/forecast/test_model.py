"""The Bi-LSTM's shapes, quantile ordering and the pinball loss."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from aihpa.forecast.config import ModelConfig
from aihpa.forecast.input_pipeline import N_FEATURES
from aihpa.forecast.model import BiLSTM, pinball_loss


def test_output_has_a_quantile_per_horizon_step_and_never_crosses(small_cfg: ModelConfig) -> None:
    model = BiLSTM(small_cfg, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    seq = jnp.asarray(rng.normal(size=(5, small_cfg.window, N_FEATURES)), dtype=jnp.float32)
    season = jnp.asarray(rng.normal(size=(5, small_cfg.context_features)), dtype=jnp.float32)
    out = np.asarray(model(seq, season))
    assert out.shape == (5, small_cfg.horizon, small_cfg.n_quantiles)
    assert (np.diff(out, axis=-1) >= 0).all()


def test_default_config_is_two_stacked_bidirectional_layers_with_p50_p90_p99() -> None:
    cfg = ModelConfig()
    model = BiLSTM(cfg, rngs=nnx.Rngs(0))
    assert len(model.encoder) == 2
    assert {0.5, 0.9, 0.99} <= set(cfg.quantiles)
    assert cfg.horizon == 15


def test_pinball_loss_matches_its_definition() -> None:
    pred = jnp.asarray([[[1.0, 2.0]], [[3.0, 3.0]]])  # [B=2, H=1, Q=2]
    target = jnp.asarray([[2.0], [1.0]])
    q = jnp.asarray([0.5, 0.9])
    # b0: err=1 -> 0.5, err=0 -> 0; b1: err=-2 -> 1.0, err=-2 -> 0.2
    expected = ((0.5 + 0.0) / 2 + (1.0 + 0.2) / 2) / 2
    got = float(pinball_loss(pred, target, q, jnp.asarray([1.0])))
    assert abs(got - expected) < 1e-6


def test_invalid_quantiles_are_refused() -> None:
    import pytest

    with pytest.raises(ValueError, match="quantiles"):
        ModelConfig(quantiles=(0.9, 0.5)).validate()
