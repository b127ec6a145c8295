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


def _minute_csv(path: Path, rows: int) -> Path:
    t = np.arange(rows)
    v = 50 + 20 * np.sin(2 * np.pi * t / 60)
    path.write_text("timestamp,cpu\n" + "".join(f"{1_700_000_000 + 60 * i},{x:.3f}\n" for i, x in enumerate(v)))
    return path


def test_a_file_too_short_to_train_on_is_counted_in_rows_and_time(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv = _minute_csv(tmp_path / "short.csv", 200)
    assert main(["train", "--trace", str(csv), "--out-dir", str(tmp_path / "models")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "short.csv has 200 rows (3 h 20 min at 60 s); --history-fraction 0.2 trains on its first 40 rows" in err
    assert "training needs at least " in err and "--history-fraction (1: all of it" in err
    assert not (tmp_path / "models").exists()


def test_train_says_which_rows_it_trains_on_and_why(
    tmp_path: Path, user_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--trace", str(user_csv), "--out-dir", str(tmp_path / "models"), "--max-steps", "2",
                 "--window", "16", "--hidden", "8", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert ("app.csv [cpu]: training on rows 0-239 of 1200 rows (4 d 4 h at 300 s), the first 0.2 "
            "(--history-fraction): the rest is left for `aihpa evaluate` and `aihpa backtest`") in out
    meta = json.loads(next((tmp_path / "models").glob("bilstm-*/metadata.json")).read_text())
    (used,) = meta["provenance"]["traces"]
    assert used["points_used"] == 240 and used["rows"] == 1200 and used["history_fraction"] == 0.2
    assert len(used["sha256"]) == 64


def test_evaluate_warns_when_it_scores_rows_the_model_was_trained_on_and_gives_a_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aihpa.forecast.cli import embedded_trace_path

    # the shipped model's own record: the first 1728 rows of this file; scored as the protocol says, none of them
    assert main(["evaluate", "--trace", str(embedded_trace_path())]) == 0
    captured = capsys.readouterr()
    assert "warning" not in captured.err
    (verdict,) = [line for line in captured.out.splitlines() if line.startswith("verdict: ")]
    assert "bilstm " in verdict and "on mean pinball loss" in verdict and "in sample" not in verdict
    # the same file cut to 3000 rows: its scored part (rows 600 on) starts inside the rows trained on
    cut = tmp_path / embedded_trace_path().name
    cut.write_text("".join(embedded_trace_path().read_text().splitlines(keepends=True)[:3001]))
    report = tmp_path / "eval.json"
    assert main(["evaluate", "--trace", str(cut), "--json", str(report)]) == 0
    captured = capsys.readouterr()
    assert "aihpa evaluate: warning: the model was trained on rows 0-1727 of azure2019_vm_total_cpu_5min.csv" in (
        captured.err)
    assert "1128 of the 2400 scored rows" in captured.err
    assert "(in sample: see the warning above)" in captured.out
    doc = json.loads(report.read_text())
    assert doc["overlap"] == {"trained_rows": 1728, "first_scored_row": 600, "scored_rows_trained_on": 1128}
    assert doc["verdict"] in captured.out
