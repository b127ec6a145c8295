"""CPU quantities in cores: the parser of `aihpa.quantity`, under the name the metrics layer has always exported."""

from __future__ import annotations

from aihpa.quantity import parse_quantity

__all__ = ["parse_cpu"]

#: A CPU quantity ("250m", "1", "1234567n", 2) in cores; ValueError on anything else.
parse_cpu = parse_quantity
