"""`Cluster`: a simulated Kubernetes API server on 127.0.0.1, started and stopped as an async context manager.

It wires the store, the REST semantics, admission, the workload model, the HPA controller and the HTTP server
together, and hands out what clients need: a URL, a kubeconfig (for kubectl and kubernetes-asyncio, unchanged) and,
for in-process tests, the virtual clock and fault injection. Certificates live in a temporary directory owned by the
cluster; nothing is written anywhere else unless asked (`write_kubeconfig`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from aihpa.clock import Clock, VirtualClock
from aihpa.sim.admission import Admission, ServiceResolver
from aihpa.sim.api import Api
from aihpa.sim.errors import ApiError
from aihpa.sim.faults import Faults
from aihpa.sim.hpa import HorizontalPodAutoscalers
from aihpa.sim.resources import Registry
from aihpa.sim.server import Server, ServerSettings, build_app
from aihpa.sim.store import Store
from aihpa.sim.tls import CertPair, make_ca, make_server_cert
from aihpa.sim.types import Obj
from aihpa.sim.workload import DEFAULT_POD_CAPACITY, Demand, TraceDemand, Workloads
from aihpa.traces import Trace

if TYPE_CHECKING:
    from kubernetes_asyncio.client import ApiClient

__all__ = ["TOKEN", "Cluster"]

logger = logging.getLogger(__name__)

#: The bearer token the kubeconfig carries; the simulated server accepts any credentials.
TOKEN = "aihpa-sim-token"


class Cluster:
    """A simulated cluster. `async with Cluster() as cluster:` serves it until the block ends.

    `clock` defaults to a stepped `VirtualClock` starting at the current wall-clock time: pods become ready only when
    the test advances it (`await cluster.advance(seconds)`). Pass `VirtualClock(speed=60)` to replay 60x, or a
    `SystemClock`. `startup_delay` is the virtual seconds from pod creation to Ready. `service_resolver` maps a
    webhook's service (namespace, name, port) to the (host, port) where it listens. `settings` tunes watch
    bookmarks and timeouts (real seconds). `pod_capacity` is how many pods the cluster schedules; pods beyond it stay
    Pending (unschedulable) until room frees up, and at most `max_pending_pods` of them exist (default: as many as
    `pod_capacity`); a Deployment asking for more gets a ReplicaFailure condition.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        tls: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_delay: float = 5.0,
        service_resolver: ServiceResolver | None = None,
        settings: ServerSettings | None = None,
        history: int = 50_000,
        seed: int = 0,
        pod_capacity: int = DEFAULT_POD_CAPACITY,
        max_pending_pods: int | None = None,
    ) -> None:
        self.clock: Clock = clock if clock is not None else VirtualClock(start=float(int(time.time())))
        self.tls = tls
        self.host = host
        self._port = port
        self.registry = Registry()
        self.store = Store(now=self.clock.now, history=history)
        self.admission = Admission(store=self.store, registry=self.registry, resolver=service_resolver)
        self.api = Api(store=self.store, registry=self.registry, admission=self.admission)
        self.workloads = Workloads(store=self.store, registry=self.registry, clock=self.clock,
                                   startup_delay=startup_delay, seed=seed, pod_capacity=pod_capacity,
                                   max_pending_pods=max_pending_pods)
        self.hpas = HorizontalPodAutoscalers(store=self.store, registry=self.registry, workloads=self.workloads,
                                             clock=self.clock)
        self.faults = Faults()
        self.settings = settings or ServerSettings()
        self.server = Server(api=self.api, store=self.store, registry=self.registry, workloads=self.workloads,
                             faults=self.faults, clock=self.clock, settings=self.settings)
        self._runner: web.AppRunner | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._pods_task: asyncio.Task[None] | None = None
        self._hpa_task: asyncio.Task[None] | None = None
        self.ca: CertPair | None = None

    # ---- lifecycle --------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("cluster already started")
        self._tmp = tempfile.TemporaryDirectory(prefix="aihpa-sim-")
        ssl_ctx = None
        if self.tls:
            import ssl

            self.ca = make_ca()
            server_cert = make_server_cert(self.ca, [self.host, "localhost", "127.0.0.1", "kubernetes.default.svc"])
            cert_file = Path(self._tmp.name, "server.crt")
            key_file = Path(self._tmp.name, "server.key")
            ssl_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            chain = server_cert.cert_pem + self.ca.cert_pem
            # small local files in the cluster's own temporary directory: not worth a thread
            cert_file.write_bytes(chain)  # noqa: ASYNC240
            key_file.write_bytes(server_cert.key_pem)  # noqa: ASYNC240
            ssl_ctx.load_cert_chain(cert_file, key_file)
        # handler_cancellation: a watch whose client went away ends at once instead of at its next write
        self._runner = web.AppRunner(build_app(self.server), access_log=None, shutdown_timeout=1.0,
                                     handle_signals=False, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port, ssl_context=ssl_ctx)
        await site.start()
        self._port = int(self._runner.addresses[0][1])
        self._pods_task = asyncio.create_task(self.workloads.run(), name="aihpa-sim-pods")
        self._hpa_task = asyncio.create_task(self.hpas.run(), name="aihpa-sim-hpa")

    async def stop(self) -> None:
        self.server.closing.set()
        self.store.close_watchers()
        for task in (self._pods_task, self._hpa_task):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._pods_task = self._hpa_task = None
        self.workloads.close()
        await self.admission.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    async def __aenter__(self) -> Cluster:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # ---- addresses and credentials ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self._port}"

    def kubeconfig(self, *, context: str = "aihpa-sim", namespace: str = "default") -> Obj:
        """A kubeconfig (as a dict) that kubectl and kubernetes-asyncio use as is."""
        cluster: Obj = {"server": self.url}
        if self.ca is not None:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca.cert_pem).decode()
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": context, "cluster": cluster}],
            "users": [{"name": context, "user": {"token": TOKEN}}],
            "contexts": [{"name": context, "context": {"cluster": context, "user": context, "namespace": namespace}}],
            "current-context": context,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path, **kwargs: Any) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(yaml.safe_dump(self.kubeconfig(**kwargs), sort_keys=False), encoding="utf-8")
        p.chmod(0o600)
        return p

    def register_service(self, namespace: str, name: str, host: str, port: int) -> None:
        """Where the webhook service `name.namespace.svc` really listens (the sim has no cluster network)."""
        self.admission.services[(namespace, name)] = (host, port)

    async def api_client(self) -> ApiClient:
        """A kubernetes-asyncio ApiClient configured from this cluster's kubeconfig; close it (`async with`)."""
        from kubernetes_asyncio import client, config

        configuration = client.Configuration()
        await config.load_kube_config_from_dict(self.kubeconfig(), client_configuration=configuration)
        return client.ApiClient(configuration=configuration)

    # ---- workload and time --------------------------------------------------------------------------------------

    def register_trace(
        self, name: str, demand: Trace | Demand, *, scale: float = 1.0, step_s: float | None = None,
        start: float | None = None, interval_s: float | None = None,
    ) -> None:
        """Make a trace (or a function of virtual time giving CPU cores) available to Deployments annotated
        `sim.aihpa.io/trace: <name>`. A trace's sample 0 plays at `start` (default: now) and sample i `step_s` later
        each (default: the trace's own step, else the model step); `scale` turns its unit into cores. `interval_s` is
        the deprecated name of `step_s`."""
        self.workloads.register_trace(name, self._demand(demand, scale=scale, step_s=step_s or interval_s,
                                                         start=start))

    def attach(
        self, namespace: str, name: str, demand: Trace | Demand | None, *, scale: float = 1.0,
        step_s: float | None = None, start: float | None = None, interval_s: float | None = None,
    ) -> None:
        """Drive one Deployment's demand (before or after it exists), as `register_trace` plays it; None detaches."""
        self.workloads.attach(namespace, name, None if demand is None else self._demand(
            demand, scale=scale, step_s=step_s or interval_s, start=start))

    def _demand(self, demand: Trace | Demand, *, scale: float, step_s: float | None, start: float | None) -> Demand:
        if isinstance(demand, Trace):
            return TraceDemand(demand, scale=scale, step_s=step_s, start=self.clock.now() if start is None else start)
        if scale == 1.0:
            return demand
        return lambda t: demand(t) * scale

    async def advance(self, seconds: float) -> None:
        """Move a stepped virtual clock forward (waking sleepers in order) and let the cluster catch up."""
        if not isinstance(self.clock, VirtualClock):
            raise TypeError("advance() needs a VirtualClock")
        await self.clock.run_for(seconds)
        self.workloads.start_due_pods()
        for _ in range(5):
            await asyncio.sleep(0)

    @property
    def in_flight(self) -> int:
        """Requests being served right now (open watches included)."""
        return self.server.in_flight

    async def quiesce(self, *, limit_s: float = 5.0) -> None:
        """Wait until no request is being served, e.g. until the server has noticed that watch clients left.

        Call it at the end of a test that opened watches: the server's handler tasks outlive the client's close by a
        few loop turns. Raises TimeoutError after `limit_s` real seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        turns = 0
        while self.server.in_flight:
            if loop.time() > deadline:
                raise TimeoutError(f"{self.server.in_flight} request(s) still in flight after {limit_s} s")
            turns += 1
            # yield first (most handlers end within a few turns), then poll gently
            await asyncio.sleep(0 if turns < 50 else 0.01)
        for _ in range(3):
            await asyncio.sleep(0)

    def compact(self) -> None:
        """Drop all watch history: any watch resumed from an older resourceVersion gets 410 Expired."""
        self.store.compact()

    # ---- in-process object access (no HTTP) -------------------------------------------------------------------

    async def create(self, obj: Obj) -> Obj:
        """Create an object as a client would (defaults, admission, validation); returns the stored object."""
        rt = self.api.resolve(str(obj.get("apiVersion", "")), str(obj.get("kind", "")))
        ns = (obj.get("metadata") or {}).get("namespace") or ("default" if rt.namespaced else None)
        return (await self.api.create(rt, obj, namespace=ns)).obj

    async def scale(self, name: str, replicas: int, *, namespace: str = "default") -> Obj:
        """Set a Deployment's replicas through its Scale subresource, as an autoscaler would; returns the Scale."""
        rt = self.api.resolve("apps/v1", "Deployment")
        result = await self.api.patch(rt, {"spec": {"replicas": replicas}}, patch_type="application/merge-patch+json",
                                      namespace=namespace, name=name, subresource="scale")
        return result.obj

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Obj | None:
        rt = self.api.resolve(api_version, kind)
        return self.store.get(rt, namespace or ("default" if rt.namespaced else ""), name)

    def list(self, api_version: str, kind: str, namespace: str | None = None) -> list[Obj]:
        rt = self.api.resolve(api_version, kind)
        return self.store.list(rt, namespace=namespace, labels=None, fields=None)[0]

    async def ensure_namespace(self, name: str, *, labels: dict[str, str] | None = None) -> Obj:
        try:
            return await self.create({"apiVersion": "v1", "kind": "Namespace",
                                      "metadata": {"name": name, "labels": labels or {}}})
        except ApiError as err:
            if err.code != 409:
                raise
            found = self.get("v1", "Namespace", name)
            assert found is not None
            return found
