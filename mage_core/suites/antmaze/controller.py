"""The goal-reaching ant controller: its yaw-invariant observation, a numpy-only runtime policy, and its SB3 SAC trainer."""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mage_core.errors import MageError

CONTROLLER_OBS_DIM = 29  # z, heading-free quat (4), joint qpos (8), heading-frame lin vel (3), ang vel (3), joint qvel (8), target (2)
TARGET_CLIP = 5.0  # metres: the relative target fed to the controller is clipped to this length
DEFAULT_FILE = Path(__file__).resolve().parents[3] / "assets" / "antmaze" / "ant_controller.npz"


# ---- observation -------------------------------------------------------------------------------------------------
def _yaw(quat_4: np.ndarray) -> float:
    """Heading (rotation about world z) of a MuJoCo (w, x, y, z) quaternion."""
    w, x, y, z = quat_4
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _quat_mul(a_4: np.ndarray, b_4: np.ndarray) -> np.ndarray:
    w1, x1, y1, z1 = a_4
    w2, x2, y2, z2 = b_4
    return np.array([w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2, w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
                     w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2, w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2])


def controller_obs(qpos_15: np.ndarray, qvel_14: np.ndarray, target_xy: np.ndarray) -> np.ndarray:
    """The controller's input: ant proprioception without xy or heading, plus the target in the torso's heading frame."""
    qpos_15 = np.asarray(qpos_15, dtype=np.float64)
    qvel_14 = np.asarray(qvel_14, dtype=np.float64)
    yaw = _yaw(qpos_15[3:7])
    c, s = math.cos(yaw), math.sin(yaw)
    half = np.array([math.cos(-yaw / 2), 0.0, 0.0, math.sin(-yaw / 2)])
    quat_local_4 = _quat_mul(half, qpos_15[3:7])  # the torso's tilt with its heading removed
    if quat_local_4[0] < 0:
        quat_local_4 = -quat_local_4
    rot = lambda v: np.array([c * v[0] + s * v[1], -s * v[0] + c * v[1]])  # world -> heading frame
    vel_3 = np.concatenate([rot(qvel_14[:2]), qvel_14[2:3]])
    rel_2 = rot(np.asarray(target_xy, dtype=np.float64) - qpos_15[:2])
    n = float(np.linalg.norm(rel_2))
    if n > TARGET_CLIP:
        rel_2 = rel_2 * (TARGET_CLIP / n)
    return np.concatenate([qpos_15[2:3], quat_local_4, qpos_15[7:15], vel_3, qvel_14[3:6], qvel_14[6:14],
                           rel_2]).astype(np.float32)


# ---- runtime policy (numpy only) ---------------------------------------------------------------------------------
class AntController:
    """The shipped controller: an MLP actor exported from SB3 SAC, evaluated deterministically (tanh of the mean)."""

    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else DEFAULT_FILE
        if not self.path.is_file():
            raise MageError(f"ant controller file {self.path} is missing (train it with "
                            f"`python -m mage_core.suites.antmaze.controller train`)")
        try:
            with np.load(self.path, allow_pickle=False) as z:
                n = int(z["n_layers"])
                self.weights = [(z[f"w{i}"].astype(np.float32), z[f"b{i}"].astype(np.float32)) for i in range(n)]
                self.info = json.loads(str(z["info"])) if "info" in z else {}
        except Exception as exc:  # truncated file, not an npz, keys missing
            raise MageError(f"ant controller file {self.path} is damaged or not a controller export: {exc}") from exc
        if self.weights[0][0].shape[1] != CONTROLLER_OBS_DIM or self.weights[-1][0].shape[0] != 8:
            raise MageError(f"ant controller file {self.path} has the wrong shape "
                            f"({self.weights[0][0].shape[1]} inputs, {self.weights[-1][0].shape[0]} outputs; "
                            f"expected {CONTROLLER_OBS_DIM} and 8)")

    def act_obs(self, cobs_D: np.ndarray) -> np.ndarray:
        """Action (8,) in [-1, 1] for one controller observation (29,)."""
        h = np.asarray(cobs_D, dtype=np.float32)
        for i, (w, b) in enumerate(self.weights):
            h = w @ h + b
            if i < len(self.weights) - 1:
                h = np.maximum(h, 0.0)
        return np.tanh(h)

    def act(self, qpos_15: np.ndarray, qvel_14: np.ndarray, target_xy: np.ndarray) -> np.ndarray:
        """Action (8,) that walks the ant at (qpos, qvel) towards the world point target_xy."""
        return self.act_obs(controller_obs(qpos_15, qvel_14, target_xy))


def export_actor(model, path: str | os.PathLike, info: dict) -> None:
    """Write an SB3 SAC model's actor MLP (latent_pi linears + mu) as a small npz, atomically."""
    import torch

    linears = [m for m in model.actor.latent_pi if isinstance(m, torch.nn.Linear)] + [model.actor.mu]
    arrays = {}
    for i, lin in enumerate(linears):
        arrays[f"w{i}"] = lin.weight.detach().cpu().numpy().astype(np.float32)
        arrays[f"b{i}"] = lin.bias.detach().cpu().numpy().astype(np.float32)
    arrays["n_layers"] = np.array(len(linears))
    arrays["info"] = np.array(json.dumps(info))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


# ---- training env ------------------------------------------------------------------------------------------------
@dataclass
class GoalReachConfig:
    """The goal-reaching task the controller is trained on (plain Ant physics, no walls)."""

    episode_steps: int = 300  # steps before truncation
    target_min: float = 1.0  # metres: nearest a new target is placed from the torso
    target_max: float = 5.0  # metres: farthest a new target is placed from the torso
    reach_radius: float = 0.5  # metres: a target this close counts as reached and a new one is drawn
    reach_bonus: float = 1.0  # reward for reaching a target
    alive_bonus: float = 0.1  # reward per step while upright
    ctrl_cost: float = 0.05  # cost per unit squared action
    min_z: float = 0.26  # torso height below which the ant has fallen (episode ends)
    max_z: float = 1.0  # torso height above which the ant has jumped/flipped (episode ends)


def make_goal_env(cfg: GoalReachConfig | None = None, seed: int = 0):
    """A gymnasium env: Ant-v5 physics (the same ant.xml AntMaze loads), random targets a few metres away."""
    import gymnasium as gym
    from gymnasium import spaces
    from gymnasium.envs.mujoco.ant_v5 import AntEnv

    cfg = cfg or GoalReachConfig()

    class GoalReachAnt(gym.Env):
        metadata = {"render_modes": []}

        def __init__(self):
            self.ant = AntEnv(exclude_current_positions_from_observation=False, include_cfrc_ext_in_observation=False,
                              reset_noise_scale=0.1)
            self.dt = self.ant.dt
            self.observation_space = spaces.Box(-np.inf, np.inf, (CONTROLLER_OBS_DIM,), np.float32)
            self.action_space = self.ant.action_space
            self.rng = np.random.default_rng(seed)
            self.reached = 0
            self.issued = 0

        def _new_target(self, xy):
            r = self.rng.uniform(cfg.target_min, cfg.target_max)
            a = self.rng.uniform(-math.pi, math.pi)
            self.target = xy + r * np.array([math.cos(a), math.sin(a)])
            self.issued += 1

        def _obs(self):
            d = self.ant.data
            return controller_obs(d.qpos, d.qvel, self.target)

        def reset(self, *, seed=None, options=None):
            if seed is not None:
                self.rng = np.random.default_rng(seed)
            self.ant.reset(seed=int(self.rng.integers(2**31)))
            d = self.ant.data
            yaw = self.rng.uniform(-math.pi, math.pi)  # random heading: the observation is heading-free anyway
            d.qpos[3:7] = [math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)]
            import mujoco

            mujoco.mj_forward(self.ant.model, d)
            self.t = 0
            self._new_target(d.qpos[:2].copy())
            self.dist = float(np.linalg.norm(self.target - d.qpos[:2]))
            return self._obs(), {}

        def step(self, action):
            action = np.clip(action, -1, 1)
            self.ant.do_simulation(action, self.ant.frame_skip)
            d = self.ant.data
            self.t += 1
            dist = float(np.linalg.norm(self.target - d.qpos[:2]))
            reward = (min(self.dist, TARGET_CLIP) - min(dist, TARGET_CLIP)) / self.dt
            reward += cfg.alive_bonus - cfg.ctrl_cost * float(np.sum(action ** 2))
            self.dist = dist
            if dist < cfg.reach_radius:
                reward += cfg.reach_bonus
                self.reached += 1
                self._new_target(d.qpos[:2].copy())
                self.dist = float(np.linalg.norm(self.target - d.qpos[:2]))
            z = float(d.qpos[2])
            up_z = 1.0 - 2.0 * (d.qpos[4] ** 2 + d.qpos[5] ** 2)  # torso z axis . world z
            fallen = not (cfg.min_z <= z <= cfg.max_z) or up_z < 0.0
            if not np.isfinite(d.qpos).all():
                fallen = True
            truncated = self.t >= cfg.episode_steps
            return self._obs(), float(reward), bool(fallen), bool(truncated), {"reached": self.reached}

    return GoalReachAnt()


def waypoint_success(policy_fn, episodes: int = 5, seed: int = 12345, cfg: GoalReachConfig | None = None,
                     timeout: int = 150) -> dict:
    """Deterministic episodes on the training task: a target counts as reached if the torso gets within the reach
    radius in `timeout` steps; one not reached in time, or open when the ant falls, counts as failed."""
    env = make_goal_env(cfg, seed)
    reached = failed = falls = 0
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        env.reached, since, done = 0, 0, False
        while not done:
            before = env.reached
            obs, r, term, trunc, _ = env.step(policy_fn(obs))
            since = 0 if env.reached > before else since + 1
            if since > timeout:
                failed += 1
                since = 0
                env._new_target(env.ant.data.qpos[:2].copy())
                env.dist = float(np.linalg.norm(env.target - env.ant.data.qpos[:2]))
                obs = env._obs()
            done = term or trunc
        falls += int(term)
        failed += int(term)
        reached += env.reached
    return {"reached": reached, "failed": failed, "rate": reached / max(reached + failed, 1), "falls": falls,
            "episodes": episodes}


# ---- training ----------------------------------------------------------------------------------------------------
@dataclass
class TrainControllerConfig:
    """SB3 SAC training of the goal-reacher (one process, one thread: sized for a shared 2-core CPU)."""

    steps: int = 400_000  # total environment steps (OGBench's ant expert: SAC, 400k)
    out_dir: str = "runs/ant_controller"  # where resumable checkpoints (model + replay buffer) are written
    export: str = str(DEFAULT_FILE)  # where the actor-only npz is written at every checkpoint
    checkpoint_every: int = 20_000  # steps between checkpoints (atomic replace)
    learning_starts: int = 5_000  # random-action steps before learning
    buffer_size: int = 300_000  # replay buffer capacity
    batch_size: int = 256  # SAC minibatch
    net: tuple = (128, 128)  # hidden sizes of actor and critics (small: updates dominate the cost on a shared CPU)
    lr: float = 3e-4  # Adam learning rate
    gamma: float = 0.99  # discount
    seed: int = 0  # env and SB3 seed
    eval_episodes: int = 5  # deterministic episodes per checkpoint for the waypoint success rate
    resume_from: str = ""  # an SB3 model zip to start from when out_dir holds none (its replay buffer is refilled)


def _atomic_save_model(model, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp.zip")
    model.save(tmp)
    os.replace(tmp, path)


def train(cfg: TrainControllerConfig) -> None:
    """Train (or resume) the controller; checkpoint and export the actor every cfg.checkpoint_every steps."""
    import pickle

    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.monitor import Monitor

    torch.set_num_threads(1)
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path, buf_path, log_path = out / "sac.zip", out / "replay.pkl", out / "progress.jsonl"
    env = Monitor(make_goal_env(GoalReachConfig(), cfg.seed))
    state = {"wall_s": 0.0}
    if not model_path.is_file() and cfg.resume_from:
        import shutil

        shutil.copyfile(cfg.resume_from, model_path)  # e.g. the committed assets/antmaze/ant_controller_sac.zip
    if model_path.is_file():
        model = SAC.load(model_path, env=env, device="cpu")
        if buf_path.is_file():
            with open(buf_path, "rb") as f:
                model.replay_buffer = pickle.load(f)
        else:  # a committed checkpoint travels without its replay buffer: refill it before learning again
            model.learning_starts = model.num_timesteps + cfg.learning_starts
        if (out / "state.json").is_file():
            state = json.loads((out / "state.json").read_text())
        print(f"resumed at {model.num_timesteps} steps", flush=True)
    else:
        model = SAC("MlpPolicy", env, learning_rate=cfg.lr, buffer_size=cfg.buffer_size,
                    learning_starts=cfg.learning_starts, batch_size=cfg.batch_size, gamma=cfg.gamma, train_freq=1,
                    gradient_steps=1, policy_kwargs=dict(net_arch=list(cfg.net)), seed=cfg.seed, device="cpu",
                    verbose=0)
    import gymnasium
    import mujoco
    import stable_baselines3

    versions = {"stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
                "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__, "numpy": np.__version__}
    t_start = time.time()
    wall0 = float(state.get("wall_s", 0.0))

    class Checkpoint(BaseCallback):
        def __init__(self):
            super().__init__()
            self.last = model.num_timesteps
            self.t_last = time.time()
            self.n_last = model.num_timesteps

        def _on_step(self) -> bool:
            if self.num_timesteps - self.last >= cfg.checkpoint_every:
                self.last = self.num_timesteps
                self.save()
            return True

        def save(self):
            wall = wall0 + time.time() - t_start
            rets = [ep["r"] for ep in list(self.model.ep_info_buffer)[-20:]]
            pol = lambda o: self.model.predict(o, deterministic=True)[0]
            ev = waypoint_success(pol, cfg.eval_episodes)
            sps = (self.num_timesteps - self.n_last) / max(time.time() - self.t_last, 1e-6)
            self.t_last, self.n_last = time.time(), self.num_timesteps
            _atomic_save_model(self.model, model_path)
            tmp = buf_path.with_name(buf_path.name + ".tmp")
            with open(tmp, "wb") as f:
                pickle.dump(self.model.replay_buffer, f, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(tmp, buf_path)
            rec = {"steps": int(self.num_timesteps), "wall_s": round(wall, 1), "steps_per_s": round(sps, 1),
                   "train_return_mean20": float(np.mean(rets)) if rets else None, "eval": ev}
            info = {"trainer": "stable-baselines3 SAC", "config": asdict(cfg), "steps": int(self.num_timesteps),
                    "wall_s": round(wall, 1), "waypoint_eval": ev, "versions": versions,
                    "task": asdict(GoalReachConfig())}
            export_actor(self.model, cfg.export, info)
            (out / "state.json").write_text(json.dumps({"wall_s": wall, "steps": int(self.num_timesteps)}))
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)

    cb = Checkpoint()
    remaining = cfg.steps - model.num_timesteps
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=cb, reset_num_timesteps=False, log_interval=None)
    cb.save()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m mage_core.suites.antmaze.controller",
                                description="Train (or resume) the goal-reaching ant controller, or score one.")
    sub = p.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train or resume from OUT_DIR/sac.zip")
    t.add_argument("--steps", type=int, default=TrainControllerConfig.steps)
    t.add_argument("--out-dir", default=TrainControllerConfig.out_dir)
    t.add_argument("--export", default=TrainControllerConfig.export)
    t.add_argument("--checkpoint-every", type=int, default=TrainControllerConfig.checkpoint_every)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume-from", default="", help="SB3 zip to continue (e.g. assets/antmaze/ant_controller_sac.zip)")
    s = sub.add_parser("score", help="waypoint success of an exported controller on the training task")
    s.add_argument("--file", default=str(DEFAULT_FILE))
    s.add_argument("--episodes", type=int, default=10)
    a = p.parse_args(argv)
    if a.cmd == "train":
        train(TrainControllerConfig(steps=a.steps, out_dir=a.out_dir, export=a.export,
                                    checkpoint_every=a.checkpoint_every, seed=a.seed,
                                    resume_from=a.resume_from))
    else:
        ctl = AntController(a.file)
        print(json.dumps(waypoint_success(ctl.act_obs, a.episodes)))


if __name__ == "__main__":
    main()
