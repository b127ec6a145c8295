"""The cycle's decisions: one per active workload, on CPU or on its named metric, no I/O.

A workload that a HorizontalPodAutoscaler also targets, or whose pods have no CPU request, is skipped (`select`),
with one Warning Event until that changes. The rules are `aihpa.scaling`'s; this module maps a workload onto them:
its annotations onto a `PredictivePolicy`, the metric and the object onto an `Observation`, and the cycle's moment
onto the rule that applies:

- no usage metric: hold (`hold_without_metric`);
- a sync inside a model step already decided: the reactive safety net (`safety_net`);
- a new model step: the workload's policy (`ReactivePolicy` in reactive mode, else `PredictivePolicy`).

The Decision's `kind` says which rule chose the count; actuation and the metrics act on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from aihpa.controller.outbox import EventOutbox
from aihpa.controller.settings import ControllerSettings
from aihpa.controller.workload import PROFILE_SLOT_S, SLO_MIN_STEPS, Workload
from aihpa.forecast.forecaster import Forecaster
from aihpa.metrics.history import History
from aihpa.observability import ControllerMetrics
from aihpa.scaling import (
    Decision,
    DecisionKind,
    Observation,
    PredictivePolicy,
    PredictiveState,
    ReactivePolicy,
    ReactiveState,
    hold_beside_hpa,
    hold_without_metric,
    safety_net,
)
from aihpa.scaling.factory import predictive_policy, reactive_policy
from aihpa.scaling.hpa_grid import HpaGridState
from aihpa.scaling.prior import prior_of

__all__ = [
    "PendingAction", "PolicyCache", "WorkloadDecision", "decide", "policy_for", "reactive_for", "select", "step_grids",
]


@dataclass(frozen=True)
class WorkloadDecision:
    """What the cycle decided for one workload, and whether this replica carried it out."""

    key: str
    current: int
    decision: Decision
    reactive: int
    usage: float | None
    applied: bool
    mode: str


@dataclass
class PendingAction:
    """A decision made, not yet carried out."""

    workload: Workload
    policy: PredictivePolicy
    decision: Decision
    reactive: int
    usage: float | None
    current: int
    mode: str

    def result(self, *, applied: bool) -> WorkloadDecision:
        return WorkloadDecision(key=self.workload.key, current=self.current, decision=self.decision,
                                reactive=self.reactive, usage=self.usage, applied=applied, mode=self.mode)


def select(
    workloads: Iterable[Workload], *, hpa_targets: set[str], outbox: EventOutbox
) -> tuple[list[Workload], dict[str, str]]:
    """The workloads to decide this cycle, and why each of the others is skipped (warned about once)."""
    skipped: dict[str, str] = {}
    active: list[Workload] = []
    for w in workloads:
        w.beside_hpa = w.key in hpa_targets and w.parsed.policy.with_hpa == "floor"
        if w.key in hpa_targets and not w.beside_hpa:
            skipped[w.key] = "targeted by a HorizontalPodAutoscaler"
            if not w.hpa_warned:
                w.hpa_warned = True
                outbox.about(w, "Warning", "HPAConflict",
                             "a HorizontalPodAutoscaler also targets this Deployment: aihpa leaves it alone (annotate "
                             "it aihpa/with-hpa=floor to let aihpa raise the HPA's minReplicas ahead of load)")
            continue
        w.hpa_warned = False
        if w.request_cores is None and w.metric is None:
            skipped[w.key] = "no CPU request on its containers"
            if "no-request" not in w.warned:
                w.warned = (*w.warned, "no-request")
                outbox.about(w, "Warning", "NoCPURequest",
                             "every container needs a CPU request for utilization-based scaling")
            continue
        active.append(w)
    return active, skipped


def policy_for(
    w: Workload,
    *,
    settings: ControllerSettings,
    min_history: int,
    prior: Mapping[str, Sequence[float]] | None = None,
) -> PredictivePolicy:
    """The workload's predictive policy, from its annotations (saturation risk, min, max, tolerance, stabilization,
    the fallback's target) and its pods' CPU request and limit, built by the same factory as the backtest's.

    On a named metric a pod may use the per-pod target (`Workload.pod`), and the fallback is the HPA on that metric
    at the target itself (a Pods metric: desired = ceil(usage / target)); `aihpa/target-utilization` is CPU's.
    `prior`: the model's calibration prior (`aihpa.scaling.prior.prior_of`)."""
    p = w.parsed.policy
    return predictive_policy(
        saturation_risk=p.saturation_risk,
        min_replicas=p.min_replicas,
        max_replicas=p.max_replicas,
        tolerance=p.tolerance,
        scale_down_stabilization_s=p.scale_down_stabilization_s,
        fallback_utilization=p.target_utilization if w.metric is None else 1.0,
        pod=w.pod,
        min_history=min_history,
        step_s=settings.step_s,
        prior=prior,
    )


def reactive_for(w: Workload) -> ReactivePolicy:
    """The workload's HPA (reactive mode): its target utilization of the CPU request, min, max, tolerance and
    stabilization; on a named metric, the HPA's Pods metric at the per-pod target (utilization 1.0 of it)."""
    p = w.parsed.policy
    return reactive_policy(
        target_utilization=p.target_utilization if w.metric is None else 1.0,
        min_replicas=p.min_replicas,
        max_replicas=p.max_replicas,
        tolerance=p.tolerance,
        scale_down_stabilization_s=p.scale_down_stabilization_s,
        pod=w.pod,
    )


class PolicyCache:
    """Each workload's policies, built once per distinct set of inputs and shared by the workloads that have the same
    (most of a cluster's workloads share their annotations and pod sizes): a cycle over 10,000 workloads would
    otherwise rebuild 20,000 frozen policies, each checking its 200-point prior. Policies are immutable, so sharing
    them is safe; a new model (another prior or shortest history) or new annotations make a new entry. Bounded: it
    starts afresh past `size` entries."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._predictive: dict[tuple[object, ...], tuple[object, PredictivePolicy]] = {}
        self._reactive: dict[tuple[object, ...], ReactivePolicy] = {}

    def predictive(
        self, w: Workload, *, settings: ControllerSettings, min_history: int,
        prior: Mapping[str, Sequence[float]] | None,
    ) -> PredictivePolicy:
        # the workload's last answer, while nothing it was built from has changed (checked by identity and by
        # value, cheaper than hashing the annotations' policy every cycle)
        memo = w.policy_memo
        if (memo is not None and memo[0] is w.parsed and memo[1] == w.request_cores and memo[2] == w.limit_cores
                and memo[3] == min_history and memo[4] == settings.step_s and memo[5] is prior):
            return memo[6]  # type: ignore[no-any-return]
        policy = self._shared(w, settings=settings, min_history=min_history, prior=prior)
        w.policy_memo = (w.parsed, w.request_cores, w.limit_cores, min_history, settings.step_s, prior, policy)
        return policy

    def _shared(
        self, w: Workload, *, settings: ControllerSettings, min_history: int,
        prior: Mapping[str, Sequence[float]] | None,
    ) -> PredictivePolicy:
        key = (w.parsed.policy, w.pod, w.metric is None, settings.step_s, min_history, id(prior))
        hit = self._predictive.get(key)
        if hit is not None and hit[0] is prior:  # the identity of the prior itself, not of a recycled id
            return hit[1]
        policy = policy_for(w, settings=settings, min_history=min_history, prior=prior)
        if len(self._predictive) >= self.size:
            self._predictive.clear()
        self._predictive[key] = (prior, policy)
        return policy

    def reactive(self, w: Workload) -> ReactivePolicy:
        memo = w.reactive_memo
        if memo is not None and memo[0] is w.parsed and memo[1] == w.request_cores and memo[2] == w.limit_cores:
            return memo[3]  # type: ignore[no-any-return]
        key = (w.parsed.policy, w.pod, w.metric is None)
        policy = self._reactive.get(key)
        if policy is None:
            policy = reactive_for(w)
            if len(self._reactive) >= self.size:
                self._reactive.clear()
            self._reactive[key] = policy
        w.reactive_memo = (w.parsed, w.request_cores, w.limit_cores, policy)
        return policy


def _mode(w: Workload, settings: ControllerSettings) -> str:
    """How the workload's decision is carried out: its `aihpa/mode` (dry-run for all under `settings.dry_run`), or
    "hpa-floor" for a predictive workload beside an HPA (the HPA scales; aihpa sets its floor, `coexist`)."""
    mode: str = "dry-run" if settings.dry_run else w.parsed.policy.mode
    return "hpa-floor" if w.beside_hpa and mode == "predictive" else mode


def _observation(w: Workload, usage: float | None, now: float) -> Observation:
    return Observation(
        usage=0.0 if usage is None else usage,
        pods_with_metrics=max(w.ready, 0),
        current_replicas=w.replicas,
        now=now,
        # without a limit a pod can burst past its request: only a limit makes a usage ceiling (a named metric has none)
        capacity_per_pod=w.usage_ceiling,
    )


def step_grids(
    workloads: Iterable[Workload],
    *,
    usage: Mapping[str, float | None],
    now: float,
    step: int,
    settings: ControllerSettings,
    forecaster: Forecaster,
    policies: PolicyCache,
) -> dict[str, HpaGridState]:
    """The HPA candidate's shadows of the workloads whose predictive policy decides at model step `step`, stepped
    in one pass per grid (`PredictivePolicy.step_grids`) instead of one workload at a time: `decide` takes each as
    it is. A workload left out here (or a shadow stepped here and not used) changes nothing: `decide` steps its own."""
    items: list[tuple[PredictivePolicy, Observation, PredictiveState]] = []
    keys: list[str] = []
    prior = prior_of(forecaster)
    for w in workloads:
        u = usage.get(w.key)
        if u is None or w.last_step_decided == step or _mode(w, settings) == "reactive":
            continue  # no metric, a sync inside the step, or the HPA itself (`decide`'s other paths)
        policy = policies.predictive(w, settings=settings, min_history=forecaster.min_history, prior=prior)
        items.append((policy, _observation(w, u, now), w.state))
        keys.append(w.key)
    stepped = PredictivePolicy.step_grids(items)
    return {key: grid for key, grid in zip(keys, stepped, strict=True) if grid is not None}


def decide(
    w: Workload,
    *,
    usage: float | None,
    now: float,
    step: int,
    settings: ControllerSettings,
    history: History,
    forecaster: Forecaster,
    metrics: ControllerMetrics,
    policies: PolicyCache | None = None,
    grid_state: HpaGridState | None = None,
) -> PendingAction:
    """The decision for one workload at model step `step`; the workload's policy state moves on with it.
    `policies`: where the workload's policies are kept between cycles (none: built afresh); `grid_state`: its HPA
    candidate's shadows stepped for this step already (`step_grids`)."""
    policies = policies or PolicyCache()
    policy = policies.predictive(w, settings=settings, min_history=forecaster.min_history, prior=prior_of(forecaster))
    mode = _mode(w, settings)
    current = w.replicas
    obs = _observation(w, usage, now)
    hpa = policies.reactive(w)
    # what the workload's HPA would recommend (reported beside every decision)
    reactive = hpa.recommend(obs)[0] if usage is not None else current
    if usage is None:
        decision = hold_without_metric(current=current)
    elif w.last_step_decided == step and mode == "hpa-floor":
        decision = hold_beside_hpa(current=current)
    elif w.last_step_decided == step:
        # between model steps only the rule in force may add pods: the HPA at the workload's target in reactive mode
        # and while the predictive policy falls back on it (no forecast trusted yet); else the HPA at what pods may
        # use (a second, lower target would undo the calibrated sizing)
        follows_hpa = mode == "reactive" or w.last_kind in (DecisionKind.FALLBACK, None)
        net = reactive if follows_hpa else policy.reactive.recommend(obs)[0]
        decision = safety_net(current=current, reactive=net, max_replicas=policy.behavior.max_replicas)
    else:
        w.last_step_decided = step
        if mode == "reactive":
            decision, rstate = hpa.decide(obs, ReactiveState(behavior=w.state.behavior))
            w.state = replace(w.state, behavior=rstate.behavior)
        else:
            # how many samples the forecast stood on (read at model steps only: between them no rule needs it)
            series = history.series(w.key)
            obs = replace(obs, history_len=0 if series is None else int(np.isfinite(series.values).sum()))
            forecast = None if w.forecast is None else np.asarray(w.forecast, dtype=np.float64)
            decision, w.state = policy.decide(obs, w.state, forecast=forecast, quantiles=forecaster.quantiles,
                                              grid_state=grid_state)
        w.last_kind = decision.kind
        w.profile[int((now % 86400) // PROFILE_SLOT_S)] = decision.replicas
        # the SLO: was the step that just ended short? (usage at what the ready pods may use, not at their ceiling)
        w.short_steps.append(replace(obs, capacity_per_pod=w.pod.may_use).saturated)
        metrics.saturation_risk.labels(w.ref.namespace, w.ref.name).set(policy.risk)
        if len(w.short_steps) >= SLO_MIN_STEPS:
            # a share of a handful of steps says little: the series starts after an hour of them (one short step
            # in the first minutes would otherwise read as a breach)
            metrics.saturated_share.labels(w.ref.namespace, w.ref.name).set(w.saturated_share or 0.0)
    metrics.decisions.labels(reason=decision.kind.value).inc()
    metrics.replicas.labels(w.ref.namespace, w.ref.name, "current").set(current)
    metrics.replicas.labels(w.ref.namespace, w.ref.name, "desired").set(decision.replicas)
    metrics.replicas.labels(w.ref.namespace, w.ref.name, "reactive").set(reactive)
    return PendingAction(workload=w, policy=policy, decision=decision, reactive=reactive, usage=usage, current=current,
                         mode=mode)
