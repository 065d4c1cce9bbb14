"""The checkpoints bundled with the source checkout (checkpoints/<task>.pt) and the task the demo and studio open first."""
from __future__ import annotations

from pathlib import Path

CHECKPOINT_DIR = Path(__file__).resolve().parents[1] / "checkpoints"  # bundled checkpoints (source checkout)
DEFAULT_TASK = "pointmaze-umaze"  # what `mage demo` and the studio open first


def bundled_checkpoint(task: str = DEFAULT_TASK) -> Path | None:
    """The bundled MAGE checkpoint for a task (checkpoints/<task>.pt), or None."""
    p = CHECKPOINT_DIR / f"{task}.pt"
    return p if p.is_file() else None


def bundled_checkpoints() -> list[Path]:
    """Every bundled checkpoint (checkpoints/*.pt), by name."""
    return sorted(CHECKPOINT_DIR.glob("*.pt")) if CHECKPOINT_DIR.is_dir() else []
