"""`aihpa controller`: run the operator against a cluster (in-cluster config or a kubeconfig).

Serves /metrics, /healthz and /readyz on --host:--port; stops cleanly on SIGTERM or SIGINT. A missing
--controller-namespace (where the Lease and the profiles live) stops it at start with the fix, rather than a failed
Lease write every round. Logging is set up by `aihpa.cli` (info by default here, JSON lines unless --log-format text).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

from aihpa.cli_flags import deprecated_aliases, renamed_flag
from aihpa.errors import UserError
from aihpa.policy_flags import add_policy_default_flags, policy_defaults

__all__ = ["add_commands"]

logger = logging.getLogger(__name__)

#: --controller-namespace's default (`aihpa sim serve` creates it, so the offline steps work as written)
CONTROLLER_NAMESPACE = "aihpa"
#: --kube-api-qps and --kube-api-burst defaults: KubeClient's own (`aihpa.k8s.client.DEFAULT_QPS`, `DEFAULT_BURST`; a
#: test holds them equal), written out so that building the parser does not import the Kubernetes client
KUBE_API_QPS = 200.0
KUBE_API_BURST = 2000


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "controller",
        help="run the controller: forecast and scale every Deployment labeled aihpa/enabled=true",
        description="Watch labeled Deployments, forecast their CPU demand and scale them ahead of load. Logs each "
        "decision that changes a count (one line, at info), and serves /metrics, /healthz and /readyz.",
    )
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)")
    p.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    # --namespace, its former name, read as the namespace of the Deployments to kubectl users
    renamed_flag(p, "--controller-namespace", "--namespace", dest="namespace", default=CONTROLLER_NAMESPACE,
                 metavar="NAMESPACE",
                 help="the controller's own namespace, where its Lease and the replica profiles live (not the "
                 "Deployments': see --watch-namespace)")
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--watch-namespace", default=None, metavar="NAMESPACE",
                       help="only manage Deployments in this namespace (default: every namespace)")
    scope.add_argument("--all-namespaces", action="store_true", help="manage Deployments in every namespace "
                       "(the default)")
    p.add_argument("--dry-run", action="store_true",
                   help="decide and report (Events, status, metrics) for every workload, never patch a scale")
    p.add_argument("--log-format", choices=("json", "text"), default="json",
                   help="log lines as one JSON object each (for a log collector), or as text")
    p.add_argument("--metrics", choices=("metrics-api", "prometheus"), default="metrics-api",
                   help="where CPU usage comes from: metrics.k8s.io (metrics-server), or Prometheus")
    p.add_argument("--prometheus-url", default=None,
                   help="Prometheus base URL (with --metrics prometheus, and for any --metric-query)")
    p.add_argument("--prometheus-query", default=None,
                   help="PromQL template with $namespace, $name, $pod_regex, $rate_window (default: container CPU "
                   "usage rate)")
    p.add_argument("--metric-query", action="append", default=[], metavar="NAME=PROMQL",
                   help="a named query a workload may scale on instead of CPU (annotations aihpa/metric: NAME and "
                   "aihpa/metric-target: its per-pod target), a PromQL template with the same placeholders as "
                   "--prometheus-query, read from --prometheus-url; repeat for more (default: none, CPU only)")
    p.add_argument("--model", default=None, metavar="DIR", help="checkpoint or models directory (default: shipped)")
    p.add_argument("--port", type=int, default=8080, help="port of /metrics, /healthz and /readyz")
    p.add_argument("--host", default="0.0.0.0",
                   help="address /metrics, /healthz and /readyz listen on; every interface by default, as the "
                   "kubelet's probes and Prometheus reach a pod at its IP (127.0.0.1: this machine only)")
    p.add_argument("--sync-period", type=float, default=15.0, metavar="SECONDS", help="seconds between cycles")
    # the former name of --default-saturation-risk, kept as an alias
    p.add_argument("--risk", dest="default_saturation_risk", type=float, default=argparse.SUPPRESS,
                   help=argparse.SUPPRESS)
    p.add_argument("--identity", default=None, help="name in the leader election (default: hostname)")
    p.add_argument("--no-leader-election", action="store_true", help="act without holding the lease")
    p.add_argument("--shards", type=int, default=1, metavar="N",
                   help="split the workloads into N shards by a stable hash of namespace/name, each with its own "
                   "Lease (aihpa-controller-shard-<i>-of-<N>) and its own replicas (default: 1, one Lease "
                   "aihpa-controller for all)")
    p.add_argument("--shard", type=int, default=0, metavar="I",
                   help="the shard this replica serves, 0..N-1; its replicas compete for that shard's Lease only "
                   "(default: 0)")
    p.add_argument("--kube-api-qps", type=float, default=KUBE_API_QPS, metavar="QPS",
                   help="writes a second to the API server, sustained (client-go's rate limiter; 0: unlimited) "
                   f"(default: {KUBE_API_QPS:g})")
    p.add_argument("--kube-api-burst", type=int, default=KUBE_API_BURST, metavar="N",
                   help=f"writes sent at once before --kube-api-qps paces them (default: {KUBE_API_BURST})")
    p.add_argument("--history-file", default=None, help="persist the usage history here, e.g. on a PVC (default: "
                   "kept in memory only)")
    p.add_argument("--profile-shards", type=int, default=4, metavar="N",
                   help="ConfigMaps the replica profiles are spread over")
    p.add_argument("--models-dir", default=None, metavar="DIR",
                   help="enable the model life cycle: fine-tuned challengers are saved here (e.g. a PVC) and "
                   "promoted when they beat the model in use on recent history (default: off)")
    p.add_argument("--retrain-every", type=float, default=21600.0, metavar="SECONDS",
                   help="how often to challenge the model, in seconds (21600: 6 h); drift triggers one sooner")
    add_policy_default_flags(p)
    # a long-running service: it logs at info (each decision that changes a count) unless told otherwise
    p.set_defaults(handler=_run, log_level=logging.INFO)


def _settings(args: argparse.Namespace) -> Any:
    # flag mistakes are reported before the controller's modules load
    defaults = policy_defaults(args)
    if args.sync_period <= 0:
        raise UserError("--sync-period must be positive")
    if args.kube_api_qps < 0 or args.kube_api_burst < 1:
        raise UserError(f"--kube-api-qps must be 0 (unlimited) or more and --kube-api-burst at least 1, got "
                        f"{args.kube_api_qps:g} and {args.kube_api_burst}")
    if args.shards < 1:
        raise UserError(f"--shards must be at least 1, got {args.shards}")
    if not 0 <= args.shard < args.shards:
        raise UserError(f"--shard must be in 0..{args.shards - 1} (one of --shards {args.shards}), got {args.shard}")

    from dataclasses import replace

    from aihpa.controller import ControllerSettings
    from aihpa.lifecycle import LifecycleSettings

    settings = ControllerSettings(
        sync_period_s=args.sync_period,
        namespace=args.namespace,
        watch_namespace=args.watch_namespace,
        leader_election=not args.no_leader_election,
        defaults=defaults,
        history_file=args.history_file,
        profile_shards=args.profile_shards,
        shards=args.shards,
        shard=args.shard,
        dry_run=args.dry_run,
        lifecycle=None if args.models_dir is None else LifecycleSettings(models_dir=args.models_dir),
        retrain_every_s=args.retrain_every,
    )
    return replace(settings, identity=args.identity) if args.identity else settings


def metric_queries(args: argparse.Namespace) -> dict[str, str]:
    """The named queries of --metric-query, checked; a `UserError` naming the flag and the fix for a bad one."""
    from aihpa.annotations import MAX_METRIC_NAME_CHARS, METRIC_NAME
    from aihpa.metrics.prometheus import check_template

    queries: dict[str, str] = {}
    for given in args.metric_query:
        name, sep, query = given.partition("=")
        name = name.strip()
        if not sep:
            raise UserError(f"--metric-query {given!r}: write NAME=PROMQL, e.g. "
                            "rps='sum(rate(http_requests_total{namespace=\"$namespace\",pod=~\"$pod_regex\"}[2m]))'")
        if not METRIC_NAME.fullmatch(name):
            raise UserError(f"--metric-query {name!r}: a name is letters, digits, '-', '_' and '.', at most "
                            f"{MAX_METRIC_NAME_CHARS} characters, as aihpa/metric names it")
        if name in queries:
            raise UserError(f"--metric-query {name!r} is given twice")
        try:
            check_template(query)
        except ValueError as exc:
            raise UserError(f"--metric-query {name}: {exc}") from exc
        queries[name] = query
    if queries and not args.prometheus_url:
        raise UserError("--metric-query needs --prometheus-url (named queries are read from Prometheus)")
    if args.prometheus_query is not None:
        try:
            check_template(args.prometheus_query)
        except ValueError as exc:
            raise UserError(f"--prometheus-query: {exc}") from exc
    return queries


def _run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.metrics == "prometheus" and not args.prometheus_url:
        raise UserError("--metrics prometheus needs --prometheus-url")
    args.metric_queries = metric_queries(args)
    from aihpa.controller.process import tune_garbage_collector

    tune_garbage_collector()  # a controller process's collector (see `aihpa.controller.process`)
    asyncio.run(_serve(args, settings))
    return 0


async def check_namespace(kube: Any, namespace: str, *, flag: str = "--controller-namespace") -> None:
    """Raise a `UserError` naming the fix when the controller's namespace does not exist; `flag` is how the
    command line names the setting (the deprecated --namespace, when that is what was typed).

    Only a 404 stops the start: without the right to read namespaces (403), or with the API server briefly away, the
    controller starts as before and its Lease writes tell the rest.
    """
    from aihpa.k8s.errors import K8sError, NotFoundError

    try:
        await kube.get(f"/api/v1/namespaces/{namespace}")
    except NotFoundError as exc:
        raise UserError(f"namespace {namespace!r} not found: create it with `kubectl create namespace {namespace}` "
                        f"or pass {flag}") from exc
    except K8sError as exc:
        logger.warning("cannot check namespace %r (%s); starting anyway", namespace, exc)


async def _serve(args: argparse.Namespace, settings: Any) -> None:
    from aihpa.k8s import KubeClient, api_client

    api = await api_client(kubeconfig=args.kubeconfig, context=args.context)
    async with api:
        # before the model loads (seconds): a wrong namespace fails at once
        flag = "--namespace" if "--namespace" in deprecated_aliases(args) else "--controller-namespace"
        await check_namespace(KubeClient(api), settings.namespace, flag=flag)
        await _serve_with(args, settings, api)


async def _serve_with(args: argparse.Namespace, settings: Any, api: Any) -> None:
    from aiohttp import web

    from aihpa.controller import Controller
    from aihpa.forecast.forecaster import BiLSTMForecaster, UnavailableForecaster, load_default_forecaster
    from aihpa.k8s import KubeClient
    from aihpa.metrics import MetricsAPISource, PrometheusSource, RoutedSource
    from aihpa.observability import health_app

    loop = asyncio.get_running_loop()
    forecaster: Any
    try:
        # with a life cycle, the last promoted version (kept in --models-dir) outlives restarts
        checkpoint = args.model
        if checkpoint is None and args.models_dir is not None and (Path(args.models_dir) / "latest").is_file():
            checkpoint = args.models_dir
        forecaster = await loop.run_in_executor(
            None,
            lambda: load_default_forecaster() if checkpoint is None else BiLSTMForecaster.from_checkpoint(checkpoint),
        )
    except Exception as exc:  # the controller keeps scaling reactively rather than not at all
        logger.error("model %s failed to load, running REACTIVE ONLY: %s", args.model or "(shipped)", exc)
        forecaster = UnavailableForecaster(reason=f"model failed to load: {exc}")
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    kube = KubeClient(api, qps=args.kube_api_qps or None, burst=args.kube_api_burst)
    source: Any
    queries = getattr(args, "metric_queries", {})
    if args.metrics == "prometheus":
        kwargs = {"query": args.prometheus_query} if args.prometheus_query else {}
        # one source for CPU and the named queries alike
        source = PrometheusSource(args.prometheus_url, queries=queries, **kwargs)
    elif queries:
        source = RoutedSource(cpu=MetricsAPISource(kube), named=PrometheusSource(args.prometheus_url, queries=queries))
    else:
        source = MetricsAPISource(kube)
    if queries:
        logger.info("named metrics: %s", ", ".join(sorted(queries)))
    controller = Controller(client=kube, metrics=source, forecaster=forecaster, settings=settings)
    runner = web.AppRunner(health_app(controller.metrics, healthy=controller.healthy, ready=controller.ready),
                           access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.host, args.port).start()
    logger.info("aihpa controller %s serving on %s:%d, model %s", settings.identity, args.host, args.port,
                forecaster.version)
    try:
        async with controller:
            await stop.wait()
    finally:
        await runner.cleanup()
        if isinstance(source, PrometheusSource | RoutedSource):
            await source.close()
