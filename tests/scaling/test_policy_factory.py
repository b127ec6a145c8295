"""One policy, two callers: the backtest's aihpa row and the controller build the predictive policy with the same
factory and the same defaults, and predictive mode sizes to the saturation risk against what a pod may use."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from aihpa.annotations import PolicyDefaults, parse_policy
from aihpa.backtest.policies import default_backtest_policy
from aihpa.controller.deciding import policy_for, reactive_for
from aihpa.controller.settings import ControllerSettings
from aihpa.controller.workload import Workload, pod_cpu
from aihpa.forecast.forecaster import LastValueForecaster
from aihpa.metrics.source import WorkloadRef
from aihpa.scaling import DecisionKind, Observation, PodCpu, PredictiveState, predictive_policy
from aihpa.scaling.prior import prior_of
from aihpa.sim.testing import deployment_manifest


def _workload(obj: dict[str, Any], settings: ControllerSettings) -> Workload:
    meta = obj["metadata"]
    return Workload(
        ref=WorkloadRef(namespace=meta["namespace"], name=meta["name"], selector=obj["spec"]["selector"]),
        obj=obj,
        parsed=parse_policy(meta.get("annotations") or {}, defaults=settings.defaults),
        request_cores=pod_cpu(obj, "requests"),
    )


def test_the_backtest_scores_the_policy_the_controller_runs_for_an_unannotated_deployment() -> None:
    forecaster = LastValueForecaster()
    settings = ControllerSettings(identity="test")
    # the backtest's pods: one core requested, one core the most they may use
    obj = deployment_manifest("web", cpu_request="1", cpu_limit="1", labels={"aihpa/enabled": "true"})
    live = policy_for(_workload(obj, settings), settings=settings, min_history=forecaster.min_history,
                      prior=prior_of(forecaster))
    assert live == default_backtest_policy(forecaster)


def test_a_pod_may_use_its_limit_and_no_target_is_stacked_on_the_calibrated_headroom() -> None:
    settings = ControllerSettings(identity="test")
    obj = deployment_manifest("web", cpu_request="500m", cpu_limit="2")
    policy = policy_for(_workload(obj, settings), settings=settings, min_history=1)
    # sized against 2 cores a pod (4x the request), never against 70% of the request
    assert policy.target_utilization == pytest.approx(4.0) and policy.request_per_pod == pytest.approx(0.5)
    # the HPA's tolerance for the HPA candidate, twice it for the forecast candidates
    assert policy.calibration.risk == 0.01 and policy.tolerance == 0.1 and policy.hysteresis == pytest.approx(0.2)
    # no limit: a pod may use its request
    bare = deployment_manifest("bare", cpu_request="500m", cpu_limit=None)
    unlimited = policy_for(_workload(bare, settings), settings=settings, min_history=1)
    assert unlimited.target_utilization == pytest.approx(1.0) and unlimited.request_per_pod == pytest.approx(0.5)
    # the annotation's target keeps its HPA meaning for the fallback and for reactive mode
    assert unlimited.fallback_utilization == 0.7
    assert reactive_for(_workload(bare, settings)).target_utilization == 0.7


def test_the_annotations_reach_the_policy() -> None:
    settings = ControllerSettings(identity="test", defaults=PolicyDefaults(saturation_risk=0.02))
    obj = deployment_manifest("web", annotations={
        "aihpa/saturation-risk": "0.05", "aihpa/min-replicas": "3", "aihpa/max-replicas": "9",
        "aihpa/tolerance": "0.2", "aihpa/target-utilization": "0.5", "aihpa/scale-down-stabilization": "60",
    })
    policy = policy_for(_workload(obj, settings), settings=settings, min_history=1)
    assert policy.risk == 0.05 and policy.fallback_utilization == 0.5
    assert policy.tolerance == 0.2 and policy.hysteresis == pytest.approx(0.4)
    assert (policy.behavior.min_replicas, policy.behavior.max_replicas) == (3, 9)
    assert policy.behavior.scale_down.stabilization_window_seconds == 60
    # without the annotation, the operator's default risk; the controller's former `risk` setting sets that default
    plain = deployment_manifest("plain")
    assert policy_for(_workload(plain, settings), settings=settings, min_history=1).risk == 0.02
    legacy = ControllerSettings(identity="test", risk=0.03)
    assert legacy.saturation_risk == 0.03
    assert policy_for(_workload(plain, legacy), settings=legacy, min_history=1).risk == 0.03


def test_the_fallback_is_the_hpa_at_its_target_and_the_floor_the_hpa_at_what_pods_may_use() -> None:
    policy = predictive_policy(pod=PodCpu(request=1.0, limit=1.0), min_history=10)
    # 4 pods each using 0.8 cores: the HPA at 70% wants ceil(3.2 / 0.7) = 5; at 100% it keeps 4
    obs = Observation(usage=3.2, pods_with_metrics=4, current_replicas=4, now=0.0, history_len=3)
    decision, _ = policy.decide(obs, PredictiveState(), forecast=None, quantiles=(0.5, 0.95))
    assert decision.kind is DecisionKind.FALLBACK and decision.replicas == 5
    # with a trusted forecast of that same load, the count is sized to what pods may use: no 70% on top
    forecast = np.full((4, 2), 3.2)
    warm = Observation(usage=3.2, pods_with_metrics=4, current_replicas=4, now=60.0, history_len=20)
    decision, _ = policy.decide(warm, PredictiveState(), forecast=forecast, quantiles=(0.5, 0.95))
    assert decision.kind is not DecisionKind.FALLBACK and decision.replicas == 4


def test_a_risk_outside_its_range_is_refused() -> None:
    with pytest.raises(ValueError, match="saturation risk"):
        predictive_policy(saturation_risk=0.0)
    with pytest.raises(ValueError, match="saturation risk"):
        PolicyDefaults(saturation_risk=0.7)
