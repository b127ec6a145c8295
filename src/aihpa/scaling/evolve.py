"""`evolve`: a changed copy of one of the scaling rules' frozen states, for the controller's hot path.

`dataclasses.replace` builds the copy through the class's `__init__` (and `__post_init__`), looking the fields up
each time: about 15 µs, and a model step replaces some twenty states per workload. The states here (calibration,
behavior, policy states) are built by this package from values it has already checked, so a copy of the instance's
fields with the changes applied is the same object at a tenth of the cost. Settings (`Calibration`, policies) keep
`replace`, so that what a user builds is checked; `evolve` refuses a name that is not a field.
"""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["evolve"]

T = TypeVar("T")


def evolve(obj: T, **changes: Any) -> T:
    """A copy of the frozen dataclass instance `obj` with `changes`; no `__init__` runs (see the module docstring)."""
    fields = type(obj).__dataclass_fields__  # type: ignore[attr-defined]
    if not fields.keys() >= changes.keys():
        raise TypeError(f"{type(obj).__name__} has no field {sorted(changes.keys() - fields.keys())}")
    new = object.__new__(type(obj))
    state = new.__dict__
    state.update(obj.__dict__)
    state.update(changes)
    return new
