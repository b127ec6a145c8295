"""Kubernetes adapters on kubernetes-asyncio: config, errors, retries, layered watch, scale, Events, leader election.

Adapter layer: network I/O only; no scaling decisions here.
"""

from aihpa.k8s.client import JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, KubeClient, RetrySettings
from aihpa.k8s.config import api_client
from aihpa.k8s.errors import (
    ConflictError,
    ForbiddenError,
    GoneError,
    K8sError,
    NotFoundError,
    PermanentError,
    TemporaryError,
)
from aihpa.k8s.events import EventRecorder, ObjectRef
from aihpa.k8s.leader import LeaderElector, LeaseSettings
from aihpa.k8s.scale import ScaleResult, read_scale, update_scale
from aihpa.k8s.watching import WatchEvent, WatchSettings, watch_objects

__all__ = [
    "JSON_PATCH",
    "MERGE_PATCH",
    "STRATEGIC_MERGE_PATCH",
    "ConflictError",
    "EventRecorder",
    "ForbiddenError",
    "GoneError",
    "K8sError",
    "KubeClient",
    "LeaderElector",
    "LeaseSettings",
    "NotFoundError",
    "ObjectRef",
    "PermanentError",
    "RetrySettings",
    "ScaleResult",
    "TemporaryError",
    "WatchEvent",
    "WatchSettings",
    "api_client",
    "read_scale",
    "update_scale",
    "watch_objects",
]
