"""The controller with the shipped Bi-LSTM on a real trace replayed by the simulated cluster."""

from __future__ import annotations

import json

import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.controller import Controller
from aihpa.forecast.cli import embedded_trace_path
from aihpa.forecast.forecaster import load_default_forecaster
from aihpa.k8s import KubeClient, RetrySettings
from aihpa.metrics import MetricsAPISource
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import deployment_manifest
from aihpa.traces import load_trace
from tests.controller.conftest import SETTINGS


@pytest.mark.slow
async def test_the_bilstm_drives_scaling_of_a_replayed_trace(sim_cluster: Cluster, sim_api_client: ApiClient) -> None:
    trace = load_trace(embedded_trace_path())
    # one sample per minute, peak about 6 cores
    sim_cluster.attach("default", "web", trace, scale=6.0 / float(trace.values.max()), step_s=60.0)
    await sim_cluster.ensure_namespace("aihpa")
    await sim_cluster.create(deployment_manifest("web", replicas=1, cpu_request="500m", cpu_limit="1",
                                                 labels={"aihpa/enabled": "true"}))
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    forecaster = load_default_forecaster()
    controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster, settings=SETTINGS,
                            clock=sim_cluster.clock)
    async with controller:
        await controller.wait_synced()
        await controller.wait_until(lambda: "default/web" in controller.workloads)
        kinds = []
        for _ in range(45):
            await sim_cluster.advance(60)
            report = await controller.run_cycle()
            kinds.extend(d.decision.reason for d in report.decisions)
    await sim_cluster.quiesce()
    dep = sim_cluster.get("apps/v1", "Deployment", "web", "default")
    assert dep is not None
    status = json.loads(dep["metadata"]["annotations"]["aihpa/status"])
    assert status["model"] == forecaster.version
    assert status["forecast"] is not None and status["forecast"]["peak"]["p99"] > 0
    assert any("forecast peak" in k for k in kinds[-10:])
    # about 4-6 cores of demand over pods that may use their 1-core limit: well above the single starting pod
    assert dep["spec"]["replicas"] >= 4
