"""Events the controller means to post, queued as the cycle finds them and sent by the leader at the cycle's end.

Watch handlers run synchronously and must do no I/O, and a standby replica must not speak for the cluster: both only
queue here. The same Event queued twice in one cycle (an object failing on each of its updates) is sent once.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Iterable
from typing import NamedTuple, TypeVar

from aihpa.controller.workload import Workload
from aihpa.k8s.events import EventRecorder, ObjectRef

__all__ = ["EventOutbox", "QueuedEvent", "bounded"]

T = TypeVar("T")


class QueuedEvent(NamedTuple):
    ref: ObjectRef
    type: str  # "Normal" or "Warning"
    reason: str
    message: str


class EventOutbox:
    """The Events of the cycle in progress, in the order they were queued."""

    def __init__(self, recorder: EventRecorder) -> None:
        self.recorder = recorder
        self.queued: list[QueuedEvent] = []

    def add(self, ref: ObjectRef, type_: str, reason: str, message: str) -> None:
        self.queued.append(QueuedEvent(ref, type_, reason, message))

    def about(self, w: Workload, type_: str, reason: str, message: str) -> None:
        """An Event on a managed Deployment."""
        self.add(ObjectRef.of({**w.obj, "apiVersion": "apps/v1", "kind": "Deployment"}), type_, reason, message)

    def clear(self) -> None:
        """Drop what is queued (a standby replica's cycle)."""
        self.queued.clear()

    async def flush(self, *, concurrency: int) -> None:
        """Send what is queued, each distinct Event once, at most `concurrency` at a time."""
        pending, self.queued = list(dict.fromkeys(self.queued)), []
        await bounded(
            (self.recorder.emit(e.ref, type=e.type, reason=e.reason, message=e.message) for e in pending),
            limit=concurrency,
        )


async def bounded(jobs: Iterable[Awaitable[T]], *, limit: int) -> list[T]:
    """Run API calls concurrently, at most `limit` at a time, results in order."""
    sem = asyncio.Semaphore(limit)
    waiting = list(jobs)

    async def one(job: Awaitable[T]) -> T:
        async with sem:
            return await job

    try:
        return list(await asyncio.gather(*(one(j) for j in waiting)))
    finally:
        # cancelled (shutdown) before some of them started: close those, so none is left never awaited
        for job in waiting:
            if inspect.iscoroutine(job) and inspect.getcoroutinestate(job) == inspect.CORO_CREATED:
                job.close()
