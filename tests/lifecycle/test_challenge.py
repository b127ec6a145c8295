"""Champion/challenger: promotion only on a clear win on held-out data, versions kept and pruned, rollback, drift."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from aihpa.forecast.checkpoint import load_checkpoint, save_checkpoint
from aihpa.forecast.config import TrainConfig
from aihpa.forecast.forecaster import BiLSTMForecaster
from aihpa.forecast.input_pipeline import Series
from aihpa.forecast.model import BiLSTM
from aihpa.forecast.train import train
from aihpa.lifecycle import DriftMonitor, LifecycleSettings, challenge, holdout_loss, prune, rollback
from aihpa.scaling.prior import BAND_PRIOR, PRIOR_KEY, prior_of
from tests.forecast.conftest import SMALL, daily_series

FAST = TrainConfig(seed=0, batch_size=64, max_steps=80, eval_every=20, patience=3, progress=False)


PRIOR = {PRIOR_KEY: {"points": 3, "scorings": {BAND_PRIOR: [0.0, 0.5, 1.5]}, "traces": ["t"]}}


def _save(root: Path, model: BiLSTM, created: str, *, extra: dict[str, object] | None = None) -> Path:
    return save_checkpoint(root, model=model, model_cfg=SMALL, train_cfg=None, metrics={}, data=[], digest="d",
                           created=created, provenance={}, extra=extra)


@pytest.mark.slow
def test_a_challenger_that_wins_on_held_out_data_is_saved_and_promoted(tmp_path: Path) -> None:
    untrained = BiLSTM(SMALL, rngs=nnx.Rngs(0))
    _save(tmp_path, untrained, "2026-01-01T00:00:00", extra=PRIOR)
    champion = BiLSTMForecaster.from_checkpoint(tmp_path)
    settings = LifecycleSettings(models_dir=str(tmp_path), holdout_steps=200, train=FAST)
    outcome, promoted = challenge(champion, [daily_series(1200)], settings, created="2026-01-02T00:00:00")
    assert outcome.promoted and promoted is not None, outcome.reason
    assert outcome.challenger_loss < outcome.champion_loss * 0.98
    assert load_checkpoint(tmp_path).version == promoted.version != champion.version
    assert load_checkpoint(tmp_path).metadata["provenance"]["parent"] == champion.version
    # the promoted model inherits its parent's calibration prior
    assert prior_of(promoted) == {BAND_PRIOR: (0.0, 0.5, 1.5)}


@pytest.mark.slow
def test_a_challenger_trained_on_noise_is_refused(tmp_path: Path) -> None:
    signal = daily_series(1200, seed=1)
    champion_model = train([signal], SMALL, dataclasses.replace(FAST, max_steps=150)).model
    _save(tmp_path, champion_model, "2026-01-01T00:00:00")
    champion = BiLSTMForecaster.from_checkpoint(tmp_path)
    rng = np.random.default_rng(2)
    noise_then_signal = Series(
        name="shifted", step_s=signal.step_s, times=signal.times,
        values=np.concatenate([rng.uniform(0, 20, 1000), signal.values[1000:]]).astype(np.float32),
    )
    settings = LifecycleSettings(models_dir=str(tmp_path), holdout_steps=200,
                                 train=dataclasses.replace(FAST, learning_rate=0.02, patience=50))
    outcome, promoted = challenge(champion, [noise_then_signal], settings, created="2026-01-02T00:00:00")
    assert not outcome.promoted and promoted is None, outcome.reason
    assert load_checkpoint(tmp_path).version == champion.version
    assert len([p for p in tmp_path.iterdir() if p.is_dir()]) == 1  # nothing new saved


def test_prune_keeps_the_newest_and_never_the_one_in_use_and_rollback_steps_back(tmp_path: Path) -> None:
    names = [_save(tmp_path, BiLSTM(SMALL, rngs=nnx.Rngs(i)), f"2026-01-0{i + 1}T00:00:00").name for i in range(4)]
    assert load_checkpoint(tmp_path).version == names[-1]
    back = rollback(tmp_path)
    assert back.version == names[2] == load_checkpoint(tmp_path).version
    removed = prune(tmp_path, keep=2)
    assert removed == names[:2]
    assert {p.name for p in tmp_path.iterdir() if p.is_dir()} == set(names[2:])
    with pytest.raises(ValueError, match="no version before"):  # names[2] is now the oldest kept
        rollback(tmp_path)


def test_holdout_loss_refuses_histories_shorter_than_the_holdout() -> None:
    fc = BiLSTMForecaster(BiLSTM(SMALL, rngs=nnx.Rngs(0)), version="x")
    with pytest.raises(ValueError, match="holdout"):
        holdout_loss(fc, [daily_series(100)], holdout_steps=200)


def test_drift_is_flagged_when_recent_errors_grow_past_the_reference() -> None:
    monitor = DriftMonitor(window=10, ratio=1.5)
    for _ in range(10):
        monitor.observe(forecast=9.0, actual=10.0)
    monitor.reset()
    for _ in range(10):
        monitor.observe(forecast=9.0, actual=10.0)
    assert not monitor.drifted
    for _ in range(10):
        monitor.observe(forecast=5.0, actual=10.0)
    assert monitor.drifted
