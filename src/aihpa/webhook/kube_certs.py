"""Webhook certificates in a live cluster: the TLS Secret, and the caBundle of the webhook configuration.

`aihpa certs generate --kubeconfig` and `aihpa certs inject-ca-bundle --name` use these through `aihpa.k8s`. Both
are read-modify-write with the object's resourceVersion, retried on 409, so a concurrent writer (a second replica, a
GitOps tool, cert-manager's injector) is never silently overwritten with stale data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from aihpa.k8s.client import KubeClient
from aihpa.k8s.errors import ConflictError, NotFoundError
from aihpa.webhook.certs import inject_ca_bundle

__all__ = ["WEBHOOK_CONFIG_PATHS", "apply_secret", "inject_ca_bundle_live"]

log = logging.getLogger(__name__)

WEBHOOK_CONFIG_PATHS = {
    "MutatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
    "ValidatingWebhookConfiguration": "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations",
}
# Each attempt re-reads the object, so a few are plenty unless something rewrites it in a tight loop.
_ATTEMPTS = 5


async def inject_ca_bundle_live(
    kube: KubeClient,
    *,
    name: str,
    ca_pem: bytes,
    kind: str = "MutatingWebhookConfiguration",
    webhook_names: Iterable[str] | None = None,
    attempts: int = _ATTEMPTS,
) -> dict[str, Any]:
    """Set `caBundle` on the webhooks of the live configuration `name`; returns the stored object.

    A merge patch replaces a list whole and a JSON patch addresses items by index, which shifts if someone edits the
    list meanwhile; so: read, set caBundle on each webhook, PUT back with the resourceVersion read, and on 409 read
    again. Raises NotFoundError if there is no such configuration, ConflictError if every attempt lost a race.
    """
    try:
        collection = WEBHOOK_CONFIG_PATHS[kind]
    except KeyError:
        raise ValueError(f"kind must be one of {sorted(WEBHOOK_CONFIG_PATHS)}, got {kind!r}") from None
    path = f"{collection}/{name}"
    wanted = list(webhook_names) if webhook_names is not None else None
    for attempt in range(1, attempts + 1):
        current = await kube.get(path)
        updated = inject_ca_bundle(current, ca_pem, webhook_names=wanted)
        if updated == current:
            return dict(current)  # already carries this CA: no write, no new resourceVersion
        try:
            stored: dict[str, Any] = await kube.request("PUT", path, body=updated)
        except ConflictError:
            log.info("%s %s changed while injecting the CA bundle (attempt %d); reading it again", kind, name, attempt)
            continue
        return stored
    raise ConflictError(f"{kind} {name} kept changing; gave up after {attempts} attempts", status=409)


async def apply_secret(kube: KubeClient, secret: Mapping[str, Any], *, attempts: int = _ATTEMPTS) -> dict[str, Any]:
    """Create the Secret, or replace the data of the one that exists; returns the stored object.

    An existing Secret keeps its other metadata (labels, annotations added by others, owner references); only its
    `type`, `data` and our labels are set.
    """
    metadata = secret["metadata"]
    namespace, name = metadata["namespace"], metadata["name"]
    collection = f"/api/v1/namespaces/{namespace}/secrets"
    for attempt in range(1, attempts + 1):
        try:
            current = await kube.get(f"{collection}/{name}")
        except NotFoundError:
            try:
                created: dict[str, Any] = await kube.request("POST", collection, body=dict(secret))
            except ConflictError:  # created by someone else in between: update that one
                continue
            return created
        if current.get("type") != secret.get("type"):
            # The API server refuses to change a Secret's type; say so rather than fail on a 422.
            raise ValueError(
                f"Secret {namespace}/{name} exists with type {current.get('type')!r}, not {secret.get('type')!r}"
            )
        current.pop("stringData", None)
        current["data"] = dict(secret.get("data") or {})
        labels = current.setdefault("metadata", {}).get("labels") or {}
        current["metadata"]["labels"] = {**labels, **(metadata.get("labels") or {})}
        try:
            replaced: dict[str, Any] = await kube.request("PUT", f"{collection}/{name}", body=current)
        except ConflictError:
            log.info("Secret %s/%s changed while updating it (attempt %d); reading it again", namespace, name, attempt)
            continue
        return replaced
    raise ConflictError(f"Secret {namespace}/{name} kept changing; gave up after {attempts} attempts", status=409)
