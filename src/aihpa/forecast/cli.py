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

from aihpa.cli_flags import add_trace_flag, renamed_flag
from aihpa.errors import UserError

__all__ = ["add_commands", "embedded_trace_path"]


def embedded_trace_path() -> Path:
    """The real trace that ships inside the package (Azure Public Dataset V2, CC-BY 4.0; see data/ATTRIBUTION.md)."""
    return Path(__file__).resolve().parent.parent / "data" / "azure2019_vm_total_cpu_5min.csv"


#: The share of each trace, from its start, that `aihpa train` fits on by default (the protocol's history part,
#: `aihpa.forecast.train.HISTORY_FRACTION`, which this module must not import at parse time: it loads JAX).
HISTORY_FRACTION = 0.2


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train the Bi-LSTM on one or more traces and write a versioned checkpoint",
        description="Train the Bi-LSTM on the history part (the first 20% by default) of each trace and write a "
        "checkpoint. The rest of each trace is left out so that `aihpa evaluate` and `aihpa backtest` can score the "
        "model on data it has not seen.",
    )
    p.add_argument("--trace", action="append", required=True, metavar="CSV", help="a trace file (repeatable)")
    p.add_argument(
        "--column", action="append", default=[], metavar="COLUMN",
        help="demand column, once per --trace in the same order (default: each file's first numeric column)",
    )
    renamed_flag(p, "--out-dir", "--out", dest="out", required=True, metavar="DIR",
                 help="models directory; the new version goes under it")
    p.add_argument(
        "--history-fraction", type=float, default=HISTORY_FRACTION, metavar="F",
        help="train on the first F of each trace; the rest is what `aihpa evaluate` and `aihpa backtest` score "
        "(1: the whole file, then score the model on another one)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of initialisation, sampling and augmentation")
    p.add_argument("--max-steps", type=int, default=None, help="optimizer steps (default: TrainConfig's, 3000)")
    p.add_argument("--window", type=int, default=None, help="LSTM window in steps (default: ModelConfig's, 32)")
    p.add_argument("--min-history", type=int, default=None, metavar="STEPS",
                   help="the fewest steps of history the model forecasts from, shorter windows taught by padding "
                   "(default: ModelConfig's, 8; 0: the whole window)")
    p.add_argument("--short-history", type=float, default=None, metavar="P",
                   help="share of training windows cut to a random length from --min-history up (default: "
                   "TrainConfig's, 0.2)")
    p.add_argument("--hidden", type=int, default=None, help="hidden units per direction (default: ModelConfig's)")
    p.add_argument("--layers", type=int, default=None, help="stacked bidirectional layers (default: ModelConfig's)")
    p.add_argument("--summary-window", type=int, default=None, metavar="STEPS",
                   help="recent points summarized for the head (mean, peak, spread; default: ModelConfig's, 0: none)")
    p.add_argument("--period-window", type=int, default=None,
                   help="search this many recent steps for a dominant short period and feed the values one period "
                   "ago as a second seasonal context (default 0: off)")
    p.add_argument("--learning-rate", type=float, default=None, help="peak learning rate (default: TrainConfig's)")
    p.add_argument("--quiet", action="store_true",
                   help="no progress (a live bar on a terminal, else a line per validation on stderr)")
    p.set_defaults(handler=_train)

    p = sub.add_parser("forecast", help="print the quantile forecast at one point of a trace",
                       description="Print the model's quantile forecast over its horizon from one sample of a trace, "
                       "beside what the trace holds there.")
    add_trace_flag(p, help="the CSV trace", positional_alias=True)
    p.add_argument("--column", default=None, help="demand column (default: the first numeric column)")
    p.add_argument("--model", default=None, metavar="DIR", help="checkpoint or models directory (default: shipped)")
    p.add_argument("--at", type=int, default=None, metavar="STEP", help="forecast from this sample (default: the end)")
    p.set_defaults(handler=_forecast)

    p = sub.add_parser(
        "evaluate",
        help="forecast quality on the last 80%% of a trace: Bi-LSTM vs seasonal naive vs last value",
        description="Score the model, seasonal-naive and last-value on forecasting the last 80% of a trace (every "
        "forecaster sees the true past), and say whether the model beats both. Warns when the scored rows are "
        "ones the model was trained on (from its checkpoint's record of its training data).",
    )
    add_trace_flag(p, help="the CSV trace", positional_alias=True)
    p.add_argument("--column", default=None, help="demand column (default: the first numeric column)")
    p.add_argument("--model", default=None, metavar="DIR", help="checkpoint or models directory (default: shipped)")
    p.add_argument("--steps-ahead", type=int, default=2, metavar="K", help="score the forecast K steps ahead")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the results as JSON")
    p.set_defaults(handler=_evaluate)


def _load(path: str, column: str | None, *, min_points: int = 2) -> Any:
    from aihpa.traces import load_trace

    return load_trace(path, column=column, min_points=min_points)


def _forecaster(model: str | None) -> Any:
    from aihpa.forecast.forecaster import BiLSTMForecaster, load_default_forecaster

    return load_default_forecaster() if model is None else BiLSTMForecaster.from_checkpoint(model)


def _file_sha256(path: str | Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _rows_needed(points: int, fraction: float) -> int:
    """The fewest rows a file needs so that its first `fraction` holds `points` rows."""
    import math

    rows = max(points, math.ceil(points / fraction))
    while math.floor(rows * fraction) < points:  # float rounding: at most a step or two
        rows += 1
    return rows


def _train(args: argparse.Namespace) -> int:
    import sys

    from aihpa.forecast.config import ModelConfig, TrainConfig
    from aihpa.forecast.train import (
        describe_points,
        history_part,
        min_training_points,
        series_from_trace,
        train_and_evaluate,
    )

    if args.column and len(args.column) != len(args.trace):
        raise UserError(f"{len(args.column)} --column for {len(args.trace)} --trace; give one per trace or none")
    fraction = args.history_fraction
    if not 0.0 < fraction <= 1.0:
        raise UserError("--history-fraction must be in (0, 1]")
    columns = args.column or [None] * len(args.trace)
    traces = [_load(path, col) for path, col in zip(args.trace, columns, strict=True)]
    parts = [history_part(t, fraction) for t in traces]
    overrides = {
        k: v
        for k, v in {
            "window": args.window, "min_history": args.min_history, "hidden": args.hidden, "layers": args.layers,
            "period_window": args.period_window,
            "summary_window": args.summary_window,
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
    if args.short_history is not None:
        if not 0.0 <= args.short_history <= 1.0:
            raise UserError("--short-history must be in [0, 1]")
        tkw["short_history"] = args.short_history
    train_cfg = TrainConfig(**tkw)

    # what is trained on, and why the rest is not: said before the minutes of training, in the file's own units
    need = min_training_points(model_cfg, train_cfg)
    short = []
    for t, part in zip(traces, parts, strict=True):
        name = Path(t.source).name
        whole = describe_points(len(t), t.step_s)
        if len(part) < need:
            short.append(
                f"{name} has {whole}; --history-fraction {fraction:g} trains on its first "
                f"{describe_points(len(part), t.step_s)}, and training needs at least "
                f"{describe_points(need, t.step_s)}"
            )
        elif fraction < 1.0:
            print(f"{name} [{t.column}]: training on rows 0-{len(part) - 1} of {whole}, the first "
                  f"{fraction:g} (--history-fraction): the rest is left for `aihpa evaluate` and `aihpa backtest` "
                  "to score on data the model has not seen")
        else:
            print(f"{name} [{t.column}]: training on all {whole} (--history-fraction 1): score the model on "
                  "another file, as its scores on this one would be on data it was trained on")
    if len(short) == len(traces):
        longest = max(traces, key=len)
        raise UserError(
            f"{'; '.join(short)}: give a file of at least "
            f"{describe_points(_rows_needed(need, fraction), longest.step_s)} at this fraction, or train on more "
            "of it with --history-fraction (1: all of it, then evaluate on another file)"
        )
    for line in short:
        print(f"aihpa train: skipping {line}", file=sys.stderr)

    provenance = {
        "command": "aihpa train "
        + " ".join(f"--trace {Path(p).name}" for p in args.trace)
        + "".join(f" --column {c}" for c in args.column)
        + f" --history-fraction {fraction} --seed {args.seed}"
        + (f" --max-steps {args.max_steps}" if args.max_steps is not None else "")
        + "".join(f" --{k.replace('_', '-')} {v}" for k, v in overrides.items()),
        # what `aihpa evaluate` reads to tell whether the rows it scores are ones the model was trained on
        "traces": [
            {"file": Path(t.source).name, "column": t.column, "points_used": len(p), "step_s": t.step_s,
             "rows": len(t), "history_fraction": fraction, "sha256": _file_sha256(t.source)}
            for t, p in zip(traces, parts, strict=True)
            if len(p) >= need
        ],
    }
    try:
        path = train_and_evaluate(
            [series_from_trace(p) for p in parts if len(p) >= need],
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
    print("next: `aihpa prior --model <this checkpoint> --out-dir <models dir> --trace ...` (the same traces) learns "
          "its calibration prior, which sizes a new workload's first hours; without one the model's top quantile does")
    return 0


def _forecast(args: argparse.Namespace) -> int:
    import numpy as np
    from rich.console import Console
    from rich.markup import escape
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
    table = Table(title=escape(f"{trace.name} [{trace.column}] from sample {at}, model {fc.version}"))
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
    import sys

    from aihpa.forecast.evaluate import evaluate, mean_pinball, training_overlap, verdict
    from aihpa.forecast.forecaster import DAY_OF_STEPS, LastValueForecaster, SeasonalNaiveForecaster

    fc = _forecaster(args.model)
    if not 1 <= args.steps_ahead <= fc.horizon:
        raise UserError(f"--steps-ahead must be in 1..{fc.horizon}")
    trace = _load(args.trace, args.column, min_points=fc.min_history + args.steps_ahead + 1)
    overlap = training_overlap(
        file=trace.source, column=trace.column, rows=len(trace), metadata=getattr(fc, "metadata", {}),
        steps_ahead=args.steps_ahead, sha256=_file_sha256(trace.source),
    )
    if overlap is not None:
        print(f"aihpa evaluate: warning: {overlap.message()}", file=sys.stderr)
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
    line = verdict(rows, model="bilstm")
    print(f"verdict: {line}" + (" (in sample: see the warning above)" if overlap is not None else ""))
    if args.json:
        doc = {
            "trace": Path(trace.source).name,
            "column": trace.column,
            "steps_ahead": args.steps_ahead,
            "scored_points": rows[0].points,
            "forecasters": {
                r.forecaster: {"version": r.version, "mae": r.mae, "mean_pinball": mean_pinball(r),
                               "pinball": {f"p{round(q * 100)}": v for q, v in r.pinball.items()}}
                for r in rows
            },
            "verdict": line,
            # scored rows the model was trained on (None: none, as the protocol intends)
            "overlap": None if overlap is None else {
                "trained_rows": overlap.trained_rows, "first_scored_row": overlap.first_scored,
                "scored_rows_trained_on": overlap.rows,
            },
        }
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


def _print_rows(trace: Any, rows: list[Any], steps_ahead: int) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title=escape(f"{Path(trace.source).name} [{trace.column}]") + f": {steps_ahead} steps ahead, last 80% "
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
