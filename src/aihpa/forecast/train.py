"""Training: optax (AdamW, warmup-cosine, gradient clipping) over pinball loss, time-ordered validation, early stop.

`train(series, model_cfg, train_cfg)` fits a fresh model; `train_and_evaluate(...)` also writes a versioned
checkpoint, like a Flax example's entry point. Deterministic: the same data, configs and seed give the same model.
Blocking and CPU-heavy: callers in an event loop run it in a worker. No network, no wall clock (the caller passes
`created`). Progress goes to stderr: a live bar on a terminal, else a plain line at each validation (logs, CI).
"""

from __future__ import annotations

import hashlib
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax
from flax import nnx

from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.input_pipeline import Inputs, Series, series_batch, training_positions
from aihpa.forecast.model import BiLSTM, pinball_loss
from aihpa.traces import Trace

__all__ = [
    "TrainResult", "data_digest", "describe_points", "history_part", "min_training_points", "model_step",
    "series_from_trace", "train", "train_and_evaluate",
]

#: Share of each trace, from its start, that models may fit on (DESIGN section 6.5); the rest is scored.
HISTORY_FRACTION = 0.2


@dataclass
class TrainResult:
    model: BiLSTM
    model_cfg: ModelConfig
    train_cfg: TrainConfig
    # best validation pinball loss, its step, steps run, final training loss
    metrics: dict[str, float]
    data: list[dict[str, Any]]
    digest: str
    # the model step (seconds) the checkpoint records: see `model_step`
    step_s: float | None = None


def series_from_trace(trace: Trace) -> Series:
    """A training series: absolute times only (relative time says nothing of the time of day)."""
    return Series(name=trace.name, values=trace.values, step_s=trace.step_s, times=trace.timestamps)


def model_step(series: Sequence[Series]) -> float | None:
    """The model step a model trained on `series` is recorded at: their step when they share one. A model trained
    on several steps (the step is one of its inputs) records the finest: the step whose horizon is shortest, and the
    one a controller reading live usage wants. None when no series knows its step."""
    steps = [float(s.step_s) for s in series if s.step_s is not None and s.step_s > 0]
    return min(steps) if steps else None


def history_part(trace: Trace, fraction: float = HISTORY_FRACTION) -> Trace:
    """The first `fraction` of a trace: the part a model may be trained on without seeing the scored window."""
    return trace.slice(0, max(2, math.floor(len(trace) * fraction)))


def data_digest(series: Sequence[Series]) -> str:
    h = hashlib.sha256()
    for s in series:
        h.update(s.name.encode())
        h.update(np.ascontiguousarray(s.values, dtype=np.float32).tobytes())
        h.update(repr(s.step_s).encode())
    return h.hexdigest()


def _horizon_weights(cfg: ModelConfig, decay: float) -> npt.NDArray[np.float32]:
    w = (1.0 + np.arange(cfg.horizon, dtype=np.float64)) ** (-decay)
    out: npt.NDArray[np.float32] = (w / w.sum()).astype(np.float32)
    return out


@dataclass(frozen=True)
class _Split:
    series: Series
    train: npt.NDArray[np.int64]
    val: npt.NDArray[np.int64]


def _split_positions(
    n: int, model_cfg: ModelConfig, train_cfg: TrainConfig
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Training and validation positions of a series of `n` points."""
    positions = training_positions(n, model_cfg)
    n_val = max(1, int(len(positions) * train_cfg.val_fraction)) if len(positions) > 1 else 0
    val = positions[len(positions) - n_val :]
    cut = val[0] - model_cfg.horizon if n_val else positions[-1] + 1 if len(positions) else 0
    # training targets must end before the first validation window's targets begin
    train = positions[positions < cut][:: max(1, train_cfg.stride)]
    return train, val


def _split(series: Series, model_cfg: ModelConfig, train_cfg: TrainConfig) -> _Split:
    train, val = _split_positions(series.values.shape[0], model_cfg, train_cfg)
    return _Split(series=series, train=train, val=val)


def _usable(split: _Split) -> bool:
    # a series too short to hold validation windows after its training windows teaches nothing that can be checked
    return len(split.train) > 0 and len(split.val) > 0


def min_training_points(model_cfg: ModelConfig, train_cfg: TrainConfig) -> int:
    """The fewest points a series needs for training windows and, after them, validation windows (`train` leaves
    shorter series out). Every longer series has them too."""
    start = model_cfg.window + model_cfg.horizon
    # past this, the positions outside validation exceed the horizon for any val_fraction the config accepts
    stop = start + math.ceil((model_cfg.horizon + 2) / max(1e-3, 1.0 - train_cfg.val_fraction)) + 2
    for n in range(start, stop + 1):
        train, val = _split_positions(n, model_cfg, train_cfg)
        if len(train) > 0 and len(val) > 0:
            return n
    raise ValueError(f"val_fraction {train_cfg.val_fraction} leaves no series anything to train on")


def describe_points(points: int, step_s: float | None) -> str:
    """`points` in the user's units: "200 rows (3 h 20 min at 60 s)", or "200 rows" when the step is unknown."""
    rows = f"{points} row{'s' if points != 1 else ''}"
    if step_s is None or not step_s > 0:
        return rows
    return f"{rows} ({_duration(points * step_s)} at {step_s:g} s)"


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{seconds:g} s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if s >= size:
            parts.append(f"{s // size} {unit}")
            s %= size
    return " ".join(parts[:2])


def _concat(parts: list[tuple[Inputs, npt.NDArray[np.float32]]]) -> tuple[Inputs, npt.NDArray[np.float32]]:
    return (
        Inputs(
            seq=np.concatenate([p[0].seq for p in parts]),
            season=np.concatenate([p[0].season for p in parts]),
            level=np.concatenate([p[0].level for p in parts]),
        ),
        np.concatenate([p[1] for p in parts]),
    )


def _validation_set(splits: list[_Split], cfg: ModelConfig, per_series: int = 768) -> tuple[Inputs, Any]:
    parts = []
    for sp in splits:
        if len(sp.val) == 0:
            continue
        take = np.unique(np.linspace(0, len(sp.val) - 1, min(per_series, len(sp.val))).astype(np.int64))
        parts.append(series_batch(sp.series, sp.val[take], cfg))
    return _concat(parts)


def train(
    series: Sequence[Series],
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    *,
    init_from: BiLSTM | None = None,
) -> TrainResult:
    """Fit a model on `series` (fine-tune a copy of `init_from` when given). Raises ValueError on unusable data."""
    model_cfg.validate()
    if not 0.0 <= train_cfg.short_history <= 1.0:
        raise ValueError(f"short_history must be a probability in [0, 1], got {train_cfg.short_history}")
    splits = [_split(s, model_cfg, train_cfg) for s in series]
    splits = [sp for sp in splits if _usable(sp)]
    if not splits:
        need = min_training_points(model_cfg, train_cfg)
        longest = max(series, key=lambda s: s.values.shape[0], default=None)
        have = "" if longest is None else (
            f": the longest, {longest.name}, has {describe_points(longest.values.shape[0], longest.step_s)}")
        raise ValueError(
            f"no series is long enough to train on{have}; each needs at least "
            f"{describe_points(need, None if longest is None else longest.step_s)} (a {model_cfg.window}-step "
            f"window and a {model_cfg.horizon}-step horizon, then validation windows after the training ones)"
        )
    rng = np.random.default_rng(train_cfg.seed)
    if init_from is not None:
        graphdef, state = nnx.split(init_from)
        model: BiLSTM = nnx.merge(graphdef, jax.tree.map(jnp.array, state))
    else:
        model = BiLSTM(model_cfg, rngs=nnx.Rngs(train_cfg.seed))

    schedule = optax.warmup_cosine_decay_schedule(
        init_value=train_cfg.learning_rate * 0.05,
        peak_value=train_cfg.learning_rate,
        warmup_steps=min(train_cfg.warmup_steps, max(1, train_cfg.max_steps // 4)),
        decay_steps=max(train_cfg.max_steps, 2),
        end_value=train_cfg.learning_rate * 0.02,
    )
    tx = optax.chain(
        optax.clip_by_global_norm(train_cfg.grad_clip),
        optax.adamw(schedule, weight_decay=train_cfg.weight_decay),
    )
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    quantiles = jnp.asarray(model_cfg.quantiles, dtype=jnp.float32)
    weights = jnp.asarray(_horizon_weights(model_cfg, train_cfg.horizon_decay))

    @nnx.jit
    def train_step(
        model: BiLSTM,
        optimizer: nnx.Optimizer[BiLSTM],
        seq: npt.NDArray[np.float32],
        season: npt.NDArray[np.float32],
        target: npt.NDArray[np.float32],
    ) -> jax.Array:
        def loss_fn(m: BiLSTM) -> jax.Array:
            return pinball_loss(m(jnp.asarray(seq), jnp.asarray(season)), jnp.asarray(target), quantiles, weights)

        loss, grads = nnx.value_and_grad(loss_fn)(model)
        optimizer.update(model, grads)
        out: jax.Array = loss
        return out

    @nnx.jit
    def eval_loss(
        model: BiLSTM,
        seq: npt.NDArray[np.float32],
        season: npt.NDArray[np.float32],
        target: npt.NDArray[np.float32],
    ) -> jax.Array:
        return pinball_loss(model(jnp.asarray(seq), jnp.asarray(season)), jnp.asarray(target), quantiles, weights)

    val_inputs, val_targets = _validation_set(splits, model_cfg)
    best = math.inf
    best_step = 0
    best_state = nnx.state(model, nnx.Param)
    bad_evals = 0
    last_loss = math.nan
    step = 0
    progress = _progress(train_cfg.progress, total=train_cfg.max_steps)
    try:
        for step in range(1, train_cfg.max_steps + 1):
            which = rng.integers(len(splits), size=train_cfg.batch_size)
            parts = []
            for k in np.unique(which):
                sp = splits[int(k)]
                count = int((which == k).sum())
                pos = sp.train[rng.integers(len(sp.train), size=count)]
                ramp = None
                if train_cfg.augment_ramp > 0:
                    ramp = np.where(
                        rng.random(count) < train_cfg.augment_ramp, rng.normal(0.0, 0.5, count), 0.0
                    ).astype(np.float32)
                shift = None
                if train_cfg.weekday_shift > 0:
                    shift = np.where(
                        rng.random(count) < train_cfg.weekday_shift, rng.integers(1, 7, count), 0
                    ).astype(np.int64)
                lengths = None
                if train_cfg.short_history > 0 and model_cfg.shortest_history < model_cfg.window:
                    lengths = np.where(
                        rng.random(count) < train_cfg.short_history,
                        rng.integers(model_cfg.shortest_history, model_cfg.window, count),
                        np.iinfo(np.int64).max // 2,
                    ).astype(np.int64)
                parts.append(
                    series_batch(sp.series, pos, model_cfg, ramp=ramp, day_shift=shift, lengths=lengths)
                )
            inputs, targets = _concat(parts)
            seq, season = _dropout(inputs, rng, train_cfg)
            last_loss = float(train_step(model, optimizer, seq, season, targets))
            if not math.isfinite(last_loss):
                raise FloatingPointError(f"training diverged at step {step} (loss {last_loss})")
            if step % train_cfg.eval_every == 0 or step == train_cfg.max_steps:
                val = float(eval_loss(model, val_inputs.seq, val_inputs.season, val_targets))
                if val < best - 1e-6:
                    best, best_step, bad_evals = val, step, 0
                    best_state = jax.tree.map(jnp.copy, nnx.state(model, nnx.Param))
                else:
                    bad_evals += 1
                if progress is not None:
                    progress.evaluated(step, val, best)
                if bad_evals >= train_cfg.patience:
                    if progress is not None:
                        progress.note(f"stopped early at step {step}: no better validation loss in "
                                      f"{train_cfg.patience} evaluations (best at step {best_step})")
                    break
            if progress is not None:
                progress.advance()
    finally:
        if progress is not None:
            progress.stop()
    nnx.update(model, best_state)
    used = [s for s in series if any(sp.series is s for sp in splits)]
    return TrainResult(
        model=model,
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        metrics={"val_pinball": best, "best_step": float(best_step), "steps": float(step), "train_loss": last_loss},
        data=[{"name": s.name, "points": int(s.values.shape[0]), "step_s": s.step_s} for s in used],
        digest=data_digest(used),
        step_s=model_step(used),
    )


def _dropout(
    inputs: Inputs, rng: np.random.Generator, cfg: TrainConfig
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """Hide the calendar and seasonal inputs of random windows (see TrainConfig)."""
    b = inputs.seq.shape[0]
    seq = inputs.seq
    if cfg.calendar_dropout > 0:
        hide_cal = rng.random((b,)) < cfg.calendar_dropout
        seq = seq.copy()
        seq[hide_cal, :, 1:6] = 0.0
    season = inputs.season
    if cfg.season_dropout > 0:
        hide_season = rng.random((b,)) < cfg.season_dropout
        season = np.where(hide_season[:, None], 0.0, season).astype(np.float32)
    return seq, season


class _Progress:
    """Training progress on stderr: a live bar on a terminal, else one plain line per validation (a log, CI)."""

    def __init__(self, total: int, *, live: bool) -> None:
        self.total = total
        self._bar: Any = None
        self._task: Any = None
        if live:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), transient=True, console=Console(stderr=True))
            self._task = self._bar.add_task("training", total=total)
            self._bar.start()

    def evaluated(self, step: int, val: float, best: float) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=f"training  val {val:.4f}  best {best:.4f}")
        else:
            self.note(f"step {step}/{self.total}, validation pinball {val:.4f} (best {best:.4f})")

    def note(self, text: str) -> None:
        if self._bar is not None:
            self._bar.console.print(f"training: {text}")
        else:
            print(f"training: {text}", file=sys.stderr, flush=True)

    def advance(self) -> None:
        if self._bar is not None:
            self._bar.advance(self._task)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _progress(enabled: bool, *, total: int) -> _Progress | None:
    if not enabled:
        return None
    return _Progress(total, live=sys.stderr.isatty())


def train_and_evaluate(
    series: Sequence[Series],
    *,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig,
    workdir: str | Path,
    created: str,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Train and write a versioned checkpoint into `workdir`; returns the checkpoint directory."""
    from aihpa.forecast.checkpoint import save_checkpoint

    result = train(series, model_cfg, train_cfg)
    return save_checkpoint(
        workdir,
        model=result.model,
        model_cfg=model_cfg,
        train_cfg=train_cfg,
        metrics=result.metrics,
        data=result.data,
        digest=result.digest,
        created=created,
        provenance=provenance or {},
        step_s=result.step_s,
    )
