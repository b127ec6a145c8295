"""`aihpa train`, `aihpa forecast` and `aihpa evaluate`: the forecaster from the command line (`aihpa tune`, which
ranks models by backtest cost, is `aihpa.backtest.cli`'s).

Heavy imports (JAX) happen inside the handlers so `aihpa --help` stays fast. User mistakes raise `UserError`.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aihpa.errors import UserError

__all__ = ["add_commands", "embedded_trace_path"]


def embedded_trace_path() -> Path:
    """The real trace that ships inside the package (Azure Public Dataset V2, CC-BY 4.0; see data/ATTRIBUTION.md)."""
    return Path(__file__).resolve().parent.parent / "data" / "azure2019_vm_total_cpu_5min.csv"


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train the Bi-LSTM on one or more traces and write a versioned checkpoint",
        description="Train the Bi-LSTM on the history part (first 20%%) of each trace and write a checkpoint.",
    )
    p.add_argument("--trace", action="append", required=True, metavar="CSV", help="a trace file (repeatable)")
    p.add_argument(
        "--column", action="append", default=[], metavar="NAME",
        help="demand column, once per --trace in the same order (default: each file's first numeric column)",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="models directory; the new version goes under it")
    p.add_argument(
        "--history-fraction", type=float, default=0.2, metavar="F",
        help="train on the first F of each trace (default 0.2: the backtest scores the rest)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default from TrainConfig)")
    p.add_argument("--window", type=int, default=None, help="LSTM window in steps")
    p.add_argument("--hidden", type=int, default=None, help="hidden units per direction")
    p.add_argument("--layers", type=int, default=None, help="stacked bidirectional layers")
    p.add_argument("--period-window", type=int, default=None,
                   help="search this many recent steps for a dominant short period and feed the values one period "
                   "ago as a second seasonal context (0: off, the default)")
    p.add_argument("--learning-rate", type=float, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(handler=_train)

    p = sub.add_parser("forecast", help="print the quantile forecast at one point of a trace")
    p.add_argument("trace", metavar="TRACE", help="CSV trace")
    p.add_argument("--column", default=None, help="demand column (default: the first numeric column)")
    p.add_argument("--model", default=None, metavar="DIR", help="checkpoint or models directory (default: shipped)")
    p.add_argument("--at", type=int, default=None, metavar="STEP", help="forecast from this sample (default: the end)")
    p.set_defaults(handler=_forecast)

    p = sub.add_parser(
        "evaluate",
        help="forecast quality on the last 80%% of a trace: Bi-LSTM vs seasonal naive vs last value",
    )
    p.add_argument("trace", metavar="TRACE", help="CSV trace")
    p.add_argument("--column", default=None, help="demand column (default: the first numeric column)")
    p.add_argument("--model", default=None, metavar="DIR", help="checkpoint or models directory (default: shipped)")
    p.add_argument("--steps-ahead", type=int, default=2, help="score the forecast this many steps ahead (default 2)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(handler=_evaluate)


def _load(path: str, column: str | None, *, min_points: int = 2) -> Any:
    from aihpa.traces import load_trace

    return load_trace(path, column=column, min_points=min_points)


def _forecaster(model: str | None) -> Any:
    from aihpa.forecast.forecaster import BiLSTMForecaster, load_default_forecaster

    return load_default_forecaster() if model is None else BiLSTMForecaster.from_checkpoint(model)


def _train(args: argparse.Namespace) -> int:
    from aihpa.forecast.config import ModelConfig, TrainConfig
    from aihpa.forecast.train import history_part, series_from_trace, train_and_evaluate

    if args.column and len(args.column) != len(args.trace):
        raise UserError(f"{len(args.column)} --column for {len(args.trace)} --trace; give one per trace or none")
    if not 0.0 < args.history_fraction <= 1.0:
        raise UserError("--history-fraction must be in (0, 1]")
    columns = args.column or [None] * len(args.trace)
    traces = [_load(path, col) for path, col in zip(args.trace, columns, strict=True)]
    parts = [history_part(t, args.history_fraction) for t in traces]
    overrides = {
        k: v
        for k, v in {
            "window": args.window, "hidden": args.hidden, "layers": args.layers, "period_window": args.period_window,
        }.items()
        if v is not None
    }
    try:
        model_cfg = ModelConfig(**overrides)
        model_cfg.validate()
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    tkw: dict[str, Any] = {"seed": args.seed, "progress": not args.quiet}
    if args.max_steps is not None:
        tkw["max_steps"] = args.max_steps
    if args.learning_rate is not None:
        tkw["learning_rate"] = args.learning_rate
    train_cfg = TrainConfig(**tkw)
    provenance = {
        "command": "aihpa train "
        + " ".join(f"--trace {Path(p).name}" for p in args.trace)
        + "".join(f" --column {c}" for c in args.column)
        + f" --history-fraction {args.history_fraction} --seed {args.seed}"
        + (f" --max-steps {args.max_steps}" if args.max_steps is not None else "")
        + "".join(f" --{k.replace('_', '-')} {v}" for k, v in overrides.items()),
        "traces": [
            {"file": Path(t.source).name, "column": t.column, "points_used": len(p), "step_s": t.step_s}
            for t, p in zip(traces, parts, strict=True)
        ],
    }
    try:
        path = train_and_evaluate(
            [series_from_trace(p) for p in parts],
            model_cfg=model_cfg,
            train_cfg=train_cfg,
            workdir=args.out,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            provenance=provenance,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    meta = json.loads((path / "metadata.json").read_text())
    print(f"wrote {path} (version {meta['version']}, validation pinball {meta['metrics']['val_pinball']:.4f})")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    fc = _forecaster(args.model)
    trace = _load(args.trace, args.column)
    n = len(trace)
    at = n - 1 if args.at is None else args.at
    if not 0 <= at < n:
        raise UserError(f"--at {at} is outside the trace (0..{n - 1})")
    if at + 1 < fc.min_history:
        raise UserError(f"--at {at}: the model needs at least {fc.min_history} points of history")
    times = trace.seconds()
    out = fc.predict(
        [trace.values[max(0, at + 1 - fc.context) : at + 1]],
        end_times=None if times is None else [float(times[at])],
        step_s=trace.step_s,
    )[0]
    table = Table(title=f"{trace.name} [{trace.column}] from sample {at}, model {fc.version}")
    table.add_column("step", justify="right")
    for q in fc.quantiles:
        table.add_column(f"p{round(q * 100)}", justify="right")
    table.add_column("actual", justify="right")
    for h in range(fc.horizon):
        actual = trace.values[at + 1 + h] if at + 1 + h < n else np.nan
        table.add_row(str(h + 1), *(f"{v:.6g}" for v in out[h]), "" if np.isnan(actual) else f"{actual:.6g}")
    Console().print(table)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from aihpa.forecast.evaluate import evaluate
    from aihpa.forecast.forecaster import DAY_OF_STEPS, LastValueForecaster, SeasonalNaiveForecaster

    fc = _forecaster(args.model)
    if not 1 <= args.steps_ahead <= fc.horizon:
        raise UserError(f"--steps-ahead must be in 1..{fc.horizon}")
    trace = _load(args.trace, args.column, min_points=fc.min_history + args.steps_ahead + 1)
    period = trace.steps_per_day or DAY_OF_STEPS
    rows = evaluate(
        trace,
        {
            "bilstm": fc,
            "seasonal-naive": SeasonalNaiveForecaster(period=max(period, fc.horizon), horizon=fc.horizon),
            "last-value": LastValueForecaster(horizon=fc.horizon),
        },
        steps_ahead=args.steps_ahead,
    )
    _print_rows(trace, rows, args.steps_ahead)
    if args.json:
        doc = {
            "trace": Path(trace.source).name,
            "column": trace.column,
            "steps_ahead": args.steps_ahead,
            "scored_points": rows[0].points,
            "forecasters": {
                r.forecaster: {"version": r.version, "mae": r.mae, "pinball": {f"p{round(q * 100)}": v for q, v in
                                                                             r.pinball.items()}}
                for r in rows
            },
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _print_rows(trace: Any, rows: list[Any], steps_ahead: int) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{Path(trace.source).name} [{trace.column}]: {steps_ahead} steps ahead, last 80% "
        f"({rows[0].points} points); losses relative to mean demand"
    )
    table.add_column("forecaster")
    table.add_column("MAE", justify="right")
    quantiles = list(rows[0].pinball)
    for q in quantiles:
        table.add_column(f"pinball p{round(q * 100)}", justify="right")
    best = {q: min(r.pinball[q] for r in rows) for q in quantiles}
    for r in rows:
        cells = [f"{r.mae:.4f}"] + [
            f"[bold green]{r.pinball[q]:.4f}[/]" if r.pinball[q] == best[q] else f"{r.pinball[q]:.4f}"
            for q in quantiles
        ]
        table.add_row(r.forecaster, *cells)
    Console().print(table)
