"""Demand forecasting: the Bi-LSTM (flax.nnx, optax) and the baselines, behind one `Forecaster` protocol.

Pure core: never imports the network, the Kubernetes client or the adapters, and never reads the wall clock.
"""

from aihpa.forecast.forecaster import Forecaster, LastValueForecaster, SeasonalNaiveForecaster

__all__ = ["Forecaster", "LastValueForecaster", "SeasonalNaiveForecaster"]
