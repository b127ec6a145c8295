"""Demand forecasting: the Bi-LSTM (flax.nnx, optax) and the baselines, behind one `Forecaster` protocol.

Pure core: never imports the network, the Kubernetes client or the adapters, and never reads the wall clock.
"""

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
