"""The webhook's transport: an aiohttp application serving `/mutate`, `/healthz`, `/readyz` and `/metrics` over TLS.

`create_app` builds the application (used in-process by the library and the demo; the CLI wraps it); `start_server`
binds it to a TLS listener whose certificate a `CertificateSource` swaps in place. The admission decision itself is
`admission.review`, pure; this module only reads bodies, maps errors to HTTP status in one function, keeps time
limits and records metrics.

The listener bounds what a client can hold: at most `max_connections` connections at once (handshakes included; the
rest wait in the kernel's listen backlog, not in memory), a TLS handshake and then each request head within
`header_timeout_s`, and a body within `body_timeout_s`. aiohttp alone bounds neither the handshake (asyncio's
default is 60 s) nor the number of connections, so the site accepts connections itself.

It must never answer 500 to a review it could not decode (400 says why), and never block a deploy on its own failure:
an internal error or a late answer is an allowed, unchanged response with a warning (fail open).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Final

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from aihpa.clock import Clock, SystemClock
from aihpa.profiles import ProfileSource
from aihpa.webhook import admission
from aihpa.webhook.certs import CertificateSource
from aihpa.webhook.settings import WebhookSettings
from aihpa.webhook.types import AdmissionReview

__all__ = ["OUTCOMES", "WebhookMetrics", "create_app", "metrics_of", "start_server"]

log = logging.getLogger(__name__)

# Every value of the outcomes counter's label; all are pre-created so a dashboard sees zeros, not gaps.
OUTCOMES: Final = ("mutated", "allowed", "malformed", "too_large", "timeout", "failed_open")
# Admission answers take well under a millisecond; the tail buckets show a stalled loop before the API server's 2 s.
_LATENCY_BUCKETS: Final = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 5.0)


class WebhookMetrics:
    """The webhook's Prometheus metrics, in a registry of their own so that several apps can live in one process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        self.latency = Histogram(
            "aihpa_webhook_request_duration_seconds",
            "Time to answer one /mutate request, from handler entry to response body ready.",
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.outcomes = Counter(
            "aihpa_webhook_admissions",
            "/mutate requests by outcome: mutated, allowed (unchanged), malformed (400), too_large (413), "
            "timeout, failed_open (internal error, allowed unchanged with a warning).",
            ["outcome"],
            registry=self.registry,
        )
        # Resolved once: a label lookup per request is measurable at thousands of requests per second.
        self.by_outcome = {outcome: self.outcomes.labels(outcome) for outcome in OUTCOMES}
        self.cert_expiry = Gauge(
            "aihpa_webhook_certificate_expiry_timestamp_seconds",
            "Unix time when the served certificate expires (0 when served without TLS).",
            registry=self.registry,
        )
        self.connections = Gauge(
            "aihpa_webhook_connections",
            "Connections held now, TLS handshakes included; at the connection limit, new ones wait.",
            registry=self.registry,
        )


@dataclass(frozen=True, slots=True)
class _State:
    settings: WebhookSettings
    profiles: ProfileSource
    clock: Clock
    metrics: WebhookMetrics
    certs: CertificateSource | None
    ready: asyncio.Event


_STATE: Final = web.AppKey("aihpa_webhook", _State)


@dataclass(frozen=True, slots=True)
class _Rejection:
    """A request that is not answered with a review: the HTTP status, the outcome label and a one-line reason."""

    status: int
    outcome: str
    message: str


def _rejection(exc: BaseException, *, max_body_bytes: int) -> _Rejection:
    """The one place that maps a failure to read or decode a body to an HTTP status."""
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return _Rejection(413, "too_large", f"request body exceeds {max_body_bytes} bytes")
    if isinstance(exc, TimeoutError):
        return _Rejection(408, "timeout", "request body did not arrive in time")
    if isinstance(exc, UnicodeDecodeError):
        return _Rejection(400, "malformed", "request body is not UTF-8 text")
    if isinstance(exc, RecursionError):
        return _Rejection(400, "malformed", "request body is nested too deeply")
    if isinstance(exc, admission.MalformedReview):
        return _Rejection(400, "malformed", f"not an AdmissionReview admission.k8s.io/v1: {exc}")
    if isinstance(exc, ValueError):
        return _Rejection(400, "malformed", f"request body is not valid JSON: {exc}")
    # Anything else while reading or decoding is still about this body, not the server: never a 500.
    log.warning("could not read a /mutate body", exc_info=exc)
    return _Rejection(400, "malformed", f"cannot read the request body ({type(exc).__name__})")


def _json(data: object, *, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":"), allow_nan=False).encode(),
        status=status,
        content_type="application/json",
    )


async def _read_body(request: web.Request, *, max_body_bytes: int) -> object:
    if request.content_length is not None and request.content_length > max_body_bytes:
        # Refuse before reading: the declared size already says no.
        raise web.HTTPRequestEntityTooLarge(max_size=max_body_bytes, actual_size=request.content_length)
    raw = await request.read()
    return json.loads(raw.decode("utf-8"))


async def _mutate(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    settings = state.settings
    metrics = state.metrics
    started = time.perf_counter()
    outcome = "failed_open"
    try:
        try:
            async with asyncio.timeout(min(settings.answer_within_s, settings.body_timeout_s)):
                body = await _read_body(request, max_body_bytes=settings.max_body_bytes)
            decoded = admission.decode_review(body)
        except Exception as exc:  # every failure to read or decode becomes a 4xx, via _rejection
            rejected = _rejection(exc, max_body_bytes=settings.max_body_bytes)
            outcome = rejected.outcome
            return _json({"error": rejected.message}, status=rejected.status)
        uid = decoded["uid"]
        try:
            response = admission.admit(decoded, settings=settings, profiles=state.profiles, now=state.clock.now())
            review: AdmissionReview = admission.wrap(response)
            payload = json.dumps(review, separators=(",", ":"), allow_nan=False).encode()
            outcome = "mutated" if "patch" in response else "allowed"
        except Exception:
            log.exception("admission of %s failed; allowing it unchanged", uid)
            payload = json.dumps(admission.fail_open(uid, "internal error")).encode()
            outcome = "failed_open"
        elapsed = time.perf_counter() - started
        if elapsed > settings.answer_within_s:
            # The API server may already have given up; say so in the logs, where a slow loop gets noticed.
            log.warning("answered %s after %.3f s, over the %.3f s budget", uid, elapsed, settings.answer_within_s)
        return web.Response(body=payload, content_type="application/json")
    finally:
        metrics.by_outcome[outcome].inc()
        metrics.latency.observe(time.perf_counter() - started)


async def _healthz(request: web.Request) -> web.Response:
    certs = request.app[_STATE].certs
    if certs is None:
        return _json({"status": "ok", "certificate": None})
    health = certs.health()
    return _json(
        {"status": "ok" if health.ok else "unhealthy", "certificate": health.detail}, status=200 if health.ok else 503
    )


async def _readyz(request: web.Request) -> web.Response:
    ready = request.app[_STATE].ready.is_set()
    return _json({"status": "ready" if ready else "starting"}, status=200 if ready else 503)


async def _metrics(request: web.Request) -> web.Response:
    registry = request.app[_STATE].metrics.registry
    return web.Response(body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start watching certificates with the app, stop with it; ready only in between."""
    state = app[_STATE]
    watcher: asyncio.Task[None] | None = None
    if state.certs is not None:
        watcher = asyncio.create_task(state.certs.run(interval_s=state.settings.cert_check_interval_s))
    state.ready.set()
    try:
        yield
    finally:
        state.ready.clear()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher


def create_app(
    settings: WebhookSettings,
    profiles: ProfileSource,
    *,
    certs: CertificateSource | None = None,
    clock: Clock | None = None,
    registry: CollectorRegistry | None = None,
) -> web.Application:
    """The webhook as an aiohttp application.

    `certs`, when given, is watched (and renewed, if it can) every `settings.cert_check_interval_s` while the app runs,
    and reported by `/healthz`; serve the app with `certs.ssl_context`. `clock` gives the admission's `now` (a
    `VirtualClock` in tests and the demo). Metrics go to `registry`, a fresh one by default.
    """
    app = web.Application(client_max_size=settings.max_body_bytes)
    metrics = WebhookMetrics(registry)
    if certs is not None:
        metrics.cert_expiry.set_function(lambda: certs.not_after)
    app[_STATE] = _State(
        settings=settings,
        profiles=profiles,
        clock=clock or SystemClock(),
        metrics=metrics,
        certs=certs,
        ready=asyncio.Event(),
    )
    app.cleanup_ctx.append(_lifecycle)
    app.router.add_post("/mutate", _mutate)
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    return app


def metrics_of(app: web.Application) -> WebhookMetrics:
    return app[_STATE].metrics


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for one connection, unchanged, that frees the connection's slot when the connection ends."""

    def __init__(self, inner: asyncio.Protocol, release: Callable[[], None]) -> None:
        self._inner = inner
        self._release = release

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            self._inner.connection_lost(exc)
        finally:
            self._release()


class _BoundedSite(web.BaseSite):
    """A TCP (TLS) site that accepts a connection only when one of `max_connections` slots is free.

    A slot is taken before `accept`, so a flood waits in the listen backlog (and is refused by the kernel once that
    is full) instead of holding sockets here; it is freed when the connection ends or its handshake fails.
    """

    def __init__(
        self,
        runner: web.BaseRunner,
        *,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        handshake_timeout_s: float,
        max_connections: int,
        backlog: int = 128,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        self._host = host
        self._port = port
        self._handshake_timeout_s = handshake_timeout_s
        self._slots = asyncio.Semaphore(max_connections)
        self.held = 0  # connections accepted and not yet ended
        self._sock: socket.socket | None = None
        self._acceptor: asyncio.Task[None] | None = None
        self._opening: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"{'https' if self._ssl_context else 'http'}://{self._host}:{self.port}"

    @property
    def port(self) -> int:
        return int(self._sock.getsockname()[1]) if self._sock is not None else self._port

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        infos = await loop.getaddrinfo(self._host, self._port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        if not infos:
            raise OSError(f"cannot resolve {self._host}")
        family, _, _, _, address = infos[0]
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self._backlog)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        await super().start()
        self._acceptor = asyncio.create_task(self._accept(sock))

    async def stop(self) -> None:
        tasks = [t for t in (self._acceptor, *self._opening) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._acceptor = None
        if self._sock is not None:
            self._sock.close()
        await super().stop()

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._slots.acquire()
            try:
                conn, _ = await loop.sock_accept(sock)
            except (ConnectionAbortedError, InterruptedError):
                self._slots.release()  # the client gave up while queued
                continue
            except OSError as exc:
                self._slots.release()
                # Out of file descriptors, most likely: back off as asyncio's own server does, rather than spin.
                log.warning("cannot accept a connection: %s", exc)
                await asyncio.sleep(1.0)
                continue
            except BaseException:
                self._slots.release()
                raise
            self.held += 1
            task = asyncio.create_task(self._open(conn))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open(self, conn: socket.socket) -> None:
        """Hand `conn` to aiohttp once its TLS handshake is done (within the timeout); its slot follows it."""
        freed = False

        def release() -> None:
            nonlocal freed
            if not freed:
                freed = True
                self.held -= 1
                self._slots.release()

        server = self._runner.server
        assert server is not None
        loop = asyncio.get_running_loop()
        tls: dict[str, Any] = (
            {} if self._ssl_context is None
            else {"ssl": self._ssl_context, "ssl_handshake_timeout": self._handshake_timeout_s}
        )
        try:
            await loop.connect_accepted_socket(lambda: _Counted(server(), release), conn, **tls)
        except BaseException as exc:
            release()
            conn.close()
            if not isinstance(exc, Exception):
                raise
            # A failed or late handshake is the client's problem; asyncio has already logged it at debug level.
            log.debug("connection dropped before it was served: %s", exc)


async def start_server(
    app: web.Application, *, host: str, port: int, ssl_context: ssl.SSLContext | None
) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port (port 0: the OS chooses); returns the runner (call `cleanup()`) and the bound port.

    The limits come from the app's `WebhookSettings` (the defaults for an app not made by `create_app`): TLS handshake
    and request head within `header_timeout_s` (also the idle time of a kept-alive connection), body within
    `body_timeout_s`, at most `max_connections` at once.
    """
    state = app.get(_STATE)
    settings = state.settings if state is not None else WebhookSettings()
    # Access logs cost more than an admission; outcomes and latency are in /metrics instead. aiohttp's keep-alive
    # timer starts when a connection is handed over and after every answer, and bytes trickling in do not extend it:
    # that makes it the request head's deadline. A body left unread is drained for at most body_timeout_s.
    runner = web.AppRunner(
        app,
        access_log=None,
        shutdown_timeout=5.0,
        keepalive_timeout=settings.header_timeout_s,
        lingering_time=settings.body_timeout_s,
    )
    await runner.setup()
    site = _BoundedSite(
        runner,
        host=host,
        port=port,
        ssl_context=ssl_context,
        handshake_timeout_s=settings.header_timeout_s,
        max_connections=settings.max_connections,
    )
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    if state is not None:
        state.metrics.connections.set_function(lambda: site.held)
    return runner, site.port
