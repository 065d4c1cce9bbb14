"""`mage-studio` entry point: QApplication on a qasync event loop, the main window first, heavy imports after it shows."""
from __future__ import annotations

import time

_T_START = time.perf_counter()  # process-relative start, for the time-to-first-window measurement

import argparse  # noqa: E402
import asyncio  # noqa: E402
import os  # noqa: E402
import sys  # noqa: E402


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WxH such as 1600x1000, got {text!r}") from None
    if w < 320 or h < 240:
        raise argparse.ArgumentTypeError("the window must be at least 320x240")
    return w, h


def _parse(argv):
    p = argparse.ArgumentParser(prog="mage-studio", description="MAGE Studio: the visual planning studio.")
    p.add_argument("--task", default=None,
                   help="built-in task shown at start (default: the --checkpoint's task, else pointmaze-umaze)")
    p.add_argument("--dataset", help="dataset id or path to load at start")
    p.add_argument("--checkpoint", help="checkpoint to load at start")
    p.add_argument("--events-log", metavar="JSONL", help="plot a past training run from its events file")
    p.add_argument("--size", metavar="WxH", type=_size, help="window size, e.g. 1600x1000")
    p.add_argument("--screenshot", metavar="PNG", help="load, wait for the first plan, save a window screenshot, quit")
    p.add_argument("--rtg", type=float, help="RTG target to start with (default: from the data)")
    p.add_argument("--run-steps", type=int, default=0, help="with --screenshot: run this many closed-loop steps first")
    p.add_argument("--reset-layout", action="store_true", help="ignore the saved window layout")
    p.add_argument("--orbit", action="store_true", help="start in the orbit view instead of top-down")
    p.add_argument("--first-window-probe", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run_steps < 0:
        p.error(f"--run-steps must be 0 or more, got {args.run_steps}")
    if args.run_steps and not args.screenshot:
        p.error("--run-steps runs a closed loop before a --screenshot; give --screenshot PNG with it (or press Play "
                "in the studio)")
    from mage_core.tasks import TASKS

    if args.task is not None and args.task not in TASKS:
        p.error(f"unknown task {args.task!r}; known tasks: {', '.join(sorted(TASKS))}")
    args.task = args.task or _checkpoint_task(args.checkpoint) or "pointmaze-umaze"
    return args


def _checkpoint_task(path: str | None) -> str | None:
    """The built-in task a checkpoint was trained for (None when unknown or unreadable: opening it reports why)."""
    if not path:
        return None
    try:
        from mage_core.checkpoint import load_checkpoint
        from mage_core.tasks import TASKS

        name = load_checkpoint(path).get("task")
        return name if name in TASKS else None
    except Exception:  # noqa: BLE001 - the Checkpoint dock shows the real error when the file is opened
        return None


GIL_SWITCH_S = 0.0005  # the interpreter's thread switch interval in the studio (seconds; Python's default is 0.005)


def make_app(argv=None):
    """The QApplication with the studio's look (Fusion + dark stylesheet)."""
    from mage_core.gl import configure_gl

    configure_gl()  # MuJoCo's GL backend for this platform (the user's MUJOCO_GL kept), before MuJoCo is imported
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    # three threads share the interpreter (window, planner, renderer): a thread woken for its part of a re-plan gets
    # the interpreter within GIL_SWITCH_S rather than Python's default 5 ms, which a re-plan would pay at each hand-off
    sys.setswitchinterval(GIL_SWITCH_S)
    app.setApplicationName("MAGE Studio")
    app.setOrganizationName("MAGE")
    app.setStyle("Fusion")
    from mage_studio.main_window import load_stylesheet

    app.setStyleSheet(load_stylesheet())
    return app


# What the Qt platform plugins for Linux need beyond Qt's own libraries: shared library -> the Debian/Ubuntu package
# that provides it (the xcb plugin of Qt 6.5 and later needs libxcb-cursor, which desktops often lack).
QT_LINUX_LIBRARIES = {
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-shape.so.0": "libxcb-shape0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0", "libxkbcommon.so.0": "libxkbcommon0", "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3", "libglib-2.0.so.0": "libglib2.0-0"}


def qt_platform_name(environ=os.environ) -> str:
    """The platform plugin Qt will load on Linux: QT_QPA_PLATFORM's first entry, else wayland in a Wayland session,
    else xcb (X11)."""
    chosen = (environ.get("QT_QPA_PLATFORM") or "").split(";")[0].split(":")[0].strip()
    if chosen:
        return chosen
    if environ.get("WAYLAND_DISPLAY") and environ.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return "wayland"
    return "xcb"


def missing_libraries(names, loadable) -> list[str]:
    """The shared libraries among `names` that loadable(name) -> bool cannot load."""
    return [n for n in names if not loadable(n)]


def _loads(name: str) -> bool:
    import ctypes

    try:
        ctypes.CDLL(name)
        return True
    except OSError:
        return False


def qt_platform_problem(environ=os.environ, plugins_dir: str | None = None, loadable=_loads) -> str | None:
    """On Linux, why Qt could not load its platform plugin (None when it can): the plugin's file is missing, or a
    library it needs is, named with the Debian packages to install. Checked by loading the plugin's shared library,
    which is what Qt does, so a missing library is reported here instead of by Qt's abort. loadable(name) -> bool says
    whether a shared library loads (default: try it)."""
    import ctypes

    if not sys.platform.startswith("linux"):
        return None  # macOS and Windows wheels carry their platform plugins and what they need
    name = qt_platform_name(environ)
    if plugins_dir is None:
        from PySide6.QtCore import QLibraryInfo

        plugins_dir = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    plugin = os.path.join(plugins_dir, "platforms", f"libq{name}.so")
    if not os.path.isfile(plugin):
        return f"Qt has no platform plugin {name!r} ({plugin} is missing); check QT_QPA_PLATFORM or reinstall PySide6"
    try:
        ctypes.CDLL(plugin)
        return None
    except OSError as exc:
        first = str(exc).split(":")[0].strip()
    missing = missing_libraries(QT_LINUX_LIBRARIES, loadable)
    if first not in missing:
        missing.insert(0, first)
    packages = [QT_LINUX_LIBRARIES[m] for m in missing if m in QT_LINUX_LIBRARIES]
    unknown = [m for m in missing if m not in QT_LINUX_LIBRARIES]
    text = f"Qt cannot load its {name!r} platform plugin: {', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing."
    if packages:
        text += f" On Debian/Ubuntu: sudo apt install {' '.join(packages)}."
    if unknown:
        text += f" Install the package that provides {', '.join(unknown)}."
    return text


FIRST_RUN_STEPS = 100_000  # size of the dataset generated on first run when the task's default one is missing


def _no_display() -> bool:
    """True on Linux without X11/Wayland and without an explicit Qt platform (e.g. a headless server)."""
    return (sys.platform.startswith("linux") and not os.environ.get("DISPLAY")
            and not os.environ.get("WAYLAND_DISPLAY") and not os.environ.get("QT_QPA_PLATFORM"))


def _first_run(win, args) -> None:
    """Open something useful when nothing was asked for: the bundled checkpoint and the task's default dataset,
    generating a compact one (with progress in the Data dock) when it is missing."""
    from PySide6.QtCore import QTimer

    from mage_core.data.store import list_datasets
    from mage_core.tasks import get_task

    if not args.checkpoint:
        ckpt = _startup_checkpoint(args)
        if ckpt is not None:
            QTimer.singleShot(0, lambda: win.controller.open_checkpoint(ckpt))
    if not args.dataset:
        ds_id = get_task(args.task).dataset_id
        if any(d["id"] == ds_id for d in list_datasets()):
            QTimer.singleShot(0, lambda: win.controller.open_dataset(ds_id))
        else:
            win.statusBar().showMessage(f"First run: generating {ds_id} ({FIRST_RUN_STEPS:,} steps)…")
            win.data_dock.spin_steps.setValue(FIRST_RUN_STEPS)
            QTimer.singleShot(0, win.data_dock.generate)


def _startup_checkpoint(args) -> str | None:
    """The checkpoint start-up opens: the one given, else the task's bundled one, else None."""
    from mage_core.bundled import bundled_checkpoint

    ckpt = args.checkpoint or bundled_checkpoint(args.task)
    return None if ckpt is None else str(ckpt)


def _opens_checkpoint(args) -> bool:
    """True when start-up opens a checkpoint (so --screenshot waits for its first plan instead of saving "No
    checkpoint loaded")."""
    return _startup_checkpoint(args) is not None


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if _no_display() and not args.first_window_probe:
        print("mage-studio: no display found (DISPLAY/WAYLAND_DISPLAY unset); running the headless `mage demo` "
              "instead. Use a desktop session, or QT_QPA_PLATFORM=offscreen with --screenshot.", file=sys.stderr)
        from mage_core.cli import main as mage_main

        return mage_main(["demo", "--task", args.task] + (["--checkpoint", args.checkpoint] if args.checkpoint else []))
    problem = qt_platform_problem()
    if problem:
        print(f"mage-studio: {problem}\nUntil then, `mage demo` plans and runs headless and writes a PNG (add "
              f"--video demo.mp4 for a video).", file=sys.stderr)
        return 1
    app = make_app()
    import qasync
    from PySide6.QtCore import QTimer

    from mage_studio.main_window import MainWindow

    loop = qasync.QEventLoop(app)
    asyncio.set_event_loop(loop)
    win = MainWindow(initial_task=args.task)
    if args.reset_layout:
        win.reset_layout()
    if args.size:
        win.resize(*args.size)
    win.show()
    if args.orbit:
        win.viewport.view_orbit()
    if args.first_window_probe:  # bench: report when the first frame is on screen and when the docks are up, then quit
        seen = {}

        def on_frame(_ms):
            if "frame" not in seen:
                seen["frame"] = time.perf_counter() - _T_START
                print(f"first_window_s {seen['frame']:.3f}", flush=True)

        win.viewport.frame_painted.connect(on_frame)

        def probe():
            if "frame" in seen and win.docks_ready:
                print(f"docks_ready_s {time.perf_counter() - _T_START:.3f}", flush=True)
                QTimer.singleShot(0, app.quit)
            else:
                QTimer.singleShot(20, probe)

        probe()
    else:
        QTimer.singleShot(0, win.after_show)
        QTimer.singleShot(0, lambda: _first_run(win, args))
        if args.dataset:
            QTimer.singleShot(0, lambda: win.controller.open_dataset(args.dataset))
        if args.checkpoint:
            QTimer.singleShot(0, lambda: win.controller.open_checkpoint(args.checkpoint))
        if args.events_log:
            QTimer.singleShot(0, lambda: win.open_events(args.events_log))
        if args.rtg is not None:
            win.state.events.planner.connect(lambda p: setattr(win.state, "rtg", args.rtg) if p is not None else None)
        if args.screenshot:
            _arm_screenshot(win, args.screenshot, need_plan=_opens_checkpoint(args), run_steps=args.run_steps,
                            need_dataset=bool(args.dataset))

    closing = asyncio.Event()
    app.aboutToQuit.connect(closing.set)
    with loop:
        loop.run_until_complete(closing.wait())
    return 0


def _arm_screenshot(win, out: str, need_plan: bool, run_steps: int = 0, timeout_ms: int = 120000,
                    need_dataset: bool = False, on_saved=None) -> None:
    """Save a grab of the window once the scene (and the first plan, when a checkpoint was given) is drawn. With
    need_dataset, the plan must come after the dataset loaded (a large dataset loads after the first plan); with
    run_steps, once the closed-loop run has made that many steps. It gives up waiting (and grabs what there is, with a
    warning) after timeout_ms without progress: a long run that keeps stepping is waited for. Then on_saved() runs
    (default: quit the app)."""
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    state = {"ran": False, "plans_at_dataset": None, "progress": None, "since": time.perf_counter()}

    def on_dataset(_ds):
        state["plans_at_dataset"] = win.state.plans_done

    win.state.events.dataset.connect(on_dataset)

    def poll():
        ready = win.viewport.image is not None and (not need_plan or win.state.plan is not None)
        if need_dataset:
            at = state["plans_at_dataset"]
            ready = ready and at is not None and (not need_plan or win.state.plans_done > at)
        if ready and run_steps and not state["ran"]:
            state["ran"] = True
            win.run_dock.spin_len.setValue(run_steps)
            win.run_dock.set_playing(True)
        if ready and run_steps:
            ready = win.run_dock.loop is not None and win.run_dock.loop.t >= run_steps
        progress = (win.viewport.image is not None, win.state.plans_done,
                    win.run_dock.loop.t if win.run_dock.loop is not None else -1)
        if progress != state["progress"]:
            state["progress"], state["since"] = progress, time.perf_counter()
        stalled = (time.perf_counter() - state["since"]) * 1000 > timeout_ms
        if stalled and not ready:
            at = f" (run step {max(progress[2], 0)} of {run_steps})" if run_steps else ""
            print(f"screenshot: nothing progressed for {timeout_ms / 1000:.0f} s; saving what is drawn{at}",
                  file=sys.stderr, flush=True)
        if ready or stalled:
            done = on_saved or QApplication.instance().quit
            QTimer.singleShot(800, lambda: (win.grab().save(out), print(f"saved {out}", flush=True), done()))
        else:
            QTimer.singleShot(200, poll)

    QTimer.singleShot(500, poll)


if __name__ == "__main__":
    sys.exit(main())
