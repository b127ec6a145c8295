"""Admission: which reviews are mutated, what the patch writes, warnings for bad values, and idempotence."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from aihpa.annotations import PolicyDefaults
from aihpa.profiles import InMemoryProfileSource
from aihpa.webhook import jsonpatch
from aihpa.webhook.admission import MalformedReview, decode_patch, decode_review, fail_open, review
from aihpa.webhook.settings import WebhookSettings
from aihpa.webhook.types import AdmissionReview
from tests.webhook.conftest import (
    NOW,
    REQUEST_SCHEMA,
    RESPONSE_SCHEMA,
    load_fixture,
    profile,
    validate_deployment,
)

Fixture = Callable[[str], dict[str, Any]]
FIXTURE_NAMES = [
    "create-labeled",
    "create-labeled-invalid-annotations",
    "create-unlabeled",
    "update-adds-label",
    "non-deployment",
]


def run(
    body: dict[str, Any], settings: WebhookSettings, profiles: InMemoryProfileSource, *, now: float = NOW
) -> tuple[AdmissionReview, dict[str, Any]]:
    """The review's answer (schema-checked) and the admitted object after its patch."""
    assert not list(REQUEST_SCHEMA.iter_errors(body))
    answer = review(body, settings=settings, profiles=profiles, now=now)
    assert not list(RESPONSE_SCHEMA.iter_errors(answer)), list(RESPONSE_SCHEMA.iter_errors(answer))
    response = answer["response"]
    assert response["uid"] == body["request"]["uid"]
    assert response["allowed"] is True
    patched = jsonpatch.apply(body["request"]["object"], decode_patch(response))
    return answer, patched


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_every_sample_review_is_a_valid_request(name: str) -> None:
    assert not list(REQUEST_SCHEMA.iter_errors(load_fixture(name)))
    decode_review(load_fixture(name))


def test_a_labeled_deployment_on_create_gets_every_annotation_and_the_forecast(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    answer, patched = run(fixture("create-labeled"), settings, profiles)
    response = answer["response"]
    assert response["patchType"] == "JSONPatch"
    assert "warnings" not in response
    annotations = patched["metadata"]["annotations"]
    assert annotations == {
        "team": "storefront",
        "aihpa/min-replicas": "1",
        "aihpa/max-replicas": "20",
        "aihpa/target-utilization": "0.7",
        "aihpa/mode": "predictive",
        "aihpa/scale-down-stabilization": "0",
        "aihpa/saturation-risk": "0.01",
        "aihpa/managed": "true",
        "aihpa/model-version": "bilstm-2026.11.1",
        "aihpa/initial-forecast": annotations["aihpa/initial-forecast"],
        "aihpa/requested-replicas": "2",
    }
    assert json.loads(annotations["aihpa/initial-forecast"]) == {
        "replicas": 12,
        "forecast": 12,
        "profile": "shop/web",
        "matchedBy": "name",
        "slot": "13:45",
        "reason": "forecast for 13:45 UTC",
    }
    assert patched["spec"]["replicas"] == 12
    validate_deployment(patched)


def test_the_patch_touches_only_aihpa_keys_and_replicas_with_escaped_paths(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    answer, _ = run(fixture("create-labeled"), settings, profiles)
    paths = {op["path"] for op in decode_patch(answer["response"])}
    assert "/spec/replicas" in paths
    assert "/metadata/annotations/aihpa~1mode" in paths
    assert all(p == "/spec/replicas" or p.startswith("/metadata/annotations/aihpa~1") for p in paths)
    # the user's own value is already canonical, so it is not rewritten
    assert "/metadata/annotations/aihpa~1max-replicas" not in paths


@pytest.mark.parametrize("name", ["create-unlabeled", "non-deployment"])
def test_reviews_that_are_not_opted_in_deployments_are_allowed_unchanged(
    name: str, fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    answer, _ = run(fixture(name), settings, profiles)
    assert answer["response"] == {"uid": load_fixture(name)["request"]["uid"], "allowed": True}


def test_an_update_that_adds_the_label_gets_annotations_but_keeps_its_replicas(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    body = fixture("update-adds-label")
    _, patched = run(body, settings, profiles)
    annotations = patched["metadata"]["annotations"]
    assert annotations["aihpa/managed"] == "true"
    assert annotations["aihpa/requested-replicas"] == "3"
    assert annotations["aihpa/model-version"] == "bilstm-2026.11.2"
    assert json.loads(annotations["aihpa/initial-forecast"]) == {
        "reason": "existing Deployment: the controller scales it"
    }
    assert patched["spec"]["replicas"] == 3
    validate_deployment(patched)


def test_an_update_of_an_already_labeled_deployment_is_left_alone(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    body = fixture("update-adds-label")
    body["request"]["oldObject"]["metadata"]["labels"]["aihpa/enabled"] = "true"
    answer, _ = run(body, settings, profiles)
    assert "patch" not in answer["response"]


@pytest.mark.parametrize("operation", ["DELETE", "CONNECT"])
def test_other_operations_are_allowed_unchanged(
    operation: str, fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    body = fixture("create-labeled")
    body["request"]["operation"] = operation
    answer, _ = run(body, settings, profiles)
    assert "patch" not in answer["response"]


def test_a_scale_subresource_request_is_left_alone(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    body = fixture("create-labeled")
    body["request"]["subResource"] = "scale"
    answer, _ = run(body, settings, profiles)
    assert "patch" not in answer["response"]


def test_invalid_annotations_become_warnings_and_defaults(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    answer, patched = run(fixture("create-labeled-invalid-annotations"), settings, profiles)
    warnings = answer["response"]["warnings"]
    assert warnings == [
        "aihpa: aihpa/min-replicas='zero' must be a whole number >= 1; using default 1",
        "aihpa: aihpa/target-utilization='1.5' must be a number in (0, 1]; using default 0.7",
        "aihpa: aihpa/mode='turbo' must be one of predictive, reactive, dry-run; using default predictive",
        "aihpa: aihpa/scale-down-stabilization='-5' must be whole seconds in 0..3600; using default 0",
        "aihpa: aihpa/saturation-risk='1%' must be a number in (0, 0.5]; using default 0.01",
        "aihpa: unknown annotation aihpa/max-replica is ignored",
    ]
    annotations = patched["metadata"]["annotations"]
    assert annotations["aihpa/min-replicas"] == "1"
    assert annotations["aihpa/target-utilization"] == "0.7"
    assert annotations["aihpa/mode"] == "predictive"
    assert annotations["aihpa/saturation-risk"] == "0.01"
    assert annotations["aihpa/max-replica"] == "10"  # the user's unknown key stays: aihpa never deletes user data
    # no profile for "checkout" by name; found by its app.kubernetes.io/name label instead
    forecast = json.loads(annotations["aihpa/initial-forecast"])
    assert forecast["matchedBy"] == "app.kubernetes.io/name" and forecast["profile"] == "shop/checkout-v1"
    assert patched["spec"]["replicas"] == 7
    validate_deployment(patched)


@pytest.mark.parametrize("name", ["create-labeled", "create-labeled-invalid-annotations", "update-adds-label"])
@pytest.mark.parametrize("later", [0.0, 900.0, 6 * 3600.0])
def test_reinvocation_on_the_mutated_object_changes_nothing_even_in_a_later_slot(
    name: str, later: float, fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    body = fixture(name)
    _, patched = run(body, settings, profiles)
    body["request"]["object"] = patched
    again, _ = run(body, settings, profiles, now=NOW + later)
    assert "patch" not in again["response"]


# (labels/annotations edits, profiles, expected replicas, expected reason fragment)
REPLICA_CASES: list[tuple[str, dict[str, str], list[Any], int, str]] = [
    ("clamped to max", {"aihpa/max-replicas": "5"}, [profile(peak=12)], 5, "clamped to 1..5"),
    ("clamped to min", {"aihpa/min-replicas": "15", "aihpa/max-replicas": "30"}, [profile(peak=12)], 15, "to 15..30"),
    ("no profile", {}, [], 2, "no replica profile for shop/web or its app label"),
    (
        "stale profile",
        {},
        [profile(generated_at=NOW - 30 * 86_400)],
        2,
        "replica profile shop/web is stale (720 h old)",
    ),
    ("dry-run", {"aihpa/mode": "dry-run"}, [profile(peak=12)], 2, "mode dry-run: would set 12 replicas"),
    ("reactive", {"aihpa/mode": "reactive"}, [profile(peak=12)], 2, "mode reactive: no forecast"),
    ("zero forecast", {}, [profile(peak=0)], 1, "clamped to 1..20"),
]


@pytest.mark.parametrize(("case", "annotations", "known", "replicas", "reason"), REPLICA_CASES)
def test_initial_replicas_follow_the_profile_within_bounds_or_say_why_not(
    case: str,
    annotations: dict[str, str],
    known: list[Any],
    replicas: int,
    reason: str,
    fixture: Fixture,
    settings: WebhookSettings,
) -> None:
    body = fixture("create-labeled")
    body["request"]["object"]["metadata"]["annotations"].update(annotations)
    _, patched = run(body, settings, InMemoryProfileSource(known))
    assert patched["spec"]["replicas"] == replicas, case
    assert reason in json.loads(patched["metadata"]["annotations"]["aihpa/initial-forecast"])["reason"]
    validate_deployment(patched)


def test_without_a_profile_the_model_version_is_the_servings_and_replicas_stay_as_typed(
    fixture: Fixture, settings: WebhookSettings
) -> None:
    _, patched = run(fixture("create-labeled"), settings, InMemoryProfileSource())
    assert patched["metadata"]["annotations"]["aihpa/model-version"] == "bilstm-2026.11.2"
    assert patched["spec"]["replicas"] == 2


def test_an_unset_replicas_is_recorded_and_a_generated_name_finds_its_profile_by_the_app_label(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    body = fixture("create-labeled")
    obj = body["request"]["object"]
    del obj["spec"]["replicas"]
    del obj["metadata"]["name"]
    obj["metadata"]["generateName"] = "web-"
    body["request"]["name"] = ""
    _, patched = run(body, settings, profiles)
    assert patched["metadata"]["annotations"]["aihpa/requested-replicas"] == "unset"
    assert json.loads(patched["metadata"]["annotations"]["aihpa/initial-forecast"])["matchedBy"] == (
        "app.kubernetes.io/name"
    )
    assert patched["spec"]["replicas"] == 12


def test_the_plain_app_label_is_tried_after_the_recommended_one(fixture: Fixture, settings: WebhookSettings) -> None:
    body = fixture("create-labeled")
    body["request"]["object"]["metadata"]["name"] = "web-canary"
    body["request"]["object"]["metadata"]["labels"] = {"app": "web", "aihpa/enabled": "true"}
    _, patched = run(body, settings, InMemoryProfileSource([profile(name="web-main", app="web")]))
    assert json.loads(patched["metadata"]["annotations"]["aihpa/initial-forecast"])["matchedBy"] == "app"


def test_a_deployment_without_annotations_gets_the_whole_map_added(
    fixture: Fixture, settings: WebhookSettings, profiles: InMemoryProfileSource
) -> None:
    body = fixture("create-labeled")
    del body["request"]["object"]["metadata"]["annotations"]
    answer, patched = run(body, settings, profiles)
    first = decode_patch(answer["response"])[0]
    assert (first["op"], first["path"]) == ("add", "/metadata/annotations")
    validate_deployment(patched)


def test_chart_defaults_reach_the_annotations(fixture: Fixture, profiles: InMemoryProfileSource) -> None:
    settings = WebhookSettings(defaults=PolicyDefaults(min_replicas=2, max_replicas=8, mode="dry-run"))
    body = fixture("create-labeled")
    body["request"]["object"]["metadata"]["annotations"] = {}
    _, patched = run(body, settings, profiles)
    annotations = patched["metadata"]["annotations"]
    assert (annotations["aihpa/min-replicas"], annotations["aihpa/max-replicas"]) == ("2", "8")
    assert annotations["aihpa/mode"] == "dry-run"
    assert patched["spec"]["replicas"] == 2


@pytest.mark.parametrize(
    ("metadata_edit", "warning"),
    [({"annotations": {"aihpa/mode": 3}}, "metadata.annotations is not a map of strings")],
)
def test_an_object_that_cannot_be_annotated_is_allowed_unchanged_with_a_warning(
    metadata_edit: dict[str, Any],
    warning: str,
    fixture: Fixture,
    settings: WebhookSettings,
    profiles: InMemoryProfileSource,
) -> None:
    body = fixture("create-labeled")
    body["request"]["object"]["metadata"].update(metadata_edit)
    answer = review(body, settings=settings, profiles=profiles, now=NOW)
    assert "patch" not in answer["response"]
    assert answer["response"]["warnings"] == [f"aihpa: {warning}"]


# (edit to a valid review, fragment of the error)
MALFORMED: list[tuple[Callable[[dict[str, Any]], Any], str]] = [
    (lambda b: b.clear(), "apiVersion must be 'admission.k8s.io/v1'"),
    (lambda b: b.update(apiVersion="admission.k8s.io/v1beta1"), "apiVersion must be"),
    (lambda b: b.update(kind="Review"), "kind must be 'AdmissionReview'"),
    (lambda b: b.pop("request"), "AdmissionReview.request is required"),
    (lambda b: b.update(request=[]), "AdmissionReview.request must be an object"),
    (lambda b: b["request"].pop("uid"), "request.uid is required"),
    (lambda b: b["request"].update(uid=""), "request.uid must not be empty"),
    (lambda b: b["request"].update(uid=7), "request.uid must be a string"),
    (lambda b: b["request"]["kind"].pop("kind"), "request.kind.kind is required"),
    (lambda b: b["request"].update(resource="deployments"), "request.resource must be an object"),
    (lambda b: b["request"].update(operation="PATCH"), "request.operation must be one of"),
    (lambda b: b["request"].update(object="x"), "request.object must be an object"),
    (lambda b: b["request"].update(namespace=1), "request.namespace must be a string"),
    (lambda b: b["request"].update(dryRun="no"), "request.dryRun must be a boolean"),
]


@pytest.mark.parametrize(("edit", "message"), MALFORMED)
def test_a_body_that_is_not_a_review_is_refused_with_the_field_named(
    edit: Callable[[dict[str, Any]], Any], message: str, fixture: Fixture
) -> None:
    body = fixture("create-labeled")
    edit(body)
    with pytest.raises(MalformedReview, match=message.replace("(", r"\(")):
        decode_review(body)


@pytest.mark.parametrize("body", [None, [], "review", 3])
def test_a_body_that_is_not_an_object_is_refused(body: object) -> None:
    with pytest.raises(MalformedReview, match="must be a JSON object"):
        decode_review(body)


def test_the_malformed_sample_is_refused() -> None:
    with pytest.raises(MalformedReview, match=r"request\.uid is required"):
        decode_review(load_fixture("malformed"))


def test_fail_open_allows_with_one_short_warning() -> None:
    answer = fail_open("abc", "internal error " + "x" * 300)
    assert not list(RESPONSE_SCHEMA.iter_errors(answer))
    assert answer["response"]["allowed"] is True
    assert len(answer["response"]["warnings"][0]) <= 120
