"""The policy-default flags that `aihpa controller` and `aihpa webhook` share, and the `PolicyDefaults` they make.

Both commands must read the same flags with the same defaults: a Deployment without (valid) `aihpa/*` annotations is
then scaled by the controller with the same policy that the webhook wrote into it at admission. Only argparse and
`aihpa.annotations`: it must stay importable by every command module without loading anything heavy.
"""

from __future__ import annotations

import argparse
from typing import Any

from aihpa.annotations import (
    ANNOTATION_MAX_REPLICAS,
    ANNOTATION_MIN_REPLICAS,
    ANNOTATION_MODE,
    ANNOTATION_SATURATION_RISK,
    ANNOTATION_SCALE_DOWN_STABILIZATION,
    ANNOTATION_TARGET_UTILIZATION,
    MODES,
    PolicyDefaults,
)
from aihpa.errors import UserError

__all__ = ["add_policy_default_flags", "policy_defaults"]

_DEFAULTS = PolicyDefaults()

#: (flag, the PolicyDefaults field it sets, the annotation it stands in for (its help), its value's type, metavar)
_FLAGS: tuple[tuple[str, str, str, type, str | None], ...] = (
    ("--default-min-replicas", "min_replicas", ANNOTATION_MIN_REPLICAS, int, "N"),
    ("--default-max-replicas", "max_replicas", ANNOTATION_MAX_REPLICAS, int, "N"),
    ("--default-target-utilization", "target_utilization", f"{ANNOTATION_TARGET_UTILIZATION}, in (0, 1]", float, "F"),
    ("--default-mode", "mode", ANNOTATION_MODE, str, None),
    ("--default-scale-down-stabilization", "scale_down_stabilization_s",
     f"{ANNOTATION_SCALE_DOWN_STABILIZATION} (unset: 0 in predictive mode, 300 in reactive mode)", int, "SECONDS"),
    ("--default-saturation-risk", "saturation_risk",
     f"{ANNOTATION_SATURATION_RISK}: the share of minutes a workload may be short of CPU, in (0, 0.5]", float, "F"),
)


def add_policy_default_flags(parser: argparse.ArgumentParser) -> None:
    """Add --default-min-replicas, --default-max-replicas, --default-target-utilization, --default-mode and
    --default-scale-down-stabilization and --default-saturation-risk:
    the policy of a Deployment whose annotation is absent or invalid."""
    group = parser.add_argument_group("policy defaults (for a Deployment without a valid aihpa/* annotation)")
    for flag, name, annotation, kind, metavar in _FLAGS:
        extra: dict[str, Any] = {"choices": MODES} if name == "mode" else {"type": kind, "metavar": metavar}
        default = getattr(_DEFAULTS, name)
        shown = "(default %(default)s)" if default is not None else "(default: unset)"
        group.add_argument(flag, dest=_dest(flag), default=default, help=f"{annotation} {shown}", **extra)


def policy_defaults(args: argparse.Namespace) -> PolicyDefaults:
    """The `PolicyDefaults` the flags give; a `UserError` (one line, exit 2) for a set the policy refuses."""
    try:
        return PolicyDefaults(**{name: getattr(args, _dest(flag)) for flag, name, *_ in _FLAGS})
    except ValueError as exc:
        raise UserError(str(exc)) from None


def _dest(flag: str) -> str:
    return flag.removeprefix("--").replace("-", "_")
