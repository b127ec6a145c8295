"""Parsing `aihpa/tolerance`: one HPA tolerance for both directions, a bad value warns and takes the default."""

from __future__ import annotations

import pytest

from aihpa.annotations import ANNOTATION_TOLERANCE, PolicyDefaults, parse_policy, policy_annotations

DEFAULTS = PolicyDefaults()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0.05", 0.05), (" 0.2 ", 0.2), ("0", 0.0), ("0.999", 0.999), (".15", 0.15)],
)
def test_a_valid_tolerance_is_used(raw: str, expected: float) -> None:
    parsed = parse_policy({ANNOTATION_TOLERANCE: raw}, defaults=DEFAULTS)
    assert (parsed.policy.tolerance, parsed.warnings) == (expected, ())


@pytest.mark.parametrize("raw", ["1", "1.5", "-0.1", "10%", "nan", "inf", "0.1,0.2", "", "0x1"])
def test_a_bad_tolerance_warns_and_takes_the_default(raw: str) -> None:
    parsed = parse_policy({ANNOTATION_TOLERANCE: raw}, defaults=DEFAULTS)
    assert parsed.policy.tolerance == 0.1
    assert parsed.warnings == (f"aihpa/tolerance={raw!r} must be a number in [0, 1); using default 0.1",)


def test_the_default_tolerance_is_not_written_and_a_set_one_round_trips() -> None:
    assert ANNOTATION_TOLERANCE not in policy_annotations(parse_policy({}, defaults=DEFAULTS).policy)
    policy = parse_policy({ANNOTATION_TOLERANCE: "0.050"}, defaults=DEFAULTS).policy
    written = policy_annotations(policy)
    assert written[ANNOTATION_TOLERANCE] == "0.05"
    assert parse_policy(written, defaults=DEFAULTS).policy == policy
