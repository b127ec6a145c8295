"""What `aihpa status` shows of one managed Deployment: a row read from the object and its `aihpa/status` annotation,
the cells of the table, the JSON object, and the sparkline of the usage a watch has seen.

Pure: standard library and `aihpa.annotations` only; no I/O, no clock (every function that needs the time takes
`now`). It must never import the Kubernetes client, the network, rich or JAX.
"""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from aihpa.annotations import ANNOTATION_STATUS, PolicyDefaults, parse_policy
from aihpa.durations import human_duration as human_age

__all__ = [
    "BLOCKS",
    "PENDING_REASON",
    "SPARK_WIDTH",
    "SPARK_WINDOW_S",
    "History",
    "Row",
    "Sample",
    "Spark",
    "human_age",
    "percent",
    "row_from_deployment",
    "sparkline",
]

#: Eight heights of a sparkline cell, lowest first.
BLOCKS = "▁▂▃▄▅▆▇█"
#: The sparkline covers this many seconds before now ...
SPARK_WINDOW_S = 3600.0
#: ... in this many cells (two minutes each).
SPARK_WIDTH = 30
#: The reason of a labeled Deployment the controller has not written a status for yet.
PENDING_REASON = "pending: no status from the controller yet"

Zone = Literal["none", "below", "inside", "above"]


def _number(value: object) -> float | None:
    """A finite number from JSON, else None (a status written by another version may lack or change a field)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _quantiles(values: object) -> dict[str, float]:
    """{"p50": 1.2, ...} keeping only keys of the form p<number> with numeric values, sorted by quantile."""
    if not isinstance(values, Mapping):
        return {}
    found: list[tuple[float, str, float]] = []
    for key, raw in values.items():
        number = _number(raw)
        if not (isinstance(key, str) and key.startswith("p") and number is not None):
            continue
        try:
            level = float(key[1:])
        except ValueError:
            continue
        found.append((level, key, number))
    return {key: number for _, key, number in sorted(found)}


def band(values: object) -> tuple[tuple[str, float], tuple[str, float]] | None:
    """(median, high) of a quantile map: p50 (else the lowest quantile) and p95 (else the highest); None if empty."""
    q = _quantiles(values)
    if not q:
        return None
    keys = list(q)
    low = "p50" if "p50" in q else keys[0]
    high = "p95" if "p95" in q else keys[-1]
    return (low, q[low]), (high, q[high])


@dataclass(frozen=True, slots=True)
class Row:
    """One managed Deployment as `aihpa status` reports it. Counts and cores are None where nothing says them."""

    namespace: str
    name: str
    mode: str
    # spec.replicas (the count in force), status.readyReplicas, and the controller's decision (status "replicas")
    current: int | None
    ready: int
    desired: int | None
    min_replicas: int
    max_replicas: int
    # what the HPA's rule alone would set (status "reactive")
    reactive: int | None
    # usage as the controller last measured it, in `unit` (CPU cores, or the workload's named metric)
    usage: float | None
    # the status's forecast as written: {"horizon_s", "next": {p..}, "peak": {p..}}, or None before the first
    forecast: Mapping[str, Any] | None
    # the SLO: the saturation risk sized to, the realized share of short steps over the last day, and its steps
    risk: float
    saturated_share: float | None
    slo_steps: int | None
    reason: str
    candidate: str | None
    model: str | None
    # when the status was written (ISO 8601) and how long before `now`, in seconds
    time: str | None
    age_s: float | None
    pending: bool
    # policy annotations that fell back to their defaults, and why
    warnings: tuple[str, ...] = ()
    # what usage and forecasts count: "cores", or the workload's named metric
    unit: str = "cores"

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.name

    @property
    def breached(self) -> bool:
        """Whether the realized saturated share is above the risk the workload is sized to."""
        return self.saturated_share is not None and self.saturated_share > self.risk

    @property
    def _unit_suffix(self) -> str:
        return "" if self.unit == "cores" else f" {self.unit}"

    def cells(self, *, wide: bool = False, reason_width: int = 48) -> dict[str, str]:
        """The table's cells by column, as text; `wide` adds columns and keeps the reason whole."""
        replicas = f"{_or_dash(self.current)}/{_or_dash(self.desired)} ({self.min_replicas}-{self.max_replicas})"
        cells = {
            "NAMESPACE": self.namespace,
            "NAME": self.name,
            "MODE": self.mode,
            "REPLICAS": replicas,
            "USAGE": "-" if self.usage is None else f"{self.usage:.2f}{self._unit_suffix}",
            "FORECAST": self.forecast_cell(),
            "SLO": f"{'-' if self.saturated_share is None else percent(self.saturated_share)}/{percent(self.risk)}",
            "AGE": "-" if self.age_s is None else human_age(self.age_s),
            "REASON": self.reason if wide else _truncate(self.reason, reason_width),
        }
        if wide:
            horizon = _number((self.forecast or {}).get("horizon_s"))
            cells |= {
                "READY": f"{self.ready}/{_or_dash(self.current)}",
                "REACTIVE": _or_dash(self.reactive),
                "NEXT": self.forecast_cell("next"),
                "HORIZON": "-" if horizon is None else human_age(horizon),
                "STEPS": _or_dash(self.slo_steps),
                "CANDIDATE": self.candidate or "-",
                "MODEL": self.model or "-",
            }
        return cells

    def forecast_cell(self, which: str = "peak") -> str:
        """"p50/high (pNN)" of the forecast's peak over its horizon (or of its next step)."""
        found = band((self.forecast or {}).get(which))
        if found is None:
            return "-"
        (_, low), (high_key, high) = found
        return f"{low:.2f}/{high:.2f} ({high_key})"

    def to_json(self) -> dict[str, Any]:
        """Every field, for `-o json`."""
        return {
            "namespace": self.namespace,
            "name": self.name,
            "mode": self.mode,
            "pending": self.pending,
            "replicas": {"current": self.current, "ready": self.ready, "desired": self.desired,
                         "min": self.min_replicas, "max": self.max_replicas, "reactive": self.reactive},
            "usage": self.usage,
            "unit": self.unit,
            "forecast": None if self.forecast is None else dict(self.forecast),
            "slo": {"risk": self.risk, "saturated_share": self.saturated_share, "steps": self.slo_steps},
            "reason": self.reason,
            "candidate": self.candidate,
            "model": self.model,
            "time": self.time,
            "age_s": None if self.age_s is None else round(self.age_s, 3),
            "warnings": list(self.warnings),
        }


def row_from_deployment(obj: Mapping[str, Any], *, now: float, defaults: PolicyDefaults | None = None) -> Row:
    """The row of a Deployment labeled aihpa/enabled=true: its policy from the annotations (each absent or invalid one
    at `defaults`), its counts from spec and status, and the rest from the controller's `aihpa/status` annotation.
    No status (or one that is not a JSON object) gives a pending row that says so."""
    meta = obj.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    parsed = parse_policy(annotations, defaults=defaults or PolicyDefaults())
    policy = parsed.policy
    spec, state = obj.get("spec") or {}, obj.get("status") or {}
    raw = annotations.get(ANNOTATION_STATUS) if isinstance(annotations, Mapping) else None
    status: Mapping[str, Any] | None = None
    reason = PENDING_REASON
    if isinstance(raw, str):
        try:
            decoded = json.loads(raw)
        except ValueError:
            decoded = None
        if isinstance(decoded, Mapping):
            status = decoded
        else:
            reason = f"unreadable {ANNOTATION_STATUS} annotation (not a JSON object)"
    pending = Row(
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
        mode=policy.mode,
        current=_count(spec.get("replicas")),
        ready=_count(state.get("readyReplicas")) or 0,
        desired=None,
        min_replicas=policy.min_replicas,
        max_replicas=policy.max_replicas,
        reactive=None,
        usage=None,
        forecast=None,
        risk=policy.saturation_risk,
        saturated_share=None,
        slo_steps=None,
        reason=reason,
        candidate=None,
        model=None,
        time=None,
        age_s=None,
        pending=True,
        warnings=parsed.warnings,
    )
    if status is None:
        return pending
    slo: Mapping[str, Any] = status["slo"] if isinstance(status.get("slo"), Mapping) else {}
    forecast = status.get("forecast")
    written = status.get("time") if isinstance(status.get("time"), str) else None
    risk = _number(slo.get("risk"))
    mode = status.get("mode")
    return replace(
        pending,
        mode=mode if isinstance(mode, str) else policy.mode,
        desired=_count(status.get("replicas")),
        reactive=_count(status.get("reactive")),
        usage=_number(status.get("usage")),
        unit=str(status["unit"]) if isinstance(status.get("unit"), str) and status["unit"] else "cores",
        forecast=forecast if isinstance(forecast, Mapping) else None,
        risk=policy.saturation_risk if risk is None else risk,
        saturated_share=_number(slo.get("saturated_share")),
        slo_steps=_count(slo.get("steps")),
        reason=str(status.get("reason") or "-"),
        candidate=str(status["candidate"]) if status.get("candidate") else None,
        model=str(status["model"]) if status.get("model") else None,
        time=written,
        age_s=_age(written, now),
        pending=False,
    )


def _age(written: str | None, now: float) -> float | None:
    if written is None:
        return None
    try:
        stamp = datetime.fromisoformat(written)
    except ValueError:
        return None
    if stamp.tzinfo is None:  # the controller writes UTC with its offset; a bare time is read as UTC too
        stamp = stamp.replace(tzinfo=UTC)
    return now - stamp.timestamp()


def _or_dash(value: int | None) -> str:
    return "-" if value is None else str(value)


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(0, width - 3)] + "..."


def percent(share: float) -> str:
    """A share as a short percentage: 0.008 -> "0.8%", 0.0123 -> "1.2%", 0.0004 -> "0.04%"."""
    value = share * 100
    if value == 0:
        return "0%"
    return f"{value:.1f}%" if abs(value) >= 0.1 else f"{value:.2g}%"




# ---- the sparkline ------------------------------------------------------------------------------------------------


class Sample(NamedTuple):
    """The usage one refresh showed, and the band of the forecast for the step ahead (median, high quantile)."""

    time: float
    usage: float | None
    low: float | None = None
    high: float | None = None


class Spark(NamedTuple):
    """One cell of a sparkline: its block (" " where no sample fell), and where the usage stood against the band
    forecast before it: under the median, inside the band, or above its high quantile ("none": no band to judge)."""

    char: str
    zone: Zone


def sample_of(row: Row, now: float) -> Sample:
    found = band((row.forecast or {}).get("next"))
    if found is None:
        return Sample(now, row.usage)
    (_, low), (_, high) = found
    return Sample(now, row.usage, low, high)


def sparkline(samples: Iterable[Sample], *, now: float, window_s: float = SPARK_WINDOW_S,
              width: int = SPARK_WIDTH) -> list[Spark]:
    """The usage of `samples` over the `window_s` seconds before `now`, in `width` cells.

    Each cell shows the highest usage that fell in it, on one scale from 0 to the highest usage or forecast in the
    window; a cell no sample fell in is blank. Each is judged against the band of the latest earlier cell's forecast
    (the forecast made before that usage was seen).
    """
    if width <= 0 or window_s <= 0:
        return []
    cell_s = window_s / width
    usage: list[float | None] = [None] * width
    lows: list[float | None] = [None] * width
    highs: list[float | None] = [None] * width
    for s in samples:
        age = now - s.time
        if not 0 <= age < window_s:
            continue
        # the last cell holds (now - cell_s, now]: samples one cell apart never share one
        i = width - 1 - min(width - 1, math.floor(age / cell_s + 1e-9))
        if s.usage is not None and math.isfinite(s.usage):
            usage[i] = s.usage if usage[i] is None else max(s.usage, usage[i] or 0.0)
        if s.low is not None and s.high is not None:
            lows[i], highs[i] = s.low, s.high  # samples come in time order: the cell keeps its latest forecast
    values = [v for v in usage + highs if v is not None]
    top = max(values, default=0.0)
    out: list[Spark] = []
    low: float | None = None
    high: float | None = None
    for i in range(width):
        u = usage[i]
        if u is None:
            out.append(Spark(" ", "none"))
        else:
            level = 0 if top <= 0 else min(len(BLOCKS) - 1, max(0, round(u / top * (len(BLOCKS) - 1))))
            zone: Zone = "none"
            if high is not None and low is not None:
                zone = "above" if u > high else "inside" if u > low else "below"
            out.append(Spark(BLOCKS[level], zone))
        if highs[i] is not None:
            low, high = lows[i], highs[i]
    return out


@dataclass
class History:
    """The samples a watch has seen, per workload, for the sparkline: one per refresh, the last `window_s` kept."""

    window_s: float = SPARK_WINDOW_S
    samples: dict[tuple[str, str], deque[Sample]] = field(default_factory=dict)

    def add(self, rows: Sequence[Row], now: float) -> None:
        seen = set()
        for row in rows:
            seen.add(row.key)
            kept = self.samples.setdefault(row.key, deque())
            kept.append(sample_of(row, now))
            while kept and kept[0].time < now - self.window_s:
                kept.popleft()
        for gone in set(self.samples) - seen:  # a Deployment deleted or unlabeled since
            del self.samples[gone]

    def of(self, key: tuple[str, str]) -> Sequence[Sample]:
        return self.samples.get(key, ())
