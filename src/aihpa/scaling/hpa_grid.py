"""The reactive HPA at many fixed targets at once, run in shadow beside the policy: the HPA candidate.

A stock HPA is one target utilization, fixed by hand. Its cost at an SLO is a property of the workload: some target
holds the saturation risk at the lowest cost, and nobody knows which before the workload has run. `HpaGrid` runs the
HPA's own rules at every target of a grid (the replica formula with its tolerance, the scale-down stabilization and
the scale-up rate limit of the Kubernetes defaults, min/max), one shadow count per target, on the usage the workload
shows. After each step it counts, per target, whether that target's pods would have held the demand, over a long
memory. The candidate it offers the policy is the count of the *highest* target whose pods held the risk so far
("follow the leader": the cheapest fixed HPA that would have met the SLO on this workload's own history).

Over a long history this is the HPA at the best fixed target in hindsight, which is what a user tuning the HPA by hand
can at best reach; before that, the policy has too few outcomes to trust any target (`leader` is None) and uses its
warm-up rules. The shadows see the usage the workload's real pods served: a shadow with fewer ready pods sees it
clipped to its own capacity, as its own pods would have shown it; a shadow with more sees what was served, which is
less than the demand only on a saturated step.

Vectorized over the grid (numpy): one step is a dozen array operations, whatever the number of targets.

Pure: no I/O, no clock.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from aihpa.scaling.hpa import DEFAULT_TOLERANCE

__all__ = ["DEFAULT_TARGETS", "HpaGrid", "HpaGridState"]

_SLACK = 1e-9  # as `aihpa.scaling.hpa`: float sums of millicores are off by far less
_CHUNK = 256  # workloads stepped in one pass of `HpaGrid.step_many`

#: Targets, as shares of what a pod may use: 45 points from 10% to 100%, each about 5% above the one before.
DEFAULT_TARGETS: tuple[float, ...] = tuple(round(0.1 * 10.0 ** (i / 44), 4) for i in range(45))


def _empty(shape: tuple[int, ...]) -> npt.NDArray[np.int32]:
    return np.zeros(shape, dtype=np.int32)


@dataclass(frozen=True)
class HpaGridState:
    """The shadow counts, their recent recommendations, and how often each target's pods fell short."""

    # [lead_steps, targets]: each shadow's last decisions, oldest first (no rows before the first step)
    decisions: npt.NDArray[np.int32] = field(default_factory=lambda: _empty((0, 0)))
    # [stabilization - 1, targets]: each shadow's previous recommendations, oldest first
    recommendations: npt.NDArray[np.int32] = field(default_factory=lambda: _empty((0, 0)))
    # [targets]: exponentially weighted count of the scored steps each target's pods did not hold
    shortfalls: npt.NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))
    # exponentially weighted count of the scored steps
    outcomes: float = 0.0


@dataclass(frozen=True)
class HpaGrid:
    """The HPA at each of `targets` (shares of `per_pod`, the cores a pod may use), in shadow.

    `stabilization` is the scale-down stabilization window in steps, the current one included (300 s at 60 s steps:
    5); scale-up is limited to the larger of `up_factor` times and `up_pods` more than the current count per step (the
    Kubernetes default, +100% or +4 pods per 15 s, at steps of 15 s or longer). `memory` is the time constant, in
    steps, of the shortfall counts (one week at 60 s steps). `lead_steps`: the pods that serve a step are the fewest
    of the last `lead_steps` decisions (pods start in one step; scale-down is immediate)."""

    per_pod: float = 1.0
    targets: tuple[float, ...] = DEFAULT_TARGETS
    tolerance: float = DEFAULT_TOLERANCE
    stabilization: int = 5
    up_factor: float = 2.0
    up_pods: int = 4
    min_replicas: int = 1
    max_replicas: int = 100
    memory: float = 10080.0
    lead_steps: int = 2

    def __post_init__(self) -> None:
        if not self.targets or any(not (0.0 < t <= 1.0) for t in self.targets) or list(self.targets) != sorted(
            set(self.targets)
        ):
            raise ValueError("grid targets must be distinct shares in (0, 1], ascending")
        if not (math.isfinite(self.per_pod) and self.per_pod > 0):
            raise ValueError("per_pod must be a positive number of cores")
        if self.stabilization < 1 or self.lead_steps < 1 or self.memory < 1:
            raise ValueError("stabilization, lead_steps and memory must be at least 1")
        if not 0 <= self.min_replicas <= self.max_replicas:
            raise ValueError("need 0 <= min_replicas <= max_replicas")

    @property
    def _targets(self) -> npt.NDArray[np.float64]:
        return np.asarray(self.targets, dtype=np.float64)

    def step(
        self, state: HpaGridState, *, usage: float, used: float, current: int, capacity_per_pod: float
    ) -> HpaGridState:
        """One control step: score the step just observed against each shadow's pods, then each shadow decides.

        `usage` is the CPU the real pods served on the observed step (cores), `used` the demand it is scored against
        (above `usage` after a saturated step), `current` the real count (the shadows start from it), and
        `capacity_per_pod` what one pod can use (its limit; infinite without one)."""
        return self.step_many([state], usage=[usage], used=[used], current=[current],
                              capacity_per_pod=[capacity_per_pod])[0]

    def step_many(
        self,
        states: Sequence[HpaGridState],
        *,
        usage: Sequence[float],
        used: Sequence[float],
        current: Sequence[int],
        capacity_per_pod: Sequence[float],
    ) -> list[HpaGridState]:
        """`step` for many workloads with this grid at once (the i-th of each argument is one workload's), in one
        pass of array operations over all of them: a controller steps thousands of workloads a model step, and one
        step alone is mostly the overhead of its dozen small array operations. Each result is what `step` gives."""
        k = len(self.targets)
        out: list[HpaGridState | None] = [None] * len(states)
        rows: list[int] = []
        for i, state in enumerate(states):
            if state.decisions.shape != (self.lead_steps, k):  # the first step (or a grid of another size)
                start = min(max(current[i], self.min_replicas), self.max_replicas)
                out[i] = HpaGridState(
                    decisions=np.full((self.lead_steps, k), start, dtype=np.int32),
                    recommendations=np.full((self.stabilization - 1, k), start, dtype=np.int32),
                    shortfalls=np.zeros(k),
                    outcomes=0.0,
                )
            elif not (math.isfinite(usage[i]) and math.isfinite(used[i])):  # no metric: nothing scored or changed
                out[i] = state
            else:
                rows.append(i)
        # in chunks: the temporaries of one pass stay small whatever the number of workloads
        for at in range(0, len(rows), _CHUNK):
            chunk = rows[at : at + _CHUNK]
            advanced = self._advance([states[i] for i in chunk], usage=[usage[i] for i in chunk],
                                     used=[used[i] for i in chunk], capacity=[capacity_per_pod[i] for i in chunk])
            for i, state in zip(chunk, advanced, strict=True):
                out[i] = state
        return [s for s in out if s is not None]

    def _advance(
        self, states: list[HpaGridState], *, usage: list[float], used: list[float], capacity: list[float]
    ) -> list[HpaGridState]:
        """`step` for workloads whose shadows have run before and whose usage is known, as [workload, ...] arrays."""
        decisions = np.stack([s.decisions for s in states])  # [n, lead_steps, targets]
        served = decisions.min(axis=1)
        usage_a = np.asarray(usage, dtype=np.float64)[:, None]
        keep = 1.0 - 1.0 / self.memory
        short = np.asarray(used, dtype=np.float64)[:, None] > served * self.per_pod * (1.0 + 1e-9)
        shortfalls = keep * np.stack([s.shortfalls for s in states]) + short
        outcomes = keep * np.asarray([s.outcomes for s in states], dtype=np.float64) + 1.0
        # what each shadow's own pods would have shown: clipped to their capacity (no limit: all of it)
        cap = np.asarray(capacity, dtype=np.float64)[:, None]
        limited = np.isfinite(cap)
        seen = np.where(limited, np.minimum(usage_a, served * np.where(limited, cap, 0.0)), usage_a)
        cur = decisions[:, -1]
        rec = self._recommend(cur, served, seen)
        if self.stabilization > 1:
            previous = np.stack([s.recommendations for s in states])
            # the scale-down stabilization: the highest recommendation of the window
            down = np.maximum(rec, previous.max(axis=1))
            recommendations = np.concatenate([previous[:, 1:], rec[:, None, :]], axis=1)
        else:
            down = rec
            recommendations = np.stack([s.recommendations for s in states])
        new = np.where(rec > cur, rec, np.minimum(cur, down))
        limit = np.maximum(np.ceil(cur * self.up_factor), cur + self.up_pods).astype(np.int32)
        new = np.clip(np.minimum(new, limit), self.min_replicas, self.max_replicas).astype(np.int32)
        decisions = np.concatenate([decisions[:, 1:], new[:, None, :]], axis=1)
        return [
            HpaGridState(decisions=decisions[i], recommendations=recommendations[i], shortfalls=shortfalls[i],
                         outcomes=float(outcomes[i]))
            for i in range(len(states))
        ]

    def _recommend(
        self, current: npt.NDArray[np.int32], ready: npt.NDArray[np.int32], seen: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int32]:
        """The replica calculator (`aihpa.scaling.hpa.hpa_replicas`) for every shadow at once: utilization as a
        truncated whole percent, the tolerance, and the second pass of upstream when pods asked for are not ready
        yet (they count at 100% on a scale-down, at 0% on a scale-up; a change they would reverse is not made).
        Arrays of any shape, the targets last."""
        target = np.round(self._targets * 100.0, 6)  # a whole-percent target in upstream; see _target_percent
        ready_f = ready.astype(np.float64)
        cur_f = current.astype(np.float64)
        percent = np.floor(seen * 100.0 / (np.maximum(ready_f, 1.0) * self.per_pod) + _SLACK)
        ratio = percent / target
        low, high = 1.0 - self.tolerance, 1.0 + self.tolerance
        within = (ratio >= low) & (ratio <= high)
        plain = np.where(within, cur_f, np.ceil(ratio * ready_f))
        missing = cur_f - ready_f
        if not (missing > 0).any() and bool((ready > 0).all()):
            # every shadow's pods are ready and reporting (most steps): the first pass is the answer
            return plain.astype(np.int32)
        # pods without metrics yet (asked for, not ready): counted at 100% of their request when usage is below target
        # (at most the target above 100%), at 0% when above it
        extra = np.where(ratio < 1.0, missing * self.per_pod * np.maximum(100.0, target) / 100.0, 0.0)
        counted = np.where(ratio != 1.0, cur_f, ready_f)
        new_percent = np.floor((seen + extra) * 100.0 / (np.maximum(counted, 1.0) * self.per_pod) + _SLACK)
        new_ratio = new_percent / target
        keep = (
            ((new_ratio >= low) & (new_ratio <= high))
            | ((ratio < 1.0) & (new_ratio > 1.0))
            | ((ratio > 1.0) & (new_ratio < 1.0))
        )
        second = np.ceil(new_ratio * counted)
        against = ((new_ratio < 1.0) & (second > cur_f)) | ((new_ratio > 1.0) & (second < cur_f))
        second = np.where(keep | against, cur_f, second)
        out = np.where((missing > 0) | (ready <= 0), second, plain)
        out = np.where(ready <= 0, cur_f, out)  # no pod reported: keep the count
        return out.astype(np.int32)

    @staticmethod
    def leader(state: HpaGridState, risk: float) -> int | None:
        """The highest target whose pods fell short on at most `risk` of the scored steps, counting one more
        shortfall than seen (so that a short history trusts no target: at 1% risk, 99 clean steps are needed);
        None while no target qualifies."""
        if state.shortfalls.shape[0] == 0:
            return None
        ok = np.flatnonzero((state.shortfalls + 1.0) / (state.outcomes + 1.0) <= risk)
        return int(ok[-1]) if ok.shape[0] else None

    @staticmethod
    def pods(state: HpaGridState, index: int) -> int:
        """The count the shadow at `index` decided on its last step."""
        return int(state.decisions[-1, index])

    @staticmethod
    def shortfall_rate(state: HpaGridState, index: int) -> float:
        return float(state.shortfalls[index] / state.outcomes) if state.outcomes > 0 else math.nan
