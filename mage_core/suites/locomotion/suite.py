"""The locomotion suite: Hopper, HalfCheetah and Walker2d (-v5) with D4RL's protocol (dense reward, plain return-to-go,
1000-step episodes, no goal: a termination is a fall), D4RL-style data from shipped SAC policies, and a side view."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.progress import Ticker
from mage_core.suites.base import Task
from mage_core.suites.generic import ROOT_BODY, GenericSuite
from mage_core.suites.locomotion import data as D
from mage_core.suites.locomotion.assets import (asset_dir, load_actor, load_replay_parts, policy_path,
                                                 replay_part_paths, ships_replay_tail)
from mage_core.suites.locomotion.actor import ENVS, NumpyActor, sha256

ENV_RE = re.compile(r"^(Hopper|HalfCheetah|Walker2d)-v(\d+)$")  # env ids this suite claims (any version)
ENV_KEYS = {"Hopper": "hopper", "HalfCheetah": "halfcheetah", "Walker2d": "walker2d"}  # env family -> task name
OBS_DIM = {"hopper": 11, "halfcheetah": 17, "walker2d": 17}  # qpos[1:] + qvel: the -v4/-v5 default observation
ACT_DIM = {"hopper": 3, "halfcheetah": 6, "walker2d": 6}  # action sizes (all in [-1, 1])
MIN_VERSION = 4  # -v4 and -v5 run on the mujoco bindings; -v2/-v3 (D4RL's) need the retired mujoco-py

# D4RL's published reference returns (random policy, expert policy) for its Gym-MuJoCo envs: REF_MIN_SCORE and
# REF_MAX_SCORE in d4rl/infos.py (github.com/Farama-Foundation/D4RL, measured on the -v2 envs). Used for a dataset
# that carries no ref_min_score / ref_max_score of its own; Minari's mujoco datasets and the ones `mage data make`
# writes carry their own.
D4RL_REFERENCE_SCORES = {"hopper": (-20.272305, 3234.3), "halfcheetah": (-280.178953, 12135.0),
                         "walker2d": (1.629008, 4592.3)}

VARIANTS = ("medium", "medium-replay", "medium-expert", "expert", "random", "full-replay")  # the default first
# `mage data make` records 200k steps by default (D4RL's sets are 1M: pass --steps 1000000); medium-replay is the
# whole replay log up to the medium snapshot, full-replay (D4RL v2's) the whole log up to the expert snapshot. Rolling out a 256x256 SAC actor in numpy runs at roughly 2-3k steps/s
# on one core here, so the default costs a minute or two per dataset on a shared 2-core machine.
DEFAULT_STEPS = 200_000
EVAL_STEPS = 1000  # D4RL's and Minari's evaluation episode length
HORIZON = 32  # segment horizon (Diffuser's locomotion horizon too)

# Side view that follows the torso: (distance, elevation, look-at height, look-ahead along +x) per env, so a plan's
# ghosts, which spread ahead of the torso along the direction of travel, stay in the frame.
# HalfCheetah steps 0.05 s (Hopper and Walker2d 0.008 s): a 32-step plan at 5 m/s runs 8 m ahead, so its view is wider.
CAMERAS = {"hopper": (3.4, -8.0, 0.75, 0.4), "walker2d": (3.8, -8.0, 0.8, 0.5), "halfcheetah": (8.0, -10.0, 0.4, 3.0)}
SIDE_AZIMUTH = 90.0  # looking along +y: the robots move in the x-z plane, +x to the right


def env_key(task: Task) -> str:
    """'hopper', 'halfcheetah' or 'walker2d' for a task of this suite (built-in or recovered from a dataset)."""
    key = task.params.get("env")
    if key:
        return key
    m = ENV_RE.match(task.env_id)
    if not m:
        raise MageError(f"{task.env_id} is not a locomotion environment (Hopper, HalfCheetah, Walker2d)")
    return ENV_KEYS[m.group(1)]


def expected_obs_dim(key: str, kwargs: dict) -> int:
    """The observation size of an env with these make kwargs (the x position is left out unless asked for)."""
    return OBS_DIM[key] + (0 if kwargs.get("exclude_current_positions_from_observation", True) else 1)


def _dataset_obs_dim(meta: dict) -> int | None:
    """The flat observation size a Minari dataset's metadata records (a Box space), or None."""
    space = meta.get("observation_space")
    try:
        space = json.loads(space) if isinstance(space, str) else space
        shape = space.get("shape") if isinstance(space, dict) and space.get("type") == "Box" else None
        return int(np.prod(shape)) if shape else None
    except (ValueError, TypeError, AttributeError):
        return None


def _task(key: str) -> Task:
    return Task(name=key, env_id=ENVS[key], suite_name="locomotion", env_kwargs={}, eval_kwargs={},
                dataset_id=f"mage/{key}/{VARIANTS[0]}-v0", horizon=HORIZON, eval_steps=EVAL_STEPS, obs_keys=(),
                data_max_episode_steps=EVAL_STEPS, rtg_mode="dense", params=dict(env=key, diffuser_horizon=HORIZON))


class ActorPolicy:
    """A SAC actor's deterministic action tanh(mean) as an evaluate.Policy (the reference expert)."""

    def __init__(self, actor: NumpyActor):
        self.actor = actor

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs_ND, reward_N):
        return np.stack([self.actor.act(o) for o in np.asarray(obs_ND, np.float64)]).astype(np.float32)


class LocomotionSuite(GenericSuite):
    """Gym-MuJoCo locomotion (`Hopper-v5`, `HalfCheetah-v5`, `Walker2d-v5`) with D4RL's protocol and data recipes."""

    name = "locomotion"
    title = "Locomotion"
    has_generator = True

    def __init__(self, assets: str | Path | None = None):
        self.assets = assets  # folder of the shipped policies (None: $MAGE_LOCOMOTION_ASSETS or assets/locomotion)
        self._files: dict = {}  # (path, size, mtime) -> what the file loaded to (an actor and its info, a replay log)

    # ---- tasks and datasets --------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        return [_task(k) for k in ENVS]

    def claims(self, env_id, spec, meta) -> bool:
        return bool(ENV_RE.match(env_id or ""))

    def matches_builtin(self, task, meta, spec) -> bool:
        """A dataset this suite made of the task, or any dataset recorded on the task's env as gymnasium makes it
        (Minari's `mujoco/<env>/<variant>-v0`): it takes the built-in protocol."""
        if meta.get("dataset_id") in {self.dataset_id(task, v) for v in VARIANTS}:
            return True
        kwargs = {k: v for k, v in (spec.get("kwargs") or {}).items() if v is not None and k != "render_mode"}
        return (spec.get("id") == task.env_id and not kwargs
                and _dataset_obs_dim(meta) in (None, OBS_DIM[env_key(task)]))

    def task_for_spec(self, meta, spec, eval_spec) -> Task:
        """A dataset of another version or make kwargs of these envs: the same protocol on its own env, or a
        MageError saying what was expected."""
        env_id, ds = spec["id"], meta.get("dataset_id")
        m = ENV_RE.match(env_id)
        key = ENV_KEYS[m.group(1)]
        if int(m.group(2)) < MIN_VERSION:
            raise MageError(f"dataset {ds} was recorded on {env_id}, which needs the retired mujoco-py; the "
                            f"locomotion suite runs {ENVS[key]} (Minari's mujoco datasets) or {m.group(1)}-v4")
        kwargs = dict(spec.get("kwargs") or {})
        want, got = expected_obs_dim(key, kwargs), _dataset_obs_dim(meta)
        if got is not None and got != want:
            raise MageError(f"dataset {ds} has {got}-dim observations, but {env_id} observations have {want} "
                            f"(qpos without x, then qvel)")
        return Task(name=str(ds), env_id=env_id, suite_name=self.name, env_kwargs=kwargs,
                    eval_kwargs=dict(eval_spec.get("kwargs") or {}), dataset_id=str(ds), horizon=HORIZON,
                    eval_steps=EVAL_STEPS, obs_keys=(), data_max_episode_steps=EVAL_STEPS, rtg_mode="dense",
                    params=dict(env=key, diffuser_horizon=HORIZON))

    def builtin_reference_scores(self, task):
        return D4RL_REFERENCE_SCORES[env_key(task)]

    # ---- protocol ------------------------------------------------------------------------------------------------
    def check_obs(self, task, obs_D, expected_dim=None) -> None:
        want = expected_obs_dim(env_key(task), task.env_kwargs)
        n = np.asarray(obs_D).shape[-1]
        if n != want:
            raise MageError(f"observation has {n} dims but {task.env_id} observations have {want}")
        super().check_obs(task, obs_D, expected_dim)

    def reports_success(self, task) -> bool:
        """No goal: an episode ends by a fall (termination) or the time limit, never by success."""
        return False

    def expert_policy(self, task):
        return ActorPolicy(self.actor(task, "expert"))

    def actor(self, task, which: str) -> NumpyActor:
        """The shipped `expert` or `medium` actor of a task (checked when first loaded)."""
        return self._actor_and_info(task, which)[0]

    def _actor_and_info(self, task, which: str) -> tuple[NumpyActor, dict]:
        return self._load(task, which, load_actor)

    def replay(self, task, full: bool = False) -> dict[str, np.ndarray]:
        """The shipped SAC replay log of a task up to its medium snapshot, or (full) up to its expert snapshot: the
        medium part followed by the shipped tail (checked)."""
        head = self._load(task, "medium-replay", load_replay_parts)
        if not full:
            return head
        tail = self._load(task, "replay-tail", load_replay_parts)
        return {k: np.concatenate([head[k], tail[k]]) for k in head}

    def _load(self, task, which: str, loader: Callable):
        """A shipped file of the task read by `loader(path, env, obs_dim, act_dim)` (a replay log: its parts, read by
        load_replay_parts), once per version of the files."""
        key = env_key(task)
        folder = asset_dir(self.assets)
        parts = loader is load_replay_parts
        paths = replay_part_paths(folder, key, which) if parts else [policy_path(folder, key, which)]
        cache_key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else (str(p),) for p in paths)
        if cache_key not in self._files:
            self._files[cache_key] = loader(paths if parts else paths[0], key, OBS_DIM[key], ACT_DIM[key])
        return self._files[cache_key]

    # ---- data ----------------------------------------------------------------------------------------------------
    def variants(self, task) -> tuple:
        """Every variant; `full-replay` only where the replay tail is shipped (an export may leave it out)."""
        if ships_replay_tail(asset_dir(self.assets), env_key(task)):
            return VARIANTS
        return tuple(v for v in VARIANTS if v != "full-replay")

    def default_data_steps(self, task, variant) -> int:
        if variant in ("medium-replay", "full-replay"):
            return len(self.replay(task, full=variant == "full-replay")["rewards"])
        return DEFAULT_STEPS

    def dataset_id(self, task, variant) -> str:
        return f"mage/{task.name}/{variant}-v0"

    def collect_buffers(self, task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """Minari EpisodeBuffers of cfg.variant: `random` (uniform actions), `medium` / `expert` (the shipped actor
        sampling its own Gaussian), `medium-replay` (the shipped replay log split into episodes), `medium-expert`
        (medium episodes for half the steps, expert episodes for the rest), `full-replay` (the whole replay log up to
        the expert snapshot)."""
        variant = cfg.variant or VARIANTS[0]
        if variant not in VARIANTS:
            raise MageError(f"{task.name} has no {variant!r} data; its variants: {', '.join(VARIANTS)}")
        if cfg.steps < 1:
            raise MageError("--steps must be positive")
        tick = Ticker(progress, cfg.steps)
        if variant in ("medium-replay", "full-replay"):
            buffers = D.replay_episodes(self.replay(task, full=variant == "full-replay"), cfg.steps, tick)
            tick.done()
            return buffers
        plan = {"random": [("random", cfg.steps)], "medium": [("medium", cfg.steps)],
                "expert": [("expert", cfg.steps)],
                "medium-expert": [("medium", cfg.steps // 2), ("expert", cfg.steps - cfg.steps // 2)]}[variant]
        actors = {which: self.actor(task, which) for which, _ in plan if which != "random"}  # file errors first
        env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
        buffers: list = []
        try:
            for stream, (which, steps) in enumerate(plan):
                act = (D.uniform_actor(env, [cfg.seed, stream]) if which == "random"
                       else D.sampling_actor(actors[which], [cfg.seed, stream]))
                buffers += D.rollouts(env, act, steps, cfg.seed, len(buffers), tick)
        finally:
            env.close()
        tick.done()
        return buffers

    def data_description(self, task, cfg) -> tuple[str, str]:
        variant = cfg.variant or VARIANTS[0]
        folder = asset_dir(self.assets)
        key = env_key(task)

        def actor_note(which: str) -> str:
            info = self._actor_and_info(task, which)[1]
            path = policy_path(folder, key, which)
            rets = info.get("eval_returns")
            return (f"{which} actor {path.name} (sha256 {sha256(path)[:16]}, SAC after {info.get('steps', '?')} "
                    f"steps" + (f", deterministic return {np.mean(rets):.0f}" if rets else "") + ")")

        refs = (f"ref_min_score: uniform random actions, ref_max_score: the expert actor's deterministic action "
                f"tanh(mean), {cfg.ref_episodes} episodes of {task.eval_steps} steps each on {task.env_id}.")
        episodes = (f"episodes of up to {task.data_max_episode_steps} steps from seeded resets, each cut at its "
                    f"termination (a fall), seed {cfg.seed}, {cfg.steps} steps (D4RL's sets: 1M)")
        if variant == "random":
            what = f"uniform random actions, {episodes}"
        elif variant in ("medium", "expert"):
            what = f"rollouts of the {actor_note(variant)} sampling its own Gaussian, {episodes}"
        elif variant == "medium-expert":
            what = (f"medium and expert episodes half and half: rollouts of the {actor_note('medium')} and of the "
                    f"{actor_note('expert')}, each sampling its own Gaussian, {episodes}")
        else:
            parts = ("medium-replay", "replay-tail") if variant == "full-replay" else ("medium-replay",)
            files = " + ".join(f"{p.name} (sha256 {sha256(p)[:16]})"
                               for w in parts for p in replay_part_paths(folder, key, w))
            upto = "expert" if variant == "full-replay" else "medium"
            what = (f"the SAC replay log up to the {upto} snapshot ({files}), split into episodes at terminations and "
                    f"time limits, the last one truncated, up to {cfg.steps} steps")
        return f"sac-{variant} (D4RL locomotion {variant} recipe)", f"{task.name}: {what}. {refs}"

    # ---- initial state -------------------------------------------------------------------------------------------
    def reset_env_to_obs(self, task, env, obs_D):
        """Move an (already reset) env to the state an observation describes (its x stays where it is)."""
        u = env.unwrapped
        obs_D = np.asarray(obs_D, np.float64)
        if not self.can_pose(task, u.model, len(obs_D)):
            return None
        nq = int(u.model.nq)
        skip = nq + int(u.model.nv) - len(obs_D)
        qpos = u.data.qpos.copy()
        qpos[skip:] = obs_D[: nq - skip]
        u.set_state(qpos, obs_D[nq - skip:])
        return task.flatten_obs(u._get_obs())

    # ---- scene ---------------------------------------------------------------------------------------------------
    def camera(self, task, model, aspect: float, data=None):
        """A side view (the robot's plane) that follows the torso: centred a little ahead of it, where the plan's
        ghosts go; at the rest pose when no scene state is given."""
        from mage_core.render import CameraPose

        dist, elev, height, ahead = CAMERAS[env_key(task)]
        x, y = (float(data.xpos[ROOT_BODY][0]), float(data.xpos[ROOT_BODY][1])) if data is not None else (0.0, 0.0)
        dist *= max(1.0, (4 / 3) / max(aspect, 1e-3))  # a narrow image needs the camera further back
        return CameraPose((x + ahead, y, height), float(dist), SIDE_AZIMUTH, elev)

    def orbit_camera(self, task, model=None):
        return self.camera(task, model, 4 / 3)

    def summary(self, task) -> str:
        return (f"{task.env_id}: robot posed from its observation (qpos without x, qvel), x integrated from the "
                f"planned velocity; key point torso; no goal, so no success rate (a termination is a fall)")
