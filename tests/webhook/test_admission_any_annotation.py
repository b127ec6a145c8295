"""Admission with any annotation values: a well-formed answer that writes each valid value and the default for each
invalid one, never a fail-open with nothing written (property-based)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aihpa.annotations import (
    ANNOTATION_MIN_REPLICAS,
    ANNOTATION_MODE,
    POLICY_KEYS,
    parse_policy,
    policy_annotations,
)
from aihpa.profiles import InMemoryProfileSource
from aihpa.webhook import jsonpatch
from aihpa.webhook.admission import decode_patch, review
from aihpa.webhook.settings import WebhookSettings
from tests.annotations.strategies import VALID, annotation_values
from tests.webhook.conftest import NOW, RESPONSE_SCHEMA, load_fixture, profile

SETTINGS = WebhookSettings(model_version="any-annotation")
PROFILES = InMemoryProfileSource([profile()])
BODY = load_fixture("create-labeled")
PROPERTY = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _admit(annotations: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    body = copy.deepcopy(BODY)
    body["request"]["object"]["metadata"]["annotations"] = annotations
    answer = review(body, settings=SETTINGS, profiles=PROFILES, now=NOW)
    assert not list(RESPONSE_SCHEMA.iter_errors(answer))
    response = answer["response"]
    assert response["allowed"] is True and response["uid"] == body["request"]["uid"]
    for warning in response.get("warnings", []):
        assert warning.startswith("aihpa: ") and len(warning) <= 120 and "admitted unchanged" not in warning
    patched = jsonpatch.apply(body["request"]["object"], decode_patch(response))
    return response, patched["metadata"]["annotations"]


@PROPERTY
@given(key=st.sampled_from(tuple(VALID)), raw=annotation_values)
def test_a_bad_value_gets_its_default_written_and_the_valid_values_beside_it_are_kept(key: str, raw: str) -> None:
    given_annotations = {**VALID, key: raw}
    _, written = _admit(given_annotations)
    expected = policy_annotations(parse_policy(given_annotations, defaults=SETTINGS.defaults).policy)
    assert {k: written[k] for k in expected} == expected
    if key != ANNOTATION_MODE:
        assert written[ANNOTATION_MODE] == "dry-run"
    assert written["aihpa/managed"] == "true"


@PROPERTY
@given(values=st.fixed_dictionaries({k: annotation_values for k in POLICY_KEYS}))
def test_any_values_on_every_key_are_answered_with_the_policy_written(values: dict[str, str]) -> None:
    _, written = _admit(values)
    expected = policy_annotations(parse_policy(values, defaults=SETTINGS.defaults).policy)
    assert {k: written[k] for k in expected} == expected


def test_a_5000_digit_min_replicas_is_answered_with_the_default_and_a_warning() -> None:
    response, written = _admit({ANNOTATION_MIN_REPLICAS: "1" * 5000, ANNOTATION_MODE: "reactive"})
    assert written[ANNOTATION_MIN_REPLICAS] == "1" and written[ANNOTATION_MODE] == "reactive"
    assert response["warnings"] == [
        "aihpa: aihpa/min-replicas is 5000 characters long (at most 256); using default 1"]
