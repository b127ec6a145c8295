"""Demand forecasting: the Bi-LSTM (flax.nnx, optax) and the baselines, behind one `Forecaster` protocol.

Pure core: never imports the network, the Kubernetes client or the adapters, and never reads the wall clock.

Names load on first use (`__getattr__`): serving a checkpoint (`load_default_forecaster`, `BiLSTMForecaster`)
needs NumPy only, and only training and the flax module (`BiLSTM`) import JAX.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aihpa.forecast.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from aihpa.forecast.config import ModelConfig, TrainConfig
    from aihpa.forecast.forecaster import (
        BiLSTMForecaster,
        Forecaster,
        LastValueForecaster,
        SeasonalNaiveForecaster,
        load_default_forecaster,
    )
    from aihpa.forecast.model import BiLSTM

#: Where each public name lives; resolved on first access.
_HOMES: dict[str, str] = {
    "BiLSTM": "aihpa.forecast.model",
    "BiLSTMForecaster": "aihpa.forecast.forecaster",
    "CheckpointError": "aihpa.forecast.checkpoint",
    "Forecaster": "aihpa.forecast.forecaster",
    "LastValueForecaster": "aihpa.forecast.forecaster",
    "ModelConfig": "aihpa.forecast.config",
    "SeasonalNaiveForecaster": "aihpa.forecast.forecaster",
    "TrainConfig": "aihpa.forecast.config",
    "load_checkpoint": "aihpa.forecast.checkpoint",
    "load_default_forecaster": "aihpa.forecast.forecaster",
    "save_checkpoint": "aihpa.forecast.checkpoint",
}

__all__ = [
    "BiLSTM",
    "BiLSTMForecaster",
    "CheckpointError",
    "Forecaster",
    "LastValueForecaster",
    "ModelConfig",
    "SeasonalNaiveForecaster",
    "TrainConfig",
    "load_checkpoint",
    "load_default_forecaster",
    "save_checkpoint",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'aihpa.forecast' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
