"""The simulated cluster's fixtures, and a KubeClient on it with fast retries."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from kubernetes_asyncio.client import ApiClient

from aihpa.k8s import KubeClient, RetrySettings
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import *  # noqa: F403


@pytest_asyncio.fixture
async def kube(sim_cluster: Cluster, sim_api_client: ApiClient) -> AsyncIterator[KubeClient]:
    """Real waits (tiny backoff) for retries: Retry-After is honoured in wall time; pods follow the virtual clock."""
    yield KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01, 0.01, 0.01), max_retry_after=1.0))
