"""`aihpa train`, `forecast` and `evaluate` end to end on small inputs, and their one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aihpa.cli import main


@pytest.fixture
def user_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    n = 1200
    t = np.arange(n)
    v = 50 + 20 * np.sin(2 * np.pi * t / 288) + rng.normal(0, 1, n)
    path = tmp_path / "app.csv"
    path.write_text("timestamp,cpu\n" + "".join(f"{1_700_000_000 + 300 * i},{x:.3f}\n" for i, x in enumerate(v)))
    return path


@pytest.mark.slow
def test_train_writes_a_checkpoint_that_forecast_and_evaluate_use(
    tmp_path: Path, user_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    models = tmp_path / "models"
    code = main(["train", "--trace", str(user_csv), "--out", str(models), "--max-steps", "20", "--quiet",
                 "--window", "16", "--hidden", "8", "--history-fraction", "1.0"])
    assert code == 0
    assert "validation pinball" in capsys.readouterr().out
    meta = json.loads(next(models.glob("bilstm-*/metadata.json")).read_text())
    assert meta["provenance"]["traces"][0]["column"] == "cpu"
    assert meta["provenance"]["command"].startswith("aihpa train --trace app.csv")

    assert main(["forecast", str(user_csv), "--model", str(models), "--at", "600"]) == 0
    out = capsys.readouterr().out
    assert "p50" in out and "p99" in out and "actual" in out

    report = tmp_path / "eval.json"
    assert main(["evaluate", str(user_csv), "--model", str(models), "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert set(doc["forecasters"]) == {"bilstm", "seasonal-naive", "last-value"}
    assert doc["steps_ahead"] == 2
    assert doc["scored_points"] == int(1200 * 0.8)
    for row in doc["forecasters"].values():
        assert set(row["pinball"]) == {"p50", "p90", "p99"}


def test_evaluate_with_the_shipped_model_on_the_embedded_trace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aihpa.forecast.cli import embedded_trace_path

    report = tmp_path / "eval.json"
    assert main(["evaluate", str(embedded_trace_path()), "--json", str(report)]) == 0
    doc = json.loads(report.read_text())
    assert doc["column"] == "cpu_usage"
    assert doc["forecasters"]["bilstm"]["version"].startswith("bilstm-")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "{csv}", "--column", "nope"], "no column 'nope'"),
        (["forecast", "{csv}", "--at", "99999"], "outside the trace"),
        (["evaluate", "{missing}"], "no such file"),
        (["forecast", "{csv}", "--model", "{missing}"], "no such checkpoint directory"),
        (["train", "--trace", "{csv}", "--column", "a", "--column", "b", "--out", "{missing}"], "2 --column for 1"),
    ],
    ids=["unknown-column", "at-outside", "missing-trace", "missing-model", "column-count"],
)
def test_user_errors_are_one_line_and_exit_2(
    tmp_path: Path, user_csv: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    args = [a.format(csv=user_csv, missing=tmp_path / "missing") for a in argv]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
