"""Fuzzing the admission logic with 10,000 generated and malformed reviews (seeded, so a failure reproduces).

Whatever arrives, the answer is either a `MalformedReview` (HTTP 400 at the transport) or a well-formed response
whose patch applies to the object, converges on reinvocation, and keeps a valid Deployment valid.
"""

from __future__ import annotations

import contextlib
import json
import random
from typing import Any

import kubernetes_validate
import pytest

from aihpa.profiles import InMemoryProfileSource
from aihpa.webhook import jsonpatch
from aihpa.webhook.admission import MalformedReview, decode_patch, review
from aihpa.webhook.settings import WebhookSettings
from tests.webhook.conftest import NOW, PATCH_SCHEMA, RESPONSE_SCHEMA, load_fixture, profile, validate_deployment

SEED = 20261124
CASES = 10_000
# kubernetes-validate takes ~10 ms per object and the JSONPatch schema ~1 ms per patch: both check a bounded sample;
# every patch is still applied (which checks each operation) and re-admitted.
VALIDATED_DEPLOYMENTS = 40
VALIDATION_ATTEMPTS = 80
SCHEMA_CHECKED_PATCHES = 300

ODD_STRINGS = [
    "",
    " ",
    "true",
    "True",
    "0",
    "-1",
    "1e3",
    "0x10",
    "nan",
    "inf",
    "0.0000001",
    "1.0000000001",
    "2147483648",
    "9" * 40,
    "predictive ",
    "dry-run",
    "reactive",
    "~0~1/",
    "a/b~c",
    "ünïcødé ✓",
    "\u0000",
    "line\nbreak",
    "x" * 300,
]
ANNOTATION_KEYS = [
    "aihpa/min-replicas",
    "aihpa/max-replicas",
    "aihpa/target-utilization",
    "aihpa/mode",
    "aihpa/scale-down-stabilization",
    "aihpa/managed",
    "aihpa/initial-forecast",
    "aihpa/model-version",
    "aihpa/requested-replicas",
    "aihpa/unknown~/key",
    "other/key",
]
SEEDS = ["create-labeled", "create-labeled-invalid-annotations", "create-unlabeled", "update-adds-label"]
SEEDS += ["non-deployment", "malformed"]
_SEED_TEXT = {name: json.dumps(load_fixture(name)) for name in SEEDS}


def _scalar(rng: random.Random) -> Any:
    return rng.choice([None, True, False, 0, -1, 2**31, 2**63, 1.5, float(rng.randint(0, 9)), rng.choice(ODD_STRINGS)])


def _value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 2 or roll < 0.6:
        return _scalar(rng)
    if roll < 0.8:
        return [_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(ODD_STRINGS + ANNOTATION_KEYS): _value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


def _containers(node: Any) -> list[dict[str, Any] | list[Any]]:
    out: list[dict[str, Any] | list[Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            out.append(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            out.append(item)
            stack.extend(item)
    return out


def _annotations(body: Any) -> dict[str, Any] | None:
    try:
        meta = body["request"]["object"]["metadata"]
    except (KeyError, TypeError):
        return None
    if not isinstance(meta, dict):
        return None
    annotations = meta.setdefault("annotations", {})
    return annotations if isinstance(annotations, dict) else None


def generated_review(rng: random.Random) -> Any:
    body: Any = json.loads(_SEED_TEXT[rng.choice(SEEDS)])
    for _ in range(rng.randint(0, 4)):
        roll = rng.random()
        annotations = _annotations(body)
        if roll < 0.45 and annotations is not None:
            # Mostly plausible user input: string values under the annotations the webhook reads.
            key = rng.choice(ANNOTATION_KEYS)
            annotations[key] = rng.choice(ODD_STRINGS) if rng.random() < 0.9 else _scalar(rng)
        elif roll < 0.55:
            request = body.get("request") if isinstance(body, dict) else None
            if isinstance(request, dict):
                request["operation"] = rng.choice(["CREATE", "UPDATE", "DELETE", "CONNECT", "PATCH", 1])
        elif roll < 0.65:
            try:
                labels = body["request"]["object"]["metadata"]["labels"]
                labels["aihpa/enabled"] = rng.choice(["true", "false", "TRUE", True])
            except (KeyError, TypeError):
                pass
        elif roll < 0.85:
            containers = _containers(body)
            target = rng.choice(containers) if containers else None
            if isinstance(target, dict) and target:
                key = rng.choice(list(target))
                if rng.random() < 0.5:
                    del target[key]
                else:
                    target[key] = _value(rng)
            elif isinstance(target, list) and target:
                target[rng.randrange(len(target))] = _value(rng)
        elif roll < 0.95:
            with contextlib.suppress(KeyError, TypeError):
                body["request"]["object"]["spec"]["replicas"] = _scalar(rng)
        else:
            body = _value(rng)
    return body


def _copy(value: Any) -> Any:
    # The C encoder and decoder copy a JSON document several times faster than copy.deepcopy.
    return json.loads(json.dumps(value))


def _is_valid_deployment(obj: Any) -> bool:
    try:
        validate_deployment(obj)
    except kubernetes_validate.ValidationError:
        return False
    return True


@pytest.mark.slow
def test_ten_thousand_generated_reviews_never_crash_and_every_answer_is_well_formed() -> None:
    rng = random.Random(SEED)
    settings = WebhookSettings(model_version="fuzz")
    profiles = InMemoryProfileSource([profile(), profile(name="checkout-v1", app="checkout", peak=7)])
    counts = {"malformed": 0, "allowed": 0, "mutated": 0}
    validated = attempts = 0
    well_formed: set[str] = set()
    for case in range(CASES):
        body = generated_review(rng)
        original = _copy(body)
        try:
            answer = review(body, settings=settings, profiles=profiles, now=NOW + case * 37.0)
        except MalformedReview as exc:
            assert str(exc), case
            counts["malformed"] += 1
            continue
        assert body == original, f"case {case}: the review was modified in place"
        text = json.dumps(answer, allow_nan=False, sort_keys=True)
        if text not in well_formed:  # many answers repeat; the schema check is the slow part
            errors = list(RESPONSE_SCHEMA.iter_errors(answer))
            assert not errors, f"case {case}: {errors[0].message}"
            well_formed.add(text)
        response = answer["response"]
        assert response["uid"] == body["request"]["uid"]
        patch = decode_patch(response)
        if not patch:
            counts["allowed"] += 1
            continue
        counts["mutated"] += 1
        if counts["mutated"] <= SCHEMA_CHECKED_PATCHES:
            assert not list(PATCH_SCHEMA.iter_errors(patch)), case
        patched = jsonpatch.apply(body["request"]["object"], patch)
        again = {**body, "request": {**body["request"], "object": patched}}
        second = review(again, settings=settings, profiles=profiles, now=NOW + case * 37.0 + 3600.0)
        assert "patch" not in second["response"], f"case {case}: reinvocation changed the object again"
        if validated < VALIDATED_DEPLOYMENTS and attempts < VALIDATION_ATTEMPTS:
            attempts += 1
            if _is_valid_deployment(body["request"]["object"]):
                validate_deployment(patched)
                validated += 1
    # The generator must exercise every path, or the test proves little.
    assert min(counts.values()) > CASES // 20, counts
    assert validated == VALIDATED_DEPLOYMENTS
