"""One CLI vocabulary: every command's help renders cleanly and shows each default, the same thing has the same flag
in every command, former names still parse (hidden, logged as deprecated once), and -v works after the command."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator

import pytest

from aihpa.cli import COMMANDS, build_parser, main
from aihpa.cli_flags import HelpFormatter, deprecated_aliases, shown_default


def _commands(parser: argparse.ArgumentParser, prefix: str = "aihpa") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield prefix, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _commands(sub, f"{prefix} {name}")


ALL = dict(_commands(build_parser()))
LEAVES = {name: p for name, p in ALL.items()
          if not any(isinstance(a, argparse._SubParsersAction) for a in p._actions)}
_NO_DEFAULT = (argparse._StoreTrueAction, argparse._CountAction, argparse._HelpAction, argparse._VersionAction)


def _flag(command: str, option: str) -> argparse.Action:
    (action,) = [a for a in ALL[command]._actions if option in a.option_strings]
    return action


def test_every_command_is_listed_where_main_finds_it() -> None:
    (sub,) = [a for a in ALL["aihpa"]._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(sub.choices) == list(COMMANDS)
    for command, module in COMMANDS.items():  # built alone, each command's module still defines it
        (only,) = [a for a in build_parser(command)._actions if isinstance(a, argparse._SubParsersAction)]
        assert command in only.choices, module


@pytest.mark.parametrize("command", sorted(ALL))
def test_the_help_has_no_doubled_percent_and_shows_every_default(command: str) -> None:
    parser = ALL[command]
    text = parser.format_help()
    assert "%%" not in text
    assert parser.formatter_class is HelpFormatter
    formatter = HelpFormatter(prog=parser.prog)
    for action in parser._actions:
        shown = shown_default(action.default)
        if action.help == argparse.SUPPRESS or isinstance(action, _NO_DEFAULT) or shown is None:
            continue
        rendered = formatter._expand_help(action)
        assert "default" in rendered and shown in rendered, (command, action.option_strings, rendered)


@pytest.mark.parametrize("command", sorted(LEAVES))
def test_every_command_takes_v_after_its_name(command: str) -> None:
    argv = command.split()[1:]
    required = {"train": ["--trace", "t.csv", "--out-dir", "m"], "tune": ["--trace", "t.csv", "--out-dir", "m"],
                "prior": ["--trace", "t.csv", "--model", "m", "--out-dir", "o"],
                "forecast": ["--trace", "t.csv"], "evaluate": ["--trace", "t.csv"], "backtest": ["--trace", "t.csv"],
                "certs generate": ["--namespace", "n"], "certs inject-ca-bundle": ["--name", "n", "--ca-file", "c"]}
    args = build_parser().parse_args(["-v", *argv, *required.get(" ".join(argv), []), "-vv"])
    assert args.verbose + args.sub_verbose == 3


def test_a_trace_is_given_with_trace_in_every_command() -> None:
    for command in ("aihpa sim serve", "aihpa train", "aihpa forecast", "aihpa evaluate", "aihpa backtest",
                    "aihpa tune", "aihpa prior", "aihpa demo"):
        action = _flag(command, "--trace")
        assert action.metavar == "CSV", command
    # no command shows a positional trace any more
    for command, parser in LEAVES.items():
        assert "TRACE" not in parser.format_usage(), command


def test_a_directory_written_is_out_dir_and_peak_cores_names_the_peak() -> None:
    for command in ("aihpa train", "aihpa tune", "aihpa demo", "aihpa certs generate"):
        assert _flag(command, "--out-dir").metavar == "DIR", command
    for command in ("aihpa sim serve", "aihpa demo"):
        assert _flag(command, "--peak-cores").metavar == "CORES", command
    assert "--peak " not in ALL["aihpa demo"].format_help() and "--out " not in ALL["aihpa demo"].format_help()


@pytest.mark.parametrize(
    ("argv", "dest", "value", "old"),
    [
        (["controller", "--namespace", "ops"], "namespace", "ops", "--namespace"),
        (["train", "--trace", "t.csv", "--out", "m"], "out", "m", "--out"),
        (["tune", "--trace", "t.csv", "--out", "m"], "out", "m", "--out"),
        (["demo", "--out", "d", "--peak", "3"], "peak", 3.0, "--peak"),
        (["forecast", "t.csv"], "trace", "t.csv", "the positional TRACE"),
        (["evaluate", "t.csv", "--column", "cpu"], "trace", "t.csv", "the positional TRACE"),
        (["backtest", "--slice", "0:10", "t.csv"], "trace", "t.csv", "the positional TRACE"),
    ],
)
def test_former_names_still_parse_and_are_recorded_as_deprecated(
    argv: list[str], dest: str, value: object, old: str
) -> None:
    args = build_parser().parse_args(argv)
    assert getattr(args, dest) == value
    assert old in deprecated_aliases(args)


def test_the_new_names_are_not_recorded_as_deprecated() -> None:
    for argv in (["controller", "--controller-namespace", "ops"], ["evaluate", "--trace", "t.csv"],
                 ["demo", "--out-dir", "d", "--peak-cores", "3"]):
        assert deprecated_aliases(build_parser().parse_args(argv)) == {}


def test_the_controllers_namespace_flag_says_whose_namespace_it_is() -> None:
    text = " ".join(ALL["aihpa controller"].format_help().split())
    assert "--controller-namespace NAMESPACE the controller's own namespace" in text
    assert "--namespace" not in text.replace("--controller-namespace", "").replace("--watch-namespace", "")


def test_a_trace_given_both_ways_or_not_at_all_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as both:
        build_parser().parse_args(["evaluate", "a.csv", "--trace", "b.csv"])
    assert both.value.code == 2
    with pytest.raises(SystemExit) as neither:
        build_parser().parse_args(["evaluate"])
    assert neither.value.code == 2
    assert "--trace is required" in capsys.readouterr().err


def test_a_former_name_is_logged_as_deprecated_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aihpa.cli")
    # a bad --sync-period stops the command before it connects anywhere
    assert main(["controller", "--namespace", "ops", "--sync-period", "0"]) == 2
    warnings = [r.getMessage() for r in caplog.records if r.name == "aihpa.cli"]
    assert warnings == ["--namespace is deprecated: use --controller-namespace"]
