"""The plain manifests in webhooks/: valid for the API server, and set so that aihpa can never block a deploy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from aihpa.webhook.settings import WebhookSettings
from tests.webhook.conftest import FIXTURES, K8S_VERSION, REQUEST_SCHEMA, SCHEMA_PATH, WEBHOOKS


def _manifest(name: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((WEBHOOKS / name).read_text())
    return data


@pytest.mark.parametrize("path", sorted(WEBHOOKS.glob("*.yaml")), ids=lambda p: Path(p).name)
def test_each_manifest_passes_strict_validation(path: Path) -> None:
    kubernetes_validate.validate(yaml.safe_load(path.read_text()), K8S_VERSION, strict=True)


def test_the_webhook_sees_only_labeled_deployments_and_never_blocks() -> None:
    (hook,) = _manifest("mutatingwebhookconfiguration.yaml")["webhooks"]
    assert hook["admissionReviewVersions"] == ["v1"]
    assert hook["sideEffects"] == "None"
    assert hook["failurePolicy"] == "Ignore"
    assert hook["reinvocationPolicy"] == "IfNeeded"
    assert hook["objectSelector"] == {"matchLabels": {"aihpa/enabled": "true"}}
    assert hook["namespaceSelector"]["matchExpressions"] == [
        {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system", "aihpa"]}
    ]
    assert hook["rules"] == [
        {
            "apiGroups": ["apps"],
            "apiVersions": ["v1"],
            "resources": ["deployments"],
            "operations": ["CREATE", "UPDATE"],
            "scope": "Namespaced",
        }
    ]
    service = hook["clientConfig"]["service"]
    assert (service["name"], service["namespace"], service["path"]) == ("aihpa-webhook", "aihpa", "/mutate")
    # The server's answer budget sits under the API server's timeout.
    assert WebhookSettings().answer_within_s < hook["timeoutSeconds"] <= 30


def test_the_service_routes_to_the_webhook_port() -> None:
    service = _manifest("service.yaml")
    hook = _manifest("mutatingwebhookconfiguration.yaml")["webhooks"][0]["clientConfig"]["service"]
    assert service["metadata"]["name"] == hook["name"] and service["metadata"]["namespace"] == hook["namespace"]
    assert service["spec"]["ports"][0]["port"] == hook["port"]
    assert service["spec"]["ports"][0]["targetPort"] == 8443


def test_the_admission_review_schema_is_itself_valid() -> None:
    jsonschema.Draft202012Validator.check_schema(json.loads(SCHEMA_PATH.read_text()))


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: Path(p).name)
def test_every_sample_review_but_the_malformed_one_matches_the_schema(path: Path) -> None:
    errors = list(REQUEST_SCHEMA.iter_errors(json.loads(path.read_text())))
    assert bool(errors) is (path.stem == "malformed")


@pytest.mark.parametrize("path", sorted(FIXTURES.glob("*.json")), ids=lambda p: Path(p).name)
def test_every_sample_deployment_is_a_valid_deployment(path: Path) -> None:
    obj = json.loads(path.read_text())["request"].get("object")
    if isinstance(obj, dict) and obj.get("kind") == "Deployment":
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
