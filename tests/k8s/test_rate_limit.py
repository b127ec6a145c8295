"""Client-side rate limits: writes pass a token bucket (qps sustained, burst at once); reads are not limited."""

from __future__ import annotations

import time

import pytest
from kubernetes_asyncio.client import ApiClient

from aihpa.k8s import KubeClient, RetrySettings
from aihpa.k8s.client import TokenBucket, write_kind
from aihpa.sim.cluster import Cluster


class FakeTime:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class Recorder:
    def __init__(self) -> None:
        self.writes: list[str] = []
        self.waits: list[float] = []

    def on_write(self, kind: str) -> None:
        self.writes.append(kind)

    def on_throttle(self, wait_s: float) -> None:
        self.waits.append(wait_s)


def test_a_burst_goes_at_once_and_the_rest_is_spread_at_the_rate() -> None:
    clock = FakeTime()
    bucket = TokenBucket(10.0, 3, now=clock)
    waits = [bucket.reserve() for _ in range(6)]
    # three tokens at once, then one every 1/qps seconds, in order
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([0.1, 0.2, 0.3])
    # after a quiet second the bucket is full again (never above its burst)
    clock.t += 10.0
    assert [bucket.reserve() for _ in range(4)] == pytest.approx([0.0, 0.0, 0.0, 0.1])


def test_half_a_second_refills_half_the_tokens_a_second_brings() -> None:
    clock = FakeTime()
    bucket = TokenBucket(4.0, 4, now=clock)
    for _ in range(4):
        bucket.reserve()
    clock.t += 0.5  # two tokens back
    assert [bucket.reserve() for _ in range(3)] == pytest.approx([0.0, 0.0, 0.25])


@pytest.mark.parametrize(("qps", "burst"), [(0.0, 10), (5.0, 0)])
def test_a_bucket_that_could_never_hand_out_a_token_is_refused(qps: float, burst: int) -> None:
    with pytest.raises(ValueError, match="token bucket"):
        TokenBucket(qps, burst)


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/apis/apps/v1/namespaces/default/deployments/web/scale", "scale"),
        ("/apis/apps/v1/namespaces/default/deployments/web", "status"),
        ("/api/v1/namespaces/default/events", "event"),
        ("/api/v1/namespaces/default/events/web.abc", "event"),
        ("/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/web", "horizontalpodautoscalers"),
        ("/api/v1/namespaces/aihpa/configmaps/profiles-0", "configmaps"),
        ("/api/v1/namespaces", "namespaces"),
        ("/api/v1/namespaces/aihpa", "namespaces"),
        ("/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/aihpa", "mutatingwebhookconfigurations"),
    ],
)
def test_each_write_is_named_by_what_it_changes(path: str, kind: str) -> None:
    assert write_kind(path) == kind


def test_a_json_patch_of_a_deployments_replicas_is_a_scale_write() -> None:
    path = "/apis/apps/v1/namespaces/default/deployments/web"
    fenced = [{"op": "test", "path": "/spec/replicas", "value": 2},
              {"op": "add", "path": "/metadata/annotations/aihpa~1actuated-step", "value": "7/a"},
              {"op": "replace", "path": "/spec/replicas", "value": 3}]
    assert write_kind(path, fenced) == "scale"
    # a test of the count alone changes nothing of it
    assert write_kind(path, fenced[:2]) == "status"
    assert write_kind(path, {"metadata": {"annotations": {"aihpa/status": "{}"}}}) == "status"


async def test_writes_beyond_the_burst_wait_for_the_rate_and_reads_do_not(
    sim_cluster: Cluster, sim_api_client: ApiClient
) -> None:
    seen = Recorder()
    kube = KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01,)), qps=50.0, burst=5, observer=seen)
    for i in range(5):  # the bucket is empty after these
        await kube.request("POST", "/api/v1/namespaces/default/configmaps",
                           body={"metadata": {"name": f"warm-{i}"}, "data": {}})
    waited = len(seen.waits)
    for _ in range(30):  # reads: never throttled, however empty the bucket
        await kube.get("/api/v1/namespaces/default/configmaps")
    assert len(seen.waits) == waited
    t0 = time.monotonic()
    for i in range(10):
        await kube.request("POST", "/api/v1/namespaces/default/configmaps",
                           body={"metadata": {"name": f"cm-{i}"}, "data": {}})
    writes_s = time.monotonic() - t0
    # the bucket held at most its 5 tokens when the 10 writes began: 5 more had to be made, at 50 a second
    assert writes_s >= 5 / 50.0
    assert seen.writes == ["configmaps"] * 15
    assert len(sim_cluster.list("v1", "ConfigMap", "default")) >= 15


async def test_an_unlimited_client_never_waits(sim_cluster: Cluster, sim_api_client: ApiClient) -> None:
    seen = Recorder()
    kube = KubeClient(sim_api_client, qps=None, observer=seen)
    for i in range(20):
        await kube.request("POST", "/api/v1/namespaces/default/configmaps",
                           body={"metadata": {"name": f"cm-{i}"}, "data": {}})
    assert seen.waits == [] and len(seen.writes) == 20
