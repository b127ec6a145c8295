"""One managed Deployment as the controller knows it, and what it reads off the raw object. No I/O.

Memory is per workload, times tens of thousands: a workload keeps a slim copy of its Deployment (`slim_deployment`:
what the controller, its actuation and its fence read, not the pod template, managed fields or status conditions),
its pods' CPU parsed once, and its windows as compact arrays rather than lists of Python objects.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

from aihpa.annotations import ANNOTATION_STATUS, ParsedPolicy
from aihpa.metrics.quantity import parse_cpu
from aihpa.metrics.source import WorkloadRef
from aihpa.scaling import DecisionKind, PodCpu, PredictiveState

__all__ = [
    "PROFILE_SLOTS", "PROFILE_SLOT_S", "SLO_MIN_STEPS", "StepWindow", "Workload", "object_key", "pod_cpu",
    "slim_deployment",
]

# the replica profiles published for the webhook: one count per 15-minute slot of the day
PROFILE_SLOT_S = 900
PROFILE_SLOTS = 86400 // PROFILE_SLOT_S
# the realized saturation is reported over the last day of model steps (at the default 60 s step)
SLO_WINDOW_STEPS = 1440
# ... and exported as a metric once this many steps are in it
SLO_MIN_STEPS = 60

# what `Workload.limit_cores` holds until it is known: read off `obj` (a full object) when the workload is built
_FROM_OBJECT: Final = -1.0

_META_KEPT = ("namespace", "name", "uid", "resourceVersion", "generation")


def slim_deployment(obj: dict[str, Any], *, pod_cpu: bool = False) -> dict[str, Any]:
    """The part of a Deployment the controller reads, in the Deployment's own shape (so any reader of
    `Workload.obj` works on it): name, namespace, uid, resourceVersion, labels, the aihpa/* annotations but the
    status the controller writes itself, spec.replicas and selector, and status.replicas and readyReplicas; with
    `pod_cpu`, also each container's CPU request and limit (what the watch hands the cache, which reads them once).

    A full Deployment from the API server, with its pod template, managed fields and conditions, is a tree of ~200
    Python objects (about 17 KB); this is about a tenth of it. The `annotations` key is kept, empty, when the object
    had annotations and none of them are aihpa's: a JSON patch that adds a member under /metadata/annotations must not
    find the map missing and replace it whole."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    status = obj.get("status") or {}
    slim_meta: dict[str, Any] = {k: meta[k] for k in _META_KEPT if k in meta}
    labels = meta.get("labels")
    if labels is not None:
        slim_meta["labels"] = labels
    annotations = meta.get("annotations")
    if isinstance(annotations, dict):
        slim_meta["annotations"] = {k: v for k, v in annotations.items()
                                    if k.startswith("aihpa/") and k != ANNOTATION_STATUS}
    elif annotations is not None:
        slim_meta["annotations"] = annotations  # not a map: the policy parser says so, as it would of the full object
    slim_spec = {k: spec[k] for k in ("replicas", "selector") if k in spec}
    if pod_cpu:
        containers = (((spec.get("template") or {}).get("spec") or {}).get("containers")) or []
        slim_spec["template"] = {"spec": {"containers": [
            {"resources": {kind: {"cpu": ((c.get("resources") or {}).get(kind) or {}).get("cpu")}
                           for kind in ("requests", "limits")}}
            for c in containers if isinstance(c, dict)
        ]}}
    slim_status = {k: status[k] for k in ("replicas", "readyReplicas") if k in status}
    return {"metadata": slim_meta, "spec": slim_spec, "status": slim_status}


class StepWindow:
    """The last `capacity` model steps' short-of-CPU flags, one bit each (a deque of bools costs eight bytes a flag,
    a bool array one, and a day's window is kept for every workload: 180 bytes, not 1,440)."""

    __slots__ = ("_bits", "_capacity", "_count", "_head", "_short")

    def __init__(self, capacity: int = SLO_WINDOW_STEPS) -> None:
        if capacity < 1:
            raise ValueError("a step window holds at least one step")
        self._bits = bytearray((capacity + 7) // 8)
        self._capacity = capacity
        self._head = 0
        self._count = 0
        self._short = 0

    def append(self, short: bool) -> None:
        byte, mask = self._head >> 3, 1 << (self._head & 7)
        if self._count == self._capacity:
            self._short -= bool(self._bits[byte] & mask)  # the oldest flag leaves
        else:
            self._count += 1
        if short:
            self._bits[byte] |= mask
            self._short += 1
        else:
            self._bits[byte] &= ~mask & 0xFF
        self._head = (self._head + 1) % self._capacity

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    @property
    def short(self) -> int:
        """How many of the steps in the window were short."""
        return self._short


@dataclass(eq=False)
class Workload:
    """A Deployment labeled for aihpa: its slim object (`slim_deployment`), its parsed policy, its pods' CPU, and
    the controller's state for it."""

    ref: WorkloadRef
    obj: dict[str, Any]
    parsed: ParsedPolicy
    request_cores: float | None
    # one pod's CPU limit (None: no hard cap); read off `obj` when not given (the cache parses it from the full
    # object before slimming it)
    limit_cores: float | None = _FROM_OBJECT
    state: PredictiveState = field(default_factory=PredictiveState)
    warned: tuple[str, ...] = ()
    hpa_warned: bool = False
    last_step_decided: int | None = None
    # the rule of the last model step's decision: between steps, the safety net follows it
    last_kind: DecisionKind | None = None
    # an HPA targets it too and it asked aihpa to set that HPA's floor (`aihpa/with-hpa: floor`): see `coexist`
    beside_hpa: bool = False
    # whether each model step of the last day was short of CPU (usage at what the ready pods may use): the SLO
    short_steps: StepWindow = field(default_factory=StepWindow)
    forecast: np.ndarray | None = None  # [horizon, quantiles] in cores
    last_forecast: float | None = None  # the median for the next step, from the last forecast
    # replicas by 15-minute slot of the day (-1: not seen), four bytes a slot
    profile: array[int] = field(default_factory=lambda: array("i", [-1] * PROFILE_SLOTS))
    # what the last status annotation written said, less its numbers (replicas, mode, kind, wording), and when
    status_written: str = ""
    status_time: float = -math.inf
    # the policies last built for it and what they were built from (`deciding.PolicyCache`)
    policy_memo: tuple[Any, ...] | None = None
    reactive_memo: tuple[Any, ...] | None = None

    def __post_init__(self) -> None:
        if self.limit_cores == _FROM_OBJECT:
            self.limit_cores = pod_cpu(self.obj, "limits")

    @property
    def saturated_share(self) -> float | None:
        """The realized share of short model steps over the window (None before the first step)."""
        return self.short_steps.short / len(self.short_steps) if self.short_steps else None

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
        return PodCpu(request=self.request_cores, limit=self.limit_cores)

    @property
    def usage_ceiling(self) -> float:
        """The most one pod's usage can read: its CPU limit (a throttled pod hides the demand above it); infinite
        without a limit, and on a named metric, whose count goes on above the target."""
        if self.ref.metric is not None:
            return math.inf
        return self.limit_cores or math.inf

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
