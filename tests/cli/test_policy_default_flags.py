"""`aihpa controller` and `aihpa webhook` read the same policy-default flags and make the same defaults of them, so a
Deployment without annotations is scaled with the policy the webhook wrote into it."""

from __future__ import annotations

import argparse

import pytest

from aihpa.annotations import PolicyDefaults
from aihpa.cli import build_parser, main
from aihpa.policy_flags import policy_defaults

COMMANDS = ("controller", "webhook")


def _subparser(command: str) -> argparse.ArgumentParser:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    parser = sub.choices[command]
    assert isinstance(parser, argparse.ArgumentParser)
    return parser


def _default_flags(command: str) -> set[str]:
    return {s for a in _subparser(command)._actions for s in a.option_strings if s.startswith("--default-")}


def test_both_commands_take_the_same_policy_default_flags() -> None:
    assert _default_flags("controller") == _default_flags("webhook") == {
        "--default-min-replicas", "--default-max-replicas", "--default-target-utilization", "--default-mode",
        "--default-scale-down-stabilization", "--default-saturation-risk",
    }


def test_without_flags_both_commands_use_the_policys_own_defaults() -> None:
    for command in COMMANDS:
        assert policy_defaults(build_parser().parse_args([command])) == PolicyDefaults()


def test_the_same_flags_give_the_same_defaults_to_both_commands() -> None:
    flags = ["--default-min-replicas", "2", "--default-max-replicas", "9", "--default-target-utilization", "0.5",
             "--default-mode", "dry-run", "--default-scale-down-stabilization", "60", "--default-saturation-risk",
             "0.05"]
    want = PolicyDefaults(min_replicas=2, max_replicas=9, target_utilization=0.5, mode="dry-run",
                          scale_down_stabilization_s=60, saturation_risk=0.05)
    for command in COMMANDS:
        assert policy_defaults(build_parser().parse_args([command, *flags])) == want
    # the controller's former --risk still sets the default saturation risk
    legacy = build_parser().parse_args(["controller", "--risk", "0.03"])
    assert policy_defaults(legacy).saturation_risk == 0.03


@pytest.mark.parametrize("command", COMMANDS)
def test_a_default_set_the_policy_refuses_is_a_one_line_error(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([command, "--default-min-replicas", "5", "--default-max-replicas", "4"]) == 2
    err = capsys.readouterr().err
    assert "default replicas need" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", COMMANDS)
def test_the_help_shows_each_default(command: str) -> None:
    text = " ".join(_subparser(command).format_help().split())
    defaults = PolicyDefaults()
    for flag, name in [("min-replicas", "min_replicas"), ("max-replicas", "max_replicas"),
                       ("target-utilization", "target_utilization"), ("mode", "mode"),
                       ("scale-down-stabilization", "scale_down_stabilization_s")]:
        value = getattr(defaults, name)
        assert f"aihpa/{flag}" in text
        assert value is None or f"(default {value})" in text, flag
