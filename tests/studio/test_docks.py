"""Every dock works from a StudioState and an Actions alone: built without a main window, it edits the state and asks
the studio for anything else through its actions."""
import pytest
from fakes import FakePlanner

from mage_core.tasks import get_task
from mage_studio.actions import Actions
from mage_studio.state import StudioState


class Recorder:
    """Actions whose every request is recorded as (name, args)."""

    def __init__(self):
        self.calls = []

    def actions(self) -> Actions:
        names = Actions.__dataclass_fields__
        return Actions(**{n: (lambda *a, n=n: self.calls.append((n, a))) for n in names})


@pytest.fixture
def bare(qapp):
    """(state, recorder, actions) with a maze task shown and no main window anywhere."""
    from mage_studio.docks.base import configure_pyqtgraph

    configure_pyqtgraph()
    state = StudioState()
    state.task = get_task("pointmaze-umaze")
    rec = Recorder()
    return state, rec, rec.actions()


def test_docks_edit_the_state_and_ask_for_the_rest_through_their_actions(bare):
    from mage_studio.docks.checkpoint import CheckpointDock
    from mage_studio.docks.condition import ConditionDock
    from mage_studio.docks.data import DataDock
    from mage_studio.docks.plan import PlanDock
    from mage_studio.docks.run import RunDock
    from mage_studio.docks.train import TrainDock

    state, rec, act = bare
    docks = [cls(state, act) for cls in (DataDock, CheckpointDock, ConditionDock, RunDock, TrainDock)]
    data, ckpt, cond, run, train = docks
    plan = PlanDock(state, act, "mage")
    data.task_combo.setCurrentText("pointmaze-medium")
    data.task_combo.activated.emit(data.task_combo.currentIndex())
    ckpt.btn_open.click()
    train.btn_start.click()  # no dataset picked: the dock asks for an error message
    assert [c[0] for c in rec.calls] == ["show_task", "open_checkpoint_dialog", "report_error"]
    assert rec.calls[0][1] == ("pointmaze-medium",) and rec.calls[2][1][0] == "Cannot start training"
    cond.btn_goal.click()  # a tool button sets the state; the state's tool checks the buttons
    assert state.tool == "goal"
    state.tool = "navigate"
    assert cond.btn_nav.isChecked()
    cond.spin_rtg.setValue(100.0)
    assert state.rtg == 100.0
    state.set_planner(FakePlanner(state.task))  # the plan dock offers its scales; toggling one sets the overlay
    assert len(plan.checks) == 6 and state.overlay.visible == (True,) * 6
    plan.checks[1].setChecked(False)
    assert state.overlay.visible[1] is False
    plan.refine.setValue(3)
    assert state.overlay.refine == 3 and state.overlay.visible == (True, True, True, False, False, False)
    run.reset()  # a reset leaves no run on screen
    assert state.run_frame is None
    for d in docks + [plan]:
        d.close()
