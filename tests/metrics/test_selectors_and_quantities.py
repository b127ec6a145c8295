"""Label selectors to query strings, and CPU quantities to cores."""

from __future__ import annotations

from typing import Any

import pytest

from aihpa.metrics import parse_cpu, selector_matches, selector_to_string
from aihpa.metrics.source import WorkloadRef
from aihpa.sim.hpa import tolerance_of
from aihpa.sim.workload import parse_cpu as sim_cpu


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


@pytest.mark.parametrize("bad", [True, None, "1e999", [1]])
def test_values_that_are_no_quantity_are_refused(bad: object) -> None:
    with pytest.raises(ValueError, match="quantity"):
        parse_cpu(bad)


def test_the_simulator_reads_quantities_with_the_same_parser() -> None:
    for text in ("250m", "1", "1500000000n", "2.5", "100u", 3, "1k", "1Gi", "5e-1"):
        assert sim_cpu(text) == parse_cpu(text)
    for bad in ("", "abc", "1x", None):
        assert sim_cpu(bad) == 0.0  # the simulated pod asks for nothing rather than failing its Deployment
    assert tolerance_of({"behavior": {"scaleUp": {"tolerance": "50m"}}}).scale_up == pytest.approx(0.05)
    for bad in ("-1", "x", "1e999"):
        with pytest.raises(ValueError, match="tolerance"):
            tolerance_of({"behavior": {"scaleDown": {"tolerance": bad}}})


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


def test_a_workload_ref_indexes_by_its_first_match_label_pair_and_keeps_its_key() -> None:
    ref = WorkloadRef("shop", "web", selector={"matchLabels": {"tier": "web", "app": "shop"}})
    assert ref.index_pair == ("app", "shop") and ref.key == "shop/web" and ref.key is ref.key
    loose = WorkloadRef("shop", "api", selector={"matchExpressions": [{"key": "app", "operator": "Exists"}]})
    assert loose.index_pair is None
    assert ref == WorkloadRef("shop", "web", selector={"matchLabels": {"tier": "web", "app": "shop"}})


@pytest.mark.parametrize(
    "selector",
    [
        {"matchLabels": {"app": "web", "tier": "front"}},
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "track", "operator": "In", "values": ["a"]}]},
        {"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["x"]},
                              {"key": "legacy", "operator": "DoesNotExist"}]},
        {"matchExpressions": [{"key": "owner", "operator": "Exists"}]},
        {},
        {"matchLabels": {}, "matchExpressions": []},
    ],
)
def test_a_workload_ref_matches_pods_as_its_selector_does_parsing_it_once(selector: dict[str, Any]) -> None:
    ref = WorkloadRef("shop", "web", selector=selector)
    label_sets = [{}, {"app": "web"}, {"app": "web", "tier": "front"}, {"app": "web", "track": "a", "owner": "me"},
                  {"zone": "x", "owner": "me"}, {"zone": "y", "legacy": "1"}, {"app": "api", "tier": "front"}]
    for labels in label_sets:
        assert ref.matches(labels) == selector_matches(selector, labels), labels
    assert ref.requirements is ref.requirements  # parsed once
    assert (ref.requirements is None) == (not (selector.get("matchLabels") or selector.get("matchExpressions")))


def test_a_workload_ref_with_an_unknown_operator_refuses_to_match() -> None:
    ref = WorkloadRef("shop", "web", selector={"matchExpressions": [{"key": "a", "operator": "Near"}]})
    for _ in range(2):  # every time: an error is not kept as an answer
        with pytest.raises(ValueError, match="operator"):
            ref.matches({"a": "1"})
