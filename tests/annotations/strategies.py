"""Hypothesis strategies for raw annotation values: the strings a user (or a broken tool) can put in `aihpa/*`."""

from __future__ import annotations

from hypothesis import strategies as st

from aihpa.annotations import (
    ANNOTATION_MAX_REPLICAS,
    ANNOTATION_MIN_REPLICAS,
    ANNOTATION_MODE,
    ANNOTATION_SCALE_DOWN_STABILIZATION,
    ANNOTATION_TARGET_UTILIZATION,
)

__all__ = ["VALID", "annotation_values"]

# One valid, non-default value per policy key: what must still apply beside a bad value on another key.
VALID: dict[str, str] = {
    ANNOTATION_MIN_REPLICAS: "2",
    ANNOTATION_MAX_REPLICAS: "50",
    ANNOTATION_TARGET_UTILIZATION: "0.55",
    ANNOTATION_MODE: "dry-run",
    ANNOTATION_SCALE_DOWN_STABILIZATION: "120",
}

_SPECIALS = (
    "", " ", "\t\n", "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e309", "1e-400", "0x10", "0o7", "1_000",
    "+3", "-0", "0", "3.", ".5", "5e-1", "1e3", "٣", "１２", "²", "0.7\x00", "3\u200b", "dry-run\n", " reactive ",
    "9" * 4301, "1" * 5000, "0." + "5" * 5000,
)

_whitespace = st.text(alphabet=" \t\n\r\x0b\x0c\u00a0\u2003\u3000", max_size=4)
_digits = st.integers(0, 10**12).map(str)
_huge_digits = st.integers(11, 6000).map(lambda n: "7" * n)
_unicode_digits = st.text(alphabet=st.characters(categories=("Nd", "No")), min_size=1, max_size=12)
_floats = st.floats(allow_nan=True, allow_infinity=True).map(repr)
_control = st.text(alphabet=st.characters(categories=("Cc", "Cf", "Cs", "Zl", "Zp")), min_size=1, max_size=16)
_very_long = st.builds(lambda c, n: c * n, st.characters(), st.integers(200, 20_000))

annotation_values = st.one_of(
    st.sampled_from(_SPECIALS),
    st.text(max_size=40),
    _digits,
    _huge_digits,
    _unicode_digits,
    _floats,
    _control,
    _very_long,
    st.tuples(_whitespace, st.one_of(_digits, _floats, st.sampled_from(_SPECIALS)), _whitespace).map("".join),
    st.sampled_from(tuple(VALID.values())),
)
