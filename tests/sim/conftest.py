"""Fixtures for the simulated cluster's tests: the shared cluster fixtures, plus kubectl and schema validation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import kubernetes_validate
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


@pytest_asyncio.fixture
async def http(sim_cluster: Cluster) -> AsyncIterator[aiohttp.ClientSession]:
    """A raw HTTP session on `sim_cluster` (base URL set), for what typed clients cannot send."""
    async with aiohttp.ClientSession(base_url=sim_cluster.url) as session:
        yield session
