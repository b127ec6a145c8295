"""Beside an existing HPA: with `aihpa/with-hpa: floor` aihpa raises and lowers the HPA's minReplicas ahead of load
(never below the user's own minimum, never above the HPA's maximum), the simulated cluster's HPA controller keeps
scaling, and the user's minimum comes back when the workload stops coexisting or the controller stops."""

from __future__ import annotations

from typing import Any

import pytest

from aihpa.k8s.client import MERGE_PATCH
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import Rig

LABELS = {"aihpa/enabled": "true"}
HPAS = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"


async def _deploy_with_hpa(rig: Rig, *, floor: bool, min_replicas: int = 2, max_replicas: int = 20) -> None:
    annotations = {"sim.aihpa.io/demand-cores": "0.8"}
    if floor:
        annotations["aihpa/with-hpa"] = "floor"
    await rig.cluster.create(deployment_manifest("web", replicas=2, labels=LABELS, cpu_request="500m", cpu_limit="1",
                                                 annotations=annotations))
    await rig.cluster.create({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web-hpa", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": min_replicas, "maxReplicas": max_replicas,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}}}]},
    })
    await rig.controller.wait_until(lambda: "default/web" in rig.controller.workloads
                                    and "default/web" in rig.controller.hpa_targets)


def _hpa(rig: Rig) -> dict[str, Any]:
    hpa = rig.cluster.get("autoscaling/v2", "HorizontalPodAutoscaler", "web-hpa", "default")
    assert hpa is not None
    return hpa


def _replicas(rig: Rig) -> int:
    dep = rig.cluster.get("apps/v1", "Deployment", "web", "default")
    assert dep is not None
    return int(dep["spec"]["replicas"])


@pytest.mark.usefixtures("no_warmup_bound")
async def test_the_floor_follows_the_forecast_and_the_hpa_keeps_scaling_above_it(rig: Rig) -> None:
    await _deploy_with_hpa(rig, floor=True)
    rig.forecaster.value = 7.0  # 7 cores coming, a pod may use 1 core: a floor of 7 before the load is there
    await rig.cycles(5)
    await rig.cluster.advance(30.0)  # two syncs of the simulated HPA controller
    hpa = _hpa(rig)
    assert hpa["spec"]["minReplicas"] == 7
    assert hpa["metadata"]["annotations"]["aihpa/original-min-replicas"] == "2"
    # the sim's HPA controller honours its new minimum; aihpa itself never wrote the scale
    assert _replicas(rig) == 7
    events = [e for e in rig.cluster.list("v1", "Event", "default") if e.get("reason") == "HPAFloorSet"]
    assert [e for e in events if "-> 7 (aihpa's count 7, within the user's 2..20" in e["message"]]
    assert not [e for e in rig.cluster.list("v1", "Event", "default") if e.get("reason") in ("Scaled", "HPAConflict")]
    # the forecast falls: the floor comes down, never below the user's own minimum
    rig.forecaster.value = 0.2
    await rig.cycles(4)
    assert _hpa(rig)["spec"]["minReplicas"] == 2
    # a forecast above the HPA's maximum is capped there
    rig.forecaster.value = 70.0
    await rig.cycles(3)
    assert _hpa(rig)["spec"]["minReplicas"] == 20


@pytest.mark.usefixtures("no_warmup_bound")
async def test_the_users_minimum_comes_back_when_the_workload_stops_coexisting(rig: Rig) -> None:
    await _deploy_with_hpa(rig, floor=True, min_replicas=3)
    rig.forecaster.value = 6.0
    await rig.cycles(5)
    assert _hpa(rig)["spec"]["minReplicas"] == 6
    # the annotation goes away: at the next model step the HPA gets its 3 back and loses aihpa's note
    await rig.kube.request("PATCH", "/apis/apps/v1/namespaces/default/deployments/web",
                           body={"metadata": {"annotations": {"aihpa/with-hpa": None}}}, content_type=MERGE_PATCH)
    await rig.controller.wait_until(
        lambda: rig.controller.workloads["default/web"].parsed.policy.with_hpa == "skip")
    await rig.cycles(2)
    hpa = _hpa(rig)
    assert hpa["spec"]["minReplicas"] == 3
    assert "aihpa/original-min-replicas" not in (hpa["metadata"].get("annotations") or {})


@pytest.mark.usefixtures("no_warmup_bound")
async def test_the_users_minimum_comes_back_when_the_controller_stops(rig: Rig) -> None:
    await _deploy_with_hpa(rig, floor=True)
    rig.forecaster.value = 5.0
    await rig.cycles(5)
    assert _hpa(rig)["spec"]["minReplicas"] == 5
    await rig.controller.stop()
    hpa = _hpa(rig)
    assert hpa["spec"]["minReplicas"] == 2
    assert "aihpa/original-min-replicas" not in (hpa["metadata"].get("annotations") or {})


@pytest.mark.usefixtures("no_warmup_bound")
async def test_without_the_annotation_an_hpa_target_is_left_alone(rig: Rig) -> None:
    await _deploy_with_hpa(rig, floor=False)
    rig.forecaster.value = 7.0
    await rig.cycles(3)
    assert _hpa(rig)["spec"]["minReplicas"] == 2
    warnings = [e for e in rig.cluster.list("v1", "Event", "default") if e.get("reason") == "HPAConflict"]
    assert len(warnings) == 1 and "aihpa/with-hpa=floor" in warnings[0]["message"]


@pytest.mark.usefixtures("no_warmup_bound")
async def test_the_users_minimum_comes_back_when_the_label_goes_away(rig: Rig) -> None:
    await _deploy_with_hpa(rig, floor=True, min_replicas=3)
    rig.forecaster.value = 6.0
    await rig.cycles(5)
    assert _hpa(rig)["spec"]["minReplicas"] == 6
    await rig.kube.request("PATCH", "/apis/apps/v1/namespaces/default/deployments/web",
                           body={"metadata": {"labels": {"aihpa/enabled": None}}}, content_type=MERGE_PATCH)
    await rig.controller.wait_until(lambda: "default/web" not in rig.controller.workloads)
    await rig.cycles(2)
    hpa = _hpa(rig)
    assert hpa["spec"]["minReplicas"] == 3
    assert "aihpa/original-min-replicas" not in (hpa["metadata"].get("annotations") or {})
