"""Cold start: what aihpa costs in a new workload's first hours, against the HPA's frontier, out of sample.

For each shared trace, `--windows` stretches of `--minutes` steps are taken from its scored part (after the first 20%,
which the shipped model was trained on) and each is replayed from a cold start (one pod, no history, fresh
calibration) under the backtest protocol: the HPA at targets from 30% to 95%, and aihpa at its default risk in a few
variants. Each variant's pod-minutes and saturated minutes are summed over the windows of a trace, and compared with
the HPA's frontier (its sweep of targets, interpolated) at the same saturated share.

The calibration prior is learned leave-one-trace-out: a trace's windows run with the prior learned on the *other*
traces (`aihpa.backtest.prior`), never on its own scores. The variants: the shipped defaults (band prior and warm-up
bound as shipped), the bound at another margin, no bound, no prior (the forecaster's top quantile stands in), and
neither.

    .venv/bin/python benchmarks/bench_cold_start.py [--minutes 180] [--windows 6] [--json FILE] [--only NAME,...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_scaling import DEFAULT_TRACES, TRACES  # noqa: E402

HPA_TARGETS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def variants(base: Any) -> dict[str, Any]:
    return {
        "shipped": base,
        "margin 0": replace(base, warmup_margin=0.0),
        "margin 0.1": replace(base, warmup_margin=0.1),
        "margin 0.2": replace(base, warmup_margin=0.2),
        "margin 0.5": replace(base, warmup_margin=0.5),
        "no bound": replace(base, warmup_margin=None),
        "no prior": replace(base, band_prior=()),
        "neither": replace(base, band_prior=(), warmup_margin=None),
    }


def frontier_cost(points: list[tuple[float, float]], share: float) -> float | None:
    """The HPA's pod-minutes at `share` saturated minutes: the cheapest target meeting it, interpolated towards the
    next cheaper one (as the backtest's cost at SLO); None when no target meets it."""
    meeting = [p for p in points if p[0] <= share + 1e-12]
    if not meeting:
        return None
    best = min(meeting, key=lambda p: (p[1], p[0]))
    cheaper = [p for p in points if p[1] < best[1]]
    if not cheaper:
        return best[1]
    nxt = max(cheaper, key=lambda p: (p[1], -p[0]))
    frac = (share - best[0]) / (nxt[0] - best[0])
    return best[1] + frac * (nxt[1] - best[1])


def run_trace(name: str, path: Path, column: str, *, prior: dict[str, Any], minutes: int, windows: int
              ) -> dict[str, Any]:
    from aihpa.backtest.policies import AihpaBatch, HpaBatch, default_backtest_policy
    from aihpa.backtest.protocol import demand_from_values, replay, scored_start
    from aihpa.forecast import load_default_forecaster
    from aihpa.scaling.prior import BAND_PRIOR
    from aihpa.traces import load_trace

    forecaster = load_default_forecaster()
    trace = load_trace(path, column=column)
    demand = demand_from_values(trace.values)
    times = trace.seconds()
    base = replace(default_backtest_policy(forecaster), band_prior=tuple(prior.get(BAND_PRIOR, ())))
    policies = variants(base)
    n = demand.shape[0]
    starts = np.linspace(scored_start(n), n - minutes, windows).astype(int)
    hpa_cost = np.zeros(len(HPA_TARGETS))
    hpa_sat = np.zeros(len(HPA_TARGETS))
    cost = {k: 0.0 for k in policies}
    sat = {k: 0.0 for k in policies}
    changes = {k: 0 for k in policies}
    for s in starts:
        d = demand[s : s + minutes]
        t = None if times is None else times[s : s + minutes]
        hpa = replay(d, HpaBatch(HPA_TARGETS), rows=len(HPA_TARGETS), times=t)
        hpa_cost += hpa.replicas.sum(axis=1)
        hpa_sat += (d[None, :] > hpa.ready).sum(axis=1)
        batch = AihpaBatch([base.risk] * len(policies), forecaster, policy=base, times=t, step_s=trace.step_s)
        batch.policies = list(policies.values())
        out = replay(d, batch, rows=len(policies), times=t)
        for i, key in enumerate(policies):
            cost[key] += float(out.replicas[i].sum())
            sat[key] += float((d > out.ready[i]).sum())
            changes[key] += int(np.count_nonzero(np.diff(out.replicas[i])))
    total = float(minutes * len(starts))
    points = [(float(hpa_sat[j]) / total, float(hpa_cost[j])) for j in range(len(HPA_TARGETS))]
    rows = {}
    for key in policies:
        share = sat[key] / total
        front = frontier_cost(points, share)
        rows[key] = {"pod_minutes": cost[key], "saturated_share": share, "frontier_pod_minutes": front,
                     "ratio": None if front is None else cost[key] / front, "scale_changes": changes[key]}
    return {"trace": name, "windows": len(starts), "minutes": minutes,
            "hpa": [{"target": u, "saturated_share": p[0], "pod_minutes": p[1]} for u, p in zip(HPA_TARGETS, points,
                                                                                                strict=True)],
            "aihpa": rows}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--traces", type=Path, default=DEFAULT_TRACES)
    parser.add_argument("--minutes", type=int, default=180)
    parser.add_argument("--windows", type=int, default=6)
    parser.add_argument("--only", default="")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    from aihpa.backtest.prior import pool_scores, trace_scores
    from aihpa.forecast import load_default_forecaster
    from aihpa.traces import load_trace

    started = time.perf_counter()
    forecaster = load_default_forecaster()
    names = [n for n in TRACES if not args.only or n in args.only.split(",")]
    # every trace's own scores once (on its training part, as `aihpa prior` learns them); each trace is then run
    # with the pool of the others'
    scores = {n: trace_scores(load_trace(args.traces / TRACES[n][0], column=TRACES[n][1]), forecaster)
              for n in TRACES}
    results = []
    for name in names:
        prior = pool_scores([s for other, s in scores.items() if other != name])
        results.append(run_trace(name, args.traces / TRACES[name][0], TRACES[name][1], prior=prior,
                                 minutes=args.minutes, windows=args.windows))
        print(f"{name}: done ({time.perf_counter() - started:.0f} s)", file=sys.stderr)

    keys = list(results[0]["aihpa"])
    print(f"\nCold start, first {args.minutes} minutes of {args.windows} windows per trace (scored part, model unseen; "
          "prior leave-one-trace-out): aihpa pod-minutes / the HPA frontier's at aihpa's saturated share "
          "(saturated share in brackets)\n")
    print("| trace | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for r in results:
        cells = []
        for k in keys:
            row = r["aihpa"][k]
            ratio = "below frontier" if row["ratio"] is None else f"{row['ratio']:.3f}"
            cells.append(f"{ratio} ({row['saturated_share']:.1%})")
        print(f"| {r['trace']} | " + " | ".join(cells) + " |")
    for k in keys:
        ratios = [r["aihpa"][k]["ratio"] for r in results if r["aihpa"][k]["ratio"] is not None]
        worst = max(ratios) if ratios else float("nan")
        print(f"{k}: worst ratio {worst:.3f}, mean {np.mean(ratios) if ratios else float('nan'):.3f} over "
              f"{len(ratios)} traces with a frontier point")
    print(f"wall time {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"minutes": args.minutes, "windows": args.windows, "results": results},
                                        indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
