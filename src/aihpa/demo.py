"""`aihpa demo`: aihpa beside the Kubernetes HPA's whole frontier on one real trace, in a simulated cluster.

Composition only: it starts the simulated cluster (`aihpa.sim`) on 127.0.0.1 on an accelerated virtual clock, the
mutating webhook with real TLS (registered through a MutatingWebhookConfiguration, as in production) and the
controller, all in-process through the public library API. Deployments replay the same trace: `web-aihpa` (labeled
`aihpa/enabled=true`, sized to its 1% saturation risk; its 70% target is its fallback's), `web-hpa` (an
autoscaling/v2 HPA at 70%, the HPA's default-like target) and one more HPA per other target
(`web-hpa-50`, `web-hpa-60`, ...), all run by the sim's HPA controller. Every simulated minute it records demand and
pods of each; at the end (or on Ctrl-C) it prints cost and saturation, compares aihpa with the HPA's frontier of
cost against saturation at aihpa's own saturated share, and writes a Markdown report, a PNG plot and, if asked, JSON.

The figures follow the backtest protocol (DESIGN section 6): one trace sample per 60 s step, a pod serves at most its
1-core request, a step is saturated when demand exceeds the ready pods, cost is every pod that exists (starting ones
included). Heavy imports (JAX, aiohttp, matplotlib) stay inside the handler so `aihpa --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from aihpa.errors import UserError
from aihpa.step import DEFAULT_STEP_S

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from aihpa.clock import VirtualClock
    from aihpa.forecast.forecaster import Forecaster
    from aihpa.k8s import KubeClient
    from aihpa.sim.cluster import Cluster
    from aihpa.traces import Trace

__all__ = [
    "DemoDeployment", "DemoOptions", "DemoRecord", "FrontierCost", "FrontierPoint", "Sample", "Summary",
    "add_commands", "compare", "default_trace", "demo_deployments", "frontier_comparison", "frontier_cost",
    "hpa_frontier", "report_json", "run_demo", "write_report",
]

#: aihpa's Deployment and the HPA's at 70% (aihpa's fallback target); the others are `web-hpa-<target>`.
AIHPA, HPA = "web-aihpa", "web-hpa"
NAMESPACE = "demo"
OWN_NAMESPACE = "aihpa"
WEBHOOK_SERVICE = "aihpa-webhook"
#: aihpa's fallback target utilization (while no forecast is trusted), and the HPA's in `web-hpa`.
TARGET_PERCENT = 70
#: The HPA's targets: its frontier of cost against saturation, from the safe and dear to the cheap and hot end.
HPA_TARGETS = (50, 60, 70, 80, 90)
#: The share of saturated minutes aihpa's controller aims for (its `risk`, the controller's default).
SATURATION_RISK = 0.01
#: A sample later than this (simulated seconds, one HPA sync period) means the event loop stalled: every controller
#: waited through the stall too, so many late minutes say more about the machine than about the autoscalers.
LATE_S = 15.0
#: The share of late minutes above which the report warns (the 1% a saturated share is read at).
LATE_SHARE = 0.01
#: Minutes of history in the live view's utilization bars.
SPARK_MINUTES = 40
#: The trace the demo replays by default, shipped in `aihpa/data` (see ATTRIBUTION.md there): the CPU of an EC2
#: auto-scaling group whose load bursts for a few minutes at a time, again and again. A reactive autoscaler meets
#: every burst late; a forecaster can see the next one coming.
DEFAULT_TRACE, DEFAULT_COLUMN = "nab_awsasg_cpu_5min.csv", "cpu"


def default_trace() -> Path:
    """The trace `aihpa demo` replays when no `--trace` is given (NAB, MIT license; see data/ATTRIBUTION.md)."""
    return Path(__file__).resolve().parent / "data" / DEFAULT_TRACE


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
    # the HPA's targets (percent CPU utilization), one Deployment each; TARGET_PERCENT is always among them
    hpa_targets: tuple[int, ...] = HPA_TARGETS
    # also write the figures as JSON here (None: no JSON)
    json_path: Path | None = None


@dataclass(frozen=True)
class DemoDeployment:
    """One Deployment of the demo: who scales it, and at which target (the HPA's) or none (aihpa sizes to a risk)."""

    name: str
    kind: Literal["aihpa", "hpa"]
    target_percent: int | None


def demo_deployments(hpa_targets: Iterable[int] = HPA_TARGETS) -> tuple[DemoDeployment, ...]:
    """aihpa's Deployment, the HPA's at 70% (`web-hpa`), then the HPA's at the other targets, ascending."""
    others = sorted(set(hpa_targets) - {TARGET_PERCENT})
    return (DemoDeployment(AIHPA, "aihpa", None), DemoDeployment(HPA, "hpa", TARGET_PERCENT),
            *(DemoDeployment(f"{HPA}-{t}", "hpa", t) for t in others))


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
    saturated_minutes: int = 0


@dataclass
class _Tally:
    """Running sums of one Deployment over `samples[:upto]`: the live view asks every minute, so it must not rescan."""

    upto: int = 0
    pods: int = 0
    saturated: int = 0
    demand: float = 0.0
    unserved: float = 0.0
    peak: int = 0
    changes: int = 0
    last_pods: int | None = None
    # the sample counted last: a record whose samples were replaced is summed afresh
    last: Sample | None = None


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
    saturation_risk: float = SATURATION_RISK
    # the latest a per-minute sample was taken, in simulated seconds after its minute
    max_delay_s: float = 0.0
    # the minutes sampled more than LATE_S after their end
    late_minutes: int = 0
    _tallies: dict[str, _Tally] = field(default_factory=dict, repr=False)

    @property
    def deployments(self) -> tuple[DemoDeployment, ...]:
        return demo_deployments(self.options.hpa_targets)

    def summary(self, name: str) -> Summary:
        tally = self._tallies.get(name)
        if tally is None or (tally.upto and (tally.upto > len(self.samples)
                                             or self.samples[tally.upto - 1] is not tally.last)):
            tally = self._tallies[name] = _Tally()
        for s in self.samples[tally.upto:]:
            pods, ready = s.pods[name], s.ready[name]
            tally.pods += pods
            tally.saturated += s.demand > ready + 1e-9
            tally.demand += s.demand
            tally.unserved += max(0.0, s.demand - ready)
            tally.peak = max(tally.peak, pods)
            tally.changes += tally.last_pods is not None and pods != tally.last_pods
            tally.last_pods = pods
            tally.last = s
        tally.upto = len(self.samples)
        n = len(self.samples)
        return Summary(name=name, pod_minutes=float(tally.pods) * DEFAULT_STEP_S / 60.0,
                       saturated_share=tally.saturated / n if n else 0.0,
                       unserved_share=tally.unserved / tally.demand if tally.demand > 0 else 0.0,
                       peak_pods=tally.peak, scale_changes=tally.changes, saturated_minutes=tally.saturated)


@dataclass(frozen=True)
class FrontierPoint:
    """One HPA setting's outcome: its target and where it landed on cost against saturation."""

    target_percent: int
    saturated_share: float
    pod_minutes: float


@dataclass(frozen=True)
class FrontierCost:
    """The HPA frontier's pod-minutes at one saturated share, or None with the reason it cannot be read there."""

    pod_minutes: float | None
    reason: str


def hpa_frontier(points: Iterable[FrontierPoint]) -> list[FrontierPoint]:
    """The settings no other one beats on both cost and saturation, by saturated share: each is cheaper than the one
    before, so the frontier is monotone (a setting both dearer and hotter than another is noise and is dropped)."""
    front: list[FrontierPoint] = []
    for p in sorted(points, key=lambda p: (p.saturated_share, p.pod_minutes)):
        if not front or p.pod_minutes < front[-1].pod_minutes:
            front.append(p)
    return front


def frontier_cost(points: Iterable[FrontierPoint], share: float) -> FrontierCost:
    """The HPA's pod-minutes at saturated share `share`, read off its frontier (`hpa_frontier`).

    Between two frontier points: linear interpolation. Below the frontier's lowest share: that point's cost (flat), a
    lower bound of what the HPA would need to saturate less, so a ratio against it never flatters the other side.
    Above its highest share: None, because even the HPA's cheapest setting saturated less, and its cost would
    overstate what the HPA needs at `share` (run the HPA at a higher target to get a figure).
    """
    front = hpa_frontier(points)
    if not front:
        return FrontierCost(None, "no HPA setting to compare with")
    lo, hi = front[0], front[-1]
    if share < lo.saturated_share:
        return FrontierCost(lo.pod_minutes, f"below the HPA's lowest saturated share ({lo.saturated_share:.2%} at "
                                            f"{lo.target_percent}%): its cost there, flat (a lower bound)")
    if share > hi.saturated_share:
        return FrontierCost(None, f"above the HPA's highest saturated share on its frontier ({hi.saturated_share:.2%}"
                                  f" at {hi.target_percent}%): the HPA was not run hot enough to compare")
    # the frontier's shares strictly increase (hpa_frontier keeps the cheapest of equal shares): no zero width
    for a, b in itertools.pairwise(front):
        if a.saturated_share <= share <= b.saturated_share:
            w = (share - a.saturated_share) / (b.saturated_share - a.saturated_share)
            cost = a.pod_minutes + w * (b.pod_minutes - a.pod_minutes)
            return FrontierCost(cost, f"interpolated between the HPA at {a.target_percent}% and at "
                                      f"{b.target_percent}%")
    return FrontierCost(lo.pod_minutes, f"the HPA at {lo.target_percent}%")  # a one-point frontier, share on it


@dataclass(frozen=True)
class FrontierComparison:
    """aihpa's pod-minutes against the HPA frontier's at aihpa's saturated share."""

    aihpa: Summary
    points: tuple[FrontierPoint, ...]
    hpa: FrontierCost

    @property
    def ratio(self) -> float | None:
        if self.hpa.pod_minutes is None or self.hpa.pod_minutes <= 0:
            return None
        return self.aihpa.pod_minutes / self.hpa.pod_minutes


def frontier_comparison(record: DemoRecord) -> FrontierComparison:
    aihpa = record.summary(AIHPA)
    points = tuple(FrontierPoint(d.target_percent, s.saturated_share, s.pod_minutes)
                   for d in record.deployments if d.kind == "hpa" and d.target_percent is not None
                   for s in (record.summary(d.name),))
    return FrontierComparison(aihpa=aihpa, points=points, hpa=frontier_cost(points, aihpa.saturated_share))


def _targets(text: str) -> tuple[int, ...]:
    try:
        targets = tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected percentages separated by commas, got {text!r}") from None
    if not targets or any(not 1 <= t <= 100 for t in targets):
        raise argparse.ArgumentTypeError(f"targets must be percentages from 1 to 100, got {text!r}")
    return targets


def add_commands(sub: Any) -> None:
    from aihpa.cli_flags import renamed_flag

    p = sub.add_parser(
        "demo",
        help="aihpa beside the Kubernetes HPA's frontier on a real trace, in a simulated cluster (no cluster needed)",
        description="Start a simulated cluster on 127.0.0.1 with the aihpa webhook (TLS) and controller, replay one "
        "trace on one Deployment scaled by aihpa (at a 1% saturation risk) and one per HPA target (web-hpa at 70%, "
        "web-hpa-<target> for the others), show them live, compare aihpa with the HPA's frontier of cost against "
        "saturation at aihpa's saturated share, and write a Markdown report and a PNG plot. Ctrl-C stops it and "
        "reports what was collected.",
    )
    p.add_argument("--trace", default=None, metavar="CSV",
                   help="demand trace (default: the embedded NAB EC2 auto-scaling group CPU trace, MIT)")
    p.add_argument("--column", default=None, help="demand column (default: the first numeric column)")
    p.add_argument("--minutes", type=int, default=1440, help="simulated minutes, one trace sample each (default 1440)")
    p.add_argument("--speed", type=float, default=600.0,
                   help="virtual seconds per real second (default 600: a simulated day in about 2.5 minutes)")
    # --peak-cores, as `aihpa sim serve` names it (--peak, the former name, still parses)
    renamed_flag(p, "--peak-cores", "--peak", dest="peak", type=float, default=8.0, metavar="CORES",
                 help="scale the trace so its peak is this many cores (default 8)")
    p.add_argument("--hpa-targets", type=_targets, default=HPA_TARGETS, metavar="PCT,...",
                   help=f"the HPA's targets, one Deployment each; {TARGET_PERCENT} is always run (default "
                        f"{','.join(map(str, HPA_TARGETS))})")
    # --out-dir, as every command names a directory it writes (--out, the former name, still parses)
    renamed_flag(p, "--out-dir", "--out", dest="out", default="aihpa-demo-out", metavar="DIR",
                 help="where the report, plot and kubeconfig go (default ./aihpa-demo-out)")
    p.add_argument("--json", default=None, metavar="FILE", help="also write the figures as JSON to FILE")
    p.add_argument("--no-live", action="store_true", help="plain log lines instead of the live view (CI, logs)")
    p.set_defaults(handler=_demo)


def _demo(args: argparse.Namespace) -> int:
    if args.minutes < 2:
        raise UserError("--minutes must be at least 2")
    if not (math.isfinite(args.speed) and args.speed > 0):
        raise UserError("--speed must be a positive number")
    if not (math.isfinite(args.peak) and args.peak > 0):
        raise UserError("--peak-cores must be a positive number of cores")
    if args.trace:
        trace, column = Path(args.trace), args.column
    else:
        trace, column = default_trace(), args.column or DEFAULT_COLUMN
    options = DemoOptions(trace=trace, column=column, minutes=args.minutes, speed=args.speed, peak_cores=args.peak,
                          out=Path(args.out), live=not args.no_live, hpa_targets=tuple(args.hpa_targets),
                          json_path=Path(args.json) if args.json else None)
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
    hpas = ", ".join(f"{d.target_percent}%" for d in record.deployments if d.kind == "hpa")
    console.print(f"[bold]aihpa demo[/]: {escape(record.trace_name)}, {options.minutes} simulated minutes at "
                  f"{options.speed:g}x, peak {options.peak_cores:g} cores; aihpa at {record.saturation_risk:.0%} "
                  f"saturation risk beside the HPA at {hpas}", soft_wrap=True)
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
    if options.json_path is not None:
        options.json_path.parent.mkdir(parents=True, exist_ok=True)
        options.json_path.write_text(json.dumps(report_json(record), indent=2) + "\n", encoding="utf-8")
        console.print(f"json:   {options.json_path}", soft_wrap=True)
    return record


def _warm_up(forecaster: Forecaster) -> None:
    """Compile the forecaster for one workload before the clock starts: a first call on the accelerated clock would
    otherwise cost the controller many simulated minutes."""
    import numpy as np

    forecaster.predict([np.ones(forecaster.context, dtype=np.float32)], step_s=DEFAULT_STEP_S)


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
                settings = ControllerSettings(sync_period_s=15.0, step_s=DEFAULT_STEP_S, namespace=OWN_NAMESPACE,
                                              watch_namespace=NAMESPACE, identity="aihpa-demo",
                                              leader_election=False, risk=record.saturation_risk)
                controller = Controller(client=kube, metrics=MetricsAPISource(kube), forecaster=forecaster,
                                        settings=settings, clock=clock)
                async with controller:
                    await controller.wait_synced()
                    start = clock.now()
                    # one demand for every Deployment and for the record: the same trace, sample for sample
                    demand = TraceDemand(trace, scale=scale, start=start, step_s=DEFAULT_STEP_S)
                    for d in record.deployments:
                        cluster.attach(NAMESPACE, d.name, demand)
                    await _deploy(cluster, record.deployments)
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


async def _deploy(cluster: Cluster, deployments: Sequence[DemoDeployment]) -> None:
    # created through the API server's admission chain: the webhook annotates web-aihpa as in production
    for d in deployments:
        if d.kind == "aihpa":
            await cluster.create(_deployment(d.name, labels={
                "aihpa/enabled": "true", "aihpa/target-utilization": f"{TARGET_PERCENT / 100:g}"}))
        else:
            await cluster.create(_deployment(d.name, labels={}))
            await cluster.create(hpa_manifest(d.name, target_percent=d.target_percent or TARGET_PERCENT))


async def _record(
    cluster: Cluster, clock: VirtualClock, record: DemoRecord, console: Console, *, start: float,
    demand: Callable[[float], float],
) -> None:
    """Sample every Deployment once per simulated minute until the run's end, updating the view."""
    names = [d.name for d in record.deployments]
    view = _View(record, console)
    with view:
        for minute in range(record.options.minutes):
            due = start + (minute + 1) * DEFAULT_STEP_S
            await clock.sleep(due - clock.now())
            # how late the event loop woke us, in simulated seconds: a machine too slow for the speed shows here
            delay = clock.now() - due
            record.max_delay_s = max(record.max_delay_s, delay)
            record.late_minutes += delay > LATE_S
            pods, ready = {}, {}
            for name in names:
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
        self.names = [d.name for d in record.deployments]
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
            for name in self.names:
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
        for name in self.names:
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


def _target_text(d: DemoDeployment, record: DemoRecord) -> str:
    return f"{d.target_percent}% CPU" if d.kind == "hpa" else f"{record.saturation_risk:.0%} risk"


def _print_summary(console: Console, record: DemoRecord) -> None:
    from rich.table import Table

    done = f"{len(record.samples)} simulated minutes in {record.wall_s:.0f} s"
    table = Table(title=f"aihpa vs HPA: {done}{' (interrupted)' if record.interrupted else ''}", title_justify="left")
    for col in ("", "aims at", "pod-minutes (cost)", "saturated share", "unserved demand", "peak pods",
                "scale changes"):
        # a pipe is 80 columns wide: the names and targets must not be cut, the headers may wrap
        table.add_column(col, justify="right" if col else "left", no_wrap=col in ("", "aims at"))
    for d in record.deployments:
        s = record.summary(d.name)
        table.add_row(d.name, _target_text(d, record), f"{s.pod_minutes:.0f}", f"{s.saturated_share:.1%}",
                      f"{s.unserved_share:.1%}", str(s.peak_pods), str(s.scale_changes))
    console.print(table)
    console.print(compare(record))
    console.print(compare_frontier(record))
    if (late := _late_text(record)) is not None:
        console.print(f"[yellow]warning[/]: {late}")


def _late_text(record: DemoRecord) -> str | None:
    """A warning when more minutes were sampled late than the 1% a saturation figure is read at: then stalls of the
    event loop (every controller waits through them) weigh in the figures; a few isolated ones do not."""
    if record.late_minutes <= LATE_SHARE * len(record.samples):
        return None
    return (f"{record.late_minutes} of {len(record.samples)} minutes were sampled more than {LATE_S:g} simulated "
            f"seconds late (worst {record.max_delay_s:.0f} s): this machine did not keep up at "
            f"{record.options.speed:g}x and every controller acted late in them; rerun with a lower --speed")


def compare(record: DemoRecord) -> str:
    """One sentence: aihpa's cost and saturated minutes against the HPA's at the same target, whichever way."""
    a, h = record.summary(AIHPA), record.summary(HPA)
    n = len(record.samples)
    cost = (a.pod_minutes / h.pod_minutes - 1.0) if h.pod_minutes else 0.0
    return (f"{AIHPA} used {abs(cost):.1%} {'more' if cost >= 0 else 'fewer'} pod-minutes than {HPA}, and was "
            f"saturated in {a.saturated_minutes} of {n} minutes against {h.saturated_minutes}.")


def compare_frontier(record: DemoRecord) -> str:
    """One sentence: aihpa's cost against the HPA's frontier at aihpa's saturated share, or why there is no figure."""
    c = frontier_comparison(record)
    share = f"{c.aihpa.saturated_share:.2%}"
    if c.ratio is None or c.hpa.pod_minutes is None:
        return f"At {AIHPA}'s saturated share ({share}) the HPA's frontier gives no cost: {c.hpa.reason}."
    return (f"At {AIHPA}'s saturated share ({share}, its risk {record.saturation_risk:.2%}) the HPA's frontier costs "
            f"{c.hpa.pod_minutes:.0f} pod-minutes ({c.hpa.reason}); {AIHPA} used {c.aihpa.pod_minutes:.0f}: "
            f"{c.ratio:.3f} of the HPA's cost.")


def report_json(record: DemoRecord) -> dict[str, Any]:
    """The run's figures for machines: per Deployment, and aihpa against the HPA's frontier (shares are fractions,
    an HPA's target is its CPU utilization as a fraction; `aihpa_vs_hpa_frontier` is null when the frontier gives no
    cost at aihpa's share, with the reason in `hpa_frontier.note`)."""
    c = frontier_comparison(record)
    deployments: dict[str, Any] = {}
    for d in record.deployments:
        s = record.summary(d.name)
        deployments[d.name] = {
            "kind": d.kind,
            "target": d.target_percent / 100 if d.target_percent is not None else None,
            "pod_minutes": s.pod_minutes,
            "saturated_share": s.saturated_share,
            "unserved_share": s.unserved_share,
            "scale_changes": s.scale_changes,
            "peak_pods": s.peak_pods,
            "saturation_risk": record.saturation_risk if d.kind == "aihpa" else None,
        }
    return {
        "trace": record.trace_name,
        "minutes": len(record.samples),
        "interrupted": record.interrupted,
        "peak_cores": record.options.peak_cores,
        "max_sample_delay_s": record.max_delay_s,
        "late_minutes": record.late_minutes,
        "deployments": deployments,
        "hpa_frontier": {
            "points": [{"target": p.target_percent / 100, "saturated_share": p.saturated_share,
                        "pod_minutes": p.pod_minutes} for p in hpa_frontier(c.points)],
            "pod_minutes_at_aihpa_share": c.hpa.pod_minutes,
            "note": c.hpa.reason,
        },
        "aihpa_vs_hpa_frontier": c.ratio,
    }


def write_report(record: DemoRecord) -> tuple[Path, Path]:
    """Write `report.md` and `demo.png` under the run's output directory; returns their paths."""
    out = record.options.out
    out.mkdir(parents=True, exist_ok=True)
    plot = _plot(record, out / "demo.png")
    o = record.options
    hpas = ", ".join(f"`{d.name}` at {d.target_percent}%" for d in record.deployments if d.kind == "hpa")
    lines = [
        "# aihpa demo report",
        "",
        f"- trace: {record.trace_name}, scaled to a peak of {o.peak_cores:g} cores, one sample per simulated minute",
        f"- simulated: {len(record.samples)} of {o.minutes} minutes"
        f"{' (interrupted)' if record.interrupted else ''}, at {o.speed:g}x, in {record.wall_s:.0f} s of wall time",
        f"- pods: 1 core each (request = limit), ready {o.startup_s:g} s after creation",
        f"- timing: {record.late_minutes} of {len(record.samples)} minutes sampled more than {LATE_S:g} simulated "
        f"seconds late (worst {record.max_delay_s:.0f} s), a measure of how well this machine kept up",
        f"- `{AIHPA}`: the aihpa controller (model {record.model_version}) sized to a {record.saturation_risk:.0%} "
        f"saturation risk (its {TARGET_PERCENT}% target is the fallback's while no forecast is trusted); the "
        f"Kubernetes HPA algorithm (autoscaling/v2, default "
        f"behavior) run by the simulated cluster: {hpas}",
        "",
        "| deployment | aims at | pod-minutes (cost) | saturated share | unserved demand | peak pods | scale changes |",
        "|---|---|---:|---:|---:|---:|---:|",
        *(f"| {d.name} | {_target_text(d, record)} | {s.pod_minutes:.0f} | {s.saturated_share:.1%} | "
          f"{s.unserved_share:.1%} | {s.peak_pods} | {s.scale_changes} |"
          for d in record.deployments for s in (record.summary(d.name),)),
        "",
        compare(record),
        "",
        compare_frontier(record),
        "",
        *([f"**Warning**: {late}.", ""] if (late := _late_text(record)) is not None else []),
        "A minute is saturated when demand exceeds the ready pods' cores; unserved demand is the share of all demand "
        "above the ready capacity; cost counts every pod, starting ones included. The HPA's frontier is its settings "
        "that no other beats on both cost and saturation, joined by straight lines; below its lowest saturated share "
        "it is read flat (a lower bound of the HPA's cost), above its highest it gives no figure.",
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
    names = [d.name for d in record.deployments]
    fig = plt.figure(figsize=(15, 6.5))
    grid = fig.add_gridspec(2, 2, width_ratios=(2.6, 1), height_ratios=(3, 1.4))
    top = fig.add_subplot(grid[0, 0])
    bottom = fig.add_subplot(grid[1, 0], sharex=top)
    side = fig.add_subplot(grid[:, 1])
    top.fill_between(hours, demand, color="0.85", label="demand (cores)", step="post")
    colors = {AIHPA: "tab:blue", HPA: "tab:orange"}
    # the timeline shows aihpa and the HPA at the same target; the other HPAs appear in the saturation strip
    for name in (AIHPA, HPA):
        ready = [s.ready[name] for s in record.samples]
        top.step(hours, ready, where="post", color=colors[name], lw=1.4, label=f"{name}: ready pods (capacity)")
    for name in names:
        hot = [s for s, x in zip(hours, record.samples, strict=True) if x.demand > x.ready[name] + 1e-9]
        bottom.scatter(hot, [name] * len(hot), marker="|", s=60, color=colors.get(name, "0.45"))
    top.set_ylabel("cores / pods")
    top.legend(loc="upper left", frameon=False)
    top.set_title(f"aihpa vs HPA on {record.trace_name}")
    bottom.set_ylabel("saturated")
    bottom.set_xlabel("simulated hours")
    bottom.set_ylim(-0.5, len(names) - 0.5)
    bottom.invert_yaxis()
    bottom.tick_params(axis="y", labelsize=8)
    _plot_frontier(side, record)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _plot_frontier(ax: Any, record: DemoRecord) -> None:
    """Cost against saturated minutes: every HPA setting, its frontier, aihpa's point and the frontier at its share."""
    c = frontier_comparison(record)
    n = len(record.samples)
    front = hpa_frontier(c.points)
    ax.plot([p.saturated_share * n for p in front], [p.pod_minutes for p in front], color="tab:orange", lw=1.4,
            label="HPA frontier")
    ax.scatter([p.saturated_share * n for p in c.points], [p.pod_minutes for p in c.points], color="tab:orange",
               zorder=3)
    for p in c.points:
        ax.annotate(f"{p.target_percent}%", (p.saturated_share * n, p.pod_minutes), textcoords="offset points",
                    xytext=(5, 4), fontsize=8, color="tab:orange")
    a = c.aihpa
    ax.scatter([a.saturated_minutes], [a.pod_minutes], marker="*", s=180, color="tab:blue", zorder=4,
               label=f"{AIHPA} (risk {record.saturation_risk:.0%})")
    if c.hpa.pod_minutes is not None:
        ax.scatter([a.saturated_minutes], [c.hpa.pod_minutes], marker="o", facecolors="none", edgecolors="tab:blue",
                   s=60, zorder=4, label=f"HPA frontier at {AIHPA}'s share"
                                     + (f": ratio {c.ratio:.2f}" if c.ratio is not None else ""))
        ax.vlines(a.saturated_minutes, min(a.pod_minutes, c.hpa.pod_minutes), max(a.pod_minutes, c.hpa.pod_minutes),
                  colors="tab:blue", linestyles="dotted")
    ax.set_xlabel(f"saturated minutes (of {n})")
    ax.set_ylabel("pod-minutes (cost)")
    ax.set_title("cost against saturation")
    ax.legend(loc="upper right", frameon=False, fontsize=8)


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m aihpa.demo`: the same as `aihpa demo`."""
    from aihpa.cli import main as cli_main

    return cli_main(["demo", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    raise SystemExit(main())
