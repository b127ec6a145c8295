"""`aihpa sim serve`: run the simulated cluster in the foreground and write a kubeconfig for it.

The cluster starts with what `aihpa controller` needs at its defaults (the `aihpa` namespace for its Lease and
profiles), and the `--deployment` it creates is labeled for the controller, so the README's offline steps work as
written.

Only argument wiring lives here; heavy imports (aiohttp, the sim itself) happen inside the handler so `aihpa --help`
stays fast. Bad input is reported as a `UserError`, never a traceback.
"""

from __future__ import annotations

import argparse
from typing import Any

from aihpa.errors import UserError

__all__ = ["CONTROLLER_NAMESPACE", "add_commands"]

# `aihpa controller --controller-namespace`'s default: its Lease and the published replica profiles live there
CONTROLLER_NAMESPACE = "aihpa"


def add_commands(subparsers: Any) -> None:
    sim = subparsers.add_parser("sim", help="the simulated Kubernetes cluster (tests and demo)",
                                description="A simulated Kubernetes API server on 127.0.0.1.")
    sim_sub = sim.add_subparsers(dest="sim_command", metavar="SUBCOMMAND", required=True)
    serve = sim_sub.add_parser(
        "serve", help="serve a simulated cluster until interrupted",
        description="Serve the Kubernetes API on 127.0.0.1, write a kubeconfig that kubectl and kubernetes-asyncio "
        "use unchanged, and replay an optional trace as a Deployment's CPU demand.")
    serve.add_argument("--port", type=int, default=0, help="port to listen on; 0: any free port")
    serve.add_argument("--tls", action="store_true", help="serve HTTPS with a generated CA (in the kubeconfig)")
    serve.add_argument("--kubeconfig-out", metavar="FILE",
                       help="write the kubeconfig here (default: print it to stdout)")
    serve.add_argument("--trace", metavar="CSV", help="a CSV trace to register as demand (name: file stem)")
    serve.add_argument("--column", metavar="COLUMN", help="the trace's demand column (default: the first numeric one)")
    serve.add_argument("--peak-cores", type=float, default=8.0, metavar="CORES",
                       help="scale the trace so that its peak is this many CPU cores (default 8)")
    serve.add_argument("--deployment", metavar="NAME",
                       help="create this Deployment in 'default', driven by the trace")
    serve.add_argument("--replicas", type=int, default=2, help="initial replicas of --deployment (default 2)")
    serve.add_argument("--speed", type=float, default=1.0,
                       help="virtual seconds per real second (e.g. 60 replays an hour a minute)")
    serve.add_argument("--pod-capacity", type=int, default=10_000,
                       help="pods the cluster schedules; more stay Pending, unschedulable (default 10000)")
    serve.add_argument("--startup-seconds", type=float, default=5.0,
                       help="virtual seconds from pod creation to Ready (default 5)")
    serve.add_argument("--duration", type=float, default=None,
                       help="stop after this many real seconds (default: run until interrupted)")
    serve.set_defaults(handler=_serve)


def _check(args: argparse.Namespace) -> None:
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be between 0 and 65535, got {args.port}")
    if args.speed <= 0:
        raise UserError(f"--speed must be positive, got {args.speed}")
    if args.column and not args.trace:
        raise UserError("--column needs --trace")
    if args.deployment and not args.trace:
        raise UserError("--deployment needs --trace")
    if args.peak_cores <= 0:
        raise UserError(f"--peak-cores must be positive, got {args.peak_cores}")
    if args.pod_capacity < 0:
        raise UserError(f"--pod-capacity must be at least 0, got {args.pod_capacity}")
    if args.replicas < 0:
        raise UserError(f"--replicas must be at least 0, got {args.replicas}")
    if args.duration is not None and args.duration <= 0:
        raise UserError(f"--duration must be positive, got {args.duration}")


def _serve(args: argparse.Namespace) -> int:
    _check(args)
    import asyncio

    return asyncio.run(_run(args))


async def _run(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal
    import sys
    import time
    from pathlib import Path

    import yaml

    from aihpa.clock import VirtualClock
    from aihpa.controller.process import tune_garbage_collector
    from aihpa.sim.cluster import Cluster
    from aihpa.sim.workload import TRACE_ANNOTATION
    from aihpa.traces import load_trace

    # a served cluster keeps a large, long-lived heap too (every object, its watch history): with CPython's default
    # thresholds a PodMetrics list of 10,000 pods spent half its time in full collections of that heap
    tune_garbage_collector()
    trace = load_trace(args.trace, column=args.column) if args.trace else None
    clock = VirtualClock(start=time.time(), speed=args.speed)
    cluster = Cluster(clock=clock, tls=args.tls, port=args.port, startup_delay=args.startup_seconds,
                      pod_capacity=args.pod_capacity)
    try:
        await cluster.start()
    except OSError as exc:
        await cluster.stop()
        raise UserError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}") from exc
    try:
        await cluster.ensure_namespace(CONTROLLER_NAMESPACE)
        if trace is not None:
            peak = float(trace.values.max()) if len(trace) else 0.0
            scale = args.peak_cores / peak if peak > 0 else 1.0
            name = Path(args.trace).stem.replace("_", "-").lower()
            cluster.register_trace(name, trace, scale=scale)
            print(f"trace {name!r}: {len(trace)} samples of {trace.column!r}, peak {args.peak_cores:g} cores; "
                  f"annotate a Deployment with {TRACE_ANNOTATION}: {name}", file=sys.stderr)
            if args.deployment:
                await cluster.create(_demo_deployment(args.deployment, args.replicas, trace_name=name,
                                                      annotation=TRACE_ANNOTATION))
        if args.kubeconfig_out:
            cluster.write_kubeconfig(args.kubeconfig_out)
            print(f"serving {cluster.url} (kubeconfig: {args.kubeconfig_out})", flush=True)
        else:
            print(yaml.safe_dump(cluster.kubeconfig(), sort_keys=False), flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, stop.set)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.duration)
    finally:
        await cluster.stop()
    return 0


def _demo_deployment(name: str, replicas: int, *, trace_name: str, annotation: str) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        # opted in: `aihpa controller` manages only Deployments labeled aihpa/enabled=true
        "metadata": {"name": name, "namespace": "default", "labels": {**labels, "aihpa/enabled": "true"},
                     "annotations": {annotation: trace_name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": name, "image": "registry.k8s.io/pause:3.10",
                                         "resources": {"requests": {"cpu": "500m"}, "limits": {"cpu": "1"}}}]},
            },
        },
    }
