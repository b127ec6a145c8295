"""Replica math, HPA-compatible behavior, the policies, and the rules between forecasts, each returning a Decision
with its reason and its kind.

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
from aihpa.scaling.decision import Decision, DecisionKind
from aihpa.scaling.factory import PodCpu, predictive_policy, reactive_policy
from aihpa.scaling.hpa import DEFAULT_TOLERANCE, ReplicaRecommendation, hpa_replicas
from aihpa.scaling.policy import (
    DEFAULT_SCORINGS,
    HPA_SCORING,
    Observation,
    PendingOutcome,
    PredictivePolicy,
    PredictiveState,
    ReactivePolicy,
    ReactiveState,
    ScoredPeak,
    Scoring,
)
from aihpa.scaling.safety import hold_beside_hpa, hold_without_metric, safety_net

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
    "DecisionKind",
    "Observation",
    "PendingOutcome",
    "PodCpu",
    "PredictivePolicy",
    "PredictiveState",
    "ReactivePolicy",
    "ReactiveState",
    "ReplicaRecommendation",
    "ScaleEvent",
    "ScalingPolicy",
    "ScalingRules",
    "ScoredPeak",
    "Scoring",
    "apply_behavior",
    "hold_beside_hpa",
    "hold_without_metric",
    "hpa_replicas",
    "predictive_policy",
    "reactive_policy",
    "record_scale",
    "safety_net",
    "scale_down_limit",
    "scale_up_limit",
    "stabilize",
]
