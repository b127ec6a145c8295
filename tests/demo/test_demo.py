"""`aihpa demo` end to end: a short run through the CLI entry point writes a sane report, plot and JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aihpa.cli import main
from aihpa.forecast.cli import embedded_trace_path

MINUTES = 60
NAMES = ["web-aihpa", "web-hpa", "web-hpa-60", "web-hpa-80"]


@pytest.mark.slow
def test_a_short_demo_reports_cost_and_saturation_of_aihpa_and_the_hpa_frontier(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, report_json = tmp_path / "demo-out", tmp_path / "figures" / "out.json"
    # any CSV with --trace/--column, as a user would replay their own; two extra HPA targets keep the run short
    code = main(["demo", "--trace", str(embedded_trace_path()), "--column", "cpu_usage", "--minutes", str(MINUTES),
                 "--speed", "900", "--hpa-targets", "60,80", "--no-live", "--out", str(out), "--json",
                 str(report_json)])
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert f"KUBECONFIG={out.resolve() / 'kubeconfig'} kubectl get deploy -w" in printed
    assert (out / "kubeconfig").is_file()

    png = (out / "demo.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

    report = (out / "report.md").read_text()
    assert "![demand and capacity](demo.png)" in report
    assert re.search(rf"web-aihpa used [\d.]+% (more|fewer) pod-minutes than web-hpa, and was saturated in \d+ of "
                     rf"{MINUTES} minutes against \d+\.", report), report
    assert re.search(r"At web-aihpa's saturated share \([\d.]+%", report), report
    rows = dict(re.findall(r"^\| (web-aihpa|web-hpa(?:-\d+)?) \| (.+) \|$", report, flags=re.MULTILINE))
    assert set(rows) == set(NAMES), report
    figures = json.loads(report_json.read_text())
    for name, row in rows.items():
        aims, cost, saturated, unserved, peak, changes = (cell.strip() for cell in row.split("|"))
        # at least one pod every minute, at most the 100-pod ceiling; shares are percentages
        assert MINUTES <= float(cost) <= 100 * MINUTES, (name, row)
        assert 0.0 <= float(saturated.rstrip("%")) <= 100.0
        assert 0.0 <= float(unserved.rstrip("%")) <= 100.0
        if name in ("web-aihpa", "web-hpa"):
            # the trace peaks at 8 cores and both aim at 70%: each must have scaled up from its first pod
            assert int(peak) >= 8 and int(changes) >= 1, (name, row)
        else:
            assert aims == f"{name.rsplit('-', 1)[1]}% CPU" and int(changes) >= 1, (name, row)
        assert name in printed
        # the JSON holds the same figures as the report
        assert figures["deployments"][name]["pod_minutes"] == float(cost)
        assert f"{figures['deployments'][name]['saturated_share']:.1%}" == saturated
    assert figures["minutes"] == MINUTES and figures["trace"] == "azure2019_vm_total_cpu_5min.csv [cpu_usage]"
    assert [figures["deployments"][n]["target"] for n in NAMES] == [None, 0.7, 0.6, 0.8]
    ratio = figures["aihpa_vs_hpa_frontier"]
    at_share = figures["hpa_frontier"]["pod_minutes_at_aihpa_share"]
    if at_share is None:
        assert ratio is None and figures["hpa_frontier"]["note"]
    else:
        assert ratio == pytest.approx(figures["deployments"]["web-aihpa"]["pod_minutes"] / at_share)


def test_the_demo_refuses_a_run_too_short_to_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--minutes", "1", "--no-live", "--out", str(tmp_path)]) == 2
    assert "--minutes must be at least 2" in capsys.readouterr().err
