"""Qt-free closed loop used by the Run dock: start/goal placement, RTG bookkeeping, replanning every n steps."""
import numpy as np
import pytest
from fakes import FakePlanner

from mage_core.errors import MageError
from mage_core.suites.pointmaze import geometry
from mage_core.tasks import get_task
from mage_core.rtg import condition_rtg
from mage_studio.rollout import ClosedLoop, condition_obs


def test_closed_loop_places_start_and_goal_and_conditions_on_the_window_rtg():
    task = get_task("pointmaze-umaze")
    geo = geometry(task)
    start, goal = geo.cell_to_xy((3, 3)), geo.cell_to_xy((1, 1))
    planner = FakePlanner(task)
    loop = ClosedLoop(task, planner, rtg_target=200.0, max_steps=12)
    obs = loop.reset(start, goal)
    np.testing.assert_allclose(obs[:2], start, atol=1e-6)
    np.testing.assert_allclose(obs[4:6], goal, atol=1e-6)
    loop.run(12)
    assert loop.t == 12 and len(loop.path_xy) == 13
    rtgs = [r for _, r in planner.calls]
    assert rtgs == [200.0 + t for t in range(12)]  # no reward yet: the window condition grows by one per step
    assert np.linalg.norm(loop.path_xy[-1] - loop.path_xy[0]) > 0.05
    loop.close()


def test_replanning_every_n_steps_plans_less_often_and_still_moves():
    task = get_task("pointmaze-umaze")
    geo = geometry(task)
    planner = FakePlanner(task)
    loop = ClosedLoop(task, planner, rtg_target=250.0, replan_every=4, max_steps=12)
    loop.reset(geo.cell_to_xy((3, 3)), geo.cell_to_xy((1, 1)))
    loop.run(12)
    assert len(planner.calls) == 3
    assert np.linalg.norm(loop.path_xy[-1] - loop.path_xy[0]) > 0.05
    loop.close()


def test_bad_conditions_are_refused():
    task = get_task("pointmaze-umaze")
    loop = ClosedLoop(task, FakePlanner(task), rtg_target=1.0)
    with pytest.raises(MageError, match="wall"):
        loop.reset(geometry(task).cell_to_xy((2, 1)), geometry(task).cell_to_xy((1, 1)))
    loop.close()
    with pytest.raises(MageError, match="expects 4"):
        condition_obs(task, (0, 0), (1, 1), obs_dim=4)
    assert condition_rtg(100, 3, 10) == 107 and condition_rtg(100, 3, 10, "dense") == 97


def test_write_rollout_writes_an_mp4_whose_frames_decode(tmp_path):
    """The Run dock's Export rollout… as MP4 (the `video` extra): every recorded frame comes back."""
    import io

    import numpy as np
    import pytest
    from PIL import Image

    pytest.importorskip("imageio_ffmpeg", reason="the `video` extra is not installed")
    import imageio.v2 as imageio

    from mage_studio.export import write_rollout

    frames = []
    for i in range(6):
        buf = io.BytesIO()
        Image.fromarray(np.full((48, 64, 3), 40 * i, np.uint8)).save(buf, format="PNG")
        frames.append(buf.getvalue())
    out, kind = write_rollout(tmp_path / "run.mp4", frames, frame_ms=40)
    assert kind == "mp4" and out.stat().st_size > 0
    back = imageio.mimread(out)
    assert len(back) == 6 and back[0].shape[:2] == (48, 64)
    assert abs(int(back[5].mean()) - 200) < 12 and abs(int(back[0].mean())) < 12
