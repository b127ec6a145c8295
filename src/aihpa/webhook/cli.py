"""`aihpa webhook` (serve the admission webhook over TLS) and `aihpa certs` (generate certificates, inject a CA bundle).

The certificate commands work on files, or on a live cluster through `aihpa.k8s` (`--kubeconfig`, `--name`).

Handlers import aiohttp, cryptography and YAML only when they run, so `aihpa --help` stays fast. Input mistakes raise
`UserError` (one line, exit 2), never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from aihpa.errors import UserError
from aihpa.policy_flags import add_policy_default_flags, policy_defaults

if TYPE_CHECKING:
    from aihpa.k8s.client import KubeClient
    from aihpa.profiles import ProfileSource
    from aihpa.webhook.profile_files import DirectoryProfileSource

__all__ = ["add_commands"]

T = TypeVar("T")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


def add_commands(subparsers: Any) -> None:
    serve = subparsers.add_parser(
        "webhook",
        help="serve the mutating admission webhook over TLS",
        description="Serve /mutate, /healthz, /readyz and /metrics over TLS (1.2 or later).",
    )
    serve.add_argument("--host", default="0.0.0.0",
                       help="address to listen on; every interface by default, as the API server reaches the webhook "
                       "at its pod's IP through its Service (127.0.0.1: this machine only)")
    serve.add_argument("--port", type=int, default=8443, help="port to listen on; 0 lets the OS choose (default 8443)")
    tls = serve.add_argument_group("certificates (one of --cert-dir or --tls-cert/--tls-key)")
    tls.add_argument("--cert-dir", type=Path, help="directory with tls.crt and tls.key (a mounted Secret); watched")
    tls.add_argument("--tls-cert", type=Path, help="certificate chain file (PEM); watched")
    tls.add_argument("--tls-key", type=Path, help="private key file (PEM); watched")
    tls.add_argument(
        "--self-signed",
        action="store_true",
        help="aihpa owns --cert-dir: create a CA and a certificate there if absent, and renew it at 2/3 of its life",
    )
    tls.add_argument(
        "--service", default="aihpa-webhook", help="Service name for --self-signed (default aihpa-webhook)"
    )
    tls.add_argument("--namespace", default="aihpa", help="namespace for --self-signed (default aihpa)")
    serve.add_argument("--model-version", default="unknown", help="forecaster version written to aihpa/model-version")
    serve.add_argument(
        "--profiles",
        type=Path,
        help="replica profiles: a mounted ConfigMap directory (watched), or one file holding a ConfigMap manifest "
        "or a JSON object of its data",
    )
    serve.add_argument(
        "--profiles-interval", type=_positive_float, default=15.0, metavar="SECONDS", help="directory poll (default 15)"
    )
    serve.add_argument(
        "--profiles-configmaps",
        metavar="NAMESPACE",
        help="replica profiles: watch the ConfigMaps labeled aihpa/profiles=true in NAMESPACE (the controller's)",
    )
    serve.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig for --profiles-configmaps (default: $KUBECONFIG or in-cluster)"
    )
    add_policy_default_flags(serve)
    serve.add_argument(
        "--answer-within", type=_positive_float, default=1.5, metavar="SECONDS", help="answer budget (default 1.5)"
    )
    serve.add_argument(
        "--cert-check-interval",
        type=_positive_float,
        default=30.0,
        metavar="SECONDS",
        help="how often to check the certificate files for change and renewal (default 30)",
    )
    serve.add_argument(
        "--header-timeout",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="close a connection that has not finished its TLS handshake, or then sent a whole request head, within "
        "this long; also the idle time of a kept-alive connection (default 5)",
    )
    serve.add_argument(
        "--body-timeout",
        type=_positive_float,
        default=5.0,
        metavar="SECONDS",
        help="a request body must arrive within this long (/mutate: within --answer-within too) (default 5)",
    )
    serve.add_argument(
        "--max-connections",
        type=int,
        default=256,
        metavar="N",
        help="connections served at once, handshakes included; more wait in the listen backlog (default 256)",
    )
    serve.set_defaults(handler=_serve)

    certs = subparsers.add_parser("certs", help="webhook certificates: generate, inject the CA bundle")
    certs_sub = certs.add_subparsers(dest="certs_command", metavar="ACTION", required=True)
    gen = certs_sub.add_parser(
        "generate",
        help="generate a CA and a serving certificate (ECDSA P-256) for the webhook Service",
        description="Write ca.crt, ca.key, tls.crt, tls.key to --out-dir, and optionally a kubernetes.io/tls Secret "
        "as a manifest (--secret-out) or straight into the cluster (--apply / --kubeconfig).",
    )
    gen.add_argument("--service", default="aihpa-webhook", help="the webhook's Service name (default aihpa-webhook)")
    gen.add_argument("--namespace", required=True, help="the Service's (and the Secret's) namespace")
    gen.add_argument("--out-dir", type=Path, metavar="DIR",
                     help="directory for the PEM files (required unless the Secret is applied)")
    gen.add_argument("--secret-out", type=Path, metavar="FILE",
                     help="also write a kubernetes.io/tls Secret manifest (YAML) here")
    gen.add_argument("--secret-name", default="aihpa-webhook-tls", help="the Secret's name (default aihpa-webhook-tls)")
    gen.add_argument("--ip", action="append", default=[], help="an IP address SAN (repeatable), e.g. 127.0.0.1")
    gen.add_argument("--days", type=_positive_float, default=365.0, help="serving certificate lifetime (default 365)")
    gen.add_argument("--force", action="store_true", help="overwrite existing files")
    gen.add_argument(
        "--apply",
        action="store_true",
        help="create or update the Secret in the cluster (config from --kubeconfig, $KUBECONFIG or in-cluster)",
    )
    gen.add_argument(
        "--kubeconfig", type=Path, help="kubeconfig of the cluster to apply the Secret to (implies --apply)"
    )
    gen.set_defaults(handler=_certs_generate)

    inject = certs_sub.add_parser(
        "inject-ca-bundle",
        help="set caBundle in a MutatingWebhookConfiguration manifest, or in the live one",
        description="Set caBundle from a CA file on every webhook of a configuration: a manifest (--config, the "
        "result written to --out or stdout), or the live MutatingWebhookConfiguration (--name), updated in place.",
    )
    target = inject.add_mutually_exclusive_group(required=True)
    target.add_argument("--config", type=Path, help="the webhook configuration manifest (YAML)")
    target.add_argument("--name", help="the live MutatingWebhookConfiguration's name, e.g. aihpa-webhook")
    inject.add_argument("--ca-file", type=Path, required=True, help="the CA certificate (PEM), e.g. ca.crt")
    inject.add_argument("--out", type=Path, metavar="FILE",
                        help="with --config: where to write the result (default: stdout)")
    inject.add_argument(
        "--kubeconfig", type=Path, help="with --name: the cluster's kubeconfig (default: $KUBECONFIG or in-cluster)"
    )
    inject.set_defaults(handler=_certs_inject)


def _load_yaml(path: Path) -> Any:
    import yaml

    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path} is not YAML: {str(exc).splitlines()[0]}") from None


def _on_cluster(kubeconfig: Path | None, action: Callable[[KubeClient], Awaitable[T]]) -> T:
    """Run `action` with a client on the cluster, closing it after; API failures become one-line UserErrors."""
    import asyncio

    from aihpa.k8s import K8sError, KubeClient, api_client

    async def main() -> T:
        api = await api_client(kubeconfig=None if kubeconfig is None else str(kubeconfig))
        async with api:
            return await action(KubeClient(api))

    try:
        return asyncio.run(main())
    except K8sError as exc:
        raise UserError(str(exc)) from None


def _load_profiles(path: Path | None) -> tuple[ProfileSource, DirectoryProfileSource | None]:
    """The profile source for --profiles, and the directory source to keep watching when it is one."""
    from aihpa.profiles import InMemoryProfileSource
    from aihpa.webhook.profile_files import DirectoryProfileSource

    if path is None:
        return InMemoryProfileSource(), None
    if path.is_dir():
        watched = DirectoryProfileSource(path)
        return watched, watched
    doc = _load_yaml(path)  # JSON is YAML too
    data = doc.get("data") if isinstance(doc, dict) and doc.get("kind") == "ConfigMap" else doc
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UserError(f"{path}: expected a ConfigMap or a JSON object of profile strings")
    source, errors = InMemoryProfileSource.from_configmap_data(data)
    for line in errors:
        print(f"aihpa webhook: skipping profile {line}", file=sys.stderr)
    return source, None


def _cert_source(args: argparse.Namespace) -> Any:
    from aihpa.webhook.certs import CertificateSource

    if args.cert_dir is not None and (args.tls_cert is not None or args.tls_key is not None):
        raise UserError("give --cert-dir or --tls-cert/--tls-key, not both")
    if args.cert_dir is not None:
        if args.self_signed:
            return CertificateSource.self_managed(args.cert_dir, service=args.service, namespace=args.namespace)
        return CertificateSource.from_directory(args.cert_dir)
    if args.self_signed:
        raise UserError("--self-signed needs --cert-dir")
    if args.tls_cert is None or args.tls_key is None:
        raise UserError("the webhook serves TLS only: give --cert-dir, or --tls-cert and --tls-key")
    return CertificateSource(args.tls_cert, args.tls_key)


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import contextlib
    import signal

    from aihpa.webhook.server import create_app, start_server
    from aihpa.webhook.settings import WebhookSettings

    defaults = policy_defaults(args)
    try:
        settings = WebhookSettings(
            defaults=defaults,
            model_version=args.model_version,
            answer_within_s=args.answer_within,
            cert_check_interval_s=args.cert_check_interval,
            header_timeout_s=args.header_timeout,
            body_timeout_s=args.body_timeout,
            max_connections=args.max_connections,
        )
    except ValueError as exc:
        raise UserError(str(exc)) from None
    if not 0 <= args.port <= 65535:
        raise UserError(f"--port must be 0..65535, got {args.port}")
    if args.profiles is not None and args.profiles_configmaps is not None:
        raise UserError("give --profiles or --profiles-configmaps, not both")
    if args.kubeconfig is not None and args.profiles_configmaps is None:
        raise UserError("--kubeconfig is for --profiles-configmaps")
    profiles, watched = _load_profiles(args.profiles)
    certs = _cert_source(args)

    async def main() -> None:
        from aihpa.k8s import KubeClient, api_client
        from aihpa.webhook.profile_configmaps import ConfigMapProfileSource

        source: ProfileSource = profiles
        api = None
        configmaps: ConfigMapProfileSource | None = None
        if args.profiles_configmaps is not None:
            kubeconfig = None if args.kubeconfig is None else str(args.kubeconfig)
            api = await api_client(kubeconfig=kubeconfig)
            configmaps = ConfigMapProfileSource(KubeClient(api), namespace=args.profiles_configmaps)
            source = configmaps
        try:
            app = create_app(settings, source, certs=certs)
            try:
                runner, port = await start_server(app, host=args.host, port=args.port, ssl_context=certs.ssl_context)
            except OSError as exc:
                raise UserError(f"cannot listen on {args.host}:{args.port}: {exc.strerror}") from None
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            # Serving starts before the first list of profiles: admissions meanwhile go without a forecast.
            watchers = []
            if watched is not None:
                watchers.append(asyncio.create_task(watched.run(interval_s=args.profiles_interval)))
            if configmaps is not None:
                watchers.append(asyncio.create_task(configmaps.run()))
            print(f"aihpa webhook: serving https://{args.host}:{port}/mutate", file=sys.stderr, flush=True)
            try:
                await stop.wait()
            finally:
                for watcher in watchers:
                    watcher.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watcher
                await runner.cleanup()
        finally:
            if api is not None:
                await api.close()

    asyncio.run(main())
    return 0


def _certs_generate(args: argparse.Namespace) -> int:
    import time

    import yaml

    from aihpa.webhook import certs

    apply = args.apply or args.kubeconfig is not None
    out: Path | None = args.out_dir
    if out is None and not apply:
        raise UserError("give --out-dir, or --apply / --kubeconfig to put the Secret in the cluster")
    if out is not None:
        files = (certs.TLS_CERT_FILE, certs.TLS_KEY_FILE, certs.CA_CERT_FILE)
        existing = [name for name in files if (out / name).exists()]
        if existing and not args.force:
            raise UserError(f"{out} already holds {', '.join(existing)}; pass --force to replace them")
    ca, serving = certs.generate(
        service=args.service,
        namespace=args.namespace,
        now=time.time(),
        ips=args.ip,
        lifetime_s=args.days * 86_400.0,
    )
    secret = certs.tls_secret(serving, name=args.secret_name, namespace=args.namespace)
    try:
        if out is not None:
            certs.write_files(out, serving, ca=ca)
        if args.secret_out is not None:
            args.secret_out.parent.mkdir(parents=True, exist_ok=True)
            args.secret_out.write_text(yaml.safe_dump(secret, sort_keys=False))
    except OSError as exc:
        raise UserError(f"cannot write certificates: {exc}") from None
    names = ", ".join(certs.dns_names(args.service, args.namespace) + list(args.ip))
    if out is not None:
        print(f"wrote {out}/{{ca.crt,ca.key,tls.crt,tls.key}} for {names}")
    if args.secret_out is not None:
        print(f"wrote Secret {args.namespace}/{args.secret_name} to {args.secret_out}")
    if apply:
        from aihpa.webhook.kube_certs import apply_secret

        try:
            stored = _on_cluster(args.kubeconfig, lambda kube: apply_secret(kube, secret))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        version = stored.get("metadata", {}).get("resourceVersion", "?")
        print(f"applied Secret {args.namespace}/{args.secret_name} (resourceVersion {version}) for {names}")
        if out is None:
            # Without the CA key nothing can issue a renewal from this CA: the next rotation makes a new CA.
            print("the CA key was not kept (no --out-dir): inject the new CA bundle after every rotation")
    return 0


def _read_ca(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def _certs_inject(args: argparse.Namespace) -> int:
    if args.name is not None:
        return _certs_inject_live(args)
    import yaml

    from aihpa.webhook.certs import inject_ca_bundle

    if args.kubeconfig is not None:
        raise UserError("--kubeconfig is for --name; with --config the manifest file is edited")
    config = _load_yaml(args.config)
    if not isinstance(config, dict):
        raise UserError(f"{args.config} is not a manifest")
    ca_pem = _read_ca(args.ca_file)
    try:
        updated = inject_ca_bundle(config, ca_pem)
    except ValueError as exc:
        raise UserError(f"{args.ca_file} is not a PEM certificate: {exc}") from None
    text = yaml.safe_dump(updated, sort_keys=False)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.write_text(text)
    return 0


def _certs_inject_live(args: argparse.Namespace) -> int:
    from cryptography import x509

    from aihpa.webhook.kube_certs import inject_ca_bundle_live

    if args.out is not None:
        raise UserError("--out is for --config; with --name the live configuration is updated in place")
    ca_pem = _read_ca(args.ca_file)
    try:
        x509.load_pem_x509_certificates(ca_pem)  # fail before touching the cluster
    except ValueError as exc:
        raise UserError(f"{args.ca_file} is not a PEM certificate: {exc}") from None
    stored = _on_cluster(args.kubeconfig, lambda kube: inject_ca_bundle_live(kube, name=args.name, ca_pem=ca_pem))
    hooks = len(stored.get("webhooks") or [])
    print(f"set caBundle on {hooks} webhook(s) of MutatingWebhookConfiguration {args.name}")
    return 0
