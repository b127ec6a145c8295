"""How `aihpa status` prints its rows: plain aligned text (off a terminal, as `kubectl get` does), a rich table on a
terminal (with the sparkline of what a watch has seen, where the terminal takes UTF-8), or JSON.

No I/O of its own: each function returns text or a rich renderable for the caller to print. rich is imported inside
the functions that need it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from aihpa.status.rows import History, Row, Spark, sparkline

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

__all__ = ["SPARK_COLUMN", "columns", "json_text", "plain_table", "rich_table", "spark_text"]

#: The sparkline's column (a rich table on a UTF-8 terminal, once a watch has two samples of a workload).
SPARK_COLUMN = "LAST HOUR"

_TABLE = ("NAMESPACE", "NAME", "MODE", "REPLICAS", "USAGE", "FORECAST", "SLO", "AGE", "REASON")
_WIDE = ("NAMESPACE", "NAME", "MODE", "REPLICAS", "READY", "REACTIVE", "USAGE", "NEXT", "FORECAST", "HORIZON", "SLO",
         "STEPS", "AGE", "CANDIDATE", "MODEL", "REASON")
# kubectl's tabwriter puts three spaces between columns
_GAP = "   "
_ZONE_STYLES = {"below": "green", "inside": "yellow", "above": "bold red", "none": ""}


def columns(*, wide: bool, show_namespace: bool = True) -> list[str]:
    return [c for c in (_WIDE if wide else _TABLE) if show_namespace or c != "NAMESPACE"]


def plain_table(rows: Sequence[Row], *, wide: bool = False, show_namespace: bool = True) -> str:
    """The rows as aligned text under upper-case headers, one line each, as `kubectl get` prints them."""
    heads = columns(wide=wide, show_namespace=show_namespace)
    lines = [heads] + [[row.cells(wide=wide)[c] for c in heads] for row in rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(heads))]
    return "\n".join(
        _GAP.join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def json_text(rows: Sequence[Row], *, compact: bool = False) -> str:
    """A JSON array of every field of every row; `compact` puts it on one line (one per refresh of a watch)."""
    data = [row.to_json() for row in rows]
    return json.dumps(data, separators=(",", ":")) if compact else json.dumps(data, indent=2)


def spark_text(sparks: Sequence[Spark]) -> Text:
    """A sparkline as rich Text, each cell coloured by where the usage stood against the forecast band before it."""
    from rich.text import Text

    text = Text()
    for spark in sparks:
        text.append(spark.char, style=_ZONE_STYLES[spark.zone])
    return text


def rich_table(
    rows: Sequence[Row], *, wide: bool = False, show_namespace: bool = True, history: History | None = None,
    now: float = 0.0, sparks: bool = False,
) -> Table:
    """The rows as a borderless rich table; the realized SLO share in red where it is above the risk, pending rows
    in yellow. With `sparks` and a `history` holding two samples of some workload, a LAST HOUR column of sparklines."""
    from rich.table import Table
    from rich.text import Text

    heads = columns(wide=wide, show_namespace=show_namespace)
    with_sparks = sparks and history is not None and any(len(history.of(row.key)) >= 2 for row in rows)
    table = Table(box=None, pad_edge=False, header_style="bold", padding=(0, 3, 0, 0))
    for head in heads:
        if head == "REASON" and with_sparks:
            table.add_column(SPARK_COLUMN, no_wrap=True)
        table.add_column(head, no_wrap=head != "REASON", overflow="fold")
    for row in rows:
        cells = row.cells(wide=wide)
        out: list[Text] = []
        for head in heads:
            style = ""
            if head == "SLO" and row.breached:
                style = "red"
            elif head == "REASON":
                style = "yellow" if row.pending else "dim"
            if head == "REASON" and with_sparks:
                assert history is not None
                out.append(spark_text(sparkline(history.of(row.key), now=now)))
            out.append(Text(cells[head], style=style))
        table.add_row(*out)
    return table
