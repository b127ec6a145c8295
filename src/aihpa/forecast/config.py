"""Typed configuration of the forecaster: the model's shape and how it is trained.

Both are frozen dataclasses that round-trip through plain JSON (checkpoint metadata), so a checkpoint says exactly
which model it holds and how it was made.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
from dataclasses import dataclass
from typing import Any, Self

#: Context inputs a summary adds (`ModelConfig.summary_window`): mean, peak and spread over two spans, and a flag.
SUMMARY_FEATURES = 7


@dataclass(frozen=True)
class ModelConfig:
    """Shape of the Bi-LSTM and of its inputs."""

    # Recent steps the LSTM reads (the window), oldest first.
    window: int = 32
    # The fewest real points a history may have (0: the whole window). Shorter histories are left-padded with their
    # first point, as in training, where a share of windows is cut this short (`TrainConfig.short_history`), so a new
    # workload gets forecasts minutes after it starts instead of a window later. A checkpoint whose config predates
    # this field was trained on whole windows only: it loads with 0.
    min_history: int = 8
    # Hidden units per direction in each bidirectional layer.
    hidden: int = 16
    # Stacked bidirectional LSTM layers.
    layers: int = 2
    # Units of the dense layer between the recurrent encoder and the quantile head.
    head_hidden: int = 64
    # Steps forecast ahead.
    horizon: int = 15
    # Quantiles the head outputs, ascending; the head keeps them ordered (no crossing).
    quantiles: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95, 0.99)
    # Steps at the end of the window whose mean is the series' level: inputs and targets are divided by it, so one
    # global model serves workloads of any size.
    level_window: int = 8
    # Points of last day's series read around "now minus one day" before the horizon starts: the seasonal context
    # spans [t - P - season_lead + 1, t - P + horizon] for a day of P steps.
    season_lead: int = 8
    # Longest day (in steps) the seasonal context supports: a day at 60 s steps. Longer days disable it.
    max_season: int = 1440
    # Ratio inputs are clipped to [0, input_clip] so one outlier cannot saturate the cells.
    input_clip: float = 8.0
    # Recent points searched for a dominant short period (bursts every N steps that are not daily); 0 (the
    # default, and the shipped model) disables it. The values one such period ago around the horizon become a
    # second seasonal context.
    period_window: int = 0
    # Shortest and longest period searched, in steps (the shortest must be at least the horizon).
    period_min: int = 16
    period_max: int = 240
    # Autocorrelation a period needs to count as one.
    period_min_acf: float = 0.3
    # Recent points summarized for the head (0, the default and the shipped model: none): the mean, peak and spread
    # of the last summary_window points and of their last quarter, as ratios to the level, with a flag for a full
    # span. Bursts that recur over hours reach the forecast without a longer (costlier) LSTM window.
    summary_window: int = 0

    @property
    def n_quantiles(self) -> int:
        return len(self.quantiles)

    @property
    def season_len(self) -> int:
        return self.season_lead + self.horizon

    @property
    def context_features(self) -> int:
        """Width of the context inputs: last day's context, then the short-period context, each with a flag, then the
        summary of recent points."""
        per = self.season_len + 1
        return per * (2 if self.period_window > 0 else 1) + (SUMMARY_FEATURES if self.summary_window > 0 else 0)

    @property
    def shortest_history(self) -> int:
        """The fewest real points a history may have: `min_history`, or the whole window when that is 0."""
        return self.min_history or self.window

    @property
    def context(self) -> int:
        """Most recent points that inference reads: the window, a day plus the seasonal lead, or the period search."""
        return max(self.window, self.max_season + self.season_lead, self.period_window, self.summary_window)

    def validate(self) -> None:
        """Raise `ValueError` naming the first field that no model can be built or run with.

        Checked field by field, types included, because a config also arrives from a checkpoint's JSON: a NaN clip or a
        fractional size would otherwise load and forecast NaN.
        """
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise ValueError(f"model config {name} must be an integer, got {value!r}")
        for name in ("hidden", "layers", "head_hidden", "horizon", "level_window", "max_season"):
            if getattr(self, name) < 1:
                raise ValueError(f"model config {name} must be positive, got {getattr(self, name)}")
        for name in ("season_lead", "period_window", "summary_window"):
            if getattr(self, name) < 0:
                raise ValueError(f"model config {name} must be >= 0, got {getattr(self, name)}")
        if self.min_history < 0 or self.min_history > self.window:
            raise ValueError(f"model config min_history must be in [0, window {self.window}], got {self.min_history}")
        if self.window < self.level_window:
            raise ValueError(f"model config window {self.window} must be >= level_window {self.level_window}")
        if not _finite(self.input_clip) or self.input_clip <= 0:
            raise ValueError(f"model config input_clip must be a finite number > 0, got {self.input_clip!r}")
        if not _finite(self.period_min_acf) or not -1.0 <= self.period_min_acf <= 1.0:
            raise ValueError(
                f"model config period_min_acf must be a finite number in [-1, 1], got {self.period_min_acf!r}"
            )
        if self.summary_window and self.summary_window < 4 * self.level_window:
            raise ValueError(
                f"model config summary_window must be 0 or at least 4 x level_window ({4 * self.level_window}), got "
                f"{self.summary_window}"
            )
        if self.period_window and not (self.horizon <= self.period_min <= self.period_max < self.period_window):
            raise ValueError(
                "model config needs horizon <= period_min <= period_max < period_window (or period_window 0), got "
                f"{self.horizon}, {self.period_min}, {self.period_max}, {self.period_window}"
            )
        qs = self.quantiles
        if (
            not isinstance(qs, tuple)
            or not qs
            or any(not _finite(q) or not 0.0 < q < 1.0 for q in qs)
            or any(a >= b for a, b in itertools.pairwise(qs))
        ):
            raise ValueError(f"model config quantiles must be strictly ascending in (0, 1), got {qs!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown model config field(s): {', '.join(sorted(unknown))}")
        kwargs = dict(data)
        kwargs.setdefault("min_history", 0)  # trained before short histories were: whole windows only
        if "quantiles" in kwargs:
            qs = kwargs["quantiles"]
            if not isinstance(qs, list | tuple):
                raise ValueError(f"model config quantiles must be a list of numbers, got {qs!r}")
            # kept as they are (no float() of a string or a bool): validate() refuses what is not a number
            kwargs["quantiles"] = tuple(qs)
        cfg = cls(**kwargs)
        cfg.validate()
        return cfg


_INT_FIELDS = ("window", "min_history", "hidden", "layers", "head_hidden", "horizon", "level_window", "season_lead",
               "max_season", "period_window", "period_min", "period_max", "summary_window")


def _finite(value: object) -> bool:
    """A real number (not a bool) that is neither NaN nor infinite."""
    if isinstance(value, bool):
        return False
    return isinstance(value, numbers.Real) and math.isfinite(value)


@dataclass(frozen=True)
class TrainConfig:
    """How the model is trained."""

    # Seed for parameter init, window sampling and augmentation: the same seed and data give the same model.
    seed: int = 0
    # Windows per optimizer step.
    batch_size: int = 256
    # Upper bound on optimizer steps.
    max_steps: int = 3000
    # Steps between validation passes (early stopping checks).
    eval_every: int = 100
    # Validation passes without improvement before stopping.
    patience: int = 6
    # Peak learning rate of the warmup-cosine schedule (AdamW).
    learning_rate: float = 3e-3
    # Warmup steps of the schedule.
    warmup_steps: int = 100
    # AdamW weight decay.
    weight_decay: float = 1e-4
    # Global gradient-norm clip.
    grad_clip: float = 1.0
    # Share of each series' training part, at its end in time order, held out for validation.
    val_fraction: float = 0.15
    # Stride between consecutive training windows of one series (1 = every position).
    stride: int = 1
    # Probability of multiplying a window by a random smooth ramp (level shift) during training, so the model sees
    # regime changes that a short history rarely contains.
    augment_ramp: float = 0.3
    # Probability of hiding the calendar features of a training window, so the model never leans on calendar
    # phases that a few days of history cannot teach (and serves workloads without timestamps).
    calendar_dropout: float = 0.75
    # Probability of moving a training window's timestamps by 1-6 whole days (weekday augmentation).
    weekday_shift: float = 0.5
    # Probability of hiding the seasonal context of a training window, so the model serves histories shorter than
    # a day.
    season_dropout: float = 0.2
    # Probability of cutting a training window's history to a random length in [min_history, window) (left-padded
    # with its first point, as inference pads a short history), so the model serves a workload's first minutes.
    short_history: float = 0.2
    # Horizon weighting: weight of step h is (1 + h)^-horizon_decay (0 = equal), so near steps can matter more.
    horizon_decay: float = 0.0
    # Show a progress bar.
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
