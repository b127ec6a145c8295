"""A checkpoint that would forecast NaN or answer for other quantiles never loads: the digest covers the metadata,
the config is validated field by field, and the loaded model must forecast finite values."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flax import nnx

from aihpa.forecast.checkpoint import (
    DIGEST,
    CheckpointError,
    checkpoint_digest,
    load_checkpoint,
    save_checkpoint,
    seal_checkpoint,
)
from aihpa.forecast.config import ModelConfig
from aihpa.forecast.forecaster import BiLSTMForecaster, default_model_dir, load_default_forecaster
from aihpa.forecast.model import BiLSTM


def _save(root: Path, model: BiLSTM, cfg: ModelConfig) -> Path:
    return save_checkpoint(root, model=model, model_cfg=cfg, train_cfg=None, metrics={"val_pinball": 0.1}, data=[],
                           digest="d", created="2026-01-01T00:00:00+00:00", provenance={"command": "test"})


def _meta(path: Path) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((path / "metadata.json").read_text())
    return meta


def _write(path: Path, meta: dict[str, Any], *, digest: str = "recompute") -> None:
    """Write metadata.json; `digest` "recompute": with a digest that holds, "keep": as given, "drop": without one."""
    meta = dict(meta)
    if digest == "recompute":
        meta[DIGEST] = checkpoint_digest((path / "params.msgpack").read_bytes(), meta)
    elif digest == "drop":
        meta.pop(DIGEST, None)
    (path / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=True))


def _with_config(path: Path, **changes: Any) -> dict[str, Any]:
    meta = _meta(path)
    meta["model_config"] = {**meta["model_config"], **changes}
    return meta


@pytest.fixture
def ckpt(tmp_path: Path, small_cfg: ModelConfig) -> Path:
    return _save(tmp_path, BiLSTM(small_cfg, rngs=nnx.Rngs(0)), small_cfg)


def test_the_writer_records_a_digest_of_parameters_and_metadata_that_the_reader_checks(ckpt: Path) -> None:
    meta = _meta(ckpt)
    assert meta[DIGEST] == checkpoint_digest((ckpt / "params.msgpack").read_bytes(), meta)
    assert meta["params_sha256"] and meta["version"] == ckpt.name
    assert load_checkpoint(ckpt).metadata[DIGEST] == meta[DIGEST]


def test_the_digest_does_not_depend_on_key_order_or_layout(ckpt: Path) -> None:
    meta = _meta(ckpt)
    reordered = dict(reversed(list(meta.items())))
    (ckpt / "metadata.json").write_text(json.dumps(reordered))  # one line, keys in reverse order
    assert load_checkpoint(ckpt).version == ckpt.name


@pytest.mark.parametrize(
    "edit",
    [
        lambda meta: meta["model_config"].update(quantiles=[0.1, 0.2, 0.3, 0.4, 0.5]),
        lambda meta: meta["model_config"].update(input_clip=4.0),
        lambda meta: meta["model_config"].update(input_clip=float("nan")),
        lambda meta: meta.update(version="bilstm-000000000000"),
        lambda meta: meta.update({DIGEST: "0" * 64}),
    ],
    ids=["relabelled-quantiles", "other-clip", "nan-clip", "other-version", "forged-digest"],
)
def test_edited_metadata_with_intact_parameters_is_refused(ckpt: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    meta = _meta(ckpt)
    edit(meta)
    _write(ckpt, meta, digest="keep")
    with pytest.raises(CheckpointError, match=r"metadata.json does not match the checkpoint's recorded digest"):
        BiLSTMForecaster.from_checkpoint(ckpt)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"input_clip": float("nan")}, "input_clip must be a finite number > 0, got nan"),
        ({"input_clip": float("inf")}, "input_clip must be a finite number > 0, got inf"),
        ({"input_clip": 0.0}, "input_clip must be a finite number > 0"),
        ({"period_min_acf": float("nan")}, "period_min_acf must be a finite number"),
        ({"quantiles": [0.5, 0.9, 0.75, 0.95, 0.99]}, "quantiles must be strictly ascending"),
        ({"quantiles": [0.5, 0.75, 0.75, 0.95, 0.99]}, "quantiles must be strictly ascending"),
        ({"quantiles": [0.5, 0.75, 0.9, 0.95, 1.0]}, "quantiles must be strictly ascending in \\(0, 1\\)"),
        ({"quantiles": [0.5, 0.75, 0.9, 0.95, float("nan")]}, "quantiles must be strictly ascending"),
        ({"quantiles": ["0.5", "0.75", "0.9", "0.95", "0.99"]}, "quantiles must be strictly ascending"),
        ({"quantiles": 0.5}, "quantiles must be a list of numbers"),
        ({"hidden": 0}, "hidden must be positive"),
        ({"horizon": -4}, "horizon must be positive"),
        ({"window": 16.5}, "window must be an integer"),
        ({"layers": True}, "layers must be an integer"),
        ({"season_lead": -1}, "season_lead must be >= 0"),
        ({"level_window": 17}, "window 16 must be >= level_window 17"),
        ({"max_season": 0}, "max_season must be positive"),
        ({"colour": "blue"}, "unknown model config field"),
    ],
)
def test_an_invalid_model_config_is_refused_naming_the_field(
    ckpt: Path, changes: dict[str, Any], message: str
) -> None:
    # a digest that holds: the config itself is what is wrong (a writer's bug, or a checkpoint from before digests)
    _write(ckpt, _with_config(ckpt, **changes))
    with pytest.raises(CheckpointError, match=f"bad model_config: .*{message}"):
        BiLSTMForecaster.from_checkpoint(ckpt)


def test_fewer_quantiles_than_the_parameters_hold_is_refused_by_shape(ckpt: Path) -> None:
    _write(ckpt, _with_config(ckpt, quantiles=[0.5, 0.9, 0.99]))
    with pytest.raises(CheckpointError, match=r"parameter /out/(kernel|bias) has shape .* the model config needs"):
        load_checkpoint(ckpt)


def test_non_finite_parameters_are_refused(tmp_path: Path, small_cfg: ModelConfig) -> None:
    model = BiLSTM(small_cfg, rngs=nnx.Rngs(0))
    model.hidden.bias[...] = np.full(model.hidden.bias.shape, np.nan, np.float32)
    path = _save(tmp_path, model, small_cfg)  # digests that hold: only the values are wrong
    with pytest.raises(CheckpointError, match="parameter /hidden/bias holds values that are not finite"):
        load_checkpoint(path)


def _overflowing(cfg: ModelConfig) -> BiLSTM:
    """Finite parameters whose forecast overflows: the median's logits go to -inf and the steps above it to +inf."""
    model = BiLSTM(cfg, rngs=nnx.Rngs(0))
    model.hidden.bias[...] = np.full(model.hidden.bias.shape, 3e38, np.float32)
    kernel = np.ones(model.out.kernel.shape, np.float32).reshape(-1, cfg.horizon, cfg.n_quantiles)
    kernel[..., 0] = -1.0
    model.out.kernel[...] = kernel.reshape(model.out.kernel.shape)
    return model


def test_a_model_whose_forecast_is_not_finite_is_refused_at_load(tmp_path: Path, small_cfg: ModelConfig) -> None:
    model = _overflowing(small_cfg)
    history = np.random.default_rng(0).uniform(1, 2, size=(2, 80))
    assert np.isnan(BiLSTMForecaster(model, version="x").predict(history, step_s=1800.0)).any()
    path = _save(tmp_path, model, small_cfg)
    load_checkpoint(path)  # every stored value is finite and fits: only running it shows the problem
    with pytest.raises(CheckpointError, match="forecasts non-finite values"):
        BiLSTMForecaster.from_checkpoint(path)


def test_loading_and_serving_a_checkpoint_never_imports_jax(ckpt: Path) -> None:
    # a fresh interpreter: what the controller, the webhook and the demo import, then a checkpoint loaded and used
    code = (
        "import sys, numpy as np\n"
        "import aihpa.controller, aihpa.controller_cli, aihpa.webhook.server, aihpa.demo, aihpa.forecast\n"
        "from aihpa.forecast.forecaster import BiLSTMForecaster, load_default_forecaster\n"
        f"fc = BiLSTMForecaster.from_checkpoint({str(ckpt)!r})\n"
        "out = fc.predict(np.ones((2, 40)), step_s=1800.0)\n"
        "load_default_forecaster().predict(np.ones((1, 1500)), step_s=60.0)\n"
        "print(out.shape, sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax', 'optax')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.strip() == "(2, 4, 5) []"


def test_a_checkpoint_from_before_the_digest_loads_with_a_warning_and_can_be_sealed(
    ckpt: Path, caplog: pytest.LogCaptureFixture
) -> None:
    params = (ckpt / "params.msgpack").read_bytes()
    _write(ckpt, _meta(ckpt), digest="drop")
    with caplog.at_level(logging.WARNING, logger="aihpa.forecast.checkpoint"):
        assert load_checkpoint(ckpt).version == ckpt.name
    assert any(DIGEST in r.getMessage() and "seal_checkpoint" in r.getMessage() for r in caplog.records)

    assert seal_checkpoint(ckpt) == ckpt
    assert (ckpt / "params.msgpack").read_bytes() == params and DIGEST in _meta(ckpt)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="aihpa.forecast.checkpoint"):
        assert BiLSTMForecaster.from_checkpoint(ckpt).version == ckpt.name
    assert not caplog.records


def test_an_old_checkpoint_is_still_validated(ckpt: Path) -> None:
    _write(ckpt, _with_config(ckpt, input_clip=float("nan")), digest="drop")
    with pytest.raises(CheckpointError, match="input_clip must be a finite number"):
        BiLSTMForecaster.from_checkpoint(ckpt)
    with pytest.raises(CheckpointError, match="input_clip must be a finite number"):
        seal_checkpoint(ckpt)
    assert DIGEST not in _meta(ckpt)


def test_sealing_never_blesses_an_edit(ckpt: Path) -> None:
    meta = _meta(ckpt)
    meta["model_config"]["input_clip"] = 4.0
    _write(ckpt, meta, digest="keep")
    with pytest.raises(CheckpointError, match="does not match the checkpoint's recorded digest"):
        seal_checkpoint(ckpt)
    assert _meta(ckpt)[DIGEST] == meta[DIGEST]


def test_the_shipped_model_is_sealed_loads_quietly_and_forecasts(caplog: pytest.LogCaptureFixture) -> None:
    version = (default_model_dir() / "latest").read_text().strip()
    path = default_model_dir() / version
    meta = _meta(path)
    assert meta[DIGEST] == checkpoint_digest((path / "params.msgpack").read_bytes(), meta)
    with caplog.at_level(logging.WARNING, logger="aihpa.forecast.checkpoint"):
        fc = load_default_forecaster()
    assert not caplog.records and fc.version == version
    out = fc.predict(10 + np.sin(np.arange(2000) / 50.0)[None, :], step_s=60.0)
    assert out.shape == (1, fc.horizon, len(fc.quantiles)) and np.isfinite(out).all()
