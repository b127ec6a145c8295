"""The backtest protocol of DESIGN section 6: replays, sweeps, the cost-at-SLO figure, reports and plots.

Pure core: never imports the network, the Kubernetes client or the adapters, and never reads the wall clock. The
caller (the CLI, a benchmark) loads traces and chooses the forecaster; everything here is deterministic.
"""

from aihpa.backtest.protocol import (
    MAX_PODS,
    MIN_PODS,
    MIN_STEPS,
    SLO_SATURATION,
    BatchPolicy,
    Replay,
    StepView,
    SweepPoint,
    cost_at_slo,
    demand_from_values,
    physical_limit,
    replay,
    score,
    scored_start,
)
from aihpa.backtest.run import POLICY_NAMES, BacktestResult, PolicyResult, check_policies, run_backtest

__all__ = [
    "MAX_PODS",
    "MIN_PODS",
    "MIN_STEPS",
    "POLICY_NAMES",
    "SLO_SATURATION",
    "BacktestResult",
    "BatchPolicy",
    "PolicyResult",
    "Replay",
    "StepView",
    "SweepPoint",
    "check_policies",
    "cost_at_slo",
    "demand_from_values",
    "physical_limit",
    "replay",
    "run_backtest",
    "score",
    "scored_start",
]
