"""Leave-one-trace-out: a setting is chosen on the other traces, and the held-out trace's figures are never read."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from aihpa.backtest.loo import TraceFigures, choose_setting, relative_cost
from aihpa.backtest.protocol import SweepPoint, actions_at_slo, cost_at_slo


def _fig(cost: float | None, actions: float = 100.0) -> TraceFigures:
    return TraceFigures(cost=cost, actions=actions, hpa_cost=2.0, hpa_actions=100.0)


class Sealed(Mapping[str, TraceFigures]):
    """Per-trace figures whose held-out entry raises when read: its name may be listed, its figures never used."""

    def __init__(self, figures: dict[str, TraceFigures], held_out: str) -> None:
        self._figures, self._held_out = figures, held_out

    def __getitem__(self, name: str) -> TraceFigures:
        if name == self._held_out:
            raise AssertionError(f"the held-out trace {name!r} was read")
        return self._figures[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._figures)

    def __len__(self) -> int:
        return len(self._figures)

    def get(self, name: str, default: object = None) -> TraceFigures:  # type: ignore[override]
        return self[name]

    def values(self):  # type: ignore[no-untyped-def, override]
        raise AssertionError("values() would read the held-out trace")

    def items(self):  # type: ignore[no-untyped-def, override]
        raise AssertionError("items() would read the held-out trace")


def test_the_held_out_trace_is_never_read() -> None:
    figures = {
        "a": {"x": _fig(1.8), "y": _fig(1.9), "held": _fig(1.0)},
        "b": {"x": _fig(1.7), "y": _fig(1.8), "held": _fig(9.0)},
    }
    sealed = {setting: Sealed(per_trace, "held") for setting, per_trace in figures.items()}
    # b is better on x and y; a would win on the held-out trace, which must not count
    assert choose_setting(sealed, held_out="held") == "b"


def test_the_choice_does_not_move_with_the_held_out_figures() -> None:
    base = {"a": {"x": _fig(1.8), "y": _fig(1.6)}, "b": {"x": _fig(1.7), "y": _fig(1.8)}}
    choices = set()
    for held_cost in (0.1, 1.0, 100.0, None):
        figures = {s: {**per, "held": _fig(held_cost if s == "a" else 1.0)} for s, per in base.items()}
        choices.add(choose_setting(figures, held_out="held"))
    assert choices == {"a"}  # a: mean 0.85 of the HPA on x and y; b: 0.875


def test_settings_that_scale_too_often_come_last() -> None:
    figures = {
        "cheap-but-busy": {"x": _fig(1.0, actions=400.0), "y": _fig(1.0)},
        "steady": {"x": _fig(1.9), "y": _fig(1.9)},
    }
    assert choose_setting(figures, held_out="z") == "steady"
    assert choose_setting(figures, held_out="z", max_actions=5.0) == "cheap-but-busy"


def test_no_other_trace_is_an_error() -> None:
    with pytest.raises(ValueError, match="no trace but"):
        choose_setting({"a": {"only": _fig(1.0)}}, held_out="only")
    assert relative_cost(_fig(None)) == float("inf")


def test_actions_at_slo_follow_the_same_line_as_the_cost() -> None:
    points = [
        SweepPoint(knob=0.1, saturated_share=0.004, unserved_share=0.0, pod_minutes=1000.0, scaling_actions=40),
        SweepPoint(knob=0.2, saturated_share=0.016, unserved_share=0.0, pod_minutes=800.0, scaling_actions=100),
        SweepPoint(knob=0.3, saturated_share=0.05, unserved_share=0.0, pod_minutes=700.0, scaling_actions=300),
    ]
    # 1% lies half way from the first point (0.4%) to the second (1.6%)
    assert cost_at_slo(points, 100.0) == pytest.approx(9.0)
    assert actions_at_slo(points) == pytest.approx(70.0)
    assert actions_at_slo(points[2:]) is None
