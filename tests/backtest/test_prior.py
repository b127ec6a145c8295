"""The calibration prior: learned by replaying the default policy on the training part of each trace, every trace
weighing the same, leave-one-out by name, written with the model by `aihpa prior` and covered by its digest."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from aihpa.backtest.prior import PRIOR_POINTS, learn_prior, pool_scores
from aihpa.cli import main
from aihpa.forecast.checkpoint import DIGEST, CheckpointError, checkpoint_digest, load_checkpoint
from aihpa.forecast.forecaster import LastValueForecaster, default_model_dir
from aihpa.scaling.prior import BAND_PRIOR, PRIOR_KEY, prior_of
from aihpa.traces import series_from_values


def _csv(path: Path, values: np.ndarray) -> Path:
    path.write_text("step,load\n" + "".join(f"{i},{v:.4f}\n" for i, v in enumerate(values)))
    return path


def _wave(n: int, *, seed: int, noise: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 10 + 4 * np.sin(2 * np.pi * t / 240) + rng.normal(0, noise, n).clip(-3, 3)


def test_every_trace_weighs_the_same_whatever_its_length() -> None:
    short = {BAND_PRIOR: np.full(150, 5.0)}
    long = {BAND_PRIOR: np.zeros(5000)}
    prior = pool_scores([short, long])[BAND_PRIOR]
    assert len(prior) == PRIOR_POINTS
    assert np.mean(np.asarray(prior) == 5.0) == pytest.approx(0.5, abs=0.01)
    # a trace with too few scores does not speak for a scoring
    assert pool_scores([{BAND_PRIOR: np.ones(10)}]) == {}


def test_a_held_out_trace_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    import aihpa.backtest.prior as module

    seen: list[str] = []

    def fake_scores(trace: object, forecaster: object, *, fraction: float) -> dict[str, np.ndarray]:
        seen.append(trace.name)  # type: ignore[attr-defined]
        return {BAND_PRIOR: np.linspace(0.0, 1.0, 300)}

    monkeypatch.setattr(module, "trace_scores", fake_scores)
    traces = [series_from_values(np.ones(200), name=name) for name in ("a", "b", "c")]
    prior = learn_prior(traces, LastValueForecaster(), exclude={"b"})
    assert seen == ["a", "c"] and prior["traces"] == ["a", "c"]
    assert prior["scorings"][BAND_PRIOR] == sorted(prior["scorings"][BAND_PRIOR])
    with pytest.raises(ValueError, match="no trace left"):
        learn_prior(traces, LastValueForecaster(), exclude={"a", "b", "c"})


@pytest.mark.slow
def test_aihpa_prior_writes_the_model_again_with_its_prior_under_its_digest(tmp_path: Path) -> None:
    calm = _csv(tmp_path / "calm.csv", _wave(1500, seed=0, noise=0.2))
    noisy = _csv(tmp_path / "noisy.csv", _wave(1500, seed=1, noise=2.0))
    out = tmp_path / "models"
    code = main(["prior", "--model", str(default_model_dir()), "--out-dir", str(out),
                 "--trace", str(calm), "--trace", str(noisy)])
    assert code == 0
    ckpt = load_checkpoint(out)
    shipped = load_checkpoint(default_model_dir())
    assert ckpt.version == shipped.version  # the same parameters
    prior = ckpt.metadata[PRIOR_KEY]
    assert prior["traces"] == ["calm", "noisy"] and len(prior["scorings"][BAND_PRIOR]) == PRIOR_POINTS
    assert all(math.isfinite(x) for x in prior["scorings"][BAND_PRIOR])

    class Loaded:
        metadata = ckpt.metadata

    assert len(prior_of(Loaded())[BAND_PRIOR]) == PRIOR_POINTS
    # the digest covers the prior: an edited prior does not load
    meta = json.loads((ckpt.path / "metadata.json").read_text())
    meta[PRIOR_KEY]["scorings"][BAND_PRIOR][0] = -100.0
    (ckpt.path / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError):
        load_checkpoint(ckpt.path)
    assert meta[DIGEST] != checkpoint_digest((ckpt.path / "params.msgpack").read_bytes(), meta)
    # writing into the directory it reads from is refused
    assert main(["prior", "--model", str(out), "--out-dir", str(out), "--trace", str(calm)]) == 2
