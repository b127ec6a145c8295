"""Backtest entry points: replay a trace under each policy's sweep and collect the figures of DESIGN section 6.

`run_backtest(trace, policies=..., forecaster=...)` returns a `BacktestResult`; `result.to_json()` has the shape the CLI
writes. Nothing here reads files, the network or the clock; the caller loads the trace and picks the forecaster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from aihpa.backtest.policies import (
    AIHPA_KNOBS,
    HPA_KNOBS,
    ORACLE_KNOBS,
    AihpaBatch,
    HpaBatch,
    HpaFloorBatch,
    OracleBatch,
    PhpaBatch,
    hpa_replica_history,
    tune_holt_winters,
    tune_linear,
)
from aihpa.backtest.protocol import (
    MIN_STEPS,
    BatchPolicy,
    SweepPoint,
    actions_at_slo,
    cost_at_slo,
    demand_from_values,
    physical_limit,
    replay,
    score,
)
from aihpa.errors import UserError
from aihpa.forecast.forecaster import Forecaster
from aihpa.scaling.policy import PredictivePolicy
from aihpa.traces import Trace

__all__ = [
    "KNOWN_POLICIES",
    "POLICY_NAMES",
    "BacktestResult",
    "PolicyResult",
    "check_policies",
    "run_backtest",
]

POLICY_NAMES: tuple[str, ...] = ("hpa", "phpa-lr", "phpa-hw", "oracle", "aihpa")
#: Every policy `--policies` takes: the defaults, and "hpa+aihpa" (the HPA with aihpa setting its floor, as
#: `aihpa/with-hpa: floor` runs live), swept over the HPA's target at aihpa's default risk.
KNOWN_POLICIES: tuple[str, ...] = (*POLICY_NAMES, "hpa+aihpa")
_KNOB_NAMES = {
    "hpa+aihpa": "target utilization (of the HPA; aihpa's floor at its default risk)",
    "hpa": "target utilization",
    "phpa-lr": "target utilization",
    "phpa-hw": "target utilization",
    "oracle": "target utilization",
    "aihpa": "risk (target share of saturated steps)",
}

#: Called with (policy name, steps done, steps in all) as a replay advances.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class PolicyResult:
    """One policy's sweep, its headline figure, and what it was configured with."""

    name: str
    knob_name: str
    sweep: tuple[SweepPoint, ...]
    cost_at_slo: float | None
    replicas: npt.NDArray[np.int64]  # [settings, steps], for plots
    ready: npt.NDArray[np.int64]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def actions_at_slo(self) -> float | None:
        """Scaling actions at exactly the SLO, on the same line through the sweep as the cost."""
        return actions_at_slo(self.sweep)

    def as_dict(self) -> dict[str, Any]:
        return {
            "cost_at_slo": self.cost_at_slo,
            "actions_at_slo": self.actions_at_slo,
            "knob": self.knob_name,
            "settings": self.settings,
            "sweep": [p.as_dict() for p in self.sweep],
        }


@dataclass(frozen=True)
class BacktestResult:
    trace: str
    steps: int
    demand: npt.NDArray[np.float64]
    physical_limit: float
    policies: dict[str, PolicyResult]

    def to_json(self) -> dict[str, Any]:
        return {
            "trace": self.trace,
            "steps": self.steps,
            "physical_limit": self.physical_limit,
            "policies": {name: r.as_dict() for name, r in self.policies.items()},
        }


def check_policies(names: Sequence[str]) -> tuple[str, ...]:
    """The policy names, validated (UserError naming the unknown one and the known ones)."""
    out: list[str] = []
    for name in names:
        name = name.strip()
        if not name:
            continue
        if name not in KNOWN_POLICIES:
            raise UserError(f"unknown policy {name!r}; known policies are {', '.join(KNOWN_POLICIES)}")
        if name not in out:
            out.append(name)
    if not out:
        raise UserError(f"no policy given; known policies are {', '.join(KNOWN_POLICIES)}")
    return tuple(out)


def _ticker(progress: Progress, name: str, total: int) -> Callable[[int], None]:
    def tick(t: int) -> None:
        progress(name, t, total)

    return tick


def run_backtest(
    trace: Trace,
    *,
    policies: Sequence[str] = POLICY_NAMES,
    forecaster: Forecaster | None = None,
    aihpa_policy: PredictivePolicy | None = None,
    knobs: dict[str, Sequence[float]] | None = None,
    progress: Progress | None = None,
) -> BacktestResult:
    """Replay `trace` under each named policy's sweep (DESIGN section 6). `forecaster` is required for "aihpa"."""
    names = check_policies(policies)
    n = len(trace)
    if n < MIN_STEPS:
        raise UserError(
            f"{trace.source or trace.name}: {n} steps, the protocol needs at least {MIN_STEPS} "
            "(a 20% history and 100 scored steps)"
        )
    for needs_model in ("aihpa", "hpa+aihpa"):
        if needs_model in names and forecaster is None:
            raise UserError(f"policy {needs_model!r} needs a forecaster")
    demand = demand_from_values(trace.values)
    limit = physical_limit(demand)
    times = trace.seconds()
    grids = {"hpa": HPA_KNOBS, "phpa-lr": HPA_KNOBS, "phpa-hw": HPA_KNOBS, "oracle": ORACLE_KNOBS, "aihpa": AIHPA_KNOBS,
             "hpa+aihpa": HPA_KNOBS}
    if knobs:
        grids.update({k: tuple(v) for k, v in knobs.items()})
    replica_history: npt.NDArray[np.float64] | None = None
    results: dict[str, PolicyResult] = {}
    for name in names:
        grid = tuple(float(k) for k in grids[name])
        settings: dict[str, Any] = {}
        batch: BatchPolicy
        if name == "hpa":
            batch = HpaBatch(grid)
        elif name == "hpa+aihpa":
            assert forecaster is not None
            batch = HpaFloorBatch(grid, forecaster, policy=aihpa_policy, times=times, step_s=trace.step_s)
            settings = {"forecaster": forecaster.version}
        elif name == "oracle":
            batch = OracleBatch(grid, demand)
        elif name in ("phpa-lr", "phpa-hw"):
            if replica_history is None:
                replica_history = hpa_replica_history(demand)
            if name == "phpa-lr":
                lr = tune_linear(replica_history)
                settings = {"lookAhead": lr.look_ahead_ms, "historySize": lr.history_size}
                batch = PhpaBatch(grid, lr)
            else:
                hw = tune_holt_winters(replica_history, steps_per_day=trace.steps_per_day)
                settings = {
                    "alpha": hw.alpha,
                    "beta": hw.beta,
                    "gamma": hw.gamma,
                    "seasonalPeriods": hw.seasonal_periods,
                    "storedSeasons": hw.stored_seasons,
                    "trend": "add",
                    "seasonal": "add",
                }
                batch = PhpaBatch(grid, hw)
        else:
            assert forecaster is not None
            aihpa = AihpaBatch(grid, forecaster, policy=aihpa_policy, times=times, step_s=trace.step_s)
            settings = {"forecaster": forecaster.version, "lead_steps": aihpa.policies[0].lead_steps}
            batch = aihpa
        tick = None if progress is None else _ticker(progress, name, n - 1)
        outcome = replay(demand, batch, rows=len(grid), times=times, progress=tick)
        if isinstance(batch, AihpaBatch):
            # which of the side-by-side scorings each risk setting ended the replay with
            settings["scoring_in_use"] = [
                policy.scorings[state.choice].label for policy, state in zip(batch.policies, batch.states, strict=True)
            ]
        points = tuple(score(outcome, grid))
        results[name] = PolicyResult(
            name=name,
            knob_name=_KNOB_NAMES[name],
            sweep=points,
            cost_at_slo=cost_at_slo(points, limit),
            replicas=outcome.replicas,
            ready=outcome.ready,
            settings=settings,
        )
    return BacktestResult(
        trace=trace.name, steps=n, demand=demand, physical_limit=limit, policies=results
    )
