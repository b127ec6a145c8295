"""The HPA replica formula, cases from the Kubernetes HPA documentation ("Algorithm details") and replica_calculator."""

from __future__ import annotations

import math

import pytest

from aihpa.scaling import hpa_replicas
from aihpa.scaling.hpa import Tolerance

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



# Upstream's rules near the edges: (name, current, usage cores, pods with metrics, missing pods, CPU request per pod,
# target, expected replicas).
UTILIZATION_CASES = [
    # 600.4% of 10 cores is 60% in whole percent: 60/50 = 1.2 -> ceil(12.0) = 12, where the exact 1.2008 gives 13
    ("truncated_percent_keeps_the_ratio_on_a_whole_number", 10, 6.004, 10, 0, 1.0, 0.5, 12),
    # metricsTotal 100m over requestsTotal 300m is 33%, not 33.3%: 33/30 = 1.1 is within the tolerance, 1.111 is not
    ("a_third_is_33_percent", 3, 0.1, 3, 0, 0.1, 0.3, 3),
    # 8.004 cores over 10 pods is 80% -> scale-up, so 2 missing pods count at 0%: 8004m × 100 / 12000m = 66%,
    # 66/50 × 12 = ceil(15.84) = 16, where the exact 66.7% gives ceil(16.008) = 17
    ("truncation_applies_to_the_rerun_with_missing_pods", 10, 8.004, 10, 2, 1.0, 0.5, 16),
]


@pytest.mark.parametrize(
    ("current", "usage", "with_metrics", "missing", "per_pod", "target", "expected"),
    [c[1:] for c in UTILIZATION_CASES],
    ids=[c[0] for c in UTILIZATION_CASES],
)
def test_utilization_is_a_truncated_whole_percent(
    current: int, usage: float, with_metrics: int, missing: int, per_pod: float, target: float, expected: int
) -> None:
    """metrics/utilization.go GetResourceUtilizationRatio: currentUtilization = int32((metricsTotal * 100) /
    requestsTotal) and usageRatio = float64(currentUtilization) / float64(targetUtilization), in both passes of
    replica_calculator.go GetResourceReplicas."""
    rec = hpa_replicas(
        current_replicas=current, usage=usage, pods_with_metrics=with_metrics, missing_pods=missing,
        request_per_pod=per_pod, target_utilization=target,
    )
    assert rec.replicas == expected


def test_a_fractional_share_target_is_read_as_its_whole_percent() -> None:
    """GetResourceUtilizationRatio divides by the integer targetUtilization: 0.57 is 57%, although 0.57 × 100 is
    56.99999999999999 in floats (114/57 = 2 -> 10 pods; 114/56.99999999999999 would give 11)."""
    rec = hpa_replicas(current_replicas=5, usage=5.7, pods_with_metrics=5, target_utilization=0.57)
    assert (rec.replicas, rec.utilization_percent) == (10, 114)


# (name, current, usage cores over 10 pods of 1 core, target, tolerance, expected replicas)
TOLERANCE_CASES = [
    # 77/70 is exactly 1 + 0.1: inside the band, where abs(1 - ratio) > 0.1 scaled to 11
    ("upper_edge_is_inside_the_band", 10, 7.7, 0.7, Tolerance(), 10),
    # 84/70 = 1.2: outside the default band, inside a scale-up tolerance of 0.2
    ("scale_up_tolerance_widens_only_upward", 10, 8.4, 0.7, Tolerance(scale_up=0.2, scale_down=0.1), 10),
    # 49/70 = 0.7: inside a scale-down tolerance of 0.3 (inclusive), whatever the scale-up side says
    ("scale_down_tolerance_widens_only_downward", 10, 4.9, 0.7, Tolerance(scale_up=0.05, scale_down=0.3), 10),
    # 59/70 = 0.843: a scale-up tolerance of 0.5 does not stop a scale-down
    ("a_wide_scale_up_tolerance_still_scales_down", 10, 5.9, 0.7, Tolerance(scale_up=0.5, scale_down=0.1), 9),
    # 71/70: a zero tolerance acts on any change
    ("zero_tolerance_acts_on_one_percent", 10, 7.1, 0.7, Tolerance(scale_up=0.0, scale_down=0.0), 11),
]


@pytest.mark.parametrize(
    ("current", "usage", "target", "tolerance", "expected"),
    [c[1:] for c in TOLERANCE_CASES],
    ids=[c[0] for c in TOLERANCE_CASES],
)
def test_tolerance_is_an_inclusive_band_per_direction(
    current: int, usage: float, target: float, tolerance: Tolerance, expected: int
) -> None:
    """replica_calculator.go Tolerances.isWithin: (1.0 - t.scaleDown) <= usageRatio && usageRatio <= (1.0 +
    t.scaleUp) means no change (Kubernetes 1.33+, KEP-4951 behavior.scaleUp/scaleDown.tolerance)."""
    rec = hpa_replicas(
        current_replicas=current, usage=usage, pods_with_metrics=10, target_utilization=target, tolerance=tolerance
    )
    assert rec.replicas == expected


def test_a_single_tolerance_value_applies_to_both_directions() -> None:
    """The controller-wide --horizontal-pod-autoscaler-tolerance is one value for both sides of isWithin."""
    assert Tolerance.of(0.2) == Tolerance(scale_up=0.2, scale_down=0.2)
    up = hpa_replicas(current_replicas=10, usage=8.4, pods_with_metrics=10, target_utilization=0.7, tolerance=0.2)
    down = hpa_replicas(current_replicas=10, usage=5.6, pods_with_metrics=10, target_utilization=0.7, tolerance=0.2)
    assert (up.replicas, down.replicas) == (10, 10)


@pytest.mark.parametrize("value", [-0.1, math.nan, math.inf])
def test_a_negative_or_non_finite_tolerance_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="tolerance"):
        Tolerance(scale_up=value)
