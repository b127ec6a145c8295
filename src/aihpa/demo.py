"""`aihpa demo`: aihpa beside the Kubernetes HPA on one real trace, in a simulated cluster, in a few minutes.

Composition only: it starts the simulated cluster (`aihpa.sim`) on 127.0.0.1 on an accelerated virtual clock, the
mutating webhook with real TLS (registered through a MutatingWebhookConfiguration, as in production) and the
controller, all in-process through the public library API. Two Deployments replay the same trace: `web-aihpa`
(labeled `aihpa/enabled=true`) and `web-hpa` (an autoscaling/v2 HPA at the same target, run by the sim's HPA
controller). Every simulated minute it records demand and pods of both; at the end (or on Ctrl-C) it prints cost and
saturation and writes a Markdown report and a PNG plot.

The figures follow the backtest protocol (DESIGN section 6): one trace sample per 60 s step, a pod serves at most its
1-core request, a step is saturated when demand exceeds the ready pods, cost is every pod that exists (starting ones
included). Heavy imports (JAX, aiohttp, matplotlib) stay inside the handler so `aihpa --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aihpa.errors import UserError

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from aihpa.clock import VirtualClock
    from aihpa.forecast.forecaster import Forecaster
    from aihpa.k8s import KubeClient
    from aihpa.sim.cluster import Cluster
    from aihpa.traces import Trace

__all__ = ["DemoOptions", "DemoRecord", "Sample", "Summary", "add_commands", "compare", "run_demo", "write_report"]

#: The two Deployments, in display order: aihpa's and the HPA's.
AIHPA, HPA = "web-aihpa", "web-hpa"
NAMESPACE = "demo"
OWN_NAMESPACE = "aihpa"
WEBHOOK_SERVICE = "aihpa-webhook"
STEP_S = 60.0
TARGET_PERCENT = 70
#: Minutes of history in the live view's utilization bars.
SPARK_MINUTES = 40


@dataclass(frozen=True)
class DemoOptions:
    """What one demo run replays and how fast."""

    trace: Path
    column: str | None = None
    # simulated minutes to replay (one trace sample each)
    minutes: int = 1440
    # virtual seconds per real second: a simulated day in 144 s at 600x
    speed: float = 600.0
    # the trace is scaled so that its peak over the replayed part is this many cores (pods of 1 core)
    peak_cores: float = 8.0
    # virtual seconds from a pod's creation to Ready: the lag a reactive autoscaler pays on every scale-up
    startup_s: float = 60.0
    out: Path = Path("aihpa-demo-out")
    live: bool = True


@dataclass(frozen=True)
class Sample:
    """One simulated minute: demand (cores) and, per Deployment, pods that exist and pods that are ready."""

    minute: int
    demand: float
    pods: dict[str, int]
    ready: dict[str, int]


@dataclass(frozen=True)
class Summary:
    """The figures of one Deployment over a run."""

    name: str
    pod_minutes: float
    saturated_share: float
    unserved_share: float
    peak_pods: int
    scale_changes: int


@dataclass
class DemoRecord:
    """What a run collected so far; complete or cut short by Ctrl-C, it is reported the same way."""

    options: DemoOptions
    trace_name: str = ""
    kubeconfig: Path | None = None
    samples: list[Sample] = field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False
    model_version: str = ""

    def summary(self, name: str) -> Summary:
        minutes = self.samples
        pods = [s.pods[name] for s in minutes]
        saturated = sum(1 for s in minutes if s.demand > s.ready[name] + 1e-9)
        total = sum(s.demand for s in minutes)
        unserved = sum(max(0.0, s.demand - s.ready[name]) for s in minutes)
        changes = sum(1 for a, b in itertools.pairwise(pods) if a != b)
        return Summary(name=name, pod_minutes=float(sum(pods)) * STEP_S / 60.0,
                       saturated_share=saturated / len(minutes) if minutes else 0.0,
                       unserved_share=unserved / total if total > 0 else 0.0,
                       peak_pods=max(pods, default=0), scale_changes=changes)


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "demo",
        help="aihpa beside the Kubernetes HPA on a real trace, in a simulated cluster (no cluster needed)",
        description="Start a simulated cluster on 127.0.0.1 with the aihpa webhook (TLS) and controller, replay one "
        "trace on two Deployments (one scaled by aihpa, one by an HPA at the same 70%% target), show both live, and "
        "write a Markdown report and a PNG plot. Ctrl-C stops it and reports what was collected.",
    )
    p.add_argument("--trace", default=None, metavar="CSV",
                   help="demand trace (default: the embedded Azure VM CPU trace, CC-BY 4.0)")
    p.add_argument("--column", default=None, help="demand column (default: the first numeric column)")
    p.add_argument("--minutes", type=int, default=1440, help="simulated minutes, one trace sample each (default 1440)")
    p.add_argument("--speed", type=float, default=600.0,
                   help="virtual seconds per real second (default 600: a simulated day in about 2.5 minutes)")
    p.add_argument("--peak", type=float, default=8.0, metavar="CORES",
                   help="scale the trace so its peak is this many cores (default 8)")
    p.add_argument("--out", default="aihpa-demo-out", metavar="DIR",
                   help="where the report, plot and kubeconfig go (default ./aihpa-demo-out)")
    p.add_argument("--no-live", action="store_true", help="plain log lines instead of the live view (CI, logs)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    from aihpa.forecast.cli import embedded_trace_path

    if args.minutes < 2:
        raise UserError("--minutes must be at least 2")
    if not (math.isfinite(args.speed) and args.speed > 0):
        raise UserError("--speed must be a positive number")
    if not (math.isfinite(args.peak) and args.peak > 0):
        raise UserError("--peak must be a positive number of cores")
    options = DemoOptions(trace=Path(args.trace) if args.trace else embedded_trace_path(), column=args.column,
                          minutes=args.minutes, speed=args.speed, peak_cores=args.peak, out=Path(args.out),
                          live=not args.no_live)
    record = run_demo(options)
    return 130 if record.interrupted else 0


def run_demo(options: DemoOptions) -> DemoRecord:
    """Run the demo (blocking: it owns its event loop), print the figures and write the report; returns the record.

    Ctrl-C ends the replay early: the cluster, webhook and controller shut down, and what was collected is reported.
    """
    from rich.console import Console
    from rich.markup import escape

    from aihpa.forecast.forecaster import load_default_forecaster
    from aihpa.traces import load_trace

    console = Console(highlight=False)
    trace = load_trace(str(options.trace), column=options.column, min_points=2)
    record = DemoRecord(options=options, trace_name=f"{Path(trace.source).name} [{trace.column}]")
    console.print(f"[bold]aihpa demo[/]: {escape(record.trace_name)}, {options.minutes} simulated minutes at "
                  f"{options.speed:g}x, peak {options.peak_cores:g} cores", soft_wrap=True)
    forecaster = load_default_forecaster()
    record.model_version = forecaster.version
    _warm_up(forecaster)
    started = time.monotonic()
    try:
        asyncio.run(_replay(options, trace, forecaster, record, console))
    except KeyboardInterrupt:
        record.interrupted = True
    record.wall_s = time.monotonic() - started
    if not record.samples:
        console.print("stopped before the first simulated minute: nothing to report")
        return record
    report, plot = write_report(record)
    _print_summary(console, record)
    # soft_wrap: paths are copied from the terminal, a wrapped one would not paste
    console.print(f"report: {report}\nplot:   {plot}", soft_wrap=True)
    return record


def _warm_up(forecaster: Forecaster) -> None:
    """Compile the forecaster for one workload before the clock starts: a first call on the accelerated clock would
    otherwise cost the controller many simulated minutes."""
    import numpy as np

    forecaster.predict([np.ones(forecaster.context, dtype=np.float32)], step_s=STEP_S)


def _day_start() -> float:
    """Today's midnight (UTC): simulated time reads as a day from 00:00 in the report and for `kubectl`."""
    return float(math.floor(time.time() / 86_400.0) * 86_400)


async def _replay(
    options: DemoOptions, trace: Trace, forecaster: Forecaster, record: DemoRecord, console: Console
) -> None:
    import numpy as np

    from aihpa.clock import VirtualClock
    from aihpa.controller import Controller, ControllerSettings
    from aihpa.k8s import KubeClient
    from aihpa.metrics import MetricsAPISource
    from aihpa.sim.cluster import Cluster
    from aihpa.sim.workload import TraceDemand

    raw = np.nan_to_num(np.asarray(trace.values, dtype=np.float64), nan=0.0)
    # a run longer than the trace loops over it, as the sim's TraceDemand does
    replayed = raw[np.arange(options.minutes) % raw.size] if raw.size else raw
    peak = float(replayed.max()) if replayed.size else 0.0
    if peak <= 0:
        raise UserError(f"{record.trace_name} has no positive demand in its first {options.minutes} samples")
    scale = options.peak_cores / peak
    clock = VirtualClock(start=_day_start(), speed=options.speed)
    async with Cluster(clock=clock, tls=True, startup_delay=options.startup_s) as cluster:
        record.kubeconfig = cluster.write_kubeconfig(options.out.resolve() / "kubeconfig", namespace=NAMESPACE)
        console.print(f"simulated cluster at {cluster.url}; watch it with:\n"
                      f"  KUBECONFIG={record.kubeconfig} kubectl get deploy -w", soft_wrap=True)
        api = await cluster.api_client()
        async with api:
            kube = KubeClient(api)  # retries wait in real time: a retry must not cost simulated minutes
            await cluster.ensure_namespace(OWN_NAMESPACE)
            await cluster.ensure_namespace(NAMESPACE)
            async with _webhook(cluster, kube, clock=clock, model_version=forecaster.version):
                # the sync period is the HPA's 15 s; at 600x that is a cycle every 25 ms of real time
                settings = ControllerSettings(sync_period_s=15.0, step_s=STEP_S, namespace=OWN_NAMESPACE,
                                              watch_namespace=NAMESPACE, identity="aihpa-demo",
                                              leader_election=False)
                controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster,
                                        settings=settings, clock=clock)
                async with controller:
                    await controller.wait_synced()
                    start = clock.now()
                    # one demand for both Deployments and for the record: the same trace, sample for sample
                    demand = TraceDemand(trace, scale=scale, start=start, interval_s=STEP_S)
                    for name in (AIHPA, HPA):
                        cluster.attach(NAMESPACE, name, demand)
                    await _deploy(cluster)
                    await _record(cluster, clock, record, console, start=start, demand=demand)


@contextlib.asynccontextmanager
async def _webhook(cluster: Cluster, kube: KubeClient, *, clock: VirtualClock, model_version: str) -> AsyncIterator[
        None]:
    """The webhook as deployed: generated CA and serving certificate, TLS on 127.0.0.1, registered with the API
    server through a MutatingWebhookConfiguration whose caBundle is injected through the API."""
    from aihpa.webhook import create_app, start_server
    from aihpa.webhook.certs import CertificateSource, generate, write_files
    from aihpa.webhook.kube_certs import inject_ca_bundle_live
    from aihpa.webhook.profile_configmaps import ConfigMapProfileSource
    from aihpa.webhook.settings import WebhookSettings

    with tempfile.TemporaryDirectory(prefix="aihpa-demo-tls-") as tmp:
        # the certificate is checked against the wall clock by TLS, so it is issued at the real now
        ca, serving = generate(service=WEBHOOK_SERVICE, namespace=OWN_NAMESPACE, now=time.time())
        write_files(Path(tmp), serving, ca=ca)
        certs = CertificateSource.from_directory(Path(tmp))
        profiles = ConfigMapProfileSource(kube, namespace=OWN_NAMESPACE)
        watch = asyncio.create_task(profiles.run(), name="aihpa-demo-profiles")
        runner = None
        try:
            app = create_app(WebhookSettings(model_version=model_version), profiles, certs=certs, clock=clock)
            runner, port = await start_server(app, host="127.0.0.1", port=0, ssl_context=certs.ssl_context)
            cluster.register_service(OWN_NAMESPACE, WEBHOOK_SERVICE, "127.0.0.1", port)
            await kube.request("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
                               body=webhook_configuration())
            await inject_ca_bundle_live(kube, name=WEBHOOK_SERVICE, ca_pem=ca.cert_pem)
            yield
        finally:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch
            await cluster.admission.close()  # the API server's keep-alive connections to the webhook go first
            if runner is not None:
                await runner.cleanup()


def webhook_configuration() -> dict[str, Any]:
    """The MutatingWebhookConfiguration of webhooks/mutatingwebhookconfiguration.yaml (the package does not ship
    that directory); caBundle is injected afterwards, as `aihpa certs inject-ca-bundle --name` does."""
    return {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": WEBHOOK_SERVICE, "labels": {"app.kubernetes.io/name": "aihpa",
                                                         "app.kubernetes.io/component": "webhook"}},
        "webhooks": [{
            "name": "deployments.aihpa.dev",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Ignore",
            "timeoutSeconds": 2,
            "reinvocationPolicy": "IfNeeded",
            "matchPolicy": "Equivalent",
            "clientConfig": {"service": {"name": WEBHOOK_SERVICE, "namespace": OWN_NAMESPACE, "path": "/mutate",
                                         "port": 443}, "caBundle": ""},
            "objectSelector": {"matchLabels": {"aihpa/enabled": "true"}},
            "namespaceSelector": {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                                        "values": ["kube-system", OWN_NAMESPACE]}]},
            "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "resources": ["deployments"],
                       "operations": ["CREATE", "UPDATE"], "scope": "Namespaced"}],
        }],
    }


def _deployment(name: str, *, labels: dict[str, str]) -> dict[str, Any]:
    """One replica of a 1-core pod (request = limit: a pod serves at most one core)."""
    selector = {"app": name}
    resources = {"requests": {"cpu": "1", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE, "labels": {**selector, **labels}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {"metadata": {"labels": selector},
                         "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10",
                                                  "resources": resources}]}},
        },
    }


def hpa_manifest(name: str, *, namespace: str = NAMESPACE, target_percent: int = TARGET_PERCENT,
                 max_replicas: int = 100) -> dict[str, Any]:
    """An autoscaling/v2 HPA on CPU utilization with the Kubernetes default behavior."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": 1,
            "maxReplicas": max_replicas,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": target_percent}}}],
        },
    }


async def _deploy(cluster: Cluster) -> None:
    # created through the API server's admission chain: the webhook annotates web-aihpa as in production
    await cluster.create(_deployment(AIHPA, labels={"aihpa/enabled": "true",
                                                    "aihpa/target-utilization": f"{TARGET_PERCENT / 100:g}"}))
    await cluster.create(_deployment(HPA, labels={}))
    await cluster.create(hpa_manifest(HPA))


async def _record(
    cluster: Cluster, clock: VirtualClock, record: DemoRecord, console: Console, *, start: float,
    demand: Callable[[float], float],
) -> None:
    """Sample both Deployments once per simulated minute until the run's end, updating the view."""
    view = _View(record, console)
    with view:
        for minute in range(record.options.minutes):
            due = start + (minute + 1) * STEP_S
            await clock.sleep(due - clock.now())
            pods, ready = {}, {}
            for name in (AIHPA, HPA):
                dep = cluster.get("apps/v1", "Deployment", name, NAMESPACE) or {}
                status = dep.get("status") or {}
                pods[name] = int(status.get("replicas") or 0)
                ready[name] = int(status.get("readyReplicas") or 0)
            record.samples.append(Sample(minute=minute, demand=demand(clock.now()), pods=pods, ready=ready))
            view.update()


class _View:
    """The live table (rich.live), or one plain line per simulated hour with `--no-live`."""

    def __init__(self, record: DemoRecord, console: Console) -> None:
        self.record = record
        self.console = console
        self._live: Any = None

    def __enter__(self) -> _View:
        if self.record.options.live:
            from rich.live import Live

            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(None, None, None)
            if not self.console.is_terminal:
                self.console.line()  # a terminal's Live ends its last frame with a newline; a pipe's does not

    def update(self) -> None:
        if self._live is not None:
            self._live.update(self._render())
            return
        s = self.record.samples[-1]
        if s.minute % 60 == 59 or s.minute == self.record.options.minutes - 1:
            parts = [f"{_clock_text(s.minute + 1)} demand {s.demand:5.2f} cores"]
            for name in (AIHPA, HPA):
                sm = self.record.summary(name)
                parts.append(f"{name} {s.ready[name]}/{s.pods[name]} pods, {sm.saturated_share:.1%} saturated")
            print(" | ".join(parts), flush=True)

    def _render(self) -> RenderableType:
        from rich.markup import escape
        from rich.table import Table

        samples = self.record.samples
        minute = samples[-1].minute + 1 if samples else 0
        now, total = _clock_text(minute), _clock_text(self.record.options.minutes)
        table = Table(title=f"aihpa demo - simulated {now} of {total} - {escape(self.record.trace_name)}",
                      title_justify="left")
        table.add_column("")
        table.add_column("demand (cores)", justify="right")
        table.add_column("ready / pods", justify="right")
        table.add_column("saturated now")
        table.add_column("saturated share", justify="right")
        table.add_column("pod-minutes", justify="right")
        table.add_column(f"utilization, last {SPARK_MINUTES} min (red: saturated)", no_wrap=True)
        for name in (AIHPA, HPA):
            if not samples:
                table.add_row(name, "-", "-", "-", "-", "-", "")
                continue
            s = samples[-1]
            sm = self.record.summary(name)
            hot = s.demand > s.ready[name] + 1e-9
            table.add_row(
                f"[bold]{name}[/]", f"{s.demand:.2f}", f"{s.ready[name]} / {s.pods[name]}",
                "[red]yes[/]" if hot else "[green]no[/]", f"{sm.saturated_share:.1%}", f"{sm.pod_minutes:.0f}",
                _spark([x.demand / x.ready[name] if x.ready[name] else math.inf for x in samples[-SPARK_MINUTES:]]),
            )
        return table


def _spark(utilizations: Sequence[float]) -> str:
    """Utilization of the ready pods per minute as bars (full = 100%), red where demand exceeded them."""
    bars = "▁▂▃▄▅▆▇█"
    out = []
    for u in utilizations:
        if u > 1.0 + 1e-9:
            out.append("[red]█[/]")
        else:
            out.append(bars[min(len(bars) - 1, int(u * len(bars)))])
    return "".join(out)


def _clock_text(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _print_summary(console: Console, record: DemoRecord) -> None:
    from rich.table import Table

    done = f"{len(record.samples)} simulated minutes in {record.wall_s:.0f} s"
    table = Table(title=f"aihpa vs HPA: {done}{' (interrupted)' if record.interrupted else ''}", title_justify="left")
    for col in ("", "pod-minutes (cost)", "saturated share", "unserved demand", "peak pods", "scale changes"):
        table.add_column(col, justify="right" if col else "left")
    for name in (AIHPA, HPA):
        s = record.summary(name)
        table.add_row(name, f"{s.pod_minutes:.0f}", f"{s.saturated_share:.1%}", f"{s.unserved_share:.1%}",
                      str(s.peak_pods), str(s.scale_changes))
    console.print(table)
    console.print(compare(record))


def compare(record: DemoRecord) -> str:
    """One sentence: aihpa's cost and saturated minutes against the HPA's, whichever way they went."""
    a, h = record.summary(AIHPA), record.summary(HPA)
    n = len(record.samples)
    cost = (a.pod_minutes / h.pod_minutes - 1.0) if h.pod_minutes else 0.0
    return (f"{AIHPA} used {abs(cost):.1%} {'more' if cost >= 0 else 'fewer'} pod-minutes than {HPA}, and was "
            f"saturated in {round(a.saturated_share * n)} of {n} minutes against {round(h.saturated_share * n)}.")


def write_report(record: DemoRecord) -> tuple[Path, Path]:
    """Write `report.md` and `demo.png` under the run's output directory; returns their paths."""
    out = record.options.out
    out.mkdir(parents=True, exist_ok=True)
    plot = _plot(record, out / "demo.png")
    rows = [record.summary(n) for n in (AIHPA, HPA)]
    o = record.options
    lines = [
        "# aihpa demo report",
        "",
        f"- trace: {record.trace_name}, scaled to a peak of {o.peak_cores:g} cores, one sample per simulated minute",
        f"- simulated: {len(record.samples)} of {o.minutes} minutes"
        f"{' (interrupted)' if record.interrupted else ''}, at {o.speed:g}x, in {record.wall_s:.0f} s of wall time",
        f"- pods: 1 core each (request = limit), ready {o.startup_s:g} s after creation; both autoscalers aim at "
        f"{TARGET_PERCENT}% CPU utilization",
        f"- `{AIHPA}`: the aihpa controller (model {record.model_version}); `{HPA}`: the Kubernetes HPA algorithm "
        "(autoscaling/v2, default behavior) run by the simulated cluster",
        "",
        "| deployment | pod-minutes (cost) | saturated share | unserved demand | peak pods | scale changes |",
        "|---|---:|---:|---:|---:|---:|",
        *(f"| {s.name} | {s.pod_minutes:.0f} | {s.saturated_share:.1%} | {s.unserved_share:.1%} | {s.peak_pods} | "
          f"{s.scale_changes} |" for s in rows),
        "",
        compare(record),
        "",
        "A minute is saturated when demand exceeds the ready pods' cores; unserved demand is the share of all demand "
        "above the ready capacity; cost counts every pod, starting ones included.",
        "",
        f"![demand and capacity]({plot.name})",
        "",
    ]
    report = out / "report.md"
    report.write_text("\n".join(lines), encoding="utf-8")
    return report, plot


def _plot(record: DemoRecord, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hours = [(s.minute + 1) / 60.0 for s in record.samples]
    demand = [s.demand for s in record.samples]
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True, height_ratios=(3, 1))
    top.fill_between(hours, demand, color="0.85", label="demand (cores)", step="post")
    colors = {AIHPA: "tab:blue", HPA: "tab:orange"}
    for name in (AIHPA, HPA):
        ready = [s.ready[name] for s in record.samples]
        top.step(hours, ready, where="post", color=colors[name], lw=1.4, label=f"{name}: ready pods (capacity)")
        hot = [h for h, d, r in zip(hours, demand, ready, strict=True) if d > r + 1e-9]
        bottom.scatter(hot, [name] * len(hot), marker="|", s=80, color=colors[name])
    top.set_ylabel("cores / pods")
    top.legend(loc="upper left", frameon=False)
    top.set_title(f"aihpa vs HPA on {record.trace_name}")
    bottom.set_ylabel("saturated")
    bottom.set_xlabel("simulated hours")
    bottom.set_ylim(-0.5, 1.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m aihpa.demo`: the same as `aihpa demo`."""
    from aihpa.cli import main as cli_main

    return cli_main(["demo", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    raise SystemExit(main())
