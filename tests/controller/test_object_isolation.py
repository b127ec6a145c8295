"""One object the controller cannot handle never stops it handling the others, and /readyz tells the truth about
its caches: not ready while no complete list backs them (on the simulated cluster)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient

from aihpa.annotations import ParsedPolicy, PolicyDefaults, parse_policy
from aihpa.controller import Controller
from aihpa.k8s import KubeClient, RetrySettings, WatchEvent
from aihpa.metrics import MetricsAPISource
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import SETTINGS, Rig, ScriptedForecaster

LABELS = {"aihpa/enabled": "true"}
# an aihpa/ key: the cache keeps only those of a Deployment's annotations (the slim object)
EXPLODE = "aihpa/test-explode"


def _manifest(name: str, **annotations: str) -> dict[str, Any]:
    return deployment_manifest(name, replicas=2, labels=LABELS, cpu_request="500m", cpu_limit="1",
                               annotations={"sim.aihpa.io/demand-cores": "0.8", **annotations})


def _exploding(annotations: Mapping[str, object] | None, *, defaults: PolicyDefaults) -> ParsedPolicy:
    """parse_policy, except that it fails on the objects a test marks: any exception in a handler, on demand."""
    if annotations and EXPLODE in annotations:
        raise RuntimeError("injected failure")
    return parse_policy(annotations, defaults=defaults)


def _object_errors(controller: Controller, reason: str) -> float:
    value = controller.metrics.registry.get_sample_value(
        "aihpa_object_errors_total", {"kind": "Deployment", "reason": reason})
    return value or 0.0


def _events(cluster: Cluster, reason: str, name: str) -> list[dict[str, Any]]:
    return [e for e in cluster.list("v1", "Event", "default")
            if e.get("reason") == reason and e["involvedObject"]["name"] == name]


@pytest_asyncio.fixture
async def kube(sim_cluster: Cluster, sim_api_client: ApiClient) -> AsyncIterator[KubeClient]:
    await sim_cluster.ensure_namespace("aihpa")
    yield KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    await sim_cluster.quiesce()


def _controller(cluster: Cluster, kube: KubeClient) -> Controller:
    return Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=ScriptedForecaster(), settings=SETTINGS,
                      clock=cluster.clock)


async def test_a_relist_manages_every_deployment_after_one_with_a_5000_digit_annotation(
    sim_cluster: Cluster, kube: KubeClient
) -> None:
    for name, extra in (("a", {}), ("b", {"aihpa/min-replicas": "1" * 5000, "aihpa/mode": "dry-run"}),
                        ("c", {})):
        await sim_cluster.create(_manifest(name, **extra))
    async with _controller(sim_cluster, kube) as controller:
        await controller.wait_synced()
        assert set(controller.workloads) == {"default/a", "default/b", "default/c"}
        assert controller.workloads["default/b"].parsed.policy.mode == "dry-run"
        assert controller.ready() == (True, "caches synced")
        await sim_cluster.advance(60)
        report = await controller.run_cycle()
        assert {d.key for d in report.decisions} == {"default/a", "default/b", "default/c"}
        text = controller.metrics.render().decode()
        assert 'aihpa_replicas{deployment="c",kind="desired",namespace="default"}' in text
        [warning] = _events(sim_cluster, "InvalidAnnotation", "b")
        assert warning["message"] == "aihpa/min-replicas is 5000 characters long (at most 256); using default 1"


async def test_a_deployment_that_fails_on_relist_is_reported_and_the_others_are_managed(
    sim_cluster: Cluster, kube: KubeClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aihpa.controller.cache.parse_policy", _exploding)
    for name in ("a", "b", "c"):
        await sim_cluster.create(_manifest(name, **({EXPLODE: "1"} if name == "b" else {})))
    async with _controller(sim_cluster, kube) as controller:
        await controller.wait_synced()
        assert set(controller.workloads) == {"default/a", "default/c"}
        assert controller.ready() == (True, "caches synced")  # the list was handled to its end
        assert _object_errors(controller, "RuntimeError") == 1
        await sim_cluster.advance(60)
        report = await controller.run_cycle()  # flushes the Events (b's pods turning ready fail it again)
        assert {d.key for d in report.decisions} == {"default/a", "default/c"}
        [event] = _events(sim_cluster, "HandlingFailed", "b")  # once, however often it failed in the cycle
        assert event["type"] == "Warning" and _object_errors(controller, "RuntimeError") >= 1
        assert event["message"] == ("aihpa cannot handle this Deployment (RuntimeError: injected failure); "
                                    "it keeps its last known state")


async def test_an_update_that_fails_keeps_the_last_good_state_and_the_watch_goes_on(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aihpa.controller.cache.parse_policy", _exploding)
    await rig.cluster.create(_manifest("web", **{"aihpa/mode": "dry-run"}))
    await rig.controller.wait_until(lambda: "default/web" in rig.controller.workloads)
    await rig.kube.request("PATCH", "/apis/apps/v1/namespaces/default/deployments/web",
                           body={"metadata": {"annotations": {EXPLODE: "1", "aihpa/mode": "reactive"}}},
                           content_type="application/merge-patch+json")
    await rig.controller.wait_until(lambda: _object_errors(rig.controller, "RuntimeError") == 1)
    assert rig.controller.workloads["default/web"].parsed.policy.mode == "dry-run"
    # the watch still delivers: a Deployment created afterwards is managed
    await rig.cluster.create(_manifest("next"))
    await rig.controller.wait_until(lambda: "default/next" in rig.controller.workloads)
    assert rig.controller.ready() == (True, "caches synced")


@pytest.mark.parametrize(("status", "says"), [(500, "deployments: list failed"),
                                              (403, "deployments: watch stopped")])
async def test_readyz_is_not_ready_while_a_relist_fails_and_ready_again_once_one_completes(
    rig: Rig, status: int, says: str
) -> None:
    controller = rig.controller
    assert controller.ready() == (True, "caches synced")
    failing = rig.cluster.faults.add(Fault(verb="list", resource="deployments", status=status))
    rig.cluster.faults.add(Fault(verb="watch", resource="deployments", status=410, times=1))
    rig.cluster.store.close_watchers()  # the watch ends, resumes to a 410 and lists again: the list fails
    await controller.wait_until(lambda: not controller.ready()[0])
    ok, why = controller.ready()
    assert not ok and why.startswith(says), why
    await rig.cluster.create(_manifest("during"))  # what the cache cannot know yet
    rig.cluster.faults.remove(failing)
    await controller.wait_until(lambda: controller.ready()[0])
    assert "default/during" in controller.workloads


async def test_readyz_is_not_ready_when_handling_a_list_is_cut_short(rig: Rig) -> None:
    def cut_short(event: WatchEvent) -> None:
        raise RuntimeError("cut short")

    await rig.controller.cache.dispatch(WatchEvent(type="SYNC"), cut_short, "deployments", "/apis/apps/v1/deployments")
    assert rig.controller.ready() == (False, "deployments: handling the list failed: RuntimeError")
