"""IQL (implicit Q-learning, Kostrikov et al. 2022) through d3rlpy, the optional `iql` extra: our episodes as a d3rlpy
MDPDataset in memory, d3rlpy's IQL trained by our loop (events, atomic weights-only checkpoints, exact resume), its
deterministic policy behind our Policy interface.

d3rlpy is imported lazily (import_d3rlpy): without the extra every other command works and IQL says how to install it.
Why our loop and not d3rlpy's fit(): fit() writes its own log folders and progress bar, samples with numpy's global
RNG (not resumable, not seedable per run) and picks transitions one by one in Python (~15 ms of a ~60 ms step on this
CPU). We call the same public IQL.update(batch) fit() calls, on batches drawn from the MDPDataset's transitions
(flat_transitions, checked against d3rlpy's own transition picker in the tests) by a seeded numpy Generator.

Transitions (mdp_arrays): the last step of an episode is a d3rlpy terminal (no bootstrap) only where the episode ended
by a true termination the evaluation protocol also has, else a timeout (bootstrapped from the final observation):
- dense-reward tasks (the suite's sparse_goal_reward is False): Episode.success is the dataset's recorded
  `terminations[-1]` (a walker that fell; store._read_episodes), so it is the terminal flag;
- sparse goal-reaching tasks (sparse_goal_reward True: the mazes): every end is a timeout. The scored protocol pays a reward for every
  step the agent holds the goal (docs/ARCHITECTURE.md, "Return-to-go for sparse goal reaching"); the data's cut after
  the 40-step dwell is where recording stopped, not where reward stops, so a terminal there would tell IQL that
  staying at the goal is worth nothing after it.
"""
from __future__ import annotations

import contextlib
import io
import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mage_core.baselines import common
from mage_core.data.segments import Normaliser
from mage_core.checkpoint import save_checkpoint
from mage_core.device import configure_cpu_threads, resolve_device
from mage_core.errors import MageError
from mage_core.progress import ProgressBar, as_event_writer
from mage_core.task_spec import task_to_dict
from mage_core.tasks import Task

ALGO = "iql"
INSTALL_HINT = 'pip install -e ".[iql]"'  # the extra pins d3rlpy==2.7.0 (2.8.x pins gymnasium==1.0.0)
MODULE_NAMES = ("policy", "q_funcs", "targ_q_funcs", "value_func")  # d3rlpy IQLModules networks kept in state_dict
OPTIM_NAMES = ("actor_optim", "critic_optim")  # d3rlpy IQLModules optimisers kept in train_state
DENSE_RETURN_SCALE = 1000.0  # IQL paper, locomotion: rewards * 1000 / (max - min episode return)


@dataclass
class IQLConfig:
    """IQL knobs (defaults: the IQL paper's locomotion settings; d3rlpy's IQLConfig gets them at build time)."""

    steps: int = 10_000  # gradient steps (each updates V, both Q's and the actor once)
    batch_size: int = 256  # transitions per step
    num_threads: int = 0  # torch CPU threads (0 = all cores but one; `mage train --threads N`)
    hidden: tuple = (256, 256)  # hidden widths of the actor, each Q and V (the paper's 2 x 256, i.e. 3 linear layers)
    actor_lr: float = 3e-4  # Adam learning rate of the actor
    critic_lr: float = 3e-4  # Adam learning rate of the Q functions and V
    actor_cosine: bool = True  # cosine decay of the actor's learning rate to 0 over `steps` (IQL paper)
    discount: float = 0.99  # gamma
    tau: float = 0.005  # Polyak rate of the target Q networks
    n_critics: int = 2  # twin Q; the target is their minimum
    expectile: float = 0.7  # V's expectile of Q (paper: 0.7 locomotion, 0.9 AntMaze)
    temperature: float = 3.0  # advantage inverse temperature beta of the actor's weights (paper: 3 locomotion, 10 AntMaze)
    max_weight: float = 100.0  # clip of exp(beta * advantage)
    reward_scale: float = 0.0  # reward multiplier; 0 = paper: dense tasks DENSE_RETURN_SCALE / return range, sparse 1
    log_every: int = 100  # steps between "step" events
    ckpt_every: int = 2000  # steps between periodic checkpoints (0 = only the final one)


PRESETS: dict[str, IQLConfig] = {
    "tiny": IQLConfig(steps=300, batch_size=64, hidden=(64, 64), log_every=20, ckpt_every=0),
    # small: 10k steps x 256 = 2.6M transitions (~2.6 passes over the 1M-step maze data). One step (V, twin Q, actor)
    # took 53 ms on one core of the shared 2-core box at load ~4.5 (~9 min for 10k) and ~140 ms at load 6-7 (24 min,
    # docs/BENCHMARKS.md); the paper's 1M steps would take 15-40 h here
    "small": IQLConfig(steps=10_000, log_every=100, ckpt_every=2000),
    "paper": IQLConfig(steps=1_000_000, log_every=1000, ckpt_every=50_000),
}


def preset(name: str, steps: int | None = None) -> IQLConfig:
    if name not in PRESETS:
        raise MageError(f"unknown iql preset {name!r}; choose one of {', '.join(PRESETS)}")
    cfg = PRESETS[name]
    return replace(cfg, steps=steps) if steps else replace(cfg)


# ---------------------------------------------------------------------------------------------------------------
# d3rlpy, lazily
# ---------------------------------------------------------------------------------------------------------------
def import_d3rlpy():
    """The d3rlpy module, quietly (its `import gym` prints a notice on stderr; its structlog info lines go to stdout,
    which `--events -` keeps for JSON: they are sent to stderr, warnings and up only). MageError when not installed."""
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            import d3rlpy
    except ImportError as exc:
        raise MageError(f"IQL needs the optional d3rlpy package, which is not installed ({exc.name or exc}); "
                        f'install it with: {INSTALL_HINT}') from None
    import logging
    import sys

    import structlog

    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr),
                        wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    return d3rlpy


def check_available() -> None:
    """MageError with the install hint when d3rlpy is missing (train_baseline calls it before loading any data)."""
    import_d3rlpy()


# ---------------------------------------------------------------------------------------------------------------
# episodes -> MDP arrays (pure numpy) -> d3rlpy MDPDataset -> flat transitions
# ---------------------------------------------------------------------------------------------------------------
def terminal_flags(episodes: list, task: Task) -> np.ndarray:
    """(E,) bool: whether each episode's last step is a true termination (module docstring)."""
    if task.suite.sparse_goal_reward(task):
        return np.zeros(len(episodes), dtype=bool)
    return np.array([bool(ep.success) for ep in episodes])


def reward_scale(episodes: list, task: Task, cfg: IQLConfig) -> float:
    """The reward multiplier: cfg.reward_scale, or (0) the IQL paper's choice for the task's reward kind."""
    if cfg.reward_scale > 0:
        return float(cfg.reward_scale)
    if task.suite.sparse_goal_reward(task):
        return 1.0
    returns_E = np.array([float(ep.rewards_T.sum()) for ep in episodes])
    span = float(returns_E.max() - returns_E.min())
    return DENSE_RETURN_SCALE / span if span > 1e-6 else 1.0


def mdp_arrays(episodes: list, terminated_E: np.ndarray, obs_fn=None) -> dict:
    """Episodes as D4RL-style flat arrays for d3rlpy.dataset.MDPDataset.

    A timed-out episode of T steps gives T + 1 rows: its T + 1 observations, its actions and rewards plus a stub row
    (zero action and reward) for the final observation, timeouts = 1 on that row; d3rlpy makes T transitions of it,
    the last one bootstrapped from the final observation. A terminated episode gives T rows (the final observation
    is never bootstrapped from) with terminals = 1 on the last. obs_fn maps (T, D) observations (normalisation).
    Returns observations_ND, actions_NA, rewards_N, terminals_N, timeouts_N (float32).
    """
    if len(episodes) != len(terminated_E):
        raise MageError("internal error: one terminal flag per episode is needed")
    obs, acts, rews, terms, touts = [], [], [], [], []
    for ep, term in zip(episodes, terminated_E):
        T = ep.length
        o_TD = ep.obs_TD if obs_fn is None else obs_fn(ep.obs_TD)
        n = T if term else T + 1
        obs.append(o_TD[:n])
        a_NA = ep.actions_TA if term else np.concatenate([ep.actions_TA, np.zeros_like(ep.actions_TA[:1])])
        acts.append(a_NA)
        rews.append(ep.rewards_T if term else np.concatenate([ep.rewards_T, np.zeros(1, np.float32)]))
        end = np.zeros(n, np.float32)
        end[-1] = 1.0
        terms.append(end if term else np.zeros(n, np.float32))
        touts.append(np.zeros(n, np.float32) if term else end)
    cat = lambda xs: np.concatenate(xs).astype(np.float32)  # noqa: E731
    return dict(observations_ND=cat(obs), actions_NA=cat(acts), rewards_N=cat(rews), terminals_N=cat(terms),
                timeouts_N=cat(touts))


def make_mdp_dataset(arrays: dict):
    """The d3rlpy MDPDataset (continuous actions) of mdp_arrays' output."""
    d3rlpy = import_d3rlpy()
    return d3rlpy.dataset.MDPDataset(arrays["observations_ND"], arrays["actions_NA"], arrays["rewards_N"],
                                     arrays["terminals_N"], timeouts=arrays["timeouts_N"],
                                     action_space=d3rlpy.ActionSpace.CONTINUOUS,
                                     action_size=arrays["actions_NA"].shape[1])


def flat_transitions(mdp_dataset) -> dict:
    """Every transition of a d3rlpy dataset as arrays, with d3rlpy's BasicTransitionPicker semantics (a terminal's
    next observation and next action are zeros): obs_ND, act_NA, rew_N1, next_obs_ND, next_act_NA, term_N1."""
    obs, act, rew, nxt, nact, term = [], [], [], [], [], []
    for ep in mdp_dataset.episodes:
        n = ep.transition_count
        o = np.asarray(ep.observations, np.float32)
        a = np.asarray(ep.actions, np.float32)
        obs.append(o[:n]), act.append(a[:n]), rew.append(np.asarray(ep.rewards, np.float32)[:n].reshape(n, 1))
        t = np.zeros((n, 1), np.float32)
        if ep.terminated:
            t[-1] = 1.0
            nxt.append(np.concatenate([o[1:n], np.zeros_like(o[:1])]))
            nact.append(np.concatenate([a[1:n], np.zeros_like(a[:1])]))
        else:
            nxt.append(o[1:n + 1]), nact.append(a[1:n + 1])
        term.append(t)
    cat = np.concatenate
    return dict(obs_ND=cat(obs), act_NA=cat(act), rew_N1=cat(rew), next_obs_ND=cat(nxt), next_act_NA=cat(nact),
                term_N1=cat(term))


def sample_batch(trans: dict, rng: np.random.Generator, batch_size: int):
    """A d3rlpy TransitionMiniBatch of `batch_size` transitions drawn uniformly with replacement."""
    from d3rlpy.dataset import TransitionMiniBatch

    idx_B = rng.integers(0, len(trans["obs_ND"]), size=batch_size)
    return TransitionMiniBatch(observations=trans["obs_ND"][idx_B], actions=trans["act_NA"][idx_B],
                               rewards=trans["rew_N1"][idx_B], next_observations=trans["next_obs_ND"][idx_B],
                               next_actions=trans["next_act_NA"][idx_B], terminals=trans["term_N1"][idx_B],
                               intervals=np.ones((batch_size, 1), np.float32), transitions=[])


# ---------------------------------------------------------------------------------------------------------------
# the d3rlpy algorithm and its weights-only state
# ---------------------------------------------------------------------------------------------------------------
def build_algo(cfg: IQLConfig, obs_dim: int, act_dim: int, device: torch.device):
    """d3rlpy's IQL with our config, its networks and optimisers created for (obs_dim,) -> (act_dim,)."""
    d3rlpy = import_d3rlpy()
    enc = d3rlpy.models.VectorEncoderFactory(hidden_units=list(cfg.hidden))
    sched = d3rlpy.optimizers.CosineAnnealingLRFactory(T_max=max(1, cfg.steps)) if cfg.actor_cosine else None
    algo = d3rlpy.algos.IQLConfig(
        batch_size=cfg.batch_size, gamma=cfg.discount, actor_learning_rate=cfg.actor_lr,
        critic_learning_rate=cfg.critic_lr, actor_optim_factory=d3rlpy.optimizers.AdamFactory(lr_scheduler_factory=sched),
        critic_optim_factory=d3rlpy.optimizers.AdamFactory(), actor_encoder_factory=enc, critic_encoder_factory=enc,
        value_encoder_factory=enc, tau=cfg.tau, n_critics=cfg.n_critics, expectile=cfg.expectile,
        weight_temp=cfg.temperature, max_weight=cfg.max_weight,
    ).create(device=_d3rlpy_device(device))
    algo.create_impl((obs_dim,), act_dim)
    return algo


def _d3rlpy_device(device: torch.device) -> str:
    return f"cuda:{device.index or 0}" if device.type == "cuda" else "cpu:0"


def _parts(algo) -> dict:
    return algo.impl.modules.create_checkpointer(algo.impl.device).modules


def network_state(algo) -> dict:
    """Flat {"<module>.<param>": tensor} of the networks (policy, twin Q, target Q, V): only tensors."""
    parts = _parts(algo)
    return {f"{name}.{k}": v.detach().cpu().clone() for name in MODULE_NAMES
            for k, v in parts[name].state_dict().items()}


def load_network_state(algo, state: dict) -> None:
    parts = _parts(algo)
    for name in MODULE_NAMES:
        prefix = name + "."
        sub = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
        try:
            parts[name].load_state_dict(sub)
        except RuntimeError as exc:
            raise MageError(f"iql checkpoint does not fit its config ({name}): {str(exc).splitlines()[0]}") from None


def n_params(algo) -> int:
    parts = _parts(algo)
    return sum(p.numel() for name in ("policy", "q_funcs", "value_func") for p in parts[name].parameters())


# ---------------------------------------------------------------------------------------------------------------
# training
# ---------------------------------------------------------------------------------------------------------------
def train(episodes: list, task: Task, config: IQLConfig, *, out: str | Path, device: str = "cpu",
          resume: dict | None = None, events: Any = None, seed: int = 0, dataset: Any = None,
          progress: bool = False) -> dict:
    """Fit IQL on the episodes with d3rlpy; writes the checkpoint to `out` (every ckpt_every steps and at the end)
    and returns it. Events and checkpoint layout follow mage_core.training.loop.run_training (one stage named "iql")."""

    check_available()
    dev = resolve_device(device)
    if dev.type == "cpu":
        configure_cpu_threads(int(getattr(config, "num_threads", 0) or 0))  # as run_training does for the others
    ts = (resume or {}).get("train_state") or {}
    if resume is not None and int(resume["config"][ALGO]["steps"]) != config.steps:
        raise MageError("an iql run cannot be resumed with a different step count (the actor's cosine learning-rate "
                        "schedule is tied to it); start a new run instead")
    normaliser = Normaliser.from_state_dict(resume["normaliser"]) if resume else None
    ds = common.make_segments(episodes, task, horizon=1, normaliser=normaliser)  # normaliser + dataset record
    obs_mean_D, obs_std_D = ds.normaliser.x_mean_D[1:], ds.normaliser.x_std_D[1:]
    scale = reward_scale(episodes, task, config)
    terminated_E = terminal_flags(episodes, task)
    arrays = mdp_arrays(episodes, terminated_E, obs_fn=lambda o: (o - obs_mean_D) / obs_std_D)
    arrays["rewards_N"] *= scale
    trans = flat_transitions(make_mdp_dataset(arrays))

    torch.manual_seed(seed)
    algo = build_algo(config, ds.obs_dim, ds.act_dim, dev)
    rng = np.random.default_rng([seed, 0])
    start = int(ts.get("step", 0))
    if resume is not None:
        load_network_state(algo, resume["state_dict"])
        parts = _parts(algo)
        for name in OPTIM_NAMES:
            parts[name].load_state_dict(ts["optimizer"][name])
        algo.set_grad_step(int(ts.get("grad_step", start)))
        rng.bit_generator.state = ts["rng"]["numpy"]
        torch.set_rng_state(ts["rng"]["torch"])
    mdp_info = {"transitions": int(len(trans["obs_ND"])), "terminal_episodes": int(terminated_E.sum()),
                "timeout_episodes": int((~terminated_E).sum()), "reward_scale": scale}
    static = {"format": common.CKPT_FORMAT, "format_version": common.FORMAT_VERSION,
              "versions": {**common.package_versions(), "d3rlpy": str(import_d3rlpy().__version__)},
              "algo": ALGO, "config": {ALGO: common.config_to_dict(config)}, "normaliser": ds.normaliser.state_dict(),
              "task": task.name, "task_spec": task_to_dict(task),
              "dataset": common.dataset_meta(episodes, ds, dataset, task.suite.reports_success(task)), "mdp": mdp_info,
              "spaces": {"obs_dim": ds.obs_dim, "act_dim": ds.act_dim, "obs_keys": list(task.obs_keys)}}
    sink = as_event_writer(events)
    metrics: dict = dict((resume or {}).get("metrics") or {})
    wall0 = time.time() - float(ts.get("wall_s", 0.0))
    out = Path(out)

    def payload(step: int, done: bool) -> dict:
        parts = _parts(algo)
        return {**static, "state_dict": network_state(algo), "metrics": metrics,
                "train_state": {"stage": 1, "step": step, "done": done, "wall_s": time.time() - wall0,
                                "grad_step": int(algo.grad_step),
                                "optimizer": {name: parts[name].state_dict() for name in OPTIM_NAMES},
                                "scheduler": None, "rng": {"numpy": rng.bit_generator.state,
                                                           "torch": torch.get_rng_state()}}}

    def write(step: int, done: bool = False) -> None:
        save_checkpoint(out, payload(step, done))
        sink.emit("checkpoint", path=str(out), stage=1, step=step)

    sink.emit("start", algo=ALGO, task=task.name, stages=[{"name": ALGO, "steps": config.steps}], device=str(dev),
              params=n_params(algo), world_size=1, resumed_from=start if resume else None)
    bar = ProgressBar(config.steps, label=f"stage 1 {ALGO}", enabled=progress, initial=start)
    sums: dict = {}
    n_sum, last_loss = 0, float("nan")
    t_last, step_last = time.time(), start
    for step in range(start + 1, config.steps + 1):
        losses = algo.update(sample_batch(trans, rng, config.batch_size))
        loss = float(losses.get("critic_loss", 0.0)) + float(losses.get("actor_loss", 0.0))
        if not math.isfinite(loss):
            msg = (f"IQL loss became NaN/inf at step {step}; stopped"
                   + (f". The last good checkpoint is kept at {out}" if out.exists() else " before any checkpoint"))
            sink.emit("error", message=msg)
            bar.close()
            raise MageError(msg)
        for k, v in {"loss": loss, **losses}.items():
            sums[k] = sums.get(k, 0.0) + float(v)
        n_sum, last_loss = n_sum + 1, loss
        if step % config.log_every == 0 or step == config.steps:
            now = time.time()
            rate = (step - step_last) / max(now - t_last, 1e-9)
            rec = {"losses": {k: round(v / n_sum, 6) for k, v in sums.items()}}
            metrics["stage1"] = {**rec, "step": step}
            metrics["last"] = metrics["stage1"]
            lr = algo.impl.modules.actor_optim.optim.param_groups[0]["lr"]
            sink.emit("step", stage=1, stage_name=ALGO, step=step, total=config.steps, **rec,
                      segments_per_s=round(rate * config.batch_size, 1),
                      eta_s=round((config.steps - step) / max(rate, 1e-9), 1), lr=lr)
            sums, n_sum, t_last, step_last = {}, 0, now, step
        bar.update(step, f"loss {last_loss:.4f}")
        if config.ckpt_every and step % config.ckpt_every == 0 and step != config.steps:
            write(step)
    bar.close()
    sink.emit("stage_end", stage=1, stage_name=ALGO, metrics=metrics.get("stage1", {}))
    final = payload(config.steps, done=True)
    save_checkpoint(out, final)
    sink.emit("checkpoint", path=str(out), stage=1, step=config.steps)
    sink.emit("done", checkpoint=str(out), wall_s=round(time.time() - wall0, 2),
              final_loss=last_loss if math.isfinite(last_loss) else None)
    return final


# ---------------------------------------------------------------------------------------------------------------
# acting
# ---------------------------------------------------------------------------------------------------------------
class IQLPolicy:
    """Acting wrapper: normalise s, d3rlpy's deterministic action (tanh of the Gaussian policy's mean), clip; no RTG."""

    def __init__(self, algo, normaliser: Normaliser):
        self.algo = algo
        self.obs_mean_D, self.obs_std_D = normaliser.x_mean_D[1:], normaliser.x_std_D[1:]
        self.obs_dim = len(self.obs_mean_D)

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs_ND: np.ndarray, reward_N: np.ndarray) -> np.ndarray:
        obs_ND = common.check_obs(obs_ND, self.obs_dim)
        s_ND = ((obs_ND - self.obs_mean_D) / self.obs_std_D).astype(np.float32)
        a_NA = self.algo.predict(s_ND)
        return np.clip(a_NA, common.ACTION_LOW, common.ACTION_HIGH).astype(np.float32)


def load_model(ckpt_or_path, device: str = "cpu") -> tuple[Any, dict]:
    """(d3rlpy IQL rebuilt from the checkpoint's config with its trained networks, checkpoint dict)."""
    ckpt = common.load_ckpt(ckpt_or_path, ALGO)
    cfg = common.config_from_dict(IQLConfig, ckpt["config"][ALGO])
    torch_state = torch.get_rng_state()  # building networks draws initial weights; acting must not move the RNG
    algo = build_algo(cfg, ckpt["spaces"]["obs_dim"], ckpt["spaces"]["act_dim"], resolve_device(device))
    torch.set_rng_state(torch_state)
    load_network_state(algo, ckpt["state_dict"])
    algo.impl.modules.set_eval()
    return algo, ckpt


def load_policy(ckpt_or_path, rtg_target: float | None = None, device: str = "cpu", **kw) -> IQLPolicy:
    """An IQLPolicy from a checkpoint (rtg_target and seed are accepted for a uniform interface and ignored)."""
    algo, ckpt = load_model(ckpt_or_path, device)
    return IQLPolicy(algo, Normaliser.from_state_dict(ckpt["normaliser"]))
