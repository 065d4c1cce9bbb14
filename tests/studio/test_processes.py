"""Background processes from the studio: training (fake and real `mage train`), stop, crash, dataset generation."""
import pytest
import os

from fakes import fake_events_script

STAGES = [{"name": "autoencoder", "steps": 40}, {"name": "transformer", "steps": 40}]


def step_event(stage, step, loss):
    return {"event": "step", "stage": stage, "stage_name": STAGES[stage - 1]["name"], "step": step, "total": 40,
            "losses": {"loss": loss, "rec": loss / 2}, "codebook_usage": [0.2, 0.4, 0.6], "segments_per_s": 900.0,
            "eta_s": 3.0}


def test_train_dock_plots_events_and_loads_the_checkpoint(window, qtbot, tmp_path, tiny_checkpoint):
    win = window
    dock = win.train_dock
    events = [{"event": "start", "algo": "mage", "task": "pointmaze-umaze", "stages": STAGES, "device": "cpu",
               "params": 1234}]
    events += [step_event(1, s, 2.0 / s) for s in (10, 20, 30, 40)] + [{"event": "stage_end", "stage": 1, "metrics": {}}]
    events += [step_event(2, s, 1.0 / s) for s in (10, 20)]
    events += [{"event": "checkpoint", "path": str(tiny_checkpoint), "stage": 2, "step": 20},
               {"event": "done", "checkpoint": str(tiny_checkpoint), "wall_s": 1.0}]
    dock.command_override = lambda resume: fake_events_script(tmp_path, events, delay=0.01)
    dock.btn_start.click()
    assert not dock.btn_start.isEnabled() and dock.btn_stop.isEnabled()
    qtbot.waitUntil(lambda: not dock.proc.is_running() and dock.btn_start.isEnabled(), timeout=20000)
    assert [x for x, _ in dock.points["loss"]] == [10, 20, 30, 40, 50, 60]  # stage 2 continues after stage 1
    assert dock.progress.value() == dock.progress.maximum() == 80
    assert "Done" in dock.lbl_status.text()
    qtbot.waitUntil(lambda: win.state.planner is not None and win.state.plan is not None, timeout=30000)
    assert win.state.planner_path == str(tiny_checkpoint)
    assert win.errors == []


def test_stop_and_crash_give_clear_messages(window, qtbot, tmp_path):
    win = window
    dock = win.train_dock
    slow = [{"event": "start", "algo": "mage", "task": "pointmaze-umaze", "stages": STAGES, "device": "cpu", "params": 1}]
    slow += [step_event(1, s, 1.0) for s in range(1, 41)]
    dock.command_override = lambda resume: fake_events_script(tmp_path, slow, delay=0.2)
    dock.btn_start.click()
    qtbot.waitUntil(lambda: dock.events_seen >= 2, timeout=15000)
    dock.btn_stop.click()
    qtbot.waitUntil(lambda: not dock.proc.is_running(), timeout=10000)
    assert "stopped" in dock.lbl_status.text()
    assert win.errors == []
    # a process that dies with an error: its stderr reaches the user; the window keeps working
    crash = [{"event": "start", "algo": "mage", "task": "pointmaze-umaze", "stages": STAGES, "device": "cpu", "params": 1}]
    dock.command_override = lambda resume: fake_events_script(tmp_path, crash, exit_code=3,
                                                              stderr="Traceback...\nRuntimeError: CUDA out of memory\n")
    dock.btn_start.click()
    qtbot.waitUntil(lambda: len(win.errors) == 1, timeout=15000)
    assert "CUDA out of memory" in win.errors[0] and "code 3" in win.errors[0]
    assert win.last_dialog.isVisible()
    assert "CUDA out of memory" in dock.log.toPlainText()
    win.last_dialog.close()
    assert dock.btn_start.isEnabled()
    # an error event is reported even if the process exits 0
    err = [{"event": "error", "message": "dataset foo has no episodes"}]
    dock.command_override = lambda resume: fake_events_script(tmp_path, err)
    dock.btn_start.click()
    qtbot.waitUntil(lambda: len(win.errors) == 2, timeout=15000)
    assert "dataset foo has no episodes" in win.errors[1]


@pytest.mark.slow
def test_real_tiny_training_from_the_dock(window, qtbot, tmp_path, tiny_dataset):
    """One real `mage train --preset tiny` run started from the Train dock, its events plotted, the result loaded."""
    win = window
    dock = win.train_dock
    dock.combo_ds.setCurrentText(tiny_dataset)
    dock.combo_preset.setCurrentText("tiny")
    dock.combo_device.setCurrentText("cpu")
    dock.spin_scale.setValue(0.05)
    out = tmp_path / "studio-train.pt"
    dock.edit_out.setText(str(out))
    os.environ["OMP_NUM_THREADS"] = "1"
    dock.btn_start.click()
    qtbot.waitUntil(lambda: not dock.proc.is_running(), timeout=120000)
    assert win.errors == [], dock.log.toPlainText()[-2000:]
    assert out.is_file()
    assert dock.points and all(len(v) >= 1 for v in dock.points.values())
    qtbot.waitUntil(lambda: win.state.planner_path == str(out) and win.state.plan is not None, timeout=30000)
    drawn = {k: list(v) for k, v in dock.points.items()}
    events = out.with_name("studio-train.events.jsonl")  # the studio's run kept its events beside the checkpoint
    assert events.is_file() and '"event": "done"' in events.read_text().splitlines()[-1]
    dock._clear_plots()
    assert dock.open_run(str(out))  # Open run…: the checkpoint's curves again, from its events file
    assert dock.points == drawn and win.errors == []
    assert not dock.open_run(str(tmp_path / "elsewhere.pt")) and "no events file" in win.errors[-1]


def test_generate_dataset_from_the_data_dock(window, qtbot, minari_root):
    win = window
    dock = win.data_dock
    dock.task_combo.setCurrentText("pointmaze-umaze")
    dock.spin_steps.setValue(400)
    dock.btn_gen.click()
    assert dock.gen_progress.isVisible()
    qtbot.waitUntil(lambda: not dock.proc.is_running(), timeout=120000)
    assert win.errors == [], dock.lbl_gen.text()
    assert dock.generated_id == "mage/pointmaze-umaze/expert-v0"
    qtbot.waitUntil(lambda: win.state.dataset is not None, timeout=20000)
    assert win.state.dataset.steps == 400
    assert any("expert-v0" in dock.list.item(i).text() for i in range(dock.list.count()))


def test_train_command_lines():
    from mage_studio.docks.train import train_argv

    argv = train_argv("mage/pointmaze-umaze/expert-v0", "small", "auto", "/tmp/x.pt", steps_scale=0.5)
    assert argv[1:4] == ["-m", "mage_core", "train"]
    assert argv[argv.index("--dataset") + 1] == "mage/pointmaze-umaze/expert-v0"
    assert argv[argv.index("--events") + 1] == "-" and argv[argv.index("--steps-scale") + 1] == "0.5"
    resume = train_argv("ignored", "small", "cpu", "/tmp/x.pt", resume="/tmp/x.pt")
    assert resume[resume.index("--resume") + 1] == "/tmp/x.pt" and "--dataset" not in resume


def test_a_missing_qt_library_is_named_with_its_package_instead_of_an_abort(tmp_path):
    """The studio loads Qt's platform plugin itself before Qt does: a missing library is a message, never an abort."""
    import shutil
    import subprocess
    import sys

    from PySide6.QtCore import QLibraryInfo

    from mage_studio.app import qt_platform_name, qt_platform_problem

    assert qt_platform_name({}) == "xcb" and qt_platform_name({"QT_QPA_PLATFORM": "offscreen;xcb"}) == "offscreen"
    assert qt_platform_name({"WAYLAND_DISPLAY": "w", "XDG_SESSION_TYPE": "wayland"}) == "wayland"
    real = QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)
    assert qt_platform_problem({"QT_QPA_PLATFORM": "offscreen"}) is None
    # the xcb plugin copied away from Qt's libraries cannot load them; and a desktop without libxcb-cursor
    (tmp_path / "platforms").mkdir()
    shutil.copy(f"{real}/platforms/libqxcb.so", tmp_path / "platforms" / "libqxcb.so")
    msg = qt_platform_problem({}, plugins_dir=str(tmp_path), loadable=lambda name: name != "libxcb-cursor.so.0")
    assert "libxcb-cursor.so.0" in msg and "sudo apt install libxcb-cursor0" in msg and "libQt6" in msg
    r = subprocess.run([sys.executable, "-m", "mage_studio.app"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, QT_QPA_PLATFORM="nosuchplatform"))
    assert r.returncode == 1 and "nosuchplatform" in r.stderr and "mage demo" in r.stderr
    assert "Aborted" not in r.stderr and "could not load the Qt platform plugin" not in r.stderr.lower()
