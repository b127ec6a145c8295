"""Connecting to a cluster: in-cluster service account config, or a kubeconfig file (and context).

Every way this can fail is a `UserError` that names the file (or the in-cluster config) and what to do, never the
client library's own words ("Expected key current-context").
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from kubernetes_asyncio import config as kconfig
from kubernetes_asyncio.client import ApiClient, Configuration

from aihpa.errors import UserError

__all__ = ["DEFAULT_KUBECONFIG", "api_client"]

#: Where a kubeconfig is looked for when neither --kubeconfig nor $KUBECONFIG names one, outside a cluster.
DEFAULT_KUBECONFIG = "~/.kube/config"


async def api_client(*, kubeconfig: str | None = None, context: str | None = None) -> ApiClient:
    """An ApiClient for the cluster: the kubeconfig when given (or $KUBECONFIG), else in-cluster, else ~/.kube/config.

    The caller closes it (`await client.close()`).
    """
    cfg = Configuration()
    env = os.environ.get("KUBECONFIG") or None
    path = kubeconfig or env
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            kconfig.load_incluster_config(client_configuration=cfg)  # type: ignore[no-untyped-call]
        except (kconfig.ConfigException, OSError, ValueError) as exc:
            raise UserError(f"cannot use the in-cluster config ({exc}): pass --kubeconfig, or run the pod with "
                            "its service account token mounted") from exc
        return ApiClient(configuration=cfg)
    if kubeconfig is not None:
        source, fix = f"{kubeconfig} (--kubeconfig)", ": check the path given to --kubeconfig"
    elif env is not None:
        source, fix = f"{env} ($KUBECONFIG)", ": set KUBECONFIG to an existing file, or pass --kubeconfig"
    else:
        source, fix = DEFAULT_KUBECONFIG, " and not in a cluster: pass --kubeconfig or set KUBECONFIG"
    if not _any_file(path or DEFAULT_KUBECONFIG):
        raise UserError(f"no kubeconfig at {source}{fix}")
    try:
        await kconfig.load_kube_config(config_file=path, context=context, client_configuration=cfg,
                                       persist_config=False)
    except (kconfig.ConfigException, OSError, ValueError, TypeError, AttributeError, KeyError,
            yaml.YAMLError) as exc:
        raise UserError(f"{source} is not a usable kubeconfig: {_explain(exc, context)}") from exc
    return ApiClient(configuration=cfg)


def _any_file(paths: str) -> bool:
    """Whether one of the kubeconfig files `paths` (separated as in $KUBECONFIG) exists; a stat, read next anyway."""
    return any(Path(p).expanduser().is_file() for p in paths.split(os.pathsep) if p)


def _explain(exc: BaseException, context: str | None) -> str:
    text = " ".join(str(exc).split())
    if "current-context" in text:
        return ("it sets no current-context: choose one with `kubectl config use-context NAME`"
                + ("" if context is not None else " (or pass --context NAME where the command has it)"))
    if "contexts list" in text:
        named = f"context {context!r}" if context is not None else "current-context"
        return f"its {named} is not among its contexts: `kubectl config get-contexts` lists them"
    if isinstance(exc, yaml.YAMLError):
        return f"it is not YAML ({text.split(' in ')[0]})"
    if isinstance(exc, TypeError | AttributeError | KeyError):
        return "it is not a kubeconfig (expected a YAML mapping with clusters, contexts and users)"
    return text
