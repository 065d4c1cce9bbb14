"""Adroit's data facet: its tasks and datasets, and the expert, human and cloned recipes that make its data."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from mage_core.progress import Ticker
from mage_core.errors import MageError
from mage_core.suites.adroit.assets import ASSET_DIR, N_DEMOS, DAPGPolicy, Demo, load_demos, load_npz
from mage_core.suites.adroit.bc import train_bc
from mage_core.suites.adroit.tasks import (BUILTIN_REFERENCE_SCORES, DEFAULT_CLONED_STEPS, DEFAULT_EXPERT_STEPS, ENV_RE,
                                           MIXED_MIN_ALPHA, KINDS, LAYOUTS, AdroitDataConfig, kind_of, make_task)
from mage_core.suites.base import DataFacet, Task




DOOR_HINGE = 28  # door observation index of the hinge angle
DOOR_OPEN = 1.35  # AdroitHandDoor-v1 counts the door open (info['success']) at this hinge angle (rad)


def demo_buffers(demos: list[Demo], steps: int, tiled: bool, tick, first_id: int = 0) -> list:
    """Demos as Minari episodes (T observations, the first T - 1 actions and rewards), in order, until `steps`
    transitions (cycling through them again when `tiled`); the last one is cut (truncated) to fit. Only door has
    demos: infos['success'] is its hinge criterion on each next observation, as the env reports it."""
    from minari.data_collector import EpisodeBuffer

    buffers, done, i = [], 0, 0
    while done < steps and (tiled or i < len(demos)):
        d = demos[i % len(demos)]
        n = min(len(d.obs_TD) - 1, steps - done)
        terms = [False] * n
        truncs = [False] * (n - 1) + [True]  # the recording (or our budget) ended; the task did not terminate
        succ = np.concatenate([[False], d.obs_TD[1:n + 1, DOOR_HINGE] >= DOOR_OPEN])  # the env's own criterion
        buffers.append(EpisodeBuffer(id=first_id + len(buffers), options={"initial_state_dict": d.init_state},
                                     observations=d.obs_TD[:n + 1].copy(), actions=d.actions_TA[:n].copy(),
                                     rewards=d.rewards_T[:n].tolist(), terminations=terms, truncations=truncs,
                                     infos={"success": succ}))
        done += n
        tick(n)
        i += 1
    return buffers


class AdroitData(DataFacet):
    """Adroit's tasks, datasets and data recipes, from the policies and demos under asset_dir."""

    has_generator = True

    def __init__(self, data_cfg: AdroitDataConfig | None = None, asset_dir: Path | None = None):
        self.data_cfg = data_cfg or AdroitDataConfig()  # recipe knobs beyond GenerateConfig
        self.asset_dir = Path(asset_dir) if asset_dir is not None else ASSET_DIR  # where policies and demos live
        self._policies: dict = {}  # kind -> DAPGPolicy, loaded once

    # ---- tasks and datasets --------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        return [make_task(k) for k in KINDS]

    def claims(self, env_id, spec, meta) -> bool:
        return bool(ENV_RE.match(env_id))

    def task_for_spec(self, meta, spec, eval_spec) -> Task:
        """A user's dataset of an Adroit env: the built-in protocol of that env (episode length, dense RTG)."""
        t = super().task_for_spec(meta, spec, eval_spec)
        m = ENV_RE.match(spec["id"])
        kind = m.group(1).lower()
        t.eval_steps, t.horizon, t.rtg_mode = LAYOUTS[kind].eval_steps, 32, "dense"
        t.data_max_episode_steps = t.eval_steps
        t.params = dict(kind=kind)
        return t

    def matches_builtin(self, task, meta, spec) -> bool:
        """Any variant this suite makes of a task (expert, human, cloned) belongs to that task."""
        return meta.get("dataset_id") in {self.dataset_id(task, v) for v in self.variants(task)}

    def builtin_reference_scores(self, task):
        ref = BUILTIN_REFERENCE_SCORES.get(LAYOUTS[kind_of(task)].env_id)
        return None if ref is None else (float(ref[0]), float(ref[1]))

    # ---- shipped files -------------------------------------------------------------------------------------------
    def policy(self, task) -> DAPGPolicy:
        """The shipped DAPG policy of a task (checked on first use)."""
        kind = kind_of(task)
        if kind not in self._policies:
            lay = LAYOUTS[kind]
            path = self.asset_dir / f"{kind}-expert-policy.npz"
            self._policies[kind] = DAPGPolicy(load_npz(path, "policy"), path, lay.obs_dim, lay.act_dim)
        return self._policies[kind]

    def demos(self, task) -> list[Demo]:
        """The shipped human demonstrations of a task, or a MageError listing the tasks that have them."""
        kind = kind_of(task)
        if kind not in N_DEMOS:
            raise MageError(f"{task.name} has no human demonstrations; tasks with them: "
                            f"{', '.join(f'adroit-{k}' for k in N_DEMOS)}")
        lay = LAYOUTS[kind]
        return load_demos(self.asset_dir / f"{kind}-human-demos.npz", lay.obs_dim, lay.act_dim, N_DEMOS[kind])

    # ---- data recipes --------------------------------------------------------------------------------------------
    def variants(self, task) -> tuple:
        return ("expert", "mixed", "human", "cloned") if kind_of(task) in N_DEMOS else ("expert", "mixed")

    def default_data_steps(self, task, variant) -> int:
        if variant == "human":
            return sum(len(d.obs_TD) - 1 for d in self.demos(task))  # every demo, each as recorded
        return DEFAULT_CLONED_STEPS if variant == "cloned" else DEFAULT_EXPERT_STEPS

    def collect_buffers(self, task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """Minari EpisodeBuffers of cfg.variant: 'expert' (noisy DAPG rollouts), 'mixed' (the expert through a
        per-episode lag, so returns span random to expert), 'human' (the demos as recorded) or
        'cloned' (the demos tiled for half the steps, noisy BC rollouts for the other half)."""
        variant = cfg.variant or self.variants(task)[0]
        if variant not in self.variants(task):
            having = [t.name for t in self.tasks() if variant in self.variants(t)]
            raise MageError(f"{task.name} has no {variant!r} data (variants: {', '.join(self.variants(task))})"
                            + (f"; tasks with {variant!r} data: {', '.join(having)}" if having else ""))
        if cfg.steps < 1:
            raise MageError("--steps must be positive")
        tick = Ticker(progress, cfg.steps, self.data_cfg.progress_every)
        if variant == "expert":
            pol = self.policy(task)
            rng = np.random.default_rng(cfg.seed)
            buffers = self._rollouts(task, lambda o: pol.sample(o[None], rng)[0], cfg.steps, cfg.seed, 0, tick)
        elif variant == "mixed":
            pol = self.policy(task)
            rng = np.random.default_rng(cfg.seed)
            lag = {"alpha": 1.0, "a_A": None}

            def new_episode() -> None:  # each episode's responsiveness, log-uniform over [MIXED_MIN_ALPHA, 1]
                lag["alpha"] = float(np.exp(rng.uniform(np.log(MIXED_MIN_ALPHA), 0.0)))
                lag["a_A"] = None

            def act(o):  # the commanded action follows the noisy expert through a first-order lag
                e_A = pol.sample(o[None], rng)[0]
                lag["a_A"] = e_A if lag["a_A"] is None else lag["a_A"] + lag["alpha"] * (e_A - lag["a_A"])
                return lag["a_A"]

            buffers = self._rollouts(task, act, cfg.steps, cfg.seed, 0, tick, on_reset=new_episode)
        elif variant == "human":
            buffers = demo_buffers(self.demos(task), cfg.steps, tiled=False, tick=tick)
        else:
            demos = self.demos(task)
            half = cfg.steps // 2
            buffers = demo_buffers(demos, half, tiled=True, tick=tick) if half else []
            bc = train_bc(demos, self.data_cfg, cfg.seed)
            rng = np.random.default_rng(cfg.seed)
            act = (lambda o: bc.sample(o, rng)) if self.data_cfg.bc_noise else bc.mean
            buffers += self._rollouts(task, act, cfg.steps - half, cfg.seed, len(buffers), tick)
        tick.done()
        return buffers

    def _rollouts(self, task, act: Callable, steps: int, seed: int, first_id: int, tick,
                  on_reset: Callable[[], None] | None = None) -> list:
        """Episodes of `act(obs_D) -> action_A` (clipped to [-1, 1] as the env does) on the data env, seeded resets."""
        from minari.data_collector import EpisodeBuffer

        env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
        buffers, done, ep_id = [], 0, first_id
        try:
            while done < steps:
                env_seed = int(seed) * 1_000_003 + ep_id
                obs, _ = env.reset(seed=env_seed)
                if on_reset is not None:
                    on_reset()
                obs_l, acts, rews, terms, truncs, succ = [obs], [], [], [], [], [False]
                while True:
                    a = np.clip(np.asarray(act(np.asarray(obs, np.float64)), np.float32), -1.0, 1.0)
                    obs, r, term, trunc, info = env.step(a)
                    done += 1
                    tick(1)
                    end = bool(term or trunc or done >= steps)
                    obs_l.append(obs), acts.append(a), rews.append(float(r)), succ.append(bool(info["success"]))
                    terms.append(bool(term)), truncs.append(bool(end and not term))
                    if end:
                        break
                buffers.append(EpisodeBuffer(id=ep_id, seed=env_seed, observations=np.asarray(obs_l, np.float64),
                                             actions=np.asarray(acts, np.float32), rewards=rews, terminations=terms,
                                             truncations=truncs, infos={"success": np.asarray(succ)}))
                ep_id += 1
        finally:
            env.close()
        return buffers

    def data_description(self, task, cfg) -> tuple[str, str]:
        variant = cfg.variant or self.variants(task)[0]
        refs = (f"ref_min_score: uniform random policy, ref_max_score: the noise-free DAPG expert (mean action "
                f"clipped to [-1, 1]), {cfg.ref_episodes} episodes of {task.eval_steps} steps each.")
        src = "DAPG policies and door demos from github.com/aravindr93/hand_dapg (Apache-2.0, assets/adroit/)"
        if variant == "expert":
            return ("dapg-expert (D4RL adroit expert recipe)",
                    f"{task.name}: rollouts of the DAPG expert with its own Gaussian noise exp(log_std), episodes of "
                    f"{task.eval_steps} steps from seeded resets, seed {cfg.seed}, {cfg.steps} steps. {src}. {refs}")
        if variant == "mixed":
            return ("dapg-lagged (the expert at a per-episode speed)",
                    f"{task.name}: rollouts of the DAPG expert (with its own noise) through a first-order lag "
                    f"a_t = a_(t-1) + alpha (expert_t - a_(t-1)), alpha drawn per episode log-uniformly from "
                    f"[{MIXED_MIN_ALPHA}, 1] (1: the expert; 0.1 about half its return; {MIXED_MIN_ALPHA}: a hand "
                    f"too slow to finish), so returns span random to expert and a lower return is a slower hand; "
                    f"episodes of {task.eval_steps} steps from seeded resets, seed {cfg.seed}, {cfg.steps} steps. "
                    f"{src}. {refs}")
        if variant == "human":
            return ("human-teleoperation (D4RL adroit human)",
                    f"{task.name}: the human demonstrations as recorded (observations, actions, rewards; each "
                    f"episode's start state in its options), the last recorded action of each dropped because its "
                    f"next observation was not recorded; up to {cfg.steps} steps. {src}. {refs}")
        return ("bc-cloned (D4RL adroit cloned recipe)",
                f"{task.name}: {cfg.steps // 2} steps of the human demonstrations tiled, then "
                f"{cfg.steps - cfg.steps // 2} steps of rollouts of a {self.data_cfg.bc_hidden}x2 MLP behaviour-cloned "
                f"on them ({self.data_cfg.bc_steps} Adam steps"
                f"{', Gaussian noise of its residual std' if self.data_cfg.bc_noise else ''}), seed {cfg.seed}. "
                f"{src}. {refs}")
