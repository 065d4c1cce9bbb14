"""The MAGE model factory: a model from its config (told its suite's head frame) or rebuilt from a checkpoint."""
from __future__ import annotations

from mage_core.config import MageConfig, ModelConfig
from mage_core.errors import MageError
from mage_core.model.mage import MAGE
from mage_core.suites import SUITES


def head_frame(name: str):
    """The suite-provided HeadFrame named `name` (Suite.head_frames), or a MageError listing the known ones."""
    frames = {n: f for suite in SUITES.values() for n, f in suite.head_frames().items()}
    if name not in frames:
        raise MageError(f"unknown inverse-dynamics head frame {name!r}; known: {', '.join(sorted(frames)) or 'none'}")
    return frames[name]


def build_mage(cfg: ModelConfig) -> MAGE:
    """A freshly initialised MAGE model of `cfg`, with the head frame its config names (if any)."""
    return MAGE(cfg, head_frame(cfg.inv_frame) if cfg.inv_frame else None)


def build_model_from_checkpoint(ckpt: dict, device="cpu") -> MAGE:
    """The MAGE model described by a (loaded) checkpoint, weights restored, in eval mode."""
    if ckpt.get("algo") != "mage":
        raise MageError(f"checkpoint algo is {ckpt.get('algo')!r}, not 'mage'")
    cfg = MageConfig.from_dict(ckpt["config"])
    model = build_mage(cfg.model)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:
        raise MageError(f"checkpoint weights do not match its config: {str(exc).splitlines()[0]}") from None
    return model.to(device).eval()
