"""Workload traces: a CSV file in, a typed series out.

A trace is one demand signal (CPU, requests, events...) sampled at a fixed native interval, optionally with absolute
timestamps. Everything else in aihpa (training, backtests, the simulated cluster) reads traces through `load_trace`.

This module is part of the pure core: it reads local files and never touches the network or the wall clock.
Bad input raises `TraceError` with one message that names the file, the column and the row; missing values inside a
trace are filled by linear interpolation and reported (`Trace.filled`, and a log line), never silently.
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from aihpa.errors import UserError

__all__ = ["Trace", "TraceError", "load_trace", "series_from_values"]

logger = logging.getLogger(__name__)

# Column names that carry time or position, never demand.
_TIME_NAMES = frozenset({"t", "timestamp", "time", "date", "datetime", "ts"})
_STEP_NAMES = frozenset({"step", "index", "idx", "interpolated"})
_MISSING = frozenset({"", "nan", "na", "n/a", "null", "none", "-"})

#: Default longest run of consecutive missing values that is filled; longer runs are an error.
DEFAULT_MAX_GAP = 12


class TraceError(UserError, ValueError):
    """A trace that cannot be used; the message names the file, column and row."""


@dataclass(frozen=True)
class Trace:
    """One demand series.

    `values` is float32 with no NaN left. `timestamps` are seconds since the Unix epoch (UTC) for each sample when
    the file has absolute times, else None. `step_s` is the native sampling interval in seconds when known (from
    absolute timestamps or a `seconds_since_*` column), else None: the step a forecaster is told its samples are at.
    """

    name: str
    column: str
    values: npt.NDArray[np.float32]
    timestamps: npt.NDArray[np.float64] | None = None
    step_s: float | None = None
    # seconds since start, when the file only has relative time (no calendar date)
    relative_seconds: npt.NDArray[np.float64] | None = None
    # indices (0-based sample positions) that were missing and filled by interpolation
    filled: tuple[int, ...] = field(default=())
    source: str = ""

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def interval_s(self) -> float | None:
        """Deprecated name of `step_s`."""
        return self.step_s

    @property
    def steps_per_day(self) -> int | None:
        """Samples in one day, when the step is known."""
        if self.step_s is None or self.step_s <= 0:
            return None
        return max(1, round(86400.0 / self.step_s))

    def seconds(self) -> npt.NDArray[np.float64] | None:
        """Per-sample absolute time (Unix seconds, UTC) for calendar features, or None.

        Relative time (`seconds_since_*` columns) is not returned: it does not say the time of day or the weekday,
        and a model must not mistake its origin for midnight of 1 January 1970.
        """
        return self.timestamps

    def slice(self, start: int, stop: int) -> Trace:
        """A contiguous part of the trace (sample indices, Python slice semantics, no negative step)."""
        n = len(self)
        lo, hi, _ = slice(start, stop).indices(n)
        if hi <= lo:
            raise TraceError(f"{self.source or self.name}: slice {start}:{stop} is empty (trace has {n} samples)")
        return Trace(
            name=self.name,
            column=self.column,
            values=self.values[lo:hi],
            timestamps=None if self.timestamps is None else self.timestamps[lo:hi],
            step_s=self.step_s,
            relative_seconds=None if self.relative_seconds is None else self.relative_seconds[lo:hi],
            filled=tuple(i - lo for i in self.filled if lo <= i < hi),
            source=self.source,
        )


def _is_time_column(name: str) -> bool:
    low = name.strip().lower()
    return low in _TIME_NAMES or low.startswith("seconds_since") or low.startswith("epoch")


def _is_position_column(name: str) -> bool:
    return name.strip().lower() in _STEP_NAMES


def _parse_float(text: str) -> float | None:
    """A float, NaN for a missing marker, or None when the text is not a number."""
    s = text.strip()
    if s.lower() in _MISSING:
        return math.nan
    try:
        return float(s)
    except ValueError:
        return None


def _parse_time(text: str) -> float | None:
    s = text.strip()
    if not s:
        return None
    try:
        return float(s)
    except ValueError:
        pass
    try:
        dt = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


def _median_interval(seconds: npt.NDArray[np.float64]) -> float | None:
    if seconds.shape[0] < 2:
        return None
    diffs = np.diff(seconds)
    diffs = diffs[np.isfinite(diffs) & (diffs > 0)]
    if diffs.size == 0:
        return None
    return float(np.median(diffs))


def _fill_gaps(
    values: npt.NDArray[np.float64], *, where: str, column: str, max_gap: int
) -> tuple[npt.NDArray[np.float64], tuple[int, ...]]:
    """Linear interpolation over NaN runs no longer than `max_gap`; edges are carried from the nearest value."""
    nan = np.isnan(values)
    if not nan.any():
        return values, ()
    idx = np.flatnonzero(nan)
    # runs of consecutive NaN indices
    breaks = np.flatnonzero(np.diff(idx) > 1)
    starts = np.concatenate([[idx[0]], idx[breaks + 1]])
    ends = np.concatenate([idx[breaks], [idx[-1]]])
    longest = int(np.argmax(ends - starts))
    if ends[longest] - starts[longest] + 1 > max_gap:
        raise TraceError(
            f"{where}: column {column!r}: {ends[longest] - starts[longest] + 1} missing values in a row "
            f"at data rows {starts[longest] + 1}-{ends[longest] + 1} (at most {max_gap} are filled)"
        )
    good = np.flatnonzero(~nan)
    if good.size == 0:
        raise TraceError(f"{where}: column {column!r}: no values at all")
    filled = values.copy()
    filled[idx] = np.interp(idx, good, values[good])
    return filled, tuple(int(i) for i in idx)


def series_from_values(
    values: Sequence[float] | npt.ArrayLike,
    *,
    name: str = "series",
    step_s: float | None = None,
    timestamps: npt.ArrayLike | None = None,
    min_points: int = 2,
    max_gap: int = DEFAULT_MAX_GAP,
    interval_s: float | None = None,
) -> Trace:
    """A `Trace` from values in memory (NaNs filled and reported like a file's); `step_s` defaults to the median
    spacing of `timestamps` when they are given. `interval_s` is the deprecated name of `step_s`."""
    if step_s is None:
        step_s = interval_s
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.shape[0] < min_points:
        raise TraceError(f"{name}: {arr.shape[0]} points, need at least {min_points}")
    arr, filled = _fill_gaps(arr, where=name, column="value", max_gap=max_gap)
    ts = None if timestamps is None else np.asarray(timestamps, dtype=np.float64).reshape(-1)
    if ts is not None and ts.shape != arr.shape:
        raise TraceError(f"{name}: {ts.shape[0]} timestamps for {arr.shape[0]} values")
    if step_s is None and ts is not None:
        step_s = _median_interval(ts)
    return Trace(
        name=name,
        column="value",
        values=arr.astype(np.float32),
        timestamps=ts,
        step_s=step_s,
        filled=filled,
        source=name,
    )


def load_trace(
    path: str | Path,
    *,
    column: str | None = None,
    min_points: int = 2,
    max_gap: int = DEFAULT_MAX_GAP,
) -> Trace:
    """Load one demand column of a CSV trace.

    `column` names the demand column; by default the first numeric column that is not a time or step column.
    `min_points` is the shortest usable trace (e.g. a model's window plus horizon). Runs of missing values up to
    `max_gap` samples long are filled by linear interpolation and reported; longer runs are an error.
    """
    p = Path(path)
    where = str(p)
    if not p.is_file():
        raise TraceError(f"{where}: no such file")
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.reader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TraceError(f"{where}: cannot read as CSV: {exc}") from exc
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise TraceError(f"{where}: empty file, expected a header row")
    header = [h.strip() for h in rows[0]]
    data = [r for r in rows[1:] if any(cell.strip() for cell in r)]
    if not data:
        raise TraceError(f"{where}: header only, no data rows")

    if column is not None:
        if column not in header:
            raise TraceError(f"{where}: no column {column!r}; columns are {', '.join(header)}")
        col = header.index(column)
    else:
        col = -1
        for j, name in enumerate(header):
            if _is_time_column(name) or _is_position_column(name):
                continue
            # numeric in most of the first rows: a stray bad cell is then reported by row, not skipped over
            sample = [r[j] for r in data[:50] if j < len(r)]
            numeric = sum(_parse_float(s) is not None for s in sample)
            if sample and numeric * 2 >= len(sample):
                col = j
                break
        if col < 0:
            raise TraceError(f"{where}: no numeric demand column among {', '.join(header)}; pass column=...")
    name = header[col]

    values = np.empty(len(data), dtype=np.float64)
    for i, row in enumerate(data):
        line = i + 2  # 1-based file line, after the header
        if col >= len(row):
            raise TraceError(
                f"{where}: column {name!r}, line {line}: row has {len(row)} fields, expected {len(header)}"
            )
        v = _parse_float(row[col])
        if v is None:
            raise TraceError(f"{where}: column {name!r}, line {line}: not a number: {row[col]!r}")
        if math.isinf(v):
            raise TraceError(f"{where}: column {name!r}, line {line}: infinite value")
        values[i] = v

    if values.shape[0] < min_points:
        raise TraceError(f"{where}: column {name!r}: {values.shape[0]} data rows, need at least {min_points}")
    values, filled = _fill_gaps(values, where=where, column=name, max_gap=max_gap)
    if filled:
        logger.warning(
            "%s: column %r: filled %d missing value(s) by interpolation (first at data row %d)",
            where, name, len(filled), filled[0] + 1,
        )

    timestamps: npt.NDArray[np.float64] | None = None
    relative: npt.NDArray[np.float64] | None = None
    for j, hname in enumerate(header):
        if j == col or not _is_time_column(hname):
            continue
        parsed = [_parse_time(r[j]) if j < len(r) else None for r in data]
        if any(t is None for t in parsed):
            continue
        arr = np.asarray(parsed, dtype=np.float64)
        if hname.lower().startswith("seconds_since"):
            relative = arr
        else:
            timestamps = arr
        break
    clock = timestamps if timestamps is not None else relative
    step_s = None if clock is None else _median_interval(clock)

    return Trace(
        name=p.stem,
        column=name,
        values=values.astype(np.float32),
        timestamps=timestamps,
        step_s=step_s,
        relative_seconds=relative,
        filled=filled,
        source=where,
    )
