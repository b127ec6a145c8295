"""A raw-JSON Kubernetes client on kubernetes-asyncio: requests with retries, and watch streams.

kubernetes-asyncio's `ApiClient` does the authentication and TLS that a kubeconfig or in-cluster config describes;
`KubeClient` sends requests through it and keeps objects as plain dicts (typed at the edges), so every resource, core
or custom, is handled the same way. Temporary failures are retried with backoff from `RetrySettings`, honouring the
server's Retry-After; everything else raises the project's error types (`aihpa.k8s.errors`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import aiohttp
from kubernetes_asyncio.client import ApiClient

from aihpa.clock import Clock, SystemClock
from aihpa.k8s.errors import K8sError, TemporaryError, error_from_response

__all__ = ["JSON_PATCH", "MERGE_PATCH", "STRATEGIC_MERGE_PATCH", "KubeClient", "RetrySettings"]

logger = logging.getLogger(__name__)

_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"


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

    def __init__(self, api: ApiClient, *, retry: RetrySettings | None = None, clock: Clock | None = None) -> None:
        self.api = api
        self.retry = retry or RetrySettings()
        self.clock = clock or SystemClock()
        self._fast: aiohttp.ClientSession | None = None

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
    ) -> Any:
        """One request; returns the decoded JSON body. Temporary failures are retried per `RetrySettings`."""
        delays: Sequence[float] = self.retry.backoff if retries else ()
        attempt = 0
        while True:
            try:
                resp = await self._send(method, path, params=params, body=body, content_type=content_type,
                                        request_timeout=None)
                try:
                    data = await resp.read()
                finally:
                    resp.release()
                if not 200 <= resp.status < 300:
                    raise error_from_response(status=resp.status, body=data, headers=resp.headers,
                                              what=f"{method} {path}")
                return json.loads(data) if data else None
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
