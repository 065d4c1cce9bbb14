"""Studio benchmark (`mage bench studio`): time to first window, viewport fps, re-plan + redraw latency, UI timer gaps."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
if not os.environ.get("DISPLAY"):
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402

FIRST_WINDOW_REPEATS = 3  # launches of the studio for the time-to-first-window median
FPS_SECONDS = 3.0  # how long the viewport is driven continuously
REPLAN_REPEATS = 20  # RTG changes timed for re-plan + redraw
UI_TIMER_MS = 10  # interval of the probe timer whose gaps measure UI responsiveness
VIEWPORT_SIZE = (640, 480)  # viewport size for the fps measurement


def _pct(xs, q) -> float:
    return float(np.percentile(np.asarray(xs, dtype=float), q)) if len(xs) else float("nan")


def first_window_s(repeats: int = FIRST_WINDOW_REPEATS) -> dict:
    """Launch `mage-studio` and time until its first rendered frame is painted (wall clock, from the parent)."""
    times, inproc, docks = [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-m", "mage_studio.app", "--first-window-probe"], capture_output=True,
                           text=True, timeout=120)
        wall = time.perf_counter() - t0
        line = [ln for ln in p.stdout.splitlines() if ln.startswith("first_window_s")]
        ready = [ln for ln in p.stdout.splitlines() if ln.startswith("docks_ready_s")]
        if p.returncode != 0 or not line:
            return {"error": (p.stderr or p.stdout)[-500:]}
        times.append(wall)
        inproc.append(float(line[0].split()[1]))
        docks.append(float(ready[0].split()[1]) if ready else float("nan"))
    return {"first_window_wall_s": float(np.median(times)), "first_frame_s": float(np.median(inproc)),
            "docks_ready_s": float(np.median(docks)), "repeats": repeats,
            "note": "first_frame_s / docks_ready_s count from the start of mage_studio.app (after interpreter start); "
                    "first_window_wall_s is launch to exit of the probe process"}


def _wait(app, cond, timeout_s: float) -> bool:
    t0 = time.perf_counter()
    while not cond():
        if time.perf_counter() - t0 > timeout_s:
            return False
        app.processEvents()
        time.sleep(0.001)
    return True


class StaticPlanner:
    """A zero-cost stand-in with the Planner API (a fixed straight-line plan) to time the studio's own pipeline."""

    def __init__(self, task, scales=(1, 2, 4, 8, 16, 32), horizon=32):
        self.task, self.scales, self.horizon = task, tuple(scales), horizon
        self.obs_dim, self.act_dim = 6, 2
        self.rtg_range = (0.0, float(task.eval_steps))

    def plan(self, obs, rtg, *, seed=None, decode=True):
        from types import SimpleNamespace

        K, H = len(self.scales), self.horizon
        obs = np.asarray(obs, np.float32)
        t = np.linspace(0, 1, H)[:, None] * (0.2 + rtg / max(self.rtg_range[1], 1))
        xy = obs[:2] + t * (obs[4:6] - obs[:2])
        states = np.zeros((K, H, self.obs_dim), np.float32)
        states[:, :, :2] = xy
        return SimpleNamespace(tokens=[np.zeros(p, int) for p in self.scales], states_KHD=states,
                               rtg_KH=np.zeros((K, H), np.float32), action_A=np.zeros(2, np.float32),
                               scales=self.scales, condition_rtg=float(rtg), timings_ms={"total": 0.0})


def viewport_fps(app, task) -> dict:
    """Frames per second of the threaded viewport at 640x480 while the camera orbits continuously (plan overlaid)."""
    from mage_core.render import plan_overlay
    from mage_studio.viewport import Viewport

    vp = Viewport()
    vp.resize(*VIEWPORT_SIZE)
    vp.show()
    vp.set_task(task)
    plan = StaticPlanner(task).plan(task.suite.condition_obs(task, task.suite.default_points(task), None), 100.0)
    vp.set_overlay(plan_overlay(plan.states_KHD, plan.scales))
    _wait(app, lambda: vp.image is not None, 30)
    size = (vp.image.width(), vp.image.height())
    render_ms = []
    vp.frame_painted.connect(render_ms.append)
    n0, t0 = vp.frames_painted, time.perf_counter()
    while time.perf_counter() - t0 < FPS_SECONDS:
        n = vp.frames_painted
        vp.pose = vp.pose.orbit(1.5, 0)
        vp.refresh()
        _wait(app, lambda: vp.frames_painted > n, 5)
    fps = (vp.frames_painted - n0) / (time.perf_counter() - t0)
    vp.shutdown()
    vp.close()
    return {"viewport_fps": fps, "viewport_size": list(size), "render_ms_median": _pct(render_ms, 50),
            "render_ms_p95": _pct(render_ms, 95)}


def replan_latency(app, win, planner, path: str | None, repeats: int = REPLAN_REPEATS) -> dict:
    """Condition change (RTG) -> plan computed off-thread -> overlay redrawn: wall ms until that frame is on screen."""
    win.controller.load_planner(planner, path)
    _wait(app, lambda: win.state.plan is not None, 60)
    marks = []
    win.state.events.plan.connect(lambda _p: marks.append(win.viewport.request_id))
    lat, plan_ms = [], []
    lo, hi = win.state.rtg_range()
    targets = np.linspace(lo + 0.1 * (hi - lo), hi, repeats)
    for i in range(repeats + 2):  # the first two warm up
        _wait(app, lambda: not win.controller.busy, 30)
        marks.clear()
        t0 = time.perf_counter()
        win.state.rtg = float(targets[i % repeats]) - 0.5 * (i % 2)
        _wait(app, lambda: bool(marks) and win.viewport.shown_id >= marks[0], 30)
        if i >= 2:
            lat.append((time.perf_counter() - t0) * 1000)
            plan_ms.append(win.state.plan_ms)
    return {"replan_redraw_ms_median": _pct(lat, 50), "replan_redraw_ms_p95": _pct(lat, 95),
            "planner_ms_median": _pct(plan_ms, 50), "repeats": repeats}


def ui_gaps_during_training(app, win, argv: list[str], max_s: float = 120.0) -> dict:
    """Gaps between ticks of a 10 ms UI timer while the Train dock runs a training process and plots its events."""
    from PySide6.QtCore import QTimer

    ticks = []
    timer = QTimer()
    timer.setInterval(UI_TIMER_MS)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    dock = win.train_dock
    dock.command_override = lambda resume: argv
    dock.chk_load.setChecked(False)
    timer.start()
    t0 = time.perf_counter()
    dock.start(False)
    _wait(app, lambda: not dock.proc.is_running() or time.perf_counter() - t0 > max_s, max_s + 5)
    if dock.proc.is_running():
        dock.proc.kill()
    _wait(app, lambda: not dock.proc.is_running(), 10)
    timer.stop()
    gaps = np.diff(ticks) * 1000 if len(ticks) > 1 else np.array([])
    return {"ui_timer_interval_ms": UI_TIMER_MS, "ui_gap_ms_median": _pct(gaps, 50), "ui_gap_ms_p95": _pct(gaps, 95),
            "ui_gap_ms_max": float(gaps.max()) if len(gaps) else float("nan"), "train_events": dock.events_seen,
            "train_wall_s": time.perf_counter() - t0, "train_ok": not win.errors}


def run_studio_bench(checkpoint: str | None = None, first_window_repeats: int = FIRST_WINDOW_REPEATS) -> dict:
    """All studio numbers in one dict (also printed by main())."""
    from mage_studio.app import make_app

    results: dict = {"first_window": first_window_s(first_window_repeats)}
    app = make_app()
    from PySide6.QtCore import QSettings

    from mage_core.tasks import get_task
    from mage_studio.main_window import MainWindow

    task = get_task("pointmaze-umaze")
    results["viewport"] = viewport_fps(app, task)
    tmp = Path(tempfile.mkdtemp(prefix="mage-bench-studio-"))
    settings = QSettings(str(tmp / "studio.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, initial_task="pointmaze-umaze")
    win.resize(1400, 900)
    win.show()
    _wait(app, lambda: win.viewport.image is not None, 30)
    results["pipeline"] = replan_latency(app, win, StaticPlanner(task), None)  # the studio's own overhead

    # a tiny real training run in the background (generating its dataset first), timing the UI meanwhile
    env = dict(os.environ, MINARI_DATASETS_PATH=str(tmp / "minari"), OMP_NUM_THREADS="1")
    os.environ["MINARI_DATASETS_PATH"] = env["MINARI_DATASETS_PATH"]
    subprocess.run([sys.executable, "-m", "mage_core", "data", "make", "pointmaze-umaze", "--steps", "3000",
                    "--id", "bench/umaze-v0"], env=env, capture_output=True, timeout=300, check=True)
    out = tmp / "bench-tiny.pt"
    argv = [sys.executable, "-m", "mage_core", "train", "--dataset", "bench/umaze-v0", "--preset", "tiny",
            "--steps-scale", "0.3", "--device", "cpu", "--threads", "1", "--out", str(out), "--events", "-"]
    results["ui_during_training"] = ui_gaps_during_training(app, win, argv)

    ckpt = checkpoint or (str(out) if out.is_file() else None)
    if ckpt:
        import torch

        from mage_core.planner import Planner
        from mage_studio.controller import PLANNER_THREADS

        torch.set_num_threads(max(1, PLANNER_THREADS))  # as the studio does when it opens a checkpoint

        results["replan"] = replan_latency(app, win, Planner.from_checkpoint(ckpt, device="cpu"), ckpt)
        results["replan"]["checkpoint"] = ckpt
    win.close()
    win.deleteLater()
    app.processEvents()
    results["machine"] = {"cpus": os.cpu_count(), "qt_platform": os.environ.get("QT_QPA_PLATFORM", "xcb"),
                          "mujoco_gl": os.environ.get("MUJOCO_GL"), "gl_renderer": _gl_renderer()}
    return results


def _gl_renderer() -> str:
    try:
        from mujoco import gl_context
        from OpenGL import GL

        ctx = gl_context.GLContext(16, 16)
        ctx.make_current()
        name = GL.glGetString(GL.GL_RENDERER)
        ctx.free()
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception as exc:
        return f"unknown ({type(exc).__name__})"


def summary_lines(r: dict) -> list[str]:
    fw, vp, pl = r["first_window"], r["viewport"], r["pipeline"]
    lines = []
    if "error" in fw:
        lines.append(f"first window: failed: {fw['error']}")
    else:
        lines.append(f"first window: maze on screen {fw['first_frame_s']:.2f} s, all panels {fw['docks_ready_s']:.2f} s "
                     f"after start (probe process wall {fw['first_window_wall_s']:.2f} s; median of {fw['repeats']})")
    lines.append(f"viewport: {vp['viewport_fps']:.1f} fps at {vp['viewport_size'][0]}x{vp['viewport_size'][1]} "
                 f"(render median {vp['render_ms_median']:.1f} ms, p95 {vp['render_ms_p95']:.1f} ms; {r['machine']['gl_renderer']})")
    lines.append(f"studio pipeline (zero-cost planner): condition change -> new frame {pl['replan_redraw_ms_median']:.1f} ms "
                 f"median, p95 {pl['replan_redraw_ms_p95']:.1f} ms")
    if "replan" in r:
        rp = r["replan"]
        lines.append(f"re-plan + redraw ({Path(rp['checkpoint']).name}): {rp['replan_redraw_ms_median']:.1f} ms median, "
                     f"p95 {rp['replan_redraw_ms_p95']:.1f} ms (planner itself {rp['planner_ms_median']:.1f} ms)")
    ui = r["ui_during_training"]
    lines.append(f"UI timer ({ui['ui_timer_interval_ms']} ms) while training: gap p95 {ui['ui_gap_ms_p95']:.1f} ms, "
                 f"worst {ui['ui_gap_ms_max']:.1f} ms ({ui['train_events']} events over {ui['train_wall_s']:.1f} s)")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="mage bench studio", description=__doc__)
    p.add_argument("--checkpoint", help="checkpoint for the re-plan latency (default: a tiny one trained here)")
    p.add_argument("--out", default="bench-studio.json", help="JSON output")
    p.add_argument("--first-window-repeats", type=int, default=FIRST_WINDOW_REPEATS)
    args = p.parse_args(argv)
    import mage_studio  # noqa: F401  (PySide6 refcount fix)

    r = run_studio_bench(args.checkpoint, args.first_window_repeats)
    for line in summary_lines(r):
        print(line)
    Path(args.out).write_text(json.dumps(r, indent=2))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
