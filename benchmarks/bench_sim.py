"""Benchmark of the simulated cluster: a 1,000-Deployment list + watch and 10,000 Scale patches.

Runs the sim in its own process (`aihpa sim serve`, as the demo and later benchmarks do) and drives it over HTTP with
aiohttp, so the figures are the sim's, not a client library's. Prints the figures; exits non-zero if a watch missed
an event or a request failed.

    python benchmarks/bench_sim.py [--deployments 1000] [--patches 10000] [--concurrency 64] [--in-process]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import yaml

NS = "default"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"


def _deployment(name: str) -> dict[str, Any]:
    labels = {"app": name, "bench": "sim"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10",
                                                       "resources": {"requests": {"cpu": "100m"}}}]}}},
    }


@asynccontextmanager
async def _server(in_process: bool) -> AsyncIterator[str]:
    """The sim's base URL, served in a child process (default) or in this event loop."""
    if in_process:
        from aihpa.sim import Cluster

        async with Cluster() as cluster:
            yield cluster.url
        return
    with tempfile.TemporaryDirectory() as tmp:
        kubeconfig = Path(tmp, "kubeconfig")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "aihpa.cli", "sim", "serve", "--kubeconfig-out", str(kubeconfig),
            stdout=asyncio.subprocess.PIPE)
        try:
            assert proc.stdout is not None
            await asyncio.wait_for(proc.stdout.readline(), 60)
            config = yaml.safe_load(kubeconfig.read_text())  # noqa: ASYNC240 - a small file, written already
            yield str(config["clusters"][0]["cluster"]["server"])
        finally:
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(proc.wait(), 30)


async def _gather_limited(n: int, concurrency: int, fn: Any) -> list[float]:
    """Run fn(i) for i in range(n) with at most `concurrency` in flight; returns each call's latency."""
    latencies: list[float] = [0.0] * n
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)

    async def worker() -> None:
        while not queue.empty():
            i = queue.get_nowait()
            t0 = time.perf_counter()
            await fn(i)
            latencies[i] = time.perf_counter() - t0

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def bench(*, deployments: int, patches: int, concurrency: int, in_process: bool) -> int:
    connector = aiohttp.TCPConnector(limit=concurrency + 4)
    async with _server(in_process) as url, aiohttp.ClientSession(base_url=url, connector=connector) as http:
        async def create(i: int) -> None:
            async with http.post(DEPLOYMENTS, json=_deployment(f"bench-{i:05d}")) as resp:
                if resp.status != 201:
                    raise RuntimeError(f"create answered {resp.status}: {await resp.text()}")
                await resp.read()

        t0 = time.perf_counter()
        await _gather_limited(deployments, concurrency, create)
        create_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        async with http.get(DEPLOYMENTS, params={"labelSelector": "bench=sim"}) as resp:
            listed = await resp.json()
        list_s = time.perf_counter() - t0
        if len(listed["items"]) != deployments:
            raise RuntimeError(f"listed {len(listed['items'])} of {deployments} deployments")
        rv = listed["metadata"]["resourceVersion"]

        # watch from the list's resourceVersion while the patches run, until it has shown every deployment at its
        # final generation (one generation per effective scale change)
        final_generation: dict[str, int] = {}
        seen_generation: dict[str, int] = {}
        missing = 0
        seen_events = 0
        done = asyncio.Event()
        watch_ready = asyncio.Event()

        async def watch() -> None:
            nonlocal seen_events, missing
            params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "600"}
            async with http.get(DEPLOYMENTS, params=params) as resp:
                watch_ready.set()
                async for line in resp.content:
                    if not line.strip():
                        continue
                    seen_events += 1
                    meta = json.loads(line)["object"]["metadata"]
                    name, generation = meta["name"], meta["generation"]
                    if final_generation and seen_generation.get(name) != generation == final_generation[name]:
                        missing -= 1
                    seen_generation[name] = generation
                    if final_generation and missing == 0:
                        done.set()
                        return

        watcher = asyncio.create_task(watch())
        await asyncio.wait_for(watch_ready.wait(), 30)

        async def patch(i: int) -> None:
            name = f"bench-{i % deployments:05d}"
            replicas = 1 + (i // deployments) % 3
            async with http.patch(f"{DEPLOYMENTS}/{name}/scale", json={"spec": {"replicas": replicas}},
                                  headers={"Content-Type": "application/merge-patch+json"}) as resp:
                if resp.status != 200:
                    raise RuntimeError(f"scale patch answered {resp.status}: {await resp.text()}")
                await resp.read()

        t0 = time.perf_counter()
        latencies = await _gather_limited(patches, concurrency, patch)
        patch_s = time.perf_counter() - t0
        async with http.get(DEPLOYMENTS, params={"labelSelector": "bench=sim"}) as resp:
            final = await resp.json()
        final_generation.update({d["metadata"]["name"]: d["metadata"]["generation"] for d in final["items"]})
        missing = sum(1 for k, g in final_generation.items() if seen_generation.get(k) != g)
        if missing == 0:
            done.set()
        try:
            await asyncio.wait_for(done.wait(), 120)
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
        watch_s = time.perf_counter() - t0

        async with http.get("/api/v1/namespaces/default/pods", params={"limit": "1"}) as resp:
            pods = (await resp.json())["metadata"].get("remainingItemCount", 0) + 1

    where = "in-process" if in_process else "separate process"
    print(f"sim benchmark ({where}, concurrency {concurrency}, {os.cpu_count()} CPUs)")
    print(f"  create {deployments} deployments: {create_s:.2f} s ({deployments / create_s:,.0f}/s)")
    print(f"  list {deployments} deployments:   {list_s * 1000:.1f} ms ({len(json.dumps(listed)) / 1e6:.1f} MB)")
    print(f"  {patches} scale patches:          {patch_s:.2f} s ({patches / patch_s:,.0f}/s), "
          f"latency p50 {statistics.median(latencies) * 1000:.1f} ms, p99 {_pct(latencies, 0.99) * 1000:.1f} ms")
    print(f"  watch delivered {seen_events} events; last change seen {watch_s:.2f} s after the first patch "
          f"({seen_events / watch_s:,.0f} events/s)")
    print(f"  pods at the end: {pods}; load average {os.getloadavg()[0]:.1f}")
    return 0


async def bench_core(*, deployments: int, patches: int) -> None:
    """The same scale patches without HTTP: the cost of the sim's own semantics (store, patch, pods, status)."""
    from aihpa.sim import Cluster

    cluster = Cluster()  # never started: no listener, the Api is called directly
    rt = cluster.api.resolve("apps/v1", "Deployment")
    for i in range(deployments):
        await cluster.api.create(rt, _deployment(f"bench-{i:05d}"), namespace=NS)
    t0 = time.perf_counter()
    for i in range(patches):
        await cluster.api.patch(rt, {"spec": {"replicas": 1 + (i // deployments) % 3}},
                                patch_type="application/merge-patch+json", namespace=NS,
                                name=f"bench-{i % deployments:05d}", subresource="scale")
    core_s = time.perf_counter() - t0
    print(f"  without HTTP: {patches} scale patches in {core_s:.2f} s ({patches / core_s:,.0f}/s, "
          f"{core_s / patches * 1e6:.0f} us each, pods created and deleted included)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments", type=int, default=1000)
    parser.add_argument("--patches", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--in-process", action="store_true", help="serve the sim in the benchmark's own loop")
    args = parser.parse_args()
    code = asyncio.run(bench(deployments=args.deployments, patches=args.patches, concurrency=args.concurrency,
                             in_process=args.in_process))
    asyncio.run(bench_core(deployments=args.deployments, patches=args.patches))
    return code


if __name__ == "__main__":
    raise SystemExit(main())
