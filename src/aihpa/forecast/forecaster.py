"""The `Forecaster` protocol and its implementations.

A forecaster turns recent history of many workloads into quantile forecasts for each step of a horizon, in one call:
`predict(histories) -> float32[batch, horizon, len(quantiles)]`, in each series' own units. Callers (the backtest,
the controller) never spawn a process per prediction: they batch every workload into one in-process call.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from aihpa.forecast.checkpoint import STEP
from aihpa.forecast.config import ModelConfig
from aihpa.forecast.input_pipeline import fill_nonfinite, inference_inputs
from aihpa.forecast.serving import NumpyBiLSTM, flat_params, nested_params
from aihpa.step import DEFAULT_STEP_S

if TYPE_CHECKING:
    from aihpa.forecast.model import BiLSTM

__all__ = [
    "BATCH_BUCKETS",
    "DAY_OF_STEPS",
    "DEFAULT_QUANTILES",
    "BiLSTMForecaster",
    "Forecaster",
    "LastValueForecaster",
    "SeasonalNaiveForecaster",
    "UnavailableForecaster",
    "bucket_size",
    "default_model_dir",
    "load_default_forecaster",
    "stack_histories",
]

DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)
#: One day of model steps (1440 at 60 s): the seasonal-naive period when the samples' step is not known.
DAY_OF_STEPS: int = round(86400.0 / DEFAULT_STEP_S)


@runtime_checkable
class Forecaster(Protocol):
    """Batched quantile forecasts.

    `histories[i]` is the recent past of workload i, oldest first, at one step per sample (at least `min_history`
    points; longer is fine, only the last `context` points are read). `end_times[i]` is the time in seconds (Unix
    epoch, UTC, or relative) of the last sample of workload i, when known: it feeds calendar features. `step_s` is the
    spacing of samples in seconds, when known (a scalar for all rows).
    """

    @property
    def version(self) -> str: ...

    @property
    def horizon(self) -> int: ...

    @property
    def quantiles(self) -> tuple[float, ...]: ...

    @property
    def context(self) -> int:
        """How many of the most recent points `predict` reads."""
        ...

    @property
    def min_history(self) -> int:
        """The fewest points a history may have; shorter ones are padded by the caller's choice or rejected."""
        ...

    @property
    def step_s(self) -> float | None:
        """The model step (seconds) it was trained at, which its callers' samples must be spaced by; None: any."""
        ...

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]: ...


def stack_histories(
    histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating], length: int
) -> npt.NDArray[np.float32]:
    """The last `length` points of each history as one float32 [batch, length] array.

    Shorter histories are left-padded with their first value (an empty one with zeros); non-finite points are
    replaced by the previous finite value, so one bad sample never poisons a batch.
    """
    if isinstance(histories, np.ndarray) and histories.ndim == 2 and histories.shape[1] >= length:
        out = np.asarray(histories[:, histories.shape[1] - length :], dtype=np.float32).copy()
    else:
        out = np.zeros((len(histories), length), dtype=np.float32)
        for i, h in enumerate(histories):
            row = np.asarray(h, dtype=np.float32).reshape(-1)[-length:]
            if row.size:
                out[i, length - row.size :] = row
                out[i, : length - row.size] = row[0]
    return fill_nonfinite(out)


class _Baseline:
    """What the simple forecasters share: a horizon, quantiles, and one point of history by default."""

    def __init__(self, *, horizon: int = 15, quantiles: tuple[float, ...] = DEFAULT_QUANTILES) -> None:
        self._horizon = horizon
        self._quantiles = quantiles

    @property
    def horizon(self) -> int:
        return self._horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self._quantiles

    @property
    def context(self) -> int:
        return 1

    @property
    def min_history(self) -> int:
        return 1

    @property
    def step_s(self) -> float | None:
        return None  # a rule, not a trained model: it reads samples at any step


class LastValueForecaster(_Baseline):
    """Every quantile of every future step equals the last observed value."""

    version = "last-value"

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        last = stack_histories(histories, 1)[:, 0]
        return np.broadcast_to(last[:, None, None], (last.shape[0], self._horizon, len(self._quantiles))).copy()


class SeasonalNaiveForecaster(_Baseline):
    """Step h ahead equals the value one season (`period` steps) before it; every quantile alike.

    The period is one day of steps when `step_s` is given to `predict`, else `period` (default: a day of model steps).
    """

    def __init__(
        self, *, period: int = DAY_OF_STEPS, horizon: int = 15, quantiles: tuple[float, ...] = DEFAULT_QUANTILES
    ) -> None:
        if period < horizon:
            raise ValueError(f"season of {period} steps is shorter than the horizon {horizon}")
        super().__init__(horizon=horizon, quantiles=quantiles)
        self._period = period

    version = "seasonal-naive"

    @property
    def context(self) -> int:
        return self._period

    @property
    def min_history(self) -> int:
        return self._period

    def period_for(self, step_s: float | None) -> int:
        if step_s is None or step_s <= 0:
            return self._period
        return max(self._horizon, round(86400.0 / step_s))

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        period = self.period_for(step_s)
        window = stack_histories(histories, period)
        # the value one season before step t+h (h = 1..H) sits at index period - 1 + h - period = h - 1
        ahead = window[:, : self._horizon]
        return np.repeat(ahead[:, :, None], len(self._quantiles), axis=2)


#: Batch sizes that inference pads to, so that shapes (and compilations) stay few. Beyond the last, multiples of it.
BATCH_BUCKETS: tuple[int, ...] = (1, 8, 32, 128, 512, 1024, 2048, 4096, 6144, 8192, 10240, 12288, 16384)


def bucket_size(batch: int) -> int:
    """The padded batch size for `batch` rows."""
    for b in BATCH_BUCKETS:
        if batch <= b:
            return b
    top = BATCH_BUCKETS[-1]
    return -(-batch // top) * top


class BiLSTMForecaster:
    """The Bi-LSTM behind the `Forecaster` protocol: one call per batch.

    Build it from a checkpoint (`from_checkpoint`, `load_default_forecaster`) or from a trained flax module. It serves
    with `engine`:

    - "numpy" (the default): the model's forward pass in NumPy (`aihpa.forecast.serving.NumpyBiLSTM`), in chunks of
      `max_batch` rows. A forecaster loaded from a checkpoint then never imports JAX: the controller, the webhook and
      the demo run without the XLA runtime (~350 MB of memory).
    - "jax": the flax module, jitted, batches padded to a few bucket sizes (`bucket_size`) so that shapes (and
      compilations) stay few; `compilations` counts traces of the jitted function. Faster on large batches
      (`benchmarks/bench_inference.py` prints both); the two agree to float32 rounding.
    """

    def __init__(
        self,
        model: BiLSTM | NumpyBiLSTM,
        *,
        version: str,
        metadata: dict[str, Any] | None = None,
        engine: Literal["numpy", "jax"] = "numpy",
    ) -> None:
        if engine not in ("numpy", "jax"):
            raise ValueError(f"engine must be 'numpy' or 'jax', not {engine!r}")
        if isinstance(model, NumpyBiLSTM):
            self._serving, self._model = model, None
        else:
            from aihpa.forecast.checkpoint import pure_params

            self._serving, self._model = NumpyBiLSTM(model.cfg, flat_params(pure_params(model))), model
        self._cfg: ModelConfig = self._serving.cfg
        self._version = version
        self.engine = engine
        self.metadata: dict[str, Any] = dict(metadata or {})
        # the checkpoint directory it was loaded from, when it was
        self.path: Path | None = None
        self.compilations = 0
        self._jitted: Any = None
        # the most rows one call forecasts (`predict` cuts larger batches into chunks of this size): NumPy is fastest
        # on chunks that stay in cache; with JAX, the runtime's working memory follows the chunk, not the batch
        self.max_batch = 256 if engine == "numpy" else 2048

    def _jit(self) -> Any:
        """The jitted flax forward pass (built on first use: imports JAX)."""
        if self._jitted is None:
            import jax
            import jax.numpy as jnp
            from flax import nnx

            graphdef, state = nnx.split(self.model)

            def run(state: Any, seq: Any, season: Any) -> Any:
                self.compilations += 1  # runs only while tracing
                return nnx.merge(graphdef, state)(seq, season)

            jitted = jax.jit(run)
            self._jitted = lambda seq, season: np.asarray(jitted(state, jnp.asarray(seq), jnp.asarray(season)))
        return self._jitted

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> BiLSTMForecaster:
        from aihpa.forecast.checkpoint import load_checkpoint

        ckpt = load_checkpoint(path)
        fc = cls(NumpyBiLSTM(ckpt.model_cfg, flat_params(ckpt.params)), version=ckpt.version, metadata=ckpt.metadata)
        fc.path = ckpt.path
        fc._check_forecasts()
        return fc

    def _check_forecasts(self) -> None:
        """Refuse a model whose forecast of a plain daily cycle is not finite (one jitted call, batch of one).

        Parameters that are each finite can still overflow together; better no model (the caller keeps its own or
        scales reactively) than one that forecasts NaN for every workload.
        """
        from aihpa.forecast.checkpoint import CheckpointError

        cfg = self._cfg
        # a day the seasonal context covers, a history long enough to use it, and a known end time: the full path
        day = max(cfg.horizon, min(cfg.max_season, DAY_OF_STEPS))
        t = np.arange(cfg.context + 1, dtype=np.float64)
        history = (10.0 + 5.0 * np.sin(2.0 * np.pi * t / day))[None, :]
        out = self.predict(history, end_times=[1_700_000_000.0], step_s=86400.0 / day)
        if not np.isfinite(out).all():
            raise CheckpointError(
                f"{self.path}: model {self._version} forecasts non-finite values for a plain daily cycle; its "
                "parameters are unusable: train a new model with `aihpa train` or roll back to an earlier version"
            )

    @property
    def version(self) -> str:
        return self._version

    @property
    def config(self) -> ModelConfig:
        return self._cfg

    @property
    def model(self) -> BiLSTM:
        """The flax module (e.g. to fine-tune a copy of it; built on first use when loaded from a checkpoint, which
        imports JAX); do not change it in place while forecasting."""
        if self._model is None:
            from aihpa.forecast.checkpoint import build_model

            self._model = build_model(self._cfg, nested_params(self._serving.params))
        return self._model

    @property
    def horizon(self) -> int:
        return self._cfg.horizon

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self._cfg.quantiles

    @property
    def context(self) -> int:
        return self._cfg.context

    @property
    def min_history(self) -> int:
        return self._cfg.shortest_history

    @property
    def step_s(self) -> float | None:
        """The model step its checkpoint records (see `aihpa.forecast.checkpoint`); None when it records none."""
        step = self.metadata.get(STEP)
        return None if step is None else float(step)

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        n = len(histories)
        cfg = self._cfg
        if n == 0:
            return np.zeros((0, cfg.horizon, cfg.n_quantiles), dtype=np.float32)
        dense = histories if isinstance(histories, np.ndarray) and histories.ndim == 2 else None
        times = np.full(n, np.nan, dtype=np.float64)
        if end_times is not None:
            times[:] = [np.nan if t is None else float(t) for t in end_times]
        out = np.empty((n, cfg.horizon, cfg.n_quantiles), dtype=np.float32)
        # in chunks of at most `max_batch` rows, the histories' window included: working memory follows the chunk,
        # not the batch (10,000 histories of a day and more, stacked and cleaned at once, are ~120 MB; with JAX, at
        # 10,000 rows in one call the model alone grows by ~250 MB, in chunks of 2,048 by ~50 MB, for the same time)
        for lo in range(0, n, self.max_batch):
            hi = min(n, lo + self.max_batch)
            if dense is not None:
                # a dense batch is read in place: only the points the model uses are gathered (and cleaned)
                window = np.asarray(dense[lo:hi], dtype=np.float32)
                lengths = np.full(hi - lo, dense.shape[1], dtype=np.int64)
            else:
                part = histories[lo:hi]
                window = stack_histories(part, cfg.context)
                lengths = np.asarray([np.size(h) for h in part], dtype=np.int64)
            inputs = inference_inputs(window, lengths=lengths, end_times=times[lo:hi], step_s=step_s, cfg=cfg)
            out[lo:hi] = self._chunk(inputs.seq, inputs.season, inputs.level)
        # a non-finite forecast must never reach a scaler: callers see NaN and fall back to reactive
        return out

    def _chunk(self, seq: npt.NDArray[np.float32], season: npt.NDArray[np.float32],
               level: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        n = seq.shape[0]
        if self.engine == "numpy":
            ratios = self._serving(seq, season)
        else:
            size = bucket_size(n)
            if size != n:
                pad = size - n
                seq = np.concatenate([seq, np.zeros((pad, *seq.shape[1:]), dtype=np.float32)])
                season = np.concatenate([season, np.zeros((pad, season.shape[1]), dtype=np.float32)])
            ratios = self._jit()(seq, season)[:n]
        out: npt.NDArray[np.float32] = (np.maximum(ratios, 0.0) * level[:, None, None]).astype(np.float32)
        return out


def default_model_dir() -> Path:
    """Where the default model ships inside the package."""
    return Path(__file__).resolve().parent.parent / "models" / "default"


def load_default_forecaster() -> BiLSTMForecaster:
    """The Bi-LSTM trained on the shared traces that ships with aihpa."""
    return BiLSTMForecaster.from_checkpoint(default_model_dir())


class UnavailableForecaster(_Baseline):
    """Stands in when no model could be loaded: every forecast is NaN, so every policy falls back to reactive.

    `reason` says why, for logs and Events; the controller keeps scaling (reactively) instead of stopping.
    """

    def __init__(self, *, reason: str, horizon: int = 15, quantiles: tuple[float, ...] = DEFAULT_QUANTILES) -> None:
        super().__init__(horizon=horizon, quantiles=quantiles)
        self.reason = reason

    version = "unavailable"

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: Sequence[float | None] | npt.NDArray[np.floating] | None = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        return np.full((len(histories), self._horizon, len(self._quantiles)), np.nan, dtype=np.float32)
