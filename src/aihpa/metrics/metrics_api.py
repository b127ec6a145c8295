"""metrics.k8s.io as a metrics source: the sum of PodMetrics CPU over the pods that the Deployment's selector matches.

Pods are selected by the Deployment's own label selector (matchLabels and matchExpressions), never by name prefix:
sent to the API server as a labelSelector when a namespace has few workloads, or, when it has many, matched here
against the labels of one PodMetrics list of the whole namespace (metrics-server copies pod labels onto PodMetrics),
so a cycle costs one request per namespace instead of one per workload. A workload with no PodMetrics, or a
failed request, is reported unknown (None), which the controller never treats as zero; so is a workload that scales
on a named metric (`WorkloadRef.metric`): metrics.k8s.io has CPU only (`aihpa.metrics.routing` sends those elsewhere).

Adapter layer: network I/O through `aihpa.k8s.KubeClient`; no decisions here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec

from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import K8sError
from aihpa.metrics.source import WorkloadRef, selector_to_string
from aihpa.quantity import parse_quantity

__all__ = ["MetricsAPISource", "PodUsage"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PodUsage:
    cores: float
    pods: int


# A namespace's PodMetrics list, as far as it is read: each pod's labels and its containers' usage. Decoded into these
# (msgspec skips every other field without building it) it costs a third of the time of the whole JSON, and a shard
# reads the list of the whole namespace to keep its own workloads' pods (metrics.k8s.io has no filter by shard). Not
# tracked by the cyclic collector: a decoded tree holds no cycles.
class _ContainerMetrics(msgspec.Struct, gc=False):
    usage: dict[str, Any] | None = None


class _PodMeta(msgspec.Struct, gc=False):
    labels: dict[str, str] | None = None  # as the API defines them: a label that is not a string is no PodMetrics


class _PodMetrics(msgspec.Struct, gc=False):
    metadata: _PodMeta | None = None
    containers: list[_ContainerMetrics] | None = None


class _PodMetricsList(msgspec.Struct, gc=False):
    items: list[_PodMetrics] | None = None


_POD_METRICS_LIST = msgspec.json.Decoder(_PodMetricsList)


class MetricsAPISource:
    """`MetricsSource` over `/apis/metrics.k8s.io/v1beta1` (metrics-server)."""

    def __init__(self, client: KubeClient, *, concurrency: int = 16, list_namespace_from: int = 4) -> None:
        self._client = client
        self._sem = asyncio.Semaphore(concurrency)
        # a namespace with at least this many workloads is read with one list instead of one query per workload
        self._list_from = list_namespace_from
        #: pods with metrics per workload key in the last `usage` call (the HPA's "pods with metrics")
        self.pods: dict[str, int] = {}

    async def pod_usage(self, workload: WorkloadRef) -> PodUsage | None:
        try:
            selector = selector_to_string(workload.selector)
        except (KeyError, ValueError) as exc:
            logger.warning("%s: unusable selector: %s", workload.key, exc)
            return None
        if not selector:
            return None  # an empty selector would match every pod in the namespace
        async with self._sem:
            try:
                listing = await self._client.request(
                    "GET",
                    f"/apis/metrics.k8s.io/v1beta1/namespaces/{workload.namespace}/pods",
                    params={"labelSelector": selector},
                )
            except K8sError as exc:
                logger.info("%s: metrics unavailable: %s", workload.key, exc)
                return None
        items = listing.get("items") or []
        if not items:
            return None
        total = 0.0
        for pod in items:
            for container in pod.get("containers") or []:
                try:
                    total += parse_quantity((container.get("usage") or {}).get("cpu", "0"))
                except ValueError:
                    logger.warning("%s: bad CPU quantity in PodMetrics %s", workload.key,
                                   (pod.get("metadata") or {}).get("name"))
                    return None
        return PodUsage(cores=total, pods=len(items))

    async def namespace_usage(self, namespace: str, workloads: Sequence[WorkloadRef]) -> list[PodUsage | None]:
        """Usage of many workloads of one namespace from one PodMetrics list, selectors matched locally."""
        async with self._sem:
            try:
                listing: _PodMetricsList = await self._client.request(
                    "GET", f"/apis/metrics.k8s.io/v1beta1/namespaces/{namespace}/pods",
                    decoder=_POD_METRICS_LIST.decode,
                )
            except K8sError as exc:
                logger.info("namespace %s: metrics unavailable: %s", namespace, exc)
                return [None] * len(workloads)
            except ValueError as exc:  # not JSON, or not the shape of a PodMetricsList
                logger.warning("namespace %s: metrics unavailable: unreadable PodMetrics list: %s", namespace, exc)
                return [None] * len(workloads)
        # index workloads by one of their matchLabels pairs, so each pod is checked against few selectors
        by_pair: dict[tuple[str, str], list[int]] = {}
        loose: list[int] = []
        for i, w in enumerate(workloads):
            pair = w.index_pair
            (by_pair.setdefault(pair, []) if pair is not None else loose).append(i)
        cores = [0.0] * len(workloads)
        pods = [0] * len(workloads)
        bad: set[int] = set()
        for pod in (listing.items if listing is not None else None) or []:
            labels = (pod.metadata.labels if pod.metadata is not None else None) or {}
            # each workload is indexed under one pair, and a pod's pairs differ: no workload comes twice. Most pods
            # of a shard's namespace list are other shards': they end here, after a lookup per label
            candidates = [i for pair in labels.items() for i in by_pair.get(pair, ())]
            candidates += loose
            for i in candidates:
                try:
                    if not workloads[i].matches(labels):
                        continue
                    cores[i] += sum(parse_quantity((c.usage or {}).get("cpu", "0")) for c in pod.containers or [])
                except (KeyError, TypeError, ValueError):
                    bad.add(i)
                    continue
                pods[i] += 1
        return [None if i in bad or pods[i] == 0 else PodUsage(cores=cores[i], pods=pods[i])
                for i in range(len(workloads))]

    async def usage(self, workloads: Sequence[WorkloadRef], *, at: float | None = None) -> dict[str, float | None]:
        """Current usage (metrics-server has no history: `at` is ignored)."""
        groups: dict[str, list[WorkloadRef]] = {}
        out: dict[str, float | None] = {}
        for w in workloads:
            if w.metric is not None:  # not CPU: not this source's to answer, and never a CPU figure in its place
                out[w.key] = None
                self.pods.pop(w.key, None)
                continue
            groups.setdefault(w.namespace, []).append(w)
        jobs: list[Awaitable[list[PodUsage | None]]] = []
        for ns, group in groups.items():
            if len(group) >= self._list_from:
                jobs.append(self.namespace_usage(ns, group))
            else:
                jobs.append(asyncio.gather(*(self.pod_usage(w) for w in group)))
        answers = await asyncio.gather(*jobs)
        ordered = [w for group in groups.values() for w in group]
        results = [r for answer in answers for r in answer]
        for w, r in zip(ordered, results, strict=True):
            out[w.key] = None if r is None else r.cores
            if r is not None:
                self.pods[w.key] = r.pods
            else:
                self.pods.pop(w.key, None)
        return out
