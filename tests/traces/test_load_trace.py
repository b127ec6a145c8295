"""Loading CSV traces: the shared files, user files, and every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aihpa.traces import TraceError, load_trace, series_from_values
from tests.conftest import SHARED_TRACE_COLUMNS


@pytest.mark.parametrize("filename", sorted(SHARED_TRACE_COLUMNS))
def test_each_shared_trace_loads_its_demand_column_by_default(shared_traces: Path, filename: str) -> None:
    trace = load_trace(shared_traces / filename)
    assert trace.column == SHARED_TRACE_COLUMNS[filename]
    assert trace.values.dtype == np.float32
    assert np.isfinite(trace.values).all()
    assert trace.step_s in (60.0, 300.0, 3600.0)
    # calendar time only where the file has absolute timestamps; relative time still gives the interval
    assert (trace.seconds() is not None) == (trace.timestamps is not None)
    assert (trace.timestamps is not None) or (trace.relative_seconds is not None)


def test_absolute_timestamps_are_parsed_as_utc_seconds(shared_traces: Path) -> None:
    trace = load_trace(shared_traces / "bitbrains_rnd_total_cpu_5min.csv")
    assert trace.timestamps is not None
    # 2013-07-31T22:00:00Z
    assert trace.timestamps[0] == 1375308000.0
    assert trace.steps_per_day == 288


def test_column_is_chosen_by_name(shared_traces: Path) -> None:
    trace = load_trace(shared_traces / "google2019_cluster_cpu_5min.csv", column="avg_mem")
    assert trace.column == "avg_mem"
    assert trace.values[0] == pytest.approx(0.332384)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "user.csv"
    path.write_text(text)
    return path


def test_user_csv_without_time_column_has_no_interval(tmp_path: Path) -> None:
    trace = load_trace(_write(tmp_path, "load\n1\n2\n3\n"))
    assert trace.column == "load"
    assert trace.step_s is None and trace.timestamps is None
    assert trace.steps_per_day is None


def test_missing_values_inside_are_filled_and_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    trace = load_trace(_write(tmp_path, "t,v\n0,1\n60,\n120,NaN\n180,4\n"))
    np.testing.assert_allclose(trace.values, [1, 2, 3, 4])
    assert trace.filled == (1, 2)
    assert "filled 2 missing value(s)" in caplog.text


@pytest.mark.parametrize(
    ("text", "column", "min_points", "message"),
    [
        ("t,v\n0,1\n60,abc\n", None, 2, "line 3: not a number: 'abc'"),
        ("t,v\n0,1\n60,2\n", "cpu", 2, "no column 'cpu'; columns are t, v"),
        ("t,v\n0,1\n60,2\n", None, 10, "2 data rows, need at least 10"),
        ("t,v\n" + "".join(f"{i},\n" for i in range(20)) + "20,1\n", None, 2, "20 missing values in a row"),
        ("t,v\n", None, 2, "header only"),
        ("", None, 2, "empty file"),
        ("t,v\n0,1\n60\n", None, 1, "line 3: row has 1 fields"),
        ("t,v\n0,1\n60,inf\n", None, 1, "line 3: infinite value"),
        ("name\nweb\n", None, 1, "no numeric demand column"),
    ],
    ids=["non-numeric", "unknown-column", "too-short", "nan-run", "header-only", "empty", "short-row", "inf",
         "no-numeric"],
)
def test_bad_input_gets_one_clear_error_naming_file_and_place(
    tmp_path: Path, text: str, column: str | None, min_points: int, message: str
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(TraceError) as info:
        load_trace(path, column=column, min_points=min_points)
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no such file"):
        load_trace(tmp_path / "absent.csv")


def test_slice_keeps_time_and_filled_positions_aligned(shared_traces: Path) -> None:
    trace = load_trace(shared_traces / "wikipedia_pagecounts_2008_2009_1h.csv")
    part = trace.slice(100, 200)
    assert len(part) == 100
    assert part.timestamps is not None and trace.timestamps is not None
    assert part.timestamps[0] == trace.timestamps[100]
    with pytest.raises(TraceError, match="empty"):
        trace.slice(10, 10)


def test_series_from_values_reports_filled_gaps() -> None:
    trace = series_from_values([1.0, float("nan"), 3.0], step_s=60.0)
    np.testing.assert_allclose(trace.values, [1, 2, 3])
    assert trace.filled == (1,)


def test_the_deprecated_interval_s_is_the_step() -> None:
    trace = series_from_values([1.0, 2.0, 3.0], interval_s=300.0)
    assert trace.step_s == trace.interval_s == 300.0
    assert trace.steps_per_day == 288
    assert series_from_values([1.0, 2.0], timestamps=[0.0, 30.0]).step_s == 30.0
