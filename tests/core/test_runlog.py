"""Training logs: every run writes its events beside its checkpoint, --tensorboard writes scalars TensorBoard's own
reader parses, --set reaches the saved config, and the progress bar comes from tqdm."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from mage_core.cli import main


def _events(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_tiny_training_writes_events_beside_it_and_tensorboard_scalars(umaze_dataset, tmp_path, capsys):
    pytest.importorskip("tensorboard", reason="the tensorboard extra is not installed (pip install -e '.[tensorboard]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from mage_core.checkpoint import load_checkpoint

    ckpt, tb = tmp_path / "run" / "tiny.pt", tmp_path / "tb"
    argv = ["train", "--dataset", umaze_dataset, "--preset", "tiny", "--steps-scale", "0.1", "--threads", "1",
            "--no-progress", "--out", str(ckpt), "--tensorboard", str(tb), "--set", "train.lr_stage2=0.0007",
            "--set", "model.refine_kernel=5", "--set", "train.log_every=5"]
    assert main(argv) == 0
    events = _events(tmp_path / "run" / "tiny.events.jsonl")
    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "done"
    assert all("time" in e for e in events)  # one schema: progress.EventWriter's
    steps = [e for e in events if e["event"] == "step"]
    assert {e["stage"] for e in steps} == {1, 2, 3}
    cfg = load_checkpoint(ckpt)["config"]
    assert cfg["train"]["lr_stage2"] == 0.0007 and cfg["model"]["refine_kernel"] == 5  # --set is saved like the rest

    acc = EventAccumulator(str(tb))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for stage in ("stage1_autoencoder", "stage2_transformer", "stage3_refinement"):
        assert {f"{stage}/loss", f"{stage}/learning_rate", f"{stage}/segments_per_s"} <= tags, sorted(tags)
    assert {"stage1_autoencoder/rec", "stage2_transformer/ce", "stage2_transformer/inv"} <= tags
    scales = len(next(e for e in steps if e.get("codebook_usage"))["codebook_usage"])
    assert {f"codebook_usage/scale_{k:02d}" for k in range(1, scales + 1)} <= tags
    assert any(t.startswith("token_accuracy/scale_") for t in tags)
    # one global step axis: stage 2's first logged step comes after all of stage 1's
    s1 = [e.step for e in acc.Scalars("stage1_autoencoder/loss")]
    s2 = [e.step for e in acc.Scalars("stage2_transformer/loss")]
    assert max(s1) < min(s2)
    first = next(e for e in steps if e["stage"] == 1)
    got = {e.step: e.value for e in acc.Scalars("stage1_autoencoder/loss")}
    assert got[first["step"]] == pytest.approx(first["losses"]["loss"], rel=1e-5)

    # a second fresh run to the same file starts its log anew
    assert main(argv[:-6] + ["--set", "train.log_every=5"]) == 0
    assert sum(e["event"] == "start" for e in _events(tmp_path / "run" / "tiny.events.jsonl")) == 1


def test_a_baseline_run_and_events_to_stdout(umaze_dataset, tmp_path):
    ckpt = tmp_path / "bc.pt"
    r = subprocess.run([sys.executable, "-m", "mage_core", "train", "--dataset", umaze_dataset, "--algo", "bc",
                        "--preset", "tiny", "--steps", "40", "--threads", "1", "--out", str(ckpt), "--events", "-",
                        "--set", "bc.hidden=32"], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert r.returncode == 0, r.stderr
    streamed = [json.loads(line) for line in r.stdout.splitlines()]  # stdout: the events only
    beside = _events(tmp_path / "bc.events.jsonl")
    assert [e["event"] for e in streamed] == [e["event"] for e in beside] and beside[-1]["event"] == "done"
    from mage_core.checkpoint import load_checkpoint

    assert load_checkpoint(ckpt)["config"]["bc"]["hidden"] == 32


@pytest.mark.parametrize("flag,msg", [
    ("train.lr_stage=1", "did you mean train.lr_stage"),
    ("train.inv_loss=l3", "choose one of 'mse', 'l1'"),
    ("optim.lr=1", "unknown section 'optim'; sections: model, train, data"),
    ("train.stage1_steps=many", "expected a whole number"),
    ("model.use_cond_loss=maybe", "expected true or false"),
    ("model.inv_lookahead=1,x", "comma-separated numbers"),
    ("model.obs_dim=3", "filled from the data"),
    ("lr=1", "SECTION.FIELD=VALUE"),
])
def test_set_refuses_unknown_fields_and_bad_values_as_usage_errors(umaze_dataset, tmp_path, flag, msg, capsys):
    out = tmp_path / "never.pt"
    try:
        rc = main(["train", "--dataset", umaze_dataset, "--preset", "tiny", "--out", str(out), "--set", flag])
    except SystemExit as exc:  # argparse's own usage error (a malformed --set)
        rc = exc.code
    assert rc == 2 and msg in capsys.readouterr().err and not out.exists()


def test_events_named_as_the_checkpoints_own_file_are_kept(tmp_path, monkeypatch):
    """--events CKPT.events.jsonl (the file every run writes anyway): a fresh run starts it anew and writes every
    event into it once, never into a deleted file; events after the run still reach it."""
    from mage_core.progress import EventWriter
    from mage_core.training.runlog import events_path, run_log

    ckpt = tmp_path / "run" / "a.pt"
    path = events_path(ckpt)
    path.parent.mkdir(parents=True)
    path.write_text('{"event": "old run"}\n')
    monkeypatch.chdir(tmp_path)
    sink = EventWriter(os.path.relpath(path, tmp_path))  # the same file, named relatively
    sink.emit("before")
    with run_log(sink, ckpt):
        sink.emit("during")
    sink.emit("after")
    sink.close()
    assert [e["event"] for e in _events(path)] == ["during", "after"]


def test_set_parses_each_field_type():
    from mage_core.config import apply_assignments, preset

    cfg = preset("tiny")
    done = apply_assignments({"model": cfg.model, "train": cfg.train, "data": cfg.data},
                             ["model.use_cond_loss=false", "model.scales=1,2,4", "model.rec_weights=1,2.5",
                              "train.ema_decay=0.99", "data.rtg_mode=dense", "train.batch_size=16"])
    assert cfg.model.use_cond_loss is False and cfg.model.scales == (1, 2, 4) and cfg.model.rec_weights == (1, 2.5)
    assert cfg.train.ema_decay == 0.99 and cfg.data.rtg_mode == "dense" and cfg.train.batch_size == 16
    assert done["model.scales"] == (1, 2, 4)


def test_progress_bar_is_tqdm_on_a_terminal_and_lines_elsewhere():
    from tqdm import tqdm

    from mage_core.progress import ProgressBar

    log = io.StringIO()
    bar = ProgressBar(100, "stage 1 x", stream=log)
    for i in range(0, 101, 5):
        bar.update(i, "loss 0.5")
    bar.close()
    lines = log.getvalue().splitlines()
    assert len(lines) == 10 and lines[-1].startswith("stage 1 x: 100%") and "loss 0.5" in lines[-1]

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    bar = ProgressBar(10, "t", stream=tty)
    assert isinstance(bar._bar, tqdm)
    bar.update(10)
    bar.close()
    assert "10/10" in tty.getvalue()
