"""The model's life cycle: challenge the champion with a fine-tuned challenger, promote only on a clear win, keep
a few versions, roll back, and notice drift.

A challenge fine-tunes a copy of the champion on each workload's history except its most recent `holdout_steps`,
then scores champion and challenger on exactly that held-out tail (pinball loss of the forecast 2 steps ahead,
relative to mean demand): data neither was trained on. The challenger is saved as a new version and promoted only
when it beats the champion by `margin`; otherwise nothing changes. Training is blocking and CPU-heavy: callers in an
event loop run `challenge` in a worker. No network; the caller passes `created` (no wall clock here).
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from aihpa.forecast.checkpoint import LATEST, METADATA, load_checkpoint, save_checkpoint, set_latest_version
from aihpa.forecast.config import TrainConfig
from aihpa.forecast.evaluate import evaluate
from aihpa.forecast.forecaster import BiLSTMForecaster
from aihpa.forecast.input_pipeline import Series
from aihpa.scaling.prior import PRIOR_KEY
from aihpa.traces import series_from_values

__all__ = [
    "Challenge",
    "DriftMonitor",
    "LifecycleSettings",
    "challenge",
    "challenge_from_checkpoint",
    "holdout_loss",
    "limit_worker",
    "prune",
    "rollback",
]


@dataclass(frozen=True)
class LifecycleSettings:
    # where versions live (one directory each, plus `latest`)
    models_dir: str
    # most recent steps of each history held out from training: the challenge is scored on them
    holdout_steps: int = 240
    # the challenger must beat the champion's held-out loss by this share to be promoted
    margin: float = 0.02
    # versions kept on disk (the one in use is never removed)
    keep: int = 5
    # train on at most this many of the most recent steps before the holdout (0: all): after a change, older
    # behaviour would outweigh the new one
    train_recent_steps: int = 0
    # a drift-triggered challenge trains only on the steps since the change (the old behaviour would teach the
    # challenger what no longer holds) and waits until there are this many of them before the holdout (0: as many
    # as holdout_steps)
    drift_train_steps: int = 0
    # fine-tuning run of a challenge: gentle (a tenth of a fresh run's learning rate), since it starts from a
    # trained model and sees little data
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(max_steps=300, eval_every=50, learning_rate=5e-4, progress=False)
    )
    # run challenges in a separate, lower-priority process (spawned once, reused) with an address space of at most
    # `worker_memory_bytes` (0: no limit), so training neither holds the controller's interpreter lock nor grows its
    # memory; False: a worker thread of the controller's own process
    separate_process: bool = True
    worker_memory_bytes: int = 4 * 2**30


@dataclass(frozen=True)
class Challenge:
    champion: str
    challenger: str | None
    champion_loss: float
    challenger_loss: float
    promoted: bool
    reason: str


def holdout_loss(forecaster: BiLSTMForecaster, series: Sequence[Series], *, holdout_steps: int) -> float:
    """Mean relative pinball loss (over the model's report quantiles) 2 steps ahead on each series' last steps."""
    losses = []
    for s in series:
        n = s.values.shape[0]
        if n <= holdout_steps + forecaster.min_history:
            continue
        trace = series_from_values(s.values, step_s=s.step_s, timestamps=s.times, name=s.name)
        row = evaluate(trace, {"m": forecaster}, steps_ahead=2, scored_fraction=holdout_steps / n)[0]
        losses.append(float(np.mean(list(row.pinball.values()))))
    if not losses:
        raise ValueError(f"no history is longer than the {holdout_steps}-step holdout plus the model's window")
    return float(np.mean(losses))


def challenge(
    champion: BiLSTMForecaster, series: Sequence[Series], settings: LifecycleSettings, *, created: str
) -> tuple[Challenge, BiLSTMForecaster | None]:
    """Fine-tune a challenger on all but the held-out tail; save and promote it only if it wins by the margin.

    Returns the outcome and, when promoted, the new forecaster (the caller swaps it in).
    """
    h = settings.holdout_steps
    lo = 0
    train_parts = []
    for s in series:
        n = s.values.shape[0]
        if n <= h:
            continue
        lo = max(0, n - h - settings.train_recent_steps) if settings.train_recent_steps > 0 else 0
        train_parts.append(dataclasses.replace(
            s, values=s.values[lo:-h], times=None if s.times is None else s.times[lo:-h]))
    base = holdout_loss(champion, series, holdout_steps=h)
    from aihpa.forecast.train import train  # JAX: imported only where a challenger is trained

    result = train(train_parts, champion.config, settings.train, init_from=champion.model)
    candidate = BiLSTMForecaster(result.model, version="challenger")
    loss = holdout_loss(candidate, series, holdout_steps=h)
    if not math.isfinite(loss) or loss >= base * (1.0 - settings.margin):
        return Challenge(champion=champion.version, challenger=None, champion_loss=base, challenger_loss=loss,
                         promoted=False, reason=f"challenger {loss:.5f} does not beat champion {base:.5f} by "
                         f"{settings.margin:.0%}"), None
    path = save_checkpoint(
        settings.models_dir, model=result.model, model_cfg=result.model_cfg, train_cfg=result.train_cfg,
        metrics={**result.metrics, "holdout_pinball": loss, "champion_holdout_pinball": base}, data=result.data,
        digest=result.digest, created=created,
        provenance={"command": "controller challenge", "parent": champion.version, "holdout_steps": h},
        # fine-tuned on the same step as its parent (the controller refused a parent of another step)
        step_s=champion.step_s if champion.step_s is not None else result.step_s,
        # and with its parent's calibration prior: the prior is measured in the model's own quantile band, which a
        # fine-tune moves little, and a challenger has no training traces of its own to learn one on
        extra={PRIOR_KEY: champion.metadata[PRIOR_KEY]} if PRIOR_KEY in champion.metadata else None,
    )
    promoted = BiLSTMForecaster.from_checkpoint(path)
    prune(settings.models_dir, keep=settings.keep)
    return Challenge(champion=champion.version, challenger=promoted.version, champion_loss=base,
                     challenger_loss=loss, promoted=True,
                     reason=f"challenger {loss:.5f} beats champion {base:.5f} by more than {settings.margin:.0%}"
                     ), promoted


def limit_worker(memory_bytes: int) -> None:
    """Initializer of the challenge worker process: lower its priority and cap its address space."""
    import os
    import resource

    os.nice(10)
    if memory_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def challenge_from_checkpoint(
    champion_dir: str, series: Sequence[Series], settings: LifecycleSettings, created: str
) -> tuple[Challenge, str | None]:
    """`challenge` for a worker process: the champion comes from its checkpoint, a promotion returns its path."""
    champion = BiLSTMForecaster.from_checkpoint(champion_dir)
    outcome, promoted = challenge(champion, series, settings, created=created)
    return outcome, None if promoted is None or promoted.path is None else str(promoted.path)


def _versions(models_dir: str | Path) -> list[Path]:
    """Version directories, oldest first by their recorded creation time."""
    root = Path(models_dir)
    dirs = [p for p in root.iterdir() if p.is_dir() and (p / METADATA).is_file()] if root.is_dir() else []
    return sorted(dirs, key=lambda p: (load_checkpoint(p).metadata.get("created", ""), p.name))


def prune(models_dir: str | Path, *, keep: int) -> list[str]:
    """Remove the oldest versions beyond `keep`, never the one `latest` names; returns the removed names."""
    root = Path(models_dir)
    latest = (root / LATEST).read_text().strip() if (root / LATEST).is_file() else ""
    versions = _versions(root)
    removed = []
    for p in versions[: max(0, len(versions) - keep)]:
        if p.name != latest:
            shutil.rmtree(p)
            removed.append(p.name)
    return removed


def rollback(models_dir: str | Path) -> BiLSTMForecaster:
    """Point `latest` at the version before the current one and load it (after a promotion that regressed)."""
    root = Path(models_dir)
    current = (root / LATEST).read_text().strip()
    names = [p.name for p in _versions(root)]
    if current not in names or names.index(current) == 0:
        raise ValueError(f"{root}: no version before {current!r} to roll back to")
    previous = names[names.index(current) - 1]
    set_latest_version(root, previous)
    return BiLSTMForecaster.from_checkpoint(root)


class DriftMonitor:
    """Tracks realized relative forecast errors; drift = the recent mean error well above the reference."""

    def __init__(self, *, window: int = 60, ratio: float = 1.5) -> None:
        self.window = window
        self.ratio = ratio
        self.recent: deque[float] = deque(maxlen=window)
        self.reference: float | None = None

    def observe(self, *, forecast: float, actual: float) -> None:
        if math.isfinite(forecast) and math.isfinite(actual):
            self.recent.append(abs(actual - forecast) / max(abs(actual), 1e-9))

    def reset(self) -> None:
        """Take the current error level as the reference (after training or promotion)."""
        self.reference = float(np.mean(self.recent)) if self.recent else None
        self.recent.clear()

    @property
    def drifted(self) -> bool:
        if self.reference is None or len(self.recent) < self.window:
            return False
        return float(np.mean(self.recent)) > self.ratio * max(self.reference, 1e-9)
