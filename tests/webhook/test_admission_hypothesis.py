"""Property-based fuzzing of the admission logic with hypothesis: 10,000 reviews, mutated from the sample reviews
or arbitrary JSON, each answered with a well-formed response (or refused as malformed), never an exception."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aihpa.profiles import InMemoryProfileSource
from aihpa.webhook import jsonpatch
from aihpa.webhook.admission import MalformedReview, decode_patch, review
from aihpa.webhook.settings import WebhookSettings
from tests.webhook.conftest import NOW, RESPONSE_SCHEMA, profile
from tests.webhook.test_admission_fuzz import generated_review

SETTINGS = WebhookSettings(model_version="fuzz")
PROFILES = InMemoryProfileSource([profile(), profile(name="checkout-v1", app="checkout", peak=7)])

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)


@st.composite
def reviews(draw: st.DrawFn) -> Any:
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # anything at all
    rng = random.Random(draw(st.integers(0, 2**32)))
    return generated_review(rng)  # a sample review, mutated


def _check(body: Any, at: float) -> None:
    original = json.dumps(body, sort_keys=True)
    try:
        answer = review(body, settings=SETTINGS, profiles=PROFILES, now=at)
    except MalformedReview as exc:
        assert str(exc)
        return
    assert json.dumps(body, sort_keys=True) == original, "the review was modified in place"
    assert not list(RESPONSE_SCHEMA.iter_errors(answer))
    patch = decode_patch(answer["response"])
    if patch:
        patched = jsonpatch.apply(body["request"]["object"], patch)
        again = {**body, "request": {**body["request"], "object": patched}}
        assert "patch" not in review(again, settings=SETTINGS, profiles=PROFILES, now=at + 3600)["response"]


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(body=reviews(), offset=st.floats(0, 86400 * 7, allow_nan=False))
def test_hypothesis_reviews_get_well_formed_answers_and_patches_that_converge(body: Any, offset: float) -> None:
    _check(body, NOW + offset)
