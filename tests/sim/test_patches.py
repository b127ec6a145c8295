"""The three patch formats, case by case (scenario apart from expected result)."""

from __future__ import annotations

from typing import Any

import pytest

from aihpa.sim.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

DEPLOYMENT: dict[str, Any] = {
    "metadata": {"name": "web", "labels": {"app": "web", "old": "x"}, "finalizers": ["a"]},
    "spec": {
        "replicas": 1,
        "template": {"spec": {"containers": [
            {"name": "app", "image": "app:1", "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
             "ports": [{"containerPort": 80}]},
            {"name": "side", "image": "side:1"},
        ]}},
    },
}

SMP_CASES: list[tuple[str, dict[str, Any], Any]] = [
    ("scalar", {"spec": {"replicas": 4}}, lambda d: d["spec"]["replicas"] == 4),
    ("label removed by null", {"metadata": {"labels": {"old": None}}},
     lambda d: d["metadata"]["labels"] == {"app": "web"}),
    ("container merged by name",
     {"spec": {"template": {"spec": {"containers": [{"name": "side", "image": "side:2"}]}}}},
     lambda d: [c["image"] for c in d["spec"]["template"]["spec"]["containers"]] == ["app:1", "side:2"]),
    ("env merged by name",
     {"spec": {"template": {"spec": {"containers": [{"name": "app", "env": [{"name": "B", "value": "3"}]}]}}}},
     lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"},
                                                                          {"name": "B", "value": "3"}]),
    ("element deleted by directive",
     {"spec": {"template": {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}}},
     lambda d: [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["app"]),
    ("list replaced by directive",
     {"spec": {"template": {"spec": {"containers": [{"name": "new", "image": "n:1"}, {"$patch": "replace"}]}}}},
     lambda d: [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["new"]),
    ("order directives ignored",
     {"spec": {"template": {"spec": {"$setElementOrder/containers": [{"name": "side"}, {"name": "app"}]}}}},
     lambda d: "$setElementOrder/containers" not in d["spec"]["template"]["spec"]),
    ("finalizers merge as a set", {"metadata": {"finalizers": ["a", "b"]}},
     lambda d: d["metadata"]["finalizers"] == ["a", "b"]),
    ("primitive deleted from list", {"metadata": {"$deleteFromPrimitiveList/finalizers": ["a"]}},
     lambda d: d["metadata"]["finalizers"] == []),
    ("retainKeys drops others", {"spec": {"$retainKeys": ["replicas"], "replicas": 2}},
     lambda d: d["spec"] == {"replicas": 2}),
]


@pytest.mark.parametrize(("case", "patch", "check"), SMP_CASES, ids=[c[0] for c in SMP_CASES])
def test_strategic_merge_patch_case(case: str, patch: dict[str, Any], check: Any) -> None:
    before = repr(DEPLOYMENT)
    result = strategic_merge_patch(DEPLOYMENT, patch)
    assert check(result), case
    assert repr(DEPLOYMENT) == before, "the input must not be mutated"


def test_merge_patch_replaces_lists_and_deletes_nulls() -> None:
    result = merge_patch(DEPLOYMENT, {"metadata": {"labels": {"old": None, "new": "y"}},
                                      "spec": {"template": {"spec": {"containers": [{"name": "only"}]}}}})
    assert result["metadata"]["labels"] == {"app": "web", "new": "y"}
    assert result["spec"]["template"]["spec"]["containers"] == [{"name": "only"}]


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([{"op": "add", "path": "/a/-", "value": 3}], {"a": [1, 2, 3], "b": {"c": "d"}}),
        ([{"op": "remove", "path": "/a/0"}], {"a": [2], "b": {"c": "d"}}),
        ([{"op": "replace", "path": "/b/c", "value": "e"}], {"a": [1, 2], "b": {"c": "e"}}),
        ([{"op": "move", "from": "/b/c", "path": "/z"}], {"a": [1, 2], "b": {}, "z": "d"}),
        ([{"op": "copy", "from": "/a", "path": "/b/a"}], {"a": [1, 2], "b": {"c": "d", "a": [1, 2]}}),
        ([{"op": "add", "path": "/b/x~1y", "value": 1}], {"a": [1, 2], "b": {"c": "d", "x/y": 1}}),
        ([{"op": "test", "path": "/a/1", "value": 2}], {"a": [1, 2], "b": {"c": "d"}}),
    ],
)
def test_json_patch_operations(ops: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    doc = {"a": [1, 2], "b": {"c": "d"}}
    assert json_patch(doc, ops) == expected
    assert doc == {"a": [1, 2], "b": {"c": "d"}}


@pytest.mark.parametrize(
    "ops",
    [
        [{"op": "test", "path": "/a/0", "value": 9}],
        [{"op": "remove", "path": "/missing"}],
        [{"op": "replace", "path": "/a/5", "value": 1}],
        [{"op": "bogus", "path": "/a"}],
        {"op": "add"},
    ],
)
def test_json_patch_failures_raise(ops: Any) -> None:
    with pytest.raises(PatchError):
        json_patch({"a": [1, 2]}, ops)
