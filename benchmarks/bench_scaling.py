"""Backtest every policy on the five shared traces; print cost at SLO and each policy's share of the HPA->oracle gap.

    .venv/bin/python benchmarks/bench_scaling.py [--traces DIR] [--json FILE] [--forecaster auto|bilstm|...]

Traces run in parallel worker processes (one per core by default). aihpa's forecasts are batched over its sweep
settings: one forecaster call per step, never one per setting.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TRACES = ROOT.parent / "shared" / "data" / "traces"

# The demand column of each shared trace (its PROVENANCE.md), in the order of the table.
TRACES = {
    "twitter_stream_2021_1min.csv": "events",
    "bitbrains_rnd_total_cpu_5min.csv": "cpu_usage_mhz_total",
    "wikipedia_pagecounts_2008_2009_1h.csv": "pageviews",
    "azure2019_vm_total_cpu_5min.csv": "cpu_usage",
    "google2019_cluster_cpu_5min.csv": "avg_cpu",
}
POLICIES = ("hpa", "phpa-lr", "phpa-hw", "oracle", "aihpa")


def _forecaster(choice: str) -> Any:
    from aihpa.backtest.cli import _forecaster as pick

    return pick(choice)


def run_one(path: str, column: str, forecaster_choice: str) -> dict[str, Any]:
    from aihpa.backtest import run_backtest
    from aihpa.traces import load_trace

    started = time.perf_counter()
    trace = load_trace(path, column=column)
    forecaster = _forecaster(forecaster_choice)
    result = run_backtest(trace, policies=POLICIES, forecaster=forecaster)
    out = result.to_json()
    out["seconds"] = time.perf_counter() - started
    out["forecaster"] = forecaster.version
    return out


def gap_closed(cost: float | None, hpa: float | None, oracle: float | None) -> float | None:
    if cost is None or hpa is None or oracle is None or hpa == oracle:
        return None
    return (hpa - cost) / (hpa - oracle)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--forecaster", default="auto", choices=("auto", "bilstm", "seasonal-naive", "last-value"))
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if not args.traces.is_dir():
        print(f"no traces directory at {args.traces}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    # spawn: JAX must not be forked after it has started threads
    with ProcessPoolExecutor(max_workers=args.workers, mp_context=mp.get_context("spawn")) as pool:
        futures = {
            name: pool.submit(run_one, str(args.traces / name), column, args.forecaster)
            for name, column in TRACES.items()
        }
        results = {name: f.result() for name, f in futures.items()}

    def fmt(x: float | None, spec: str = ".3f") -> str:
        return "—" if x is None else format(x, spec)

    header = f"{'trace':40} " + " ".join(f"{p:>9}" for p in POLICIES) + "   gap closed: " + " ".join(
        f"{p:>8}" for p in POLICIES if p not in ("hpa", "oracle")
    )
    print("cost at SLO (pod-minutes at 1% saturated steps / physical limit; lower is better)")
    print(header)
    for name, res in results.items():
        costs = {p: res["policies"][p]["cost_at_slo"] for p in POLICIES}
        gaps = [gap_closed(costs[p], costs["hpa"], costs["oracle"]) for p in POLICIES if p not in ("hpa", "oracle")]
        print(
            f"{name:40} " + " ".join(f"{fmt(costs[p]):>9}" for p in POLICIES) + "                "
            + " ".join(f"{fmt(g, '.0%'):>8}" for g in gaps)
        )
    forecasters = sorted({r["forecaster"] for r in results.values()})
    slowest = max(r["seconds"] for r in results.values())
    print(f"aihpa forecaster: {', '.join(forecasters)}; wall time {time.perf_counter() - started:.0f} s "
          f"(slowest trace {slowest:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
