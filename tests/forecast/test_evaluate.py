"""Forecast-quality scoring: the loss definitions and the scored window."""

from __future__ import annotations

import numpy as np
import pytest

from aihpa.forecast.evaluate import evaluate, pinball
from aihpa.forecast.forecaster import LastValueForecaster, SeasonalNaiveForecaster
from aihpa.traces import series_from_values


def test_pinball_is_asymmetric_as_defined() -> None:
    y = np.asarray([10.0])
    assert pinball(y, np.asarray([8.0]), 0.9) == pytest.approx(1.8)  # under-forecast costs q * err
    assert pinball(y, np.asarray([12.0]), 0.9) == pytest.approx(0.2)  # over-forecast costs (1 - q) * err


def test_a_perfectly_periodic_series_is_scored_zero_for_seasonal_naive_only() -> None:
    period = 24
    values = np.tile(np.arange(period, dtype=np.float64) + 1, 30)
    trace = series_from_values(values, step_s=3600.0)
    rows = {
        r.forecaster: r
        for r in evaluate(
            trace,
            {"sn": SeasonalNaiveForecaster(period=period, horizon=4), "lv": LastValueForecaster(horizon=4)},
        )
    }
    assert rows["sn"].mae == 0 and rows["sn"].pinball[0.9] == 0
    assert rows["lv"].mae > 0
    # the last 80% of 720 points, 2 steps ahead
    assert rows["sn"].points == 720 - 144


def test_too_short_a_trace_is_refused() -> None:
    with pytest.raises(ValueError, match="too short"):
        evaluate(series_from_values([1.0, 2.0]), {"lv": LastValueForecaster()}, steps_ahead=2)


def _meta(*traces: dict[str, object]) -> dict[str, object]:
    return {"provenance": {"traces": list(traces)}}


@pytest.mark.parametrize(
    ("recorded", "file", "column", "sha", "rows_trained_on"),
    [
        # the protocol: trained on the first 20%, scored on the last 80%: nothing in common
        ({"file": "web.csv", "column": "cpu", "points_used": 200}, "data/web.csv", "cpu", None, 0),
        # trained on all of it: every scored row
        ({"file": "web.csv", "column": "cpu", "points_used": 1000}, "web.csv", "cpu", None, 800),
        # trained on the first half
        ({"file": "web.csv", "column": "cpu", "points_used": 500}, "web.csv", "cpu", None, 300),
        # a renamed copy is recognised by its digest
        ({"file": "web.csv", "column": "cpu", "points_used": 1000, "sha256": "abc"}, "copy.csv", "cpu", "abc", 800),
        # another file, or another column of the same file: not the data trained on
        ({"file": "web.csv", "column": "cpu", "points_used": 1000}, "api.csv", "cpu", None, 0),
        ({"file": "web.csv", "column": "cpu", "points_used": 1000}, "web.csv", "mem", None, 0),
    ],
    ids=["protocol", "all", "half", "renamed-copy", "other-file", "other-column"],
)
def test_training_overlap_counts_the_scored_rows_the_model_was_trained_on(
    recorded: dict[str, object], file: str, column: str, sha: str | None, rows_trained_on: int
) -> None:
    from aihpa.forecast.evaluate import training_overlap

    overlap = training_overlap(file=file, column=column, rows=1000, metadata=_meta(recorded), steps_ahead=2,
                               sha256=sha)
    if rows_trained_on == 0:
        assert overlap is None
        return
    assert overlap is not None and overlap.rows == rows_trained_on and overlap.scored == 800
    assert overlap.first_scored == 200 and f"{rows_trained_on} of the 800 scored rows" in overlap.message()


def test_a_checkpoint_without_provenance_is_matched_by_its_series_name() -> None:
    from aihpa.forecast.evaluate import training_overlap

    meta = {"data": [{"name": "web", "points": 600}]}
    overlap = training_overlap(file="web.csv", column="cpu", rows=1000, metadata=meta, steps_ahead=2)
    assert overlap is not None and overlap.rows == 400


@pytest.mark.parametrize(
    ("losses", "expected"),
    [
        ({"bilstm": 0.1, "seasonal-naive": 0.2, "last-value": 0.3},
         "bilstm beats seasonal-naive and last-value"),
        ({"bilstm": 0.25, "seasonal-naive": 0.2, "last-value": 0.3},
         "bilstm beats last-value but not seasonal-naive"),
        ({"bilstm": 0.4, "seasonal-naive": 0.2, "last-value": 0.3},
         "bilstm does not beat seasonal-naive or last-value"),
    ],
)
def test_the_verdict_names_the_baselines_the_model_beats(losses: dict[str, float], expected: str) -> None:
    from aihpa.forecast.evaluate import EvalRow, verdict

    rows = [EvalRow(forecaster=name, version="v", points=10, mae=loss, pinball={0.5: loss, 0.9: loss, 0.99: loss})
            for name, loss in losses.items()]
    text = verdict(rows)
    assert text.startswith(f"{expected} on mean pinball loss")
    assert f"bilstm {losses['bilstm']:.4f}" in text
