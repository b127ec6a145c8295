"""Fixtures for the webhook tests: sample reviews, the AdmissionReview schema, profiles, settings and certificates,
and the simulated cluster (with a KubeClient and kubectl on it) for the end-to-end tests."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import pytest_asyncio
from kubernetes_asyncio.client import ApiClient
from referencing import Registry, Resource

from aihpa.k8s import KubeClient, RetrySettings
from aihpa.profiles import InMemoryProfileSource, ReplicaProfile
from aihpa.sim.testing import *  # noqa: F403 - the shared cluster fixtures, found by name
from aihpa.webhook.certs import CertificateAuthority, ServingCert, generate
from aihpa.webhook.settings import WebhookSettings

ROOT = Path(__file__).resolve().parents[2]
WEBHOOKS = ROOT / "webhooks"
FIXTURES = WEBHOOKS / "fixtures"
SCHEMA_PATH = WEBHOOKS / "schemas" / "admissionreview-v1.json"
# A Kubernetes version whose schemas kubernetes-validate ships.
K8S_VERSION = "1.33.0"

# 2026-11-24 13:50 UTC: slot 55 of 96 (13:45-14:00).
NOW = 1_795_528_200.0
SLOT_AT_NOW = 55


def load_fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return data


def _validator(definition: str) -> jsonschema.Draft202012Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    registry: Registry[Any] = Registry().with_resource(schema["$id"], Resource.from_contents(schema))
    return jsonschema.Draft202012Validator({"$ref": f"{schema['$id']}#/$defs/{definition}"}, registry=registry)


REQUEST_SCHEMA = _validator("RequestReview")
RESPONSE_SCHEMA = _validator("ResponseReview")
PATCH_SCHEMA = _validator("JSONPatch")


def validate_deployment(obj: dict[str, Any]) -> None:
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def profile(
    *, namespace: str = "shop", name: str = "web", app: str | None = "web", peak: int = 12, generated_at: float = NOW
) -> ReplicaProfile:
    """A day of 96 slots: `peak` replicas from 13:00 to 15:00 UTC, 2 otherwise."""
    replicas = tuple(peak if 52 <= slot < 60 else 2 for slot in range(96))
    return ReplicaProfile(
        namespace=namespace,
        name=name,
        app=app,
        replicas=replicas,
        model_version="bilstm-2026.11.1",
        generated_at=generated_at,
    )


@pytest.fixture
def settings() -> WebhookSettings:
    return WebhookSettings(model_version="bilstm-2026.11.2")


@pytest.fixture
def profiles() -> InMemoryProfileSource:
    return InMemoryProfileSource([profile(), profile(name="checkout-v1", app="checkout", peak=7)])


@pytest.fixture
def fixture() -> Callable[[str], dict[str, Any]]:
    return lambda name: copy.deepcopy(load_fixture(name))


@pytest.fixture(scope="session")
def pki() -> tuple[CertificateAuthority, ServingCert]:
    """A CA and a serving certificate for aihpa-webhook.aihpa and 127.0.0.1, made once per run.

    Valid both at the tests' fixed virtual NOW and at the real time (real TLS handshakes check the latter)."""
    start, end = min(NOW, time.time()), max(NOW, time.time())
    return generate(service="aihpa-webhook", namespace="aihpa", now=start, ips=["127.0.0.1"],
                    lifetime_s=end - start + 365 * 86_400)


@pytest_asyncio.fixture
async def kube(sim_api_client: ApiClient) -> AsyncIterator[KubeClient]:
    """A KubeClient on the simulated cluster, with tiny real-time backoffs so injected faults retry fast."""
    yield KubeClient(sim_api_client, retry=RetrySettings(backoff=(0.01, 0.01, 0.01), max_retry_after=1.0))
