"""`hpa` and `oracle` figures on a slice of a shared trace, against a plain re-implementation of DESIGN section 6.

The re-implementation below is written from the design text and the Kubernetes docs in straight loops, sharing no
code with aihpa.backtest or aihpa.scaling, so the two agree only if both follow the protocol.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from aihpa.backtest import run_backtest
from aihpa.traces import load_trace
from tests.conftest import SHARED_TRACE_COLUMNS

SLICES = [
    ("bitbrains_rnd_total_cpu_5min.csv", 0, 400),
    ("twitter_stream_2021_1min.csv", 2000, 2400),
    ("wikipedia_pagecounts_2008_2009_1h.csv", 100, 400),
]
KNOBS = (0.3, 0.5, 0.7, 0.9)
ORACLE_KNOBS = (0.8, 1.0, 1.002, 1.02)


def plain_demand(values: list[float]) -> list[float]:
    ordered = sorted(values)
    pos = 0.99 * (len(ordered) - 1)
    lo = math.floor(pos)
    p99 = ordered[lo] + (ordered[min(lo + 1, len(ordered) - 1)] - ordered[lo]) * (pos - lo)
    return [max(0.0, v / p99 * 20.0) if math.isfinite(v) else 0.0 for v in values]


def plain_hpa(d: list[float], u: float) -> tuple[list[int], list[int]]:
    """Kubernetes HPA with default behavior at 60 s steps: asked-for and ready pods per step."""
    n = len(d)
    asked, ready, seen = [1] * n, [1] * n, [min(d[0], 1.0)] * n
    raw: list[int] = []
    target_pct = round(u * 100)  # the HPA's target is a whole percent

    def percent(used: float, pods: int) -> int:  # whole percent of 1 core per pod, truncated, as upstream
        return math.floor(used * 100 / pods + 1e-9)

    for t in range(1, n):
        cur, served, usage = asked[t - 1], ready[t - 1], seen[t - 1]
        missing = cur - served  # pods ready now that have not reported yet
        ratio = percent(usage, served) / target_pct
        if missing == 0:
            rec = cur if 0.9 <= ratio <= 1.1 else math.ceil(ratio * served)  # the tolerance band is inclusive
        else:
            if ratio < 1:  # a missing pod counts as fully busy when scaling down
                new, pods = percent(usage + missing * max(1.0, u), cur) / target_pct, cur
            elif ratio > 1:  # and as idle when scaling up
                new, pods = percent(usage, cur) / target_pct, cur
            else:
                new, pods = ratio, served
            if 0.9 <= new <= 1.1 or (ratio < 1 < new) or (ratio > 1 > new):
                rec = cur
            else:
                rec = math.ceil(new * pods)
                if (new < 1 and rec > cur) or (new > 1 and rec < cur):
                    rec = cur
        raw.append(rec)
        # scale-down to the highest recommendation of the last 5 steps (this one included)
        target = min(max(cur, rec), max(raw[-5:]))
        if target > cur:  # at most max(+100%, +4 pods) per 15 s
            target = min(target, max(2 * cur, cur + 4))
        target = max(1, min(100, target))
        asked[t] = target
        ready[t] = min(cur, target)
        seen[t] = min(d[t], ready[t])
    return asked, ready


def plain_oracle(d: list[float], u: float) -> tuple[list[int], list[int]]:
    n = len(d)
    need = [math.ceil(x / u) for x in d]
    asked = [1] + [max(1, min(100, max(need[t], need[min(t + 1, n - 1)]))) for t in range(1, n)]
    ready = [1] + [min(asked[t - 1], asked[t]) for t in range(1, n)]
    return asked, ready


def plain_figures(d: list[float], asked: list[int], ready: list[int]) -> dict[str, float]:
    n = len(d)
    s0 = n // 5
    steps = range(s0, n)
    return {
        "saturated_share": sum(d[t] > ready[t] for t in steps) / len(steps),
        "unserved_share": sum(max(0.0, d[t] - ready[t]) for t in steps) / sum(d[t] for t in steps),
        "pod_minutes": float(sum(asked[t] for t in steps)),
        "scaling_actions": sum(asked[t] != asked[t - 1] for t in steps),
    }


def _trace_slice(shared: Path, name: str, start: int, stop: int) -> tuple[object, list[float]]:
    trace = load_trace(shared / name, column=SHARED_TRACE_COLUMNS[name]).slice(start, stop)
    return trace, plain_demand([float(v) for v in trace.values])


@pytest.mark.parametrize(("name", "start", "stop"), SLICES, ids=[s[0].split("_")[0] for s in SLICES])
def test_hpa_and_oracle_figures_match_a_plain_reimplementation(
    shared_traces: Path, name: str, start: int, stop: int
) -> None:
    trace, d = _trace_slice(shared_traces, name, start, stop)
    result = run_backtest(
        trace,  # type: ignore[arg-type]
        policies=["hpa", "oracle"],
        knobs={"hpa": KNOBS, "oracle": ORACLE_KNOBS},
    )
    for policy, knobs, plain in (("hpa", KNOBS, plain_hpa), ("oracle", ORACLE_KNOBS, plain_oracle)):
        for point, u in zip(result.policies[policy].sweep, knobs, strict=True):
            expected = plain_figures(d, *plain(d, u))
            assert point.knob == u
            assert point.saturated_share == pytest.approx(expected["saturated_share"], abs=1e-12), (policy, u)
            assert point.unserved_share == pytest.approx(expected["unserved_share"], rel=1e-9), (policy, u)
            assert point.pod_minutes == expected["pod_minutes"], (policy, u)
            assert point.scaling_actions == expected["scaling_actions"], (policy, u)
    limit = sum(max(1, math.ceil(x)) for x in d[len(d) // 5 :])
    assert result.physical_limit == limit


def test_cost_at_slo_of_hpa_follows_its_sweep(shared_traces: Path) -> None:
    trace, d = _trace_slice(shared_traces, *SLICES[0])
    knobs = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
    result = run_backtest(trace, policies=["hpa"], knobs={"hpa": knobs})  # type: ignore[arg-type]
    figures = [plain_figures(d, *plain_hpa(d, u)) for u in knobs]
    meets = [f for f in figures if f["saturated_share"] <= 0.01]
    best = min(meets, key=lambda f: f["pod_minutes"])
    cheaper = [f for f in figures if f["pod_minutes"] < best["pod_minutes"]]
    limit = sum(max(1, math.ceil(x)) for x in d[len(d) // 5 :])
    if cheaper:
        nxt = max(cheaper, key=lambda f: f["pod_minutes"])
        w = (0.01 - best["saturated_share"]) / (nxt["saturated_share"] - best["saturated_share"])
        expected = (best["pod_minutes"] + w * (nxt["pod_minutes"] - best["pod_minutes"])) / limit
    else:
        expected = best["pod_minutes"] / limit
    assert result.policies["hpa"].cost_at_slo == pytest.approx(expected)


def test_hpa_and_oracle_figures_are_deterministic(shared_traces: Path) -> None:
    trace, _ = _trace_slice(shared_traces, *SLICES[1])
    first = run_backtest(trace, policies=["hpa", "oracle"]).to_json()  # type: ignore[arg-type]
    second = run_backtest(trace, policies=["hpa", "oracle"]).to_json()  # type: ignore[arg-type]
    assert first == second
    assert first["policies"]["hpa"]["cost_at_slo"] is not None
    assert np.isfinite(first["policies"]["oracle"]["cost_at_slo"])
