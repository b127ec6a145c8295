"""Controller benchmark: per-shard cycle time, CPU, API writes and memory against the simulated cluster.

Each run starts the sim in its own process (`aihpa sim serve`), creates the Deployments there, and runs ONE
controller in a fresh child process, so its figures (wall and CPU time, RSS) are the controller's alone. With
`--shards 4` the child is shard 0 of a 4-shard layout: against 4x the Deployments it keeps and acts on its quarter,
which is the per-shard load of a 1-shard run of a quarter the size. Sizes and shard counts pair up in order
(`--sizes 10000,40000 --shards 1,4`: 10,000 on 1 shard, then 40,000 on 4); one size runs on every shard count.

What one run does, and prints:
- `runtime MB`: RSS after importing the controller, loading the shipped model and one warm forecast, before any
  workload (the model serves with NumPy: whether JAX was ever imported is printed beside it);
- `sync s`: the first list of the Deployments until the cache is synced;
- `first s`: the first model step (every workload forecast, decided, its first status written, those whose count is
  off scaled) -- a cold start, paced by the client's rate limit (200 writes/s after a burst of 2,000);
- then every workload is given its own copy of a policy state aged three days (`_aged_state`: the calibration
  windows full), so that memory and the steps below are measured at steady state, not on empty windows;
- `settle`: model steps run until at most 2% of the workloads change replicas in one;
- `step s` / `CPU s` / `changed` / `writes`: the measured model step, where `--changing` (10%) of the shard's
  workloads were given a floor 3 above their count (`aihpa/min-replicas`, written through the API as a user would),
  so that share, and about only that share, changes replicas (the count is printed);
- `last scale s`: from the step's start to its last scale write;
- `between s` / `CPU s` / `writes`: a sync inside the model step (metrics and the reactive safety net only);
- `RSS MB`: steady, peak over the process's life (the cold start and the ageing included) and peak in the steady
  cycles (settling, the measured step and sync; Linux's VmHWM, reset before them); `per 1k MB`: the RSS the
  workloads add over the runtime, per 1,000 of them;
- the time each measured cycle spent in the cyclic garbage collector. The child sets the collector as `aihpa
  controller` does (`aihpa.controller.process`); `--gc default` measures with CPython's own thresholds instead.

    .venv/bin/python benchmarks/bench_controller.py [--sizes 10000,40000] [--shards 1,4] [--changing 0.1]
        [--profile DIR]

`--profile DIR` writes the controller's cProfile of the measured model step and sync (`step.prof`, `between.prof`,
read them with `python -m pstats`); the profiler slows what it measures, so its run's times are not the figures.

The machine's load (`uptime`) is printed beside the figures: on a shared machine they move with it.
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import math
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

DEMAND_ANNOTATION = "sim.aihpa.io/demand-cores"


def _name(i: int) -> str:
    return f"bench-{i:05d}"


def _demand(i: int) -> float:
    return 0.2 + (i % 7) * 0.1


def _deployment(i: int) -> dict[str, Any]:
    name = _name(i)
    labels = {"app": name, "aihpa/enabled": "true"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels, "annotations": {DEMAND_ANNOTATION: f"{_demand(i):.1f}"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                                       "resources": {"requests": {"cpu": "500m"},
                                                                     "limits": {"cpu": "1"}}}]}}},
    }


def _rss_mb() -> float:
    """The process's resident memory now (not its peak)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _reset_peak() -> bool:
    """Start the kernel's count of the peak RSS afresh (Linux: /proc/self/clear_refs), so that `_peak_mb` reads the
    peak since now; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def _peak_mb() -> float:
    """The peak RSS since the last `_reset_peak` (VmHWM)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return math.nan


async def _bounded(jobs: list[Any], limit: int) -> None:
    sem = asyncio.Semaphore(limit)

    async def one(job: Any) -> None:
        async with sem:
            await job

    await asyncio.gather(*(one(j) for j in jobs))


# ---- the child: one controller ------------------------------------------------------------------------------------


async def _child(kubeconfig: str, size: int, shards: int, changing: float,
                 profile: str | None = None, gc_mode: str = "controller") -> dict[str, Any]:
    rss_start = _rss_mb()
    from aihpa.controller.process import tune_garbage_collector

    if gc_mode == "controller":
        tune_garbage_collector()  # as `aihpa controller` does at start
    gc_time = _collector_clock()
    from aihpa.forecast.forecaster import load_default_forecaster

    forecaster = load_default_forecaster()
    per_shard = size // shards
    forecaster.predict(np.full((per_shard, 1500), 0.3, dtype=np.float32))  # one warm forecast of the shard's batch
    rss_runtime = _rss_mb()

    from aihpa.clock import VirtualClock
    from aihpa.controller import Controller, ControllerSettings
    from aihpa.k8s import KubeClient, api_client
    from aihpa.metrics import MetricsAPISource
    from aihpa.observability import ControllerMetrics

    class Timed(ControllerMetrics):
        """The controller's metrics, and the time of the last scale write (the benchmark's "time to last scale")."""

        last_scale = 0.0

        def on_write(self, kind: str) -> None:
            super().on_write(kind)
            if kind == "scale":
                self.last_scale = time.perf_counter()

    metrics = Timed()

    def writes() -> dict[str, float]:
        return {s.labels["kind"]: s.value for m in metrics.api_writes.collect() for s in m.samples
                if s.name.endswith("_total")}

    def delta(before: dict[str, float]) -> dict[str, int]:
        return {k: int(v - before.get(k, 0)) for k, v in writes().items() if v - before.get(k, 0)}

    def throttled() -> float:
        return float(sum(s.value for m in metrics.api_throttle.collect() for s in m.samples if s.name.endswith("_sum")))

    api = await api_client(kubeconfig=kubeconfig)
    out: dict[str, Any] = {"size": size, "shards": shards, "rss_start_mb": rss_start, "rss_runtime_mb": rss_runtime}
    async with api:
        kube = KubeClient(api)  # the product's defaults: 200 writes/s after a burst of 2,000
        setup = KubeClient(api, qps=None)  # the benchmark's own writes (the new floors): not the controller's
        settings = ControllerSettings(identity="bench", leader_election=False, run_loop=False, namespace="default",
                                      publish_every_s=1e12, shards=shards, shard=0)
        # the controller's time, stepped by the benchmark: one second into a model step, so that each step's cycle
        # opens a new model step and the sync 15 s later stays inside it
        clock = VirtualClock(start=math.floor(time.time() / settings.step_s) * settings.step_s + 1.0)
        controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster,
                                settings=settings, clock=clock, observability=metrics)
        t0 = time.perf_counter()
        async with controller:
            await controller.wait_synced(timeout_s=600)
            out["sync_s"] = time.perf_counter() - t0
            owned = len(controller.workloads)
            out["owned"] = owned
            rng = np.random.default_rng(0)
            now = clock.now()
            step = settings.step_s
            base = 0.3 + 0.1 * np.sin(np.arange(1500) * 2 * np.pi / 1440)
            for key in controller.workloads:
                controller.history.backfill(key, start=now - step * 1501, values=base + rng.normal(0, 0.02, 1500))
            out["rss_loaded_mb"] = _rss_mb()

            async def cycle(advance: float, name: str | None = None) -> dict[str, Any]:
                clock.advance(advance)
                before, waited = writes(), throttled()
                metrics.last_scale = 0.0
                profiler = None
                if profile and name:
                    import cProfile

                    profiler = cProfile.Profile()
                    profiler.enable()
                cpu0, t0, gc0 = time.process_time(), time.perf_counter(), gc_time()
                report = await controller.run_cycle()
                wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(str(Path(profile or ".", f"{name}.prof")))
                return {"wall_s": wall, "cpu_s": cpu, "gc_s": gc_time() - gc0,
                        "changed": sum(d.applied for d in report.decisions),
                        "writes": delta(before), "throttled_s": throttled() - waited,
                        "last_scale_s": metrics.last_scale - t0 if metrics.last_scale else None}

            out["first"] = await cycle(step)
            out["rss_settled_mb"] = _rss_mb()
            # the controller's own state at steady state: every workload's policy state as after three days of model
            # steps (the calibration windows full), each its own copy, so that memory and the steps below are
            # measured as in a controller that has run for days, not on empty windows
            t_age = time.perf_counter()
            aged = _aged_state(controller, forecaster, settings, clock.now())
            for w in controller.workloads.values():
                w.state = copy.deepcopy(aged)
            out["age_s"] = time.perf_counter() - t_age
            out["aged_scores"] = [len(c.log_ratios) for c in aged.calibrations]
            # the peak of the cycles from here on (settling, the measured step and sync), beside the peak of the
            # process's whole life (the cold start, with a first status for every workload, and the ageing above)
            reset = _reset_peak()
            settle = []
            for _ in range(4):
                r = await cycle(step)
                settle.append(r["changed"])
                if r["changed"] <= 0.02 * owned:
                    break
            out["settle_changed"] = settle
            out["rss_steady_mb"] = _rss_mb()

            # `changing` of the shard's workloads get a floor above their count (aihpa/min-replicas: current + 3),
            # written through the API as a user would: the next model step must carry each out, the rest hold
            raised = [w for i, w in enumerate(sorted(controller.workloads.values(), key=lambda w: w.key))
                      if i % round(1 / changing) == 0] if changing > 0 else []
            floors = {w.key: w.replicas + 3 for w in raised}
            await _bounded([setup.request(
                "PATCH", f"/apis/apps/v1/namespaces/{w.ref.namespace}/deployments/{w.ref.name}",
                body={"metadata": {"annotations": {"aihpa/min-replicas": str(floors[w.key])}}},
                content_type="application/merge-patch+json") for w in raised], 64)
            await controller.wait_until(  # the watch has brought every new floor
                lambda: all(controller.workloads[k].parsed.policy.min_replicas == v for k, v in floors.items()),
                timeout_s=120)
            out["raised"] = len(raised)
            out["step"] = await cycle(step, "step")
            out["between"] = await cycle(settings.sync_period_s, "between")
            out["rss_steady_peak_mb"] = _peak_mb() if reset else math.nan
    out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["jax_loaded"] = "jax" in sys.modules
    return out


def _collector_clock() -> Any:
    """A clock of the time spent in the cyclic garbage collector so far (seconds)."""
    import gc

    spent = {"total": 0.0, "start": 0.0}

    def on_collect(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            spent["start"] = time.perf_counter()
        else:
            spent["total"] += time.perf_counter() - spent["start"]

    gc.callbacks.append(on_collect)
    return lambda: spent["total"]


def _aged_state(controller: Any, forecaster: Any, settings: Any, now: float) -> Any:
    """The policy state of the first workload after three days of model steps (a noisy daily cycle, the forecast its
    median plus a band), decided by the workload's own policy."""
    from aihpa.scaling import Observation, PredictiveState
    from aihpa.scaling.prior import prior_of

    w = next(iter(controller.workloads.values()))
    policy = controller.policies.predictive(w, settings=settings, min_history=forecaster.min_history,
                                            prior=prior_of(forecaster))
    rng = np.random.default_rng(1)
    quantiles = np.asarray(forecaster.quantiles, dtype=np.float32)
    state, replicas, steps = PredictiveState(), 2, 3 * 1440
    for i in range(steps):
        usage = max(0.05, 0.6 + 0.4 * np.sin(2 * np.pi * i / 1440) + rng.normal(0, 0.05))
        obs = Observation(usage=min(usage, replicas * 1.0), pods_with_metrics=replicas, current_replicas=replicas,
                          now=now - (steps - i) * settings.step_s, history_len=1500, capacity_per_pod=1.0)
        forecast = np.tile(usage + (quantiles - 0.5) * 0.2, (forecaster.horizon, 1))
        decision, state = policy.decide(obs, state, forecast=forecast, quantiles=forecaster.quantiles)
        replicas = decision.replicas
    return state


# ---- the parent: the sim, the Deployments, the child --------------------------------------------------------------


async def _run(size: int, shards: int, changing: float, concurrency: int, profile: str | None,
               gc_mode: str) -> dict[str, Any]:
    from aihpa.k8s import KubeClient, api_client

    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp, "kubeconfig")
        sim = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aihpa.cli", "sim", "serve", "--kubeconfig-out", str(kubeconfig),
            "--startup-seconds", "0", "--pod-capacity", str(max(10_000, 10 * size)), stdout=asyncio.subprocess.PIPE)
        try:
            assert sim.stdout is not None
            await asyncio.wait_for(sim.stdout.readline(), 60)
            api = await api_client(kubeconfig=str(kubeconfig))
            async with api:
                kube = KubeClient(api, qps=None)
                t0 = time.perf_counter()
                await _bounded([kube.request("POST", "/apis/apps/v1/namespaces/default/deployments",
                                             body=_deployment(i)) for i in range(size)], concurrency)
                create_s = time.perf_counter() - t0
            child = await asyncio.create_subprocess_exec(
                sys.executable, __file__, "--child", str(kubeconfig), "--sizes", str(size), "--shards", str(shards),
                "--changing", str(changing), "--gc", gc_mode, *(["--profile", profile] if profile else []),
                stdout=asyncio.subprocess.PIPE)
            stdout, _ = await child.communicate()
            if child.returncode != 0:
                raise RuntimeError(f"the controller's run failed ({child.returncode})")
            result: dict[str, Any] = json.loads(stdout.decode().strip().splitlines()[-1])
            result["create_s"] = create_s
            return result
        finally:
            sim.send_signal(signal.SIGTERM)
            await asyncio.wait_for(sim.wait(), 60)


def _load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _writes(w: dict[str, int]) -> str:
    return f"{sum(w.values())} ({', '.join(f'{k} {v}' for k, v in sorted(w.items()))})" if w else "0"


def _print(r: dict[str, Any]) -> None:
    first, step, between = r["first"], r["step"], r["between"]
    rss_per_k = (r["rss_steady_mb"] - r["rss_runtime_mb"]) / (r["owned"] / 1000)
    print(f"{r['size']:>7} Deployments, {r['shards']} shard(s): this shard holds {r['owned']}")
    print(f"  memory: start {r['rss_start_mb']:.0f} MB, runtime + model {r['rss_runtime_mb']:.0f} MB "
          f"(JAX {'loaded' if r['jax_loaded'] else 'never loaded'}), with the "
          f"workloads {r['rss_settled_mb']:.0f} MB, with their states aged three days ({r['aged_scores']} scores) "
          f"{r['rss_steady_mb']:.0f} MB, peak {r['rss_peak_mb']:.0f} MB (in the steady cycles "
          f"{r['rss_steady_peak_mb']:.0f} MB); "
          f"{rss_per_k:.1f} MB per 1,000 aged workloads over the runtime")
    print(f"  sync {r['sync_s']:.2f} s; first model step {first['wall_s']:.2f} s ({first['cpu_s']:.2f} CPU s, "
          f"{first['changed']} scaled, {first['throttled_s']:.1f} s throttled, writes {_writes(first['writes'])}); "
          f"settling steps changed {r['settle_changed']}")
    last = f"{step['last_scale_s']:.2f} s" if step["last_scale_s"] is not None else "none"
    print(f"  model step with {r['raised']} new floors: {step['wall_s']:.2f} s ({step['cpu_s']:.2f} CPU s, "
          f"{step['gc_s']:.2f} s collecting garbage), "
          f"{step['changed']} changed ({100 * step['changed'] / max(r['owned'], 1):.1f}%), last scale at {last}, "
          f"{step['throttled_s']:.1f} s throttled, writes {_writes(step['writes'])}")
    print(f"  sync inside the model step: {between['wall_s']:.2f} s ({between['cpu_s']:.2f} CPU s, "
          f"{between['gc_s']:.2f} s collecting garbage), "
          f"writes {_writes(between['writes'])}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="10000")
    parser.add_argument("--shards", default="1")
    parser.add_argument("--changing", type=float, default=0.1, help="share of workloads given a higher floor")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--gc", dest="gc_mode", choices=("controller", "default"), default="controller",
                        help="the collector's thresholds: the controller's (aihpa.controller.process) or CPython's")
    parser.add_argument("--profile", metavar="DIR", help="write cProfile stats of the measured step and sync here")
    parser.add_argument("--child", metavar="KUBECONFIG", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    shards = [int(s) for s in args.shards.split(",")]
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child, sizes[0], shards[0], args.changing, args.profile,
                                           args.gc_mode))))
        return
    runs = list(zip(sizes, shards, strict=True)) if len(sizes) == len(shards) else \
        [(n, s) for n in sizes for s in shards]
    results = []
    for size, n_shards in runs:
        print(f"[{_load()}]", flush=True)
        if args.profile:
            Path(args.profile).mkdir(parents=True, exist_ok=True)
        r = asyncio.run(_run(size, n_shards, args.changing, args.concurrency,
                             str(Path(args.profile).resolve()) if args.profile else None, args.gc_mode))
        _print(r)
        results.append(r)
    one = next((r for r in results if r["shards"] == 1), None)
    for r in results:
        if one is not None and r is not one:
            ratio = {
                "model step CPU": r["step"]["cpu_s"] / one["step"]["cpu_s"],
                "sync-in-step CPU": r["between"]["cpu_s"] / one["between"]["cpu_s"],
                "RSS": r["rss_steady_mb"] / one["rss_steady_mb"],
                "peak RSS": r["rss_peak_mb"] / one["rss_peak_mb"],
                "writes per step": sum(r["step"]["writes"].values()) / max(sum(one["step"]["writes"].values()), 1),
            }
            print(f"{r['shards']} shards / 1 shard, per shard: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratio.items()))
    print(f"[{_load()}]")
    print("targets at 10,000 on one shard: sync in a model step <= 1 s, a model step with <= 10% changing <= 2 s, "
          "peak RSS <= 500 MB; 4 shards within 20% of 1 shard per shard")


if __name__ == "__main__":
    main()
