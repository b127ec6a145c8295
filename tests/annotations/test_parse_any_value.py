"""Every annotation value parses to a value or to a warning and the default: no string makes `parse_policy` raise,
and a bad value on one key never costs the valid values on the others."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aihpa.annotations import (
    ANNOTATION_MAX_REPLICAS,
    ANNOTATION_MIN_REPLICAS,
    ANNOTATION_MODE,
    ANNOTATION_SCALE_DOWN_STABILIZATION,
    ANNOTATION_TARGET_UTILIZATION,
    MAX_STABILIZATION_S,
    MAX_VALUE_CHARS,
    MODES,
    POLICY_KEYS,
    Policy,
    PolicyDefaults,
    parse_policy,
    policy_annotations,
)
from tests.annotations.strategies import VALID, annotation_values

DEFAULTS = PolicyDefaults()
PROPERTY = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _sound(policy: Policy) -> None:
    assert 1 <= policy.min_replicas <= policy.max_replicas <= 2**31 - 1
    assert math.isfinite(policy.target_utilization) and 0.0 < policy.target_utilization <= 1.0
    assert policy.mode in MODES
    assert 0 <= policy.scale_down_stabilization_s <= MAX_STABILIZATION_S


def _one_short_line(warning: str) -> None:
    assert warning.isprintable() and len(warning) <= 200, warning


@PROPERTY
@given(key=st.sampled_from(POLICY_KEYS), raw=annotation_values)
def test_one_value_parses_to_a_value_or_to_one_warning_and_the_default(key: str, raw: str) -> None:
    parsed = parse_policy({key: raw}, defaults=DEFAULTS)
    _sound(parsed.policy)
    for warning in parsed.warnings:
        _one_short_line(warning)
    if parsed.warnings:
        assert len(parsed.warnings) == 1 and parsed.warnings[0].startswith(key)
        assert parsed.policy == parse_policy({}, defaults=DEFAULTS).policy
    else:
        # accepted: its canonical form (absent for an optional key at its default) says the same thing
        canonical = policy_annotations(parsed.policy).get(key)
        again = {} if canonical is None else {key: canonical}
        assert parse_policy(again, defaults=DEFAULTS).policy == parsed.policy


@PROPERTY
@given(key=st.sampled_from(tuple(VALID)), raw=annotation_values)
def test_a_bad_value_never_costs_the_valid_values_on_the_same_object(key: str, raw: str) -> None:
    annotations = {**VALID, key: raw}
    parsed = parse_policy(annotations, defaults=DEFAULTS)
    _sound(parsed.policy)
    canonical = policy_annotations(parsed.policy)
    bounds = (ANNOTATION_MIN_REPLICAS, ANNOTATION_MAX_REPLICAS)
    for other, value in VALID.items():
        if other == key or (key in bounds and other in bounds):
            continue  # min and max are checked together: a bad pair falls back as a pair
        assert parse_policy({other: canonical[other]}, defaults=DEFAULTS).policy == \
            parse_policy({other: value}, defaults=DEFAULTS).policy, (other, parsed.warnings)


@PROPERTY
@given(values=st.fixed_dictionaries({k: annotation_values for k in POLICY_KEYS}),
       extra=st.dictionaries(st.text(max_size=80).map(lambda s: "aihpa/" + s), annotation_values, max_size=3))
def test_every_key_at_once_with_any_values_gives_a_sound_policy_and_short_warnings(
    values: dict[str, str], extra: dict[str, str]
) -> None:
    parsed = parse_policy({**extra, **values}, defaults=DEFAULTS)
    _sound(parsed.policy)
    for warning in parsed.warnings:
        _one_short_line(warning)


# (value, what the warning says) for the inputs that used to escape as exceptions or slip through
CASES = [
    ("1" * 5000, f"is 5000 characters long (at most {MAX_VALUE_CHARS}); using default 1"),
    ("9" * 300, "is 300 characters long"),
    ("9" * 200, "must be a whole number >= 1; using default 1"),
    ("12345678901", "must be a whole number >= 1"),
    ("\u0663", "must be a whole number >= 1"),
]


@pytest.mark.parametrize(("raw", "says"), CASES)
def test_huge_and_foreign_digit_strings_are_invalid_values_not_errors(raw: str, says: str) -> None:
    parsed = parse_policy({ANNOTATION_MIN_REPLICAS: raw, ANNOTATION_MODE: "reactive"}, defaults=DEFAULTS)
    assert parsed.policy.min_replicas == 1 and parsed.policy.mode == "reactive"
    assert len(parsed.warnings) == 1 and says in parsed.warnings[0]


@pytest.mark.parametrize("raw", ["nan", "inf", "1e309", "0_5", "+0.5", "\u0660.\u0665", "0." + "5" * 300])
def test_target_utilization_takes_plain_decimals_only(raw: str) -> None:
    parsed = parse_policy({ANNOTATION_TARGET_UTILIZATION: raw}, defaults=DEFAULTS)
    assert parsed.policy.target_utilization == 0.7 and len(parsed.warnings) == 1


@pytest.mark.parametrize(("raw", "value"), [("0.5", 0.5), (" .25 ", 0.25), ("5e-1", 0.5), ("1.", 1.0)])
def test_target_utilization_accepts_the_plain_decimal_forms(raw: str, value: float) -> None:
    parsed = parse_policy({ANNOTATION_TARGET_UTILIZATION: raw}, defaults=DEFAULTS)
    assert parsed.policy.target_utilization == value and not parsed.warnings


def test_annotations_that_are_not_a_map_give_the_defaults_with_a_warning() -> None:
    parsed = parse_policy(["aihpa/mode"], defaults=DEFAULTS)
    assert parsed.policy == parse_policy({}, defaults=DEFAULTS).policy
    assert parsed.warnings == ("metadata.annotations is not a map; using the default policy",)


def test_an_unknown_key_with_control_characters_is_named_on_one_line() -> None:
    parsed = parse_policy({"aihpa/mo\nde": "x", ANNOTATION_SCALE_DOWN_STABILIZATION: "60"}, defaults=DEFAULTS)
    assert parsed.warnings == ("unknown annotation aihpa/mo?de is ignored",)
    assert parsed.policy.scale_down_stabilization_s == 60
