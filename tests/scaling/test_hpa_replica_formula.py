"""The HPA replica formula, cases from the Kubernetes HPA documentation ("Algorithm details") and replica_calculator."""

from __future__ import annotations

import math

import pytest

from aihpa.scaling import hpa_replicas

# (name, current, usage cores, pods with metrics, missing pods, target, expected replicas)
CASES = [
    # docs: "if the current metric value is 200m, and the desired value is 100m, the number of replicas will be doubled"
    ("docs_double_when_metric_is_twice_the_target", 4, 4 * 0.2, 4, 0, 0.1, 8),
    # docs: "If the current value is instead 50m, you'll halve the number of replicas"
    ("docs_halve_when_metric_is_half_the_target", 4, 4 * 0.05, 4, 0, 0.1, 2),
    # docs: "the control plane skips any scaling action if the ratio is sufficiently close to 1.0 (tolerance 0.1)"
    ("docs_skip_within_tolerance_above", 10, 10 * 0.76, 10, 0, 0.7, 10),
    ("docs_skip_within_tolerance_below", 10, 10 * 0.64, 10, 0, 0.7, 10),
    ("just_outside_tolerance_scales", 10, 10 * 0.78, 10, 0, 0.7, 12),
    ("idle_pods_recommend_zero_before_min_replicas", 3, 0.0, 3, 0, 0.7, 0),
    # docs: missing metrics on a scale-up count as 0% of the request
    ("docs_missing_pods_count_as_zero_on_scale_up", 4, 4.0, 2, 2, 0.5, 8),
    # docs: missing metrics on a scale-down count as 100% of the request
    ("docs_missing_pods_count_as_full_on_scale_down", 4, 0.2, 2, 2, 0.8, 3),
    # the conservative guess may cancel the move: 2 busy pods at 100%, 2 new ones at 0% -> ratio 1.0 at target 0.5
    ("missing_pods_that_reverse_the_direction_keep_the_count", 4, 2.0, 2, 2, 0.5, 4),
]


@pytest.mark.parametrize(
    ("current", "usage", "with_metrics", "missing", "target", "expected"),
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_replica_formula_matches_the_documented_algorithm(
    current: int, usage: float, with_metrics: int, missing: int, target: float, expected: int
) -> None:
    rec = hpa_replicas(
        current_replicas=current,
        usage=usage,
        pods_with_metrics=with_metrics,
        missing_pods=missing,
        target_utilization=target,
    )
    assert rec.replicas == expected
    assert rec.reason


def test_missing_pods_on_scale_down_follow_the_formula_with_full_usage() -> None:
    # 2 reporting pods use 0.1 cores each, 2 more have no metric: (0.2 + 2 × 1.0) / 0.8 = 2.75 -> 3 pods
    rec = hpa_replicas(current_replicas=4, usage=0.2, pods_with_metrics=2, missing_pods=2, target_utilization=0.8)
    assert rec.replicas == math.ceil((0.2 + 2.0) / 0.8)


def test_a_configured_tolerance_replaces_the_default() -> None:
    rec = hpa_replicas(current_replicas=10, usage=7.7, pods_with_metrics=10, target_utilization=0.7, tolerance=0.05)
    assert rec.replicas == 11


def test_no_reporting_pods_keeps_the_current_count() -> None:
    rec = hpa_replicas(current_replicas=3, usage=0.0, pods_with_metrics=0, target_utilization=0.7)
    assert rec.replicas == 3
