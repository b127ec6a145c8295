"""Webhook benchmark: /mutate over TLS on loopback with keep-alive, at fixed rates and at saturation.

The server is `aihpa webhook` in its own process pinned to one core; this load generator runs pinned to another, so
neither starves the other unnoticed: each phase prints the CPU share each side used of its core, and flags a phase
whose generator was the bottleneck. Fixed-rate phases are open loop (requests start on schedule whatever the answers
do), and latency is measured from the scheduled start, so a stalled server cannot hide its queueing. Every request is
the labeled-Deployment CREATE review (the mutating path). Target: p99 <= 5 ms at 1,000 req/s on 2 cores.

    .venv/bin/python benchmarks/bench_webhook.py [--rates 200 1000] [--duration 10] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from aihpa.profiles import InMemoryProfileSource, ReplicaProfile
from aihpa.webhook import certs

ROOT = Path(__file__).resolve().parents[1]
REVIEW = ROOT / "webhooks" / "fixtures" / "create-labeled.json"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Phase:
    name: str
    sent: int
    errors: int
    wall_s: float
    latencies_s: list[float]
    server_cpu_s: float
    client_cpu_s: float

    def report(self, *, target_rate: float | None = None) -> str:
        lat = sorted(self.latencies_s) or [float("nan")]
        p50 = lat[len(lat) // 2] * 1e3
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1e3
        rate = len(self.latencies_s) / self.wall_s
        server_share = self.server_cpu_s / self.wall_s
        client_share = self.client_cpu_s / self.wall_s
        # CPU per answer barely depends on contention, unlike latency: it is the figure to compare across machines.
        per_request_ms = self.server_cpu_s / max(1, len(self.latencies_s)) * 1e3
        notes = []
        if client_share > 0.9:
            notes.append("generator-bound: its core was saturated")
        behind = target_rate is not None and rate < 0.95 * target_rate
        if server_share < 0.8 and (behind or target_rate is None) and p99 > 10 * per_request_ms:
            notes.append("server starved: it queued work yet got under 80% of its core (other load on the machine?)")
        return (
            f"{self.name:>14}: {rate:7.0f} req/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  max {lat[-1] * 1e3:7.2f} ms"
            f"  errors {self.errors}/{self.sent}  server {server_share:4.0%} of a core, {per_request_ms:.3f} ms CPU/req"
            f"  generator {client_share:4.0%}" + "".join(f"  [{n}]" for n in notes)
        )


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def _self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _one(session: aiohttp.ClientSession, url: str, body: bytes) -> bool:
    async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as resp:
        payload = await resp.read()
        return resp.status == 200 and b'"patchType":"JSONPatch"' in payload


async def fixed_rate(
    session: aiohttp.ClientSession, url: str, body: bytes, *, rate: float, duration_s: float, server_pid: int
) -> Phase:
    total = int(rate * duration_s)
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()

    async def fire(scheduled: float) -> None:
        nonlocal errors
        try:
            ok = await _one(session, url, body)
        except (aiohttp.ClientError, OSError):
            ok = False
        if ok:
            latencies.append(loop.time() - scheduled)
        else:
            errors += 1

    server0, client0 = _process_cpu_s(server_pid), _self_cpu_s()
    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(fire(scheduled)))
    await asyncio.gather(*tasks)
    wall = loop.time() - start
    return Phase(
        f"{rate:.0f} req/s",
        total,
        errors,
        wall,
        latencies,
        _process_cpu_s(server_pid) - server0,
        _self_cpu_s() - client0,
    )


async def saturation(
    session: aiohttp.ClientSession, url: str, body: bytes, *, concurrency: int, duration_s: float, server_pid: int
) -> Phase:
    latencies: list[float] = []
    errors = 0
    sent = 0
    loop = asyncio.get_running_loop()
    end = loop.time() + duration_s

    async def worker() -> None:
        nonlocal errors, sent
        while loop.time() < end:
            t = loop.time()
            sent += 1
            try:
                ok = await _one(session, url, body)
            except (aiohttp.ClientError, OSError):
                ok = False
            if ok:
                latencies.append(loop.time() - t)
            else:
                errors += 1

    server0, client0 = _process_cpu_s(server_pid), _self_cpu_s()
    start = loop.time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = loop.time() - start
    return Phase(
        f"saturation/{concurrency}",
        sent,
        errors,
        wall,
        latencies,
        _process_cpu_s(server_pid) - server0,
        _self_cpu_s() - client0,
    )


async def load(args: argparse.Namespace, *, url: str, ca_pem: bytes, server_pid: int) -> None:
    client_ssl = ssl.create_default_context(cadata=ca_pem.decode())
    body = REVIEW.read_bytes()
    connector = aiohttp.TCPConnector(ssl=client_ssl, limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(200):  # warm up: connections, TLS sessions, code paths
            await _one(session, url, body)
        for rate in args.rates:
            phase = await fixed_rate(session, url, body, rate=rate, duration_s=args.duration, server_pid=server_pid)
            print(phase.report(target_rate=rate), flush=True)
        phase = await saturation(
            session, url, body, concurrency=args.concurrency, duration_s=args.duration, server_pid=server_pid
        )
        print(phase.report(), flush=True)
        if phase.latencies_s:
            median = statistics.median(phase.latencies_s) * 1e3
            print(f"max throughput ~{len(phase.latencies_s) / phase.wall_s:.0f} req/s, median latency {median:.2f} ms")


def run(args: argparse.Namespace, workdir: Path) -> None:
    now = time.time()
    ca, serving = certs.generate(service="aihpa-webhook", namespace="aihpa", now=now, ips=["127.0.0.1"])
    certs.write_files(workdir / "tls", serving, ca=ca)
    profile = ReplicaProfile(
        namespace="shop", name="web", app="web", replicas=(4,) * 96, model_version="bench", generated_at=now
    )
    (workdir / "profiles.json").write_text(json.dumps(InMemoryProfileSource([profile]).to_configmap_data()))

    available = sorted(os.sched_getaffinity(0))
    if len(available) >= 2:
        server_cores, client_cores = {available[0]}, {available[1]}
    else:
        server_cores = client_cores = set(available)
        print("only one core available: server and generator share it; figures are a lower bound", file=sys.stderr)
    command = [sys.executable, "-m", "aihpa.cli", "webhook", "--host", "127.0.0.1", "--port", "0"]
    command += ["--cert-dir", str(workdir / "tls"), "--profiles", str(workdir / "profiles.json")]
    proc = subprocess.Popen(
        command,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, server_cores),
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline().decode(errors="replace")
        if "serving" not in line:
            raise SystemExit(f"the webhook did not start: {line}")
        url = line.split()[-1]
        os.sched_setaffinity(0, client_cores)
        print(
            f"server pid {proc.pid} on cores {sorted(server_cores)}, generator on cores {sorted(client_cores)}; {url}; "
            f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores before the run"
        )
        asyncio.run(load(args, url=url, ca_pem=ca.cert_pem, server_pid=proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[200.0, 1000.0], help="fixed rates, req/s")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per phase (default 10)")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections (default 16)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aihpa-bench-") as tmp:
        run(args, Path(tmp))


if __name__ == "__main__":
    main()
