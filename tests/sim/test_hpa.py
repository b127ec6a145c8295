"""The sim's HorizontalPodAutoscaler controller: it scales a Deployment on its own, every 15 virtual seconds."""

from __future__ import annotations

from typing import Any

import pytest

from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import deployment_manifest

from .conftest import assert_valid


def hpa_manifest(name: str, *, min_replicas: int = 1, max_replicas: int = 10, target: int = 70,
                 behavior: dict[str, Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
        "minReplicas": min_replicas,
        "maxReplicas": max_replicas,
        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": target}}}],
    }
    if behavior is not None:
        spec["behavior"] = behavior
    return {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name, "namespace": "default"}, "spec": spec}


async def _loaded(cluster: Cluster, *, cores: float, replicas: int = 2, **hpa: Any) -> None:
    """A Deployment (500m request, 1 core limit) under `cores` of demand, with an HPA; pods ready."""
    cluster.attach("default", "web", lambda _t: cores)
    await cluster.create(deployment_manifest("web", replicas=replicas))
    await cluster.create(hpa_manifest("web", **hpa))
    await cluster.advance(10)


async def _until_scaled(cluster: Cluster, old: int) -> int:
    """Advance 15 s at a time until the HPA changes the count (at most two rounds); returns the seconds taken."""
    for step in range(1, 3):
        await cluster.advance(15)
        if _replicas(cluster) != old:
            return step * 15
    raise AssertionError("the HPA did not act within two 15 s rounds")


def _replicas(cluster: Cluster) -> int:
    dep = cluster.get("apps/v1", "Deployment", "web")
    assert dep is not None
    return int(dep["spec"]["replicas"])


def _status(cluster: Cluster) -> dict[str, Any]:
    hpa = cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", "web")
    assert hpa is not None
    assert_valid(hpa)
    status: dict[str, Any] = hpa["status"]
    return status


async def test_an_hpa_scales_a_loaded_deployment_up_and_reports_why(sim_cluster: Cluster) -> None:
    # 3 cores over 2 pods capped at 1 core each: 200% of the 500m request, against a 70% target; `behavior: {}` asks
    # for the autoscaling/v2 default rules (an HPA without behavior takes the legacy path)
    await _loaded(sim_cluster, cores=3.0, behavior={})
    await _until_scaled(sim_cluster, 2)
    assert _replicas(sim_cluster) == 6  # ceil(2 × 200/70) = 6, within the default +4 pods per 15 s
    status = _status(sim_cluster)
    assert status["desiredReplicas"] == 6
    assert status["lastScaleTime"]
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["ScalingActive"]["status"] == "True"
    assert conditions["AbleToScale"]["status"] == "True"
    # later rounds see the new pods: 100% of the request over 6 pods -> 9, then 66% is within the tolerance
    await sim_cluster.advance(60)
    assert _replicas(sim_cluster) == 9
    # 3 cores over 9 × 500m is 66.7%: upstream reports the truncated whole percent (GetResourceUtilizationRatio)
    assert _status(sim_cluster)["currentMetrics"][0]["resource"]["current"]["averageUtilization"] == 66


async def test_the_hpa_keeps_the_count_within_min_and_max(sim_cluster: Cluster) -> None:
    await _loaded(sim_cluster, cores=20.0, max_replicas=4)
    await sim_cluster.advance(120)
    assert _replicas(sim_cluster) == 4
    limited = {c["type"]: c for c in _status(sim_cluster)["conditions"]}["ScalingLimited"]
    assert (limited["status"], limited["reason"]) == ("True", "TooManyReplicas")


async def test_the_hpa_raises_a_deployment_below_min_replicas(sim_cluster: Cluster) -> None:
    await _loaded(sim_cluster, cores=0.0, replicas=1, min_replicas=3)
    await sim_cluster.advance(30)
    assert _replicas(sim_cluster) == 3


async def test_scale_down_waits_for_the_300_s_stabilization_window(sim_cluster: Cluster) -> None:
    load = {"cores": 3.0}
    sim_cluster.attach("default", "web", lambda _t: load["cores"])
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    await sim_cluster.create(hpa_manifest("web", behavior={}))  # the v2 defaults: 300 s window, -100% per 15 s
    await sim_cluster.advance(10)
    await _until_scaled(sim_cluster, 2)
    assert _replicas(sim_cluster) == 6
    load["cores"] = 0.1
    dropped_after = None
    for step in range(1, 31):
        await sim_cluster.advance(15)
        if _replicas(sim_cluster) < 6:
            dropped_after = step * 15
            break
        if step > 2:  # once the pods report the low load, the status says why the count holds
            able = {c["type"]: c for c in _status(sim_cluster)["conditions"]}["AbleToScale"]
            assert able["reason"] == "ScaleDownStabilized", able
    # the last high recommendation came at most 15 s before the load fell: 285..330 s until it expires
    assert dropped_after is not None
    assert 285 <= dropped_after <= 330, dropped_after
    assert _replicas(sim_cluster) == 1  # -100% per 15 s: straight to the recommendation


async def test_an_hpa_without_a_cpu_utilization_target_is_left_alone(sim_cluster: Cluster) -> None:
    sim_cluster.attach("default", "web", lambda _t: 3.0)
    await sim_cluster.create(deployment_manifest("web", replicas=2))
    manifest = hpa_manifest("web")
    manifest["spec"]["metrics"][0]["resource"]["target"] = {"type": "AverageValue", "averageValue": "100m"}
    await sim_cluster.create(manifest)
    await sim_cluster.advance(60)
    assert _replicas(sim_cluster) == 2


# (name, spec.behavior, replicas after the first scale-up of 1 pod at 200% against a 10% target: recommendation 20)
FIRST_SCALE_UP = [
    # normalizeDesiredReplicas: calculateScaleUpLimit = max(2 × 1, 4)
    ("without_behavior_the_legacy_limit_applies", None, 4),
    # the v2 defaults filled in for an empty behavior: max(+100%, +4 pods) per 15 s
    ("an_empty_behavior_gets_the_v2_defaults", {}, 5),
    ("a_given_scale_up_policy_applies", {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 15}]}},
     2),
]


@pytest.mark.parametrize(("behavior", "expected"), [c[1:] for c in FIRST_SCALE_UP], ids=[c[0] for c in FIRST_SCALE_UP])
async def test_an_hpa_without_behavior_takes_the_legacy_path(
    sim_cluster: Cluster, behavior: dict[str, Any] | None, expected: int
) -> None:
    """horizontal.go reconcileAutoscaler: `if hpa.Spec.Behavior == nil` normalizeDesiredReplicas (legacy rules),
    else normalizeDesiredReplicasWithBehaviors (the autoscaling/v2 defaults fill what the behavior leaves out)."""
    await _loaded(sim_cluster, cores=20.0, replicas=1, target=10, max_replicas=50, behavior=behavior)
    await _until_scaled(sim_cluster, 1)
    assert _replicas(sim_cluster) == expected


async def test_a_deployment_scaled_to_zero_stays_paused(sim_cluster: Cluster) -> None:
    """horizontal.go reconcileAutoscaler: `scale.Spec.Replicas == 0 && minReplicas != 0` -> no rescale, condition
    ScalingActive False with reason ScalingDisabled."""
    await _loaded(sim_cluster, cores=3.0, min_replicas=2)
    await sim_cluster.scale("web", 0)
    await sim_cluster.advance(60)
    assert _replicas(sim_cluster) == 0
    status = _status(sim_cluster)
    active = {c["type"]: c for c in status["conditions"]}["ScalingActive"]
    assert (active["status"], active["reason"]) == ("False", "ScalingDisabled")
    assert (status["currentReplicas"], status["desiredReplicas"]) == (0, 0)


@pytest.mark.parametrize("behavior", [None, {}], ids=["legacy", "v2_defaults"])
async def test_a_count_above_max_goes_straight_to_max(sim_cluster: Cluster, behavior: dict[str, Any] | None) -> None:
    """horizontal.go reconcileAutoscaler: `currentReplicas > hpa.Spec.MaxReplicas` -> desiredReplicas = MaxReplicas,
    without the scale-down stabilization window that still remembers higher recommendations."""
    await _loaded(sim_cluster, cores=20.0, max_replicas=4, behavior=behavior)
    await sim_cluster.advance(30)
    assert _replicas(sim_cluster) == 4  # recommendations of up to 12 pods are now in the 300 s window
    await sim_cluster.scale("web", 9)
    await sim_cluster.advance(15)
    assert _replicas(sim_cluster) == 4


# (name, scaleUp tolerance, replicas after 2 pods at 65% against a 50% target: 1.3 is outside the default 0.1)
TOLERANCES = [
    ("default_tolerance_scales_up", None, 3),
    ("a_scale_up_tolerance_of_one_half_holds", "0.5", 2),
    ("a_milli_quantity_tolerance_holds", "500m", 2),
]


@pytest.mark.parametrize(("tolerance", "expected"), [c[1:] for c in TOLERANCES], ids=[c[0] for c in TOLERANCES])
async def test_the_hpa_reads_its_per_direction_tolerance(
    sim_cluster: Cluster, tolerance: str | None, expected: int
) -> None:
    """replica_calculator.go Tolerances.isWithin with the HPA's behavior.scaleUp.tolerance (KEP-4951), the
    controller-wide --horizontal-pod-autoscaler-tolerance where it is unset."""
    scale_up: dict[str, Any] = {} if tolerance is None else {"tolerance": tolerance}
    await _loaded(sim_cluster, cores=0.65, replicas=2, target=50, behavior={"scaleUp": scale_up})
    await sim_cluster.advance(45)
    assert _replicas(sim_cluster) == expected
