"""`mage bench studio`: each checkpoint is timed on its own task's scene with its plan drawn, and the GL renderer is
named."""
import subprocess
import sys

import pytest

from mage_core.bundled import bundled_checkpoint


@pytest.mark.parametrize("task", ["adroit-hammer"])
@pytest.mark.slow
def test_the_scene_row_times_the_checkpoints_own_scene_with_its_ghosts(qapp, qloop, tmp_path, monkeypatch, task):
    from mage_studio import bench

    path = bundled_checkpoint(task)
    if path is None:
        pytest.skip(f"no bundled {task} checkpoint")
    seen = []
    from mage_studio.viewport import Viewport

    orig = Viewport.set_overlay

    def spy(self, overlay):  # what the fps loop draws: the robot plan the studio draws (its ghosts come from it)
        seen.append((self.task.name, overlay))
        orig(self, overlay)

    monkeypatch.setattr(Viewport, "set_overlay", spy)
    fps = bench.viewport_fps(qapp, _planner(path), seconds=0.5)
    monkeypatch.undo()
    assert fps["viewport_fps"] > 0 and fps["viewport_size"] == list(bench.VIEWPORT_SIZE)
    assert seen and all(name == task for name, _ in seen)  # the hand's scene, not the maze's
    ov = seen[-1][1]
    assert ov.plan_states is not None and ov.ghost_scales == 1  # the plan's ghosts are drawn
    row = bench.scene_row(qapp, str(path), tmp_path)
    assert row["task"] == task and row["viewport_fps"] > 0 and row["replan_redraw_ms_median"] > 0
    assert isinstance(row["meets_targets"], bool)
    text = "\n".join(bench.summary_lines({"scenes": [row], "machine": {"gl_renderer": "llvmpipe (test)", "cpus": 2,
                                                                       "load_avg_1m_before": 1.0,
                                                                       "load_avg_1m_after": 1.0}}))
    assert "llvmpipe (test)" in text and f"{path.name}" in text and task in text


def _planner(path):
    from mage_core.planner import Planner

    return Planner.from_checkpoint(str(path))


def test_the_renderer_is_named_and_bad_flags_are_one_line_errors():
    from mage_studio import bench

    assert bench._gl_renderer() and not bench._gl_renderer().startswith("unknown")
    r = subprocess.run([sys.executable, "-m", "mage_core", "bench", "studio", "--scenes-only"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0 and "--scenes-only needs --checkpoint CKPT or --all" in r.stderr
    assert "Traceback" not in r.stderr
