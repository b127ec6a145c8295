"""The calibration prior a model ships with: per scoring, the scores it made on the workloads it was trained on.

A new workload has no scores of its own, so its calibrated headroom would have to wait for about a hundred outcomes
(a finite conformal quantile at a 1% risk needs ceil(0.99 / 0.01) = 99 of them). The prior stands in for the missing
ones (`aihpa.scaling.calibration.Calibration.prior`): evenly spaced picks from the scores the same scoring recorded when
the default policy was replayed on the model's training data (`aihpa.backtest.prior` learns it), fewer with each of
the workload's own. It is stored in the checkpoint's metadata under `calibration_prior`:

    {"points": 200, "scorings": {"hpa": [ascending scores...], "forecast": [...], "last-usage": [...]},
     "traces": [names], "method": "..."}

Reading never fails: a prior that is missing or malformed is logged and ignored (the forecaster's own top quantile,
bounded by the warm-up margin, stands in, as before priors existed). Pure: no I/O.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

__all__ = ["BAND_PRIOR", "PRIOR_KEY", "prior_from_metadata", "prior_of"]

logger = logging.getLogger(__name__)

#: The checkpoint metadata key of the prior.
PRIOR_KEY = "calibration_prior"
#: The prior's scoring of the forecaster's own quantile band (`PredictivePolicy.band_prior`).
BAND_PRIOR = "band"


def prior_from_metadata(metadata: Mapping[str, Any] | None) -> dict[str, tuple[float, ...]]:
    """Per scoring label, its prior scores in ascending order; {} when the metadata holds none or a bad one."""
    if not metadata or PRIOR_KEY not in metadata:
        return {}
    raw = metadata[PRIOR_KEY]
    scorings = raw.get("scorings") if isinstance(raw, Mapping) else None
    if not isinstance(scorings, Mapping):
        logger.warning("the model's calibration prior has no scorings; it is ignored")
        return {}
    out: dict[str, tuple[float, ...]] = {}
    for name, values in scorings.items():
        if not isinstance(name, str) or not isinstance(values, list) or not values:
            logger.warning("the model's calibration prior for %r is not a list of scores; it is ignored", name)
            continue
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            logger.warning("the model's calibration prior for %r holds a value that is not a finite number; ignored",
                           name)
            continue
        out[name] = tuple(sorted(float(v) for v in values))
    return out


#: Parsed priors by the id of the metadata they came from (with that object, so a reused id is not mistaken for it):
#: the controller asks for every workload at every step, the metadata of a loaded model never changes.
_PARSED: dict[int, tuple[object, dict[str, tuple[float, ...]]]] = {}


def prior_of(forecaster: object) -> dict[str, tuple[float, ...]]:
    """The prior in a forecaster's checkpoint metadata ({} for forecasters without metadata, such as the baselines)."""
    metadata = getattr(forecaster, "metadata", None)
    if not isinstance(metadata, Mapping):
        return {}
    cached = _PARSED.get(id(metadata))
    if cached is not None and cached[0] is metadata:
        return cached[1]
    parsed = prior_from_metadata(metadata)
    if len(_PARSED) >= 8:
        _PARSED.clear()
    _PARSED[id(metadata)] = (metadata, parsed)
    return parsed
