"""A raw-JSON Kubernetes client on kubernetes-asyncio: requests with retries, and watch streams.

kubernetes-asyncio's `ApiClient` does the authentication and TLS that a kubeconfig or in-cluster config describes;
`KubeClient` sends requests through it and keeps objects as plain dicts (typed at the edges), so every resource, core
or custom, is handled the same way. Temporary failures are retried with backoff from `RetrySettings`, honouring the
server's Retry-After; everything else raises the project's error types (`aihpa.k8s.errors`).

Writes pass a client-side token bucket first (`qps` sustained, `burst` at once, as client-go's rate limiter), so a
controller with tens of thousands of workloads never floods the API server however many decisions change at once;
reads are not limited (a cycle's reads are a few lists and watches, not one per workload). The wait is real time,
awaited on the event loop (never blocking it), and an observer hears of each write and each wait (the controller's
metrics: writes by kind, and the time spent throttled).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
from kubernetes_asyncio.client import ApiClient

from aihpa.clock import Clock, SystemClock
from aihpa.k8s.errors import K8sError, TemporaryError, error_from_response

__all__ = [
    "DEFAULT_BURST", "DEFAULT_QPS", "JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "KubeClient",
    "RequestObserver", "RetrySettings", "TokenBucket", "write_kind",
]

logger = logging.getLogger(__name__)

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

# Writes per second sustained, and at once. A model step of 10,000 workloads where a tenth change replicas writes
# about 1,000 scales and 1,000 Events (statuses ride along only when their news changes): the burst lets such a step
# through without waiting, and the rate refills it well inside a model step (60 s), while a runaway (every workload
# every cycle) is held to 200 writes a second: about a tenth of a default API server's 400 mutating requests in
# flight at a few ms each. client-go's 5/10 is sized for a controller writing a few objects a minute.
DEFAULT_QPS = 200.0
DEFAULT_BURST = 2000

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def write_kind(path: str, body: Any = None) -> str:
    """What a write at `path` changes, as the controller's metrics name it: scale (the scale subresource, or a JSON
    patch of a Deployment's replicas), status (any other write of a Deployment: the controller writes only its
    status annotation there), event, or the resource's plural."""
    parts = path.split("?", 1)[0].rstrip("/").split("/")
    if parts[-1] == "scale":
        return "scale"
    # /api/v1/namespaces/NS/RESOURCE[/NAME], /apis/GROUP/VERSION/RESOURCE[/NAME], /api/v1/namespaces[/NAME]
    if "namespaces" in parts:
        at = parts.index("namespaces") + 2
        resource = parts[at] if at < len(parts) else "namespaces"
    else:
        at = 4 if parts[1:2] == ["apis"] else 3
        resource = parts[at] if at < len(parts) else parts[-1]
    if resource == "deployments":
        replicas = isinstance(body, list) and any(isinstance(op, dict) and op.get("path") == "/spec/replicas"
                                                  and op.get("op") != "test" for op in body)
        return "scale" if replicas else "status"
    if resource == "events":
        return "event"
    return resource


class RequestObserver(Protocol):
    """Hears of the client's writes and of the time they waited for the rate limit (the controller's metrics)."""

    def on_write(self, kind: str) -> None: ...

    def on_throttle(self, wait_s: float) -> None: ...


class TokenBucket:
    """client-go's token bucket: `burst` tokens at most, refilled at `qps` a second. `reserve()` takes a token and
    says how long its taker must wait for it; tokens are handed out in order (the deficit is the queue), so no lock
    is needed and a burst of callers is spread at exactly `qps`."""

    def __init__(self, qps: float, burst: int, *, now: Callable[[], float] = time.monotonic) -> None:
        if qps <= 0 or burst < 1:
            raise ValueError(f"a token bucket needs qps > 0 and burst >= 1 (got {qps}, {burst})")
        self.qps = qps
        self.burst = burst
        self._now = now
        self._tokens = float(burst)
        self._last = now()

    def reserve(self) -> float:
        now = self._now()
        self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.qps)
        self._last = now
        self._tokens -= 1.0
        return 0.0 if self._tokens >= 0 else -self._tokens / self.qps


@dataclass(frozen=True)
class RetrySettings:
    """Backoff between attempts of one request (seconds); its length bounds the retries."""

    backoff: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0, 4.0)
    # longest Retry-After we wait for; a longer one fails the request (the next cycle tries again)
    max_retry_after: float = 30.0
    # per-request timeout in seconds
    request_timeout: float = 10.0


class KubeClient:
    """JSON requests to the API server with retries. Owns nothing: close the `ApiClient` yourself."""

    def __init__(
        self,
        api: ApiClient,
        *,
        retry: RetrySettings | None = None,
        clock: Clock | None = None,
        qps: float | None = DEFAULT_QPS,
        burst: int = DEFAULT_BURST,
        observer: RequestObserver | None = None,
    ) -> None:
        """`qps` and `burst` limit the writes (None or 0: unlimited); `observer` hears of writes and waits."""
        self.api = api
        self.retry = retry or RetrySettings()
        self.clock = clock or SystemClock()
        self.limiter = TokenBucket(qps, burst) if qps else None
        self.observer = observer
        self._fast: aiohttp.ClientSession | None = None

    async def _throttle(self) -> None:
        """Wait (real time, on the event loop) for the write's token; the clock of the cluster does not pace it."""
        if self.limiter is None:
            return
        wait = self.limiter.reserve()
        if wait > 0:
            if self.observer is not None:
                self.observer.on_throttle(wait)
            await asyncio.sleep(wait)

    def _session(self) -> aiohttp.ClientSession:
        """A session on the ApiClient's connection pool that does not look up proxy settings in the environment
        on every request (which costs a thread hop each, and tripled the CPU of a request). One per ApiClient,
        closed when the ApiClient is closed. When the environment does name a proxy, the ApiClient's own
        session (which honours it) is used instead."""
        if self._fast is None:
            rest = self.api.rest_client
            shared = getattr(rest, "_aihpa_session", None)
            if shared is None:
                if any(os.environ.get(k) for k in _PROXY_VARIABLES):
                    shared = rest.pool_manager
                else:
                    shared = aiohttp.ClientSession(connector=rest.pool_manager.connector, connector_owner=False,
                                                   read_bufsize=2**21)
                    close_pool = rest.close

                    async def close_both() -> None:
                        await shared.close()
                        await close_pool()

                    rest.close = close_both  # type: ignore[method-assign]
                rest._aihpa_session = shared  # type: ignore[attr-defined]
            self._fast = shared
        return self._fast

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        body: Any,
        content_type: str | None,
        request_timeout: float | None,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        query = [(k, str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (params or {}).items()]
        # the ApiClient's own session, TLS and credentials (refreshed tokens included), without its model
        # (de)serialization: a controller writing thousands of objects a cycle pays for every microsecond here
        await self.api.update_params_for_auth(headers, query, ["BearerToken"])
        rest = self.api.rest_client
        timeout = request_timeout if request_timeout is not None else self.retry.request_timeout
        kwargs: dict[str, Any] = {
            "params": query,
            "headers": headers,
            "data": None if body is None else json.dumps(body).encode(),
            "timeout": aiohttp.ClientTimeout(total=timeout),
        }
        if rest.server_hostname:
            kwargs["server_hostname"] = rest.server_hostname
        if rest.proxy:
            kwargs["proxy"] = rest.proxy
            kwargs["proxy_headers"] = rest.proxy_headers
        try:
            return await self._session().request(method, f"{self.api.configuration.host}{path}", **kwargs)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TemporaryError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str | None = None,
        retries: bool = True,
        decoder: Callable[[bytes], Any] | None = None,
    ) -> Any:
        """One request; returns the decoded JSON body. Temporary failures are retried per `RetrySettings`.
        `decoder`: what turns the body's bytes into the answer (default: `json.loads`), e.g. a typed decoder that
        keeps only the fields a large list is read for."""
        delays: Sequence[float] = self.retry.backoff if retries else ()
        attempt = 0
        write = method in _WRITES
        while True:
            try:
                if write:
                    await self._throttle()
                    if self.observer is not None:
                        self.observer.on_write(write_kind(path, body))
                resp = await self._send(method, path, params=params, body=body, content_type=content_type,
                                        request_timeout=None)
                try:
                    data = await resp.read()
                finally:
                    resp.release()
                if not 200 <= resp.status < 300:
                    raise error_from_response(status=resp.status, body=data, headers=resp.headers,
                                              what=f"{method} {path}")
                return (decoder or json.loads)(data) if data else None
            except TemporaryError as exc:
                if attempt >= len(delays):
                    raise
                wait = delays[attempt]
                if exc.retry_after is not None:
                    if exc.retry_after > self.retry.max_retry_after:
                        raise
                    wait = max(wait, exc.retry_after)
                attempt += 1
                logger.debug("%s %s: %s; retry %d in %.2fs", method, path, exc, attempt, wait)
                await self.clock.sleep(wait)

    async def get(self, path: str, **params: Any) -> Any:
        return await self.request("GET", path, params=params)

    async def stream(
        self, path: str, *, params: Mapping[str, Any], inactivity_timeout: float
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (decoded JSON lines) from one watch request, until the server ends it.

        Raises TemporaryError when no line arrives for `inactivity_timeout` seconds (a silently dead connection).
        """
        # the stream lives as long as the server's timeoutSeconds; the request timeout must not cut it short
        lifetime = float(params.get("timeoutSeconds") or 3600) + inactivity_timeout
        resp = await self._send("GET", path, params={**params, "watch": True}, body=None, content_type=None,
                                request_timeout=lifetime)
        try:
            if not 200 <= resp.status < 300:
                raise error_from_response(status=resp.status, body=await resp.read(), headers=resp.headers,
                                          what=f"WATCH {path}")
            while True:
                try:
                    async with asyncio.timeout(inactivity_timeout):
                        line = await resp.content.readline()
                except TimeoutError as exc:
                    raise TemporaryError(f"WATCH {path}: no event for {inactivity_timeout:g}s") from exc
                except aiohttp.ClientError as exc:
                    raise TemporaryError(f"WATCH {path}: {exc}") from exc
                if not line:
                    return
                if not line.strip():
                    continue
                try:
                    yield json.loads(line)
                except ValueError as exc:
                    raise K8sError(f"WATCH {path}: undecodable event: {line[:200]!r}") from exc
        finally:
            resp.close()  # a watch abandoned mid-stream must drop its connection
