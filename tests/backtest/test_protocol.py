"""The backtest protocol (DESIGN section 6) on small hand-checked cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from aihpa.backtest import (
    MIN_STEPS,
    StepView,
    SweepPoint,
    cost_at_slo,
    demand_from_values,
    physical_limit,
    replay,
    score,
    scored_start,
)
from aihpa.backtest.policies import OracleBatch
from aihpa.errors import UserError


class Scripted:
    """Asks for a fixed count at each step, and records what it was shown."""

    def __init__(self, plan: list[int]) -> None:
        self.plan = plan
        self.seen: list[StepView] = []

    def decide(self, view: StepView) -> np.ndarray:
        self.seen.append(view)
        return np.array([self.plan[view.t]])


def test_demand_is_scaled_so_that_its_99th_percentile_is_20_cores() -> None:
    v = np.arange(1, 101, dtype=np.float64)
    d = demand_from_values(v)
    assert np.percentile(d, 99) == pytest.approx(20.0)
    assert d[0] == pytest.approx(20.0 / np.percentile(v, 99))


def test_nan_and_negative_values_become_zero_demand() -> None:
    v = np.array([np.nan, -5.0, 10.0, 20.0] + [10.0] * 96)
    d = demand_from_values(v)
    assert d[0] == 0.0 and d[1] == 0.0
    assert d[2] > 0


@pytest.mark.parametrize("values", [np.zeros(200), -np.ones(200), np.full(200, np.nan)], ids=["zeros", "neg", "nan"])
def test_a_column_without_positive_demand_is_a_user_error(values: np.ndarray) -> None:
    with pytest.raises(UserError, match="demand"):
        demand_from_values(values)


@pytest.mark.parametrize(("n", "start"), [(125, 25), (8578, 1715), (8640, 1728), (31651, 6330)])
def test_the_first_fifth_of_steps_rounded_down_is_history(n: int, start: int) -> None:
    assert scored_start(n) == start


def test_pods_start_one_step_after_they_are_asked_for_and_scale_down_is_immediate() -> None:
    demand = np.array([0.5, 2.5, 2.5, 1.0, 3.0, 0.0])
    policy = Scripted([1, 3, 3, 1, 4, 2])
    out = replay(demand, policy, rows=1)
    # asked:     1  3  3  1  4  2
    # ready:     1  1  3  1  1  2   (growth is ready next step; shrinking is immediate)
    assert out.replicas[0].tolist() == [1, 3, 3, 1, 4, 2]
    assert out.ready[0].tolist() == [1, 1, 3, 1, 1, 2]
    assert out.observed[0].tolist() == [0.5, 1.0, 2.5, 1.0, 1.0, 0.0]


def test_a_policy_sees_only_the_past() -> None:
    demand = np.array([0.5, 2.5, 2.5, 1.0])
    policy = Scripted([1, 3, 3, 1])
    replay(demand, policy, rows=1)
    for view in policy.seen:
        assert view.observed.shape == (1, view.t)
        assert view.ready.shape == (1, view.t)
        assert view.now == 60.0 * view.t
    assert [v.t for v in policy.seen] == [1, 2, 3]


def test_counts_are_clamped_to_one_and_a_hundred_pods() -> None:
    out = replay(np.ones(3), Scripted([1, 0, 500]), rows=1)
    assert out.replicas[0].tolist() == [1, 1, 100]


def test_figures_over_the_scoring_window_by_hand() -> None:
    # 10 steps: history is steps 0-1, scored 2-9
    demand = np.array([1, 1, 2.5, 2.5, 0.2, 3.0, 3.0, 1.0, 0.5, 4.0])
    plan = [1, 1, 3, 3, 1, 1, 3, 3, 1, 1]
    out = replay(demand, Scripted(plan), rows=1)
    assert out.ready[0].tolist() == [1, 1, 1, 3, 1, 1, 1, 3, 1, 1]
    (p,) = score(out, [0.7])
    # scored ready: 1 3 1 1 1 3 1 1 against 2.5 2.5 .2 3 3 1 .5 4 -> saturated at steps 2, 5, 6, 9
    assert p.saturated_share == pytest.approx(4 / 8)
    unserved = 1.5 + 0 + 0 + 2 + 2 + 0 + 0 + 3
    assert p.unserved_share == pytest.approx(unserved / demand[2:].sum())
    assert p.pod_minutes == sum(plan[2:])
    # changes of the asked count at steps 2, 4, 6, 8
    assert p.scaling_actions == 4
    assert physical_limit(demand) == 3 + 3 + 1 + 3 + 3 + 1 + 1 + 4


def test_oracle_keeps_ceil_of_demand_over_target_ready_at_every_step() -> None:
    demand = np.array([0.5, 2.5, 1.0, 3.2, 0.1, 7.9])
    out = replay(demand, OracleBatch([1.0, 0.5], demand), rows=2)
    # u = 1: need 1 3 1 4 1 8, ask max(need[t], need[t+1]) from t = 1
    assert out.replicas[0].tolist() == [1, 3, 4, 4, 8, 8]
    assert out.ready[0].tolist() == [1, 1, 3, 4, 4, 8]
    # u = 0.5: need 1 5 2 7 1 16
    assert out.replicas[1].tolist() == [1, 5, 7, 7, 16, 16]
    assert (out.ready[:, 2:] >= np.ceil(demand[2:] / np.array([[1.0], [0.5]]))).all()


def _point(sat: float, pm: float) -> SweepPoint:
    return SweepPoint(knob=0.0, saturated_share=sat, unserved_share=0.0, pod_minutes=pm, scaling_actions=0)


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        # cheapest meeting 1% is (0.5%, 300); next cheaper is (3%, 200): 300 + (0.5 / 2.5) × (200 - 300) = 280
        ([(0.0, 400), (0.005, 300), (0.03, 200), (0.1, 100)], 280.0),
        # exactly 1% meets the SLO: no interpolation needed
        ([(0.0, 400), (0.01, 300), (0.03, 200)], 300.0),
        # nothing cheaper than the cheapest meeting setting: its own cost
        ([(0.0, 400), (0.002, 300)], 300.0),
        # a non-monotone sweep: the cheapest meeting setting decides, whatever the order
        ([(0.02, 250), (0.004, 260), (0.0, 500), (0.05, 100)], 260 + (0.006 / 0.016) * (250 - 260)),
    ],
    ids=["interpolates_between_the_two_settings", "exact_hit", "no_cheaper_setting", "unordered_sweep"],
)
def test_cost_at_slo_interpolates_at_exactly_one_percent(points: list[tuple[float, float]], expected: float) -> None:
    sweep = [_point(s, pm) for s, pm in points]
    result = cost_at_slo(sweep, 100.0)
    assert result is not None
    assert result == pytest.approx(expected / 100.0)


def test_cost_at_slo_is_absent_when_no_setting_meets_the_slo() -> None:
    assert cost_at_slo([_point(0.02, 100.0), _point(0.05, 50.0)], 100.0) is None


def test_the_protocol_needs_a_history_and_100_scored_steps() -> None:
    assert math.ceil(0.8 * MIN_STEPS) >= 100
