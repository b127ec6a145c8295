"""The Kubernetes HPA replica formula for a CPU utilization target, with its tolerance.

desiredReplicas = ceil(currentReplicas × currentUtilization / targetUtilization), skipped when the ratio is within the
tolerance of 1.0, and with the upstream replica calculator's treatment of pods without metrics (counted at 0% on a
scale-up and at 100% of their request on a scale-down) and of unready pods (counted at 0% on a scale-up), as in
kubernetes pkg/controller/podautoscaler/replica_calculator.go (GetResourceReplicas) and the HPA documentation's
"Algorithm details". All pods are assumed to request the same CPU.

Pure: no I/O, no clock, no Kubernetes client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_TOLERANCE", "ReplicaRecommendation", "hpa_replicas"]

#: The controller-wide tolerance of kube-controller-manager (--horizontal-pod-autoscaler-tolerance).
DEFAULT_TOLERANCE = 0.1


@dataclass(frozen=True)
class ReplicaRecommendation:
    """What the replica calculator recommends, with the utilization it saw (share of the request, 1.0 = 100%)."""

    replicas: int
    utilization: float
    reason: str


def hpa_replicas(
    *,
    current_replicas: int,
    usage: float,
    pods_with_metrics: int,
    target_utilization: float,
    request_per_pod: float = 1.0,
    missing_pods: int = 0,
    unready_pods: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
) -> ReplicaRecommendation:
    """The HPA's recommendation before behavior and min/max.

    `usage` is the summed CPU usage (cores) of the `pods_with_metrics` ready pods that reported. `missing_pods` are
    ready pods with no metric yet; `unready_pods` are pods not ready. `target_utilization` is a share of the request
    (0.7 = 70%).
    """
    if target_utilization <= 0 or request_per_pod <= 0:
        raise ValueError("target utilization and CPU request must be positive")
    if pods_with_metrics <= 0:
        # upstream returns an error here and the HPA keeps the current count
        return ReplicaRecommendation(current_replicas, math.nan, "no pod reported metrics; keeping the current count")
    requests = pods_with_metrics * request_per_pod
    utilization = usage / requests
    ratio = utilization / target_utilization
    scale_up_with_unready = unready_pods > 0 and ratio > 1.0
    if not scale_up_with_unready and missing_pods == 0:
        if abs(1.0 - ratio) <= tolerance:
            return ReplicaRecommendation(
                current_replicas, utilization, f"utilization {utilization:.0%} is within tolerance of the target"
            )
        return ReplicaRecommendation(
            math.ceil(ratio * pods_with_metrics),
            utilization,
            f"utilization {utilization:.0%} against a target of {target_utilization:.0%}",
        )

    # Re-run the ratio with conservative guesses for the pods that did not report, as upstream does.
    counted = pods_with_metrics
    new_usage = usage
    if missing_pods > 0:
        if ratio < 1.0:
            fallback = max(1.0, target_utilization)
            new_usage += missing_pods * request_per_pod * fallback
            counted += missing_pods
        elif ratio > 1.0:
            counted += missing_pods
    if scale_up_with_unready:
        counted += unready_pods
    new_ratio = new_usage / (counted * request_per_pod) / target_utilization
    if (
        abs(1.0 - new_ratio) <= tolerance
        or (ratio < 1.0 < new_ratio)
        or (ratio > 1.0 > new_ratio)
    ):
        return ReplicaRecommendation(
            current_replicas,
            utilization,
            "pods without metrics would reverse or cancel the change; keeping the current count",
        )
    new_replicas = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        return ReplicaRecommendation(current_replicas, utilization, "change would go against the usage ratio")
    return ReplicaRecommendation(
        new_replicas,
        utilization,
        f"utilization {utilization:.0%} against a target of {target_utilization:.0%} (pods without metrics counted)",
    )
