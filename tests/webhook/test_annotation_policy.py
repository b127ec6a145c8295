"""Parsing the aihpa annotations into a policy: defaults, bad values with warnings, canonical round trips."""

from __future__ import annotations

from dataclasses import replace

import pytest

from aihpa.annotations import (
    Policy,
    PolicyDefaults,
    is_enabled,
    parse_policy,
    policy_annotations,
)

DEFAULTS = PolicyDefaults()
DEFAULT_POLICY = Policy(
    min_replicas=1, max_replicas=100, target_utilization=0.7, mode="predictive", scale_down_stabilization_s=0,
    saturation_risk=0.01,
)


def test_absent_annotations_give_the_defaults_without_warnings() -> None:
    assert parse_policy(None, defaults=DEFAULTS).policy == DEFAULT_POLICY
    assert parse_policy({}, defaults=DEFAULTS).warnings == ()


# (annotations, expected policy fields that differ from the defaults, expected warning fragments)
CASES: list[tuple[dict[str, object], dict[str, object], list[str]]] = [
    ({"aihpa/min-replicas": "3", "aihpa/max-replicas": "40"}, {"min_replicas": 3, "max_replicas": 40}, []),
    ({"aihpa/min-replicas": " 2 "}, {"min_replicas": 2}, []),
    ({"aihpa/target-utilization": "0.55"}, {"target_utilization": 0.55}, []),
    ({"aihpa/target-utilization": "1"}, {"target_utilization": 1.0}, []),
    ({"aihpa/mode": "dry-run"}, {"mode": "dry-run"}, []),
    ({"aihpa/mode": "reactive"}, {"mode": "reactive"}, []),
    ({"aihpa/scale-down-stabilization": "0"}, {"scale_down_stabilization_s": 0}, []),
    ({"aihpa/scale-down-stabilization": "3600"}, {"scale_down_stabilization_s": 3600}, []),
    ({"aihpa/min-replicas": "zero"}, {}, ["aihpa/min-replicas='zero' must be a whole number >= 1; using default 1"]),
    ({"aihpa/min-replicas": "0"}, {}, ["aihpa/min-replicas='0'"]),
    ({"aihpa/min-replicas": "-2"}, {}, ["aihpa/min-replicas='-2'"]),
    ({"aihpa/min-replicas": "1.5"}, {}, ["aihpa/min-replicas='1.5'"]),
    ({"aihpa/min-replicas": "1_000"}, {}, ["aihpa/min-replicas='1_000'"]),
    ({"aihpa/min-replicas": "٣"}, {}, ["aihpa/min-replicas"]),
    ({"aihpa/max-replicas": "99999999999"}, {}, ["aihpa/max-replicas='99999999999'"]),
    ({"aihpa/target-utilization": "1.5"}, {}, ["must be a number in (0, 1]; using default 0.7"]),
    ({"aihpa/target-utilization": "0"}, {}, ["aihpa/target-utilization='0'"]),
    ({"aihpa/target-utilization": "nan"}, {}, ["aihpa/target-utilization='nan'"]),
    ({"aihpa/target-utilization": "70%"}, {}, ["aihpa/target-utilization='70%'"]),
    ({"aihpa/mode": "turbo"}, {}, ["must be one of predictive, reactive, dry-run; using default predictive"]),
    ({"aihpa/mode": "Predictive"}, {}, ["aihpa/mode='Predictive'"]),
    ({"aihpa/scale-down-stabilization": "-5"}, {}, ["must be whole seconds in 0..3600; using default 0"]),
    ({"aihpa/scale-down-stabilization": "5m"}, {}, ["aihpa/scale-down-stabilization='5m'"]),
    ({"aihpa/min-replicas": 3}, {}, ["aihpa/min-replicas must be a string; using default 1"]),
    ({"aihpa/max-replica": "10"}, {}, ["unknown annotation aihpa/max-replica is ignored"]),
    (
        {"aihpa/min-replicas": "200"},
        {},
        ["aihpa/min-replicas 200 exceeds aihpa/max-replicas 100; using defaults 1..100"],
    ),
    ({"aihpa/min-replicas": "9", "aihpa/max-replicas": "4"}, {}, ["exceeds"]),
    ({"aihpa/min-replicas": "9", "aihpa/max-replicas": "x"}, {"min_replicas": 9}, ["aihpa/max-replicas='x'"]),
    ({"aihpa/managed": "true", "aihpa/status": "{}", "team": "a"}, {}, []),
    ({"aihpa/saturation-risk": "0.05"}, {"saturation_risk": 0.05}, []),
    ({"aihpa/saturation-risk": "0.5"}, {"saturation_risk": 0.5}, []),
    ({"aihpa/saturation-risk": "0"}, {}, ["saturation-risk='0' must be a number in (0, 0.5]; using default 0.01"]),
    ({"aihpa/saturation-risk": "0.6"}, {}, ["aihpa/saturation-risk='0.6'"]),
    ({"aihpa/saturation-risk": "1%"}, {}, ["aihpa/saturation-risk='1%'"]),
    ({"aihpa/saturation-risk": "nan"}, {}, ["aihpa/saturation-risk='nan'"]),
    ({"aihpa/mode": "reactive", "aihpa/scale-down-stabilization": "60"},
     {"mode": "reactive", "scale_down_stabilization_s": 60}, []),
]


@pytest.mark.parametrize(("annotations", "changed", "warnings"), CASES)
def test_each_annotation_is_parsed_or_falls_back_with_a_warning(
    annotations: dict[str, object], changed: dict[str, object], warnings: list[str]
) -> None:
    parsed = parse_policy(annotations, defaults=DEFAULTS)
    expected = {
        "min_replicas": 1,
        "max_replicas": 100,
        "target_utilization": 0.7,
        "mode": "predictive",
        **changed,
    }
    # a workload that sets no stabilization gets its mode's: none in predictive mode, the HPA's 300 s in reactive
    expected.setdefault("scale_down_stabilization_s", 300 if expected["mode"] == "reactive" else 0)
    assert parsed.policy == Policy(**expected)  # type: ignore[arg-type]
    assert len(parsed.warnings) == len(warnings), parsed.warnings
    for got, fragment in zip(parsed.warnings, warnings, strict=True):
        assert fragment in got
        assert len(got) <= 120 and "\n" not in got


def test_a_long_bad_value_is_quoted_briefly() -> None:
    parsed = parse_policy({"aihpa/mode": "x" * 500}, defaults=DEFAULTS)
    assert len(parsed.warnings[0]) <= 120


def test_defaults_come_from_the_settings_object() -> None:
    defaults = PolicyDefaults(min_replicas=2, max_replicas=10, target_utilization=0.5, mode="dry-run",
                              scale_down_stabilization_s=120, saturation_risk=0.05)
    parsed = parse_policy({"aihpa/max-replicas": "nope"}, defaults=defaults)
    assert parsed.policy == Policy(
        min_replicas=2, max_replicas=10, target_utilization=0.5, mode="dry-run", scale_down_stabilization_s=120,
        saturation_risk=0.05,
    )
    assert parsed.warnings == ("aihpa/max-replicas='nope' must be a whole number >= 1; using default 10",)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"min_replicas": 0},
        {"min_replicas": 5, "max_replicas": 4},
        {"target_utilization": 0.0},
        {"target_utilization": float("inf")},
        {"mode": "fast"},
        {"scale_down_stabilization_s": 3601},
    ],
)
def test_inconsistent_defaults_are_refused_at_start_up(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PolicyDefaults(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "annotations",
    [
        {},
        {"aihpa/target-utilization": "0.70000", "aihpa/min-replicas": "03", "aihpa/mode": " reactive "},
        {"aihpa/target-utilization": "0.1234567890123", "aihpa/scale-down-stabilization": "0"},
    ],
)
def test_written_annotations_parse_back_to_the_same_policy_and_text(annotations: dict[str, str]) -> None:
    policy = parse_policy(annotations, defaults=DEFAULTS).policy
    written = policy_annotations(policy)
    again = parse_policy(written, defaults=DEFAULTS)
    assert again.policy == policy and again.warnings == ()
    assert policy_annotations(again.policy) == written


@pytest.mark.parametrize(
    ("labels", "enabled"),
    [
        ({"aihpa/enabled": "true"}, True),
        ({"aihpa/enabled": "True"}, False),
        ({"aihpa/enabled": "yes"}, False),
        ({"aihpa/enabled": True}, False),
        ({}, False),
        (None, False),
        (["aihpa/enabled"], False),
    ],
)
def test_only_the_exact_string_true_opts_in(labels: object, enabled: bool) -> None:
    assert is_enabled(labels) is enabled


# (annotations, expected (metric, target), expected warning fragments): a metric and its per-pod target go together
METRIC_CASES: list[tuple[dict[str, object], tuple[str | None, float | None], list[str]]] = [
    ({"aihpa/metric": "rps", "aihpa/metric-target": "100"}, ("rps", 100.0), []),
    ({"aihpa/metric": " queue.depth-v2 ", "aihpa/metric-target": " 2.5 "}, ("queue.depth-v2", 2.5), []),
    ({"aihpa/metric": "rps", "aihpa/metric-target": "1e3"}, ("rps", 1000.0), []),
    ({"aihpa/metric": "rps"}, (None, None), ["aihpa/metric needs aihpa/metric-target (the per-pod target)"]),
    ({"aihpa/metric-target": "100"}, (None, None), ["aihpa/metric-target needs aihpa/metric beside it"]),
    ({"aihpa/metric": "rps", "aihpa/metric-target": "0"}, (None, None),
     ["aihpa/metric-target='0' must be a positive number; scaling on CPU"]),
    ({"aihpa/metric": "rps", "aihpa/metric-target": "-5"}, (None, None), ["aihpa/metric-target='-5'"]),
    ({"aihpa/metric": "rps", "aihpa/metric-target": "inf"}, (None, None), ["aihpa/metric-target='inf'"]),
    ({"aihpa/metric": "rps", "aihpa/metric-target": "100rps"}, (None, None), ["aihpa/metric-target='100rps'"]),
    ({"aihpa/metric": "requests per second", "aihpa/metric-target": "100"}, (None, None),
     ["aihpa/metric='requests per second' must be a query name"]),
    ({"aihpa/metric": "-rps", "aihpa/metric-target": "100"}, (None, None), ["aihpa/metric='-rps'"]),
    ({"aihpa/metric": "r" * 64, "aihpa/metric-target": "100"}, (None, None), ["aihpa/metric="]),
    ({"aihpa/metric": 5, "aihpa/metric-target": "100"}, (None, None), ["aihpa/metric must be a string"]),
]


@pytest.mark.parametrize(("annotations", "expected", "warned"), METRIC_CASES)
def test_a_metric_and_its_per_pod_target_are_parsed_together_or_fall_back_to_cpu(
    annotations: dict[str, object], expected: tuple[str | None, float | None], warned: list[str]
) -> None:
    parsed = parse_policy(annotations, defaults=DEFAULTS)
    assert (parsed.policy.metric, parsed.policy.metric_target) == expected
    assert len(parsed.warnings) == len(warned)
    for fragment, warning in zip(warned, parsed.warnings, strict=True):
        assert fragment in warning
        assert warning.endswith("scaling on CPU")
    # the rest of the policy is untouched either way
    assert replace(parsed.policy, metric=None, metric_target=None) == DEFAULT_POLICY


def test_a_metric_is_written_back_only_when_set_and_parses_back_the_same() -> None:
    assert "aihpa/metric" not in policy_annotations(DEFAULT_POLICY)
    assert "aihpa/metric-target" not in policy_annotations(DEFAULT_POLICY)
    policy = parse_policy({"aihpa/metric": "rps", "aihpa/metric-target": "120.50"}, defaults=DEFAULTS).policy
    written = policy_annotations(policy)
    assert written["aihpa/metric"] == "rps" and written["aihpa/metric-target"] == "120.5"
    again = parse_policy(written, defaults=DEFAULTS)
    assert again.policy == policy and again.warnings == ()
