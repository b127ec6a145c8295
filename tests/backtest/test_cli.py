"""`aihpa backtest` from the command line: JSON shape, plot, and one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aihpa.cli import main
from tests.conftest import SHARED_TRACE_COLUMNS

TWITTER = "twitter_stream_2021_1min.csv"


def test_backtest_writes_json_of_the_documented_shape_and_a_plot(
    shared_traces: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_json = tmp_path / "bt.json"
    out_png = tmp_path / "bt.png"
    code = main([
        "backtest", str(shared_traces / TWITTER), "--column", SHARED_TRACE_COLUMNS[TWITTER],
        "--policies", "hpa,oracle,aihpa", "--forecaster", "last-value", "--slice", "3000:3300",
        "--json", str(out_json), "--plot", str(out_png),
    ])
    assert code == 0
    data = json.loads(out_json.read_text())
    assert data["trace"] == "twitter_stream_2021_1min"
    assert data["steps"] == 300
    assert set(data["policies"]) == {"hpa", "oracle", "aihpa"}
    for figures in data["policies"].values():
        assert figures["cost_at_slo"] is None or figures["cost_at_slo"] > 0
        assert len(figures["sweep"]) >= 10
        for point in figures["sweep"]:
            assert set(point) == {"knob", "saturated_share", "unserved_share", "pod_minutes", "scaling_actions"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "cost at SLO" in capsys.readouterr().out


def _csv(tmp_path: Path, values: list[float]) -> Path:
    path = tmp_path / "t.csv"
    path.write_text("step,load\n" + "".join(f"{i},{v}\n" for i, v in enumerate(values)))
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policies", "hpa,kubecost"], "unknown policy 'kubecost'"),
        (["--slice", "0:50"], "needs at least 125"),
        (["--slice", "10:5"], "END must be greater"),
        (["--slice", "abc"], "START:END"),
        (["--slice", "900:"], "has only 300 samples"),
    ],
    ids=["unknown_policy", "slice_too_short", "reversed_slice", "malformed_slice", "slice_past_the_end"],
)
def test_bad_input_is_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    trace = _csv(tmp_path, [1.0 + (i % 7) for i in range(300)])
    assert main(["backtest", str(trace), "--policies", "hpa", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1


def test_a_column_of_zeros_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["backtest", str(_csv(tmp_path, [0.0] * 300)), "--policies", "hpa"]) == 2
    assert "column of zeros" in capsys.readouterr().err


def test_a_trace_too_short_for_the_protocol_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", str(_csv(tmp_path, [1.0, 2.0] * 30)), "--policies", "oracle"]) == 2
    assert "needs at least 125" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "0"], "must be positive"),
        (["--holdback-fraction", "1"], "--holdback-fraction must be in [0, 1)"),
        (["--column", "a", "--column", "b"], "2 --column for 1 --trace"),
    ],
    ids=["no_trials", "all_held_back", "columns_without_traces"],
)
def test_tune_input_mistakes_are_one_line_and_exit_status_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    trace = _csv(tmp_path, [1.0 + (i % 7) for i in range(300)])
    assert main(["tune", "--trace", str(trace), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
