"""The command line's shared vocabulary: the help formatter that shows every default, renamed flags, `--trace`.

Every command module imports this at parse time, so it stays a leaf of argparse and the standard library: it must
never import anything heavy (numpy, JAX, aiohttp, the Kubernetes client) nor anything else of aihpa.

A renamed flag keeps its former name as a hidden alias: it still parses, help, usage and errors show only the new
name, and the command logs once that the old one is deprecated (`deprecated_aliases`).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "ALIASES_USED",
    "HelpFormatter",
    "add_trace_flag",
    "deprecated_aliases",
    "hide_aliases",
    "renamed_flag",
    "shown_default",
]

#: The namespace attribute where the hidden aliases a command line used are recorded (old name -> new name).
ALIASES_USED = "aihpa_aliases_used"

# actions whose default says nothing worth showing (a flag's False, a counter's 0)
_NO_DEFAULT_ACTIONS = (
    argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction, argparse._CountAction,
    argparse._HelpAction, argparse._VersionAction,
)


def shown_default(default: Any) -> str | None:
    """How --help writes a default, or None when there is none to show (None, empty, a suppressed default)."""
    if default is None or default is argparse.SUPPRESS or default is False:
        return None
    if isinstance(default, list | tuple | set | frozenset):
        return ",".join(str(d) for d in default) if default else None
    if isinstance(default, float):
        return f"{default:g}"
    return str(default)


class HelpFormatter(argparse.HelpFormatter):
    """Appends "(default X)" to every option whose help does not already state its default, and writes an option
    that one of a group requires (`--trace` beside its former positional form) without the brackets of an optional."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help
        if text is None or text == argparse.SUPPRESS or isinstance(action, _NO_DEFAULT_ACTIONS):
            return text
        shown = shown_default(action.default)
        if shown is None or "(default" in text or "%(default)" in text or f"default {shown}" in text:
            return text
        return f"{text} (default {shown.replace('%', '%%')})"

    def _format_actions_usage(self, actions: Iterable[argparse.Action], groups: Iterable[Any]) -> str:
        actions = list(actions)
        text = super()._format_actions_usage(actions, groups)
        for action in actions:
            if getattr(action, "aihpa_required", False) and action.option_strings:
                args = self._format_args(action, self._get_default_metavar_for_optional(action))
                part = f"{action.option_strings[0]} {args}"
                text = text.replace(f"[{part}]", part)
        return text


class _AliasedStore(argparse._StoreAction):
    """A `store` that records which hidden alias, if any, the command line used."""

    def __init__(self, option_strings: Sequence[str], dest: str, *, renamed: dict[str, str] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.renamed = dict(renamed or {})

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        setattr(namespace, self.dest, values)
        if option_string in self.renamed:
            _record(namespace, option_string, self.renamed[option_string])


def _record(namespace: argparse.Namespace, old: str, new: str) -> None:
    used = dict(getattr(namespace, ALIASES_USED, None) or {})
    used[old] = new
    setattr(namespace, ALIASES_USED, used)


def hide_aliases(action: argparse.Action, *old: str) -> argparse.Action:
    """Keep `old` names of `action` parsing, but out of help, usage and error messages (they still resolve through
    the parser's table of option strings). With the `_AliasedStore` action, their use is recorded."""
    action.option_strings = [s for s in action.option_strings if s not in old]
    return action


def renamed_flag(parser: Any, new: str, *old: str, **kwargs: Any) -> argparse.Action:
    """Add the flag `new` (a store flag; add_argument's other keywords as usual), still accepting its former names
    `old` as deprecated, hidden aliases."""
    action = parser.add_argument(new, *old, action=_AliasedStore, renamed=dict.fromkeys(old, new), **kwargs)
    return hide_aliases(action, *old)


class _PositionalTrace(argparse.Action):
    """The former positional TRACE: sets `trace` when given (never its absence), and records its use."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        if values is not None:
            namespace.trace = values
            _record(namespace, "the positional TRACE", "--trace TRACE")


def add_trace_flag(parser: argparse.ArgumentParser, *, help: str, positional_alias: bool = False,
                   metavar: str = "CSV") -> argparse.Action:
    """`--trace FILE`, the trace in every command; required. `positional_alias` keeps a command's former positional
    form working (hidden, deprecated): one of the two is required, not both."""
    if not positional_alias:
        return parser.add_argument("--trace", required=True, metavar=metavar, help=help)
    group = parser.add_mutually_exclusive_group(required=True)
    action = group.add_argument("--trace", metavar=metavar, default=None, help=help)
    action.aihpa_required = True  # type: ignore[attr-defined]  # usage shows it without brackets
    group.add_argument("legacy_trace", nargs="?", metavar="TRACE", action=_PositionalTrace, help=argparse.SUPPRESS)
    return action


def deprecated_aliases(args: argparse.Namespace) -> dict[str, str]:
    """The former names this command line used, each with its new name."""
    return dict(getattr(args, ALIASES_USED, None) or {})
