"""Fixtures for the Helm chart's tests: the chart rendered and linted by the real Helm engine (helm-python-sdk embeds
Helm's Go SDK; nothing is contacted), strict schema validation, and kubectl on the simulated cluster."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from aihpa.sim.testing import *  # noqa: F403 - the shared cluster fixtures, found by name

helm = pytest.importorskip("helm_python", reason="the dev extra helm-python-sdk renders the chart")

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "aihpa"
RELEASE, NAMESPACE = "aihpa", "aihpa"

#: The Kubernetes versions the chart supports, oldest and newest; kubernetes-validate ships their schemas.
SUPPORTED_VERSIONS = ("1.27.0", "1.37.0")

#: Kinds that Kubernetes does not define (CRDs of cert-manager and the Prometheus Operator): no official schema.
CUSTOM_KINDS = frozenset({"cert-manager.io/v1/Issuer", "cert-manager.io/v1/Certificate",
                          "monitoring.coreos.com/v1/ServiceMonitor"})

HOOK = "helm.sh/hook"

Obj = dict[str, Any]


@dataclass(frozen=True)
class Rendered:
    """One render of the chart: its objects in template order, and NOTES.txt."""

    objects: list[Obj]
    notes: str

    def of(self, kind: str, name: str | None = None) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]

    def one(self, kind: str, name: str | None = None) -> Obj:
        found = self.of(kind, name)
        assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    def hooks(self) -> list[Obj]:
        return [o for o in self.objects if HOOK in (o["metadata"].get("annotations") or {})]

    def manifest(self) -> str:
        """The objects, hooks included, as one multi-document YAML stream, as `helm template` prints them."""
        return yaml.safe_dump_all(self.objects, sort_keys=False)


@pytest.fixture(scope="session")
def chart() -> Iterator[Any]:
    """The chart loaded once by the Helm engine."""
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def split_documents(manifests: dict[str, str]) -> Rendered:
    objects: list[Obj] = []
    notes = ""
    for path in sorted(manifests):
        if path.endswith("NOTES.txt"):
            notes = manifests[path]
            continue
        objects.extend(doc for doc in yaml.safe_load_all(manifests[path]) if doc)
    return Rendered(objects, notes)


@pytest.fixture(scope="session")
def render(chart: Any) -> Callable[..., Rendered]:
    """Render with user values, offline (`lookup` finds nothing, as on a first install), for the Helm SDK's default
    Kubernetes version or for `kube_version`."""

    def run(
        values: Obj | None = None, *, namespace: str = NAMESPACE, name: str = RELEASE, kube_version: str | None = None
    ) -> Rendered:
        if kube_version is None:
            return split_documents(chart.render(values or {}, name=name, namespace=namespace, is_install=True))
        # As `helm template --kube-version`: the SDK's render() does not take the version, its native call does.
        options = {"name": name, "namespace": namespace, "is_install": True, "kube_version": f"v{kube_version}"}
        rendered = helm._native.call_string("helm_render", chart._raw(), json.dumps(values or {}), json.dumps(options))
        return split_documents(json.loads(rendered))

    return run


def validate_strictly(obj: Obj, version: str) -> None:
    """The official OpenAPI schema of `version`, unknown fields rejected (kubernetes-validate --strict)."""
    kubernetes_validate.validate(obj, version, strict=True)


def container_args(deployment_or_job: Obj, container: str | None = None) -> list[str]:
    containers = deployment_or_job["spec"]["template"]["spec"]["containers"]
    chosen = containers[0] if container is None else next(c for c in containers if c["name"] == container)
    return [str(a) for a in chosen.get("args") or []]
