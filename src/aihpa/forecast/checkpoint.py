"""Versioned checkpoints as data: flax msgpack parameters plus a JSON metadata file. Never pickles.

Layout of one checkpoint directory::

    params.msgpack   the model parameters (flax.serialization msgpack of a pure dict of arrays)
    metadata.json    format and version, model step, model and training config, data digest, metrics, provenance,
                     digests

A models directory holds one sub-directory per version and a `latest` file naming the one in use. The version is
derived from the parameters' digest, so two different models never share a version. Two digests are recorded:
`params_sha256` (of params.msgpack alone) and `checkpoint_sha256`, which covers the parameters *and* the metadata
(see `checkpoint_digest`), so an edited quantile list or input clip is caught as surely as damaged parameters.
Loading checks the format, both digests, the model config (finite values, positive sizes, ascending quantiles) and
the parameters (finite, and shaped as the config says): a corrupt or incompatible checkpoint is refused with a
`CheckpointError`, and whatever the caller was using stays in use. Writes are atomic (temporary dir, then rename).

The digests catch damage and hand edits, not a deliberate forgery: whoever can write the directory can recompute
them. Keep models directories writable only by the controller.

`step_s` is the model step (seconds) the model was trained at: a controller running at another step must refuse the
model or resample its history. A checkpoint written before it was recorded reads as None (unknown).

A checkpoint written before `checkpoint_sha256` existed still loads (everything above is checked but the metadata's
integrity) with a logged warning; `seal_checkpoint` adds the digest to it once its metadata has been checked.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from aihpa.errors import UserError
from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.serving import decode_params, flat_params, param_shapes

if TYPE_CHECKING:
    from aihpa.forecast.model import BiLSTM

__all__ = [
    "DIGEST",
    "FORMAT",
    "FORMAT_VERSION",
    "STEP",
    "Checkpoint",
    "CheckpointError",
    "checkpoint_digest",
    "load_checkpoint",
    "save_checkpoint",
    "seal_checkpoint",
]

log = logging.getLogger(__name__)

FORMAT = "aihpa-bilstm"
FORMAT_VERSION = 1
PARAMS = "params.msgpack"
METADATA = "metadata.json"
LATEST = "latest"
# the metadata field holding the digest of the whole checkpoint (parameters and metadata)
DIGEST = "checkpoint_sha256"
# the metadata field holding the model step in seconds (absent in checkpoints written before it was recorded)
STEP = "step_s"


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, corrupt, or made for another format or model shape."""


@dataclass(frozen=True)
class Checkpoint:
    """A verified checkpoint: its parameters as NumPy arrays (`params`, nested as stored), config and metadata. Loading
    it does not import JAX; `model` builds the flax module on first use (to fine-tune it)."""

    params: dict[str, Any]
    model_cfg: ModelConfig
    metadata: dict[str, Any]
    path: Path

    @cached_property
    def model(self) -> BiLSTM:
        return build_model(self.model_cfg, self.params)

    @property
    def version(self) -> str:
        return str(self.metadata["version"])

    @property
    def step_s(self) -> float | None:
        """The model step it was trained at, in seconds; None when the checkpoint does not record it."""
        step = self.metadata.get(STEP)
        return None if step is None else float(step)


def pure_params(model: BiLSTM) -> dict[str, Any]:
    """The model's parameters as a nested dict of NumPy arrays (what params.msgpack stores)."""
    import jax
    from flax import nnx

    state = nnx.state(model, nnx.Param)
    pure: dict[str, Any] = jax.tree.map(np.asarray, nnx.to_pure_dict(state))
    return pure


def _canonical_metadata(metadata: dict[str, Any]) -> bytes:
    """The metadata as the digest sees it: every field but the digest itself, keys sorted, no whitespace, ASCII."""
    body = {k: v for k, v in metadata.items() if k != DIGEST}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode("ascii")


def checkpoint_digest(payload: bytes, metadata: dict[str, Any]) -> str:
    """sha256 of the parameters' bytes (length-prefixed, so the two parts cannot be re-cut) and the canonical JSON of
    the metadata without `checkpoint_sha256`.

    Floats are written by Python's `repr`, which round-trips exactly, so metadata read back from metadata.json gives
    the same bytes as the metadata that was written.
    """
    h = hashlib.sha256()
    h.update(len(payload).to_bytes(8, "big"))
    h.update(payload)
    h.update(_canonical_metadata(metadata))
    return h.hexdigest()


def _metadata_text(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata, indent=2, sort_keys=True) + "\n"


def save_checkpoint(
    workdir: str | Path,
    *,
    model: BiLSTM,
    model_cfg: ModelConfig,
    train_cfg: TrainConfig | None,
    metrics: dict[str, float],
    data: list[dict[str, Any]],
    digest: str,
    created: str,
    provenance: dict[str, Any],
    step_s: float | None = None,
    set_latest: bool = True,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a new version under `workdir` and (by default) point `latest` at it; returns the version directory.

    `step_s` is the model step the model was trained at (`TrainResult.step_s`); None records it as unknown. `extra`:
    more metadata keys (such as the calibration prior, `aihpa.scaling.prior`), covered by the checkpoint digest; they
    may not replace the keys written here.
    """
    if step_s is not None and not (math.isfinite(step_s) and step_s > 0):
        raise ValueError(f"the model step must be a positive number of seconds, not {step_s!r}")
    from flax import serialization

    payload = serialization.msgpack_serialize(pure_params(model))
    params_sha = hashlib.sha256(payload).hexdigest()
    version = f"bilstm-{params_sha[:12]}"
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "created": created,
        STEP: None if step_s is None else float(step_s),
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict() if train_cfg is not None else None,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "data": data,
        "data_digest": digest,
        "params_sha256": params_sha,
        "provenance": provenance,
    }
    clash = set(extra or {}) & (set(metadata) | {DIGEST})
    if clash:
        raise ValueError(f"extra metadata may not replace {', '.join(sorted(clash))}")
    metadata.update(extra or {})
    # the digest is taken over what a reader will see: the metadata as it reads back from JSON (tuples become lists)
    metadata = json.loads(json.dumps(metadata))
    metadata[DIGEST] = checkpoint_digest(payload, metadata)
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
        try:
            # mkdtemp makes it private (0700); a version is as readable as any directory made here (the umask's)
            umask = os.umask(0)
            os.umask(umask)
            tmp.chmod(0o777 & ~umask)
            (tmp / PARAMS).write_bytes(payload)
            (tmp / METADATA).write_text(_metadata_text(metadata))
            os.replace(tmp, final)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    if set_latest:
        set_latest_version(root, version)
    return final


def set_latest_version(workdir: str | Path, version: str) -> None:
    root = Path(workdir)
    if not (root / version / METADATA).is_file():
        raise CheckpointError(f"{root}: no checkpoint version {version!r}")
    tmp = root / f".{LATEST}.tmp"
    tmp.write_text(version + "\n")
    os.replace(tmp, root / LATEST)


def resolve(path: str | Path) -> Path:
    """The checkpoint directory that `path` means: itself, or its `latest` version."""
    p = Path(path)
    if (p / METADATA).is_file():
        return p
    latest = p / LATEST
    if latest.is_file():
        version = latest.read_text().strip()
        target = p / version
        if not (target / METADATA).is_file():
            raise CheckpointError(f"{p}: `latest` names {version!r}, which has no checkpoint")
        return target
    if not p.exists():
        raise CheckpointError(f"{p}: no such checkpoint directory")
    raise CheckpointError(f"{p}: neither a checkpoint ({METADATA}) nor a models directory ({LATEST})")


def _read_verified(ckpt: Path) -> tuple[dict[str, Any], bytes, bool, ModelConfig, Any]:
    """Metadata, parameter bytes, whether the digest of the whole is recorded (it holds when it is), model config and
    restored parameters of `ckpt`. The digests are checked before anything is read from the metadata, so an edit is
    reported as an edit."""
    try:
        metadata = json.loads((ckpt / METADATA).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{ckpt}: unreadable {METADATA}: {exc}") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise CheckpointError(f"{ckpt}: not an {FORMAT} checkpoint")
    if metadata.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{ckpt}: checkpoint format version {metadata.get('format_version')!r}, this aihpa reads {FORMAT_VERSION}"
        )
    try:
        payload = (ckpt / PARAMS).read_bytes()
    except OSError as exc:
        raise CheckpointError(f"{ckpt}: unreadable {PARAMS}: {exc}") from exc
    if hashlib.sha256(payload).hexdigest() != metadata.get("params_sha256"):
        raise CheckpointError(f"{ckpt}: {PARAMS} does not match its recorded digest (corrupt or altered)")
    sealed = _check_digest(ckpt, metadata, payload)
    step = metadata.get(STEP)
    if step is not None and not (isinstance(step, int | float) and not isinstance(step, bool)
                                 and math.isfinite(step) and step > 0):
        raise CheckpointError(f"{ckpt}: bad {STEP} {step!r}: the model step must be a positive number of seconds")
    try:
        cfg = ModelConfig.from_dict(metadata["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt}: bad model_config: {exc}") from exc
    try:
        restored = decode_params(payload)
    except Exception as exc:  # msgpack raises several unrelated types for damaged data
        raise CheckpointError(f"{ckpt}: cannot decode {PARAMS}: {exc}") from exc
    return metadata, payload, sealed, cfg, restored


def _check_digest(ckpt: Path, metadata: dict[str, Any], payload: bytes) -> bool:
    """Whether `ckpt` records the digest of the whole (False: written before it existed); refuses one that fails."""
    if DIGEST not in metadata:
        return False
    if metadata[DIGEST] != checkpoint_digest(payload, metadata):
        raise CheckpointError(
            f"{ckpt}: {METADATA} does not match the checkpoint's recorded digest ({DIGEST}): corrupt or edited by "
            "hand; restore the original or train a new model with `aihpa train`"
        )
    return True


def _check_params(ckpt: Path, cfg: ModelConfig, restored: Any) -> None:
    """Every parameter the config needs, shaped as it needs, finite; nothing else."""
    if not isinstance(restored, dict):
        raise CheckpointError(f"{ckpt}: the parameters are not a mapping")
    have = flat_params(restored)
    want = param_shapes(cfg)
    if set(have) != set(want):
        raise CheckpointError(
            f"{ckpt}: parameters do not fit the model config "
            f"(missing {sorted(set(want) - set(have))}, unexpected {sorted(set(have) - set(want))})"
        )
    for where, shape in want.items():
        got = tuple(np.shape(have[where]))
        if got != shape:
            raise CheckpointError(f"{ckpt}: parameter /{where} has shape {got}, the model config needs {shape}")
        values = np.asarray(have[where])
        if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
            raise CheckpointError(f"{ckpt}: parameter /{where} holds values that are not finite numbers")


def build_model(cfg: ModelConfig, params: dict[str, Any]) -> BiLSTM:
    """The flax module with these (checked) parameters: a concrete model, so every variable, not only the
    parameters, is real and it can be fine-tuned as well as used. Imports JAX."""
    from flax import nnx

    from aihpa.forecast.model import BiLSTM

    model = BiLSTM(cfg, rngs=nnx.Rngs(0))
    params_state = nnx.state(model, nnx.Param)
    expected = nnx.to_pure_dict(params_state)
    nnx.replace_by_pure_dict(params_state, _align_keys(expected, params))
    nnx.update(model, params_state)
    return model


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and verify a checkpoint (a version directory or a models directory with `latest`)."""
    ckpt = resolve(path)
    metadata, _payload, sealed, cfg, restored = _read_verified(ckpt)
    if not sealed:
        # written before the digest covered the metadata. Refusing it would leave a controller upgraded in place with
        # no model and no version to roll back to; its config, parameters and (in the forecaster) forecasts are still
        # checked, so only an edit that keeps them all valid goes unseen.
        log.warning(
            "%s: checkpoint has no %s (written by an older aihpa), so edits to its %s cannot be detected; check its "
            "model_config, then seal it with aihpa.forecast.checkpoint.seal_checkpoint (or train a new model)",
            ckpt, DIGEST, METADATA,
        )
    _check_params(ckpt, cfg, restored)
    return Checkpoint(params=restored, model_cfg=cfg, metadata=metadata, path=ckpt)


def seal_checkpoint(path: str | Path) -> Path:
    """Record `checkpoint_sha256` in a checkpoint written before it existed; returns the version directory.

    Every other check runs first (format, parameter digest, config, parameter shapes and values), and metadata.json
    is replaced atomically with the parameters untouched, so the version name stays. A sealed checkpoint is left as
    it is when its digest holds and refused when it does not: sealing never blesses an edit.
    """
    ckpt = resolve(path)
    metadata, payload, sealed, cfg, restored = _read_verified(ckpt)
    if sealed:
        return ckpt
    _check_params(ckpt, cfg, restored)
    metadata[DIGEST] = checkpoint_digest(payload, metadata)
    tmp = ckpt / f".{METADATA}.tmp"
    tmp.write_text(_metadata_text(metadata))
    os.replace(tmp, ckpt / METADATA)
    return ckpt


def _align_keys(expected: Any, restored: Any) -> Any:
    """msgpack stores integer keys (list indices) as strings: give them back the expected key types."""
    if not isinstance(expected, dict):
        return restored
    by_text = {str(k): k for k in expected}
    return {by_text.get(str(k), k): _align_keys(expected.get(by_text.get(str(k), k)), v) for k, v in restored.items()}
