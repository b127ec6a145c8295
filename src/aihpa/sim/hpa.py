"""The HorizontalPodAutoscaler controller of the simulated cluster, as kube-controller-manager runs it.

Every `period_s` (15 s of virtual time, the controller manager's --horizontal-pod-autoscaler-sync-period) each
`autoscaling/v2` HorizontalPodAutoscaler whose target is a Deployment and whose metric is a CPU Utilization resource
target gets the upstream treatment: utilization of the target's pods (PodMetrics against CPU requests), the replica
formula with its tolerance (per direction from `behavior.scale{Up,Down}.tolerance`, else the controller-wide one),
then normalization and min/max; the result is written to the Deployment's scale and the HPA's status. As upstream,
an HPA with `spec.behavior` gets its rules with the autoscaling/v2 defaults for what it leaves out, and one without
takes the legacy path (normalizeDesiredReplicas: scale-up capped at max(2 × current, 4), scale-down stabilized over
the controller's downscale window); a target at 0 replicas is paused. The math is `aihpa.scaling`'s; this module
only reads and writes the store, so the reactive baseline in the sim is the same algorithm the backtest and the
controller use.

Reads time only from the injected `Clock`; it must never sleep on the wall clock or block the event loop.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any

from aihpa.clock import Clock
from aihpa.quantity import parse_quantity
from aihpa.scaling import (
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    DEFAULT_TOLERANCE,
    Behavior,
    BehaviorState,
    ScalingPolicy,
    ScalingRules,
    apply_behavior,
    hpa_replicas,
    record_scale,
)
from aihpa.scaling.behavior import LegacyBehavior
from aihpa.scaling.hpa import Tolerance
from aihpa.sim.resources import Registry, ResourceType
from aihpa.sim.store import Event, Store, rfc3339
from aihpa.sim.types import Obj
from aihpa.sim.workload import Workloads, format_cpu, parse_cpu

__all__ = [
    "HPA_DOWNSCALE_STABILIZATION_S",
    "HPA_SYNC_PERIOD_S",
    "HPAResult",
    "HorizontalPodAutoscalers",
    "behavior_of",
    "cpu_target",
    "tolerance_of",
]

logger = logging.getLogger(__name__)

#: kube-controller-manager's default --horizontal-pod-autoscaler-sync-period.
HPA_SYNC_PERIOD_S = 15.0
#: kube-controller-manager's default --horizontal-pod-autoscaler-downscale-stabilization (the legacy path's window).
HPA_DOWNSCALE_STABILIZATION_S = 300


@dataclass(frozen=True)
class HPAResult:
    """What one HPA decided in one sync: the count it found, the one it set, and why."""

    namespace: str
    name: str
    current: int
    desired: int
    utilization: float | None
    reason: str


def _rules(raw: Any, default: ScalingRules) -> ScalingRules:
    if not isinstance(raw, dict):
        return default
    policies = tuple(
        ScalingPolicy(str(p.get("type")), int(p.get("value", 0)), int(p.get("periodSeconds", 0)))  # type: ignore[arg-type]
        for p in raw.get("policies") or []
    ) or default.policies
    return ScalingRules(
        stabilization_window_seconds=int(raw.get("stabilizationWindowSeconds",
                                                 default.stabilization_window_seconds)),
        policies=policies,
        select_policy=raw.get("selectPolicy", default.select_policy),
    )


def behavior_of(
    spec: Obj, *, downscale_stabilization_s: int = HPA_DOWNSCALE_STABILIZATION_S
) -> Behavior | LegacyBehavior:
    """An HPA spec's behavior, min and max, with the autoscaling/v2 defaults for whatever it leaves out.

    Without `spec.behavior` (absent or null) upstream normalizes on the legacy path, not with the v2 defaults.
    """
    raw = spec.get("behavior")
    if raw is None:
        return LegacyBehavior(min_replicas=int(spec.get("minReplicas", 1)), max_replicas=int(spec["maxReplicas"]),
                              downscale_stabilization_seconds=downscale_stabilization_s)
    if not isinstance(raw, dict):
        raise ValueError("spec.behavior must be an object")
    return Behavior(
        scale_up=_rules(raw.get("scaleUp"), DEFAULT_SCALE_UP),
        # maybeInitScaleDownStabilizationWindow: an unset scale-down window is the controller's downscale window
        scale_down=_rules(raw.get("scaleDown"),
                          replace(DEFAULT_SCALE_DOWN, stabilization_window_seconds=downscale_stabilization_s)),
        min_replicas=int(spec.get("minReplicas", 1)),
        max_replicas=int(spec["maxReplicas"]),
    )


def _quantity(raw: Any) -> float:
    """A non-negative decimal Quantity ("0.05", "50m"); ValueError for anything else, as the API would refuse it."""
    refused = ValueError(f"tolerance must be a quantity >= 0, not {raw!r}")
    try:
        value = parse_quantity(raw)
    except ValueError:
        raise refused from None
    if value < 0:
        raise refused
    return value


def tolerance_of(spec: Obj, *, default: float = DEFAULT_TOLERANCE) -> Tolerance:
    """`behavior.scaleUp.tolerance` / `behavior.scaleDown.tolerance` (KEP-4951), each falling back to `default`."""
    raw = spec.get("behavior") or {}
    per_direction = []
    for key in ("scaleUp", "scaleDown"):
        rules = raw.get(key) if isinstance(raw, dict) else None
        value = rules.get("tolerance") if isinstance(rules, dict) else None
        per_direction.append(default if value is None else _quantity(value))
    return Tolerance(scale_up=per_direction[0], scale_down=per_direction[1])


def cpu_target(spec: Obj) -> float | None:
    """The CPU averageUtilization target as a share (0.7), or None when the HPA has none (then it is left alone)."""
    for metric in spec.get("metrics") or []:
        resource = metric.get("resource") or {}
        target = resource.get("target") or {}
        if (metric.get("type") == "Resource" and resource.get("name") == "cpu"
                and target.get("type") == "Utilization" and target.get("averageUtilization")):
            return float(target["averageUtilization"]) / 100.0
    return None


class HorizontalPodAutoscalers:
    """The HPA controller loop over the store. `sync()` runs one round; `run()` runs rounds on the clock."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        workloads: Workloads,
        clock: Clock,
        period_s: float = HPA_SYNC_PERIOD_S,
        tolerance: float = DEFAULT_TOLERANCE,
        downscale_stabilization_s: int = HPA_DOWNSCALE_STABILIZATION_S,
    ) -> None:
        self.store = store
        self.workloads = workloads
        self.clock = clock
        self.period_s = period_s
        self.tolerance = tolerance
        self.downscale_stabilization_s = downscale_stabilization_s
        self._hpas = registry.builtin("autoscaling/v2", "HorizontalPodAutoscaler")
        self._deployments = registry.builtin("apps/v1", "Deployment")
        self._pods = registry.builtin("v1", "Pod")
        # behavior history per HPA uid (upstream keeps it in the controller's memory too)
        self._states: dict[str, BehaviorState] = {}
        self._present = asyncio.Event()
        store.add_listener(self._on_event)

    def _on_event(self, rt: ResourceType, ev: Event) -> None:
        if rt.key != self._hpas.key:
            return
        if ev.type == "DELETED":
            self._states.pop(ev.obj["metadata"].get("uid", ""), None)
        else:
            self._present.set()

    async def run(self) -> None:
        """Sync every `period_s` of virtual time while any HPA exists; until cancelled.

        With no HPA it waits on an event instead of the clock, so clusters without HPAs see no extra sleeper.
        """
        while True:
            if self.store.count(self._hpas) == 0:
                self._present.clear()
                await self._present.wait()
            await self.clock.sleep(self.period_s)
            try:
                self.sync()
            except Exception:  # one bad object must not stop the loop, as in kube-controller-manager
                logger.exception("HPA sync failed")

    def sync(self) -> list[HPAResult]:
        """One round over every HPA; returns what each decided. A malformed HPA is logged and skipped."""
        results = []
        for hpa in list(self.store.items(self._hpas)):
            try:
                result = self._sync_one(hpa)
            except (ValueError, TypeError, KeyError) as exc:  # e.g. a behavior policy the API would have refused
                logger.warning("HPA %s/%s skipped: %s", hpa["metadata"].get("namespace", ""),
                               hpa["metadata"]["name"], exc)
                continue
            if result is not None:
                results.append(result)
        return results

    def _sync_one(self, hpa: Obj) -> HPAResult | None:
        meta, spec = hpa["metadata"], hpa.get("spec") or {}
        ns, name = meta.get("namespace", ""), meta["name"]
        ref = spec.get("scaleTargetRef") or {}
        target = cpu_target(spec)
        dep = self.store.get(self._deployments, ns, str(ref.get("name", "")))
        if ref.get("kind") != "Deployment" or target is None or dep is None or "maxReplicas" not in spec:
            return None
        now = self.clock.now()
        current = int((dep.get("spec") or {}).get("replicas", 1) or 0)
        # a target at zero (with min > 0) is paused: apply_behavior keeps it there and the status says so
        behavior = behavior_of(spec, downscale_stabilization_s=self.downscale_stabilization_s)
        tolerance = tolerance_of(spec, default=self.tolerance)
        usage, requests, with_metrics, unready = self._pod_usage(dep, now=now)
        utilization = usage / requests if requests > 0 else None
        percent = None
        if with_metrics == 0 or requests <= 0:
            desired, reason = current, "no pod reported metrics; keeping the current count"
        else:
            rec = hpa_replicas(current_replicas=current, usage=usage, pods_with_metrics=with_metrics,
                               target_utilization=target, request_per_pod=requests / with_metrics,
                               unready_pods=unready, tolerance=tolerance)
            desired, reason, percent = rec.replicas, rec.reason, rec.utilization_percent
        uid = meta.get("uid", "")
        decision, state = apply_behavior(current=current, desired=desired, behavior=behavior,
                                         state=self._states.get(uid, BehaviorState()), now=now, reason=reason)
        self._states[uid] = record_scale(state=state, behavior=behavior, old=current, new=decision.replicas, now=now)
        if decision.replicas != current:
            self.store.update(self._deployments, {**dep, "spec": {**dep["spec"], "replicas": decision.replicas}})
        self._write_status(hpa, current=current, desired=decision.replicas, percent=percent,
                           usage=usage / with_metrics if with_metrics else 0.0, limited_by=decision.limited_by,
                           reason=decision.reason, now=now)
        return HPAResult(namespace=ns, name=name, current=current, desired=decision.replicas,
                         utilization=utilization, reason=decision.reason)

    def _pod_usage(self, dep: Obj, *, now: float) -> tuple[float, float, int, int]:
        """(CPU used, CPU requested, pods with metrics, pods not ready) over the Deployment's pods."""
        usage = requests = 0.0
        with_metrics = unready = 0
        cache: dict[str, tuple[float, int]] = {}
        for pod in self.store.dependents(dep["metadata"]["uid"], self._pods):
            metrics = self.workloads.pod_metrics(pod, now=now, demand_cache=cache)
            if metrics is None:
                unready += 1
                continue
            with_metrics += 1
            usage += sum(parse_cpu(c["usage"]["cpu"]) for c in metrics["containers"])
            requests += sum(parse_cpu(((c.get("resources") or {}).get("requests") or {}).get("cpu", 0))
                            for c in (pod.get("spec") or {}).get("containers") or [])
        return usage, requests, with_metrics, unready

    def _write_status(
        self, hpa: Obj, *, current: int, desired: int, percent: int | None, usage: float, limited_by: str,
        reason: str, now: float,
    ) -> None:
        old = hpa.get("status") or {}
        stamp = rfc3339(now)
        old_conds = {c.get("type"): c for c in old.get("conditions") or []}

        def cond(kind: str, ok: bool, why: str, message: str) -> Obj:
            prev = old_conds.get(kind)
            value = "True" if ok else "False"
            since = prev.get("lastTransitionTime", stamp) if prev and prev.get("status") == value else stamp
            return {"type": kind, "status": value, "lastTransitionTime": since, "reason": why, "message": message}

        # upstream reports the utilization it scaled on: a whole percent, truncated (GetResourceUtilizationRatio)
        measured = percent is not None
        paused = limited_by == "ScalingDisabled"
        status: Obj = {
            "observedGeneration": hpa["metadata"].get("generation", 1),
            "currentReplicas": current,
            "desiredReplicas": desired,
            "currentMetrics": [{"type": "Resource", "resource": {"name": "cpu", "current": {
                "averageUtilization": percent, "averageValue": format_cpu(usage)}}}]
            if measured else [],
            "conditions": [
                cond("AbleToScale", True, *(
                    ("SucceededRescale", "the HPA controller was able to update the target scale")
                    if desired != current else (limited_by, reason) if limited_by.endswith("Stabilized")
                    else ("ReadyForNewScale", "recommended size matches current size"))),
                cond("ScalingActive", False, "ScalingDisabled",
                     "scaling is disabled since the replica count of the target is zero") if paused else
                cond("ScalingActive", measured, "ValidMetricFound" if measured else "FailedGetResourceMetric",
                     "the HPA was able to compute the replica count" if measured else reason),
                cond("ScalingLimited", limited_by in ("TooManyReplicas", "TooFewReplicas", "ScaleUpLimit",
                                                      "ScaleDownLimit"),
                     limited_by or "DesiredWithinRange", reason),
            ],
        }
        last = old.get("lastScaleTime")
        if desired != current:
            last = stamp
        if last:
            status["lastScaleTime"] = last
        if status != old:
            self.store.update(self._hpas, {**hpa, "status": status}, bump_generation=False)
