"""Per-workload replica profiles: the expected replicas for each time-of-day slot, published by the controller.

The controller writes one profile per workload (as JSON in a ConfigMap data value); the webhook reads them to start a
new Deployment at the size the forecast expects for this time of day. A profile is looked up by namespace/name, or,
for a workload seen under another name, by its `app.kubernetes.io/name` or `app` label in the same namespace.

Pure: standard library only, no I/O and no clock (`now` is always an argument). It must never import the network,
the Kubernetes client or JAX.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Protocol, runtime_checkable

__all__ = [
    "CONFIGMAP_PREFIX",
    "CONTROLLER_SHARD_LABEL",
    "DAY_S",
    "FORMAT_VERSION",
    "MAX_CONFIGMAP_BYTES",
    "PROFILES_LABEL",
    "InMemoryProfileSource",
    "ProfileError",
    "ProfileSource",
    "ReplicaProfile",
    "configmap_key",
    "configmap_name",
    "configmaps_for",
    "shard_of",
]

DAY_S: Final = 86_400
FORMAT_VERSION: Final = 1
# A ConfigMap key: letters, digits, '-', '_' and '.'; namespaces are DNS labels (no dots), so the first dot splits.
_KEY_RE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?\.[-._a-zA-Z0-9]+$")
_MAX_REPLICAS: Final = 2**31 - 1
# The label that marks the ConfigMaps holding published profiles; the webhook watches with `aihpa/profiles=true`.
PROFILES_LABEL: Final = "aihpa/profiles"
# Shard i of the published profiles lives in the ConfigMap named `aihpa-profiles-<i>`; a sharded controller's shard s
# of N writes its own, `aihpa-profiles-<s>-of-<N>-<i>`, labeled CONTROLLER_SHARD_LABEL: "<s>-of-<N>".
CONFIGMAP_PREFIX: Final = "aihpa-profiles-"
CONTROLLER_SHARD_LABEL: Final = "aihpa/controller-shard"
# The API server refuses a ConfigMap whose data exceeds 1 MiB; a shard must stay under it.
MAX_CONFIGMAP_BYTES: Final = 1 << 20


class ProfileError(ValueError):
    """A profile that cannot be read or does not make sense; the message says which field and why."""


@dataclass(frozen=True, slots=True)
class ReplicaProfile:
    """Expected replicas per time-of-day slot (UTC) for one workload, and the model that produced them.

    `replicas[i]` covers seconds `[i * slot_s, (i + 1) * slot_s)` after midnight UTC; the slots cover one day exactly.
    """

    namespace: str
    name: str
    replicas: tuple[int, ...]
    model_version: str
    slot_s: int = 900
    app: str | None = None
    generated_at: float = 0.0

    def __post_init__(self) -> None:
        if not self.namespace or not self.name:
            raise ProfileError("a profile needs a namespace and a name")
        if self.slot_s <= 0 or DAY_S % self.slot_s:
            raise ProfileError(f"slot_s must divide a day ({DAY_S} s) evenly, got {self.slot_s}")
        expected = DAY_S // self.slot_s
        if len(self.replicas) != expected:
            raise ProfileError(f"{expected} slots of {self.slot_s} s cover a day, got {len(self.replicas)} replicas")
        for r in self.replicas:
            if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= _MAX_REPLICAS:
                raise ProfileError(f"replicas must be whole numbers in 0..2^31-1, got {r!r}")
        if not math.isfinite(self.generated_at):
            raise ProfileError("generated_at must be a finite time")

    def slot_at(self, now: float) -> int:
        """The index of the slot that contains time `now` (seconds since the Unix epoch)."""
        return int((now % DAY_S) // self.slot_s) % len(self.replicas)

    def replicas_at(self, now: float) -> int:
        """The expected replicas at time `now` (seconds since the Unix epoch, UTC)."""
        return self.replicas[self.slot_at(now)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT_VERSION,
            "namespace": self.namespace,
            "name": self.name,
            "app": self.app,
            "slotSeconds": self.slot_s,
            "replicas": list(self.replicas),
            "modelVersion": self.model_version,
            "generatedAt": self.generated_at,
        }

    def to_json(self) -> str:
        """Compact JSON, small enough for a ConfigMap data value (96 slots take well under 1 KiB)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)

    @classmethod
    def from_dict(cls, data: object) -> ReplicaProfile:
        if not isinstance(data, Mapping):
            raise ProfileError("a profile must be a JSON object")
        if data.get("format") != FORMAT_VERSION:
            raise ProfileError(f"unsupported profile format {data.get('format')!r}, expected {FORMAT_VERSION}")
        try:
            namespace = _field(data, "namespace", str)
            name = _field(data, "name", str)
            app = data.get("app")
            if app is not None and not isinstance(app, str):
                raise ProfileError("field 'app' must be a string or null")
            slot_s = _field(data, "slotSeconds", int)
            replicas = _field(data, "replicas", list)
            model_version = _field(data, "modelVersion", str)
            generated_at = data.get("generatedAt", 0.0)
            if isinstance(generated_at, bool) or not isinstance(generated_at, int | float):
                raise ProfileError("field 'generatedAt' must be a number")
        except KeyError as exc:
            raise ProfileError(f"missing field {exc.args[0]!r}") from None
        return cls(
            namespace=namespace,
            name=name,
            app=app,
            slot_s=slot_s,
            replicas=tuple(replicas),
            model_version=model_version,
            generated_at=float(generated_at),
        )

    @classmethod
    def from_json(cls, text: str | bytes) -> ReplicaProfile:
        try:
            data = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise ProfileError(f"a profile must be JSON: {exc}") from None
        return cls.from_dict(data)


def _field(data: Mapping[str, object], key: str, kind: type[Any]) -> Any:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ProfileError(f"field {key!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def configmap_key(namespace: str, name: str) -> str:
    """The ConfigMap data key of a workload's profile."""
    return f"{namespace}.{name}"


@runtime_checkable
class ProfileSource(Protocol):
    """Where the webhook finds published profiles. Lookups are fast and never block on the network."""

    def by_workload(self, namespace: str, name: str) -> ReplicaProfile | None:
        """The profile of the workload `namespace/name`, if one is published."""
        ...

    def by_app(self, namespace: str, app: str) -> ReplicaProfile | None:
        """A profile published for a workload in `namespace` whose app label is `app`, if any."""
        ...


class InMemoryProfileSource:
    """A `ProfileSource` over a fixed set of profiles (tests, the demo, or one ConfigMap's decoded contents)."""

    def __init__(self, profiles: Iterable[ReplicaProfile] = ()) -> None:
        self._by_workload: dict[tuple[str, str], ReplicaProfile] = {}
        self._by_app: dict[tuple[str, str], ReplicaProfile] = {}
        for profile in profiles:
            self.put(profile)

    def put(self, profile: ReplicaProfile) -> None:
        """Add or replace a profile; for an app label shared by several workloads the newest one wins."""
        self._by_workload[(profile.namespace, profile.name)] = profile
        if profile.app:
            key = (profile.namespace, profile.app)
            current = self._by_app.get(key)
            if current is None or profile.generated_at >= current.generated_at:
                self._by_app[key] = profile

    def by_workload(self, namespace: str, name: str) -> ReplicaProfile | None:
        return self._by_workload.get((namespace, name))

    def by_app(self, namespace: str, app: str) -> ReplicaProfile | None:
        return self._by_app.get((namespace, app))

    def __len__(self) -> int:
        return len(self._by_workload)

    def to_configmap_data(self) -> dict[str, str]:
        """Every profile as ConfigMap data: key `namespace.name`, value the profile's JSON."""
        return {configmap_key(p.namespace, p.name): p.to_json() for p in self._by_workload.values()}

    @classmethod
    def from_configmap_data(cls, data: Mapping[str, str]) -> tuple[InMemoryProfileSource, list[str]]:
        """Profiles decoded from ConfigMap data, and one error line per entry that was skipped.

        One bad entry never hides the others: a reader keeps serving what it could decode.
        """
        source = cls()
        errors: list[str] = []
        for key in sorted(data):
            if not _KEY_RE.match(key):
                errors.append(f"{key[:80]}: not a namespace.name key")
                continue
            try:
                profile = ReplicaProfile.from_json(data[key])
            except ProfileError as exc:
                errors.append(f"{key}: {exc}")
                continue
            if configmap_key(profile.namespace, profile.name) != key:
                errors.append(f"{key}: holds the profile of {profile.namespace}/{profile.name}")
                continue
            source.put(profile)
        return source, errors


def _check_shards(shards: int) -> None:
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a whole number >= 1, got {shards!r}")


def shard_of(namespace: str, name: str, shards: int) -> int:
    """The shard (0..shards-1) that holds the profile of `namespace/name`.

    SHA-256 of the ConfigMap key, not `hash()`: Python salts string hashes per process, and the controller that
    publishes and any reader must agree on the shard across processes and restarts.
    """
    _check_shards(shards)
    digest = hashlib.sha256(configmap_key(namespace, name).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def configmap_name(shard: int, *, writer: tuple[int, int] | None = None) -> str:
    """The name of the ConfigMap that holds shard `shard`, as written by controller shard `writer` = (s, N), if the
    controller is sharded (N > 1): each controller shard writes its own ConfigMaps, so two shards never overwrite
    each other's, and N is in the name so the shards of an old N never overwrite those of a new one."""
    if writer is None or writer[1] == 1:
        return f"{CONFIGMAP_PREFIX}{shard}"
    return f"{CONFIGMAP_PREFIX}{writer[0]}-of-{writer[1]}-{shard}"


def configmaps_for(
    profiles: Iterable[ReplicaProfile], *, namespace: str, shards: int, writer: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    """The ConfigMap manifests that publish `profiles` in `namespace`, one per shard, shard order.

    `writer` = (s, N): the controller shard that publishes (see `configmap_name`); its ConfigMaps also carry the
    label `aihpa/controller-shard: "<s>-of-<N>"`. Readers merge every labeled ConfigMap, the newest profile of a
    workload winning, so a profile a shard of an old N left behind never hides a newer one.

    Every shard gets a ConfigMap, empty ones included, so that applying the list also empties a shard whose workloads
    are gone. `data` is exactly `InMemoryProfileSource.to_configmap_data()` of the shard's profiles (keys sorted, so
    an unchanged set yields an identical manifest and the publisher can skip the write). For a workload given twice,
    the profile generated last wins. Raises ProfileError if a shard would exceed what the API server stores.
    """
    if not namespace:
        raise ValueError("a namespace is required")
    _check_shards(shards)
    buckets = [InMemoryProfileSource() for _ in range(shards)]
    ordered = sorted(profiles, key=lambda p: p.generated_at)  # stable: the later of two equal times still wins
    for profile in ordered:
        buckets[shard_of(profile.namespace, profile.name, shards)].put(profile)
    manifests: list[dict[str, Any]] = []
    for shard, bucket in enumerate(buckets):
        data = dict(sorted(bucket.to_configmap_data().items()))
        size = sum(len(k.encode()) + len(v.encode()) for k, v in data.items())
        if size > MAX_CONFIGMAP_BYTES:
            raise ProfileError(
                f"shard {shard} holds {size} bytes of profiles, over the ConfigMap limit of {MAX_CONFIGMAP_BYTES}; "
                "publish with more shards"
            )
        labels = {PROFILES_LABEL: "true", "app.kubernetes.io/name": "aihpa"}
        if writer is not None and writer[1] > 1:
            labels[CONTROLLER_SHARD_LABEL] = f"{writer[0]}-of-{writer[1]}"
        manifests.append(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": configmap_name(shard, writer=writer),
                    "namespace": namespace,
                    "labels": labels,
                },
                "data": data,
            }
        )
    return manifests
