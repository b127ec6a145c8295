"""Kubernetes Events that explain what aihpa did and why (`kubectl describe deploy` shows them).

Repeats of the same reason and message on the same object within `aggregate_s` bump the existing Event's count
instead of creating a new one, as client-go's recorder does, so a steady state does not flood etcd.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aihpa.k8s.client import MERGE_PATCH, KubeClient
from aihpa.k8s.errors import K8sError, NotFoundError

__all__ = ["EventRecorder", "ObjectRef", "rfc3339"]

logger = logging.getLogger(__name__)


def rfc3339(t: float, *, micro: bool = False) -> str:
    dt = datetime.fromtimestamp(t, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ObjectRef:
    api_version: str
    kind: str
    namespace: str
    name: str
    uid: str = ""

    @classmethod
    def of(cls, obj: dict[str, Any]) -> ObjectRef:
        meta = obj.get("metadata") or {}
        return cls(
            api_version=str(obj.get("apiVersion", "")),
            kind=str(obj.get("kind", "")),
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
        )


class EventRecorder:
    """Posts core/v1 Events; failures are logged, never raised (an Event must not break a scaling cycle)."""

    def __init__(
        self, client: KubeClient, *, component: str = "aihpa-controller", instance: str = "", aggregate_s: float = 600
    ) -> None:
        self._client = client
        self._component = component
        self._instance = instance
        self._aggregate_s = aggregate_s
        # (uid/ns/name, type, reason, message) -> (event name, count, first time)
        self._seen: dict[tuple[str, str, str, str], tuple[str, int, float]] = {}

    async def emit(self, ref: ObjectRef, *, type: str, reason: str, message: str) -> dict[str, Any] | None:
        now = self._client.clock.now()
        key = (ref.uid or f"{ref.namespace}/{ref.name}", type, reason, message)
        seen = self._seen.get(key)
        try:
            if seen is not None and now - seen[2] < self._aggregate_s:
                name, count, first = seen
                try:
                    patched: dict[str, Any] = await self._client.request(
                        "PATCH",
                        f"/api/v1/namespaces/{ref.namespace}/events/{name}",
                        body={"count": count + 1, "lastTimestamp": rfc3339(now)},
                        content_type=MERGE_PATCH,
                    )
                    self._seen[key] = (name, count + 1, first)
                    return patched
                except NotFoundError:
                    pass  # expired or deleted: create a fresh one
            digest = hashlib.sha256(f"{key}{now}".encode()).hexdigest()[:10]
            name = f"{ref.name}.{digest}"
            body = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": ref.namespace},
                "involvedObject": {
                    "apiVersion": ref.api_version, "kind": ref.kind, "namespace": ref.namespace,
                    "name": ref.name, **({"uid": ref.uid} if ref.uid else {}),
                },
                "type": type,
                "reason": reason,
                "message": message[:1024],
                "count": 1,
                "firstTimestamp": rfc3339(now),
                "lastTimestamp": rfc3339(now),
                "source": {"component": self._component},
                "reportingComponent": self._component,
                "reportingInstance": self._instance or self._component,
            }
            created: dict[str, Any] = await self._client.request(
                "POST", f"/api/v1/namespaces/{ref.namespace}/events", body=body
            )
            self._seen[key] = (name, 1, now)
            if len(self._seen) > 10_000:  # bounded memory: forget the oldest half
                for k in sorted(self._seen, key=lambda k: self._seen[k][2])[:5_000]:
                    del self._seen[k]
            return created
        except K8sError as exc:
            logger.warning("event %s %s on %s/%s not recorded: %s", type, reason, ref.namespace, ref.name, exc)
            return None
