"""The mutating admission webhook: pure admission logic, its typed shapes, the aiohttp transport and certificates.

`create_app(settings, profiles, ...)` is the entry point for the library and the demo; `aihpa webhook` wraps it.
The transport is imported lazily, so that `aihpa.webhook.admission` and friends load without aiohttp.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aihpa.webhook.settings import WebhookSettings

if TYPE_CHECKING:
    from aihpa.webhook.certs import CertificateSource
    from aihpa.webhook.server import create_app, start_server

__all__ = ["CertificateSource", "WebhookSettings", "create_app", "start_server"]


def __getattr__(name: str) -> Any:
    if name in ("create_app", "start_server"):
        from aihpa.webhook import server

        return getattr(server, name)
    if name == "CertificateSource":
        from aihpa.webhook import certs

        return certs.CertificateSource
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
