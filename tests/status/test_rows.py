"""What one row says, read from a Deployment and its status annotation, and the sparkline drawn from given samples."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aihpa.annotations import PolicyDefaults
from aihpa.status.render import plain_table
from aihpa.status.rows import PENDING_REASON, History, Sample, human_age, percent, row_from_deployment, sparkline

NOW = 1_735_689_600.0 + 3600  # 2025-01-01T01:00:00Z

STATUS = {
    "replicas": 5, "reactive": 3, "usage": 2.3456, "mode": "predictive", "model": "bilstm-7", "candidate": "forecast",
    "forecast": {"horizon_s": 900, "next": {"p50": 2.5, "p90": 3.0, "p95": 3.2, "p99": 3.9},
                 "peak": {"p50": 2.8, "p90": 3.5, "p95": 3.75, "p99": 4.5}},
    "reason": "forecast peak 3.75 cores (p95) over 15 min needs 4 pods of 1 core; kept 5 for the scale-down window",
    "slo": {"risk": 0.01, "saturated_share": 0.0083, "steps": 1440},
    "time": "2025-01-01T00:58:40+00:00",
}


def deployment(status: Any = None, *, replicas: int = 5, ready: int = 4, **annotations: str) -> dict[str, Any]:
    notes = dict(annotations)
    if status is not None:
        notes["aihpa/status"] = status if isinstance(status, str) else json.dumps(status)
    return {
        "metadata": {"namespace": "shop", "name": "web", "labels": {"aihpa/enabled": "true"}, "annotations": notes},
        "spec": {"replicas": replicas},
        "status": {"readyReplicas": ready},
    }


def test_a_row_shows_the_counts_the_peak_band_the_slo_and_the_age_of_its_status() -> None:
    row = row_from_deployment(deployment(STATUS, **{"aihpa/min-replicas": "2", "aihpa/max-replicas": "12"}), now=NOW)
    assert row.cells() == {
        "NAMESPACE": "shop", "NAME": "web", "MODE": "predictive", "REPLICAS": "5/5 (2-12)", "USAGE": "2.35",
        "FORECAST": "2.80/3.75 (p95)", "SLO": "0.8%/1.0%", "AGE": "80s",
        "REASON": "forecast peak 3.75 cores (p95) over 15 min ne...",
    }
    wide = row.cells(wide=True)
    assert wide["REASON"] == STATUS["reason"]
    assert (wide["READY"], wide["REACTIVE"], wide["NEXT"], wide["HORIZON"], wide["STEPS"], wide["CANDIDATE"],
            wide["MODEL"]) == ("4/5", "3", "2.50/3.20 (p95)", "15m", "1440", "forecast", "bilstm-7")
    assert not row.breached and not row.pending


def test_the_high_quantile_is_p95_else_the_highest_the_model_gives() -> None:
    status = {**STATUS, "forecast": {"horizon_s": 900, "next": {"p50": 1.0, "p99": 2.0, "p90": 1.5},
                                     "peak": {"p99": 7.0, "p50": 6.0, "p90": 6.5}}}
    assert row_from_deployment(deployment(status), now=NOW).cells()["FORECAST"] == "6.00/7.00 (p99)"


def test_json_carries_every_field_of_the_status() -> None:
    data = row_from_deployment(deployment(STATUS), now=NOW).to_json()
    assert data["replicas"] == {"current": 5, "ready": 4, "desired": 5, "min": 1, "max": 100, "reactive": 3}
    assert data["forecast"] == STATUS["forecast"] and data["slo"] == STATUS["slo"]
    assert (data["usage"], data["reason"], data["time"]) == (2.3456, STATUS["reason"], STATUS["time"])
    assert data["age_s"] == 80
    assert data["pending"] is False and data["model"] == "bilstm-7" and data["candidate"] == "forecast"
    json.dumps(data)  # plain JSON


def test_a_labeled_deployment_without_a_status_is_pending_with_its_policy() -> None:
    row = row_from_deployment(deployment(None, replicas=3, **{"aihpa/mode": "reactive",
                                                              "aihpa/saturation-risk": "0.05"}), now=NOW)
    assert row.pending and row.reason == PENDING_REASON
    cells = row.cells()
    assert (cells["MODE"], cells["REPLICAS"], cells["USAGE"], cells["FORECAST"], cells["SLO"], cells["AGE"]) == (
        "reactive", "3/- (1-100)", "-", "-", "-/5.0%", "-")
    assert row.to_json()["pending"] is True


def test_an_unreadable_status_or_a_bad_policy_value_is_reported_not_raised() -> None:
    row = row_from_deployment(deployment("{not json", **{"aihpa/max-replicas": "many"}), now=NOW,
                              defaults=PolicyDefaults(max_replicas=20))
    assert row.pending and "unreadable aihpa/status" in row.reason
    assert row.max_replicas == 20 and any("aihpa/max-replicas" in w for w in row.warnings)
    odd = row_from_deployment(deployment({"usage": "lots", "replicas": True, "slo": [], "forecast": 3}), now=NOW)
    assert (odd.usage, odd.desired, odd.forecast, odd.saturated_share, odd.risk) == (None, None, None, None, 0.01)


def test_a_realized_share_above_the_risk_is_a_breach() -> None:
    status = {**STATUS, "slo": {"risk": 0.01, "saturated_share": 0.02, "steps": 100}}
    row = row_from_deployment(deployment(status), now=NOW)
    assert row.breached and row.cells()["SLO"] == "2.0%/1.0%"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(-5, "<invalid>"), (0, "0s"), (119, "119s"), (125, "2m5s"), (600, "10m"), (179 * 60, "179m"),
     (3 * 3600 + 5 * 60, "3h5m"), (8 * 3600, "8h"), (50 * 3600, "2d2h"), (30 * 86400, "30d"),
     (3 * 365 * 86400 + 86400, "3y1d"), (9 * 365 * 86400, "9y")],
)
def test_ages_read_as_kubectl_prints_them(seconds: float, text: str) -> None:
    assert human_age(seconds) == text


@pytest.mark.parametrize(("share", "text"), [(0.0, "0%"), (0.008, "0.8%"), (0.0123, "1.2%"), (0.0004, "0.04%"),
                                             (0.5, "50.0%")])
def test_shares_read_as_short_percentages(share: float, text: str) -> None:
    assert percent(share) == text


def test_the_sparkline_scales_usage_to_the_window_and_judges_it_against_the_band_forecast_before_it() -> None:
    start = NOW - 3600
    samples = [
        Sample(start + 60, 1.0, 1.5, 2.0),    # cell 0: no forecast before it
        Sample(start + 180, 1.8, 1.5, 2.0),   # cell 1: inside the band of cell 0's forecast
        Sample(start + 300, 4.0, 3.0, 4.0),   # cell 2: above the band forecast in cell 1
        Sample(start + 420, 0.5, None, None),  # cell 3: below the median forecast in cell 2 (3.0)
    ]
    sparks = sparkline(samples, now=NOW, window_s=3600, width=30)
    assert len(sparks) == 30
    assert "".join(s.char for s in sparks[:4]) == "▃▄█▂"  # heights of 1.0, 1.8, 4.0 and 0.5 on a 0..4 scale
    assert [s.zone for s in sparks[:4]] == ["none", "inside", "above", "below"]
    assert all(s == (" ", "none") for s in sparks[4:])  # nothing seen since


def test_the_sparkline_keeps_the_highest_sample_of_a_cell_and_drops_what_is_outside_the_window() -> None:
    samples = [Sample(NOW - 7200, 9.0), Sample(NOW - 100, 1.0), Sample(NOW - 50, 2.0), Sample(NOW, None)]
    sparks = sparkline(samples, now=NOW, window_s=3600, width=3)
    assert "".join(s.char for s in sparks) == "  █"
    assert sparkline([], now=NOW) == [(" ", "none")] * 30


def test_samples_one_cell_apart_fill_neighbouring_cells() -> None:
    samples = [Sample(NOW - 120 * k, 1.0) for k in range(5)]
    assert "".join(s.char for s in sparkline(samples, now=NOW, window_s=3600, width=30)) == " " * 25 + "█" * 5


def test_the_history_keeps_one_hour_per_workload_and_forgets_a_deployment_that_went_away() -> None:
    history = History(window_s=3600)
    web = row_from_deployment(deployment(STATUS), now=NOW)
    for minute in range(90):
        history.add([web], NOW + 60 * minute)
    kept = history.of(web.key)
    assert len(kept) == 61 and kept[0].time == NOW + 60 * 29
    assert kept[-1] == Sample(NOW + 60 * 89, 2.3456, 2.5, 3.2)
    history.add([], NOW + 90 * 60)
    assert history.of(web.key) == ()


def test_the_plain_table_aligns_columns_as_kubectl_does() -> None:
    rows = [row_from_deployment(deployment(STATUS), now=NOW), row_from_deployment(deployment(None), now=NOW)]
    lines = plain_table(rows, show_namespace=False).splitlines()
    assert lines[0].split() == ["NAME", "MODE", "REPLICAS", "USAGE", "FORECAST", "SLO", "AGE", "REASON"]
    starts = [lines[0].index(h) for h in ("MODE", "REPLICAS", "USAGE", "REASON")]
    assert [lines[1].index(c) for c in ("predictive", "5/5", "2.35", "forecast peak")] == starts
    assert lines[2][starts[-1]:] == "pending: no status from the controller yet"


def test_a_workload_on_a_named_metric_shows_its_unit() -> None:
    row = row_from_deployment(deployment({**STATUS, "usage": 450.0, "unit": "rps"}), now=NOW)
    assert row.cells()["USAGE"] == "450.00 rps" and row.to_json()["unit"] == "rps"
    # a status from before the unit was written is in cores
    assert row_from_deployment(deployment(STATUS), now=NOW).to_json()["unit"] == "cores"
