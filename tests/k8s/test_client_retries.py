"""KubeClient: temporary failures are retried (honouring Retry-After), permanent ones are not."""

from __future__ import annotations

import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.k8s import KubeClient, NotFoundError, PermanentError, RetrySettings, TemporaryError
from aihpa.sim.cluster import Cluster
from aihpa.sim.faults import Fault
from aihpa.sim.testing import deployment_manifest

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


class RecordingClock:
    """Records the waits asked of it and returns at once."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def now(self) -> float:
        return 0.0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


async def test_throttling_is_retried_after_the_servers_retry_after(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    clock = RecordingClock()
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01, 0.01, 0.01)), clock=clock)
    await sim_cluster.create(deployment_manifest("web"))
    fault = sim_cluster.faults.add(Fault(verb="get", resource="deployments", status=429, retry_after=3, times=2))
    obj = await kube.get(f"{DEPLOYMENTS}/web")
    assert obj["metadata"]["name"] == "web"
    assert fault.fired == 2
    assert clock.waits == [3.0, 3.0]  # the server's Retry-After, not the 10 ms backoff


async def test_a_retry_after_longer_than_allowed_fails_at_once(sim_cluster: Cluster, kube: KubeClient) -> None:
    fault = sim_cluster.faults.add(Fault(verb="list", resource="deployments", status=429, retry_after=120, times=5))
    with pytest.raises(TemporaryError, match="429"):
        await kube.get(DEPLOYMENTS)
    assert fault.fired == 1


async def test_server_errors_are_retried_until_the_backoff_runs_out(sim_cluster: Cluster, kube: KubeClient) -> None:
    fault = sim_cluster.faults.add(Fault(verb="list", resource="deployments", status=503))
    with pytest.raises(TemporaryError, match="503"):
        await kube.get(DEPLOYMENTS)
    assert fault.fired == 4  # the first try and three retries
    sim_cluster.faults.remove(fault)
    assert (await kube.get(DEPLOYMENTS))["items"] == []


async def test_not_found_and_bad_requests_are_permanent_and_not_retried(
    sim_cluster: Cluster, kube: KubeClient
) -> None:
    with pytest.raises(NotFoundError, match="404"):
        await kube.get(f"{DEPLOYMENTS}/absent")
    with pytest.raises(PermanentError, match=r"400|422"):
        await kube.request("POST", DEPLOYMENTS, body={"apiVersion": "apps/v1", "kind": "Deployment"})
