"""Settings are checked when they are built, and a model trained at another step is refused when the controller is:
a bad value fails once, at start-up, with a message naming it, not as a logged error on every cycle."""

from __future__ import annotations

import math
from typing import Any, cast

import pytest

from aihpa.clock import SystemClock
from aihpa.controller import Controller, ControllerSettings
from aihpa.errors import UserError
from aihpa.k8s import KubeClient
from aihpa.metrics.source import MetricsSource
from tests.controller.conftest import SETTINGS, ScriptedForecaster

# the field given a bad value -> (the value, what the message must name)
BAD = {
    "risk_zero": ("risk", 0.0, "risk"),
    "risk_one": ("risk", 1.0, "risk"),
    "risk_nan": ("risk", math.nan, "risk"),
    "step_zero": ("step_s", 0.0, "step_s"),
    "step_negative": ("step_s", -60.0, "step_s"),
    "step_infinite": ("step_s", math.inf, "step_s"),
    "sync_period_zero": ("sync_period_s", 0.0, "sync_period_s"),
    "retrain_nan": ("retrain_every_s", math.nan, "retrain_every_s"),
    "status_negative": ("status_every_s", -1.0, "status_every_s"),
    "publish_nan": ("publish_every_s", math.nan, "publish_every_s"),
    "history_empty": ("history_capacity", 0, "history_capacity"),
    "no_shards": ("profile_shards", 0, "profile_shards"),
    "no_concurrency": ("api_concurrency", 0, "api_concurrency"),
    "no_namespace": ("namespace", "", "namespace"),
}


@pytest.mark.parametrize(("name", "value", "says"), BAD.values(), ids=list(BAD))
def test_a_bad_setting_fails_when_the_settings_are_built(name: str, value: object, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        ControllerSettings(identity="test", **{name: value})  # type: ignore[arg-type]


def test_the_defaults_and_never_are_valid() -> None:
    settings = ControllerSettings(identity="test", publish_every_s=math.inf, status_every_s=0.0)
    assert settings.step_s == 60.0 and settings.saturation_risk == 0.01


class _Unused:
    """Stands in for the API client and the metrics source: building a controller does no I/O."""

    clock = SystemClock()

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(f"building the controller touched {name}")


class _SteppedForecaster(ScriptedForecaster):
    def __init__(self, step_s: float | None) -> None:
        super().__init__()
        self.step_s = step_s


def _controller(forecaster: ScriptedForecaster, **settings: Any) -> Controller:
    return Controller(client=cast(KubeClient, _Unused()), metrics=cast(MetricsSource, _Unused()),
                      forecaster=forecaster, settings=ControllerSettings(**{**SETTINGS.__dict__, **settings}),
                      clock=SystemClock())


def test_a_model_trained_at_another_step_is_refused_with_both_steps_named() -> None:
    with pytest.raises(UserError) as refused:
        _controller(_SteppedForecaster(300.0), step_s=60.0)
    message = str(refused.value)
    assert "300 s" in message and "60 s" in message and "step_s" in message


@pytest.mark.parametrize("model_step", [60.0, None], ids=["same_step", "step_not_recorded"])
def test_a_model_at_the_same_step_or_one_that_did_not_record_it_is_taken(model_step: float | None) -> None:
    controller = _controller(_SteppedForecaster(model_step), step_s=60.0)
    assert controller.forecaster.step_s == model_step  # type: ignore[attr-defined]
