"""The controller cycle on the simulated cluster: scale ahead of load, explain it, and stay safe on bad input."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from aihpa.controller import forecasting
from aihpa.sim.faults import Fault
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import Rig

LABELS = {"aihpa/enabled": "true"}


async def _deploy(rig: Rig, name: str, *, cores: float, replicas: int = 2, **annotations: str) -> dict[str, Any]:
    manifest = deployment_manifest(name, replicas=replicas, labels=LABELS, cpu_request="500m", cpu_limit="1",
                                   annotations={"sim.aihpa.io/demand-cores": str(cores), **annotations})
    obj = await rig.cluster.create(manifest)
    await rig.controller.wait_until(lambda: f"default/{name}" in rig.controller.workloads)
    return obj


def _deployment(rig: Rig, name: str) -> dict[str, Any]:
    dep = rig.cluster.get("apps/v1", "Deployment", name, "default")
    assert dep is not None
    return dep


def _events(rig: Rig, reason: str) -> list[dict[str, Any]]:
    return [e for e in rig.cluster.list("v1", "Event", "default") if e.get("reason") == reason]


@pytest.mark.usefixtures("no_warmup_bound")
async def test_scales_up_to_the_forecast_before_the_load_arrives(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8)  # 0.8 cores today over 2 pods of 0.5: the HPA wants ~3
    # the forecast says 7 cores are coming; a pod may use its 1-core limit (not its 0.5-core request, and no 70%
    # target on top): 7 pods, in one step (the forecast sized the count: no scale-up rate limit below max)
    rig.forecaster.value = 7.0
    await rig.cycles(10)
    dep = _deployment(rig, "web")
    assert dep["spec"]["replicas"] == 7
    status = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
    assert status["model"] == "scripted-1" and status["replicas"] == 7
    assert "forecast peak" in status["reason"] and status["forecast"]["peak"]["p99"] == 7.0
    assert "7.00 cores" in status["reason"]  # the reason speaks in cores, whatever the pods' request
    # the candidate the policy acts on: the calibrated HPA comes first, with the forecast's top quantile standing in
    # while it has too few scores
    assert status["candidate"] == "hpa" and "while calibrating" in status["reason"]
    messages = [e["message"] for e in _events(rig, "Scaled")]
    final = [m for m in messages if "-> 7:" in m]
    assert len(final) == 1 and "forecast peak" in final[0]
    assert rig.forecaster.calls and all(n == 1 for n in rig.forecaster.calls)


async def test_all_workloads_are_forecast_in_one_call_per_model_step(rig: Rig) -> None:
    for name in ("a", "b", "c"):
        await _deploy(rig, name, cores=0.5)
    await rig.cycles(5)
    calls_before = len(rig.forecaster.calls)
    assert rig.forecaster.calls[-1] == 3
    # three more syncs inside the same model step: no new forecast
    await rig.cycles(3, every=15.0)
    assert len(rig.forecaster.calls) <= calls_before + 1


async def test_a_model_step_forecasts_in_chunks_and_a_failed_chunk_costs_only_its_own_forecasts(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Histories are read a chunk at a time (memory follows the chunk): five workloads, chunks of two, are three
    calls of 2, 2 and 1 rows; a chunk the model fails on leaves its two workloads without a forecast this step
    (decided reactively), the others keep theirs, and the failure is counted once."""
    monkeypatch.setattr(forecasting, "CHUNK", 2)
    for i in range(5):
        await _deploy(rig, f"w{i}", cores=0.5)
    await rig.cycles(5)
    assert rig.forecaster.calls[-3:] == [2, 2, 1]
    predict = rig.forecaster.predict
    rows: list[int] = []

    def second_fails(histories, **kwargs):  # type: ignore[no-untyped-def]
        rows.append(len(histories))
        if len(rows) == 2:
            raise RuntimeError("model broke")
        return predict(histories, **kwargs)

    rig.forecaster.predict = second_fails  # type: ignore[method-assign]
    errors = rig.controller.metrics.errors.labels(kind="forecast")._value.get()
    await rig.cycles(1)
    assert rows == [2, 2, 1]
    assert sum(w.forecast is not None for w in rig.controller.workloads.values()) == 3
    assert rig.controller.metrics.errors.labels(kind="forecast")._value.get() == errors + 1


async def test_dry_run_decides_and_reports_but_never_patches(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8, **{"aihpa/mode": "dry-run"})
    rig.forecaster.value = 7.0
    await rig.cycles(5)
    dep = _deployment(rig, "web")
    assert dep["spec"]["replicas"] == 2
    status = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
    # it would scale now as far as the rate limit allows, and says so
    assert status["mode"] == "dry-run" and status["replicas"] > 2 and "forecast peak" in status["reason"]
    assert not _events(rig, "Scaled")


async def test_a_missing_metric_never_scales_down(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.2, replicas=6)
    rig.forecaster.value = 0.1  # the forecast says almost nothing is coming
    rig.cluster.faults.add(Fault(group="metrics.k8s.io", status=503))
    await rig.cycles(6)
    assert _deployment(rig, "web")["spec"]["replicas"] == 6
    status = json.loads(_deployment(rig, "web")["metadata"]["annotations"]["aihpa/status"])
    assert "metrics unavailable" in status["reason"]


async def test_a_nan_forecast_falls_back_to_the_reactive_hpa(rig: Rig) -> None:
    await _deploy(rig, "web", cores=2.1, replicas=2)
    rig.forecaster.value = float("nan")
    await rig.cycles(5)
    dep = _deployment(rig, "web")
    status = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
    assert "fallback" in status["reason"] and "not finite" in status["reason"]
    # reactive: 2.1 cores need 2.1 / (0.5 x 0.7) = 6 pods (once they report)
    assert dep["spec"]["replicas"] >= 4


async def test_a_deployment_that_an_hpa_targets_is_left_alone(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8)
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                 "minReplicas": 1, "maxReplicas": 10},
    }
    await rig.cluster.create(hpa)
    await rig.controller.wait_until(lambda: "default/web" in rig.controller.hpa_targets)
    rig.forecaster.value = 7.0
    await rig.cycles(5)
    assert _deployment(rig, "web")["spec"]["replicas"] == 2
    warnings = _events(rig, "HPAConflict")
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"


@pytest.mark.usefixtures("no_warmup_bound")
async def test_a_bad_annotation_gets_a_warning_event_and_the_default(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8, **{"aihpa/max-replicas": "lots"})
    rig.forecaster.value = 170.0  # would need 170 pods of a 1-core limit: the default max of 100 applies
    await rig.cycles(12)
    warnings = _events(rig, "InvalidAnnotation")
    assert warnings and "aihpa/max-replicas" in warnings[0]["message"]
    assert _deployment(rig, "web")["spec"]["replicas"] == 100


@pytest.mark.usefixtures("no_warmup_bound")
async def test_metrics_endpoint_explains_the_decisions(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8)
    rig.forecaster.value = 7.0
    await rig.cycles(10)
    text = rig.controller.metrics.render().decode()
    assert 'aihpa_forecast_cores{deployment="web",namespace="default",quantile="p99"} 7.0' in text
    assert 'aihpa_replicas{deployment="web",kind="desired",namespace="default"} 7.0' in text
    assert 'aihpa_decisions_total{reason="forecast"}' in text
    assert "aihpa_cycle_duration_seconds_count" in text
    assert 'aihpa_model_info{version="scripted-1"} 1.0' in text


async def test_replica_profiles_are_published_for_the_webhook(rig: Rig) -> None:
    from aihpa.profiles import InMemoryProfileSource

    await _deploy(rig, "web", cores=0.8)
    rig.forecaster.value = 7.0
    await rig.cycles(10)
    written = await rig.controller.publish_profiles(now=rig.cluster.clock.now())
    assert written >= 1
    maps = [cm for cm in rig.cluster.list("v1", "ConfigMap", "aihpa")
            if (cm["metadata"].get("labels") or {}).get("aihpa/profiles") == "true"]
    data = {k: v for cm in maps for k, v in (cm.get("data") or {}).items()}
    source, errors = InMemoryProfileSource.from_configmap_data(data)
    assert not errors
    profile = source.by_workload("default", "web")
    assert profile is not None and profile.model_version == "scripted-1"
    assert profile.replicas_at(rig.cluster.clock.now()) == _deployment(rig, "web")["spec"]["replicas"]


async def test_a_standby_replica_decides_but_never_writes(rig: Rig) -> None:
    from dataclasses import replace

    rig.controller.settings = replace(rig.controller.settings, leader_election=True)  # and it holds no lease
    await _deploy(rig, "web", cores=0.8)
    rig.forecaster.value = 7.0
    await rig.cycles(6)
    dep = _deployment(rig, "web")
    assert dep["spec"]["replicas"] == 2
    assert "aihpa/status" not in (dep["metadata"].get("annotations") or {})
    assert not _events(rig, "Scaled")
    assert "aihpa_leader 0.0" in rig.controller.metrics.render().decode()


async def test_between_model_steps_the_fallback_hpa_adds_pods_at_its_own_target(rig: Rig) -> None:
    await _deploy(rig, "web", cores=1.0)  # 2 pods of a 0.5-core request and a 1-core limit
    rig.forecaster.value = math.nan  # no forecast to trust: the policy falls back on the HPA at its 70% target
    await rig.cycles(3)
    assert _deployment(rig, "web")["spec"]["replicas"] == 3  # 1 core / (0.5 x 0.7) = 2.9
    now = rig.cluster.clock.now()
    await rig.cluster.advance(60.0 - now % 60.0 + 1.0)  # just past a model step's start
    await rig.controller.run_cycle()
    surge = rig.cluster.clock.now()
    rig.cluster.attach("default", "web", lambda t: 2.0 if t >= surge else 1.0)
    # two syncs inside the same model step: the safety net is the rule in force, the HPA at 70%, which wants
    # 2 cores / (0.5 x 0.7) = 6 pods; the HPA at what pods may use (1 core each) would see 3 pods enough
    await rig.cycles(2, every=15.0)
    assert math.floor(rig.cluster.clock.now() / 60.0) == math.floor(surge / 60.0)
    assert _deployment(rig, "web")["spec"]["replicas"] == 6
    assert [e for e in _events(rig, "Scaled") if "-> 6:" in e["message"] and "safety" in e["message"]]


async def test_the_slo_is_reported_as_risk_and_realized_share_in_the_status_and_the_metrics(rig: Rig) -> None:
    # 3 cores of demand on 2 pods that may use 1 core each: the first steps are short of CPU
    await _deploy(rig, "web", cores=3.0, **{"aihpa/saturation-risk": "0.02"})
    rig.forecaster.value = 3.0
    await rig.cycles(6)
    # the share is in the status from the first step, in the metrics after an hour of steps
    assert not [line for line in rig.controller.metrics.render().decode().splitlines()
                if line.startswith("aihpa_saturated_share{")]
    await rig.cycles(55)
    status = json.loads(_deployment(rig, "web")["metadata"]["annotations"]["aihpa/status"])
    slo = status["slo"]
    assert slo["risk"] == 0.02 and slo["steps"] >= 1 and 0.0 < slo["saturated_share"] < 1.0
    text = rig.controller.metrics.render().decode()
    assert 'aihpa_saturation_risk{deployment="web",namespace="default"} 0.02' in text
    share = [line for line in text.splitlines() if line.startswith('aihpa_saturated_share{deployment="web"')]
    assert len(share) == 1 and 0.0 < float(share[0].split()[-1]) < 1.0
