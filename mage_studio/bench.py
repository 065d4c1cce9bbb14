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
REPLAN_REPEATS = 20  # RTG changes timed for re-plan + redraw (from rest, then back to back)
REST_S = 0.1  # idle time, once the settled frame is painted, before a change timed from rest
UI_TIMER_MS = 10  # interval of the probe timer whose gaps measure UI responsiveness
VIEWPORT_SIZE = (640, 480)  # viewport size for the fps measurement
FPS_TARGET = 30.0  # the design's viewport target with the plan drawn (frames per second)
REPLAN_TARGET_MS = 50.0  # the design's re-plan + redraw target (median milliseconds)


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


def viewport_fps(app, planner, seconds: float = FPS_SECONDS) -> dict:
    """Frames per second of the threaded viewport at 640x480 on the planner's own scene while the camera orbits
    continuously, with the plan of the task's default condition drawn as the studio draws it (ghosts for robots)."""
    from mage_studio.overlays import OverlayComposer
    from mage_studio.state import StudioState
    from mage_studio.viewport import Viewport

    vp = Viewport()
    vp.resize(*VIEWPORT_SIZE)
    vp.show()
    state = StudioState()
    composer = OverlayComposer(state, vp, vp.worker.config.palette)
    composer.connect()
    state.task = planner.task
    state.set_planner(planner)
    state.plan = planner.plan(state.condition_obs(), state.rtg, seed=0)
    _wait(app, lambda: vp.image is not None and vp.shown_id >= vp.request_id, 60)
    size = (vp.image.width(), vp.image.height())
    render_ms = []
    vp.frame_painted.connect(render_ms.append)
    n0, t0 = vp.frames_painted, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n = vp.frames_painted
        vp.pose = vp.pose.orbit(1.5, 0)
        vp.refresh()
        _wait(app, lambda: vp.frames_painted > n, 5)
    fps = (vp.frames_painted - n0) / (time.perf_counter() - t0)
    vp.shutdown()
    vp.close()
    return {"viewport_fps": fps, "viewport_size": list(size), "render_ms_median": _pct(render_ms, 50),
            "render_ms_p95": _pct(render_ms, 95)}


def _rest(app, win, seconds: float = REST_S) -> None:
    """Let the studio come to rest: no plan in flight, the full-quality frame that follows a change painted (the
    viewport re-renders once things settle), the docks' views drawn."""
    vp = win.viewport
    _wait(app, lambda: not win.controller.busy and not vp.settle_pending and vp.painted_id >= vp.request_id, 30)
    t0 = time.perf_counter()
    _wait(app, lambda: time.perf_counter() - t0 > seconds, seconds + 1)


def replan_latency(app, win, planner, path: str | None, repeats: int = REPLAN_REPEATS) -> dict:
    """Condition change (RTG) -> plan computed off-thread -> overlay redrawn: wall ms until the widget has painted
    that frame (its overlay lines included). From rest (the target: one change, the studio idle before it) and
    back to back (each change as soon as the previous plan is painted, as while dragging the RTG slider; the docks'
    views of one plan then share the machine with the next)."""
    win.controller.load_planner(planner, path)
    _wait(app, lambda: win.state.plan is not None, 60)
    marks = []
    win.state.events.plan.connect(lambda _p: marks.append(win.viewport.request_id))
    lo, hi = win.state.rtg_range()
    targets = np.linspace(lo + 0.1 * (hi - lo), hi, repeats)
    out = {"repeats": repeats}
    for mode in ("rest", "back_to_back"):
        lat, plan_ms = [], []
        for i in range(repeats + 2):  # the first two warm up
            if mode == "rest":
                _rest(app, win)
            else:
                _wait(app, lambda: not win.controller.busy, 30)
            marks.clear()
            t0 = time.perf_counter()
            win.state.rtg = float(targets[i % repeats]) - 0.5 * (i % 2)
            _wait(app, lambda: bool(marks) and win.viewport.painted_id >= marks[0], 30)
            if i >= 2:
                lat.append((time.perf_counter() - t0) * 1000)
                plan_ms.append(win.state.plan_ms)
        key = "" if mode == "rest" else "_back_to_back"
        out.update({f"replan_redraw_ms_median{key}": _pct(lat, 50), f"replan_redraw_ms_p95{key}": _pct(lat, 95),
                    f"planner_ms_median{key}": _pct(plan_ms, 50)})
    return out


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


def scene_row(app, path: str, settings_dir: Path) -> dict:
    """One checkpoint on its own task's scene: viewport fps with its plan drawn, and re-plan + redraw in the studio."""
    from PySide6.QtCore import QSettings

    from mage_core.planner import Planner
    from mage_studio.main_window import MainWindow

    planner = Planner.from_checkpoint(path, device="cpu")
    shown = Path(path).resolve()
    if shown.is_relative_to(Path.cwd()):  # a bundled checkpoint as a reader of the table would type it
        shown = shown.relative_to(Path.cwd())
    row = {"checkpoint": str(shown), "task": planner.task.name}
    row.update(viewport_fps(app, planner))
    settings = QSettings(str(settings_dir / "studio.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings=settings, initial_task=planner.task.name)
    win.resize(1400, 900)
    win.show()
    _wait(app, lambda: win.docks_ready and win.viewport.image is not None, 60)
    row.update(replan_latency(app, win, planner, str(path)))
    win.close()
    win.deleteLater()
    app.processEvents()
    row["meets_targets"] = bool(row["viewport_fps"] >= FPS_TARGET and row["replan_redraw_ms_median"] <= REPLAN_TARGET_MS)
    return row


def run_studio_bench(checkpoints: list[str] | None = None, first_window_repeats: int = FIRST_WINDOW_REPEATS,
                     scenes_only: bool = False) -> dict:
    """All studio numbers in one dict (also printed by main()): one scene row per checkpoint (its own task's scene),
    and unless scenes_only the time to first window, the studio's own pipeline overhead and the UI timer while a
    tiny training runs (whose checkpoint is the scene row when no checkpoint is given)."""
    import torch

    from mage_studio.app import make_app
    from mage_studio.controller import PLANNER_THREADS

    load_before = os.getloadavg()
    tmp = Path(tempfile.mkdtemp(prefix="mage-bench-studio-"))
    os.environ["MINARI_DATASETS_PATH"] = str(tmp / "minari")  # no local dataset loads in the middle of a timing
    results: dict = {} if scenes_only else {"first_window": first_window_s(first_window_repeats)}
    app = make_app()
    torch.set_num_threads(max(1, PLANNER_THREADS))  # as the studio does when it opens a checkpoint
    paths = [str(c) for c in (checkpoints or [])]
    if not scenes_only:
        from PySide6.QtCore import QSettings

        from mage_core.tasks import get_task
        from mage_studio.main_window import MainWindow

        task = get_task("pointmaze-umaze")
        settings = QSettings(str(tmp / "studio.ini"), QSettings.Format.IniFormat)
        win = MainWindow(settings=settings, initial_task="pointmaze-umaze")
        win.resize(1400, 900)
        win.show()
        _wait(app, lambda: win.viewport.image is not None, 30)
        results["pipeline"] = replan_latency(app, win, StaticPlanner(task), None)  # the studio's own overhead
        # a tiny real training run in the background (generating its dataset first), timing the UI meanwhile
        env = dict(os.environ, OMP_NUM_THREADS="1")
        subprocess.run([sys.executable, "-m", "mage_core", "data", "make", "pointmaze-umaze", "--steps", "3000",
                        "--id", "bench/umaze-v0"], env=env, capture_output=True, timeout=300, check=True)
        out = tmp / "bench-tiny.pt"
        argv = [sys.executable, "-m", "mage_core", "train", "--dataset", "bench/umaze-v0", "--preset", "tiny",
                "--steps-scale", "0.3", "--device", "cpu", "--threads", "1", "--out", str(out), "--events", "-"]
        results["ui_during_training"] = ui_gaps_during_training(app, win, argv)
        win.close()
        win.deleteLater()
        app.processEvents()
        if not paths and out.is_file():
            paths = [str(out)]
    results["scenes"] = [scene_row(app, p, tmp) for p in paths]
    results["targets"] = {"viewport_fps_min": FPS_TARGET, "replan_redraw_ms_max": REPLAN_TARGET_MS}
    results["machine"] = {"cpus": os.cpu_count(), "qt_platform": os.environ.get("QT_QPA_PLATFORM", "xcb"),
                          "mujoco_gl": os.environ.get("MUJOCO_GL"), "gl_renderer": _gl_renderer(),
                          "load_avg_1m_before": load_before[0], "load_avg_1m_after": os.getloadavg()[0]}
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
    lines = []
    fw = r.get("first_window")
    if fw is not None and "error" in fw:
        lines.append(f"first window: failed: {fw['error']}")
    elif fw is not None:
        lines.append(f"first window: maze on screen {fw['first_frame_s']:.2f} s, all panels {fw['docks_ready_s']:.2f} s "
                     f"after start (probe process wall {fw['first_window_wall_s']:.2f} s; median of {fw['repeats']})")
    if "pipeline" in r:
        pl = r["pipeline"]
        lines.append(f"studio pipeline (zero-cost planner): condition change -> new frame "
                     f"{pl['replan_redraw_ms_median']:.1f} ms median, p95 {pl['replan_redraw_ms_p95']:.1f} ms")
    if "ui_during_training" in r:
        ui = r["ui_during_training"]
        lines.append(f"UI timer ({ui['ui_timer_interval_ms']} ms) while training: gap p95 {ui['ui_gap_ms_p95']:.1f} ms, "
                     f"worst {ui['ui_gap_ms_max']:.1f} ms ({ui['train_events']} events over {ui['train_wall_s']:.1f} s)")
    m = r["machine"]
    lines.append(f"scenes at {VIEWPORT_SIZE[0]}x{VIEWPORT_SIZE[1]} with the plan drawn ({m['gl_renderer']}; "
                 f"{m['cpus']} CPUs, load average {m['load_avg_1m_before']:.1f} before, "
                 f"{m['load_avg_1m_after']:.1f} after); targets >= {FPS_TARGET} fps, re-plan + redraw <= "
                 f"{REPLAN_TARGET_MS} ms median:")
    lines.append(f"  {'checkpoint':22s} {'task':18s} {'fps':>6s} {'render ms':>10s} {'re-plan+redraw ms':>18s} "
                 f"{'p95':>7s} {'planner ms':>11s} {'back to back':>13s}  verdict")
    for row in r["scenes"]:
        lines.append(f"  {Path(row['checkpoint']).name:22s} {row['task']:18s} {row['viewport_fps']:6.1f} "
                     f"{row['render_ms_median']:10.1f} {row['replan_redraw_ms_median']:18.1f} "
                     f"{row['replan_redraw_ms_p95']:7.1f} {row['planner_ms_median']:11.1f} "
                     f"{row.get('replan_redraw_ms_median_back_to_back', float('nan')):13.1f}  "
                     f"{'meets' if row['meets_targets'] else 'misses'}")
    lines.append("  re-plan + redraw: one RTG change from rest until its frame is painted (median; p95); back to back: "
                 "changes as fast as the plans come, as while dragging the slider (not a target)")
    return lines


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="mage bench studio", description=__doc__)
    p.add_argument("--checkpoint", action="append", default=[],
                   help="checkpoint whose own scene is timed (repeatable; default: a tiny one trained here)")
    p.add_argument("--all", action="store_true", help="time every bundled checkpoint (checkpoints/*.pt)")
    p.add_argument("--scenes-only", action="store_true",
                   help="only the per-checkpoint scene rows (no first-window, pipeline or training probes)")
    p.add_argument("--out", default="bench-studio.json", help="JSON output")
    p.add_argument("--first-window-repeats", type=int, default=FIRST_WINDOW_REPEATS)
    args = p.parse_args(argv)
    import mage_studio  # noqa: F401  (PySide6 refcount fix)

    from mage_core.bundled import bundled_checkpoints
    from mage_core.errors import MageError

    paths = list(args.checkpoint) + ([str(c) for c in bundled_checkpoints()] if args.all else [])
    if args.all and not bundled_checkpoints():
        raise MageError("--all: there are no bundled checkpoints (checkpoints/*.pt)")
    if args.scenes_only and not paths:
        raise MageError("--scenes-only needs --checkpoint CKPT or --all (no tiny checkpoint is trained without the "
                        "training probe)")
    missing = [c for c in paths if not Path(c).is_file()]
    if missing:
        raise MageError(f"no checkpoint file at {missing[0]}")
    r = run_studio_bench(paths, args.first_window_repeats, args.scenes_only)
    for line in summary_lines(r):
        print(line)
    Path(args.out).write_text(json.dumps(r, indent=2))
    print(f"wrote {args.out}")
    return 0


def _main() -> int:
    from mage_core.errors import MageError

    try:
        return main()
    except MageError as exc:
        print(f"mage: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(_main())
