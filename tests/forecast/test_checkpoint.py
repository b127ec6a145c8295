"""Checkpoints: exact round trip, versions and `latest`, and refusal of corrupt or incompatible files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flax import nnx

from aihpa.forecast.checkpoint import (
    DIGEST,
    CheckpointError,
    checkpoint_digest,
    load_checkpoint,
    save_checkpoint,
    set_latest_version,
)
from aihpa.forecast.config import ModelConfig
from aihpa.forecast.forecaster import BiLSTMForecaster
from aihpa.forecast.model import BiLSTM


def _save(root: Path, cfg: ModelConfig, seed: int = 0) -> Path:
    return save_checkpoint(
        root,
        model=BiLSTM(cfg, rngs=nnx.Rngs(seed)),
        model_cfg=cfg,
        train_cfg=None,
        metrics={"val_pinball": 0.1},
        data=[],
        digest="d",
        created="2026-01-01T00:00:00+00:00",
        provenance={"command": "test"},
    )


def test_round_trip_gives_identical_forecasts(tmp_path: Path, small_cfg: ModelConfig) -> None:
    model = BiLSTM(small_cfg, rngs=nnx.Rngs(3))
    path = save_checkpoint(tmp_path, model=model, model_cfg=small_cfg, train_cfg=None, metrics={}, data=[],
                           digest="d", created="t", provenance={})
    loaded = load_checkpoint(tmp_path)
    assert loaded.path == path and loaded.model_cfg == small_cfg
    h = np.random.default_rng(0).uniform(1, 2, size=(4, 80))
    a = BiLSTMForecaster(model, version="a").predict(h, step_s=1800.0)
    b = BiLSTMForecaster(loaded.model, version="b").predict(h, step_s=1800.0)
    np.testing.assert_array_equal(a, b)
    assert not list(path.glob("*.pkl")) and json.loads((path / "metadata.json").read_text())["format"] == "aihpa-bilstm"


def test_versions_differ_by_parameters_and_latest_can_roll_back(tmp_path: Path, small_cfg: ModelConfig) -> None:
    first = _save(tmp_path, small_cfg, seed=0)
    second = _save(tmp_path, small_cfg, seed=1)
    assert first.name != second.name
    assert load_checkpoint(tmp_path).version == second.name
    set_latest_version(tmp_path, first.name)
    assert load_checkpoint(tmp_path).version == first.name
    with pytest.raises(CheckpointError, match="no checkpoint version"):
        set_latest_version(tmp_path, "bilstm-000000000000")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: (p / "params.msgpack").write_bytes(b"\x00garbage"), "does not match its recorded digest"),
        (lambda p: (p / "metadata.json").write_text("{not json"), "unreadable metadata.json"),
        (lambda p: _edit_meta(p, format_version=99), "format version 99"),
        (lambda p: _edit_meta(p, format="something-else"), "not an aihpa-bilstm checkpoint"),
        (lambda p: _edit_meta(p, model_config={"window": 16, "hidden": 9, "horizon": 4, "level_window": 4,
                                               "season_lead": 2, "max_season": 48, "head_hidden": 16}),
         "shape"),
        (lambda p: (p / "params.msgpack").unlink(), "unreadable params.msgpack"),
    ],
    ids=["corrupt-params", "corrupt-metadata", "future-format", "foreign-format", "other-shape", "missing-params"],
)
def test_corrupt_or_incompatible_checkpoints_are_refused(
    tmp_path: Path, small_cfg: ModelConfig, damage: object, message: str
) -> None:
    path = _save(tmp_path, small_cfg)
    damage(path)  # type: ignore[operator]
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def _edit_meta(path: Path, **changes: object) -> None:
    """Change metadata fields and record a digest that holds, so the check under test is the one that refuses."""
    meta = json.loads((path / "metadata.json").read_text())
    meta.update(changes)
    meta[DIGEST] = checkpoint_digest((path / "params.msgpack").read_bytes(), meta)
    (path / "metadata.json").write_text(json.dumps(meta))


def test_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="no such checkpoint directory"):
        load_checkpoint(tmp_path / "nope")
