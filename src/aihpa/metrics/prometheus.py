"""Prometheus as a metrics source: instant queries for the current usage, range queries to rebuild history.

The query is a template (`string.Template`, `$name` placeholders) so operators can match their own labels. Besides
the CPU query, named queries (`queries`, the controller's `--metric-query NAME=PROMQL`) serve workloads that scale on
another metric (`WorkloadRef.metric`, e.g. requests per second from an ingress); a workload naming a query the source
does not have is unknown (None), never zero.

The CPU default sums `container_cpu_usage_seconds_total` rates over the containers of the Deployment's pods,
recognised by the pod names a Deployment gives them (`<deployment>-<replicaset hash>-<suffix>`): Prometheus does not
see Deployment selectors, and the name pattern also finds pods that no longer exist, which a backfill needs.

Adapter layer: it does network I/O (aiohttp) and nothing else; no scaling logic lives here.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from string import Template
from typing import Any

import aiohttp
import numpy as np
import numpy.typing as npt

from aihpa.metrics.source import MetricsError, WorkloadRef

__all__ = ["DEFAULT_QUERY", "PLACEHOLDERS", "PrometheusSource", "check_template"]

DEFAULT_QUERY = (
    'sum(rate(container_cpu_usage_seconds_total{namespace="$namespace",pod=~"$pod_regex",'
    'container!="",container!="POD"}[$rate_window]))'
)
#: what a query template may use, each filled in per workload
PLACEHOLDERS = ("namespace", "name", "pod_regex", "rate_window")


def check_template(query: str) -> Template:
    """The query as a template; ValueError naming the problem when it uses a placeholder other than PLACEHOLDERS
    or a lone "$" (caught when the controller starts, not as a failed query every cycle)."""
    template = Template(query)
    if not query.strip():
        raise ValueError("the query is empty")
    for match in template.pattern.finditer(query):
        name = match.group("named") or match.group("braced")
        if match.group("invalid") is not None:
            raise ValueError(f"a lone '$' at character {match.start('invalid')} (write $$ for a literal $)")
        if name is not None and name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder ${name} (known: {', '.join('$' + p for p in PLACEHOLDERS)})")
    return template


class PrometheusSource:
    """`MetricsSource` over the Prometheus HTTP API (`/api/v1/query`, `/api/v1/query_range`)."""

    def __init__(
        self,
        url: str,
        *,
        query: str = DEFAULT_QUERY,
        queries: Mapping[str, str] | None = None,
        rate_window: str = "2m",
        timeout_s: float = 5.0,
        concurrency: int = 16,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._url = url.rstrip("/")
        self._template = check_template(query)
        # named queries for workloads that scale on another metric than CPU
        self._queries = {name: check_template(q) for name, q in (queries or {}).items()}
        self._rate_window = rate_window
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._sem = asyncio.Semaphore(concurrency)
        self._session = session
        self._owns_session = session is None

    async def __aenter__(self) -> PrometheusSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def metric_names(self) -> frozenset[str]:
        """The named queries this source serves besides CPU."""
        return frozenset(self._queries)

    def query_for(self, workload: WorkloadRef) -> str:
        """The PromQL for one workload (placeholders: namespace, name, pod_regex, rate_window): its metric's named
        query, else the CPU query. MetricsError for a metric this source has no query for."""
        template = self._template
        if workload.metric is not None:
            found = self._queries.get(workload.metric)
            if found is None:
                known = ", ".join(sorted(self._queries)) or "none"
                raise MetricsError(f"no query named {workload.metric!r} (known: {known})")
            template = found
        return template.substitute(
            namespace=workload.namespace,
            name=workload.name,
            pod_regex=f"{workload.name}-[a-z0-9]+-[a-z0-9]+",
            rate_window=self._rate_window,
        )

    async def _get(self, path: str, params: dict[str, str]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._sem, self._session.get(f"{self._url}{path}", params=params) as resp:
                body = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise MetricsError(f"prometheus {self._url}{path}: {exc}") from exc
        if not isinstance(body, dict) or body.get("status") != "success":
            error = body.get("error") if isinstance(body, dict) else body
            raise MetricsError(f"prometheus {self._url}{path}: {error}")
        return body["data"]

    async def _instant(self, workload: WorkloadRef, at: float | None) -> float | None:
        params = {"query": self.query_for(workload)}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = await self._get("/api/v1/query", params)
        result = data.get("result") or []
        if data.get("resultType") == "scalar":
            result = [{"value": data["result"]}]
        if not result:
            return None
        value = float(result[0]["value"][1])
        return value if math.isfinite(value) else None

    async def usage(self, workloads: Sequence[WorkloadRef], *, at: float | None = None) -> dict[str, float | None]:
        values = await asyncio.gather(*(self._instant(w, at) for w in workloads), return_exceptions=True)
        out: dict[str, float | None] = {}
        for w, v in zip(workloads, values, strict=True):
            if isinstance(v, BaseException):
                if not isinstance(v, MetricsError):
                    raise v
                out[w.key] = None
            else:
                out[w.key] = v
        return out

    async def history(
        self, workload: WorkloadRef, *, start: float, end: float, step_s: float
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float32]]:
        """Usage from `start` to `end` at `step_s`: (times, values), NaN where Prometheus has no point."""
        if end < start or step_s <= 0:
            raise ValueError("need start <= end and a positive step")
        data = await self._get(
            "/api/v1/query_range",
            {"query": self.query_for(workload), "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step_s:g}"},
        )
        n = math.floor((end - start) / step_s) + 1
        times = start + step_s * np.arange(n, dtype=np.float64)
        values = np.full(n, np.nan, dtype=np.float32)
        for series in data.get("result") or []:
            for ts, text in series.get("values", []):
                i = round((float(ts) - start) / step_s)
                if 0 <= i < n:
                    values[i] = float(text)
        return times, values
