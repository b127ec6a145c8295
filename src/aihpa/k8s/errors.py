"""The project's own Kubernetes API errors, split into temporary (retry) and permanent (do not), chained to the cause.

One function, `error_from_response`, maps an HTTP status and a Kubernetes `Status` body to an error type, so every
caller classifies failures the same way.
"""

from __future__ import annotations

import json
from typing import Any

from aihpa.errors import AihpaError

__all__ = [
    "ConflictError",
    "ForbiddenError",
    "GoneError",
    "K8sError",
    "NotFoundError",
    "PermanentError",
    "TemporaryError",
    "error_from_response",
]


class K8sError(AihpaError):
    """A Kubernetes API call failed."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.body = body


class TemporaryError(K8sError):
    """Worth retrying: throttling (429), server errors (5xx), connection trouble. `retry_after` from the server."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class PermanentError(K8sError):
    """Retrying the same request will not help (4xx other than 409/410/429)."""


class NotFoundError(PermanentError):
    pass


class ForbiddenError(PermanentError):
    pass


class ConflictError(K8sError):
    """409: the object changed since it was read (or already exists): re-read, then decide again."""


class GoneError(K8sError):
    """410: the resourceVersion is too old for a watch: list again."""


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    value = headers.get("Retry-After") if hasattr(headers, "get") else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def error_from_response(*, status: int, body: bytes | str | Any, headers: Any = None, what: str = "") -> K8sError:
    """The error for a non-2xx answer; the message quotes the server's own Status message when there is one."""
    parsed: Any = body
    if isinstance(body, bytes | str):
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = body.decode(errors="replace") if isinstance(body, bytes) else body
    message = parsed.get("message") if isinstance(parsed, dict) else None
    reason = parsed.get("reason", "") if isinstance(parsed, dict) else ""
    text = f"{what}: HTTP {status}{f' {reason}' if reason else ''}: {message or str(parsed)[:200]}".lstrip(": ")
    kwargs: dict[str, Any] = {"status": status, "reason": reason, "body": parsed}
    if status == 409:
        return ConflictError(text, **kwargs)
    if status == 410:
        return GoneError(text, **kwargs)
    if status == 404:
        return NotFoundError(text, **kwargs)
    if status in (401, 403):
        return ForbiddenError(text, **kwargs)
    if status == 429 or status >= 500:
        return TemporaryError(text, retry_after=_retry_after(headers), **kwargs)
    return PermanentError(text, **kwargs)
