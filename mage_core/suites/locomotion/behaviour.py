"""Behaviour policies for the locomotion suite: SAC training (resumable), actor snapshots exported to numpy, replay log."""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mage_core.suites.locomotion.actor import ENVS, NumpyActor


@dataclass
class BehaviourTrainConfig:
    """SAC training of one env's behaviour policy (D4RL's recipe: SAC, snapshots along the way, the replay kept)."""

    env: str = "hopper"  # key of ENVS
    steps: int = 1_000_000  # total environment steps (D4RL trained its SAC behaviour agents for 1M steps)
    out_dir: str = ""  # resumable state (SB3 model, replay log, snapshots); default runs/behaviour/<env>
    checkpoint_every: int = 20_000  # steps between checkpoints and actor snapshots (atomic writes)
    learning_starts: int = 10_000  # uniform-random-action steps before learning (they open the replay log too)
    batch_size: int = 256  # SAC minibatch
    net: tuple = (256, 256)  # hidden sizes of actor and critics (D4RL's SAC used 256 x 256)
    lr: float = 3e-4  # Adam learning rate
    gamma: float = 0.99  # discount
    seed: int = 0  # env and SB3 seed
    eval_episodes: int = 3  # deterministic 1000-step episodes per snapshot to measure its return
    threads: int = 1  # torch CPU threads
    extra: dict = field(default_factory=dict)  # free-form notes recorded with every snapshot


def actor_arrays(model) -> dict[str, np.ndarray]:
    """The SB3 SAC actor's MLP and mean head as float32 arrays (w0, b0, ..., w_mu, b_mu, w_logstd, b_logstd)."""
    actor = model.policy.actor
    out: dict[str, np.ndarray] = {}
    lin = [m for m in actor.latent_pi if hasattr(m, "weight")]
    for i, m in enumerate(lin):
        out[f"w{i}"] = m.weight.detach().cpu().numpy().astype(np.float32)
        out[f"b{i}"] = m.bias.detach().cpu().numpy().astype(np.float32)
    out["w_mu"] = actor.mu.weight.detach().cpu().numpy().astype(np.float32)
    out["b_mu"] = actor.mu.bias.detach().cpu().numpy().astype(np.float32)
    out["w_logstd"] = actor.log_std.weight.detach().cpu().numpy().astype(np.float32)
    out["b_logstd"] = actor.log_std.bias.detach().cpu().numpy().astype(np.float32)
    out["n_layers"] = np.array(len(lin))
    return out


def evaluate_actor(act_fn, env_id: str, episodes: int, seed: int) -> list[float]:
    """Undiscounted returns of `act_fn` over full episodes of `env_id` (its own 1000-step limit)."""
    import gymnasium as gym

    env = gym.make(env_id)
    rets = []
    for ep in range(episodes):
        obs, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            obs, r, term, trunc, _ = env.step(act_fn(obs))
            total += float(r)
            done = term or trunc
        rets.append(total)
    env.close()
    return rets


def _atomic_npz(path: Path, **arrays) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def train(cfg: BehaviourTrainConfig) -> None:
    """Train or resume SAC on cfg.env; every cfg.checkpoint_every steps save the model, the replay log and a snapshot."""
    import gymnasium as gym
    import torch
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback

    torch.set_num_threads(cfg.threads)
    env_id = ENVS[cfg.env]
    out = Path(cfg.out_dir or f"runs/behaviour/{cfg.env}")
    (out / "snapshots").mkdir(parents=True, exist_ok=True)
    model_path, log_path, replay_path = out / "sac.zip", out / "progress.jsonl", out / "replay.npz"
    env = gym.make(env_id)
    state = {"wall_s": 0.0}
    if model_path.is_file():
        model = SAC.load(model_path, env=env, device="cpu")
        model.replay_buffer = model.replay_buffer_class(cfg.steps + 1, env.observation_space, env.action_space,
                                                        device="cpu", handle_timeout_termination=True)
        if replay_path.is_file():  # restore the replay buffer (and the ordered log) saved at the last checkpoint
            with np.load(replay_path) as z:
                n = len(z["rewards"])
                rb = model.replay_buffer
                rb.observations[:n, 0] = z["observations"]
                rb.next_observations[:n, 0] = z["next_observations"]
                rb.actions[:n, 0] = z["actions"]
                rb.rewards[:n, 0] = z["rewards"]
                rb.dones[:n, 0] = z["terminals"]
                rb.timeouts[:n, 0] = z["timeouts"]
                if n:  # the env restarts from a reset: the episode the save cut ends there, truncated
                    rb.dones[n - 1, 0] = rb.timeouts[n - 1, 0] = 1
                rb.pos = n
        else:  # a committed state travels without its replay log: refill the buffer before learning again
            model.learning_starts = model.num_timesteps + cfg.learning_starts
        state = json.loads((out / "state.json").read_text()) if (out / "state.json").is_file() else state
        print(f"resumed {cfg.env} at {model.num_timesteps} steps", flush=True)
    else:
        model = SAC("MlpPolicy", env, learning_rate=cfg.lr, buffer_size=cfg.steps + 1,
                    learning_starts=cfg.learning_starts, batch_size=cfg.batch_size, gamma=cfg.gamma, train_freq=1,
                    gradient_steps=1, policy_kwargs=dict(net_arch=list(cfg.net)), seed=cfg.seed, device="cpu",
                    verbose=0)
    import gymnasium
    import mujoco
    import stable_baselines3

    versions = {"stable_baselines3": stable_baselines3.__version__, "torch": torch.__version__,
                "gymnasium": gymnasium.__version__, "mujoco": mujoco.__version__, "numpy": np.__version__}
    t_start, wall0 = time.time(), float(state.get("wall_s", 0.0))

    class Checkpoint(BaseCallback):
        def __init__(self):
            super().__init__()
            self.last = self.n_last = model.num_timesteps
            self.t_last = time.time()

        def _on_step(self) -> bool:
            return True

        def _on_rollout_end(self) -> None:
            # after the step's transition is stored (on_step comes before it): the saved log holds every step
            if self.num_timesteps - self.last >= cfg.checkpoint_every:
                self.last = self.num_timesteps
                self.save()

        def save(self):
            steps = int(self.model.num_timesteps)
            wall = wall0 + time.time() - t_start
            sps = (steps - self.n_last) / max(time.time() - self.t_last, 1e-6)
            arrays = actor_arrays(self.model)
            actor = NumpyActor(arrays)
            rets = evaluate_actor(actor.act, env_id, cfg.eval_episodes, seed=100_000)
            snap = out / "snapshots" / f"{cfg.env}-{steps:07d}.npz"
            info = {"env_id": env_id, "steps": steps, "eval_returns": rets, "config": asdict(cfg),
                    "versions": versions, "wall_s": round(wall, 1)}
            _atomic_npz(snap, info=np.array(json.dumps(info)), **arrays)
            rb, n = self.model.replay_buffer, self.model.replay_buffer.pos
            f32 = np.float32  # the log in float32 (SB3 keeps the env's float64 observations): half the size
            _atomic_npz(replay_path, observations=rb.observations[:n, 0].astype(f32),
                        next_observations=rb.next_observations[:n, 0].astype(f32), actions=rb.actions[:n, 0],
                        rewards=rb.rewards[:n, 0], terminals=rb.dones[:n, 0], timeouts=rb.timeouts[:n, 0])
            tmp = model_path.with_name("sac.tmp.zip")
            self.model.save(tmp)
            os.replace(tmp, model_path)
            (out / "state.json").write_text(json.dumps({"wall_s": wall, "steps": steps}))
            ep = [e["r"] for e in list(self.model.ep_info_buffer)[-20:]]
            rec = {"steps": steps, "wall_s": round(wall, 1), "steps_per_s": round(sps, 1),
                   "eval_return": float(np.mean(rets)), "train_return_mean20": float(np.mean(ep)) if ep else None}
            with open(log_path, "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(json.dumps(rec), flush=True)
            self.t_last, self.n_last = time.time(), steps

    cb = Checkpoint()
    remaining = cfg.steps - model.num_timesteps
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=cb, reset_num_timesteps=False, log_interval=None)
    if cb.last != model.num_timesteps:  # a run that ended on a checkpoint step is saved already
        cb.save()


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m mage_core.suites.locomotion.behaviour",
                                description="Train (or resume) a locomotion behaviour policy with SAC "
                                            "(needs the optional extra: pip install -e '.[controller]').")
    p.add_argument("env", choices=sorted(ENVS))
    p.add_argument("--steps", type=int, default=BehaviourTrainConfig.steps)
    p.add_argument("--out-dir", default="", help="resumable state (default runs/behaviour/ENV)")
    p.add_argument("--checkpoint-every", type=int, default=BehaviourTrainConfig.checkpoint_every)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    a = p.parse_args(argv)
    train(BehaviourTrainConfig(env=a.env, steps=a.steps, out_dir=a.out_dir, checkpoint_every=a.checkpoint_every,
                               seed=a.seed, threads=a.threads))


if __name__ == "__main__":
    main()
