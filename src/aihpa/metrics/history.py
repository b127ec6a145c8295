"""Per-workload usage history at the model's step: bounded ring buffers, snapshot and restore.

The controller samples every sync period (15 s by default); the model reads one point per step (60 s by default:
`aihpa.step.DEFAULT_STEP_S`). `History` averages the samples that fall in each step, records a step with no sample as
a gap (NaN — the forecaster fills gaps, and a gap never counts as zero demand), and keeps at most `capacity` steps per
workload, so memory is bounded by workloads x capacity x 4 bytes. A snapshot is plain JSON-able data, so a restart
loses nothing (it can also be rebuilt from Prometheus with `backfill`). No I/O here, and no clock: every call says
what time it is.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from aihpa.step import DEFAULT_STEP_S

__all__ = ["History", "Series"]

SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class Series:
    """A workload's history: values oldest first, one per step, NaN for gaps; `end` is the last step's start time."""

    values: npt.NDArray[np.float32]
    end: float
    step_s: float


class _Ring:
    __slots__ = ("buf", "count", "head", "last_step", "pending_n", "pending_step", "pending_sum")

    def __init__(self, capacity: int) -> None:
        self.buf = np.full(capacity, np.nan, dtype=np.float32)
        self.head = 0  # next write position
        self.count = 0
        self.last_step: int | None = None  # index of the newest finalized step
        self.pending_step: int | None = None  # step being accumulated
        self.pending_sum = 0.0
        self.pending_n = 0

    def push(self, value: float) -> None:
        self.buf[self.head] = value
        self.head = (self.head + 1) % self.buf.shape[0]
        self.count = min(self.count + 1, self.buf.shape[0])

    def ordered(self) -> npt.NDArray[np.float32]:
        cap = self.buf.shape[0]
        if self.count < cap:
            return self.buf[: self.count].copy()
        return np.concatenate([self.buf[self.head :], self.buf[: self.head]])


class History:
    """Usage histories of many workloads, keyed by any hashable key (e.g. "namespace/name")."""

    def __init__(self, *, step_s: float = DEFAULT_STEP_S, capacity: int = 1536) -> None:
        if step_s <= 0 or capacity < 1:
            raise ValueError("step_s and capacity must be positive")
        self.step_s = float(step_s)
        self.capacity = int(capacity)
        self._rings: dict[str, _Ring] = {}

    def __contains__(self, key: object) -> bool:
        return key in self._rings

    def __len__(self) -> int:
        return len(self._rings)

    def keys(self) -> list[str]:
        return list(self._rings)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._rings))

    def _step(self, t: float) -> int:
        return math.floor(t / self.step_s)

    def _ring(self, key: str) -> _Ring:
        ring = self._rings.get(key)
        if ring is None:
            ring = self._rings[key] = _Ring(self.capacity)
        return ring

    def _finalize(self, ring: _Ring, upto: int) -> None:
        """Close the pending step and record gaps for every step before `upto` that had no sample."""
        if ring.pending_step is not None and ring.pending_step < upto:
            if ring.last_step is not None:
                for _ in range(min(ring.pending_step - ring.last_step - 1, self.capacity)):
                    ring.push(math.nan)
            ring.push(ring.pending_sum / ring.pending_n)
            ring.last_step = ring.pending_step
            ring.pending_step = None
            ring.pending_sum, ring.pending_n = 0.0, 0

    def observe(self, key: str, t: float, value: float | None) -> None:
        """One sample of a workload's total usage at time t. None or non-finite values are gaps, not zeros."""
        ring = self._ring(key)
        step = self._step(t)
        if ring.pending_step is not None and step < ring.pending_step:
            return  # out of order: older than what we are accumulating
        if ring.last_step is not None and step <= ring.last_step:
            return
        self._finalize(ring, step)
        if value is None or not math.isfinite(value):
            return
        if ring.pending_step is None:
            ring.pending_step = step
        ring.pending_sum += float(value)
        ring.pending_n += 1

    def series(self, key: str, *, now: float | None = None) -> Series | None:
        """The closed steps of a workload (the step in progress is not included); None when unknown or empty.

        With `now`, steps that ended before now without a sample are recorded as gaps first, so a workload whose
        metrics stopped shows NaN at its end rather than a stale last value.
        """
        ring = self._rings.get(key)
        if ring is None:
            return None
        if now is not None:
            step = self._step(now)
            self._finalize(ring, step)
            if ring.last_step is not None and ring.pending_step is None:
                for _ in range(min(step - 1 - ring.last_step, self.capacity)):
                    ring.push(math.nan)
                    ring.last_step += 1
        if ring.count == 0 or ring.last_step is None:
            return None
        return Series(values=ring.ordered(), end=ring.last_step * self.step_s, step_s=self.step_s)

    def forget(self, key: str) -> None:
        self._rings.pop(key, None)

    def retain(self, keys: Iterable[str]) -> None:
        """Drop every workload not in `keys` (deleted or opted out)."""
        keep = set(keys)
        for k in [k for k in self._rings if k not in keep]:
            del self._rings[k]

    def backfill(self, key: str, *, start: float, values: npt.ArrayLike) -> None:
        """Replace a workload's history by `values`, one per step, the first at time `start` (e.g. from Prometheus)."""
        arr = np.asarray(values, dtype=np.float32).reshape(-1)[-self.capacity :]
        ring = self._rings[key] = _Ring(self.capacity)
        for v in arr:
            ring.push(float(v))
        ring.last_step = self._step(start) + int(np.asarray(values).reshape(-1).shape[0]) - 1 if arr.size else None

    def snapshot(self) -> dict[str, Any]:
        """Plain data (JSON-able) for every workload's closed steps."""
        out: dict[str, Any] = {"format": SNAPSHOT_FORMAT, "step_s": self.step_s, "workloads": {}}
        for key, ring in self._rings.items():
            if ring.last_step is None:
                continue
            vals = ring.ordered()
            out["workloads"][key] = {
                "last_step": ring.last_step,
                "values": [None if not math.isfinite(float(v)) else round(float(v), 6) for v in vals],
            }
        return out

    @classmethod
    def restore(cls, data: dict[str, Any], *, capacity: int = 1536) -> History:
        """A History from `snapshot()` output. Raises ValueError on data of another format or step."""
        if not isinstance(data, dict) or data.get("format") != SNAPSHOT_FORMAT:
            raise ValueError("not a history snapshot of a known format")
        hist = cls(step_s=float(data["step_s"]), capacity=capacity)
        for key, entry in dict(data.get("workloads", {})).items():
            vals = [math.nan if v is None else float(v) for v in entry["values"]]
            last = int(entry["last_step"])
            hist.backfill(str(key), start=(last - len(vals) + 1) * hist.step_s, values=vals)
        return hist
