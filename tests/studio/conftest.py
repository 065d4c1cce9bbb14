"""Fixtures for the studio tests: offscreen Qt + EGL, a qasync loop, a tiny generated dataset and checkpoint, the window."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")  # must be set before Qt is imported
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import asyncio  # noqa: E402
import gc  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402

import mage_studio  # noqa: E402,F401  (applies the PySide6/py3.11 refcount fix before any Qt call)
import pytest  # noqa: E402

TINY_STEPS = 1500  # environment steps in the test dataset
TRAIN_SCALE = "0.05"  # --steps-scale for the tiny real training runs


# `minari_root` (a private Minari store for the session) comes from tests/conftest.py: one store for every test, so
# the core tests' datasets stay visible whichever order the two folders run in.


@pytest.fixture(scope="session")
def tiny_dataset(minari_root):
    """A tiny PointMaze UMaze dataset generated with the engine; returns its id."""
    from mage_core.data.generate import GenerateConfig, make_dataset
    from mage_core.tasks import get_task

    task = get_task("pointmaze-umaze")
    ds = make_dataset(task, GenerateConfig(steps=TINY_STEPS, seed=0, ref_episodes=2), dataset_id="test/umaze-tiny-v0")
    return ds.id


@pytest.fixture(scope="session")
def tiny_checkpoint(tiny_dataset, tmp_path_factory):
    """A real (barely trained) MAGE checkpoint from `mage train --preset tiny` on the tiny dataset."""
    out = tmp_path_factory.mktemp("ckpt") / "umaze-tiny.pt"
    cmd = [sys.executable, "-m", "mage_core", "train", "--dataset", tiny_dataset, "--preset", "tiny", "--steps-scale",
           TRAIN_SCALE, "--device", "cpu", "--threads", "1", "--out", str(out), "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-2000:]
    return out


@pytest.fixture(scope="session")
def qloop(qapp):
    """pytest-qt has no qasync fixture: one qasync loop over the session's QApplication, already running under qtbot.

    Session-scoped on purpose: a discarded loop's Qt timers must never be collected by Python's GC on another thread.
    """
    import qasync

    loop = qasync.QEventLoop(qapp, already_running=True)
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "studio.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def window(qtbot, qloop, settings):
    """The real main window on the UMaze task, shown offscreen, first frame rendered."""
    from mage_studio.app import make_app
    from mage_studio.main_window import MainWindow

    make_app()
    win = MainWindow(settings=settings, initial_task="pointmaze-umaze")
    win.ask_close = lambda jobs: True  # closing at teardown stops what still runs (the user's "Yes")
    qtbot.addWidget(win)
    win.resize(1400, 900)
    win.show()
    qtbot.waitUntil(lambda: win.docks_ready and win.viewport.image is not None and win.viewport.frame is not None,
                    timeout=20000)
    yield win
    win.close()
    gc.collect()  # collect the window's reference cycles here, on the GUI thread, not later on a worker thread
