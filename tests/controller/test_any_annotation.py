"""The controller's Deployment event handler takes any annotation value: it never raises, every listed Deployment is
managed, and the valid keys on an object with a bad one still apply (property-based, no cluster needed)."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aihpa.annotations import ANNOTATION_MODE, POLICY_KEYS, PolicyDefaults, parse_policy
from aihpa.clock import SystemClock
from aihpa.controller import Controller
from aihpa.k8s import KubeClient, WatchEvent
from aihpa.metrics.source import MetricsSource
from tests.annotations.strategies import VALID, annotation_values
from tests.controller.conftest import SETTINGS, ScriptedForecaster

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


class _Unused:
    """Stands in for the API client and the metrics source: the event handler must do no I/O."""

    clock = SystemClock()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"the event handler touched {name}")


def _controller() -> Controller:
    return Controller(client=cast(KubeClient, _Unused()), metrics=cast(MetricsSource, _Unused()),
                      forecaster=ScriptedForecaster(), settings=SETTINGS, clock=SystemClock())


def _deployment(name: str, annotations: dict[str, str]) -> dict[str, Any]:
    labels = {"app": name, "aihpa/enabled": "true"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}", "labels": labels,
                     "annotations": annotations},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "c", "resources": {"requests": {"cpu": "500m"}}}]}}},
    }


def _invalid_annotation_events(controller: Controller, name: str) -> list[str]:
    return [message for ref, type_, reason, message in controller.outbox.queued
            if ref.name == name and type_ == "Warning" and reason == "InvalidAnnotation"]


@PROPERTY
@given(key=st.sampled_from(tuple(VALID)), raw=annotation_values,
       others=st.fixed_dictionaries({k: annotation_values for k in POLICY_KEYS}))
def test_a_relist_with_any_annotation_values_manages_every_deployment(
    key: str, raw: str, others: dict[str, str]
) -> None:
    controller = _controller()
    bad = _deployment("bad", {**VALID, key: raw})
    wild = _deployment("wild", others)
    items = (_deployment("first", {}), bad, wild, _deployment("last", {ANNOTATION_MODE: "reactive"}))
    controller.cache.on_deployment(WatchEvent(type="SYNC", items=items))

    assert set(controller.workloads) == {"default/first", "default/bad", "default/wild", "default/last"}
    assert controller.workloads["default/last"].parsed.policy.mode == "reactive"
    expected = parse_policy({**VALID, key: raw}, defaults=PolicyDefaults())
    assert controller.workloads["default/bad"].parsed == expected
    if key != ANNOTATION_MODE:
        assert controller.workloads["default/bad"].parsed.policy.mode == "dry-run"
    # one Warning Event per warning, each saying its fallback once
    messages = _invalid_annotation_events(controller, "bad")
    assert messages == list(expected.warnings)
    for message in messages:
        assert message.count("using default") <= 1 and "using the default" not in message, message
    assert controller.metrics.object_errors._metrics == {}


@PROPERTY
@given(raw=annotation_values)
def test_an_update_with_a_bad_value_still_applies_the_valid_change_beside_it(raw: str) -> None:
    controller = _controller()
    controller.cache.on_deployment(WatchEvent(type="SYNC", items=(_deployment("web", {}),)))
    updated = _deployment("web", {"aihpa/min-replicas": raw, ANNOTATION_MODE: "dry-run",
                                  "aihpa/scale-down-stabilization": "60"})
    controller.cache.on_deployment(WatchEvent(type="MODIFIED", object=updated))
    policy = controller.workloads["default/web"].parsed.policy
    assert policy.mode == "dry-run" and policy.scale_down_stabilization_s == 60


def test_the_invalid_annotation_event_says_its_fallback_once() -> None:
    controller = _controller()
    annotations = {"aihpa/min-replicas": "1" * 5000, "aihpa/max-replicas": "lots", "aihpa/mode": "turbo",
                   "aihpa/typo": "1"}
    controller.cache.on_deployment(WatchEvent(type="SYNC", items=(_deployment("web", annotations),)))
    assert _invalid_annotation_events(controller, "web") == [
        "aihpa/min-replicas is 5000 characters long (at most 256); using default 1",
        "aihpa/max-replicas='lots' must be a whole number >= 1; using default 100",
        "aihpa/mode='turbo' must be one of predictive, reactive, dry-run; using default predictive",
        "unknown annotation aihpa/typo is ignored",
    ]
