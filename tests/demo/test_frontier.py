"""The HPA's frontier in the demo: monotone, read by linear interpolation, flat below its range, silent above it."""

from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aihpa.demo import FrontierPoint, frontier_cost, hpa_frontier


def _p(target: int, share: float, cost: float) -> FrontierPoint:
    return FrontierPoint(target_percent=target, saturated_share=share, pod_minutes=cost)


# target 50 is dear and safe, 90 cheap and hot; 70 is both dearer and hotter than 60 (noise) and is not on the frontier
POINTS = [_p(50, 0.000, 2000.0), _p(60, 0.010, 1600.0), _p(70, 0.020, 1700.0), _p(80, 0.030, 1200.0),
          _p(90, 0.050, 1000.0)]


def test_the_frontier_keeps_the_settings_nothing_beats_by_saturated_share() -> None:
    assert [p.target_percent for p in hpa_frontier(POINTS)] == [50, 60, 80, 90]
    # of two settings at the same share the cheaper one stays, whatever the input order
    tie = [_p(60, 0.01, 1500.0), _p(50, 0.01, 1400.0), _p(70, 0.02, 1450.0)]
    assert [p.target_percent for p in hpa_frontier(tie)] == [50]


@pytest.mark.parametrize(
    ("share", "cost", "reason"),
    [
        (0.010, 1600.0, "interpolated between the HPA at 50% and at 60%"),  # on a point: its cost
        (0.005, 1800.0, "interpolated between the HPA at 50% and at 60%"),
        (0.020, 1400.0, "interpolated between the HPA at 60% and at 80%"),  # 70% is off the frontier
        (0.040, 1100.0, "interpolated between the HPA at 80% and at 90%"),
        (0.050, 1000.0, "interpolated between the HPA at 80% and at 90%"),
    ],
)
def test_inside_its_range_the_frontier_is_read_by_linear_interpolation(share: float, cost: float,
                                                                        reason: str) -> None:
    got = frontier_cost(POINTS, share)
    assert got.pod_minutes == pytest.approx(cost)
    assert got.reason == reason


def test_below_its_lowest_share_the_frontier_is_flat_at_its_safest_point() -> None:
    points = [_p(50, 0.004, 2000.0), _p(90, 0.05, 1000.0)]
    got = frontier_cost(points, 0.001)
    assert got.pod_minutes == 2000.0
    assert "lower bound" in got.reason and "0.40% at 50%" in got.reason


def test_above_its_highest_share_the_frontier_gives_no_cost_and_says_why() -> None:
    got = frontier_cost(POINTS, 0.08)
    assert got.pod_minutes is None
    assert "5.00% at 90%" in got.reason and "not run hot enough" in got.reason


def test_a_frontier_of_one_point_answers_only_at_or_below_it() -> None:
    one = [_p(70, 0.02, 1500.0)]
    assert frontier_cost(one, 0.02).pod_minutes == 1500.0
    assert frontier_cost(one, 0.0).pod_minutes == 1500.0
    assert frontier_cost(one, 0.03).pod_minutes is None
    assert frontier_cost([], 0.01).pod_minutes is None


points_st = st.lists(
    st.builds(_p, st.integers(1, 100), st.floats(0.0, 1.0), st.floats(1.0, 1e6)), min_size=1, max_size=8)


@given(points=points_st, shares=st.lists(st.floats(0.0, 1.0), min_size=2, max_size=6))
def test_the_frontier_cost_never_rises_with_saturation_and_stays_within_the_settings_costs(
    points: list[FrontierPoint], shares: list[float]
) -> None:
    front = hpa_frontier(points)
    assert all(a.saturated_share < b.saturated_share and a.pod_minutes > b.pod_minutes
               for a, b in itertools.pairwise(front))
    costs = [(s, frontier_cost(points, s).pod_minutes) for s in sorted(shares)]
    known = [(s, c) for s, c in costs if c is not None]
    assert all(c1 >= c2 - 1e-6 * c1 for (_, c1), (_, c2) in itertools.pairwise(known))
    for share, cost in costs:
        if cost is None:
            assert share > front[-1].saturated_share
        else:
            assert min(p.pod_minutes for p in front) - 1e-6 <= cost <= max(p.pod_minutes for p in front) + 1e-6
            assert math.isfinite(cost)
