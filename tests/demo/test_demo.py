"""`aihpa demo` end to end: a short run through the CLI entry point writes a sane report and plot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aihpa.cli import main

MINUTES = 60


@pytest.mark.slow
def test_a_short_demo_reports_cost_and_saturation_of_both_autoscalers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo-out"
    code = main(["demo", "--minutes", str(MINUTES), "--speed", "900", "--no-live", "--out", str(out)])
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
    rows = dict(re.findall(r"^\| (web-aihpa|web-hpa) \| (.+) \|$", report, flags=re.MULTILINE))
    assert set(rows) == {"web-aihpa", "web-hpa"}, report
    for name, row in rows.items():
        cost, saturated, unserved, peak, changes = (cell.strip() for cell in row.split("|"))
        # at least one pod every minute, at most the 100-pod ceiling; shares are percentages
        assert MINUTES <= float(cost) <= 100 * MINUTES, (name, row)
        assert 0.0 <= float(saturated.rstrip("%")) <= 100.0
        assert 0.0 <= float(unserved.rstrip("%")) <= 100.0
        # the trace peaks at 8 cores and both aim at 70%: each must have scaled up from its first pod
        assert int(peak) >= 8 and int(changes) >= 1, (name, row)
        assert name in printed


def test_the_demo_refuses_a_run_too_short_to_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--minutes", "1", "--no-live", "--out", str(tmp_path)]) == 2
    assert "--minutes must be at least 2" in capsys.readouterr().err
