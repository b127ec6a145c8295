"""The backtest protocol (DESIGN section 6): demand, the pod model, the replay loop, and the figures.

Readings of the design text, where it leaves room, are the literal ones:

- Demand: d = v / P99(v) × 20 over the replayed samples (the slice, when one is given), P99 by linear interpolation
  between order statistics (numpy's default), NaN ignored in P99; then NaN and negative values become 0.
- Steps: one sample is one model step (`aihpa.step.DEFAULT_STEP_S`, 60 s). The replay starts with one ready pod at
  t = 0; policies decide at the start of each step t >= 1. A decision D[t] is the total count asked for at t: more pods
  than before start at t (they cost from t) and are ready at t + 1; fewer is immediate, cancelling starting pods first,
  then ready ones. So ready[t] = min(D[t - 1], D[t]) and cost[t] = D[t]. Counts are clamped to [1, 100] (1 core
  request each).
- What a policy sees at t: o[k] = min(d[k], ready[k]) and ready[k], D[k] for k < t, and timestamps; never d.
- Scoring window: steps N // 5 .. N - 1 (the first 20%, rounded down, is history).
- Per step: saturated if d[t] > ready[t]. Figures over the scoring window: saturated share (saturated steps / steps),
  unserved share (Σ max(0, d - ready) / Σ d), pod-minutes (Σ cost × 1 min), scaling actions (steps where
  D[t] != D[t - 1]), and the physical limit Σ max(1, ceil(d)).
- Cost at SLO: a setting "meets" the SLO when its saturated share is <= 1%. Take A, the cheapest (fewest pod-minutes)
  setting that meets it, and B, the most expensive of the settings cheaper than A (B cannot meet it); the cost at SLO is
  the pod-minutes on the straight line through (saturated share, pod-minutes) of A and B at exactly 1%, divided by the
  physical limit. With no cheaper setting, A's own pod-minutes are used; with no setting meeting the SLO there is no
  figure (None).

Pure: no I/O, no clock; deterministic (no randomness anywhere in the protocol).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from aihpa.errors import UserError
from aihpa.step import DEFAULT_STEP_S

__all__ = [
    "MAX_PODS",
    "MIN_PODS",
    "MIN_STEPS",
    "SLO_SATURATION",
    "BatchPolicy",
    "Replay",
    "StepView",
    "SweepPoint",
    "actions_at_slo",
    "cost_at_slo",
    "demand_from_values",
    "physical_limit",
    "replay",
    "score",
    "scored_start",
]

MIN_PODS = 1
MAX_PODS = 100
REQUEST_CORES = 1.0
SLO_SATURATION = 0.01
DEMAND_P99_CORES = 20.0
#: Shortest replay: the scoring window must hold 100 steps, or 1% of saturated steps cannot be told apart.
MIN_STEPS = 125


def demand_from_values(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """d[t] = v[t] / P99(v) × 20 cores, NaN and negatives -> 0. Raises UserError when P99 is not positive."""
    v = np.asarray(values, dtype=np.float64).reshape(-1)
    if v.size == 0 or not np.isfinite(v).any():
        raise UserError("the demand column has no values")
    p99 = float(np.nanpercentile(v, 99))
    if not math.isfinite(p99) or p99 <= 0:
        raise UserError(
            f"the demand column's 99th percentile is {p99:g}: demand cannot be scaled "
            "(a column of zeros, or mostly zeros or negatives)"
        )
    d = v / p99 * DEMAND_P99_CORES
    d[~np.isfinite(d)] = 0.0
    d[d < 0] = 0.0
    return d


def scored_start(n_steps: int) -> int:
    """First step of the scoring window: the first 20% of steps (rounded down) are history."""
    return n_steps // 5


@dataclass(frozen=True)
class StepView:
    """What every row of a batched policy may read at the start of step t (arrays are [rows, t] views, read-only)."""

    t: int
    observed: npt.NDArray[np.float64]  # o[k] for k < t
    ready: npt.NDArray[np.int64]  # ready[k] for k < t
    replicas: npt.NDArray[np.int64]  # D[k] (ready + starting) for k < t
    times: npt.NDArray[np.float64] | None  # the trace's own timestamps for k < t (calendar features), or None
    step_s: float = DEFAULT_STEP_S

    @property
    def now(self) -> float:
        """Control time of step t in seconds since the start of the replay."""
        return self.t * self.step_s


class BatchPolicy(Protocol):
    """A policy run for several settings of its knob at once; row i of every array belongs to knobs[i]."""

    def decide(self, view: StepView) -> npt.NDArray[np.int64]:
        """Total replicas to ask for at step view.t, one per row."""
        ...


@dataclass(frozen=True)
class Replay:
    """One replay of a batched policy: per-row, per-step arrays [rows, N]."""

    demand: npt.NDArray[np.float64]
    replicas: npt.NDArray[np.int64]
    ready: npt.NDArray[np.int64]
    observed: npt.NDArray[np.float64]


def replay(
    demand: npt.NDArray[np.float64],
    policy: BatchPolicy,
    *,
    rows: int,
    times: npt.NDArray[np.float64] | None = None,
    progress: Callable[[int], None] | None = None,
) -> Replay:
    """Run `policy` over the whole demand series for `rows` knob settings at once."""
    n = demand.shape[0]
    replicas = np.zeros((rows, n), dtype=np.int64)
    ready = np.zeros((rows, n), dtype=np.int64)
    observed = np.zeros((rows, n), dtype=np.float64)
    replicas[:, 0] = MIN_PODS
    ready[:, 0] = MIN_PODS
    observed[:, 0] = np.minimum(demand[0], ready[:, 0])
    # Pods asked for at t-1 are ready at t, so at a decision no pod is still starting; the pool is kept as two
    # counts anyway so that the rule "cancel starting pods first" is explicit.
    pool_ready = ready[:, 0].copy()
    pool_starting = np.zeros(rows, dtype=np.int64)
    for t in range(1, n):
        pool_ready = pool_ready + pool_starting
        pool_starting[:] = 0
        view = StepView(
            t=t,
            observed=observed[:, :t],
            ready=ready[:, :t],
            replicas=replicas[:, :t],
            times=None if times is None else times[:t],
        )
        wanted = np.clip(np.asarray(policy.decide(view), dtype=np.int64).reshape(rows), MIN_PODS, MAX_PODS)
        total = pool_ready + pool_starting
        grow = np.maximum(wanted - total, 0)
        shrink = np.maximum(total - wanted, 0)
        cancel = np.minimum(shrink, pool_starting)
        pool_starting = pool_starting - cancel + grow
        pool_ready = pool_ready - (shrink - cancel)
        replicas[:, t] = pool_ready + pool_starting
        ready[:, t] = pool_ready
        observed[:, t] = np.minimum(demand[t], pool_ready * REQUEST_CORES)
        if progress is not None:
            progress(t)
    return Replay(demand=demand, replicas=replicas, ready=ready, observed=observed)


@dataclass(frozen=True)
class SweepPoint:
    """The figures of one knob setting over the scoring window."""

    knob: float
    saturated_share: float
    unserved_share: float
    pod_minutes: float
    scaling_actions: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "knob": self.knob,
            "saturated_share": self.saturated_share,
            "unserved_share": self.unserved_share,
            "pod_minutes": self.pod_minutes,
            "scaling_actions": self.scaling_actions,
        }


def physical_limit(demand: npt.NDArray[np.float64]) -> float:
    """Σ max(1, ceil(d[t])) over the scoring window: pod-minutes of perfect foresight at 100% utilization."""
    d = demand[scored_start(demand.shape[0]) :]
    return float(np.maximum(1.0, np.ceil(d)).sum())


def score(result: Replay, knobs: Sequence[float]) -> list[SweepPoint]:
    """The figures of each row over the scoring window."""
    d = result.demand
    s0 = scored_start(d.shape[0])
    dw = d[s0:]
    total_demand = float(dw.sum())
    points = []
    for i, knob in enumerate(knobs):
        ready = result.ready[i, s0:].astype(np.float64)
        cost = result.replicas[i, s0:]
        changes = result.replicas[i, s0:] != result.replicas[i, s0 - 1 : -1] if s0 > 0 else (
            np.concatenate([[False], result.replicas[i, 1:] != result.replicas[i, :-1]])
        )
        unserved = float(np.maximum(0.0, dw - ready).sum())
        points.append(
            SweepPoint(
                knob=float(knob),
                saturated_share=float(np.count_nonzero(dw > ready)) / dw.shape[0],
                unserved_share=unserved / total_demand if total_demand > 0 else 0.0,
                pod_minutes=float(cost.sum()) * DEFAULT_STEP_S / 60.0,
                scaling_actions=int(np.count_nonzero(changes)),
            )
        )
    return points


def _slo_pair(points: Sequence[SweepPoint], slo: float) -> tuple[SweepPoint, SweepPoint, float] | None:
    """A (the cheapest setting meeting `slo`), B (the dearest one cheaper than A) and the share of the way from A to
    B at which the line through them crosses `slo` (0 with no cheaper setting, B = A); None if none meets it."""
    meeting = [p for p in points if p.saturated_share <= slo]
    if not meeting:
        return None
    best = min(meeting, key=lambda p: (p.pod_minutes, p.saturated_share))
    cheaper = [p for p in points if p.pod_minutes < best.pod_minutes]
    if not cheaper:
        return best, best, 0.0
    nxt = max(cheaper, key=lambda p: (p.pod_minutes, -p.saturated_share))
    # nxt is cheaper than the cheapest setting meeting the SLO, so it misses it: its share is above slo
    return best, nxt, (slo - best.saturated_share) / (nxt.saturated_share - best.saturated_share)


def cost_at_slo(points: Sequence[SweepPoint], limit: float, *, slo: float = SLO_SATURATION) -> float | None:
    """Pod-minutes at exactly `slo` saturated steps, interpolated along the sweep, divided by the physical limit."""
    pair = _slo_pair(points, slo)
    if pair is None or limit <= 0:
        return None
    best, nxt, frac = pair
    return (best.pod_minutes + frac * (nxt.pod_minutes - best.pod_minutes)) / limit


def actions_at_slo(points: Sequence[SweepPoint], *, slo: float = SLO_SATURATION) -> float | None:
    """Scaling actions at exactly `slo` saturated steps, on the same line through the sweep as `cost_at_slo`."""
    pair = _slo_pair(points, slo)
    if pair is None:
        return None
    best, nxt, frac = pair
    return best.scaling_actions + frac * (nxt.scaling_actions - best.scaling_actions)
