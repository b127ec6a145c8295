"""The values table of charts/aihpa/README.md, generated from the comments in values.yaml.

A value is documented by the `# --` comment right above its key (continued by further `#` lines). A commented key whose
value is a block (resources, securityContext) is documented as a whole. Regenerate the README's table with
`python -m tests.chart.values_table`; `test_values_table.py` fails while it is stale.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

CHART = Path(__file__).resolve().parents[2] / "charts" / "aihpa"
BEGIN, END = "<!-- values table: begin -->", "<!-- values table: end -->"

_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):(?P<rest>.*)$")


@dataclass(frozen=True)
class Value:
    path: str
    default: Any
    description: str


def _lookup(values: Any, path: list[str]) -> Any:
    for key in path:
        values = values[key]
    return values


def documented_values(text: str) -> list[Value]:
    """Every value of values.yaml (a leaf, or a commented block) with its description; '' when it has none."""
    values = yaml.safe_load(text)
    lines = text.splitlines()
    out: list[Value] = []
    stack: list[tuple[int, str, bool]] = []  # (indent, key, documented as a whole)
    comment: list[str] = []
    for number, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith("#"):
            body = stripped.lstrip("#").strip()
            if body.startswith("--"):
                comment = [body[2:].strip()]
            elif comment:
                comment.append(body)
            continue
        match = _KEY.match(line)
        if not match:
            comment = [] if not stripped else comment
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        if any(whole for _, _, whole in stack):
            comment = []
            continue  # inside a block documented as a whole
        path = [k for _, k, _ in stack] + [match["key"]]
        rest = match["rest"].split(" #")[0].strip()
        following = next((ln for ln in lines[number + 1:] if ln.strip() and not ln.strip().startswith("#")), "")
        is_block = not rest and len(following) - len(following.lstrip()) > indent
        description = " ".join(comment)
        comment = []
        if is_block and not description:
            stack.append((indent, match["key"], False))
            continue
        stack.append((indent, match["key"], is_block))
        out.append(Value(".".join(path), _lookup(values, path), description))
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;")


def values_table(text: str) -> str:
    rows = ["| value | default | what |", "|---|---|---|"]
    for v in documented_values(text):
        default = json.dumps(v.default, separators=(",", ":"))
        rows.append(f"| `{v.path}` | `{_cell(default)}` | {_cell(v.description)} |")
    return "\n".join(rows) + "\n"


def readme_with_table(readme: str, table: str) -> str:
    head, _, tail = readme.partition(BEGIN)
    _, _, tail = tail.partition(END)
    return f"{head}{BEGIN}\n{table}{END}{tail}"


def main() -> None:
    readme = CHART / "README.md"
    table = values_table((CHART / "values.yaml").read_text())
    readme.write_text(readme_with_table(readme.read_text(), table))


if __name__ == "__main__":
    main()
