"""Checkpoint files: atomic save, safe weights-only load, compatibility checks and a JSON-friendly summary."""
from __future__ import annotations

import os
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch

from mage_core.errors import MageError

FORMAT = "mage-ckpt"  # value of the "format" key of every checkpoint
FORMAT_VERSION = 1  # bumped when the payload layout changes incompatibly
REQUIRED_KEYS = ("format", "format_version", "algo", "config", "state_dict", "spaces")


def package_versions() -> dict:
    """Versions recorded in every checkpoint."""
    import mage_core

    return {"python": platform.python_version(), "torch": str(torch.__version__),
            "numpy": str(np.__version__), "mage": str(mage_core.__version__)}


def save_checkpoint(path, payload: dict) -> Path:
    """Write payload atomically: temp file in the same folder, fsync, os.replace. A process killed mid-write
    leaves the previous file intact. Adds format/format_version/versions when missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(payload)
    payload.setdefault("format", FORMAT)
    payload.setdefault("format_version", FORMAT_VERSION)
    payload.setdefault("versions", package_versions())
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        with os.fdopen(fd, "wb") as fh:
            torch.save(payload, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename durable
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def load_checkpoint(path, map_location="cpu") -> dict:
    """Load and validate a checkpoint with torch.load(weights_only=True); MageError for anything that is not a
    complete checkpoint of a supported format version."""
    path = Path(path)
    if not path.exists():
        raise MageError(f"The checkpoint file {path} does not exist.")
    if path.is_dir():
        raise MageError(f"{path} is a folder, not a checkpoint file.")
    if path.stat().st_size == 0:
        raise MageError(f"The checkpoint file {path} is empty (0 bytes).")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, random bytes, pickled objects that are not allowed
        raise MageError(unreadable_checkpoint_text(path, exc)) from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise MageError(f"{path} is a PyTorch file but not a mage checkpoint (it has no format={FORMAT!r} marker).")
    if ckpt.get("format_version") != FORMAT_VERSION:
        raise MageError(f"{path} has checkpoint format version {ckpt.get('format_version')}; this mage reads "
                        f"version {FORMAT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise MageError(f"{path} is missing checkpoint fields: {', '.join(missing)}")
    return ckpt


ZIP_MAGIC = b"PK\x03\x04"  # first bytes of every checkpoint torch.save writes (a zip archive)


def unreadable_checkpoint_text(path, exc: BaseException) -> str:
    """A full-sentence reason why torch could not read a file as a checkpoint, without torch's own advice (its
    "re-run with weights_only=False" would execute whatever code the file holds)."""
    import zipfile

    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(ZIP_MAGIC))
    except OSError as err:
        return f"{path} cannot be read: {err.strerror or err}."
    if head != ZIP_MAGIC:
        return (f"{path} is not a checkpoint: it is not a PyTorch archive. Open a .pt file written by `mage train` "
                f"or the studio's Train panel.")
    if not zipfile.is_zipfile(path):
        return (f"{path} is truncated or corrupt: the end of its archive is missing. It was probably copied or "
                f"downloaded only in part, or written by a process that was killed; copy it again or retrain.")
    text = str(exc)
    if "weights_only" in text.lower() or "unsupported" in text.lower() or "unpickl" in type(exc).__name__.lower():
        return (f"{path} holds Python objects other than weights and plain data, so it was not written by mage. "
                f"For safety mage only loads weights-only checkpoints.")
    return f"{path} is a damaged archive that cannot be read as a checkpoint; copy it again or retrain."


def check_compatible(ckpt: dict, obs_dim: int, act_dim: int) -> None:
    """MageError when the checkpoint was trained on other observation/action spaces."""
    spaces = ckpt.get("spaces", {})
    o, a = spaces.get("obs_dim"), spaces.get("act_dim")
    if o != obs_dim or a != act_dim:
        raise MageError(f"checkpoint was trained for obs_dim={o}, act_dim={a} (task {ckpt.get('task')!r}) but the "
                        f"environment has obs_dim={obs_dim}, act_dim={act_dim}")


def checkpoint_info(path_or_ckpt) -> dict:
    """A JSON-friendly summary: algo, task, dataset, spaces, config, versions, metrics, training progress."""
    ckpt = load_checkpoint(path_or_ckpt) if not isinstance(path_or_ckpt, dict) else path_or_ckpt
    ts = ckpt.get("train_state") or {}
    return {
        "algo": ckpt.get("algo"),
        "format_version": ckpt.get("format_version"),
        "task": ckpt.get("task"),
        "dataset": _plain(ckpt.get("dataset")),
        "spaces": _plain(ckpt.get("spaces")),
        "config": _plain(ckpt.get("config")),
        "versions": _plain(ckpt.get("versions")),
        "metrics": _plain(ckpt.get("metrics")),
        "progress": {"stage": ts.get("stage"), "step": ts.get("step"), "done": ts.get("done", False)},
        "params": int(sum(v.numel() for v in ckpt["state_dict"].values() if isinstance(v, torch.Tensor))),
    }


def _plain(v):
    if isinstance(v, torch.Tensor):
        return v.tolist()
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    return v
