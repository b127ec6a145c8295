"""A one-page picture of a backtest: demand and each policy's replicas over a readable window, and the
cost-vs-saturation curves of the sweeps.

Writes a PNG with matplotlib's Agg backend (no display needed). Reads nothing, never touches the network or the clock.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aihpa.backtest.protocol import SLO_SATURATION, scored_start
from aihpa.backtest.run import BacktestResult

__all__ = ["plot_backtest"]

#: Steps shown in the replica panel: six hours of one-minute steps read well at this size.
WINDOW_STEPS = 360


def _row_near_slo(saturation: list[float]) -> int:
    """The setting whose saturated share is closest to the SLO from below (else the least saturated)."""
    meeting = [i for i, s in enumerate(saturation) if s <= SLO_SATURATION]
    if meeting:
        return max(meeting, key=lambda i: saturation[i])
    return int(np.argmin(saturation))


def plot_backtest(result: BacktestResult, path: str | Path, *, window: int = WINDOW_STEPS) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(path)
    start = scored_start(result.steps)
    stop = min(result.steps, start + window)
    steps = np.arange(start, stop)
    fig, (ax_top, ax_bottom) = plt.subplots(2, 1, figsize=(12, 9), gridspec_kw={"height_ratios": [3, 2]})
    ax_top.fill_between(steps, result.demand[start:stop], step="post", color="0.8", label="demand (cores)")
    for name, res in result.policies.items():
        row = _row_near_slo([p.saturated_share for p in res.sweep])
        knob = res.sweep[row].knob
        ax_top.step(steps, res.ready[row, start:stop], where="post", lw=1.2, label=f"{name} ready pods (knob {knob:g})")
    ax_top.set_xlabel("step (60 s each)")
    ax_top.set_ylabel("cores / pods")
    ax_top.set_title(f"{result.trace}: demand and ready pods, first {stop - start} scored steps")
    ax_top.legend(loc="upper right", fontsize=8)

    for name, res in result.policies.items():
        pts = sorted(res.sweep, key=lambda p: p.pod_minutes)
        ax_bottom.plot(
            [100 * p.saturated_share for p in pts],
            [p.pod_minutes / result.physical_limit for p in pts],
            marker="o",
            ms=3,
            label=f"{name} (cost at SLO {res.cost_at_slo:.3f})" if res.cost_at_slo is not None else f"{name} (—)",
        )
    ax_bottom.axvline(100 * SLO_SATURATION, color="k", ls="--", lw=0.8)
    # the very cheap (saturated) and very expensive ends of a sweep would flatten the region that matters
    headline = [r.cost_at_slo for r in result.policies.values() if r.cost_at_slo is not None]
    ax_bottom.set_ylim(0.8, max(2.0, 1.5 * max(headline, default=2.0)))
    ax_bottom.set_xscale("symlog", linthresh=0.1)
    ax_bottom.set_xlim(left=0)
    ax_bottom.set_xlabel("saturated steps (%)")
    ax_bottom.set_ylabel("pod-minutes / physical limit")
    ax_bottom.set_title("cost vs saturation over each policy's knob sweep")
    ax_bottom.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
