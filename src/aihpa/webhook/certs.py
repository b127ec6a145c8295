"""Webhook certificates: a CA and a serving certificate (ECDSA P-256), stored as files or as a Kubernetes TLS Secret,
and a `CertificateSource` that serves them, reloads them when they change and renews them at 2/3 of their lifetime.

The source owns one `ssl.SSLContext` for the listener and swaps its certificate chain in place, under a lock, after
checking the new pair in a scratch context: new handshakes get the new certificate, open connections keep theirs, and
the listener is never restarted. Time comes from an injectable clock; nothing here sleeps except
`CertificateSource.run`, through that clock.

It must never log or return private key material, and never leave the live context with a half-loaded pair.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import hashlib
import ipaddress
import logging
import os
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from aihpa.clock import Clock, SystemClock
from aihpa.errors import UserError
from aihpa.jsoncopy import copy_json

__all__ = [
    "CA_CERT_FILE",
    "CA_KEY_FILE",
    "TLS_CERT_FILE",
    "TLS_KEY_FILE",
    "CertHealth",
    "CertificateAuthority",
    "CertificateSource",
    "ServingCert",
    "cert_validity",
    "dns_names",
    "generate",
    "generate_ca",
    "inject_ca_bundle",
    "issue_serving_cert",
    "read_ca",
    "read_files",
    "renewal_time",
    "serving_from_secret",
    "tls_secret",
    "write_files",
]

log = logging.getLogger(__name__)

# The names of a kubernetes.io/tls Secret's keys, used for files too so a mounted Secret is a cert directory.
TLS_CERT_FILE: Final = "tls.crt"
TLS_KEY_FILE: Final = "tls.key"
CA_CERT_FILE: Final = "ca.crt"
CA_KEY_FILE: Final = "ca.key"

CA_LIFETIME_S: Final = 10 * 365 * 86_400.0
SERVING_LIFETIME_S: Final = 365 * 86_400.0
# Certificates start a little in the past so a peer whose clock lags ours does not see them as not yet valid.
_BACKDATE_S: Final = 300.0
RENEW_AT_FRACTION: Final = 2.0 / 3.0


@dataclass(frozen=True, slots=True)
class CertificateAuthority:
    cert_pem: bytes
    key_pem: bytes = field(repr=False)


@dataclass(frozen=True, slots=True)
class ServingCert:
    """What a server and a kubernetes.io/tls Secret hold: the chain, its key, and the CA that clients trust."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_pem: bytes


def dns_names(service: str, namespace: str) -> list[str]:
    """Every name by which a Service is reached in-cluster, shortest first."""
    if not service or not namespace:
        raise UserError("a serving certificate needs a service name and a namespace")
    return [service, f"{service}.{namespace}", f"{service}.{namespace}.svc", f"{service}.{namespace}.svc.cluster.local"]


def _utc(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, tz=dt.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def generate_ca(
    *, now: float, common_name: str = "aihpa-webhook-ca", lifetime_s: float = CA_LIFETIME_S
) -> CertificateAuthority:
    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now - _BACKDATE_S))
        .not_valid_after(_utc(now + lifetime_s))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertificateAuthority(cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_key_pem(key))


def issue_serving_cert(
    ca: CertificateAuthority,
    *,
    service: str,
    namespace: str,
    now: float,
    ips: Sequence[str] = (),
    lifetime_s: float = SERVING_LIFETIME_S,
) -> ServingCert:
    """A serving certificate for the Service's DNS names (and `ips`, e.g. 127.0.0.1 in tests), signed by `ca`."""
    names = dns_names(service, namespace)
    try:
        addresses = [ipaddress.ip_address(ip) for ip in ips]
    except ValueError as exc:
        raise UserError(f"not an IP address: {exc}") from None
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    ca_key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise UserError("the CA key must be an ECDSA key")
    key = _new_key()
    public = key.public_key()
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(a) for a in addresses]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[2])]))
        .issuer_name(ca_cert.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(_utc(now - _BACKDATE_S))
        .not_valid_after(min(_utc(now + lifetime_s), ca_cert.not_valid_after_utc))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return ServingCert(
        cert_pem=cert.public_bytes(serialization.Encoding.PEM), key_pem=_key_pem(key), ca_pem=ca.cert_pem
    )


def generate(
    *, service: str, namespace: str, now: float, ips: Sequence[str] = (), lifetime_s: float = SERVING_LIFETIME_S
) -> tuple[CertificateAuthority, ServingCert]:
    """A fresh CA and a serving certificate signed by it."""
    ca = generate_ca(now=now)
    return ca, issue_serving_cert(ca, service=service, namespace=namespace, now=now, ips=ips, lifetime_s=lifetime_s)


def cert_validity(cert_pem: bytes) -> tuple[float, float]:
    """(not_before, not_after) of the first certificate in `cert_pem`, as Unix seconds."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.not_valid_before_utc.timestamp(), cert.not_valid_after_utc.timestamp()


def renewal_time(not_before: float, not_after: float) -> float:
    """When to renew: 2/3 into the lifetime, leaving a third for retries before expiry."""
    return not_before + RENEW_AT_FRACTION * (not_after - not_before)


def _write_atomic(path: Path, data: bytes, *, private: bool) -> None:
    # Write beside the target and rename, so a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o600 if private else 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_files(directory: Path, serving: ServingCert, *, ca: CertificateAuthority | None = None) -> None:
    """Write tls.crt, tls.key (mode 0600) and ca.crt, and ca.key when a CA is given (needed to renew later).

    The key is written before the certificate, so a watcher that sees the new certificate finds its key in place.
    """
    directory.mkdir(parents=True, exist_ok=True)
    if ca is not None:
        _write_atomic(directory / CA_KEY_FILE, ca.key_pem, private=True)
    _write_atomic(directory / CA_CERT_FILE, serving.ca_pem, private=False)
    _write_atomic(directory / TLS_KEY_FILE, serving.key_pem, private=True)
    _write_atomic(directory / TLS_CERT_FILE, serving.cert_pem, private=False)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"{path} does not exist") from None
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None


def read_files(directory: Path) -> ServingCert:
    return ServingCert(
        cert_pem=_read(directory / TLS_CERT_FILE),
        key_pem=_read(directory / TLS_KEY_FILE),
        ca_pem=_read(directory / CA_CERT_FILE),
    )


def read_ca(directory: Path) -> CertificateAuthority:
    return CertificateAuthority(cert_pem=_read(directory / CA_CERT_FILE), key_pem=_read(directory / CA_KEY_FILE))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def tls_secret(serving: ServingCert, *, name: str, namespace: str) -> dict[str, Any]:
    """A kubernetes.io/tls Secret manifest holding the serving pair and `ca.crt`."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "aihpa", "app.kubernetes.io/component": "webhook"},
        },
        "type": "kubernetes.io/tls",
        "data": {
            TLS_CERT_FILE: _b64(serving.cert_pem),
            TLS_KEY_FILE: _b64(serving.key_pem),
            CA_CERT_FILE: _b64(serving.ca_pem),
        },
    }


def serving_from_secret(manifest: Mapping[str, Any]) -> ServingCert:
    """The serving pair and CA held by a kubernetes.io/tls Secret manifest (data base64, or stringData)."""
    if manifest.get("kind") != "Secret" or manifest.get("type") != "kubernetes.io/tls":
        raise UserError("not a kubernetes.io/tls Secret")
    data = manifest.get("data") or {}
    plain = manifest.get("stringData") or {}
    values: dict[str, bytes] = {}
    for key in (TLS_CERT_FILE, TLS_KEY_FILE, CA_CERT_FILE):
        if isinstance(plain.get(key), str):
            values[key] = plain[key].encode()
        elif isinstance(data.get(key), str):
            try:
                values[key] = base64.b64decode(data[key], validate=True)
            except binascii.Error:
                raise UserError(f"Secret data {key!r} is not base64") from None
        else:
            raise UserError(f"Secret has no {key!r}")
    return ServingCert(cert_pem=values[TLS_CERT_FILE], key_pem=values[TLS_KEY_FILE], ca_pem=values[CA_CERT_FILE])


def inject_ca_bundle(
    config: Mapping[str, Any], ca_pem: bytes, *, webhook_names: Iterable[str] | None = None
) -> dict[str, Any]:
    """A copy of a webhook configuration with `caBundle` set on its webhooks (all of them, or those named)."""
    if config.get("kind") not in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        raise UserError("not a MutatingWebhookConfiguration or ValidatingWebhookConfiguration")
    x509.load_pem_x509_certificates(ca_pem)  # a clear error now rather than a TLS failure in the API server later
    wanted = set(webhook_names) if webhook_names is not None else None
    out: dict[str, Any] = copy_json(dict(config))
    hooks = out.get("webhooks") or []
    touched = 0
    for hook in hooks:
        if wanted is None or hook.get("name") in wanted:
            hook.setdefault("clientConfig", {})["caBundle"] = _b64(ca_pem)
            touched += 1
    if not touched:
        raise UserError("no webhook in the configuration matched")
    return out


def _check_pair(cert_pem: bytes, key_pem: bytes) -> x509.Certificate:
    """The leaf certificate, once its key is known to match; raises ValueError otherwise."""
    chain = x509.load_pem_x509_certificates(cert_pem)
    key = serialization.load_pem_private_key(key_pem, password=None)
    leaf = chain[0]
    fmt = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if leaf.public_key().public_bytes(*fmt) != key.public_key().public_bytes(*fmt):
        raise ValueError("the private key does not match the certificate")
    return leaf


def _server_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _load_into(context: ssl.SSLContext, cert_pem: bytes, key_pem: bytes) -> None:
    # ssl only loads from files. Loading the bytes already checked (not the originals, which may change meanwhile)
    # needs a private copy: an anonymous in-memory file on Linux, so no key touches a disk and a read-only root
    # filesystem is fine; a 0600 temporary file elsewhere.
    blob = memoryview(cert_pem.rstrip(b"\n") + b"\n" + key_pem)
    if hasattr(os, "memfd_create") and os.path.isdir("/proc/self/fd"):
        fd = os.memfd_create("aihpa-tls", os.MFD_CLOEXEC)
        try:
            while blob:
                blob = blob[os.write(fd, blob) :]
            context.load_cert_chain(f"/proc/self/fd/{fd}")
        finally:
            os.close(fd)
        return
    with tempfile.TemporaryDirectory(prefix="aihpa-tls-") as tmp:
        path = Path(tmp) / "pair.pem"
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as f:
            f.write(blob)
        context.load_cert_chain(path)


@dataclass(frozen=True, slots=True)
class CertHealth:
    ok: bool
    detail: dict[str, Any]


Renewer = Callable[[float], ServingCert]


class CertificateSource:
    """The serving certificate of a listener: load, watch for change, renew, swap in place, report health.

    `check()` does one round (renew if due and a renewer is set, else reload if the files changed); `run()` calls it
    every `interval_s` on the clock. A failed load keeps the previous certificate and is reported by `health()`.
    """

    def __init__(
        self, cert_file: Path, key_file: Path, *, clock: Clock | None = None, renewer: Renewer | None = None
    ) -> None:
        self.cert_file = Path(cert_file)
        self.key_file = Path(key_file)
        self._clock: Clock = clock or SystemClock()
        self._renewer = renewer
        self._lock = threading.Lock()
        self._context = _server_context()
        self._signature: tuple[tuple[int, int, int], ...] | None = None
        self._not_before = 0.0
        self._not_after = 0.0
        self._fingerprint = ""
        self._loaded = False
        self._last_error: str | None = None
        self.reloads = 0
        self._load()

    @classmethod
    def from_directory(cls, directory: Path, *, clock: Clock | None = None) -> CertificateSource:
        """Serve tls.crt/tls.key from a directory (a mounted Secret, cert-manager's output) and follow its changes."""
        return cls(directory / TLS_CERT_FILE, directory / TLS_KEY_FILE, clock=clock)

    @classmethod
    def self_managed(
        cls,
        directory: Path,
        *,
        service: str,
        namespace: str,
        ips: Sequence[str] = (),
        lifetime_s: float = SERVING_LIFETIME_S,
        clock: Clock | None = None,
    ) -> CertificateSource:
        """Serve from a directory that aihpa owns: create a CA and a certificate there if absent, renew with that CA."""
        clock = clock or SystemClock()
        if not (directory / CA_KEY_FILE).exists():
            ca, serving = generate(
                service=service, namespace=namespace, now=clock.now(), ips=ips, lifetime_s=lifetime_s
            )
            write_files(directory, serving, ca=ca)
        ca = read_ca(directory)

        def renew(now: float) -> ServingCert:
            return issue_serving_cert(ca, service=service, namespace=namespace, now=now, ips=ips, lifetime_s=lifetime_s)

        if not (directory / TLS_CERT_FILE).exists():
            write_files(directory, renew(clock.now()))
        return cls(directory / TLS_CERT_FILE, directory / TLS_KEY_FILE, clock=clock, renewer=renew)

    @property
    def ssl_context(self) -> ssl.SSLContext:
        """The listener's context; the same object for the source's life, its certificate swapped in place."""
        return self._context

    @property
    def not_after(self) -> float:
        return self._not_after

    @property
    def renew_at(self) -> float:
        return renewal_time(self._not_before, self._not_after)

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the served leaf certificate (DER), hex."""
        return self._fingerprint

    def _stat(self) -> tuple[tuple[int, int, int], ...]:
        out = []
        for path in (self.cert_file, self.key_file):
            st = path.stat()
            out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def _load(self) -> bool:
        try:
            signature = self._stat()
            cert_pem = self.cert_file.read_bytes()
            key_pem = self.key_file.read_bytes()
            leaf = _check_pair(cert_pem, key_pem)
            # Prove the pair loads before the live context sees it: a failure must leave the old pair serving.
            _load_into(_server_context(), cert_pem, key_pem)
        except (OSError, ValueError, TypeError, ssl.SSLError) as exc:
            self._last_error = f"cannot load {self.cert_file.name}/{self.key_file.name}: {exc}"
            log.warning("%s", self._last_error)
            if not self._loaded:
                raise UserError(self._last_error) from None
            return False
        with self._lock:
            _load_into(self._context, cert_pem, key_pem)
            self._signature = signature
            self._not_before = leaf.not_valid_before_utc.timestamp()
            self._not_after = leaf.not_valid_after_utc.timestamp()
            self._fingerprint = hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
            self._loaded = True
            self._last_error = None
            self.reloads += 1
        log.info("serving certificate %s, valid until %s", self._fingerprint[:16], _utc(self._not_after).isoformat())
        return True

    def check(self) -> bool:
        """One round: renew when due (if this source can), else reload if the files changed. True if it swapped."""
        now = self._clock.now()
        if self._renewer is not None and now >= self.renew_at:
            try:
                serving = self._renewer(now)
                # Key first: a watcher that sees the new certificate finds its key already in place.
                _write_atomic(self.key_file, serving.key_pem, private=True)
                _write_atomic(self.cert_file, serving.cert_pem, private=False)
            except (OSError, ValueError, UserError) as exc:
                self._last_error = f"renewal failed: {exc}"
                log.warning("%s", self._last_error)
                return False
            return self._load()
        try:
            signature = self._stat()
        except OSError as exc:
            self._last_error = f"cannot stat certificate files: {exc.strerror}"
            return False
        if signature == self._signature:
            return False
        return self._load()

    async def run(self, *, interval_s: float, max_iterations: int | None = None) -> None:
        """Check every `interval_s` seconds on the clock, forever or `max_iterations` times.

        The files are a few KiB, so the check runs on the loop, where handshakes read the context: no thread races it.
        """
        done = 0
        while max_iterations is None or done < max_iterations:
            await self._clock.sleep(interval_s)
            try:
                self.check()
            except Exception as exc:  # the watcher outlives one bad round; health() reports it
                self._last_error = f"certificate check failed: {exc}"
                log.exception("certificate check failed")
            done += 1

    def health(self) -> CertHealth:
        now = self._clock.now()
        detail: dict[str, Any] = {
            "fingerprint": self._fingerprint,
            "notAfter": _utc(self._not_after).isoformat(),
            "renewAt": _utc(self.renew_at).isoformat(),
            "expiresInSeconds": round(self._not_after - now),
            "renewalDue": now >= self.renew_at,
            "selfManaged": self._renewer is not None,
        }
        if self._last_error:
            detail["lastError"] = self._last_error
        ok = self._loaded and self._not_before <= now < self._not_after
        return CertHealth(ok=ok, detail=detail)
