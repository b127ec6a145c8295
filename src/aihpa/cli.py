"""The `aihpa` command line: one parser, sub-commands contributed by each area.

Each module listed in `COMMAND_MODULES` exposes `add_commands(subparsers)`; it must keep heavy imports (JAX, the
Kubernetes client) inside its handlers so that `aihpa --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from aihpa._version import __version__
from aihpa.errors import UserError

COMMAND_MODULES: tuple[str, ...] = (
    "aihpa.sim.cli",
    "aihpa.forecast.cli",
    "aihpa.controller_cli",
    "aihpa.webhook.cli",
    "aihpa.backtest.cli",
    "aihpa.demo",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aihpa",
        description="Predictive Horizontal Pod Autoscaler: forecast CPU demand and scale ahead of load.",
    )
    parser.add_argument("--version", action="version", version=f"aihpa {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(int(args.verbose), 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    handler = args.handler
    try:
        code = handler(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except UserError as exc:
        print(f"aihpa {args.command}: error: {exc}", file=sys.stderr)
        return 2
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())


def markdown_reference() -> str:
    """The CLI reference (every command's --help) as Markdown, as the README carries it."""
    import os

    previous = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal: fix the width so the text is reproducible
    try:
        parser = build_parser()
        parts = ["```text", parser.format_help().rstrip(), "```"]

        def walk(p: argparse.ArgumentParser, prefix: str) -> None:
            for action in p._actions:
                if isinstance(action, argparse._SubParsersAction):
                    for name, sub in action.choices.items():
                        parts.extend([f"\n#### `{prefix} {name}`\n", "```text", sub.format_help().rstrip(), "```"])
                        walk(sub, f"{prefix} {name}")

        walk(parser, "aihpa")
        return "\n".join(parts) + "\n"
    finally:
        if previous is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = previous


def update_readme(path: str = "README.md") -> bool:
    """Rewrite the README's CLI reference between its markers; returns whether it changed."""
    from pathlib import Path

    start, end = "<!-- cli-reference:start -->", "<!-- cli-reference:end -->"
    text = Path(path).read_text()
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    new = f"{head}{start}\n{markdown_reference()}{end}{tail}"
    if new != text:
        Path(path).write_text(new)
    return new != text
