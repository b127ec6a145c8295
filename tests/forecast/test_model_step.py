"""The model step: training records it, the checkpoint seals it, the forecaster exposes it; older checkpoints read as
unknown, and a step that is no positive number of seconds is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flax import nnx

from aihpa.forecast.checkpoint import DIGEST, STEP, CheckpointError, checkpoint_digest, load_checkpoint, save_checkpoint
from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.forecaster import (
    BiLSTMForecaster,
    Forecaster,
    LastValueForecaster,
    SeasonalNaiveForecaster,
    UnavailableForecaster,
    load_default_forecaster,
)
from aihpa.forecast.input_pipeline import Series
from aihpa.forecast.model import BiLSTM
from aihpa.forecast.train import model_step, train
from aihpa.step import DEFAULT_STEP_S
from tests.forecast.conftest import daily_series


def _save(root: Path, cfg: ModelConfig, **kwargs: Any) -> Path:
    return save_checkpoint(root, model=BiLSTM(cfg, rngs=nnx.Rngs(0)), model_cfg=cfg, train_cfg=None, metrics={},
                           data=[], digest="d", created="2026-01-01T00:00:00+00:00", provenance={}, **kwargs)


def _rewrite(path: Path, edit: Any) -> None:
    """Edit metadata.json and seal the edit (the digest recomputed), as a checkpoint written so would be."""
    meta = json.loads((path / "metadata.json").read_text())
    edit(meta)
    meta[DIGEST] = checkpoint_digest((path / "params.msgpack").read_bytes(), meta)
    (path / "metadata.json").write_text(json.dumps(meta))


def test_the_checkpoint_seals_the_step_and_the_forecaster_exposes_it(tmp_path: Path, small_cfg: ModelConfig) -> None:
    path = _save(tmp_path, small_cfg, step_s=300.0)
    assert load_checkpoint(path).step_s == 300.0
    assert BiLSTMForecaster.from_checkpoint(path).step_s == 300.0
    meta = json.loads((path / "metadata.json").read_text())
    meta[STEP] = 60.0  # an edit without a new digest is caught like any other
    (path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="digest"):
        load_checkpoint(path)


def test_a_checkpoint_without_a_step_reads_as_unknown(tmp_path: Path, small_cfg: ModelConfig) -> None:
    unknown = _save(tmp_path / "unknown", small_cfg)
    assert json.loads((unknown / "metadata.json").read_text())[STEP] is None
    assert BiLSTMForecaster.from_checkpoint(unknown).step_s is None
    older = _save(tmp_path / "older", small_cfg, step_s=60.0)
    _rewrite(older, lambda meta: meta.pop(STEP))  # written before the step was recorded
    assert load_checkpoint(older).step_s is None


@pytest.mark.parametrize("bad", [0, -60.0, "60", True, float("inf")], ids=repr)
def test_a_step_that_is_no_positive_number_of_seconds_is_refused(
    tmp_path: Path, small_cfg: ModelConfig, bad: object
) -> None:
    path = _save(tmp_path, small_cfg, step_s=60.0)
    _rewrite(path, lambda meta: meta.update({STEP: bad}))
    with pytest.raises(CheckpointError, match=STEP):
        load_checkpoint(path)
    if isinstance(bad, float | int) and not isinstance(bad, bool):
        with pytest.raises(ValueError, match="model step"):
            _save(tmp_path / "new", small_cfg, step_s=float(bad))


def test_the_shipped_model_was_trained_at_the_default_step() -> None:
    assert load_default_forecaster().step_s == DEFAULT_STEP_S


def test_baselines_read_samples_at_any_step() -> None:
    for fc in (LastValueForecaster(), SeasonalNaiveForecaster(), UnavailableForecaster(reason="test")):
        assert isinstance(fc, Forecaster) and fc.step_s is None


def _series(step_s: float | None) -> Series:
    return Series(name=f"s{step_s}", values=np.ones(10, dtype=np.float32), step_s=step_s, times=None)


@pytest.mark.parametrize(
    ("steps", "expected"),
    [((300.0, 300.0), 300.0), ((3600.0, 60.0, 300.0), 60.0), ((None, 300.0), 300.0), ((None,), None)],
    ids=["shared", "several_record_the_finest", "unknown_ones_are_left_out", "none_known"],
)
def test_the_model_step_of_the_training_series(steps: tuple[float | None, ...], expected: float | None) -> None:
    assert model_step([_series(s) for s in steps]) == expected


def test_training_records_the_step_of_its_series(small_cfg: ModelConfig, fast_train: TrainConfig) -> None:
    series = daily_series(800)
    assert train([series], small_cfg, fast_train).step_s == series.step_s == 1800.0
