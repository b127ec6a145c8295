"""The Bi-LSTM's forward pass in NumPy: how every forecast is served, without the JAX runtime.

Training (`aihpa.forecast.train`) builds and fits the flax module (`aihpa.forecast.model.BiLSTM`); serving needs only
its parameters and the same arithmetic. Importing JAX and compiling the model costs a process ~290 MB of memory
(the XLA runtime, its thread pools and compiled buffers), as much as ~4,000 workloads' aged states: the controller,
the webhook, the backtest and the demo forecast with `NumpyBiLSTM` instead, and load checkpoints with `decode_params`,
neither of which imports JAX. `tests/forecast/test_serving.py` holds this forward pass to the flax module's, output
for output.

The model, as `BiLSTM.__call__` computes it: stacked bidirectional layers of flax's `OptimizedLSTMCell` (gates i, f,
g, o from one input and one recurrent dense layer, the recurrent one with the bias; zero initial carry; the backward
direction reads the window newest first and its outputs are put back in time order, then concatenated after the
forward ones), a summary of the last output, the mean output over time and the seasonal context, a dense layer with
the tanh-approximated GELU, and a head whose median starts at 1 and whose higher quantiles add softplus steps.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np
import numpy.typing as npt

from aihpa.forecast.config import ModelConfig
from aihpa.forecast.input_pipeline import N_FEATURES

__all__ = ["NumpyBiLSTM", "decode_params", "flat_params", "nested_params", "param_shapes"]

F32 = npt.NDArray[np.float32]

# flax.serialization's msgpack extension code for an ndarray: (shape, dtype name, C-order bytes), itself msgpack
_EXT_NDARRAY = 1


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _EXT_NDARRAY:
        raise ValueError(f"unsupported msgpack extension type {code} (only arrays are stored)")
    shape, dtype, buffer = msgpack.unpackb(data, raw=True)
    return np.frombuffer(buffer, dtype=np.dtype(dtype.decode("ascii"))).reshape(shape, order="C")


def decode_params(payload: bytes) -> dict[str, Any]:
    """The nested parameter dict of a checkpoint's params.msgpack (flax.serialization's encoding of a pure dict of
    arrays), read with msgpack alone. Raises ValueError (or msgpack's own errors) on anything else."""
    tree = msgpack.unpackb(payload, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    if not isinstance(tree, dict):
        raise ValueError("the parameters are not a mapping")
    return tree


def flat_params(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """`tree` flattened to {"encoder/0/forward_rnn/cell/dense_i/kernel": array, ...} (keys as text)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_params(value, path + "/"))
        else:
            out[path] = value
    return out


def nested_params(flat: dict[str, Any]) -> dict[str, Any]:
    """The inverse of `flat_params`: {"a/b/c": array} as the nested dict a checkpoint stores."""
    tree: dict[str, Any] = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split("/")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def param_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter of `BiLSTM(cfg)`, by flat path (as `flat_params` names them)."""
    h = cfg.hidden
    shapes: dict[str, tuple[int, ...]] = {}
    width = N_FEATURES
    for layer in range(cfg.layers):
        for direction in ("forward_rnn", "backward_rnn"):
            cell = f"encoder/{layer}/{direction}/cell"
            shapes[f"{cell}/dense_i/kernel"] = (width, 4 * h)
            shapes[f"{cell}/dense_h/kernel"] = (h, 4 * h)
            shapes[f"{cell}/dense_h/bias"] = (4 * h,)
        width = 2 * h
    shapes["hidden/kernel"] = (4 * h + cfg.context_features, cfg.head_hidden)
    shapes["hidden/bias"] = (cfg.head_hidden,)
    shapes["out/kernel"] = (cfg.head_hidden, cfg.horizon * cfg.n_quantiles)
    shapes["out/bias"] = (cfg.horizon * cfg.n_quantiles,)
    return shapes


def _gelu(x: F32) -> F32:
    """GELU, tanh approximation (flax's `nnx.gelu` default)."""
    c = np.float32(np.sqrt(2.0 / np.pi))
    inner = np.tanh(c * (x + np.float32(0.044715) * x * x * x))
    out: F32 = (np.float32(0.5) * x * (np.float32(1.0) + inner)).astype(np.float32)
    return out


class NumpyBiLSTM:
    """`BiLSTM(cfg)` with the given parameters (a flat dict, `flat_params`), as a float32 NumPy function.

    The caller checks the parameters first (`param_shapes`, finite values): this class trusts them."""

    def __init__(self, cfg: ModelConfig, params: dict[str, Any]) -> None:
        self.cfg = cfg
        self.params = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in params.items()}
        self._layers = [self._fuse(layer) for layer in range(cfg.layers)]
        h = cfg.hidden
        self._gate_scale = np.full(8 * h, 0.5, dtype=np.float32)
        self._gate_scale[4 * h : 6 * h] = 1.0  # the g gate of both directions
        self._gate_shift = np.where(self._gate_scale == 0.5, np.float32(0.5), np.float32(0.0)).astype(np.float32)

    def _fuse(self, layer: int) -> tuple[F32, F32, F32]:
        """Both directions of a layer as one LSTM of twice the width: input kernels side by side, recurrent kernels
        block-diagonal, gate columns grouped as [i_fwd i_bwd | f_fwd f_bwd | g_fwd g_bwd | o_fwd o_bwd]. The gates
        i, f and o have their columns halved, as sigmoid(x) = (tanh(x / 2) + 1) / 2: one tanh over all the gates
        serves every activation of a step."""
        h = self.cfg.hidden
        cells = [self._cell_params(layer, d) for d in ("forward_rnn", "backward_rnn")]
        width = cells[0][0].shape[0]
        w_in = np.zeros((2, width, 8 * h), dtype=np.float32)  # [direction, inputs, fused gates]
        w_h = np.zeros((2 * h, 8 * h), dtype=np.float32)
        bias = np.zeros(8 * h, dtype=np.float32)
        for d, (kernel_i, kernel_h, b) in enumerate(cells):
            for gate in range(4):
                src = slice(gate * h, (gate + 1) * h)
                dst = slice((2 * gate + d) * h, (2 * gate + d + 1) * h)
                scale = np.float32(1.0 if gate == 2 else 0.5)
                w_in[d][:, dst] = kernel_i[:, src] * scale
                w_h[d * h : (d + 1) * h, dst] = kernel_h[:, src] * scale
                bias[dst] = b[src] * scale
        return w_in, w_h, bias

    def _cell_params(self, layer: int, direction: str) -> tuple[F32, F32, F32]:
        cell = f"encoder/{layer}/{direction}/cell"
        p = self.params
        return p[f"{cell}/dense_i/kernel"], p[f"{cell}/dense_h/kernel"], p[f"{cell}/dense_h/bias"]

    def _layer(self, x: F32, layer: int) -> F32:
        """One bidirectional layer over `x` [T, B, inputs] (time first, so that a step's rows are contiguous):
        [T, B, 2H], forward outputs then backward ones."""
        w_in, w_h, bias = self._layers[layer]
        t, b, _ = x.shape
        hs = w_h.shape[0]  # 2H: both directions
        # the input projection of every step at once; the backward direction reads time reversed
        xi = x @ w_in[0]
        xi += x[::-1] @ w_in[1]
        xi += bias
        h = np.zeros((b, hs), dtype=np.float32)
        c = np.zeros((b, hs), dtype=np.float32)
        y = np.empty((b, 4 * hs), dtype=np.float32)
        out = np.empty((t, b, hs), dtype=np.float32)
        half = hs // 2
        for step in range(t):
            np.matmul(h, w_h, out=y)
            y += xi[step]
            np.tanh(y, out=y)
            # i, f, o: (tanh + 1) / 2; g: tanh (one multiply and one add over the whole row, cheaper than four slices)
            y *= self._gate_scale
            y += self._gate_shift
            c *= y[:, hs : 2 * hs]
            c += y[:, :hs] * y[:, 2 * hs : 3 * hs]
            h = np.tanh(c)
            h *= y[:, 3 * hs :]
            out[step, :, :half] = h[:, :half]
            out[t - 1 - step, :, half:] = h[:, half:]  # the backward direction's output, back in time order
        return out

    def __call__(self, seq: F32, season: F32) -> F32:
        """Ratios to the level, [B, horizon, n_quantiles], from `seq` [B, window, N_FEATURES] and `season`
        [B, context_features] (`aihpa.forecast.input_pipeline.Inputs`)."""
        # parameters that overflow make inf and NaN here, as in the flax module: the callers check forecasts (a
        # model that forecasts NaN is refused at load; a NaN forecast falls back to the reactive HPA)
        with np.errstate(over="ignore", invalid="ignore"):
            return self._forward(seq, season)

    def _forward(self, seq: F32, season: F32) -> F32:
        cfg = self.cfg
        x = np.ascontiguousarray(np.asarray(seq, dtype=np.float32).transpose(1, 0, 2))
        for layer in range(cfg.layers):
            x = self._layer(x, layer)
        summary = np.concatenate([x[-1], x.mean(axis=0), np.asarray(season, dtype=np.float32)], axis=-1)
        z = _gelu(summary @ self.params["hidden/kernel"] + self.params["hidden/bias"])
        raw = z @ self.params["out/kernel"] + self.params["out/bias"]
        raw = raw.reshape(x.shape[1], cfg.horizon, cfg.n_quantiles)
        median = 1.0 + raw[..., :1]
        steps = np.logaddexp(raw[..., 1:] - np.float32(2.0), np.float32(0.0))  # softplus
        out: F32 = np.concatenate([median, median + np.cumsum(steps, axis=-1)], axis=-1).astype(np.float32)
        return out
