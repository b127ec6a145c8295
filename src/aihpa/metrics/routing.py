"""One metrics source for the controller made of two: CPU from one (metrics.k8s.io or Prometheus), every named
metric from Prometheus's named queries.

A workload's `WorkloadRef.metric` says which: None goes to the CPU source, a name to the named source (which answers
None for a name it has no query for, and so does this router when it has no named source at all). History, for the
backfill, comes from whichever source serves the workload, when that source keeps any.

Adapter layer: it only forwards; the sources do the I/O.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from aihpa.metrics.prometheus import PrometheusSource
from aihpa.metrics.source import MetricsError, MetricsSource, WorkloadRef, known_metrics

__all__ = ["RoutedSource"]


class RoutedSource:
    """`MetricsSource`: CPU workloads from `cpu`, workloads with a named metric from `named` (None: unknown)."""

    def __init__(self, *, cpu: MetricsSource, named: PrometheusSource | None) -> None:
        self.cpu = cpu
        self.named = named

    @property
    def metric_names(self) -> frozenset[str]:
        return known_metrics(self.named)

    def _source_of(self, workload: WorkloadRef) -> object | None:
        return self.cpu if workload.metric is None else self.named

    async def usage(self, workloads: Sequence[WorkloadRef], *, at: float | None = None) -> dict[str, float | None]:
        cpu = [w for w in workloads if w.metric is None]
        named = [w for w in workloads if w.metric is not None]
        out: dict[str, float | None] = {w.key: None for w in named}
        answers = await asyncio.gather(
            self.cpu.usage(cpu, at=at) if cpu else _nothing(),
            self.named.usage(named, at=at) if named and self.named is not None else _nothing(),
        )
        for answer in answers:
            out.update(answer)
        return out

    async def history(
        self, workload: WorkloadRef, *, start: float, end: float, step_s: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """The workload's history from the source that serves it; MetricsError when that source keeps none."""
        source = self._source_of(workload)
        history = getattr(source, "history", None)
        if history is None:
            what = "CPU" if workload.metric is None else f"metric {workload.metric!r}"
            raise MetricsError(f"{workload.key}: the source of its {what} keeps no history")
        result: tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]] = await history(
            workload, start=start, end=end, step_s=step_s)
        return result

    async def close(self) -> None:
        """Close what this router's sources hold open (each source that has a `close`)."""
        for source in {id(s): s for s in (self.cpu, self.named) if s is not None}.values():
            close = getattr(source, "close", None)
            if close is not None:
                await close()


async def _nothing() -> dict[str, float | None]:
    return {}
