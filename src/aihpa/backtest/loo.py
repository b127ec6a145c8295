"""Leave-one-trace-out choice of the policy's tunables: a setting is judged on the other traces, never on the one it
is then scored on.

`choose_setting(figures, held_out=name)` gets every candidate setting's figures per trace and returns the setting that
did best on the traces other than `held_out`; the held-out trace's figures are dropped before anything reads them (a
test hands it a mapping that raises on any read of the held-out trace). A setting is judged by its cost at SLO as a
multiple of the HPA's on the same trace (so a trace with a dear physical limit does not outweigh the others), averaged
over the traces; settings whose scaling actions exceed `max_actions` times the HPA's on any of those traces come last.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["TraceFigures", "choose_setting", "relative_cost"]


@dataclass(frozen=True)
class TraceFigures:
    """One setting's headline figures on one trace, next to the HPA's on the same trace."""

    cost: float | None  # cost at SLO (None: the SLO was never met)
    actions: float | None  # scaling actions at SLO
    hpa_cost: float | None
    hpa_actions: float | None


def relative_cost(figures: TraceFigures) -> float:
    """Cost at SLO over the HPA's (inf when either has no figure)."""
    if figures.cost is None or figures.hpa_cost is None or figures.hpa_cost <= 0:
        return math.inf
    return figures.cost / figures.hpa_cost


def _too_busy(figures: TraceFigures, max_actions: float) -> bool:
    if figures.actions is None or figures.hpa_actions is None:
        return True
    return figures.actions > max_actions * max(figures.hpa_actions, 1.0)


def choose_setting(
    figures: Mapping[str, Mapping[str, TraceFigures]],
    *,
    held_out: str,
    max_actions: float = 1.5,
) -> str:
    """The setting (a key of `figures`, whose values map trace names to figures) that did best on every trace but
    `held_out`. Ties go to the setting listed first. Raises ValueError when no other trace has figures."""
    best: tuple[int, float, int] | None = None
    chosen = ""
    for order, (setting, per_trace) in enumerate(figures.items()):
        others = [name for name in per_trace if name != held_out]
        if not others:
            raise ValueError(f"no trace but {held_out!r} to choose {setting!r} on")
        rows = [per_trace[name] for name in others]
        busy = sum(1 for row in rows if _too_busy(row, max_actions))
        mean = sum(min(relative_cost(row), 1e6) for row in rows) / len(rows)
        key = (busy, mean, order)
        if best is None or key < best:
            best, chosen = key, setting
    return chosen
