"""The controller's policy cache: workloads with the same annotations and pods share one policy, built once; new
annotations, other pods or another model's prior get their own; a cached policy decides as a fresh one."""

from __future__ import annotations

from typing import Any

import numpy as np

from aihpa.annotations import parse_policy
from aihpa.controller.deciding import PolicyCache, policy_for, reactive_for
from aihpa.controller.settings import ControllerSettings
from aihpa.controller.workload import Workload, pod_cpu
from aihpa.forecast.forecaster import load_default_forecaster
from aihpa.metrics.source import WorkloadRef
from aihpa.scaling import Observation, PredictiveState
from aihpa.scaling.prior import prior_of
from aihpa.sim.testing import deployment_manifest

SETTINGS = ControllerSettings(identity="test")


def _workload(name: str, *, cpu_request: str = "500m", **annotations: str) -> Workload:
    obj: dict[str, Any] = deployment_manifest(name, cpu_request=cpu_request, cpu_limit="1", annotations=annotations)
    meta = obj["metadata"]
    return Workload(ref=WorkloadRef(namespace=meta["namespace"], name=name, selector=obj["spec"]["selector"]),
                    obj=obj, parsed=parse_policy(meta.get("annotations") or {}, defaults=SETTINGS.defaults),
                    request_cores=pod_cpu(obj, "requests"))


def test_workloads_alike_share_one_policy_and_any_difference_gets_its_own() -> None:
    cache = PolicyCache()
    prior = prior_of(load_default_forecaster())
    a, b = _workload("a"), _workload("b")
    first = cache.predictive(a, settings=SETTINGS, min_history=8, prior=prior)
    assert cache.predictive(b, settings=SETTINGS, min_history=8, prior=prior) is first
    assert first == policy_for(a, settings=SETTINGS, min_history=8, prior=prior)
    riskier = cache.predictive(_workload("c", **{"aihpa/saturation-risk": "0.05"}), settings=SETTINGS,
                               min_history=8, prior=prior)
    bigger = cache.predictive(_workload("d", cpu_request="2"), settings=SETTINGS, min_history=8, prior=prior)
    no_prior = cache.predictive(a, settings=SETTINGS, min_history=8, prior=None)
    shorter = cache.predictive(a, settings=SETTINGS, min_history=4, prior=prior)
    assert len({id(p) for p in (first, riskier, bigger, no_prior, shorter)}) == 5
    assert riskier.risk == 0.05 and bigger.request_per_pod == 2.0
    assert no_prior.band_prior == () and first.band_prior != ()
    assert shorter.min_history == 4
    assert cache.reactive(a) is cache.reactive(b) and cache.reactive(a) == reactive_for(a)


def test_an_equal_prior_that_is_another_object_is_not_mistaken_for_the_cached_one() -> None:
    cache = PolicyCache()
    w = _workload("a")
    old = {"band": [0.5, 1.0, 2.0]}
    kept = cache.predictive(w, settings=SETTINGS, min_history=8, prior=old)
    new = {"band": [5.0, 6.0, 7.0]}  # a promoted model's prior
    assert cache.predictive(w, settings=SETTINGS, min_history=8, prior=new).band_prior == (5.0, 6.0, 7.0)
    assert kept.band_prior == (0.5, 1.0, 2.0)


def test_the_cache_is_bounded() -> None:
    cache = PolicyCache(size=3)
    for i in range(10):
        cache.predictive(_workload(f"w{i}", **{"aihpa/max-replicas": str(10 + i)}), settings=SETTINGS,
                         min_history=8, prior=None)
    assert len(cache._predictive) <= 3


def test_a_shared_policy_decides_each_workload_as_its_own_fresh_policy_would() -> None:
    cache = PolicyCache()
    forecaster = load_default_forecaster()
    prior = prior_of(forecaster)
    workloads = [_workload(f"w{i}") for i in range(3)]
    q = np.asarray(forecaster.quantiles, dtype=np.float32)
    shared_states = [PredictiveState() for _ in workloads]
    fresh_states = [PredictiveState() for _ in workloads]
    rng = np.random.default_rng(0)
    for step in range(300):
        for i, w in enumerate(workloads):
            usage = float(0.5 + 0.3 * i + 0.2 * np.sin(step / 20) + rng.normal(0, 0.02))
            obs = Observation(usage=usage, pods_with_metrics=3, current_replicas=3, now=60.0 * step,
                              history_len=100 + step, capacity_per_pod=1.0)
            forecast = np.tile(usage + (q - 0.5) * 0.3, (forecaster.horizon, 1))
            shared = cache.predictive(w, settings=SETTINGS, min_history=8, prior=prior)
            fresh = policy_for(w, settings=SETTINGS, min_history=8, prior=prior)
            d1, shared_states[i] = shared.decide(obs, shared_states[i], forecast=forecast, quantiles=q.tolist())
            d2, fresh_states[i] = fresh.decide(obs, fresh_states[i], forecast=forecast, quantiles=q.tolist())
            assert (d1.replicas, d1.reason) == (d2.replicas, d2.reason)


def test_a_workload_whose_annotations_or_pods_change_gets_the_policy_of_its_new_inputs() -> None:
    cache = PolicyCache()
    w = _workload("a")
    before = cache.predictive(w, settings=SETTINGS, min_history=8, prior=None)
    assert cache.predictive(w, settings=SETTINGS, min_history=8, prior=None) is before  # remembered
    w.parsed = parse_policy({"aihpa/max-replicas": "7"}, defaults=SETTINGS.defaults)  # the watch saw new annotations
    annotated = cache.predictive(w, settings=SETTINGS, min_history=8, prior=None)
    assert annotated.behavior.max_replicas == 7 and before.behavior.max_replicas != 7
    assert cache.reactive(w).behavior.max_replicas == 7
    w.request_cores = 2.0  # a new pod template
    resized = cache.predictive(w, settings=SETTINGS, min_history=8, prior=None)
    assert resized.request_per_pod == 2.0 and cache.reactive(w).request_per_pod == 2.0
