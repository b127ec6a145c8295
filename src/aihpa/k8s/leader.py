"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's default timings.

One controller replica acts (scales); the others keep warm caches and serve the webhook. The leader renews every
`retry_s`; if it cannot renew within `renew_deadline_s` it steps down at once, before its lease (`lease_s`) can
expire and another replica take over, so two leaders never act together. Every write carries the resourceVersion it
read: a lost race is a 409, never a silent overwrite. Time comes from the client's clock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import ConflictError, K8sError, NotFoundError
from aihpa.k8s.events import rfc3339

__all__ = ["LeaderElector", "LeaseSettings"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LeaseSettings:
    lease_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0


def _parse_time(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


class LeaderElector:
    def __init__(
        self,
        client: KubeClient,
        *,
        namespace: str,
        name: str,
        identity: str,
        settings: LeaseSettings | None = None,
        on_change: Callable[[bool], Awaitable[None] | None] | None = None,
    ) -> None:
        self._client = client
        self._path = f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases"
        self._namespace = namespace
        self._name = name
        self.identity = identity
        self.settings = settings or LeaseSettings()
        self._on_change = on_change
        self.is_leader = False
        self._last_renew = 0.0
        self.changed = asyncio.Event()

    async def _set(self, leader: bool) -> None:
        if leader == self.is_leader:
            return
        self.is_leader = leader
        logger.info("%s %s leadership of lease %s/%s", self.identity, "acquired" if leader else "lost",
                    self._namespace, self._name)
        self.changed.set()
        if self._on_change is not None:
            result = self._on_change(leader)
            if result is not None:
                await result

    def _spec(self, now: float, *, previous: dict[str, Any] | None) -> dict[str, Any]:
        prev = previous or {}
        changed_holder = prev.get("holderIdentity") != self.identity
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": round(self.settings.lease_s),
            "acquireTime": rfc3339(now, micro=True) if changed_holder else prev.get("acquireTime"),
            "renewTime": rfc3339(now, micro=True),
            "leaseTransitions": int(prev.get("leaseTransitions") or 0) + (1 if changed_holder and prev else 0),
        }

    async def try_acquire_or_renew(self) -> bool:
        """One round of the election; returns whether this replica holds the lease afterwards."""
        now = self._client.clock.now()
        try:
            try:
                lease = await self._client.get(f"{self._path}/{self._name}")
            except NotFoundError:
                body = {
                    "apiVersion": "coordination.k8s.io/v1",
                    "kind": "Lease",
                    "metadata": {"name": self._name, "namespace": self._namespace},
                    "spec": self._spec(now, previous=None),
                }
                await self._client.request("POST", self._path, body=body)
                self._last_renew = now
                return True
            spec = lease.get("spec") or {}
            holder = spec.get("holderIdentity")
            renewed = _parse_time(spec.get("renewTime")) or 0.0
            duration = float(spec.get("leaseDurationSeconds") or self.settings.lease_s)
            if holder and holder != self.identity and renewed + duration > now:
                return False  # someone else holds a live lease
            lease["spec"] = self._spec(now, previous=spec)
            await self._client.request("PUT", f"{self._path}/{self._name}", body=lease)
            self._last_renew = now
            return True
        except ConflictError:
            return False
        except K8sError as exc:
            logger.warning("lease %s/%s: %s", self._namespace, self._name, exc)
            return False

    def holds(self) -> bool:
        """Whether this replica can still prove it holds the lease: it leads and renewed within `renew_deadline_s`
        of the client's clock. Checked before each write of a long cycle, so a holder whose renewals stopped (a
        stalled election loop, an unreachable API server) stops writing at the deadline, before the lease can
        expire and another replica take it, even if no election round has run to step it down."""
        return self.is_leader and self._client.clock.now() - self._last_renew < self.settings.renew_deadline_s

    async def step(self) -> None:
        """One election round, with the step-down rule for a leader that cannot renew."""
        ok = await self.try_acquire_or_renew()
        if ok:
            await self._set(True)
        elif self.is_leader and self._client.clock.now() - self._last_renew >= self.settings.renew_deadline_s:
            await self._set(False)

    async def run(self, *, max_rounds: int | None = None) -> None:
        """Elect forever (or `max_rounds` rounds), one round every `retry_s` of the client's clock."""
        rounds = 0
        try:
            while True:
                rounds += 1
                await self.step()
                if max_rounds is not None and rounds >= max_rounds:
                    break
                await self._client.clock.sleep(self.settings.retry_s)
        finally:
            if self.is_leader:
                await self._release()

    async def _release(self) -> None:
        """Give the lease up on shutdown so a standby takes over at once instead of after `lease_s`."""
        try:
            lease = await self._client.get(f"{self._path}/{self._name}")
            if (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                lease["spec"]["renewTime"] = rfc3339(self._client.clock.now() - self.settings.lease_s, micro=True)
                lease["spec"]["holderIdentity"] = None
                await self._client.request("PUT", f"{self._path}/{self._name}", body=lease)
        except K8sError as exc:
            logger.warning("lease %s/%s not released: %s", self._namespace, self._name, exc)
        finally:
            self.is_leader = False
