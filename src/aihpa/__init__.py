"""aihpa: a predictive Horizontal Pod Autoscaler for Kubernetes.

A JAX/Flax Bi-LSTM forecasts each labeled Deployment's CPU demand over the scaling lead time, and aihpa scales the
Deployment before the load arrives. The package is also an async library: the building blocks are importable.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("aihpa")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
