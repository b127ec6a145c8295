"""The HPA candidate's shadows (`aihpa.scaling.hpa_grid`): each is the stock HPA at its target, and the candidate is
the highest target whose pods held the risk."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aihpa.backtest.policies import HpaBatch
from aihpa.backtest.protocol import MAX_PODS, MIN_PODS, replay
from aihpa.scaling import hpa_grid
from aihpa.scaling.hpa_grid import DEFAULT_TARGETS, HpaGrid, HpaGridState


def _demand(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    base = 12 + 8 * np.sin(2 * np.pi * t / 90)
    bursts = np.where(rng.random(n) < 0.03, rng.uniform(5, 25, n), 0.0)
    return np.maximum(0.0, base + rng.normal(0, 1.5, n) + bursts)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_shadow_decides_as_the_stock_hpa_at_its_target(seed: int) -> None:
    """Fed the usage its own pods served, a shadow makes the decisions of the HPA (`HpaBatch`: the replica
    calculator with unready pods, tolerance, 300 s scale-down stabilization, scale-up rate limit) step for step."""
    demand = _demand(600, seed)
    targets = (0.3, 0.55, 0.7, 0.9)
    hpa = replay(demand, HpaBatch(targets), rows=len(targets))
    for row in range(len(targets)):
        one = HpaGrid(targets=(targets[row],), min_replicas=MIN_PODS, max_replicas=MAX_PODS)
        state = one.step(HpaGridState(), usage=math.nan, used=math.nan, current=1, capacity_per_pod=1.0)
        for t in range(1, demand.shape[0]):
            usage = float(hpa.observed[row, t - 1])
            state = one.step(state, usage=usage, used=usage, current=int(hpa.replicas[row, t - 1]),
                             capacity_per_pod=1.0)
            assert one.pods(state, 0) == hpa.replicas[row, t], (row, t)


def test_the_shadows_see_the_usage_clipped_to_their_own_pods_and_count_their_shortfalls() -> None:
    grid = HpaGrid(targets=(0.5, 1.0), lead_steps=1, stabilization=1, tolerance=0.0)
    state = grid.step(HpaGridState(), usage=math.nan, used=math.nan, current=4, capacity_per_pod=1.0)
    # 6 cores served by the real pods; each shadow has 4 pods of 1 core: it saw 4, short of 6
    state = grid.step(state, usage=6.0, used=6.0, current=8, capacity_per_pod=1.0)
    assert state.shortfalls.tolist() == [1.0, 1.0]
    # from 4 cores seen on 4 pods: 8 pods at 50%, 4 at 100%
    assert [grid.pods(state, i) for i in range(2)] == [8, 4]
    state = grid.step(state, usage=6.0, used=6.0, current=8, capacity_per_pod=1.0)
    assert state.shortfalls.tolist() == pytest.approx([1.0 * (1 - 1 / grid.memory), 1.0 * (1 - 1 / grid.memory) + 1])


def test_the_leader_is_the_highest_target_that_held_the_risk_with_one_more_shortfall_counted() -> None:
    grid = HpaGrid(targets=(0.25, 0.5, 1.0))
    state = HpaGridState(
        decisions=np.ones((2, 3), dtype=np.int32), recommendations=np.ones((4, 3), dtype=np.int32),
        shortfalls=np.array([0.0, 1.0, 30.0]), outcomes=199.0,
    )
    # (0 + 1) / 200 = 0.5%, (1 + 1) / 200 = 1%, (30 + 1) / 200 = 15.5%
    assert grid.leader(state, 0.01) == 1
    assert grid.leader(state, 0.005) == 0
    assert grid.leader(state, 0.004) is None
    young = HpaGridState(decisions=state.decisions, recommendations=state.recommendations,
                         shortfalls=np.zeros(3), outcomes=50.0)
    assert grid.leader(young, 0.01) is None  # 50 clean steps are too few to claim 1%


def test_a_missing_metric_neither_scores_nor_moves_the_shadows() -> None:
    grid = HpaGrid()
    state = grid.step(HpaGridState(), usage=5.0, used=5.0, current=3, capacity_per_pod=1.0)
    after = grid.step(state, usage=math.nan, used=math.nan, current=3, capacity_per_pod=1.0)
    assert after is state


def test_the_default_grid_spans_10_to_100_percent() -> None:
    assert DEFAULT_TARGETS[0] == pytest.approx(0.1) and DEFAULT_TARGETS[-1] == pytest.approx(1.0)
    ratios = np.asarray(DEFAULT_TARGETS[1:]) / np.asarray(DEFAULT_TARGETS[:-1])
    assert np.all(ratios > 1.04) and np.all(ratios < 1.06)
    with pytest.raises(ValueError):
        HpaGrid(targets=(0.5, 0.4))


def test_many_workloads_stepped_together_step_as_each_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """`step_many` over workloads in different situations (a first step, no metric, pods not ready yet, a usage
    ceiling or none), in several chunks, gives each the state `step` gives it alone: the rows never mix."""
    monkeypatch.setattr(hpa_grid, "_CHUNK", 5)  # 12 workloads: chunks of 5, 5 and 2 (less those stepped alone)
    grid = HpaGrid(min_replicas=1, max_replicas=60)
    rng = np.random.default_rng(7)
    n = 12
    states = [HpaGridState() for _ in range(n)]
    current = [int(c) for c in rng.integers(1, 20, n)]
    for t in range(120):
        usage = [float(u) for u in rng.uniform(0.0, 30.0, n)]
        usage[t % n] = math.nan  # one workload without a metric each step
        used = [u * (1.1 if rng.random() < 0.2 else 1.0) for u in usage]
        capacity = [math.inf if i % 3 == 0 else 1.0 + 0.5 * (i % 2) for i in range(n)]
        if t % 40 == 5:
            states[3] = HpaGridState()  # a workload starting afresh among the others
        alone = [grid.step(s, usage=u, used=d, current=c, capacity_per_pod=k)
                 for s, u, d, c, k in zip(states, usage, used, current, capacity, strict=True)]
        together = grid.step_many(states, usage=usage, used=used, current=current, capacity_per_pod=capacity)
        for a, b in zip(alone, together, strict=True):
            np.testing.assert_array_equal(a.decisions, b.decisions)
            np.testing.assert_array_equal(a.recommendations, b.recommendations)
            np.testing.assert_array_equal(a.shortfalls, b.shortfalls)
            assert a.outcomes == b.outcomes
        states = together
        # the real counts move on, some behind their shadows (pods asked for, not ready yet: the second pass)
        current = [max(1, c + int(rng.integers(-3, 4))) for c in current]
    assert any(s.outcomes > 100 for s in states)
