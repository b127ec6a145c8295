"""Model scheduling: which model forecasts, and when it is challenged, promoted, kept on probation or rolled back.

A challenge (`aihpa.lifecycle.challenge`) runs on a schedule (`retrain_every_s`) or once drift has lasted long
enough for the held-out window and the steps to train on to show the new behaviour; it trains in a separate
process (or a worker thread), never on the event loop. A promoted model is on probation until it has a window of
live errors: worse than the model it replaced (by the lifecycle's margin) and it is rolled back. Each change is
counted, logged, and told to every workload in an Event.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import multiprocessing
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np

from aihpa.controller.outbox import EventOutbox
from aihpa.controller.settings import ControllerSettings
from aihpa.controller.workload import Workload
from aihpa.forecast.forecaster import BiLSTMForecaster, Forecaster
from aihpa.forecast.input_pipeline import Series
from aihpa.lifecycle import (
    Challenge,
    DriftMonitor,
    LifecycleSettings,
    challenge,
    challenge_from_checkpoint,
    limit_worker,
)
from aihpa.metrics.history import History
from aihpa.observability import ControllerMetrics

__all__ = ["ModelScheduler"]

logger = logging.getLogger(__name__)


class ModelScheduler:
    """Holds the model in use (`forecaster`), its drift monitor, and the challenges run so far."""

    def __init__(
        self,
        forecaster: Forecaster,
        *,
        settings: ControllerSettings,
        history: History,
        workloads: Mapping[str, Workload],
        metrics: ControllerMetrics,
        outbox: EventOutbox,
    ) -> None:
        self.forecaster = forecaster
        self.settings = settings
        self.history = history
        self.workloads = workloads
        self.metrics = metrics
        self.outbox = outbox
        self.drift = DriftMonitor()
        self.challenges: list[Challenge] = []
        # the challenge in progress (or the last one)
        self.training: asyncio.Task[None] | None = None
        # after a promotion: the model it replaced, until the new one has a window of live errors to judge by
        self.probation: Forecaster | None = None
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._last_challenge: float | None = None
        self._drift_since: float | None = None

    async def stop(self) -> None:
        """Cancel a challenge in progress and shut its worker process down."""
        if self.training is not None and not self.training.done():
            self.training.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.training
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def maybe_challenge(self, now: float) -> None:
        """Start a challenge in a worker when one is due (schedule or drift) and none is running."""
        cfg = self.settings.lifecycle
        if cfg is None or not isinstance(self.forecaster, BiLSTMForecaster):
            return
        if self.training is not None and not self.training.done():
            return
        if self._last_challenge is None:
            self._last_challenge = now  # the schedule starts with the controller
        due = now - self._last_challenge >= self.settings.retrain_every_s
        step_s = self.settings.step_s
        if self.drift.drifted:
            # the change began about a monitor window before the monitor saw it
            self._drift_since = (self._drift_since if self._drift_since is not None
                                 else now - self.drift.window * step_s)
        else:
            self._drift_since = None
        # after a change, wait until the held-out window and the steps to train on all show the new behaviour, and
        # leave a refused challenger's data a window to grow before the next try
        window_s = cfg.holdout_steps * step_s
        train_steps = cfg.drift_train_steps or cfg.holdout_steps
        drift_due = (self._drift_since is not None and now - self._drift_since >= window_s + train_steps * step_s
                     and now - self._last_challenge >= window_s)
        if not (due or drift_due):
            return
        series = self.training_series()
        if not series:
            return
        if drift_due and not due and self._drift_since is not None:
            # train on the new behaviour only: the steps since the change, less the held-out tail
            # (never fewer than a few of the model's training windows)
            since = int((now - self._drift_since) // step_s) - cfg.holdout_steps
            model = self.forecaster.config
            cfg = replace(cfg, train_recent_steps=max(since, train_steps, 2 * (model.window + model.horizon + 1)))
        self._last_challenge = now
        created = datetime.fromtimestamp(now, tz=UTC).isoformat(timespec="seconds")
        self.training = asyncio.create_task(self.challenge(series, cfg, created=created), name="aihpa-challenge")

    def training_series(self) -> list[Series]:
        """Every history long enough to train on and hold out from, gaps filled."""
        from aihpa.forecast.input_pipeline import fill_nonfinite

        cfg = self.settings.lifecycle
        assert cfg is not None
        out = []
        for key in self.history:
            s = self.history.series(key)
            if s is None or s.values.shape[0] <= cfg.holdout_steps + self.forecaster.min_history + 16:
                continue
            values = fill_nonfinite(s.values[None, :].astype(np.float32))[0]
            times = s.end - s.step_s * np.arange(values.shape[0] - 1, -1, -1, dtype=np.float64)
            out.append(Series(name=key, values=values, step_s=s.step_s, times=times))
        return out

    async def challenge(self, series: list[Series], cfg: LifecycleSettings, *, created: str) -> None:
        """Run one challenge off the event loop; promote its challenger if it won."""
        champion = self.forecaster
        assert isinstance(champion, BiLSTMForecaster)
        loop = asyncio.get_running_loop()
        try:
            if cfg.separate_process and champion.path is not None:
                outcome, promoted_path = await loop.run_in_executor(
                    self._worker(cfg), challenge_from_checkpoint, str(champion.path), series, cfg, created
                )
                promoted = None if promoted_path is None else BiLSTMForecaster.from_checkpoint(promoted_path)
            else:
                outcome, promoted = await loop.run_in_executor(
                    None, lambda: challenge(champion, series, cfg, created=created)
                )
        except Exception:
            logger.exception("model challenge failed; keeping %s", champion.version)
            self.metrics.errors.labels(kind="challenge").inc()
            return
        self.challenges.append(outcome)
        self.metrics.challenges.labels(outcome="promoted" if outcome.promoted else "refused").inc()
        logger.info("model challenge: %s", outcome.reason)
        if promoted is not None and self.forecaster is champion:
            self.metrics.model.labels(version=champion.version).set(0)
            self.metrics.model.labels(version=promoted.version).set(1)
            self.forecaster = promoted
            self.drift.reset()  # the champion's live error becomes the bar the new model must keep under
            self._drift_since = None
            self.probation = champion
            for w in self.workloads.values():
                self.outbox.about(w, "Normal", "ModelPromoted",
                                  f"forecasting with {promoted.version} (was {champion.version}): {outcome.reason}")

    def check_probation(self) -> None:
        """Roll a promoted model back when its live error, over a full window, exceeds the one it replaced."""
        previous, cfg = self.probation, self.settings.lifecycle
        if previous is None or cfg is None or len(self.drift.recent) < self.drift.window:
            return
        self.probation = None
        live = float(np.mean(self.drift.recent))
        bar = self.drift.reference
        if bar is None or live <= bar * (1.0 + cfg.margin):
            return
        from aihpa.forecast.checkpoint import set_latest_version

        regressed = self.forecaster
        try:
            set_latest_version(cfg.models_dir, previous.version)
        except Exception as exc:  # the old version stays in memory: serve it even if the pointer cannot move
            logger.warning("rollback: %s", exc)
        self.forecaster = previous
        self.metrics.model.labels(version=regressed.version).set(0)
        self.metrics.model.labels(version=previous.version).set(1)
        self.metrics.challenges.labels(outcome="rolled-back").inc()
        self.drift.reset()
        logger.warning("model %s regressed live (error %.3f vs %.3f): rolled back to %s", regressed.version, live,
                       bar, previous.version)
        for w in self.workloads.values():
            self.outbox.about(w, "Warning", "ModelRolledBack",
                              f"{regressed.version} regressed live (relative error {live:.3f} against {bar:.3f}): "
                              f"back to {previous.version}")

    def _worker(self, cfg: LifecycleSettings) -> concurrent.futures.ProcessPoolExecutor:
        if self._pool is None:
            # spawn, not fork: the parent has threads (JAX, the event loop's executor) that fork would copy broken
            self._pool = concurrent.futures.ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                initializer=limit_worker, initargs=(cfg.worker_memory_bytes,),
            )
        return self._pool

    async def wait_for_challenge(self, *, timeout_s: float) -> Challenge | None:
        """Wait (real time, bounded) for a running challenge to end; its outcome, or None when none ran."""
        if self.training is None:
            return None
        async with asyncio.timeout(timeout_s):
            await asyncio.shield(self.training)
        return self.challenges[-1] if self.challenges else None
