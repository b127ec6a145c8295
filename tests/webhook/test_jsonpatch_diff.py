"""The one diff helper: RFC 6902 operations that turn the original into the mutated copy, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from aihpa.webhook.jsonpatch import PatchError, apply, diff, escape, pointer, unescape
from aihpa.webhook.types import PatchOp
from tests.webhook.conftest import PATCH_SCHEMA


@pytest.mark.parametrize(
    ("token", "escaped"),
    [("aihpa/min-replicas", "aihpa~1min-replicas"), ("a~b", "a~0b"), ("~/", "~0~1"), ("~1", "~01"), ("", "")],
)
def test_pointer_tokens_escape_tilde_first_and_slash_second(token: str, escaped: str) -> None:
    assert escape(token) == escaped
    assert unescape(escaped) == token


def test_pointer_joins_escaped_tokens() -> None:
    assert pointer("metadata", "annotations", "aihpa/mode") == "/metadata/annotations/aihpa~1mode"


# (original, mutated, expected operations)
CASES: list[tuple[Any, Any, list[PatchOp]]] = [
    ({"a": 1}, {"a": 1}, []),
    ({"a": 1}, {"a": 2}, [{"op": "replace", "path": "/a", "value": 2}]),
    ({}, {"m": {"k/1": "v"}}, [{"op": "add", "path": "/m", "value": {"k/1": "v"}}]),
    ({"m": {}}, {"m": {"k/1": "v"}}, [{"op": "add", "path": "/m/k~11", "value": "v"}]),
    ({"m": {"x~y": "v"}}, {"m": {}}, [{"op": "remove", "path": "/m/x~0y"}]),
    ({"m": None}, {"m": {"a": "b"}}, [{"op": "replace", "path": "/m", "value": {"a": "b"}}]),
    ({"l": [1, 2]}, {"l": [1, 3]}, [{"op": "replace", "path": "/l", "value": [1, 3]}]),
    ({"b": 1}, {"b": True}, [{"op": "replace", "path": "/b", "value": True}]),
    ({"f": 1}, {"f": 1.0}, [{"op": "replace", "path": "/f", "value": 1.0}]),
    ({"l": [1]}, {"l": [True]}, [{"op": "replace", "path": "/l", "value": [True]}]),
    ([1], {"a": 1}, [{"op": "replace", "path": "", "value": {"a": 1}}]),
]


@pytest.mark.parametrize(("original", "mutated", "expected"), CASES)
def test_diff_yields_the_smallest_object_level_patch_and_it_applies(
    original: Any, mutated: Any, expected: list[PatchOp]
) -> None:
    patch = diff(original, mutated)
    assert patch == expected
    assert not list(PATCH_SCHEMA.iter_errors(patch))
    assert apply(original, patch) == mutated


def test_the_patch_owns_its_values() -> None:
    mutated: dict[str, Any] = {"m": {"k": ["v"]}}
    patch = diff({}, mutated)
    mutated["m"]["k"].append("changed later")
    assert patch[0]["value"] == {"k": ["v"]}


@pytest.mark.parametrize(
    ("document", "op"),
    [
        ({}, {"op": "remove", "path": "/missing"}),
        ({}, {"op": "replace", "path": "/missing", "value": 1}),
        ({"a": 1}, {"op": "add", "path": "/a/b", "value": 1}),
        ({"l": []}, {"op": "add", "path": "/l/01", "value": 1}),
        ({"l": []}, {"op": "add", "path": "/l/2", "value": 1}),
        ({}, {"op": "add", "path": "no-slash", "value": 1}),
        ({}, {"op": "remove", "path": ""}),
    ],
)
def test_apply_refuses_a_patch_that_does_not_fit_the_document(document: Any, op: PatchOp) -> None:
    with pytest.raises(PatchError):
        apply(document, [op])


def test_apply_handles_array_indices_and_append() -> None:
    doc = {"l": [1, 2]}
    patch: list[PatchOp] = [
        {"op": "add", "path": "/l/-", "value": 3},
        {"op": "add", "path": "/l/0", "value": 0},
        {"op": "replace", "path": "/l/1", "value": 9},
        {"op": "remove", "path": "/l/2"},
    ]
    assert apply(doc, patch) == {"l": [0, 9, 3]}
    assert doc == {"l": [1, 2]}
