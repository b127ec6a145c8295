"""One meaning for a label selector: `aihpa.labels` (LabelSelector objects, shared by the controller's metrics adapters
and the simulator) and the simulator's own query-string parser (`?labelSelector=`) agree on every selector the
controller can send, and the simulated API server refuses what Kubernetes refuses."""

from __future__ import annotations

from typing import Any

import pytest

from aihpa.labels import selector_matches, selector_to_string
from aihpa.sim import ApiError, Cluster
from aihpa.sim.selectors import label_selector
from aihpa.sim.testing import deployment_manifest

SELECTORS: list[tuple[str, dict[str, Any]]] = [
    ("empty", {}),
    ("one_label", {"matchLabels": {"app": "web"}}),
    ("two_labels", {"matchLabels": {"app": "web", "tier": "front"}}),
    ("in", {"matchExpressions": [{"key": "track", "operator": "In", "values": ["stable", "canary"]}]}),
    ("not_in", {"matchExpressions": [{"key": "track", "operator": "NotIn", "values": ["canary"]}]}),
    ("exists", {"matchExpressions": [{"key": "owner", "operator": "Exists"}]}),
    ("does_not_exist", {"matchExpressions": [{"key": "legacy", "operator": "DoesNotExist"}]}),
    ("labels_and_expressions", {
        "matchLabels": {"app": "web"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["stable"]},
            {"key": "legacy", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "NotIn", "values": ["x", "y"]},
        ],
    }),
]

LABEL_SETS: list[dict[str, str]] = [
    {},
    {"app": "web"},
    {"app": "web", "tier": "front"},
    {"app": "web-api", "tier": "front"},
    {"app": "web", "track": "stable"},
    {"app": "web", "track": "canary", "owner": ""},
    {"app": "web", "track": "stable", "legacy": "yes"},
    {"app": "web", "track": "stable", "zone": "x"},
    {"app": "web", "track": "stable", "zone": "z", "owner": "team"},
]


@pytest.mark.parametrize("selector", [s for _, s in SELECTORS], ids=[n for n, _ in SELECTORS])
def test_the_query_string_selects_the_same_pods_as_the_selector_object(selector: dict[str, Any]) -> None:
    matcher = label_selector(selector_to_string(selector))
    for labels in LABEL_SETS:
        by_string = True if matcher is None else matcher({"metadata": {"labels": labels}})
        assert by_string is selector_matches(selector, labels), labels


def test_an_empty_selector_matches_everything_and_an_absent_one_nothing() -> None:
    assert all(selector_matches({}, labels) for labels in LABEL_SETS)
    assert not any(selector_matches(None, labels) for labels in LABEL_SETS)


def test_an_unknown_operator_is_an_error_whatever_the_labels() -> None:
    bad = {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "a", "operator": "Near", "values": ["b"]}]}
    for labels in ({}, {"app": "other"}, {"app": "web", "a": "b"}):
        with pytest.raises(ValueError, match="operator"):
            selector_matches(bad, labels)
    with pytest.raises(ValueError, match="operator"):
        selector_to_string(bad)


async def test_the_api_server_refuses_a_deployment_whose_selector_has_an_unknown_operator(
    sim_cluster: Cluster,
) -> None:
    body = deployment_manifest("web")
    body["spec"]["selector"]["matchExpressions"] = [{"key": "app", "operator": "Near", "values": ["web"]}]
    with pytest.raises(ApiError) as refused:
        await sim_cluster.api.create(sim_cluster.api.resolve("apps/v1", "Deployment"), body, namespace="default")
    assert refused.value.code == 422
    assert "spec.selector.matchExpressions[0].operator" in str(refused.value.status)
