"""How the controller runs: one frozen settings object, checked when it is built.

A bad value (a risk outside (0, 1), a step that is not positive) fails here, once, when the settings are made, not
as a logged error on every cycle; so does a model whose step is not the controller's (`check_model_step`). No I/O.
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from aihpa.annotations import MAX_SATURATION_RISK, PolicyDefaults
from aihpa.errors import UserError
from aihpa.k8s.leader import LeaseSettings
from aihpa.k8s.watching import WatchSettings
from aihpa.lifecycle import LifecycleSettings
from aihpa.step import DEFAULT_STEP_S

if TYPE_CHECKING:
    from aihpa.forecast.forecaster import Forecaster

__all__ = ["ControllerSettings", "check_model_step"]


@dataclass(frozen=True)
class ControllerSettings:
    """How the controller runs (the Helm chart's values map onto these)."""

    # seconds between cycles (the HPA's --horizontal-pod-autoscaler-sync-period)
    sync_period_s: float = 15.0
    # seconds per model step: the history's resolution and the forecast's step (the model's own, if it recorded one)
    step_s: float = DEFAULT_STEP_S
    # the controller's own namespace: its Lease and the published profiles live there
    namespace: str = "aihpa"
    # watch one namespace only (None: all namespaces)
    watch_namespace: str | None = None
    label_selector: str = "aihpa/enabled=true"
    # this replica's name in the leader election
    identity: str = field(default_factory=socket.gethostname)
    leader_election: bool = True
    lease_name: str = "aihpa-controller"
    # workloads are split into `shards` by a stable hash of namespace/name (`aihpa.controller.sharding`); this replica
    # serves shard `shard` (0..shards-1) and competes for that shard's Lease only. 1: one shard, the Lease
    # `lease_name` itself, exactly the unsharded controller
    shards: int = 1
    shard: int = 0
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    defaults: PolicyDefaults = field(default_factory=PolicyDefaults)
    # the default `aihpa/saturation-risk` (the share of minutes a workload may be short of CPU) for workloads that
    # set none; None: `defaults.saturation_risk`. A value given here replaces that default (`saturation_risk`).
    risk: float | None = None
    # steps of history kept per workload (a day at 60 s plus the model's window)
    history_capacity: int = 1536
    # persist the history here and restore it on start (e.g. on a PVC); None: memory only
    history_file: str | None = None
    # how often (seconds) the leader publishes replica profiles and persists the history
    publish_every_s: float = 300.0
    profile_shards: int = 4
    watch: WatchSettings = field(default_factory=WatchSettings)
    # run cycles and election rounds on the clock (False: the owner calls run_cycle() and elector.step(), e.g. a
    # test stepping a virtual clock)
    run_loop: bool = True
    # decide and report for every workload, never patch a scale (as if every workload said aihpa/mode: dry-run)
    dry_run: bool = False
    # API writes (scale, status, Events) in flight at once
    api_concurrency: int = 32
    # model life cycle: challenge the champion with a fine-tuned challenger every `retrain_every_s` (and at once on
    # drift); None: the model never changes while the controller runs
    lifecycle: LifecycleSettings | None = None
    retrain_every_s: float = 6 * 3600.0
    # the aihpa/status annotation is rewritten when the replicas, mode or kind of decision change, else at most
    # this often (seconds): one write per workload per model step would load the API server for nothing
    status_every_s: float = 300.0

    def __post_init__(self) -> None:
        for name in ("sync_period_s", "step_s", "retrain_every_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
        for name in ("publish_every_s", "status_every_s"):
            value = getattr(self, name)
            if not value >= 0:  # also refuses NaN; infinity means never
                raise ValueError(f"{name} must be 0 or more seconds, got {value!r}")
        if self.risk is not None:
            if not (math.isfinite(self.risk) and 0.0 < self.risk <= MAX_SATURATION_RISK):
                raise ValueError(f"risk must be in (0, {MAX_SATURATION_RISK}], got {self.risk!r}")
            # one source of truth: the annotations' parser reads the default from `defaults`
            object.__setattr__(self, "defaults", replace(self.defaults, saturation_risk=self.risk))
        for name in ("history_capacity", "profile_shards", "api_concurrency"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)!r}")
        if not self.namespace or not self.lease_name:
            raise ValueError("namespace and lease_name must not be empty")
        if isinstance(self.shards, bool) or not isinstance(self.shards, int) or self.shards < 1:
            raise ValueError(f"shards must be a whole number >= 1, got {self.shards!r}")
        if isinstance(self.shard, bool) or not isinstance(self.shard, int) or not 0 <= self.shard < self.shards:
            raise ValueError(f"shard must be in 0..{self.shards - 1} (one of the {self.shards} shards), "
                             f"got {self.shard!r}")


    @property
    def saturation_risk(self) -> float:
        """The saturation risk of a workload that sets no `aihpa/saturation-risk`."""
        return self.defaults.saturation_risk


def check_model_step(settings: ControllerSettings, forecaster: Forecaster) -> None:
    """Refuse a model trained at another step than the controller samples at: its forecasts would be read at the
    wrong time scale. A model that did not record its step (`step_s` None or absent) is taken as it is."""
    model_step = getattr(forecaster, "step_s", None)
    if model_step is None or math.isclose(float(model_step), settings.step_s):
        return
    raise UserError(
        f"model {forecaster.version} was trained at a step of {float(model_step):g} s but the controller samples "
        f"every {settings.step_s:g} s (ControllerSettings.step_s): set step_s to {float(model_step):g} or use a "
        f"model trained at {settings.step_s:g} s"
    )
