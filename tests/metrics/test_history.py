"""History: per-step averaging, gaps as NaN, bounded memory, snapshot and restore."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from aihpa.metrics import History


def test_samples_within_a_step_are_averaged_and_the_open_step_is_not_shown() -> None:
    h = History(step_s=60)
    for t, v in [(0, 1.0), (15, 2.0), (30, 3.0), (45, 4.0), (60, 10.0)]:
        h.observe("ns/web", t, v)
    series = h.series("ns/web")
    assert series is not None
    np.testing.assert_allclose(series.values, [2.5])
    assert series.end == 0


def test_missing_samples_are_gaps_not_zeros() -> None:
    h = History(step_s=60)
    h.observe("k", 0, 1.0)
    h.observe("k", 60, None)  # metrics unavailable for a whole step
    h.observe("k", 125, float("nan"))
    h.observe("k", 185, 4.0)
    h.observe("k", 245, 5.0)
    series = h.series("k")
    assert series is not None
    assert series.values[0] == 1.0 and math.isnan(series.values[1]) and math.isnan(series.values[2])
    assert series.values[3] == 4.0 and series.end == 180


def test_a_workload_whose_metrics_stopped_ends_in_gaps() -> None:
    h = History(step_s=60)
    h.observe("k", 0, 1.0)
    h.observe("k", 60, 2.0)
    series = h.series("k", now=300)
    assert series is not None
    assert series.end == 240
    assert list(series.values[:2]) == [1.0, 2.0] and np.isnan(series.values[2:]).all()


def test_memory_is_bounded_by_capacity() -> None:
    h = History(step_s=60, capacity=10)
    for i in range(100):
        h.observe("k", 60 * i, float(i))
    series = h.series("k")
    assert series is not None
    np.testing.assert_array_equal(series.values, np.arange(89, 99, dtype=np.float32))


def test_snapshot_survives_json_and_restores_exactly() -> None:
    h = History(step_s=60)
    for i in range(20):
        h.observe("a/x", 60 * i, None if i == 7 else i * 0.5)
        h.observe("b/y", 60 * i, 3.0)
    data = json.loads(json.dumps(h.snapshot()))
    restored = History.restore(data)
    for key in ("a/x", "b/y"):
        a, b = h.series(key), restored.series(key)
        assert a is not None and b is not None
        np.testing.assert_array_equal(a.values, b.values)
        assert a.end == b.end
    # and it keeps accumulating where it left off
    restored.observe("b/y", 60 * 20, 9.0)
    restored.observe("b/y", 60 * 21, 9.0)
    after = restored.series("b/y")
    assert after is not None and after.values[-1] == 9.0 and after.end == 60 * 20


def test_restore_refuses_foreign_data() -> None:
    with pytest.raises(ValueError, match="snapshot"):
        History.restore({"format": 99})


def test_retain_drops_workloads_that_are_gone() -> None:
    h = History()
    h.observe("a", 0, 1.0)
    h.observe("b", 0, 1.0)
    h.retain(["a"])
    assert "a" in h and "b" not in h
