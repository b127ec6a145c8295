"""Replica math, HPA-compatible behavior, and the policies that return a Decision with its reason.

Pure core: never imports the network, the Kubernetes client or the adapters, and never reads the wall clock (`now` is
always an argument). Configurations and states are frozen dataclasses; functions return new states.
"""

from aihpa.scaling.behavior import (
    DEFAULT_BEHAVIOR,
    DEFAULT_SCALE_DOWN,
    DEFAULT_SCALE_UP,
    Behavior,
    BehaviorState,
    ScaleEvent,
    ScalingPolicy,
    ScalingRules,
    apply_behavior,
    record_scale,
    scale_down_limit,
    scale_up_limit,
    stabilize,
)
from aihpa.scaling.calibration import Calibration, CalibrationState
from aihpa.scaling.decision import Decision
from aihpa.scaling.hpa import DEFAULT_TOLERANCE, ReplicaRecommendation, hpa_replicas
from aihpa.scaling.policy import (
    DEFAULT_SCORINGS,
    HPA_SCORING,
    Observation,
    PredictivePolicy,
    PredictiveState,
    ReactivePolicy,
    ReactiveState,
    Scoring,
)

__all__ = [
    "DEFAULT_BEHAVIOR",
    "DEFAULT_SCALE_DOWN",
    "DEFAULT_SCALE_UP",
    "DEFAULT_SCORINGS",
    "DEFAULT_TOLERANCE",
    "HPA_SCORING",
    "Behavior",
    "BehaviorState",
    "Calibration",
    "CalibrationState",
    "Decision",
    "Observation",
    "PredictivePolicy",
    "PredictiveState",
    "ReactivePolicy",
    "ReactiveState",
    "ReplicaRecommendation",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "Scoring",
    "apply_behavior",
    "hpa_replicas",
    "record_scale",
    "scale_down_limit",
    "scale_up_limit",
    "stabilize",
]
