"""HTTPS: clients verify the sim with the CA from its kubeconfig, and refuse it without."""

from __future__ import annotations

import ssl

import aiohttp
import pytest
from kubernetes_asyncio import client

from aihpa.sim import Cluster
from aihpa.sim.testing import deployment_manifest


async def test_kubernetes_asyncio_talks_https_with_the_kubeconfig_ca(sim_tls_cluster: Cluster) -> None:
    assert sim_tls_cluster.url.startswith("https://127.0.0.1:")
    api = await sim_tls_cluster.api_client()
    async with api:
        apps = client.AppsV1Api(api)
        await apps.create_namespaced_deployment("default", deployment_manifest("web"))
        scale = await apps.read_namespaced_deployment_scale("web", "default")
    assert scale.spec.replicas == 1


async def test_a_client_without_the_ca_refuses_the_server(sim_tls_cluster: Cluster) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{sim_tls_cluster.url}/version", ssl=ssl.create_default_context())
    await sim_tls_cluster.quiesce()
