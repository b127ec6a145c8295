"""Kubernetes resource quantities ("250m", "1.5", "2Gi", "1e3") as floats.

A leaf module (it imports nothing of aihpa), so the controller, the metrics adapters and the simulator read quantities
with one parser. Pure: no I/O.
"""

from __future__ import annotations

import math
import re

__all__ = ["parse_quantity"]

_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*$")
_SUFFIX = {
    "": 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}


def parse_quantity(text: object) -> float:
    """A quantity ("250m", "1", "1234567n", "2Gi") or a JSON number as a float: a CPU quantity in cores.

    Raises ValueError on anything else (a boolean, a unit Kubernetes does not define, a value that is not finite).
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        value = float(text)
    else:
        m = _QUANTITY.match(text) if isinstance(text, str) else None
        if not m or m.group(2) not in _SUFFIX:
            raise ValueError(f"not a Kubernetes quantity: {text!r}")
        value = float(m.group(1)) * _SUFFIX[m.group(2)]
    if not math.isfinite(value):
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return value
