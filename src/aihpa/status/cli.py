"""`aihpa status` (also `kubectl aihpa status`): every Deployment labeled aihpa/enabled=true at a glance, as
`kubectl get hpa` shows HPAs, read from the controller's `aihpa/status` annotation.

Read-only: it lists Deployments (get/list, the chart's aihpa-viewer role) and never writes. The Kubernetes client and
rich are imported inside the handlers so that `aihpa --help` stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import IO, TYPE_CHECKING, Any

from aihpa.annotations import LABEL_ENABLED, PolicyDefaults, is_enabled
from aihpa.errors import UserError
from aihpa.status.render import json_text, plain_table, rich_table
from aihpa.status.rows import SPARK_WIDTH, SPARK_WINDOW_S, History, Row, row_from_deployment

if TYPE_CHECKING:
    from aihpa.clock import Clock
    from aihpa.k8s import KubeClient

__all__ = ["add_commands", "list_rows", "show"]

#: Seconds between refreshes of --watch by default.
DEFAULT_INTERVAL_S = 5.0
# Deployments per list request; a cluster with more is read in pages, at most this many.
_PAGE = 500
_MAX_PAGES = 10_000

_DESCRIPTION = f"""\
Show every Deployment labeled {LABEL_ENABLED}=true, as `kubectl get hpa` shows HPAs, from the controller's
aihpa/status annotation: MODE; REPLICAS as current/desired (min-max); USAGE, the CPU cores in use; FORECAST, the
median and the high quantile (p95, else the highest the model gives) of the peak CPU cores forecast over the horizon;
SLO, the share of the last day's steps the workload was short of CPU against the saturation risk it is sized to;
AGE of the status; REASON of the last decision. A labeled Deployment the controller has not reported on yet shows as
pending. It only reads (get/list on deployments: the chart's aihpa-viewer role).

With --watch on a UTF-8 terminal, a LAST HOUR column draws the usage this watch has seen (one sample per refresh;
{SPARK_WIDTH} cells over {SPARK_WINDOW_S / 60:.0f} minutes, blank before the watch began), coloured against the band
forecast before it: green under the median, yellow inside the band, red above its high quantile."""


def add_commands(sub: Any) -> None:
    p = sub.add_parser(
        "status", help="show every aihpa-managed Deployment at a glance (kubectl aihpa status)",
        description=_DESCRIPTION,
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("-n", "--namespace", default=None, help="only Deployments in this namespace (default: all)")
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="Deployments in every namespace "
                       "(the default)")
    p.add_argument("-o", "--output", choices=("table", "wide", "json"), default="table",
                   help="table; wide adds READY, REACTIVE (the HPA rule's count), NEXT (the next step's forecast), "
                   "HORIZON, STEPS, CANDIDATE, MODEL and the whole REASON; json prints every field (with --watch, "
                   "one array per line per refresh)")
    p.add_argument("-w", "--watch", action="store_true", help="refresh every --interval seconds until interrupted")
    p.add_argument("--interval", type=float, default=DEFAULT_INTERVAL_S, metavar="SECONDS",
                   help="seconds between refreshes with --watch")
    p.add_argument("--count", type=int, default=None, metavar="N",
                   help="with --watch, stop after N refreshes (default: until interrupted)")
    p.add_argument("--kubeconfig", default=None,
                   help="kubeconfig file (default: $KUBECONFIG, else in-cluster, else ~/.kube/config)")
    p.add_argument("--context", default=None, help="kubeconfig context (default: its current-context)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise UserError("--interval must be positive")
    if args.count is not None and args.count < 1:
        raise UserError("--count must be at least 1")
    if args.count is not None and not args.watch:
        raise UserError("--count needs --watch")
    return asyncio.run(_connect_and_show(args))


async def _connect_and_show(args: argparse.Namespace) -> int:
    from aihpa.clock import SystemClock
    from aihpa.k8s import KubeClient, api_client

    api = await api_client(kubeconfig=args.kubeconfig, context=args.context)
    async with api:
        return await show(KubeClient(api), namespace=args.namespace, output=args.output, watch=args.watch,
                          interval=args.interval, count=args.count, clock=SystemClock())


async def list_rows(kube: KubeClient, *, namespace: str | None, now: float,
                    defaults: PolicyDefaults | None = None) -> list[Row]:
    """The rows of the labeled Deployments in `namespace` (None: every namespace), by namespace and name."""
    from aihpa.k8s import ForbiddenError, K8sError, TemporaryError

    path = "/apis/apps/v1/deployments" if namespace is None else f"/apis/apps/v1/namespaces/{namespace}/deployments"
    params: dict[str, Any] = {"labelSelector": f"{LABEL_ENABLED}=true", "limit": _PAGE}
    items: list[dict[str, Any]] = []
    try:
        for _ in range(_MAX_PAGES):
            page = await kube.request("GET", path, params=params)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue")
            if not token:
                break
            params["continue"] = token
    except ForbiddenError as exc:
        where = "in every namespace" if namespace is None else f"in namespace {namespace!r}"
        raise UserError(f"not allowed to list Deployments {where}: bind the aihpa-viewer role (the chart creates "
                        f"it) to your user{'' if namespace else ', or pass -n NAMESPACE'} ({exc})") from exc
    except TemporaryError:
        raise
    except K8sError as exc:
        raise UserError(f"cannot list Deployments: {exc}") from exc
    rows = [row_from_deployment(obj, now=now, defaults=defaults) for obj in items
            if is_enabled((obj.get("metadata") or {}).get("labels"))]
    return sorted(rows, key=lambda r: r.key)


async def show(
    kube: KubeClient, *, namespace: str | None, output: str, clock: Clock, watch: bool = False,
    interval: float = DEFAULT_INTERVAL_S, count: int | None = None, out: IO[str] | None = None,
    err: IO[str] | None = None, terminal: bool | None = None, width: int | None = None,
) -> int:
    """List and print the rows once, or, with `watch`, every `interval` seconds of `clock` (`count` times at most).

    `terminal` forces the rich table on (True) or the plain text on (False); None asks whether `out` is a terminal.
    A refresh that fails for a temporary reason during a watch is reported on `err` and tried again next time.
    """
    from aihpa.k8s import TemporaryError

    out = out or sys.stdout
    err = err or sys.stderr
    printer = _Printer(out=out, err=err, output=output, watch=watch, interval=interval, terminal=terminal,
                       width=width, namespace=namespace)
    history = History()
    shown = 0
    try:
        while True:
            now = clock.now()
            try:
                rows = await list_rows(kube, namespace=namespace, now=now)
            except TemporaryError as exc:
                if not watch:
                    raise UserError(f"cannot list Deployments: {exc}") from exc
                print(f"refresh failed, trying again in {interval:g} s: {exc}", file=err, flush=True)
            else:
                history.add(rows, now)
                printer.show(rows, history=history, now=now)
            shown += 1
            if not watch or (count is not None and shown >= count):
                return 0
            await clock.sleep(interval)
    finally:
        printer.close()


class _Printer:
    """Prints each refresh as the output format and the stream call for."""

    def __init__(self, *, out: IO[str], err: IO[str], output: str, watch: bool, interval: float,
                 terminal: bool | None, width: int | None, namespace: str | None) -> None:
        self.out, self.err, self.output, self.watch, self.interval = out, err, output, watch, interval
        self.namespace = namespace
        self.shown = 0
        self._live: Any = None
        self._console: Any = None
        if output != "json":
            from rich.console import Console

            console = Console(file=out, force_terminal=terminal, width=width, highlight=False)
            if terminal is not False and console.is_terminal:
                self._console = console

    @property
    def sparks(self) -> bool:
        return self._console is not None and self._console.encoding.lower().replace("-", "").startswith("utf8")

    def show(self, rows: list[Row], *, history: History, now: float) -> None:
        wide = self.output == "wide"
        one_namespace = self.namespace is not None
        if self.output == "json":
            print(json_text(rows, compact=self.watch), file=self.out, flush=True)
        elif not rows and not self.watch:
            where = "in any namespace" if self.namespace is None else f"in namespace {self.namespace}"
            print(f"No Deployments labeled {LABEL_ENABLED}=true found {where}.", file=self.err, flush=True)
        elif self._console is None:
            if self.shown:
                print(file=self.out)
            print(plain_table(rows, wide=wide, show_namespace=not one_namespace), file=self.out, flush=True)
        else:
            table = rich_table(rows, wide=wide, show_namespace=not one_namespace, history=history, now=now,
                               sparks=self.sparks)
            if not self.watch:
                self._console.print(table)
            else:
                self._update_live(table, now=now, empty=not rows)
        self.shown += 1

    def _update_live(self, table: Any, *, now: float, empty: bool) -> None:
        from datetime import UTC, datetime

        from rich.console import Group
        from rich.live import Live
        from rich.text import Text

        stamp = datetime.fromtimestamp(now, tz=UTC).strftime("%H:%M:%S UTC")
        head = Text(f"every {self.interval:g} s, last at {stamp} (Ctrl-C to stop)"
                    + ("; no labeled Deployments yet" if empty else ""), style="dim")
        view = Group(head, table)
        if self._live is None:
            # no refresh thread: the watch loop redraws once per refresh
            self._live = Live(view, console=self._console, auto_refresh=False, redirect_stdout=False,
                              redirect_stderr=False)
            self._live.start(refresh=True)
        else:
            self._live.update(view, refresh=True)

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
