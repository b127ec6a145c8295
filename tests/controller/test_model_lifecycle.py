"""The controller challenges its model on live history in a worker and promotes a better one, with an Event."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
from flax import nnx
from kubernetes_asyncio.client import ApiClient

from aihpa.controller import Controller
from aihpa.forecast.checkpoint import load_checkpoint, save_checkpoint
from aihpa.forecast.config import TrainConfig
from aihpa.forecast.forecaster import BiLSTMForecaster
from aihpa.forecast.model import BiLSTM
from aihpa.k8s import KubeClient, RetrySettings
from aihpa.lifecycle import LifecycleSettings
from aihpa.metrics import MetricsAPISource
from aihpa.sim.cluster import Cluster
from aihpa.sim.testing import deployment_manifest
from tests.controller.conftest import SETTINGS, Rig, ScriptedForecaster
from tests.controller.test_cycle import _deploy
from tests.forecast.conftest import SMALL


@pytest.mark.slow
async def test_a_better_challenger_is_promoted_while_the_controller_runs(
    sim_cluster: Cluster, sim_api_client: ApiClient, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    save_checkpoint(models, model=BiLSTM(SMALL, rngs=nnx.Rngs(0)), model_cfg=SMALL, train_cfg=None, metrics={},
                    data=[], digest="untrained", created="2026-01-01T00:00:00", provenance={})
    champion = BiLSTMForecaster.from_checkpoint(models)
    start = sim_cluster.clock.now()
    sim_cluster.attach("default", "web", lambda t: 3.0 + 2.0 * math.sin(2 * math.pi * (t - start) / 1800.0))
    await sim_cluster.ensure_namespace("aihpa")
    await sim_cluster.create(deployment_manifest("web", replicas=12, cpu_request="500m", cpu_limit="1",
                                                 labels={"aihpa/enabled": "true"}))
    lifecycle = LifecycleSettings(
        models_dir=str(models), holdout_steps=40,
        train=TrainConfig(seed=0, batch_size=64, max_steps=80, eval_every=20, patience=3, progress=False),
    )
    settings = dataclasses.replace(SETTINGS, lifecycle=lifecycle, retrain_every_s=100 * 60.0)
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)))
    controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=champion, settings=settings,
                            clock=sim_cluster.clock)
    async with controller:
        await controller.wait_synced()
        await controller.wait_until(lambda: "default/web" in controller.workloads)
        for _ in range(101):
            await sim_cluster.advance(60)
            await controller.run_cycle()
        outcome = await controller.wait_for_challenge()
        await sim_cluster.advance(60)
        await controller.run_cycle()  # the next cycle forecasts with the new model and reports the promotion
    await sim_cluster.quiesce()
    assert outcome is not None and outcome.promoted, outcome
    assert controller.forecaster.version == outcome.challenger == load_checkpoint(models).version
    assert controller.forecaster.version != champion.version
    text = controller.metrics.render().decode()
    assert f'aihpa_model_info{{version="{outcome.challenger}"}} 1.0' in text
    assert 'aihpa_model_challenges_total{outcome="promoted"} 1.0' in text
    events = [e for e in sim_cluster.list("v1", "Event", "default") if e.get("reason") == "ModelPromoted"]
    assert events and outcome.challenger in events[0]["message"]


async def test_a_promoted_model_that_regresses_live_is_rolled_back(rig: Rig, tmp_path: Path) -> None:
    from aihpa.lifecycle import DriftMonitor

    rig.controller.settings = dataclasses.replace(rig.controller.settings,
                                                  lifecycle=LifecycleSettings(models_dir=str(tmp_path)))
    await _deploy(rig, "web", cores=2.0)
    previous = ScriptedForecaster()
    previous.version = "previous-1"  # type: ignore[misc]
    rig.controller.drift = DriftMonitor(window=5, ratio=1.5)
    rig.controller.drift.reference = 0.05  # the replaced model was within 5% live
    rig.controller.models.probation = previous
    rig.forecaster.value = 0.2  # the new model now forecasts a tenth of the real 2 cores
    await rig.cycles(12)
    assert rig.controller.forecaster is previous
    text = rig.controller.metrics.render().decode()
    assert 'aihpa_model_challenges_total{outcome="rolled-back"} 1.0' in text
    assert 'aihpa_model_info{version="previous-1"} 1.0' in text
    events = [e for e in rig.cluster.list("v1", "Event", "default") if e.get("reason") == "ModelRolledBack"]
    assert events and events[0]["type"] == "Warning" and "previous-1" in events[0]["message"]


async def test_a_promoted_model_that_holds_up_live_stays(rig: Rig, tmp_path: Path) -> None:
    from aihpa.lifecycle import DriftMonitor

    rig.controller.settings = dataclasses.replace(rig.controller.settings,
                                                  lifecycle=LifecycleSettings(models_dir=str(tmp_path)))
    await _deploy(rig, "web", cores=2.0)
    previous = ScriptedForecaster()
    rig.controller.drift = DriftMonitor(window=5, ratio=1.5)
    rig.controller.drift.reference = 0.5
    rig.controller.models.probation = previous
    rig.forecaster.value = 2.0  # right on
    await rig.cycles(12)
    assert rig.controller.forecaster is rig.forecaster
    assert rig.controller.models.probation is None


async def test_drift_starts_a_challenge_before_the_schedule(rig: Rig, tmp_path: Path) -> None:
    from aihpa.lifecycle import DriftMonitor

    models = tmp_path / "models"
    save_checkpoint(models, model=BiLSTM(SMALL, rngs=nnx.Rngs(0)), model_cfg=SMALL, train_cfg=None, metrics={},
                    data=[], digest="untrained", created="2026-01-01T00:00:00", provenance={})
    lifecycle = LifecycleSettings(models_dir=str(models), holdout_steps=10,
                                  train=TrainConfig(max_steps=5, eval_every=5, progress=False))
    rig.controller.settings = dataclasses.replace(rig.controller.settings, lifecycle=lifecycle,
                                                  retrain_every_s=1e9)
    rig.controller.forecaster = BiLSTMForecaster.from_checkpoint(models)
    await _deploy(rig, "web", cores=2.0)
    await rig.cycles(40)
    assert rig.controller.models.training is None  # not due, no drift
    rig.controller.drift = DriftMonitor(window=3, ratio=1.5)
    rig.controller.drift.reference = 1e-6  # everything from now on looks like drift
    await rig.cycles(25)  # the drift must last two holdout windows
    outcome = await rig.controller.wait_for_challenge()
    assert outcome is not None  # a challenge ran (promoted or refused: the trigger is what is tested)


async def test_a_drift_triggered_challenge_trains_on_the_steps_since_the_change_only(
    rig: Rig, tmp_path: Path
) -> None:
    from aihpa.lifecycle import DriftMonitor

    models = tmp_path / "models"
    save_checkpoint(models, model=BiLSTM(SMALL, rngs=nnx.Rngs(0)), model_cfg=SMALL, train_cfg=None, metrics={},
                    data=[], digest="untrained", created="2026-01-01T00:00:00", provenance={})
    lifecycle = LifecycleSettings(models_dir=str(models), holdout_steps=10, drift_train_steps=45,
                                  train=TrainConfig(max_steps=5, eval_every=5, progress=False))
    rig.controller.settings = dataclasses.replace(rig.controller.settings, lifecycle=lifecycle,
                                                  retrain_every_s=1e9)
    rig.controller.forecaster = BiLSTMForecaster.from_checkpoint(models)
    await _deploy(rig, "web", cores=2.0)
    await rig.cycles(60)  # a long history before the change
    seen: list[LifecycleSettings] = []
    original = rig.controller.models.challenge

    async def record(series: list, cfg: LifecycleSettings, *, created: str) -> None:  # type: ignore[type-arg]
        seen.append(cfg)
        await original(series, cfg, created=created)

    rig.controller.models.challenge = record  # type: ignore[method-assign]
    rig.controller.drift = DriftMonitor(window=3, ratio=1.5)
    rig.controller.drift.reference = 1e-6  # everything from now on looks like drift
    # the change is dated a monitor window before it is seen; 10 held out + 45 to train on after it
    await rig.cycles(50)
    assert not seen
    await rig.cycles(8)
    await rig.controller.wait_for_challenge()
    assert len(seen) == 1
    # trained on the steps since the change less the holdout: not on the 60 steps before it
    assert 45 <= seen[0].train_recent_steps <= 50
