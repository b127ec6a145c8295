"""The `aihpa` command line: one parser, sub-commands contributed by each area.

Each module named in `COMMANDS` exposes `add_commands(subparsers)`; it keeps heavy imports (JAX, the Kubernetes
client) inside its handlers. `main` builds only the module of the command it runs and answers `--version` before
building anything, so `aihpa --version` never imports JAX, and `aihpa webhook` never loads the forecaster's modules.
Logging is set up here, once, before any handler runs: every command takes `-v` (before or after its name).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from aihpa._version import __version__
from aihpa.cli_flags import HelpFormatter, deprecated_aliases
from aihpa.errors import UserError

__all__ = ["COMMANDS", "COMMAND_MODULES", "build_parser", "configure_logging", "main", "markdown_reference",
           "update_readme"]

logger = logging.getLogger(__name__)

#: Each command and the module whose `add_commands` defines it, in the order `aihpa --help` lists them.
COMMANDS: dict[str, str] = {
    "sim": "aihpa.sim.cli",
    "train": "aihpa.forecast.cli",
    "forecast": "aihpa.forecast.cli",
    "evaluate": "aihpa.forecast.cli",
    "controller": "aihpa.controller_cli",
    "status": "aihpa.status.cli",
    "webhook": "aihpa.webhook.cli",
    "certs": "aihpa.webhook.cli",
    "backtest": "aihpa.backtest.cli",
    "tune": "aihpa.backtest.cli",
    "prior": "aihpa.backtest.cli",
    "demo": "aihpa.demo",
}
COMMAND_MODULES: tuple[str, ...] = tuple(dict.fromkeys(COMMANDS.values()))

_TEXT_FORMAT = "%(levelname)s %(name)s: %(message)s"
# long-running commands (the controller) log at INFO by default, with the time
_TIMED_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_VERBOSE_HELP = "more log output (-vv for debug, -vvv also JAX's own)"


def build_parser(command: str | None = None, *, prog: str = "aihpa") -> argparse.ArgumentParser:
    """The whole command line, or, for a known `command`, only what the module defining it adds. `prog` is how the
    usage lines name the program ("kubectl aihpa" when run as the kubectl plugin)."""
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Predictive Horizontal Pod Autoscaler: forecast CPU demand and scale ahead of load.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"aihpa {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help=_VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    wanted = COMMANDS.get(command or "")
    for name in COMMAND_MODULES:
        if wanted is not None and name != wanted:
            continue
        importlib.import_module(name).add_commands(sub)
    _finish(parser)
    return parser


def _finish(parser: argparse.ArgumentParser) -> None:
    """Give every sub-command the shared formatter, and each leaf its own -v (a separate count: a sub-parser's
    defaults would otherwise overwrite the count given before the command's name)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.formatter_class = HelpFormatter
                if any(isinstance(a, argparse._SubParsersAction) for a in child._actions):
                    _finish(child)
                else:
                    child.add_argument("-v", "--verbose", dest="sub_verbose", action="count", default=0,
                                       help=_VERBOSE_HELP)


def _command_of(argv: Sequence[str]) -> str | None:
    """The command's name: the first word that is not an option (the top level's options take no value)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _asks_version(argv: Sequence[str]) -> bool:
    head = []
    for a in argv:
        if not a.startswith("-"):
            break
        head.append(a)
    return "--version" in head and not ({"-h", "--help"} & set(head[: head.index("--version")]))


def configure_logging(*, level: int, json_lines: bool = False, verbosity: int = 0) -> None:
    """Log to stderr at `level` (as JSON lines when asked), unless the process has handlers already (a host
    application or a test runner keeps its own). JAX's own records (its backend probe, "Unable to initialize backend
    'tpu'", at INFO) are kept at WARNING and above unless asked for with -vvv."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        if json_lines:
            from aihpa.observability import JsonFormatter

            handler.setFormatter(JsonFormatter())
        else:
            handler.setFormatter(logging.Formatter(_TIMED_TEXT_FORMAT if level <= logging.INFO else _TEXT_FORMAT))
        root.addHandler(handler)
        root.setLevel(level)
    if verbosity < 3:
        logging.getLogger("jax").setLevel(max(logging.WARNING, level))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if _asks_version(arguments):  # before any command module loads: `aihpa --version` stays instant
        print(f"aihpa {__version__}")
        return 0
    # installed as the kubectl plugin too (`kubectl aihpa status`): its usage lines say so
    prog = "kubectl aihpa" if argv is None and Path(sys.argv[0]).name.startswith("kubectl-aihpa") else "aihpa"
    parser = build_parser(_command_of(arguments), prog=prog)
    args = parser.parse_args(arguments)
    verbosity = int(args.verbose) + int(getattr(args, "sub_verbose", 0))
    base = int(getattr(args, "log_level", logging.WARNING))
    configure_logging(level=max(logging.DEBUG, base - 10 * verbosity),
                      json_lines=getattr(args, "log_format", None) == "json", verbosity=verbosity)
    for old, new in deprecated_aliases(args).items():
        logger.warning("%s is deprecated: use %s", old, new)
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


if __name__ == "__main__":
    raise SystemExit(main())
