"""Replica profiles: slots by time of day, JSON for a ConfigMap, lookups by name and by app label."""

from __future__ import annotations

import json

import pytest

from aihpa.profiles import InMemoryProfileSource, ProfileError, ProfileSource, ReplicaProfile, configmap_key
from tests.webhook.conftest import NOW, SLOT_AT_NOW, profile

MIDNIGHT = NOW - NOW % 86_400


@pytest.mark.parametrize(
    ("seconds_after_midnight", "slot"),
    [(0, 0), (899, 0), (900, 1), (13 * 3600 + 50 * 60, SLOT_AT_NOW), (86_399, 95), (86_400, 0)],
)
def test_each_time_of_day_falls_in_its_fifteen_minute_slot(seconds_after_midnight: float, slot: int) -> None:
    assert profile().slot_at(MIDNIGHT + seconds_after_midnight) == slot


def test_replicas_at_reads_the_slot_of_now() -> None:
    p = profile(peak=12)
    assert p.replicas_at(NOW) == 12
    assert p.replicas_at(MIDNIGHT + 3600) == 2


def test_other_slot_widths_cover_a_day() -> None:
    hourly = ReplicaProfile(namespace="a", name="b", replicas=tuple(range(24)), model_version="v", slot_s=3600)
    assert hourly.replicas_at(MIDNIGHT + 5 * 3600 + 1) == 5


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"replicas": (1,) * 95}, "96 slots of 900 s cover a day, got 95"),
        ({"slot_s": 7}, "slot_s must divide a day"),
        ({"slot_s": 0}, "slot_s must divide a day"),
        ({"replicas": (-1,) * 96}, "whole numbers"),
        ({"replicas": (True,) * 96}, "whole numbers"),
        ({"replicas": (1.5,) * 96}, "whole numbers"),
        ({"namespace": ""}, "namespace and a name"),
        ({"generated_at": float("nan")}, "finite"),
    ],
)
def test_a_profile_that_does_not_make_sense_is_refused(kwargs: dict[str, object], message: str) -> None:
    fields: dict[str, object] = {"namespace": "shop", "name": "web", "replicas": (1,) * 96, "model_version": "v"}
    with pytest.raises(ProfileError, match=message.replace("(", r"\(")):
        ReplicaProfile(**{**fields, **kwargs})  # type: ignore[arg-type]


def test_json_round_trips_and_fits_easily_in_a_configmap_value() -> None:
    p = profile()
    text = p.to_json()
    assert ReplicaProfile.from_json(text) == p
    assert ReplicaProfile.from_json(text.encode()) == p
    assert len(text) < 1024
    assert json.loads(text)["format"] == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "must be JSON"),
        ("[]", "must be a JSON object"),
        ('{"format": 2}', "unsupported profile format 2"),
        ('{"format": 1}', "missing field 'namespace'"),
        (
            '{"format":1,"namespace":"a","name":"b","slotSeconds":"900","replicas":[],"modelVersion":"v"}',
            "'slotSeconds' must be int",
        ),
        (
            '{"format":1,"namespace":"a","name":"b","slotSeconds":900,"replicas":[],"modelVersion":"v","app":3}',
            "'app' must be a string",
        ),
        (
            '{"format":1,"namespace":"a","name":"b","slotSeconds":86400,"replicas":[1],"modelVersion":"v",'
            '"generatedAt":"now"}',
            "'generatedAt' must be a number",
        ),
    ],
)
def test_bad_json_names_the_problem(text: str, message: str) -> None:
    with pytest.raises(ProfileError, match=message):
        ReplicaProfile.from_json(text)


def test_lookup_by_workload_and_by_app_label_in_the_same_namespace() -> None:
    web = profile()
    source: ProfileSource = InMemoryProfileSource([web])
    assert isinstance(source, ProfileSource)
    assert source.by_workload("shop", "web") is web
    assert source.by_workload("other", "web") is None
    assert source.by_app("shop", "web") is web
    assert source.by_app("other", "web") is None


def test_the_newest_profile_wins_an_app_label_shared_by_two_workloads() -> None:
    old = profile(name="web-v1", generated_at=NOW - 3600)
    new = profile(name="web-v2", generated_at=NOW)
    assert InMemoryProfileSource([new, old]).by_app("shop", "web") is new
    assert InMemoryProfileSource([old, new]).by_app("shop", "web") is new


def test_configmap_data_round_trips_and_skips_bad_entries_without_hiding_good_ones() -> None:
    source = InMemoryProfileSource([profile(), profile(name="api.v2", app=None)])
    data = source.to_configmap_data()
    assert sorted(data) == [configmap_key("shop", "api.v2"), "shop.web"]
    data["shop.broken"] = "{"
    data["Bad Key"] = profile().to_json()
    data["shop.elsewhere"] = profile().to_json()
    decoded, errors = InMemoryProfileSource.from_configmap_data(data)
    assert len(decoded) == 2
    assert decoded.by_workload("shop", "api.v2") is not None
    assert [e.split(":")[0] for e in errors] == ["Bad Key", "shop.broken", "shop.elsewhere"]
