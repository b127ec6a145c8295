"""Connecting to a cluster: in-cluster service account config, or a kubeconfig file (and context)."""

from __future__ import annotations

import os

from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio.client import ApiClient, Configuration

from aihpa.errors import UserError

__all__ = ["api_client"]


async def api_client(*, kubeconfig: str | None = None, context: str | None = None) -> ApiClient:
    """An ApiClient for the cluster: the kubeconfig when given (or $KUBECONFIG), else in-cluster, else ~/.kube/config.

    The caller closes it (`await client.close()`).
    """
    cfg = Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    try:
        if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        else:
            await kconfig.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                           persist_config=False)
    except (kconfig.ConfigException, OSError, ValueError) as exc:
        raise UserError(f"cannot load Kubernetes config ({path or 'in-cluster / ~/.kube/config'}): {exc}") from exc
    return ApiClient(configuration=cfg)
