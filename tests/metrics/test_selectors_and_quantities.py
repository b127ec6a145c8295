"""Label selectors to query strings, and CPU quantities to cores."""

from __future__ import annotations

import pytest

from aihpa.metrics import parse_cpu, selector_to_string


@pytest.mark.parametrize(
    ("text", "cores"),
    [("250m", 0.25), ("1", 1.0), ("1500000000n", 1.5), ("2.5", 2.5), ("100u", 1e-4), (3, 3.0), ("1k", 1000.0)],
)
def test_cpu_quantities(text: str | int, cores: float) -> None:
    assert parse_cpu(text) == pytest.approx(cores)


@pytest.mark.parametrize("bad", ["", "abc", "1x", "m"])
def test_bad_quantities_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_cpu(bad)


def test_selector_with_labels_and_expressions() -> None:
    selector = {
        "matchLabels": {"app": "web", "tier": "front"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable", "canary"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["x"]},
            {"key": "owner", "operator": "Exists"},
        ],
    }
    assert selector_to_string(selector) == (
        "app=web,tier=front,track in (stable,canary),!legacy,zone notin (x),owner"
    )
    with pytest.raises(ValueError, match="operator"):
        selector_to_string({"matchExpressions": [{"key": "a", "operator": "Near"}]})
