"""A controller wired to the simulated cluster, with a forecaster whose answers the test sets."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient

from aihpa.controller import Controller, ControllerSettings
from aihpa.k8s import KubeClient, RetrySettings, WatchSettings
from aihpa.metrics import MetricsAPISource
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import *  # noqa: F403


class ScriptedForecaster:
    """Forecasts `value` cores for every step and quantile (NaN to test the fallback); counts its calls."""

    version = "scripted-1"
    horizon = 15
    quantiles = (0.5, 0.9, 0.99)
    context = 32
    min_history = 3
    step_s = 60.0

    def __init__(self) -> None:
        self.value = 1.0
        self.calls: list[int] = []

    def predict(
        self,
        histories: Sequence[npt.ArrayLike] | npt.NDArray[np.floating],
        *,
        end_times: object = None,
        step_s: float | None = None,
    ) -> npt.NDArray[np.float32]:
        self.calls.append(len(histories))
        return np.full((len(histories), self.horizon, len(self.quantiles)), self.value, dtype=np.float32)


@dataclass
class Rig:
    cluster: Cluster
    controller: Controller
    forecaster: ScriptedForecaster
    kube: KubeClient

    async def cycles(self, n: int, *, every: float = 60.0) -> None:
        """Advance the virtual clock and run one cycle, n times."""
        for _ in range(n):
            await self.cluster.advance(every)
            await self.controller.run_cycle()


SETTINGS = ControllerSettings(
    identity="test", leader_election=False, run_loop=False, namespace="aihpa",
    watch=WatchSettings(timeout_seconds=30, inactivity_timeout=10.0, backoff=(0.01,)),
)


@pytest_asyncio.fixture
async def rig(sim_cluster: Cluster, sim_api_client: ApiClient) -> AsyncIterator[Rig]:
    await sim_cluster.ensure_namespace("aihpa")
    # retries wait in real time (10 ms): a retry inside a cycle must not wait on the virtual clock the test steps
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    forecaster = ScriptedForecaster()
    controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster, settings=SETTINGS,
                            clock=sim_cluster.clock)
    async with controller:
        await controller.wait_synced()
        yield Rig(cluster=sim_cluster, controller=controller, forecaster=forecaster, kube=kube)
    await sim_cluster.quiesce()


@pytest.fixture
def no_warmup_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    """The controller's policies without the warm-up bound, for tests about acting on a scripted forecast at once
    (the bound keeps a workload without scores of its own near the fallback HPA: see test_cold_start.py)."""
    import aihpa.controller.deciding as deciding

    build = deciding.predictive_policy  # type: ignore[attr-defined]

    def unbounded(**kwargs: Any) -> Any:
        return replace(build(**kwargs), warmup_margin=None)

    monkeypatch.setattr(deciding, "predictive_policy", unbounded)

