"""The policy defaults that the annotations, the webhook and the policy factory share (a leaf: imports nothing).

Predictive mode sizes capacity to a saturation risk: the share of minutes a workload may be short of CPU. The HPA's
target utilization keeps its meaning where the HPA's reasoning runs alone (reactive mode, and predictive mode's
fallback while no forecast is trusted).
"""

from typing import Final

#: The share of minutes a workload may be short of CPU when it sets no `aihpa/saturation-risk`.
DEFAULT_SATURATION_RISK: Final = 0.01
#: The HPA's target utilization of the CPU request (`aihpa/target-utilization`): reactive mode and the fallback.
DEFAULT_TARGET_UTILIZATION: Final = 0.7
#: Scale-down stabilization in predictive mode when none is set: none. The count is sized from a calibrated forecast
#: every step; a window that holds every peak for five minutes only adds cost (backtest: Wikipedia 1.334 at 300 s
#: against 1.135 without). Churn is held by the hysteresis (the HPA's tolerance band) instead.
PREDICTIVE_SCALE_DOWN_STABILIZATION_S: Final = 0
#: ... and in reactive mode: the HPA's default (kube-controller-manager's --horizontal-pod-autoscaler-downscale-
#: stabilization).
REACTIVE_SCALE_DOWN_STABILIZATION_S: Final = 300
