"""Carrying a decision out (the leader only): the scale patch with its Event, then the `aihpa/status` annotation.

The scale is patched only when the count changes and never in dry-run; the write is guarded by the count it was
decided from (`update_scale`'s `expected`), so a scale someone changed meanwhile is not overwritten. The status is
rewritten when what a person reads off it changes (replicas, mode, kind, what limited it, the candidate acted on, the
model version, the realized SLO share to 0.01, the reason's wording), else only once it is `status_every_s` old, so
it is never stale for long and a steady cluster of 10,000 workloads does not rewrite 10,000 annotations a step. A
failed write is logged and counted, never raised: the next cycle tries again.

Each decision is logged as one line with its fields (`extra`: workload, current, desired, kind, mode, applied,
reason, limited_by; the JSON log format writes them as keys): at info when it changes the count or is the workload's
first, else at debug (a steady workload would otherwise log a line every cycle).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from aihpa.annotations import ANNOTATION_STATUS
from aihpa.controller import coexist
from aihpa.controller.deciding import PendingAction, WorkloadDecision
from aihpa.controller.outbox import EventOutbox
from aihpa.controller.settings import ControllerSettings
from aihpa.controller.workload import Workload
from aihpa.forecast.forecaster import Forecaster
from aihpa.k8s.client import MERGE_PATCH, KubeClient
from aihpa.k8s.errors import K8sError, NotFoundError
from aihpa.k8s.scale import update_scale
from aihpa.observability import ControllerMetrics
from aihpa.scaling import Decision, DecisionKind, record_scale

__all__ = ["Actuator"]

logger = logging.getLogger(__name__)

# the numbers in a reason (utilization, forecast) move every step: a status that differs only in them is not news
_NUMBERS = re.compile(r"[-+]?\d[\d.,]*%?")


def _log_decision(p: PendingAction, *, applied: bool, first: bool) -> None:
    decision, current = p.decision, p.current
    level = logging.INFO if decision.replicas != current or first else logging.DEBUG
    if not logger.isEnabledFor(level):
        return
    if decision.replicas == current:
        outcome = "kept"
    elif applied:
        outcome = "applied"
    else:
        outcome = "not applied (dry-run)" if p.mode == "dry-run" else "not applied"
    fields = {
        "workload": p.workload.key, "current": current, "desired": decision.replicas, "kind": decision.kind.value,
        "mode": p.mode, "applied": applied, "reason": decision.reason, "limited_by": decision.limited_by,
    }
    logger.log(level, "decision %s: %d -> %d replicas, %s (%s, %s mode): %s", p.workload.key, current,
               decision.replicas, outcome, decision.kind.value, p.mode, decision.reason, extra=fields)


def _candidate(p: PendingAction) -> str | None:
    """The scoring the predictive policy acts on (none in reactive mode)."""
    if p.mode == "reactive":
        return None
    scorings, choice = p.policy.scorings, p.workload.state.choice
    return scorings[choice].label if 0 <= choice < len(scorings) else None


class Actuator:
    """Writes decisions to the cluster through the scale subresource and the Deployment's annotations."""

    def __init__(
        self, client: KubeClient, *, settings: ControllerSettings, metrics: ControllerMetrics, outbox: EventOutbox
    ) -> None:
        self.client = client
        self.settings = settings
        self.metrics = metrics
        self.outbox = outbox
        if getattr(client, "observer", None) is None:
            # the controller's metrics count every write of this client (scales, statuses, Events, Leases) and
            # the time each waited for the rate limit
            client.observer = metrics

    def quiet(self, p: PendingAction, *, now: float, forecaster: Forecaster) -> bool:
        """Whether carrying `p` out writes nothing (no scale, floor or status write): most workloads, most cycles.
        The cycle settles those at once (`settle`) instead of scheduling an API task for each."""
        w, decision = p.workload, p.decision
        if self._writes_scale(p) or not w.status_written:
            return False
        if decision.kind is DecisionKind.HOLD:
            return True
        key = self._status_key(w, decision, mode=p.mode, candidate=_candidate(p), forecaster=forecaster)
        return not self._status_due(w, key, now=now)

    @staticmethod
    def _writes_scale(p: PendingAction) -> bool:
        """Whether carrying `p` out writes the scale (beside an HPA: its floor): never in dry-run."""
        if p.mode == "hpa-floor":
            return p.decision.kind is not DecisionKind.HOLD
        return p.mode != "dry-run" and p.decision.replicas != p.current

    def _status_due(self, w: Workload, key: str, *, now: float) -> bool:
        """Whether a status with `key` (`_status_key`) is news, or the one written is `status_every_s` old."""
        return key != w.status_written or now - w.status_time >= self.settings.status_every_s

    @staticmethod
    def settle(p: PendingAction) -> WorkloadDecision:
        """The result of a decision that writes nothing (`quiet`), logged as `actuate` would."""
        _log_decision(p, applied=False, first=False)
        return p.result(applied=False)

    async def actuate(self, p: PendingAction, *, now: float, forecaster: Forecaster) -> WorkloadDecision:
        """Patch the scale when it changes (never in dry-run), then the status annotation (`scale`, then `report`)."""
        applied = await self.scale(p, now=now)
        return await self.report(p, applied=applied, now=now, forecaster=forecaster)

    async def scale(self, p: PendingAction, *, now: float) -> bool:
        """The scale write of `p` (beside an HPA: its floor), when it changes the count and not in dry-run; whether
        it was applied."""
        w, decision, current = p.workload, p.decision, p.current
        if not self._writes_scale(p):
            return False
        if p.mode == "hpa-floor":
            return await self._set_floor(w, decision)
        applied = await self._apply(w, decision, current=current)
        if applied and decision.kind is DecisionKind.SAFETY_NET:
            # the policies record the scale events of their own decisions; this one the rate limits must see too
            w.state = replace(w.state, behavior=record_scale(
                state=w.state.behavior, behavior=p.policy.behavior, old=current, new=decision.replicas, now=now))
        return applied

    async def report(self, p: PendingAction, *, applied: bool, now: float, forecaster: Forecaster) -> WorkloadDecision:
        """The status annotation of `p` when it is news (`scale` has run: `applied` says how it went), and its log
        line."""
        w, decision = p.workload, p.decision
        first = not w.status_written
        # between forecast steps a steady workload has nothing new to say: no status write
        if decision.kind is not DecisionKind.HOLD or applied or not w.status_written:
            await self._write_status(w, decision, reactive=p.reactive, usage=p.usage, now=now, mode=p.mode,
                                     risk=p.policy.risk, forecaster=forecaster, candidate=_candidate(p))
        _log_decision(p, applied=applied, first=first)
        return p.result(applied=applied)

    @staticmethod
    def urgency(p: PendingAction) -> float:
        """How much `p`'s scale write matters now, for ordering a cycle's writes: a scale-up by its relative step
        (pods short first, the largest shortage first), then scale-downs and writes of the floor and status only."""
        if not Actuator._writes_scale(p) or p.decision.replicas <= p.current:
            return 0.0
        return p.decision.replicas / max(p.current, 1)

    async def _set_floor(self, w: Workload, decision: Decision) -> bool:
        """Beside an HPA: its minReplicas becomes this decision's count (clamped by `coexist.set_floor`)."""
        try:
            result = await coexist.set_floor(self.client, namespace=w.ref.namespace, name=w.ref.name,
                                             floor=decision.replicas)
        except K8sError as exc:
            logger.warning("%s: HPA floor %d not set: %s", w.key, decision.replicas, exc)
            self.metrics.errors.labels(kind="hpa-floor").inc()
            return False
        if result is None or not result.changed:
            return False
        self.outbox.about(w, "Normal", "HPAFloorSet",
                          f"HPA {result.hpa} minReplicas {result.before} -> {result.after} (aihpa's count "
                          f"{decision.replicas}, within the user's {result.user_min}..{result.max_replicas}; the HPA "
                          f"keeps scaling above it): {decision.reason}")
        return True

    async def _apply(self, w: Workload, decision: Decision, *, current: int) -> bool:
        try:
            result = await update_scale(self.client, namespace=w.ref.namespace, name=w.ref.name,
                                        decide=lambda _scale: decision.replicas, expected=current)
        except NotFoundError:
            return False
        except K8sError as exc:
            logger.warning("%s: scale to %d failed: %s", w.key, decision.replicas, exc)
            self.metrics.errors.labels(kind="scale").inc()
            return False
        if not result.changed:
            return False
        (w.obj.setdefault("spec", {}))["replicas"] = result.after
        self.metrics.scalings.labels(direction="up" if result.after > result.before else "down").inc()
        self.outbox.about(w, "Normal", "Scaled", f"{result.before} -> {result.after}: {decision.reason}")
        return True

    @staticmethod
    def _status_key(w: Workload, decision: Decision, *, mode: str, candidate: str | None,
                    forecaster: Forecaster) -> str:
        """What a person reads off the status, less the numbers that move every step (usage, forecast, the HPA's
        answer, the figures inside the reason): a status that differs only in those is not news, and is rewritten
        only when it is `status_every_s` old."""
        share = w.saturated_share
        return json.dumps([decision.replicas, mode, decision.kind.value, decision.limited_by, candidate,
                           forecaster.version, None if share is None else round(share, 2),
                           _NUMBERS.sub("#", decision.reason)])

    async def _write_status(
        self, w: Workload, decision: Decision, *, reactive: int, usage: float | None, now: float, mode: str,
        forecaster: Forecaster, risk: float, candidate: str | None = None,
    ) -> None:
        share = w.saturated_share
        key = self._status_key(w, decision, mode=mode, candidate=candidate, forecaster=forecaster)
        if not self._status_due(w, key, now=now):
            return
        forecast: dict[str, Any] | None = None
        if w.forecast is not None:
            f = np.asarray(w.forecast, dtype=np.float64)
            forecast = {
                "horizon_s": int(f.shape[0] * self.settings.step_s),
                "next": {f"p{round(q * 100)}": round(float(f[0, i]), 4) for i, q in enumerate(forecaster.quantiles)},
                "peak": {f"p{round(q * 100)}": round(float(f[:, i].max()), 4)
                         for i, q in enumerate(forecaster.quantiles)},
            }
        status = {
            "replicas": decision.replicas,
            "reactive": reactive,
            "usage": None if usage is None else round(usage, 4),
            # what usage and forecasts count: "cores", or the named metric the workload scales on (`aihpa/metric`)
            "unit": w.unit,
            "per_pod": round(w.pod.may_use, 4),
            "forecast": forecast,
            "reason": decision.reason,
            # the candidate the predictive policy acts on (the HPA at its learned target, the model's forecast, the
            # last usage)
            "candidate": candidate,
            "mode": mode,
            "model": forecaster.version,
            # the SLO: the risk it is sized to, and the realized share of short steps over the last day
            "slo": {"risk": risk, "saturated_share": None if share is None else round(share, 4),
                    "steps": len(w.short_steps)},
        }
        stamped = json.dumps({**status, "time": datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")},
                             separators=(",", ":"), sort_keys=True)
        try:
            await self.client.request(
                "PATCH", f"/apis/apps/v1/namespaces/{w.ref.namespace}/deployments/{w.ref.name}",
                body={"metadata": {"annotations": {ANNOTATION_STATUS: stamped}}}, content_type=MERGE_PATCH,
            )
            w.status_written, w.status_time = key, now
        except K8sError as exc:
            logger.info("%s: status not written: %s", w.key, exc)
