"""The Bi-LSTM: stacked bidirectional LSTM layers over the recent window, a dense head, ordered quantiles.

Input: a window of per-step features (level ratio, calendar) and last day's values around the horizon. Output:
`[batch, horizon, n_quantiles]` ratios to the series' level, non-decreasing along the quantile axis by construction
(the head predicts the median and non-negative increments), so quantiles never cross. Pure JAX/Flax: no I/O.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from aihpa.forecast.config import ModelConfig
from aihpa.forecast.input_pipeline import N_FEATURES

__all__ = ["BiLSTM", "pinball_loss"]


class BiLSTM(nnx.Module):
    """Global quantile forecaster shared by every workload (inputs are scale-free)."""

    def __init__(self, cfg: ModelConfig, *, rngs: nnx.Rngs) -> None:
        cfg.validate()
        self.cfg = cfg
        h = cfg.hidden
        layers = []
        in_features = N_FEATURES
        for _ in range(cfg.layers):
            layers.append(
                nnx.Bidirectional(
                    nnx.RNN(nnx.OptimizedLSTMCell(in_features, h, rngs=rngs), rngs=rngs),
                    nnx.RNN(nnx.OptimizedLSTMCell(in_features, h, rngs=rngs), rngs=rngs),
                    rngs=rngs,
                )
            )
            in_features = 2 * h
        self.encoder = nnx.List(layers)
        # encoder summary (last step + mean over time) and the seasonal context with its flag
        head_in = 4 * h + cfg.context_features
        self.hidden = nnx.Linear(head_in, cfg.head_hidden, rngs=rngs)
        self.out = nnx.Linear(
            cfg.head_hidden,
            cfg.horizon * cfg.n_quantiles,
            kernel_init=nnx.initializers.normal(1e-3),
            rngs=rngs,
        )

    def __call__(self, seq: jax.Array, season: jax.Array) -> jax.Array:
        x = seq
        for layer in self.encoder:
            x = layer(x)  # type: ignore[assignment]  # return_carry is off: the output sequence only
        summary = jnp.concatenate([x[:, -1, :], x.mean(axis=1), season], axis=-1)
        z = nnx.gelu(self.hidden(summary))
        raw = self.out(z).reshape(seq.shape[0], self.cfg.horizon, self.cfg.n_quantiles)
        # the median starts at the current level (ratio 1); higher quantiles add non-negative steps
        median = 1.0 + raw[..., :1]
        steps = nnx.softplus(raw[..., 1:] - 2.0)
        return jnp.concatenate([median, median + jnp.cumsum(steps, axis=-1)], axis=-1)


def pinball_loss(pred: jax.Array, target: jax.Array, quantiles: jax.Array, weights: jax.Array) -> jax.Array:
    """Mean quantile (pinball) loss; `pred` [B, H, Q], `target` [B, H], `weights` [H] summing to 1."""
    err = target[..., None] - pred
    loss = jnp.maximum(quantiles * err, (quantiles - 1.0) * err)
    return jnp.mean(jnp.sum(loss.mean(axis=-1) * weights, axis=-1))
