"""The kitchen suite's tables: its sub-tasks, the flattened observation's layout, D4RL's protocol, the built-in task."""
from __future__ import annotations

from mage_core.errors import MageError
from mage_core.suites.base import Task

ENV_ID = "FrankaKitchen-v1"  # gymnasium-robotics' kitchen (D4RL's kitchen rebuilt on the current MuJoCo bindings)

# Every sub-task FrankaKitchen-v1 offers, with the model's joint(s) it moves and the site the controller works at.
SUBTASKS = ("microwave", "kettle", "light switch", "slide cabinet", "bottom burner", "top burner", "hinge cabinet")
# D4RL's kitchen targets (kitchen-complete and kitchen-partial, and Minari's D4RL/kitchen/complete and partial), in
# the order its complete demonstrations perform them.
D4RL_TARGETS = ("microwave", "kettle", "light switch", "slide cabinet")
# D4RL's kitchen-mixed evaluates on other targets (the bottom burner instead of the slide cabinet).
D4RL_MIXED_TARGETS = ("microwave", "kettle", "bottom burner", "light switch")

HORIZON = 64  # segment horizon: about one sub-task (the controller takes 40-70 steps per sub-task)
EVAL_STEPS = 280  # D4RL's kitchen episode limit (FrankaKitchen-v1's default too)
REFERENCE_SCORES = (0.0, 4.0)  # D4RL's (and Minari's) kitchen reference scores: no sub-task, all four
COMPLETION_THRESHOLD = 0.3  # FrankaKitchen-v1's BONUS_THRESH: a sub-task is done once its joints are this close
CONTROL_DT = 0.08  # seconds per env step (40 MuJoCo steps of 2 ms): 12.5 Hz

# ---- the flattened observation --------------------------------------------------------------------------------------
# FrankaKitchen-v1's 'observation' (59) followed by one done flag per target sub-task (in the task's target order,
# 1 once the env counted that sub-task completed this episode). The 'observation' is the robot's 9 joint positions
# (7 arm, 2 fingers) and velocities, then the 21 object joint positions (qpos[9:30]) and 20 velocities (qvel[9:29]),
# with the env's small uniform observation noise.
ROBOT_QPOS = slice(0, 9)
ARM_QPOS = slice(0, 7)
FINGER_QPOS = slice(7, 9)
ROBOT_QVEL = slice(9, 18)
OBJECT_QPOS = slice(18, 39)  # model qpos[9:30]
OBJECT_QVEL = slice(39, 59)  # model qvel[9:29]
ENV_OBS_DIM = 59  # FrankaKitchen-v1's 'observation'
NQ = 30  # model qpos: 9 robot + 21 object
OBS_OF_QPOS = 18 - 9  # inside OBJECT_QPOS: observation index = model qpos index + this

# Model qpos indices of each sub-task's joints (gymnasium-robotics' OBS_ELEMENT_INDICES) and their goal values
# (OBS_ELEMENT_GOALS); FrankaKitchen-v1 counts a sub-task done when ||qpos[idx] - goal|| < COMPLETION_THRESHOLD.
GOAL_QPOS = {"bottom burner": (11, 12), "top burner": (15, 16), "light switch": (17, 18), "slide cabinet": (19,),
             "hinge cabinet": (20, 21), "microwave": (22,), "kettle": (23, 24, 25, 26, 27, 28, 29)}
GOALS = {"bottom burner": (-0.88, -0.01), "top burner": (-0.92, -0.01), "light switch": (-0.69, -0.05),
         "slide cabinet": (0.37,), "hinge cabinet": (0.0, 1.45), "microwave": (-0.75,),
         "kettle": (-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06)}


def obs_dim(targets) -> int:
    """Size of the flattened observation of a task with these targets."""
    return ENV_OBS_DIM + len(targets)


def obs_slices(targets) -> dict[str, slice]:
    """Named parts of the flattened observation (robot, objects, each sub-task's joints, the done flags)."""
    sl = {"robot_qpos": ROBOT_QPOS, "arm_qpos": ARM_QPOS, "finger_qpos": FINGER_QPOS, "robot_qvel": ROBOT_QVEL,
          "object_qpos": OBJECT_QPOS, "object_qvel": OBJECT_QVEL}
    for name, idx in GOAL_QPOS.items():
        sl[name.replace(" ", "_")] = slice(idx[0] + OBS_OF_QPOS, idx[-1] + 1 + OBS_OF_QPOS)
    sl["kettle_xyz"] = slice(GOAL_QPOS["kettle"][0] + OBS_OF_QPOS, GOAL_QPOS["kettle"][0] + 3 + OBS_OF_QPOS)
    sl["task_done"] = slice(ENV_OBS_DIM, ENV_OBS_DIM + len(targets))
    for i, name in enumerate(targets):
        sl[f"done_{name.replace(' ', '_')}"] = slice(ENV_OBS_DIM + i, ENV_OBS_DIM + i + 1)
    return sl


def check_subtasks(names, what: str = "sub-task") -> tuple:
    """The names as a tuple, or a MageError naming the first one FrankaKitchen-v1 does not have."""
    names = tuple(names)
    for n in names:
        if n not in SUBTASKS:
            raise MageError(f"FrankaKitchen-v1 has no {what} {n!r}; its sub-tasks: {', '.join(SUBTASKS)}")
    if len(set(names)) != len(names):
        raise MageError(f"{what}s repeat: {', '.join(names)}")
    return names


def targets_of(task: Task) -> tuple:
    """The target sub-tasks of a task of this suite, in its order (the flags' order)."""
    return tuple(task.params.get("targets") or D4RL_TARGETS)


def make_task(targets=D4RL_TARGETS, name: str = "kitchen", dataset_id: str = "mage/kitchen/complete-v0") -> Task:
    """A kitchen task: FrankaKitchen-v1 with these target sub-tasks, D4RL's 280-step episodes, dense RTG (each
    sub-task pays 1 once, so an episode's return is the number of targets completed)."""
    targets = check_subtasks(targets, "target sub-task")
    kw = {"tasks_to_complete": list(targets)}
    return Task(name=name, env_id=ENV_ID, suite_name="kitchen", env_kwargs=dict(kw), eval_kwargs=dict(kw),
                dataset_id=dataset_id, horizon=HORIZON, eval_steps=EVAL_STEPS, obs_keys=(),
                data_max_episode_steps=EVAL_STEPS, rtg_mode="dense",
                params={"targets": list(targets), "diffuser_horizon": HORIZON})
