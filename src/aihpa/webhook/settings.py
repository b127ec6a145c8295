"""Settings of the admission webhook: the policy defaults it writes, the model version it names, and its limits
(time, size, connections).

One frozen object shared by the pure admission logic and the transport, so the Helm chart's values reach both.
Pure: no I/O, no environment reads; the CLI builds it from flags.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from aihpa.annotations import PolicyDefaults

__all__ = ["WebhookSettings"]


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    # Defaults written into every annotation the user left out or got wrong.
    defaults: PolicyDefaults = field(default_factory=PolicyDefaults)
    # Version of the forecaster in service; written to aihpa/model-version when no profile names its own.
    model_version: str = "unknown"
    # A profile older than this no longer says much about today's load; replicas are then left as typed.
    profile_max_age_s: float = 7 * 86_400.0
    # The API server waits timeoutSeconds (2 s in webhooks/); answer well before that, failing open if need be.
    answer_within_s: float = 1.5
    # An AdmissionReview carries the object and the old object, each at most ~1.5 MiB in etcd.
    max_body_bytes: int = 4 * 1024 * 1024
    # How often the certificate source checks its files for change and for renewal.
    cert_check_interval_s: float = 30.0
    # A connection must finish its TLS handshake, and then present a complete request head, within this long (counted
    # from the end of the handshake or of the previous answer, not extended by bytes that trickle in); an idle
    # keep-alive connection is closed after it too. The API server sends a whole request at once.
    header_timeout_s: float = 5.0
    # A request body must arrive within this long: /mutate reads its body within the smaller of this and
    # answer_within_s, and a body no handler reads is drained for at most this long before the connection is closed.
    body_timeout_s: float = 5.0
    # Connections served at once, TLS handshakes included; more wait in the listen backlog until one ends.
    max_connections: int = 256

    def __post_init__(self) -> None:
        if not self.model_version or len(self.model_version) > 253:
            raise ValueError("model_version must be a non-empty string of at most 253 characters")
        for name in ("profile_max_age_s", "answer_within_s", "cert_check_interval_s", "header_timeout_s",
                     "body_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number of seconds, got {value}")
        if self.max_body_bytes < 1024:
            raise ValueError(f"max_body_bytes must be at least 1024, got {self.max_body_bytes}")
        if not 1 <= self.max_connections <= 65_536:
            raise ValueError(f"max_connections must be 1..65536, got {self.max_connections}")
