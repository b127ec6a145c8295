"""`aihpa backtest`: replay a trace under HPA, PHPA, the oracle and aihpa, and report cost at SLO; `aihpa tune`:
search the Bi-LSTM's hyper-parameters, ranking the finalists by that cost.

Heavy imports (numpy, JAX, matplotlib) happen inside the handler so `aihpa --help` stays fast. User mistakes (a
missing file or column, a bad slice, an unknown policy, a trace too short or all zeros) raise `UserError`.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aihpa.cli_flags import add_trace_flag, renamed_flag
from aihpa.errors import UserError
from aihpa.step import DEFAULT_STEP_S

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
            f"Replay a workload trace one sample per {DEFAULT_STEP_S:g} s step under each policy, sweep its risk "
            "knob, and report cost at 1% saturated steps relative to perfect foresight."
        ),
    )
    add_trace_flag(p, help="the CSV trace", positional_alias=True)
    p.add_argument("--column", metavar="COLUMN",
                   help="demand column: CPU cores, requests/s, events, any positive series (default: the first "
                   "numeric column)")
    p.add_argument(
        "--policies", default="hpa,phpa-lr,phpa-hw,oracle,aihpa", metavar="LIST",
        help="comma-separated policies; also hpa+aihpa (the HPA with aihpa setting its floor, as "
        "aihpa/with-hpa=floor runs), swept over the HPA's target",
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

    p = sub.add_parser(
        "tune",
        help="search hyper-parameters by successive halving and write the results and the best checkpoint",
        description="Successive halving over window, hidden size, layers, learning rate, horizon weighting and "
        "quantiles, scored by validation pinball loss on the history part (first 20%) of each trace.",
    )
    p.add_argument("--trace", action="append", required=True, metavar="CSV", help="a trace file (repeatable)")
    p.add_argument("--column", action="append", default=[], metavar="COLUMN", help="demand column, once per --trace")
    renamed_flag(p, "--out-dir", "--out", dest="out", required=True, metavar="DIR",
                 help="results.json, results.md and the best checkpoint")
    p.add_argument("--trials", type=int, default=9, metavar="N", help="configurations in the first rung")
    p.add_argument("--min-steps", type=int, default=100, metavar="N", help="optimizer steps in the first rung")
    p.add_argument("--rungs", type=int, default=3, metavar="N", help="rungs; each trains the best third 3x longer")
    p.add_argument("--budget-minutes", type=float, default=30.0, metavar="MINUTES",
                   help="start no training after this")
    p.add_argument("--history-fraction", type=float, default=0.2, metavar="F",
                   help="tune on the first F of each trace (the protocol's history part; the backtest scores the "
                   "rest)")
    p.add_argument("--holdback-fraction", type=float, default=0.25, metavar="F",
                   help="hold back the last F of each history part from training; the finalists are ranked by "
                   "backtest cost at SLO on it (0: rank by validation pinball only)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and of each training")
    p.set_defaults(handler=_tune)

    p = sub.add_parser(
        "prior",
        help="learn a model's calibration prior on its training traces and write it as a new checkpoint",
        description="Replay the default policy on the training part (the first 20%) of each trace with the model, "
        "keep each scoring's calibration scores, and write the model again with them as its calibration prior: a "
        "new workload is then calibrated from its first forecast instead of after about a hundred outcomes.",
    )
    p.add_argument("--trace", action="append", required=True, metavar="CSV", help="a trace file (repeatable)")
    p.add_argument("--column", action="append", default=[], metavar="COLUMN", help="demand column, once per --trace")
    p.add_argument("--model", required=True, metavar="DIR", help="the checkpoint or models directory to read")
    p.add_argument("--out-dir", required=True, metavar="DIR",
                   help="models directory the model with its prior goes under (not the one it is read from)")
    p.add_argument("--history-fraction", type=float, default=0.2, metavar="F",
                   help="replay the first F of each trace (the part the model was trained on)")
    p.set_defaults(handler=_prior)


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
    needs_model = "aihpa" in names or "hpa+aihpa" in names
    if args.model is not None and needs_model:
        from aihpa.forecast.forecaster import BiLSTMForecaster

        forecaster = BiLSTMForecaster.from_checkpoint(args.model)
    else:
        forecaster = _forecaster(args.forecaster) if needs_model else None

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


def _tune(args: argparse.Namespace) -> int:
    import time

    from rich.console import Console

    from aihpa.backtest.protocol import MIN_STEPS
    from aihpa.backtest.tune import successive_halving
    from aihpa.forecast.checkpoint import save_checkpoint
    from aihpa.forecast.train import history_part, series_from_trace
    from aihpa.traces import load_trace

    if args.column and len(args.column) != len(args.trace):
        raise UserError(f"{len(args.column)} --column for {len(args.trace)} --trace; give one per trace or none")
    if args.trials < 1 or args.min_steps < 1 or args.rungs < 1 or args.budget_minutes <= 0:
        raise UserError("--trials, --min-steps, --rungs and --budget-minutes must be positive")
    if not 0.0 <= args.holdback_fraction < 1.0:
        raise UserError("--holdback-fraction must be in [0, 1)")
    columns = args.column or [None] * len(args.trace)
    traces = [load_trace(path, column=col) for path, col in zip(args.trace, columns, strict=True)]
    parts = [history_part(t, args.history_fraction) for t in traces]
    cut = [len(p) - int(len(p) * args.holdback_fraction) for p in parts]
    series = [series_from_trace(p.slice(0, c)) for p, c in zip(parts, cut, strict=True)]
    holdback = [p.slice(c, len(p)) for p, c in zip(parts, cut, strict=True) if len(p) - c >= MIN_STEPS]
    console = Console()
    started = time.monotonic()

    def report(trial: Any, rung: int) -> None:
        params = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        console.print(f"rung {rung} trial {trial.id:>2} steps {trial.steps[-1]:>5}  val pinball {trial.score:.5f}"
                      f"  [{params}]  {time.monotonic() - started:6.0f}s")

    try:
        result = successive_halving(
            series, trials=args.trials, min_steps=args.min_steps, rungs=args.rungs, seed=args.seed,
            elapsed=lambda: time.monotonic() - started, budget_s=args.budget_minutes * 60.0, on_trial=report,
            holdback=holdback,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    best = result.best
    assert best.result is not None
    ckpt = save_checkpoint(
        out / "models",
        model=best.result.model, model_cfg=best.result.model_cfg, train_cfg=best.result.train_cfg,
        metrics=best.result.metrics, data=best.result.data, digest=best.result.digest,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        step_s=best.result.step_s,
        provenance={"command": "aihpa tune " + " ".join(f"--trace {Path(p).name}" for p in args.trace)
                    + f" --trials {args.trials} --min-steps {args.min_steps} --rungs {args.rungs} --seed {args.seed}",
                    "trial": best.id},
    )
    doc = {"seed": args.seed, "rungs": result.rungs, "stopped_early": result.stopped_early, "best_trial": best.id,
           "best_checkpoint": str(ckpt), "trials": result.table()}
    (out / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (out / "results.md").write_text(result.markdown())
    console.print(result.markdown())
    cost = "" if best.cost_at_slo is None else f", held-back cost at SLO {best.cost_at_slo:.3f}"
    console.print(f"best: trial {best.id} (val pinball {best.score:.5f}{cost}) -> {ckpt}"
                  + ("; the time budget ended the search early" if result.stopped_early else ""))
    return 0


def _prior(args: argparse.Namespace) -> int:
    from aihpa.backtest.prior import learn_prior
    from aihpa.forecast.checkpoint import load_checkpoint, resolve, save_checkpoint
    from aihpa.forecast.config import TrainConfig
    from aihpa.forecast.forecaster import BiLSTMForecaster
    from aihpa.scaling.prior import PRIOR_KEY
    from aihpa.traces import load_trace

    if args.column and len(args.column) != len(args.trace):
        raise UserError(f"{len(args.column)} --column for {len(args.trace)} --trace; give one per trace or none")
    if not 0.0 < args.history_fraction <= 1.0:
        raise UserError("--history-fraction must be in (0, 1]")
    try:
        source = resolve(args.model)
        ckpt = load_checkpoint(source)
    except Exception as exc:
        raise UserError(f"--model {args.model}: {exc}") from exc
    out = Path(args.out_dir)
    if (out / ckpt.version).resolve() == source.resolve():
        raise UserError("--out-dir must not be the models directory the model is read from")
    columns = args.column or [None] * len(args.trace)
    traces = [load_trace(path, column=col) for path, col in zip(args.trace, columns, strict=True)]
    forecaster = BiLSTMForecaster(ckpt.model, version=ckpt.version, metadata=ckpt.metadata)
    prior = learn_prior(traces, forecaster, fraction=args.history_fraction)
    meta = ckpt.metadata
    train_cfg = meta.get("train_config")
    written = save_checkpoint(
        out,
        model=ckpt.model,
        model_cfg=ckpt.model_cfg,
        train_cfg=TrainConfig.from_dict(train_cfg) if isinstance(train_cfg, dict) else None,
        metrics=dict(meta.get("metrics") or {}),
        data=list(meta.get("data") or []),
        digest=str(meta.get("data_digest", "")),
        created=str(meta.get("created", datetime.now(UTC).isoformat(timespec="seconds"))),
        provenance={**dict(meta.get("provenance") or {}), "prior_from": ckpt.version},
        step_s=ckpt.step_s,
        extra={PRIOR_KEY: prior},
    )
    for name, scores in prior["scorings"].items():
        median, top = scores[len(scores) // 2], scores[-1]
        print(f"{name}: {len(scores)} prior scores, median {median:.3f}, top {top:.3f}")
    print(f"wrote {written} (prior from {len(prior['traces'])} trace(s))")
    return 0

