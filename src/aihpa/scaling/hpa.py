"""The Kubernetes HPA replica formula for a CPU utilization target, with its tolerance.

desiredReplicas = ceil(readyPods × usageRatio), skipped when the ratio is within the tolerance band, and with the
upstream replica calculator's treatment of pods without metrics (counted at 0% on a scale-up and at
max(100%, target) of their request on a scale-down) and of unready pods (counted at 0% on a scale-up), as in
kubernetes pkg/controller/podautoscaler/replica_calculator.go (GetResourceReplicas) and the HPA documentation's
"Algorithm details". All pods are assumed to request the same CPU.

Two upstream details decide results near the edges:

- the utilization is a whole percent, truncated (metrics/utilization.go, GetResourceUtilizationRatio:
  `currentUtilization = int32((metricsTotal * 100) / requestsTotal)`), and the usage ratio is that integer over the
  target percent;
- the tolerance is a band per direction, inclusive at both ends (`Tolerances.isWithin`:
  `1 - scaleDown <= ratio <= 1 + scaleUp`, the HPA's `behavior.scale{Up,Down}.tolerance` since Kubernetes 1.33).

Pure: no I/O, no clock, no Kubernetes client.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["DEFAULT_TOLERANCE", "ReplicaRecommendation", "Tolerance", "hpa_replicas", "utilization_percent"]

#: The controller-wide tolerance of kube-controller-manager (--horizontal-pod-autoscaler-tolerance).
DEFAULT_TOLERANCE = 0.1

# Usage and requests arrive as float cores; upstream divides whole millicores. A sum of millicores held in a float is
# off by far less than this, while the true quotient of two millicore sums is never this close below an integer.
_ROUNDING_SLACK = 1e-9


@dataclass(frozen=True)
class Tolerance:
    """How far the usage ratio may move from 1.0, per direction, before the HPA acts (inclusive at both ends)."""

    scale_up: float = DEFAULT_TOLERANCE
    scale_down: float = DEFAULT_TOLERANCE

    def __post_init__(self) -> None:
        for value in (self.scale_up, self.scale_down):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"tolerance must be a finite number >= 0, not {value!r}")

    @classmethod
    def of(cls, value: float | Tolerance) -> Tolerance:
        """A tolerance from one value for both directions (the controller-wide flag), or as given."""
        return value if isinstance(value, Tolerance) else cls(scale_up=value, scale_down=value)

    def is_within(self, ratio: float) -> bool:
        """Tolerances.isWithin: no change while 1 - scaleDown <= ratio <= 1 + scaleUp."""
        return (1.0 - self.scale_down) <= ratio <= (1.0 + self.scale_up)


@dataclass(frozen=True)
class ReplicaRecommendation:
    """What the replica calculator recommends, with the utilization it saw (share of the request, 1.0 = 100%)."""

    replicas: int
    utilization: float
    reason: str
    #: the utilization as upstream reports it (a whole percent, truncated); None when no pod reported
    utilization_percent: int | None = None


def utilization_percent(usage: float, requests: float) -> int:
    """GetResourceUtilizationRatio's currentUtilization: int32((metricsTotal * 100) / requestsTotal)."""
    return math.floor(usage * 100.0 / requests + _ROUNDING_SLACK)


def _target_percent(target_utilization: float) -> float:
    # upstream's target is an integer percent; 0.57 * 100 is 56.99999999999999 in floats, which would shift ceil()
    return round(target_utilization * 100.0, 6)


def hpa_replicas(
    *,
    current_replicas: int,
    usage: float,
    pods_with_metrics: int,
    target_utilization: float,
    request_per_pod: float = 1.0,
    missing_pods: int = 0,
    unready_pods: int = 0,
    tolerance: float | Tolerance = DEFAULT_TOLERANCE,
) -> ReplicaRecommendation:
    """The HPA's recommendation before behavior and min/max (GetResourceReplicas).

    `usage` is the summed CPU usage (cores) of the `pods_with_metrics` ready pods that reported. `missing_pods` are
    ready pods with no metric yet; `unready_pods` are pods not ready. `target_utilization` is a share of the request
    (0.7 = 70%). `tolerance` is one value for both directions or a `Tolerance` per direction.
    """
    if target_utilization <= 0 or request_per_pod <= 0:
        raise ValueError("target utilization and CPU request must be positive")
    band = Tolerance.of(tolerance)
    if pods_with_metrics <= 0:
        # upstream returns an error here and the HPA keeps the current count
        return ReplicaRecommendation(current_replicas, math.nan, "no pod reported metrics; keeping the current count")
    target = _target_percent(target_utilization)
    utilization = usage / (pods_with_metrics * request_per_pod)
    percent = utilization_percent(usage, pods_with_metrics * request_per_pod)
    ratio = percent / target
    scale_up_with_unready = unready_pods > 0 and ratio > 1.0
    if not scale_up_with_unready and missing_pods == 0:
        if band.is_within(ratio):
            return ReplicaRecommendation(
                current_replicas, utilization,
                f"utilization {percent}% is within tolerance of the {target:g}% target", percent,
            )
        return ReplicaRecommendation(
            math.ceil(ratio * pods_with_metrics), utilization,
            f"utilization {percent}% against a target of {target:g}%", percent,
        )

    # Re-run the ratio with conservative guesses for the pods that did not report, as upstream does.
    counted = pods_with_metrics
    new_usage = usage
    if missing_pods > 0:
        if ratio < 1.0:
            fallback = max(100.0, target) / 100.0
            new_usage += missing_pods * request_per_pod * fallback
            counted += missing_pods
        elif ratio > 1.0:
            counted += missing_pods
    if scale_up_with_unready:
        counted += unready_pods
    new_ratio = utilization_percent(new_usage, counted * request_per_pod) / target
    if band.is_within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return ReplicaRecommendation(
            current_replicas, utilization,
            "pods without metrics would reverse or cancel the change; keeping the current count", percent,
        )
    new_replicas = math.ceil(new_ratio * counted)
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (new_ratio > 1.0 and new_replicas < current_replicas):
        return ReplicaRecommendation(current_replicas, utilization, "change would go against the usage ratio", percent)
    return ReplicaRecommendation(
        new_replicas, utilization,
        f"utilization {percent}% against a target of {target:g}% (pods without metrics counted)", percent,
    )
