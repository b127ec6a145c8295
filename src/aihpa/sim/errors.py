"""Kubernetes API errors as the API server reports them: an exception that renders to a `Status` object.

Every failure the simulated API server answers with goes through `ApiError`, so clients always receive a `Status`
with the code, reason and message they would get from a real kube-apiserver, never a Python traceback.
"""

from __future__ import annotations

from typing import Any

from aihpa.sim.types import Status, StatusDetails

__all__ = ["ApiError", "status_object"]

# HTTP code -> the StatusReason the API server uses for it when nothing more specific applies
_REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    413: "RequestEntityTooLarge",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}


def status_object(
    code: int, message: str, *, reason: str | None = None, details: StatusDetails | None = None
) -> Status:
    """A failure `Status` as the API server writes it."""
    status: Status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, "Unknown"),
        "code": code,
    }
    if details:
        status["details"] = details
    return status


class ApiError(Exception):
    """A request the API server refuses; `status` is the body to send."""

    def __init__(
        self,
        code: int,
        message: str,
        *,
        reason: str | None = None,
        details: StatusDetails | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status_object(code, message, reason=reason, details=details)
        self.headers = headers or {}

    @classmethod
    def not_found(cls, qualified: str, name: str, *, group: str = "", kind: str = "") -> ApiError:
        return cls(
            404,
            f'{qualified} "{name}" not found',
            details={"name": name, "group": group, "kind": kind or qualified.split(".")[0]},
        )

    @classmethod
    def already_exists(cls, qualified: str, name: str, *, group: str = "", kind: str = "") -> ApiError:
        return cls(
            409,
            f'{qualified} "{name}" already exists',
            reason="AlreadyExists",
            details={"name": name, "group": group, "kind": kind or qualified.split(".")[0]},
        )

    @classmethod
    def conflict(cls, qualified: str, name: str, *, group: str = "", kind: str = "") -> ApiError:
        return cls(
            409,
            f'Operation cannot be fulfilled on {qualified} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again",
            reason="Conflict",
            details={"name": name, "group": group, "kind": kind or qualified.split(".")[0]},
        )

    @classmethod
    def invalid(
        cls, qualified_kind: str, name: str, causes: list[tuple[str, str]], *, group: str = "", kind: str = ""
    ) -> ApiError:
        """422 with one cause per (field, message)."""
        text = "; ".join(f"{f}: {m}" for f, m in causes)
        return cls(
            422,
            f'{qualified_kind} "{name}" is invalid: {text}',
            details={
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [{"reason": "FieldValueInvalid", "message": m, "field": f} for f, m in causes],
            },
        )

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, message)

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, message, reason="Expired")

    def with_headers(self, **headers: Any) -> ApiError:
        self.headers.update({k.replace("_", "-"): str(v) for k, v in headers.items()})
        return self
