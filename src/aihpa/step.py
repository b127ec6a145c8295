"""The model step: the spacing, in seconds, of the samples a forecaster reads and predicts.

A leaf module (it imports nothing of aihpa), so the core, the adapters and the simulator can all agree on one number.
"""

from __future__ import annotations

__all__ = ["DEFAULT_STEP_S"]

#: The model step the shipped model was trained at, in seconds.
DEFAULT_STEP_S: float = 60.0
