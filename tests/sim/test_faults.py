"""Fault injection: errors, throttling, slow answers, dropped watches and an unavailable metrics API, on demand."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest
from kubernetes_asyncio import client
from kubernetes_asyncio.client.exceptions import ApiException

from aihpa.sim import Cluster, Fault
from aihpa.sim.testing import deployment_manifest

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
SCALE = f"{DEPLOYMENTS}/web/scale"
MERGE = {"Content-Type": "application/merge-patch+json"}


async def test_conflict_on_scale_patch_fires_the_configured_number_of_times(
    sim_cluster: Cluster, sim_api_client: client.ApiClient
) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    sim_cluster.faults.add(Fault(verb="patch", resource="deployments/scale", status=409, times=1))
    apps = client.AppsV1Api(sim_api_client)
    with pytest.raises(ApiException) as info:
        await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 2}})
    assert info.value.status == 409
    ok = await apps.patch_namespaced_deployment_scale("web", "default", {"spec": {"replicas": 2}})
    assert ok.spec.replicas == 2
    # the main resource was never affected
    assert (await apps.read_namespaced_deployment("web", "default")).spec.replicas == 2


async def test_throttling_answers_429_with_retry_after(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    sim_cluster.faults.inject(verb="list", resource="deployments", status=429, retry_after=3,
                              message="too many requests")
    async with http.get(DEPLOYMENTS) as resp:
        body = await resp.json()
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "3"
    assert body["reason"] == "TooManyRequests"
    assert body["details"]["retryAfterSeconds"] == 3


@pytest.mark.parametrize(("code", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable")])
async def test_server_errors_are_injected_per_verb(
    sim_cluster: Cluster, http: aiohttp.ClientSession, code: int, reason: str
) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    sim_cluster.faults.inject(verb="get", group="apps", status=code)
    async with http.get(f"{DEPLOYMENTS}/web") as resp:
        assert resp.status == code
        assert (await resp.json())["reason"] == reason
    async with http.get(DEPLOYMENTS) as resp:  # list is another verb
        assert resp.status == 200


async def test_slow_answers_are_delayed(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    sim_cluster.faults.inject(verb="list", delay=0.3, times=1)
    loop = asyncio.get_running_loop()
    began = loop.time()
    async with http.get(DEPLOYMENTS) as resp:
        assert resp.status == 200
    assert loop.time() - began >= 0.3


async def test_watch_stream_is_dropped_after_some_events(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    for name in ("a", "b", "c", "d"):
        await sim_cluster.create(deployment_manifest(name))
    sim_cluster.faults.inject(verb="watch", resource="deployments", drop_after_events=2, times=1)
    async with http.get(DEPLOYMENTS, params={"watch": "true", "timeoutSeconds": "30"}) as resp:
        lines = [json.loads(line) async for line in resp.content if line.strip()]
    assert [e["object"]["metadata"]["name"] for e in lines] == ["a", "b"]
    await sim_cluster.quiesce()


async def test_watch_connection_can_be_cut_without_a_clean_end(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    await sim_cluster.create(deployment_manifest("a"))
    sim_cluster.faults.inject(verb="watch", drop_after_events=1, abort=True)
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.get(DEPLOYMENTS, params={"watch": "true", "timeoutSeconds": "30"}) as resp:
            async for _ in resp.content:
                pass
    await sim_cluster.quiesce()


async def test_watch_resume_can_be_told_its_resource_version_expired(
    sim_cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    sim_cluster.faults.inject(verb="watch", status=410, times=1)
    rv = str(sim_cluster.store.resource_version)
    async with http.get(DEPLOYMENTS, params={"watch": "true", "resourceVersion": rv}) as resp:
        events = [json.loads(line) async for line in resp.content if line.strip()]
    assert resp.status == 200
    assert [(e["type"], e["object"]["code"]) for e in events] == [("ERROR", 410)]


async def test_metrics_api_can_be_made_unavailable(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    path = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods"
    fault = sim_cluster.faults.metrics_unavailable()
    async with http.get(path) as resp:
        assert resp.status == 503
        assert (await resp.json())["reason"] == "ServiceUnavailable"
    async with http.get(DEPLOYMENTS) as resp:
        assert resp.status == 200
    sim_cluster.faults.remove(fault)
    async with http.get(path) as resp:
        assert resp.status == 200


async def test_faults_match_by_namespace_and_name(sim_cluster: Cluster, http: aiohttp.ClientSession) -> None:
    await sim_cluster.create(deployment_manifest("web"))
    await sim_cluster.create(deployment_manifest("api"))
    sim_cluster.faults.inject(resource="deployments/*", namespace="default", name="web", status=500)
    async with http.patch(SCALE, json={"spec": {"replicas": 2}}, headers=MERGE) as resp:
        assert resp.status == 500
    async with http.patch(f"{DEPLOYMENTS}/api/scale", json={"spec": {"replicas": 2}}, headers=MERGE) as resp:
        assert resp.status == 200


def test_faults_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="verb"):
        Fault(verb="fetch")
    with pytest.raises(ValueError, match="status"):
        Fault(status=200)
