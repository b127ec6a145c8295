#!/usr/bin/env python3
"""Draw the chart's Grafana dashboard (charts/aihpa/dashboards/aihpa.json) as a PNG, with sample data.

Each panel is drawn from the dashboard JSON: its title, its grid position, and each target's PromQL expression
evaluated by a real Prometheus (`query_range`; the Debian package `prometheus`) over sample series. The sample series
are the exposition of the controller's and the webhook's own metric objects (`ControllerMetrics`, `WebhookMetrics`),
set minute by minute from a small synthetic run: two controller replicas (one leader), two webhook pods, and two
workloads whose usage is the shipped NAB trace (`shop/web`) and a smooth wave (`shop/checkout`). The forecasts and
decisions in it are a stand-in (a seasonal-naive forecast with an error band, sized as aihpa sizes), not the model's:
the picture shows what the panels show, not how well aihpa forecasts. The series are backfilled into a fresh TSDB
with `promtool tsdb create-blocks-from openmetrics`, as an operator backfills.

    python hack/render-dashboard.py --out examples/dashboard.png

tests/chart/test_monitoring.py loads this file to evaluate every dashboard query against the same sample data.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry

from aihpa.observability import ControllerMetrics
from aihpa.webhook.server import WebhookMetrics

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "charts" / "aihpa" / "dashboards" / "aihpa.json"
TRACE = ROOT / "src" / "aihpa" / "data" / "nab_awsasg_cpu_5min.csv"
#: Where the sample's six hours start in the trace: bursts that drift, so the stand-in forecast misses a few.
TRACE_OFFSET = 14000
INSTALL = "apt-get install prometheus"

STEP_S = 60  # one scrape per minute, one model step per minute
MINUTES = 6 * 60
CYCLES_PER_STEP = 4  # the controller's 15 s sync period
RISK = 0.01
TARGET_UTILIZATION = 0.7
MODEL_VERSION = "0.1.0"
#: Values for the dashboard's variables when its expressions are evaluated outside Grafana.
VARIABLES = {"namespace": "shop", "deployment": "web", "__rate_interval": "5m", "__interval": "1m"}
#: z-scores of the quantiles the controller exports (a normal error band around the forecast).
QUANTILES = {"p50": 0.0, "p75": 0.674, "p90": 1.282, "p95": 1.645, "p99": 2.326}
#: Minutes in which the forecast fails in the sample (the errors panel and AihpaForecastsFailing's input).
FORECAST_FAILURES = range(250, 255)


def substitute(expr: str, variables: dict[str, str] | None = None) -> str:
    """The expression as Grafana sends it: $name and ${name} replaced by the variables' values."""
    values = VARIABLES if variables is None else variables

    def value(match: re.Match[str]) -> str:
        name = match[1] or match[2]
        if name not in values:
            raise KeyError(f"no value for the dashboard variable ${name} in {expr!r}")
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(panel title, legend format, expression) of every target of every panel, rows included."""
    found: list[tuple[str, str, str]] = []
    for panel in _panels(dashboard):
        for target in panel.get("targets", []):
            found.append((panel["title"], target.get("legendFormat", ""), target["expr"]))
    return found


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


# --- sample data ------------------------------------------------------------------------------------------------


def _usage() -> dict[tuple[str, str], np.ndarray]:
    with TRACE.open() as f:
        cpu = np.array([float(row["cpu"]) for row in csv.DictReader(f)])
    five_min = cpu[TRACE_OFFSET:TRACE_OFFSET + MINUTES // 5 + 1] / 10.0  # percent of a 10-core group -> cores
    web = np.interp(np.arange(MINUTES), np.arange(five_min.size) * 5, five_min)
    minutes = np.arange(MINUTES)
    checkout = 1.5 + 0.8 * np.sin(2 * math.pi * minutes / 180) + 0.1 * np.sin(2 * math.pi * minutes / 7)
    return {("shop", "web"): web, ("shop", "checkout"): checkout}


@dataclass
class _Sized:
    """One workload's stand-in forecasts and decisions, minute by minute."""

    usage: np.ndarray
    forecast: dict[str, np.ndarray] = field(default_factory=dict)
    peak: dict[str, np.ndarray] = field(default_factory=dict)
    current: np.ndarray = field(default_factory=lambda: np.zeros(0))
    desired: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reactive: np.ndarray = field(default_factory=lambda: np.zeros(0))
    reasons: list[str] = field(default_factory=list)
    share: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _size(usage: np.ndarray, *, season: int = 60, history: int = 60) -> _Sized:
    """A seasonal-naive forecast of the next minutes (the values one season earlier) with a band from its recent
    absolute errors; the pods of one core each that its p99 peak needs, with the pods the usage fills now as a floor;
    the HPA's count at the target utilization while there is no forecast; a minute to act."""
    n = usage.size
    s = _Sized(usage=usage)
    level = np.full(n, np.nan)
    level[season:] = usage[:-season]
    errors = np.abs(level - usage)
    s.forecast = {q: np.full(n, np.nan) for q in QUANTILES}
    s.peak = {q: np.full(n, np.nan) for q in QUANTILES}
    s.current, s.desired, s.reactive, s.share = (np.zeros(n) for _ in range(4))
    saturated = 0
    current = math.ceil(usage[0] / TARGET_UTILIZATION)
    for t in range(n):
        reactive = max(1, math.ceil(usage[t] / TARGET_UTILIZATION))
        nxt = t + 1
        failed = t in FORECAST_FAILURES
        if t >= history and nxt < n and not failed:
            recent = errors[max(season, nxt - 30):nxt]
            spread = 0.1 + 1.25 * float(np.nanmean(recent)) if recent.size else 0.5
            for q, z in QUANTILES.items():
                s.forecast[q][t] = level[nxt] + z * spread
                s.peak[q][t] = max(level[nxt:nxt + 5]) + z * spread
            need = max(1, math.ceil(s.peak["p99"][t]))
            floor = max(1, math.ceil(usage[t]))  # the HPA at what pods may use: the safety net under a forecast
            desired, reason = (need, "forecast") if need >= floor else (floor, "reactive-floor")
        else:
            desired, reason = reactive, "fallback"
        saturated += usage[t] >= current
        s.current[t], s.desired[t], s.reactive[t] = current, desired, reactive
        s.reasons.append(reason)
        s.share[t] = saturated / (t + 1)
        current = desired  # applied before the next minute
    return s


@dataclass(frozen=True)
class Scrape:
    """One scraped target: its registry and the labels Prometheus adds to its series."""

    registry: CollectorRegistry
    labels: dict[str, str]


def sample_scrapes(start: int) -> Iterator[tuple[int, list[Scrape]]]:
    """(unix time, the targets' registries at that time) for each minute of the sample run."""
    rng = np.random.default_rng(7)
    controllers = [ControllerMetrics() for _ in range(2)]
    webhooks = [WebhookMetrics() for _ in range(2)]
    sized = {key: _size(u) for key, u in _usage().items()}
    scrapes = [Scrape(m.registry, {"job": "aihpa-controller", "instance": f"10.0.0.{i + 1}:8080",
                                   "pod": f"aihpa-controller-{i}"}) for i, m in enumerate(controllers)]
    scrapes += [Scrape(w.registry, {"job": "aihpa-webhook", "instance": f"10.0.1.{i + 1}:8443",
                                    "pod": f"aihpa-webhook-{i}"}) for i, w in enumerate(webhooks)]
    for i, m in enumerate(controllers):
        m.leader.set(1 if i == 0 else 0)
        m.model.labels(version=MODEL_VERSION).set(1)
        m.workloads.labels(state="active").set(len(sized))
        m.workloads.labels(state="skipped").set(0)
    for w in webhooks:
        w.cert_expiry.set(start + 200 * 86400)
    for t in range(MINUTES):
        now = start + t * STEP_S
        for leader, m in enumerate(controllers):
            is_leader = leader == 0
            for (ns, name), s in sized.items():
                m.usage.labels(ns, name).set(float(s.usage[t]))
                for q in QUANTILES:
                    if not math.isnan(s.forecast[q][t]):
                        m.forecast.labels(ns, name, q).set(float(s.forecast[q][t]))
                        m.forecast_peak.labels(ns, name, q).set(float(s.peak[q][t]))
                for kind, counts in (("current", s.current), ("desired", s.desired), ("reactive", s.reactive)):
                    m.replicas.labels(ns, name, kind).set(float(counts[t]))
                m.saturation_risk.labels(ns, name).set(RISK)
                m.saturated_share.labels(ns, name).set(float(s.share[t]))
                reason = s.reasons[t]
                m.decisions.labels(reason=reason).inc(CYCLES_PER_STEP)
                if is_leader and t and s.current[t] != s.current[t - 1]:
                    m.scalings.labels(direction="up" if s.current[t] > s.current[t - 1] else "down").inc()
            if t in FORECAST_FAILURES:
                m.errors.labels(kind="forecast").inc()
            if t == 100:
                m.object_errors.labels(kind="Deployment", reason="ValueError").inc()
            for _ in range(CYCLES_PER_STEP):
                m.cycle.observe(float(rng.gamma(4.0, 0.01)))
            if t not in FORECAST_FAILURES:
                m.forecast_latency.observe(float(rng.gamma(4.0, 0.004)))
        for w in webhooks:
            requests = int(rng.poisson(3))
            for _ in range(requests):
                w.latency.observe(float(rng.gamma(2.0, 0.0004)))
            w.by_outcome["mutated"].inc(requests)
            w.by_outcome["allowed"].inc(int(rng.poisson(6)))
            w.connections.set(int(rng.integers(1, 5)))
        yield now, scrapes


def openmetrics(start: int) -> str:
    """The sample run as OpenMetrics text with timestamps, one series after another (`_created` samples left out)."""
    families: dict[str, tuple[str, dict[tuple[str, tuple[tuple[str, str], ...]], list[str]]]] = {}
    for now, scrapes in sample_scrapes(start):
        for scrape in scrapes:
            for family in scrape.registry.collect():
                kind, series = families.setdefault(family.name, (family.type, {}))
                for sample in family.samples:
                    if sample.name.endswith("_created"):
                        continue
                    labels = tuple(sorted({**sample.labels, **scrape.labels}.items()))
                    series.setdefault((sample.name, labels), []).append(f"{_number(sample.value)} {now}")
    lines: list[str] = []
    for name, (kind, series) in families.items():
        lines.append(f"# TYPE {name} {kind}")
        for (sample_name, labels), points in series.items():
            text = ",".join(f'{k}="{v}"' for k, v in labels)
            lines.extend(f"{sample_name}{{{text}}} {point}" for point in points)
    lines.append("# EOF")
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def sample_window() -> tuple[int, int]:
    """Start and end (unix seconds) of the sample run: whole hours in the past, so the backfilled blocks are complete
    and inside the retention."""
    end = (int(time.time()) // 3600) * 3600 - 3600
    return end - (MINUTES - 1) * STEP_S, end


# --- a real Prometheus over the sample ------------------------------------------------------------------------------


def tools() -> tuple[str, str]:
    prometheus, promtool = shutil.which("prometheus"), shutil.which("promtool")
    if not prometheus or not promtool:
        raise RuntimeError(f"Prometheus and promtool are not installed: `{INSTALL}`")
    return prometheus, promtool


@dataclass(frozen=True)
class Prometheus:
    url: str
    start: int
    end: int

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        return self._get("query", {"query": expr, "time": str(at)})

    def query_range(self, expr: str, *, step: int = STEP_S) -> list[dict[str, Any]]:
        return self._get("query_range", {"query": expr, "start": str(self.start), "end": str(self.end),
                                         "step": str(step)})

    def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                body = json.load(resp)
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"{params['query']!r}: {exc.read().decode()}") from exc
        if body["status"] != "success":
            raise RuntimeError(f"{params['query']!r}: {body}")
        result: list[dict[str, Any]] = body["data"]["result"]
        return result


@contextmanager
def sample_prometheus(workdir: Path) -> Iterator[Prometheus]:
    """A Prometheus on 127.0.0.1 serving the sample run, backfilled into a fresh TSDB under `workdir` (the metrics
    tests' server, `tests.metrics.promserver`)."""
    tools()  # a clear message before anything starts
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.metrics.promserver import serve_prometheus

    start, end = sample_window()
    with serve_prometheus(workdir, openmetrics(start)) as url:
        yield Prometheus(url=url, start=start, end=end)


# --- the picture ----------------------------------------------------------------------------------------------------


def legend(fmt: str, labels: dict[str, str]) -> str:
    """Grafana's legend format: {{label}} replaced by the series' label."""
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), fmt) or json.dumps(labels)


def render(dashboard: dict[str, Any], prom: Prometheus, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from datetime import UTC

    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    panels = list(_panels(dashboard))
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    cell_w, cell_h, header = 0.62, 0.42, 0.5
    fig = plt.figure(figsize=(24 * cell_w, rows * cell_h + header))
    fig.suptitle(f"Grafana dashboard \"{dashboard['title']}\" (namespace={VARIABLES['namespace']}, "
                 f"deployment={VARIABLES['deployment']}), rendered from the dashboard JSON with sample data",
                 fontsize=11, y=0.995)
    top = 1 - header / (rows * cell_h + header)
    for panel in panels:
        g = panel["gridPos"]
        box = (g["x"] / 24 + 0.035, top - (g["y"] + g["h"]) / rows * top + 0.045,
               g["w"] / 24 - 0.05, g["h"] / rows * top - 0.085)
        ax = fig.add_axes(box)
        ax.set_title(panel["title"], fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        unit = panel["fieldConfig"]["defaults"].get("unit", "")
        if panel["type"] == "stat":
            _stat(ax, panel, prom, unit)
            continue
        lines: dict[str, Any] = {}
        for target in panel["targets"]:
            for series in prom.query_range(substitute(target["expr"])):
                ts = np.array([float(t) for t, _ in series["values"]]).astype("datetime64[s]")
                values = [float(v) for _, v in series["values"]]
                name = legend(target.get("legendFormat", ""), series["metric"])
                lines[name] = ax.plot(ts, values, lw=1, label=name)[0]
        for override in panel["fieldConfig"].get("overrides", []):
            props = {p["id"]: p["value"] for p in override["properties"]}
            upper, lower = lines.get(override["matcher"]["options"]), lines.get(props.get("custom.fillBelowTo", ""))
            if upper is not None and lower is not None:
                ax.fill_between(upper.get_xdata(), lower.get_ydata(), upper.get_ydata(),
                                color=upper.get_color(), alpha=0.2, lw=0)
        if unit == "percentunit":
            ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M", tz=UTC))  # type: ignore[no-untyped-call]
        ax.grid(alpha=0.3)
        if lines:
            ax.legend(fontsize=6, loc="upper left", ncols=min(len(lines), 4), frameon=False)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _stat(ax: Any, panel: dict[str, Any], prom: Prometheus, unit: str) -> None:
    ax.set_axis_off()
    texts = []
    for target in panel["targets"]:
        for series in prom.query(substitute(target["expr"]), at=prom.end):
            if panel["options"].get("textMode") == "name":
                texts.append(legend(target.get("legendFormat", ""), series["metric"]))
            else:
                value = float(series["value"][1])
                texts.append(f"{value:.0f} {'days' if unit == 'd' else ''}".strip())
    ax.text(0.5, 0.4, "\n".join(texts) or "no data", ha="center", va="center", fontsize=16, color="tab:green")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "dashboard.png", help="the PNG to write")
    args = parser.parse_args()
    dashboard = json.loads(DASHBOARD.read_text())
    with tempfile.TemporaryDirectory() as tmp, sample_prometheus(Path(tmp)) as prom:
        print(render(dashboard, prom, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
