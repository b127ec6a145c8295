"""History survives a restart through the history file; /healthz, /readyz and /metrics answer."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

from aihpa.controller import Controller, ControllerSettings
from aihpa.k8s import KubeClient
from aihpa.metrics import MetricsAPISource
from aihpa.observability import health_app
from tests.controller.conftest import SETTINGS, Rig, ScriptedForecaster
from tests.controller.test_cycle import _deploy


async def test_history_is_saved_and_restored_by_a_new_controller(rig: Rig, tmp_path: Path) -> None:
    from dataclasses import replace

    path = tmp_path / "history.json"
    rig.controller.settings = replace(rig.controller.settings, history_file=str(path), publish_every_s=60.0)
    await _deploy(rig, "web", cores=0.8)
    await rig.cycles(5)
    assert path.is_file()
    before = rig.controller.history.series("default/web")
    assert before is not None and len(before.values) >= 3
    again = Controller(client=rig.kube, metrics=MetricsAPISource(rig.kube), forecaster=ScriptedForecaster(),
                       settings=ControllerSettings(**{**SETTINGS.__dict__, "history_file": str(path)}),
                       clock=rig.cluster.clock)
    after = again.history.series("default/web")
    assert after is not None
    np.testing.assert_array_equal(after.values[: len(before.values)], before.values)


async def test_health_endpoints(rig: Rig) -> None:
    await _deploy(rig, "web", cores=0.8)
    await rig.cycles(2)
    c = rig.controller
    runner = web.AppRunner(health_app(c.metrics, healthy=c.healthy, ready=c.ready))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session:
            for path, status, text in (("/healthz", 200, "ok"), ("/readyz", 200, "caches synced"),
                                       ("/metrics", 200, "aihpa_workloads")):
                async with session.get(f"http://127.0.0.1:{port}{path}") as resp:
                    assert resp.status == status
                    assert text in await resp.text()
    finally:
        await runner.cleanup()


def test_a_controller_not_yet_synced_is_not_ready(rig: Rig) -> None:
    fresh = Controller(client=KubeClient(rig.kube.api), metrics=MetricsAPISource(rig.kube),
                       forecaster=ScriptedForecaster(), settings=SETTINGS)
    ok, why = fresh.ready()
    assert not ok and "waiting" in why
