"""Model life cycle in the controller, measured on the simulated cluster.

1. Worker isolation: the controller's cycle latency for N workloads (shipped Bi-LSTM, metrics from the sim) with no
   training running, then while a challenger fine-tunes in the worker thread; printed as medians and their ratio.
2. A retraining episode: one workload whose demand changes shape mid-run (drift injected: a 30-minute cycle becomes a
   faster, larger one), the shipped model as champion; prints when drift was flagged, the challenge outcome, and the
   live relative error of the median forecast before the change, after it, and after a promotion.

    .venv/bin/python benchmarks/bench_lifecycle.py [--workloads 200] [--part all|isolation|episode]
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import tempfile
import time
from pathlib import Path


async def isolation(workloads: int) -> None:
    from aihpa.controller import Controller, ControllerSettings
    from aihpa.forecast.config import TrainConfig
    from aihpa.forecast.forecaster import load_default_forecaster
    from aihpa.k8s import KubeClient
    from aihpa.lifecycle import LifecycleSettings
    from aihpa.metrics import MetricsAPISource
    from aihpa.sim import Cluster
    from aihpa.sim.testing import deployment_manifest

    async with Cluster() as cluster:
        start = cluster.clock.now()
        for i in range(workloads):
            name = f"w{i:04d}"
            cluster.attach("default", name, lambda t, i=i: 2.0 + math.sin((t - start) / 600.0 + i))
            await cluster.create(deployment_manifest(name, replicas=4, labels={"aihpa/enabled": "true"}))
        await cluster.ensure_namespace("aihpa")
        async with await cluster.api_client() as api:
            kube = KubeClient(api)
            with tempfile.TemporaryDirectory() as models:
                lifecycle = LifecycleSettings(models_dir=models, holdout_steps=30,
                                              train=TrainConfig(max_steps=400, eval_every=100, progress=False))
                settings = ControllerSettings(leader_election=False, run_loop=False, lifecycle=lifecycle,
                                              retrain_every_s=1e12)
                controller = Controller(client=kube, metrics=MetricsAPISource(kube), settings=settings,
                                        forecaster=load_default_forecaster(), clock=cluster.clock)
                async with controller:
                    await controller.wait_synced(timeout_s=60)
                    await controller.wait_until(lambda: len(controller.workloads) == workloads, timeout_s=60)

                    async def cycles(n: int) -> list[float]:
                        out = []
                        for _ in range(n):
                            await cluster.advance(60)
                            t0 = time.perf_counter()
                            await controller.run_cycle()
                            out.append(time.perf_counter() - t0)
                        return out

                    await cycles(100)  # history for the model and for training
                    quiet = await cycles(10)
                    series = controller.models.training_series()
                    training = asyncio.create_task(controller.models.challenge(series, lifecycle, created="bench"))
                    busy = []
                    while not training.done() and len(busy) < 60:
                        busy.extend(await cycles(1))
                    await training
        q, b = statistics.median(quiet), statistics.median(busy)
        print(f"cycle latency, {workloads} workloads: {q * 1e3:.0f} ms without training, {b * 1e3:.0f} ms while a "
              f"challenger trains ({len(busy)} cycles measured; ratio {b / q:.2f}x)")


async def episode() -> None:
    from aihpa.controller import Controller, ControllerSettings
    from aihpa.forecast.checkpoint import save_checkpoint
    from aihpa.forecast.forecaster import BiLSTMForecaster, load_default_forecaster
    from aihpa.k8s import KubeClient
    from aihpa.lifecycle import DriftMonitor, LifecycleSettings
    from aihpa.metrics import MetricsAPISource
    from aihpa.sim import Cluster
    from aihpa.sim.testing import deployment_manifest

    async with Cluster() as cluster:
        start = cluster.clock.now()
        change_at = start + 240 * 60

        def demand(t: float) -> float:
            if t < change_at:
                return 3.0 + 1.0 * math.sin(2 * math.pi * (t - start) / 1800)
            return 6.0 + 4.0 * math.sin(2 * math.pi * (t - start) / 600)  # the workload changed: drift

        cluster.attach("default", "web", demand)
        await cluster.create(deployment_manifest("web", replicas=16, cpu_request="500m", cpu_limit="1",
                                                 labels={"aihpa/enabled": "true"}))
        await cluster.ensure_namespace("aihpa")
        with tempfile.TemporaryDirectory() as tmp:
            models = Path(tmp, "models")
            shipped = load_default_forecaster()
            # a writable models directory that starts with the shipped model as champion
            save_checkpoint(models, model=shipped.model, model_cfg=shipped.config, train_cfg=None, metrics={},
                            data=[], digest=str(shipped.metadata.get("data_digest")), created="0",
                            provenance={"copied_from": shipped.version})
            lifecycle = LifecycleSettings(models_dir=str(models), holdout_steps=30, train_recent_steps=120,
                                          drift_train_steps=120)
            settings = ControllerSettings(leader_election=False, run_loop=False, lifecycle=lifecycle,
                                          retrain_every_s=1e12)
            async with await cluster.api_client() as api:
                kube = KubeClient(api)
                controller = Controller(client=kube, metrics=MetricsAPISource(kube), settings=settings,
                                        forecaster=BiLSTMForecaster.from_checkpoint(models), clock=cluster.clock)
                controller.drift = DriftMonitor(window=20, ratio=1.5)
                flagged = promoted_at = None
                levels: dict[str, tuple[float, str]] = {}
                marks = {235: "before the change (minutes 215-235)", 300: "after the change (minutes 280-300)",
                         600: "end of the run (minutes 580-600)"}
                async with controller:
                    await controller.wait_synced()
                    await controller.wait_until(lambda: "default/web" in controller.workloads)
                    for minute in range(1, 601):
                        await cluster.advance(60)
                        await controller.run_cycle()
                        if minute == 200:
                            controller.drift.reset()  # the reference: the champion's error before the change
                        if flagged is None and controller.models.training is not None:
                            flagged = minute
                            # lock-step: the simulated clock waits for the challenge (its real time is measured
                            # above, in the isolation run)
                            outcome = await controller.wait_for_challenge(timeout_s=600)
                            if outcome is not None and outcome.promoted:
                                promoted_at = minute
                        if minute in marks:
                            # the monitor's own measure: realized step usage against last step's median forecast
                            recent = list(controller.drift.recent)
                            levels[marks[minute]] = (statistics.mean(recent) if recent else math.nan,
                                                     controller.forecaster.version)
                    if controller.models.training is not None:
                        await controller.wait_for_challenge(timeout_s=600)
        print(f"drift injected at minute 240; drift-triggered challenge at minute {flagged}"
              + (f", challenger in use from minute {promoted_at}" if promoted_at else ""))
        for c in controller.challenges:
            print(f"challenge: {'PROMOTED' if c.promoted else 'refused'} — {c.reason}")
        for label, (e, v) in levels.items():
            print(f"  live relative error of the median forecast, {label}: {e:.3f} (model {v})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", type=int, default=200)
    parser.add_argument("--part", choices=("all", "isolation", "episode"), default="all")
    args = parser.parse_args()
    if args.part in ("all", "isolation"):
        asyncio.run(isolation(args.workloads))
    if args.part in ("all", "episode"):
        asyncio.run(episode())


if __name__ == "__main__":
    main()

