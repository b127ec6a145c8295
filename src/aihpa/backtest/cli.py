"""`aihpa backtest`: replay a trace under HPA, PHPA, the oracle and aihpa, and report cost at SLO.

Heavy imports (numpy, JAX, matplotlib) happen inside the handler so `aihpa --help` stays fast. User mistakes (a
missing file or column, a bad slice, an unknown policy, a trace too short or all zeros) raise `UserError`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aihpa.errors import UserError

__all__ = ["add_commands", "parse_slice"]

_FORECASTERS = ("auto", "bilstm", "seasonal-naive", "last-value")


def parse_slice(text: str) -> tuple[int, int | None]:
    """"START:END" sample indices (END may be empty: to the end). Raises UserError on anything else."""
    parts = text.split(":")
    if len(parts) != 2:
        raise UserError(f"--slice {text!r}: expected START:END (sample indices), e.g. 0:2000")
    try:
        start = int(parts[0]) if parts[0].strip() else 0
        stop = int(parts[1]) if parts[1].strip() else None
    except ValueError as exc:
        raise UserError(f"--slice {text!r}: START and END must be integers") from exc
    if start < 0 or (stop is not None and stop < 0):
        raise UserError(f"--slice {text!r}: indices must not be negative")
    if stop is not None and stop <= start:
        raise UserError(f"--slice {text!r}: END must be greater than START")
    return start, stop


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "backtest",
        help="replay a trace under each scaling policy and report cost at SLO (DESIGN section 6)",
        description=(
            "Replay a workload trace one sample per 60 s step under each policy, sweep its risk knob, and report "
            "cost at 1%% saturated steps relative to perfect foresight."
        ),
    )
    p.add_argument("trace", metavar="TRACE", help="a CSV trace")
    p.add_argument("--column", metavar="C", help="demand column (default: the first numeric column)")
    p.add_argument(
        "--policies", default="hpa,phpa-lr,phpa-hw,oracle,aihpa", metavar="LIST",
        help="comma-separated policies (default: hpa,phpa-lr,phpa-hw,oracle,aihpa)",
    )
    p.add_argument("--json", metavar="FILE", help="write the figures as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="draw demand, replicas and cost-vs-saturation curves")
    p.add_argument("--slice", metavar="START:END", help="replay only these sample indices of the trace")
    p.add_argument(
        "--forecaster", choices=_FORECASTERS, default="auto",
        help="aihpa's forecaster: the shipped Bi-LSTM (bilstm), a baseline, or auto (the Bi-LSTM when installed, "
        "else seasonal-naive)",
    )
    p.add_argument("--model", default=None, metavar="DIR",
                   help="aihpa's Bi-LSTM from this checkpoint or models directory instead of the shipped one")
    p.set_defaults(handler=run_backtest_command)


def _forecaster(choice: str) -> Any:
    from aihpa.forecast.forecaster import LastValueForecaster, SeasonalNaiveForecaster

    if choice == "last-value":
        return LastValueForecaster()
    if choice == "seasonal-naive":
        return SeasonalNaiveForecaster()
    try:
        from aihpa.forecast import load_default_forecaster

        return load_default_forecaster()
    except Exception as exc:  # the shipped model may be absent from a source tree
        if choice == "bilstm":
            raise UserError(f"the default Bi-LSTM model cannot be loaded: {exc}") from exc
        print(f"aihpa backtest: Bi-LSTM unavailable ({exc}); aihpa uses seasonal-naive", file=sys.stderr)
        return SeasonalNaiveForecaster()


def run_backtest_command(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from aihpa.backtest.run import check_policies, run_backtest
    from aihpa.traces import load_trace

    names = check_policies(str(args.policies).split(","))
    trace = load_trace(args.trace, column=args.column)
    if args.slice:
        start, stop = parse_slice(args.slice)
        if start >= len(trace):
            raise UserError(f"--slice {args.slice}: the trace has only {len(trace)} samples")
        trace = trace.slice(start, len(trace) if stop is None else stop)
    forecaster: Any
    if args.model is not None and "aihpa" in names:
        from aihpa.forecast.forecaster import BiLSTMForecaster

        forecaster = BiLSTMForecaster.from_checkpoint(args.model)
    else:
        forecaster = _forecaster(args.forecaster) if "aihpa" in names else None

    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeRemainingColumn(), transient=True, disable=not sys.stderr.isatty(),
    ) as bar:
        tasks: dict[str, Any] = {}

        def progress(name: str, done: int, total: int) -> None:
            if name not in tasks:
                tasks[name] = bar.add_task(name, total=total)
            if done % 50 == 0 or done == total:
                bar.update(tasks[name], completed=done)

        result = run_backtest(trace, policies=names, forecaster=forecaster, progress=progress)

    print(f"{result.trace}: {result.steps} steps, physical limit {result.physical_limit:.0f} pod-minutes")
    print(f"{'policy':10} {'cost at SLO':>12} {'actions at SLO':>15}")
    for name, res in result.policies.items():
        figure = "—" if res.cost_at_slo is None else f"{res.cost_at_slo:.3f}"
        actions = res.actions_at_slo
        print(f"{name:10} {figure:>12} {'—' if actions is None else f'{actions:.0f}':>15}")
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result.to_json(), indent=2) + "\n", encoding="utf-8")
    if args.plot:
        from aihpa.backtest.plot import plot_backtest

        plot_backtest(result, args.plot)
    return 0
