"""Kubernetes resource quantities (CPU) as floats. Pure."""

from __future__ import annotations

import re

__all__ = ["parse_cpu"]

_QUANTITY = re.compile(r"^\s*([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)\s*([a-zA-Z]*)\s*$")
_SUFFIX = {
    "": 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}


def parse_cpu(text: str | int | float) -> float:
    """A CPU quantity ("250m", "1", "1234567n", 2) in cores. Raises ValueError on anything else."""
    if isinstance(text, int | float):
        return float(text)
    m = _QUANTITY.match(text)
    if not m or m.group(2) not in _SUFFIX:
        raise ValueError(f"not a Kubernetes quantity: {text!r}")
    return float(m.group(1)) * _SUFFIX[m.group(2)]
