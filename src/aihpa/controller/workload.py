"""One managed Deployment as the controller knows it, and what it reads off the raw object. No I/O."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from aihpa.annotations import ParsedPolicy
from aihpa.metrics.quantity import parse_cpu
from aihpa.metrics.source import WorkloadRef
from aihpa.scaling import DecisionKind, PodCpu, PredictiveState

__all__ = ["PROFILE_SLOTS", "PROFILE_SLOT_S", "SLO_MIN_STEPS", "Workload", "object_key", "pod_cpu"]

# the replica profiles published for the webhook: one count per 15-minute slot of the day
PROFILE_SLOT_S = 900
PROFILE_SLOTS = 86400 // PROFILE_SLOT_S
# the realized saturation is reported over the last day of model steps (at the default 60 s step)
SLO_WINDOW_STEPS = 1440
# ... and exported as a metric once this many steps are in it
SLO_MIN_STEPS = 60


@dataclass
class Workload:
    """A Deployment labeled for aihpa: its last seen object, its parsed policy, and the controller's state for it."""

    ref: WorkloadRef
    obj: dict[str, Any]
    parsed: ParsedPolicy
    request_cores: float | None
    state: PredictiveState = field(default_factory=PredictiveState)
    warned: tuple[str, ...] = ()
    hpa_warned: bool = False
    last_step_decided: int | None = None
    # the rule of the last model step's decision: between steps, the safety net follows it
    last_kind: DecisionKind | None = None
    # an HPA targets it too and it asked aihpa to set that HPA's floor (`aihpa/with-hpa: floor`): see `coexist`
    beside_hpa: bool = False
    # whether each model step of the last day was short of CPU (usage at what the ready pods may use): the SLO
    short_steps: deque[bool] = field(default_factory=lambda: deque(maxlen=SLO_WINDOW_STEPS))

    @property
    def saturated_share(self) -> float | None:
        """The realized share of short model steps over the window (None before the first step)."""
        return sum(self.short_steps) / len(self.short_steps) if self.short_steps else None
    forecast: np.ndarray | None = None  # [horizon, quantiles] in cores
    last_forecast: float | None = None  # the median for the next step, from the last forecast
    profile: list[int] = field(default_factory=lambda: [-1] * PROFILE_SLOTS)
    # what the last status annotation written said, less its numbers (replicas, mode, kind, wording), and when
    status_written: str = ""
    status_time: float = -math.inf

    @property
    def key(self) -> str:
        return self.ref.key

    @property
    def metric(self) -> str | None:
        """The named metric it scales on (`aihpa/metric`); None: CPU."""
        return self.ref.metric

    @property
    def unit(self) -> str:
        """What its usage, forecasts and per-pod capacity count: "cores", or its metric's name."""
        return "cores" if self.ref.metric is None else self.ref.metric

    @property
    def pod(self) -> PodCpu:
        """One pod in the workload's unit: its CPU request and limit, or on a named metric the per-pod target as both
        (the most a pod "may use": demand above pods x target is short, as the HPA's Pods metric reads it)."""
        target = self.parsed.policy.metric_target
        if self.ref.metric is not None and target is not None:
            return PodCpu(request=target, limit=target)
        return PodCpu(request=self.request_cores, limit=pod_cpu(self.obj, "limits"))

    @property
    def usage_ceiling(self) -> float:
        """The most one pod's usage can read: its CPU limit (a throttled pod hides the demand above it); infinite
        without a limit, and on a named metric, whose count goes on above the target."""
        if self.ref.metric is not None:
            return math.inf
        return pod_cpu(self.obj, "limits") or math.inf

    @property
    def replicas(self) -> int:
        return int((self.obj.get("spec") or {}).get("replicas") or 0)

    @property
    def ready(self) -> int:
        status = self.obj.get("status") or {}
        return int(status.get("readyReplicas") or 0)


def object_key(obj: object) -> str:
    """namespace/name of a raw object, whatever shape it has."""
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(meta, dict):
        meta = {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def pod_cpu(deployment: dict[str, Any], kind: str) -> float | None:
    """The CPU `kind` ("requests" or "limits") of one pod, summed over its containers; None when a container has
    none (no request: utilization is undefined; no limit: no hard cap) or a value does not parse."""
    containers = ((((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")) or []
    total = 0.0
    for c in containers:
        cpu = ((c.get("resources") or {}).get(kind) or {}).get("cpu")
        if cpu is None:
            return None
        try:
            total += parse_cpu(cpu)
        except ValueError:
            return None
    return total if total > 0 else None
