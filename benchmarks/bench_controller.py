"""Controller benchmark: one full cycle for 1,000 and 10,000 labeled Deployments against the simulated cluster.

The sim runs in its own process (`aihpa sim serve`), so the figures are the controller's: wall time and CPU time of
one cycle (metrics for every workload, one batched Bi-LSTM forecast with the shipped model, a decision each, the
scale patches and status annotations it writes), and the process's peak RSS. Each workload starts with a day of
synthetic history so the forecast really runs. Targets: <= 2 s per cycle and <= 500 MB RSS at 10,000.

    .venv/bin/python benchmarks/bench_controller.py [--sizes 1000,10000] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _deployment(i: int) -> dict[str, Any]:
    name = f"bench-{i:05d}"
    labels = {"app": name, "aihpa/enabled": "true"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels,
                     "annotations": {"sim.aihpa.io/demand-cores": f"{0.2 + (i % 7) * 0.1:.1f}"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                                       "resources": {"requests": {"cpu": "500m"},
                                                                     "limits": {"cpu": "1"}}}]}}},
    }


async def _create_all(kube: Any, n: int, concurrency: int) -> None:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int) -> None:
        async with sem:
            await kube.request("POST", "/apis/apps/v1/namespaces/default/deployments", body=_deployment(i))

    await asyncio.gather(*(one(i) for i in range(n)))


async def run(size: int, concurrency: int) -> dict[str, float]:
    from aihpa.clock import VirtualClock
    from aihpa.controller import Controller, ControllerSettings
    from aihpa.forecast.forecaster import load_default_forecaster
    from aihpa.k8s import KubeClient, api_client
    from aihpa.metrics import MetricsAPISource

    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp, "kubeconfig")
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aihpa.cli", "sim", "serve", "--kubeconfig-out", str(kubeconfig),
            "--startup-seconds", "0", stdout=asyncio.subprocess.PIPE)
        try:
            assert sim.stdout is not None
            await asyncio.wait_for(sim.stdout.readline(), 60)
            api = await api_client(kubeconfig=str(kubeconfig))
            async with api:
                kube = KubeClient(api)
                t0 = time.perf_counter()
                await _create_all(kube, size, concurrency)
                create_s = time.perf_counter() - t0
                forecaster = load_default_forecaster()
                settings = ControllerSettings(identity="bench", leader_election=False, run_loop=False,
                                              namespace="default", publish_every_s=1e12)
                clock = VirtualClock(start=time.time())  # the controller's time: stepped by the benchmark
                controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster,
                                        settings=settings, clock=clock)
                async with controller:
                    await controller.wait_synced(timeout_s=120)
                    await controller.wait_until(lambda: len(controller.workloads) == size, timeout_s=120)
                    rng = np.random.default_rng(0)
                    now = time.time()
                    step = settings.step_s
                    for key, w in controller.workloads.items():
                        history = 0.3 + 0.1 * np.sin(np.arange(1500) * 2 * np.pi / 1440) + rng.normal(0, 0.02, 1500)
                        controller.history.backfill(key, start=now - step * 1501, values=history)
                        w.last_step_decided = None
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    report = await controller.run_cycle()
                    cycle_s, cycle_cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    # the next model step: every workload forecast and decided again, few counts change
                    clock.advance(step)
                    cpu0, t0 = time.process_time(), time.perf_counter()
                    steady = await controller.run_cycle()
                    steady_s, steady_cpu = time.perf_counter() - t0, time.process_time() - cpu0
                    # a sync inside the same model step: metrics and the reactive safety net only
                    clock.advance(settings.sync_period_s)
                    t0 = time.perf_counter()
                    await controller.run_cycle()
                    between_s = time.perf_counter() - t0
        finally:
            sim.send_signal(signal.SIGTERM)
            await asyncio.wait_for(sim.wait(), 60)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "size": size, "create_s": create_s, "cycle_s": cycle_s, "cycle_cpu_s": cycle_cpu, "between_s": between_s,
        "forecasted": report.forecasted, "applied": sum(d.applied for d in report.decisions), "rss_mb": rss_mb,
        "steady_s": steady_s, "steady_cpu_s": steady_cpu, "steady_applied": sum(d.applied for d in steady.decisions),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print("first: every workload scaled from 1 pod at once (a scale write, a status write and an Event each);")
    print("steady: the next model step, all forecast and decided again; between: a sync inside a model step")
    print(f"{'deployments':>11} {'first s':>8} {'(CPU s)':>8} {'scaled':>6} {'steady s':>9} {'(CPU s)':>8} "
          f"{'scaled':>6} {'between s':>9} {'peak RSS MB':>11}")
    for size in (int(s) for s in args.sizes.split(",")):
        r = asyncio.run(run(size, args.concurrency))
        print(f"{r['size']:>11} {r['cycle_s']:>8.2f} {r['cycle_cpu_s']:>8.2f} {r['applied']:>6} {r['steady_s']:>9.2f} "
              f"{r['steady_cpu_s']:>8.2f} {r['steady_applied']:>6} {r['between_s']:>9.2f} {r['rss_mb']:>11.0f}",
              flush=True)
    print("targets at 10,000: cycle <= 2 s, RSS <= 500 MB (peak RSS is the whole benchmark process)")


if __name__ == "__main__":
    main()
