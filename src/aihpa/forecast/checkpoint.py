"""Versioned checkpoints as data: flax msgpack parameters plus a JSON metadata file. Never pickles.

Layout of one checkpoint directory::

    params.msgpack   the model parameters (flax.serialization msgpack of a pure dict of arrays)
    metadata.json    format and version, model and training config, data digest, metrics, provenance

A models directory holds one sub-directory per version and a `latest` file naming the one in use. The version is
derived from the parameters' digest, so two different models never share a version. Loading checks the format, the
parameters' digest and their shapes against the config: a corrupt or incompatible checkpoint is refused with a
`CheckpointError`, and whatever the caller was using stays in use. Writes are atomic (temporary dir, then rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx, serialization

from aihpa.errors import UserError
from aihpa.forecast.config import ModelConfig, TrainConfig
from aihpa.forecast.model import BiLSTM

__all__ = ["FORMAT", "FORMAT_VERSION", "Checkpoint", "CheckpointError", "load_checkpoint", "save_checkpoint"]

FORMAT = "aihpa-bilstm"
FORMAT_VERSION = 1
PARAMS = "params.msgpack"
METADATA = "metadata.json"
LATEST = "latest"


class CheckpointError(UserError):
    """A checkpoint that cannot be used: missing, corrupt, or made for another format or model shape."""


@dataclass(frozen=True)
class Checkpoint:
    model: BiLSTM
    model_cfg: ModelConfig
    metadata: dict[str, Any]
    path: Path

    @property
    def version(self) -> str:
        return str(self.metadata["version"])


def _pure(model: BiLSTM) -> dict[str, Any]:
    state = nnx.state(model, nnx.Param)
    pure: dict[str, Any] = jax.tree.map(np.asarray, nnx.to_pure_dict(state))
    return pure


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
    set_latest: bool = True,
) -> Path:
    """Write a new version under `workdir` and (by default) point `latest` at it; returns the version directory."""
    payload = serialization.msgpack_serialize(_pure(model))
    params_sha = hashlib.sha256(payload).hexdigest()
    version = f"bilstm-{params_sha[:12]}"
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "version": version,
        "created": created,
        "model_config": model_cfg.to_dict(),
        "train_config": train_cfg.to_dict() if train_cfg is not None else None,
        "metrics": {k: float(v) for k, v in metrics.items()},
        "data": data,
        "data_digest": digest,
        "params_sha256": params_sha,
        "provenance": provenance,
    }
    root = Path(workdir)
    root.mkdir(parents=True, exist_ok=True)
    final = root / version
    if not final.exists():
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=root))
        try:
            (tmp / PARAMS).write_bytes(payload)
            (tmp / METADATA).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")
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


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and verify a checkpoint (a version directory or a models directory with `latest`)."""
    ckpt = resolve(path)
    try:
        metadata = json.loads((ckpt / METADATA).read_text())
    except (OSError, json.JSONDecodeError) as exc:
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
    try:
        cfg = ModelConfig.from_dict(metadata["model_config"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{ckpt}: bad model_config: {exc}") from exc
    try:
        restored = serialization.msgpack_restore(payload)
    except Exception as exc:  # msgpack raises several unrelated types for damaged data
        raise CheckpointError(f"{ckpt}: cannot decode {PARAMS}: {exc}") from exc

    # a concrete model (small: building it is cheap), so every variable, not only the parameters, is real and the
    # loaded model can be fine-tuned as well as used
    model = BiLSTM(cfg, rngs=nnx.Rngs(0))
    params_state = nnx.state(model, nnx.Param)
    expected = nnx.to_pure_dict(params_state)
    _check_shapes(ckpt, expected, restored)
    nnx.replace_by_pure_dict(params_state, _align_keys(expected, restored))
    nnx.update(model, params_state)
    return Checkpoint(model=model, model_cfg=cfg, metadata=metadata, path=ckpt)


def _align_keys(expected: Any, restored: Any) -> Any:
    """msgpack stores integer keys (list indices) as strings: give them back the expected key types."""
    if not isinstance(expected, dict):
        return restored
    by_text = {str(k): k for k in expected}
    return {by_text.get(str(k), k): _align_keys(expected.get(by_text.get(str(k), k)), v) for k, v in restored.items()}


def _check_shapes(ckpt: Path, expected: Any, restored: Any, where: str = "") -> None:
    if isinstance(expected, dict):
        if not isinstance(restored, dict):
            raise CheckpointError(f"{ckpt}: parameter {where or '/'} is not a mapping")
        want = {str(k) for k in expected}
        have = {str(k) for k in restored}
        if want != have:
            raise CheckpointError(
                f"{ckpt}: parameters at {where or '/'} do not fit the model config "
                f"(missing {sorted(want - have)}, unexpected {sorted(have - want)})"
            )
        rmap = {str(k): v for k, v in restored.items()}
        for k, v in expected.items():
            _check_shapes(ckpt, v, rmap[str(k)], f"{where}/{k}")
        return
    shape = tuple(getattr(expected, "shape", ()))
    got = tuple(np.shape(restored))
    if shape != got:
        raise CheckpointError(f"{ckpt}: parameter {where} has shape {got}, the model config needs {shape}")
