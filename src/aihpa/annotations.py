"""The label and annotation contract (DESIGN section 2): keys, defaults, and parsing a policy with warnings.

The webhook and the controller both read a Deployment's `aihpa/*` annotations; they share this module so that the
same value is accepted or rejected the same way, with the same warning text. A bad value never breaks a workload: it
yields a warning and the default.

Pure: standard library only, no I/O, no clock. It must never import the network, the Kubernetes client or JAX.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal, TypeVar

from aihpa.defaults import (
    DEFAULT_SATURATION_RISK,
    DEFAULT_TARGET_UTILIZATION,
    PREDICTIVE_SCALE_DOWN_STABILIZATION_S,
    REACTIVE_SCALE_DOWN_STABILIZATION_S,
)

__all__ = [
    "ANNOTATION_ACTUATED",
    "ANNOTATION_INITIAL_FORECAST",
    "ANNOTATION_MANAGED",
    "ANNOTATION_MAX_REPLICAS",
    "ANNOTATION_METRIC",
    "ANNOTATION_METRIC_TARGET",
    "ANNOTATION_MIN_REPLICAS",
    "ANNOTATION_MODE",
    "ANNOTATION_MODEL_VERSION",
    "ANNOTATION_ORIGINAL_MIN_REPLICAS",
    "ANNOTATION_REQUESTED_REPLICAS",
    "ANNOTATION_SATURATION_RISK",
    "ANNOTATION_SCALE_DOWN_STABILIZATION",
    "ANNOTATION_STATUS",
    "ANNOTATION_TARGET_UTILIZATION",
    "ANNOTATION_TOLERANCE",
    "ANNOTATION_WITH_HPA",
    "CONTROLLER_KEYS",
    "LABEL_ENABLED",
    "MAX_METRIC_NAME_CHARS",
    "MAX_SATURATION_RISK",
    "MAX_STABILIZATION_S",
    "MAX_VALUE_CHARS",
    "METRIC_NAME",
    "MODES",
    "POLICY_KEYS",
    "PREFIX",
    "WEBHOOK_KEYS",
    "Mode",
    "ParsedPolicy",
    "Policy",
    "PolicyDefaults",
    "is_enabled",
    "parse_policy",
    "policy_annotations",
    "stabilization_for",
]

PREFIX: Final = "aihpa/"
LABEL_ENABLED: Final = "aihpa/enabled"

ANNOTATION_MIN_REPLICAS: Final = "aihpa/min-replicas"
ANNOTATION_MAX_REPLICAS: Final = "aihpa/max-replicas"
ANNOTATION_TARGET_UTILIZATION: Final = "aihpa/target-utilization"
ANNOTATION_MODE: Final = "aihpa/mode"
ANNOTATION_SCALE_DOWN_STABILIZATION: Final = "aihpa/scale-down-stabilization"
ANNOTATION_TOLERANCE: Final = "aihpa/tolerance"
ANNOTATION_SATURATION_RISK: Final = "aihpa/saturation-risk"
# scale on a named query of the controller (`--metric-query NAME=PROMQL`) with a per-pod target in its unit, as the
# HPA's Pods metrics do; both or neither (neither: CPU)
ANNOTATION_METRIC: Final = "aihpa/metric"
ANNOTATION_METRIC_TARGET: Final = "aihpa/metric-target"
# beside an HPA that targets the same Deployment: "skip" (leave it alone) or "floor" (set the HPA's minReplicas)
ANNOTATION_WITH_HPA: Final = "aihpa/with-hpa"
# on an HPA whose floor aihpa sets: the user's own minReplicas, written back when aihpa stops
ANNOTATION_ORIGINAL_MIN_REPLICAS: Final = "aihpa/original-min-replicas"

ANNOTATION_MANAGED: Final = "aihpa/managed"
ANNOTATION_MODEL_VERSION: Final = "aihpa/model-version"
ANNOTATION_INITIAL_FORECAST: Final = "aihpa/initial-forecast"
ANNOTATION_REQUESTED_REPLICAS: Final = "aihpa/requested-replicas"
ANNOTATION_STATUS: Final = "aihpa/status"
# written by a sharded controller with every scale: the model step it actuated and who did (`controller.sharding`)
ANNOTATION_ACTUATED: Final = "aihpa/actuated-step"

POLICY_KEYS: Final = (
    ANNOTATION_MIN_REPLICAS,
    ANNOTATION_MAX_REPLICAS,
    ANNOTATION_TARGET_UTILIZATION,
    ANNOTATION_MODE,
    ANNOTATION_SCALE_DOWN_STABILIZATION,
    ANNOTATION_TOLERANCE,
    ANNOTATION_SATURATION_RISK,
    ANNOTATION_WITH_HPA,
    ANNOTATION_METRIC,
    ANNOTATION_METRIC_TARGET,
)
WEBHOOK_KEYS: Final = (
    ANNOTATION_MANAGED,
    ANNOTATION_MODEL_VERSION,
    ANNOTATION_INITIAL_FORECAST,
    ANNOTATION_REQUESTED_REPLICAS,
)
# what the controller writes itself: never a user's typo to warn about
CONTROLLER_KEYS: Final = (ANNOTATION_STATUS, ANNOTATION_ACTUATED)
_KNOWN_KEYS: Final = frozenset((*POLICY_KEYS, *WEBHOOK_KEYS, *CONTROLLER_KEYS))

Mode = Literal["predictive", "reactive", "dry-run"]
MODES: Final[tuple[Mode, ...]] = ("predictive", "reactive", "dry-run")
WithHpa = Literal["skip", "floor"]
WITH_HPA: Final[tuple[WithHpa, ...]] = ("skip", "floor")

# The HPA caps behavior.scaleDown.stabilizationWindowSeconds at one hour; the annotation mirrors that field.
MAX_STABILIZATION_S: Final = 3600
# The HPA's tolerance when none is set (kube-controller-manager's --horizontal-pod-autoscaler-tolerance). The
# annotation sets one value for both directions; at 1 or more a scale-down could never happen, so it stays below 1.
_DEFAULT_TOLERANCE: Final = 0.1
# A workload short of CPU in more than half of its minutes has no SLO to speak of.
MAX_SATURATION_RISK: Final = 0.5
# Deployment replicas are int32 on the wire.
_MAX_REPLICAS_LIMIT: Final = 2**31 - 1
# Admission warnings longer than 120 characters may be truncated by clients; quote user values briefly.
_MAX_QUOTED: Final = 32
# No valid value is anywhere near this long: a longer one is rejected before any parsing (int() refuses strings of
# more than 4300 digits with ValueError, and a huge value costs time on every event of its object).
MAX_VALUE_CHARS: Final = 256
# int32 has at most 10 decimal digits: a longer digit string is out of range whatever it says.
_MAX_INT_DIGITS: Final = 10
# A plain decimal number: no sign, no "_" separators, no nan/inf, ASCII digits only (float() takes all of those).
# A metric's name, as in `--metric-query NAME=PROMQL`: what a label value may hold, so a chart key fits too.
MAX_METRIC_NAME_CHARS: Final = 63
METRIC_NAME: Final = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?")
_DECIMAL: Final = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?")

T = TypeVar("T")


def is_enabled(labels: object) -> bool:
    """Whether a labels mapping opts the workload in: exactly the string "true", anything else leaves it alone."""
    return isinstance(labels, Mapping) and labels.get(LABEL_ENABLED) == "true"


@dataclass(frozen=True, slots=True)
class PolicyDefaults:
    """The values used when an annotation is absent or invalid (the Helm chart's values can change them)."""

    min_replicas: int = 1
    max_replicas: int = 100
    # the HPA's target: reactive mode, and predictive mode's fallback while no forecast is trusted
    target_utilization: float = DEFAULT_TARGET_UTILIZATION
    mode: Mode = "predictive"
    # None: the mode's own default (`stabilization_for`)
    scale_down_stabilization_s: int | None = None
    # the share of minutes a workload may be short of CPU, which predictive mode sizes to
    saturation_risk: float = DEFAULT_SATURATION_RISK

    def __post_init__(self) -> None:
        # Defaults are operator input: reject a bad set once, at start-up, rather than warn on every Deployment.
        if not 1 <= self.min_replicas <= self.max_replicas <= _MAX_REPLICAS_LIMIT:
            raise ValueError(
                f"default replicas need 1 <= min ({self.min_replicas}) <= max ({self.max_replicas}) <= 2^31-1"
            )
        if not (math.isfinite(self.target_utilization) and 0.0 < self.target_utilization <= 1.0):
            raise ValueError(f"default target utilization must be in (0, 1], got {self.target_utilization}")
        if self.mode not in MODES:
            raise ValueError(f"default mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (math.isfinite(self.saturation_risk) and 0.0 < self.saturation_risk <= MAX_SATURATION_RISK):
            raise ValueError(
                f"default saturation risk must be in (0, {MAX_SATURATION_RISK}], got {self.saturation_risk}"
            )
        if self.scale_down_stabilization_s is not None and not (
            0 <= self.scale_down_stabilization_s <= MAX_STABILIZATION_S
        ):
            raise ValueError(
                f"default scale-down stabilization must be 0..{MAX_STABILIZATION_S} s, "
                f"got {self.scale_down_stabilization_s}"
            )


@dataclass(frozen=True, slots=True)
class Policy:
    """The effective scaling policy of one workload."""

    min_replicas: int
    max_replicas: int
    target_utilization: float
    mode: Mode
    scale_down_stabilization_s: int
    # the HPA tolerance band on both sides of the target (1 - t <= usage ratio <= 1 + t: no change)
    tolerance: float = _DEFAULT_TOLERANCE
    saturation_risk: float = DEFAULT_SATURATION_RISK
    # beside an HPA targeting the same Deployment: leave it alone ("skip") or set its floor ("floor")
    with_hpa: WithHpa = "skip"
    # the named query the workload scales on (None: CPU), and the per-pod target in that query's unit (set together)
    metric: str | None = None
    metric_target: float | None = None

    def clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))


@dataclass(frozen=True, slots=True)
class _Invalid:
    """Why a raw annotation value was rejected (a distinct type, since some valid values are strings)."""

    reason: str


@dataclass(frozen=True, slots=True)
class ParsedPolicy:
    """A policy together with the warnings that explain every value that fell back to its default."""

    policy: Policy
    warnings: tuple[str, ...] = field(default=())


def _quote(raw: str) -> str:
    text = raw if len(raw) <= _MAX_QUOTED else raw[: _MAX_QUOTED - 3] + "..."
    quoted = repr(text)
    # a non-printable character quotes as an escape of up to 10 characters: bound the quote, not only the value
    return quoted if len(quoted) <= 2 * _MAX_QUOTED else quoted[: 2 * _MAX_QUOTED - 4] + "...'"


def _printable(text: str) -> str:
    # a key shown in a warning stays on one line whatever characters it holds
    return "".join(c if c.isprintable() else "?" for c in text)


def _parse_int(raw: str) -> int | None:
    text = raw.strip()
    # int() also accepts "1_000", "+3" and other scripts' digits; annotations should be plain decimal numbers.
    if not text or len(text) > _MAX_INT_DIGITS or not (text.isdecimal() and text.isascii()):
        return None
    return int(text)


def _parse_number(raw: str, within: Callable[[float], bool], what: str) -> float | _Invalid:
    """A plain decimal number (`_DECIMAL`), finite and `within` its range; else why not, as "must be {what}"."""
    text = raw.strip()
    try:
        value = float(text) if _DECIMAL.fullmatch(text) else math.nan
    except (ValueError, OverflowError):
        value = math.nan
    if not (math.isfinite(value) and within(value)):
        return _Invalid(f"must be {what}")
    return value


def _parse_replicas(raw: str) -> int | _Invalid:
    value = _parse_int(raw)
    if value is None or not 1 <= value <= _MAX_REPLICAS_LIMIT:
        return _Invalid("must be a whole number >= 1")
    return value


def _parse_target(raw: str) -> float | _Invalid:
    return _parse_number(raw, lambda v: 0.0 < v <= 1.0, "a number in (0, 1]")


def _parse_mode(raw: str) -> Mode | _Invalid:
    text = raw.strip()
    for mode in MODES:
        if text == mode:
            return mode
    return _Invalid("must be one of " + ", ".join(MODES))


def _parse_stabilization(raw: str) -> int | _Invalid:
    value = _parse_int(raw)
    if value is None or value > MAX_STABILIZATION_S:
        return _Invalid(f"must be whole seconds in 0..{MAX_STABILIZATION_S}")
    return value


def stabilization_for(mode: Mode, defaults: PolicyDefaults) -> int:
    """The scale-down stabilization a workload gets when it sets none: the operator's default if given, else the
    mode's (none in predictive mode, where a calibrated forecast sizes every step and the hysteresis holds churn; the
    HPA's 300 s in reactive mode)."""
    if defaults.scale_down_stabilization_s is not None:
        return defaults.scale_down_stabilization_s
    return REACTIVE_SCALE_DOWN_STABILIZATION_S if mode == "reactive" else PREDICTIVE_SCALE_DOWN_STABILIZATION_S


def _parse_risk(raw: str) -> float | _Invalid:
    return _parse_number(raw, lambda v: 0.0 < v <= MAX_SATURATION_RISK, f"a number in (0, {MAX_SATURATION_RISK}]")


def _parse_with_hpa(raw: str) -> WithHpa | _Invalid:
    text = raw.strip()
    for value in WITH_HPA:
        if text == value:
            return value
    return _Invalid("must be one of " + ", ".join(WITH_HPA))


def _parse_metric(raw: str) -> str | _Invalid:
    text = raw.strip()
    if not METRIC_NAME.fullmatch(text):
        return _Invalid(f"must be a query name (letters, digits, '-', '_', '.'; at most {MAX_METRIC_NAME_CHARS})")
    return text


def _parse_metric_target(raw: str) -> float | _Invalid:
    return _parse_number(raw, lambda v: v > 0.0, "a positive number")


def _metric_pair(given: Mapping[str, object], warnings: list[str]) -> tuple[str | None, float | None]:
    """The metric and its per-pod target, both or neither: a bad or lone value is one warning and CPU."""
    values: dict[str, object] = {}
    bad = False
    for key, parse in ((ANNOTATION_METRIC, _parse_metric), (ANNOTATION_METRIC_TARGET, _parse_metric_target)):
        if key not in given:
            continue
        raw = given[key]
        if not isinstance(raw, str):
            warnings.append(f"{key} must be a string; scaling on CPU")
            bad = True
        elif len(raw) > MAX_VALUE_CHARS:
            warnings.append(f"{key} is {len(raw)} characters long (at most {MAX_VALUE_CHARS}); scaling on CPU")
            bad = True
        else:
            parsed = parse(raw)
            if isinstance(parsed, _Invalid):
                warnings.append(f"{key}={_quote(raw)} {parsed.reason}; scaling on CPU")
                bad = True
            else:
                values[key] = parsed
    metric, target = values.get(ANNOTATION_METRIC), values.get(ANNOTATION_METRIC_TARGET)
    if bad:
        return None, None
    if metric is None and target is not None:
        warnings.append(f"{ANNOTATION_METRIC_TARGET} needs {ANNOTATION_METRIC} beside it; scaling on CPU")
        return None, None
    if metric is not None and target is None:
        warnings.append(f"{ANNOTATION_METRIC} needs {ANNOTATION_METRIC_TARGET} (the per-pod target) beside it; "
                        "scaling on CPU")
        return None, None
    if isinstance(metric, str) and isinstance(target, float):
        return metric, target
    return None, None


def _parse_tolerance(raw: str) -> float | _Invalid:
    return _parse_number(raw, lambda v: 0.0 <= v < 1.0, "a number in [0, 1)")


def parse_policy(annotations: Mapping[str, object] | object, *, defaults: PolicyDefaults) -> ParsedPolicy:
    """The effective policy from a Deployment's annotations: each absent or invalid value takes its default.

    `annotations` is taken as found in the object (None when absent; anything but a map gives the defaults).

    Every fallback from a present value, every unknown `aihpa/` key (a likely typo) and a min above max produce one
    short warning each, fit for an admission response or a Warning Event.
    """
    warnings: list[str] = []
    given: Mapping[str, object] = {}
    if isinstance(annotations, Mapping):
        given = annotations
    elif annotations is not None:
        warnings.append("metadata.annotations is not a map; using the default policy")

    def field_value(key: str, parse: Callable[[str], T | _Invalid], default: T) -> tuple[T, bool]:
        if key not in given:
            return default, False
        raw = given[key]
        if not isinstance(raw, str):
            warnings.append(f"{key} must be a string; using default {_format(default)}")
            return default, False
        if len(raw) > MAX_VALUE_CHARS:
            warnings.append(f"{key} is {len(raw)} characters long (at most {MAX_VALUE_CHARS}); "
                            f"using default {_format(default)}")
            return default, False
        try:
            parsed = parse(raw)
        except (ValueError, ArithmeticError):
            # the parsers check their input first; this keeps one bad value from costing the whole object
            parsed = _Invalid("cannot be parsed")
        if isinstance(parsed, _Invalid):
            warnings.append(f"{key}={_quote(raw)} {parsed.reason}; using default {_format(default)}")
            return default, False
        return parsed, True

    min_replicas, min_given = field_value(ANNOTATION_MIN_REPLICAS, _parse_replicas, defaults.min_replicas)
    max_replicas, max_given = field_value(ANNOTATION_MAX_REPLICAS, _parse_replicas, defaults.max_replicas)
    target, _ = field_value(ANNOTATION_TARGET_UTILIZATION, _parse_target, defaults.target_utilization)
    mode, _ = field_value(ANNOTATION_MODE, _parse_mode, defaults.mode)
    stabilization, _ = field_value(
        ANNOTATION_SCALE_DOWN_STABILIZATION, _parse_stabilization, stabilization_for(mode, defaults)
    )
    tolerance, _ = field_value(ANNOTATION_TOLERANCE, _parse_tolerance, _DEFAULT_TOLERANCE)
    risk, _ = field_value(ANNOTATION_SATURATION_RISK, _parse_risk, defaults.saturation_risk)
    no_hpa: WithHpa = "skip"
    with_hpa, _ = field_value(ANNOTATION_WITH_HPA, _parse_with_hpa, no_hpa)
    metric, metric_target = _metric_pair(given, warnings)

    if min_replicas > max_replicas:
        # Revert only what the user set: the defaults are consistent by construction, so the result always is.
        warnings.append(
            f"{ANNOTATION_MIN_REPLICAS} {min_replicas} exceeds {ANNOTATION_MAX_REPLICAS} {max_replicas}; "
            f"using defaults {defaults.min_replicas}..{defaults.max_replicas}"
        )
        if min_given:
            min_replicas = defaults.min_replicas
        if max_given:
            max_replicas = defaults.max_replicas
        if min_replicas > max_replicas:
            min_replicas, max_replicas = defaults.min_replicas, defaults.max_replicas

    for key in sorted(k for k in given if isinstance(k, str) and k.startswith(PREFIX) and k not in _KNOWN_KEYS):
        warnings.append(f"unknown annotation {_printable(key[:60])} is ignored")

    policy = Policy(
        min_replicas=min_replicas,
        max_replicas=max_replicas,
        target_utilization=target,
        mode=mode,
        scale_down_stabilization_s=stabilization,
        tolerance=tolerance,
        saturation_risk=risk,
        with_hpa=with_hpa,
        metric=metric,
        metric_target=metric_target,
    )
    return ParsedPolicy(policy=policy, warnings=tuple(warnings))


def _format(value: object) -> str:
    # repr() of a float is the shortest string that parses back to it, so format -> parse -> format is a fixed point.
    if isinstance(value, float):
        return repr(value)
    return str(value)


def policy_annotations(policy: Policy) -> dict[str, str]:
    """The policy written out as annotations, in canonical form: parsing them back yields the same policy.

    The tolerance is optional: it is written only when it is not the HPA's default.
    """
    written = {
        ANNOTATION_MIN_REPLICAS: _format(policy.min_replicas),
        ANNOTATION_MAX_REPLICAS: _format(policy.max_replicas),
        ANNOTATION_TARGET_UTILIZATION: _format(policy.target_utilization),
        ANNOTATION_MODE: policy.mode,
        ANNOTATION_SCALE_DOWN_STABILIZATION: _format(policy.scale_down_stabilization_s),
        ANNOTATION_SATURATION_RISK: _format(policy.saturation_risk),
    }
    if policy.tolerance != _DEFAULT_TOLERANCE:
        written[ANNOTATION_TOLERANCE] = _format(policy.tolerance)
    if policy.with_hpa != "skip":
        written[ANNOTATION_WITH_HPA] = policy.with_hpa
    if policy.metric is not None and policy.metric_target is not None:
        written[ANNOTATION_METRIC] = policy.metric
        written[ANNOTATION_METRIC_TARGET] = _format(policy.metric_target)
    return written
