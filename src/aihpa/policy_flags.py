"""The policy-default flags that `aihpa controller` and `aihpa webhook` share, and the `PolicyDefaults` they make.

Both commands must read the same flags with the same defaults: a Deployment without (valid) `aihpa/*` annotations is
then scaled by the controller with the same policy that the webhook wrote into it at admission. Only argparse and
`aihpa.annotations`: it must stay importable by every command module without loading anything heavy.
"""

from __future__ import annotations

import argparse

from aihpa.annotations import MODES, PolicyDefaults
from aihpa.errors import UserError

__all__ = ["add_policy_default_flags", "policy_defaults"]

_DEFAULTS = PolicyDefaults()


def add_policy_default_flags(parser: argparse.ArgumentParser) -> None:
    """Add --default-min-replicas, --default-max-replicas, --default-target-utilization, --default-mode and
    --default-scale-down-stabilization: the policy of a Deployment whose annotation is absent or invalid."""
    group = parser.add_argument_group("policy defaults (for a Deployment without a valid aihpa/* annotation)")
    group.add_argument("--default-min-replicas", type=int, default=_DEFAULTS.min_replicas, metavar="N",
                       help="aihpa/min-replicas (default %(default)s)")
    group.add_argument("--default-max-replicas", type=int, default=_DEFAULTS.max_replicas, metavar="N",
                       help="aihpa/max-replicas (default %(default)s)")
    group.add_argument("--default-target-utilization", type=float, default=_DEFAULTS.target_utilization,
                       metavar="F", help="aihpa/target-utilization, in (0, 1] (default %(default)s)")
    group.add_argument("--default-mode", default=_DEFAULTS.mode, choices=MODES,
                       help="aihpa/mode (default %(default)s)")
    group.add_argument("--default-scale-down-stabilization", type=int,
                       default=_DEFAULTS.scale_down_stabilization_s, metavar="SECONDS",
                       help="aihpa/scale-down-stabilization (default %(default)s)")


def policy_defaults(args: argparse.Namespace) -> PolicyDefaults:
    """The `PolicyDefaults` the flags give; a `UserError` (one line, exit 2) for a set the policy refuses."""
    try:
        return PolicyDefaults(
            min_replicas=args.default_min_replicas,
            max_replicas=args.default_max_replicas,
            target_utilization=args.default_target_utilization,
            mode=args.default_mode,
            scale_down_stabilization_s=args.default_scale_down_stabilization,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
