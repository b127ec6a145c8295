"""The demo's figures without a cluster: summaries, the JSON report, the options and the default trace."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

import aihpa.demo as demo
from aihpa.cli import main
from aihpa.demo import (
    AIHPA,
    DemoOptions,
    DemoRecord,
    Sample,
    default_trace,
    demo_deployments,
    frontier_comparison,
    report_json,
    write_report,
)
from aihpa.traces import load_trace

NAMES = ["web-aihpa", "web-hpa", "web-hpa-50", "web-hpa-90"]
# minute by minute: demand, then (pods, ready) of each Deployment in NAMES
MINUTES = [
    (2.0, [(2, 2), (1, 1), (3, 3), (1, 1)]),
    (3.5, [(4, 2), (3, 1), (5, 3), (2, 1)]),
    (3.0, [(4, 4), (3, 3), (5, 5), (2, 2)]),
    (1.0, [(2, 2), (3, 3), (5, 5), (2, 2)]),
]


def _record(minutes: list[tuple[float, list[tuple[int, int]]]] = MINUTES) -> DemoRecord:
    record = DemoRecord(options=DemoOptions(trace=Path("t.csv"), minutes=len(minutes), hpa_targets=(50, 70, 90)),
                        trace_name="t.csv [cpu]")
    for i, (d, row) in enumerate(minutes):
        record.samples.append(Sample(minute=i, demand=d, pods={n: p for n, (p, _) in zip(NAMES, row, strict=True)},
                                     ready={n: r for n, (_, r) in zip(NAMES, row, strict=True)}))
    return record


def test_the_deployments_are_aihpa_then_the_hpa_at_its_target_then_the_other_targets() -> None:
    got = [(d.name, d.kind, d.target_percent) for d in demo_deployments((90, 50, 70, 50))]
    assert got == [("web-aihpa", "aihpa", None), ("web-hpa", "hpa", 70), ("web-hpa-50", "hpa", 50),
                   ("web-hpa-90", "hpa", 90)]
    # the HPA at aihpa's target is always run: it is the side-by-side comparison
    assert [d.name for d in demo_deployments((60,))] == ["web-aihpa", "web-hpa", "web-hpa-60"]


def test_a_summary_counts_cost_saturation_and_changes_and_keeps_up_as_minutes_arrive() -> None:
    record = _record(MINUTES[:2])
    first = record.summary("web-hpa")
    assert (first.pod_minutes, first.saturated_minutes, first.scale_changes) == (4.0, 2, 1)
    record.samples.extend(_record().samples[2:])
    s = record.summary("web-hpa")
    # saturated when demand > ready: minutes 0 (2 > 1) and 1 (3.5 > 1); unserved 1 + 2.5 of 9.5 cores
    assert (s.pod_minutes, s.saturated_minutes, s.peak_pods, s.scale_changes) == (10.0, 2, 3, 1)
    assert s.saturated_share == pytest.approx(0.5)
    assert s.unserved_share == pytest.approx(3.5 / 9.5)
    # a record whose samples were replaced is summed afresh, not from the stale running sums
    record.samples[:] = record.samples[:1]
    assert record.summary("web-hpa").pod_minutes == 1.0
    record.samples[:] = _record([(9.0, [(7, 7)] * 4)] * 4).samples
    assert (record.summary("web-hpa").pod_minutes, record.summary("web-hpa").saturated_minutes) == (28.0, 4)


def test_the_json_report_has_every_deployment_and_aihpa_against_the_frontier(tmp_path: Path) -> None:
    record = _record()
    out = report_json(record)
    json.dumps(out)  # plain JSON types only
    assert out["trace"] == "t.csv [cpu]" and out["minutes"] == 4
    deps = out["deployments"]
    assert list(deps) == NAMES
    assert deps["web-aihpa"]["kind"] == "aihpa" and deps["web-aihpa"]["target"] is None
    assert deps["web-aihpa"]["saturation_risk"] == 0.01
    assert {n: (d["kind"], d["target"]) for n, d in deps.items() if n != AIHPA} == {
        "web-hpa": ("hpa", 0.7), "web-hpa-50": ("hpa", 0.5), "web-hpa-90": ("hpa", 0.9)}
    for name, d in deps.items():
        assert set(d) >= {"kind", "target", "pod_minutes", "saturated_share", "unserved_share", "scale_changes"}
        assert d["pod_minutes"] == record.summary(name).pod_minutes
    # aihpa: 12 pod-minutes, saturated in 1 of 4 minutes (3.5 > 2); the HPA at 50%: 1/4 saturated too (3.5 > 3),
    # 18 pod-minutes, and it is the frontier's safest point, so the frontier there is its cost
    assert deps["web-aihpa"]["saturated_share"] == 0.25 and deps["web-hpa-50"]["saturated_share"] == 0.25
    assert out["hpa_frontier"]["pod_minutes_at_aihpa_share"] == 18.0
    assert out["aihpa_vs_hpa_frontier"] == pytest.approx(12.0 / 18.0)


def test_the_ratio_is_null_with_a_reason_when_aihpa_saturates_more_than_every_hpa() -> None:
    hot = [(d, [(1, 0), *row[1:]]) for d, row in MINUTES]  # aihpa has one pod that never gets ready
    record = _record(hot)
    c = frontier_comparison(record)
    assert c.aihpa.saturated_share > max(p.saturated_share for p in c.points)
    out = report_json(record)
    assert out["aihpa_vs_hpa_frontier"] is None
    assert "not run hot enough" in out["hpa_frontier"]["note"]


def test_the_default_trace_ships_in_the_package_with_its_license() -> None:
    path = default_trace()
    assert path.parent == Path(demo.__file__).resolve().parent / "data"
    trace = load_trace(path, column=demo.DEFAULT_COLUMN)
    assert len(trace.values) >= 2 * 1440
    attribution = (path.parent / "ATTRIBUTION.md").read_text()
    assert path.name in attribution and "MIT" in attribution
    license_text = (path.parent / "LICENSE-NAB.txt").read_text()
    assert "Copyright 2014-2024 Numenta Inc." in license_text and "Permission is hereby granted" in license_text
    # the Azure trace stays shipped: other commands use it
    assert (path.parent / "azure2019_vm_total_cpu_5min.csv").is_file()


def _options_of(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> DemoOptions:
    seen: list[DemoOptions] = []

    def fake_run(options: DemoOptions) -> DemoRecord:
        seen.append(options)
        return DemoRecord(options=options)

    monkeypatch.setattr(demo, "run_demo", fake_run)
    assert main(["demo", *argv]) == 0
    return seen[0]


def test_the_demo_replays_the_shipped_trace_by_default_and_any_csv_when_asked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    o = _options_of([], monkeypatch)
    assert (o.trace, o.column) == (default_trace(), "cpu")
    assert o.hpa_targets == (50, 60, 70, 80, 90) and o.json_path is None and o.peak_cores == 8.0
    csv = tmp_path / "t.csv"
    o = _options_of(["--trace", str(csv), "--column", "rps", "--minutes", "2880", "--peak", "20", "--json",
                     str(tmp_path / "out.json"), "--hpa-targets", "55,85", "--no-live"], monkeypatch)
    assert (o.trace, o.column, o.minutes, o.peak_cores) == (csv, "rps", 2880, 20.0)
    assert o.json_path == tmp_path / "out.json" and o.hpa_targets == (55, 85) and not o.live
    # a trace of the user's without --column: the loader's choice (the first numeric column), not the default's
    assert _options_of(["--trace", str(csv)], monkeypatch).column is None


@pytest.mark.parametrize("text", ["", "0", "50,x", "101", "60,,200"])
def test_hpa_targets_must_be_percentages(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        demo._targets(text)


def test_the_report_tables_every_deployment_and_warns_only_when_many_minutes_were_sampled_late(tmp_path: Path) -> None:
    record = _record()
    record.options = DemoOptions(trace=Path("t.csv"), minutes=4, hpa_targets=(50, 70, 90), out=tmp_path)
    record.late_minutes, record.max_delay_s = 0, 3.0
    report, plot = write_report(record)
    text = report.read_text()
    assert plot.read_bytes().startswith(b"\x89PNG")
    for name, aims in [("web-aihpa", "1% risk"), ("web-hpa", "70% CPU"), ("web-hpa-50", "50% CPU"),
                       ("web-hpa-90", "90% CPU")]:
        assert f"| {name} | {aims} | " in text
    assert "At web-aihpa's saturated share (25.00%" in text and "0.667 of the HPA's cost" in text
    assert "0 of 4 minutes sampled more than 15 simulated seconds late" in text and "Warning" not in text
    record.late_minutes, record.max_delay_s = 1, 40.0
    text = write_report(record)[0].read_text()
    assert "**Warning**: 1 of 4 minutes were sampled more than 15 simulated seconds late (worst 40 s)" in text
