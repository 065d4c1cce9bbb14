"""A training run's logs: its JSON-lines events beside its checkpoint (CKPT.events.jsonl) and, on request, the same
numbers as TensorBoard scalars (the optional `tensorboard` extra). Both are fed by the run's one EventWriter."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from mage_core.errors import MageError
from mage_core.progress import EventWriter

TENSORBOARD_EXTRA = 'pip install "mage-studio[tensorboard]"'  # the install step for --tensorboard


def events_path(checkpoint) -> Path:
    """Where a checkpoint's training events are kept: CKPT.pt -> CKPT.events.jsonl, beside it."""
    p = Path(checkpoint)
    return p.with_name((p.name[:-3] if p.name.endswith(".pt") else p.name) + ".events.jsonl")


def _tag(text: str) -> str:
    return str(text).strip().replace(" ", "_")


class TensorBoardScalars:
    """An EventWriter callback that writes a run's "step" events as TensorBoard scalars, on one global step axis
    (the stages one after another, as the studio draws them):

    - `stage<k>_<name>/<loss>`: every loss of stage k, `stage<k>_<name>/learning_rate` and `.../segments_per_s`;
    - `token_accuracy/scale_<k>` and `codebook_usage/scale_<k>`: per scale, where the model reports them."""

    def __init__(self, logdir: str | os.PathLike):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            raise MageError(f"--tensorboard needs the tensorboard package: {TENSORBOARD_EXTRA}") from None
        self.writer = SummaryWriter(log_dir=str(logdir), flush_secs=10)
        self.offsets: dict[int, int] = {}  # stage index -> global steps of the stages before it

    def __call__(self, ev: dict) -> None:
        kind = ev.get("event")
        if kind == "start":
            off = 0
            for i, st in enumerate(ev.get("stages") or []):
                self.offsets[i + 1] = off
                off += int(st.get("steps", 0))
        elif kind == "step":
            self._step(ev)
        elif kind in ("stage_end", "done"):
            self.writer.flush()

    def _step(self, ev: dict) -> None:
        stage = int(ev.get("stage", 1))
        step = self.offsets.get(stage, 0) + int(ev.get("step", 0))
        group = f"stage{stage}_{_tag(ev.get('stage_name') or 'train')}"
        wall = ev.get("time")
        scalars = {f"{group}/{_tag(k)}": v for k, v in (ev.get("losses") or {}).items()}
        for key, name in (("lr", "learning_rate"), ("segments_per_s", "segments_per_s")):
            if ev.get(key) is not None:
                scalars[f"{group}/{name}"] = ev[key]
        for key, name in (("token_acc", "token_accuracy"), ("codebook_usage", "codebook_usage")):
            for k, v in enumerate(ev.get(key) or []):
                scalars[f"{name}/scale_{k + 1:02d}"] = v
        for tag, value in scalars.items():
            try:
                self.writer.add_scalar(tag, float(value), step, walltime=wall)
            except (TypeError, ValueError):
                continue  # a field that is not a number: nothing to plot

    def close(self) -> None:
        self.writer.close()


@contextmanager
def run_log(sink: EventWriter, checkpoint, tensorboard: str | os.PathLike | None = None, resume: bool = False):
    """While training writes `checkpoint`, also send the sink's events to CKPT.events.jsonl beside it (a fresh run
    starts the file anew, a resumed one appends) and, with `tensorboard`, to TensorBoard scalars in that folder.
    Only the main process of a data-parallel job writes them. Yields the events file's path."""
    path = events_path(checkpoint)
    if int(os.environ.get("RANK", "0")) != 0:
        yield path
        return
    tb = TensorBoardScalars(tensorboard) if tensorboard else None
    same = sink.target_for(path)  # --events naming this very file: closed first, or a fresh run would delete it open
    if same is not None:
        sink.remove_target(same)
    if not resume:
        path.unlink(missing_ok=True)
    sink.add_target(path)
    if tb is not None:
        sink.callbacks.append(tb)
    try:
        yield path
    finally:
        sink.remove_target(path)
        if same is not None:
            sink.add_target(same)
        if tb is not None:
            sink.callbacks.remove(tb)
            tb.close()
