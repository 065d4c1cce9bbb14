"""The kitchen's data facet: its task and datasets (its own, and Minari's D4RL/kitchen ones with their Dict
observations), and the complete / partial / mixed recipes after D4RL's, rolled out by the scripted controller."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.progress import Ticker
from mage_core.suites.base import DataFacet, Task
from mage_core.suites.kitchen.kinematics import goal_distance
from mage_core.suites.kitchen.tasks import (COMPLETION_THRESHOLD, D4RL_TARGETS, ENV_ID, ENV_OBS_DIM, EVAL_STEPS, GOALS,
                                            REFERENCE_SCORES, SUBTASKS, check_subtasks, make_task, targets_of)

VARIANTS = ("complete", "partial", "mixed")  # after D4RL's kitchen-complete, -partial and -mixed
DATASET_VERSION = "v0"
# Steps `mage data make kitchen` records by default. The recipe ran at 150-165 steps/s (env, controller and buffers
# together, 3000 steps of each variant) on the project's shared 2-core CPU under a load of about 6.5, so these take
# about 2 and 4.5 minutes, plus about a minute for the 20 + 20 reference episodes. D4RL's kitchen-complete holds
# 4209 steps, -partial and -mixed 156560.
DEFAULT_STEPS = {"complete": 15_000, "partial": 40_000, "mixed": 40_000}


@dataclass
class KitchenRecipe:
    """The kitchen's data recipe (pass another one as GenerateConfig.recipe to change it)."""

    action_noise: float = 0.1  # std of the Gaussian noise added to every action (actions are in [-1, 1])
    arm_jitter: float = 0.1  # rad: uniform +- jitter on the arm's 7 joints at every episode's start
    sequence_length: int = 4  # sub-tasks per episode (D4RL's demonstrations perform four)
    partial_target_share: float = 1 / 3  # partial: share of episodes that perform the four targets in order
    settle_steps: int = 5  # steps recorded after the controller finished its sequence, before the episode is cut

    def check(self) -> "KitchenRecipe":
        """Itself, or a MageError naming the bad field."""
        if not (self.action_noise >= 0 and self.arm_jitter >= 0 and 0 <= self.partial_target_share <= 1):
            raise MageError(f"kitchen recipe: action_noise and arm_jitter must be >= 0 and partial_target_share in "
                            f"[0, 1]; got {self}")
        if not 1 <= int(self.sequence_length) <= len(SUBTASKS) or self.settle_steps < 0:
            raise MageError(f"kitchen recipe: sequence_length must be 1..{len(SUBTASKS)} and settle_steps >= 0; "
                            f"got {self}")
        return self


def recipe_of(cfg) -> KitchenRecipe:
    """The kitchen recipe of a GenerateConfig: its `recipe` when given (checked), else the suite's defaults."""
    r = getattr(cfg, "recipe", None)
    if r is None:
        return KitchenRecipe()
    if not isinstance(r, KitchenRecipe):
        raise MageError(f"kitchen data needs a KitchenRecipe as GenerateConfig.recipe, not {type(r).__name__}")
    return r.check()


def draw_sequence(variant: str, targets: tuple, rng: np.random.Generator, recipe: KitchenRecipe) -> tuple:
    """The sub-tasks one episode performs, in order: complete, the targets in order; partial, the targets in order
    for a share of episodes, else any distinct sub-tasks; mixed, distinct sub-tasks that never include every
    target (between two and sequence_length of them)."""
    n = int(recipe.sequence_length)
    if variant == "complete" or (variant == "partial" and rng.random() < recipe.partial_target_share):
        return tuple(targets)
    if variant == "partial":
        return tuple(str(s) for s in rng.permutation(SUBTASKS)[:n])
    while True:
        seq = tuple(str(s) for s in rng.permutation(SUBTASKS)[:int(rng.integers(2, n + 1))])
        if not set(targets) <= set(seq):
            return seq


def _space_goal_keys(meta: dict) -> tuple:
    """The sub-tasks a dataset's Dict observation space names under desired_goal (a gymnasium space, as Minari's
    metadata holds it, or its JSON)."""
    space = meta.get("observation_space")
    try:
        if isinstance(space, str):
            return tuple(json.loads(space).get("subspaces", {}).get("desired_goal", {}).get("subspaces", {}))
        goal = getattr(space, "spaces", {}).get("desired_goal")
        return tuple(getattr(goal, "spaces", {}) or ())
    except (ValueError, AttributeError):
        return ()


class KitchenData(DataFacet):
    """The kitchen's task, datasets and data recipes."""

    has_generator = True

    # ---- tasks and datasets --------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        return [make_task()]

    def claims(self, env_id, spec, meta) -> bool:
        return env_id == ENV_ID

    def matches_builtin(self, task, meta, spec) -> bool:
        """Every variant this suite makes belongs to its task."""
        return str(meta.get("dataset_id", "")).startswith(f"mage/{task.name}/")

    def task_for_spec(self, meta, spec, eval_spec) -> Task:
        """A user's FrankaKitchen-v1 dataset (e.g. Minari's D4RL/kitchen/*): its targets from the evaluation env's
        tasks_to_complete, else the data env's, else the sub-tasks its observations' desired_goal names (D4RL's
        four targets first, in their order), on D4RL's protocol."""
        kw = dict(eval_spec.get("kwargs") or {})
        names = kw.get("tasks_to_complete") or (spec.get("kwargs") or {}).get("tasks_to_complete")
        if not names:
            keys = _space_goal_keys(meta)
            names = [t for t in D4RL_TARGETS if t in keys] + sorted(k for k in keys if k not in D4RL_TARGETS)
        if not names:
            raise MageError(f"dataset {meta.get('dataset_id')}: cannot tell which kitchen sub-tasks it targets (no "
                            f"tasks_to_complete in its env specs and no desired_goal in its observations)")
        t = make_task(check_subtasks(names, "target sub-task"), name=str(meta.get("dataset_id")),
                      dataset_id=str(meta.get("dataset_id")))
        t.eval_steps = int(eval_spec.get("max_episode_steps") or spec.get("max_episode_steps") or EVAL_STEPS)
        t.data_max_episode_steps = t.eval_steps
        return t

    def builtin_reference_scores(self, task):
        """D4RL's kitchen reference scores (no sub-task, all four) for a dataset that carries none."""
        return REFERENCE_SCORES

    def dataset_reference_scores(self, task, measured):
        """Generated datasets store D4RL's reference scores (0 and 4, so normalised scores compare with D4RL's and
        Minari's kitchen); the measured ones (random policy, noise-free controller) go into the description."""
        self.last_measured_refs = (float(measured[0]), float(measured[1]))
        return REFERENCE_SCORES

    def flatten_dataset_obs(self, task, obs) -> np.ndarray:
        """A recorded episode's observations -> (T, D) float32 in the flat layout: this suite's own data as stored;
        a Dict one (Minari's D4RL/kitchen: 'observation' (59) and achieved / desired goal Dicts of the targets)
        flattened to 'observation' and the targets' done flags (1 from the first step a target's joints are within
        the env's threshold of its goal, as FrankaKitchen-v1 counts it; the reset observation is never done)."""
        targets = targets_of(task)
        if not isinstance(obs, dict):
            obs_TD = np.asarray(obs, np.float32).reshape(len(obs), -1)
            if obs_TD.shape[1] != ENV_OBS_DIM + len(targets):
                raise MageError(f"{task.name}: dataset observations have {obs_TD.shape[1]} dims, but a kitchen task "
                                f"with {len(targets)} targets has {ENV_OBS_DIM + len(targets)} (the env's 59 and a "
                                f"done flag per target)")
            return obs_TD
        base = obs.get("observation")
        ach, des = obs.get("achieved_goal"), obs.get("desired_goal")
        missing = [t for t in targets if not isinstance(ach, dict) or not isinstance(des, dict)
                   or t not in ach or t not in des]
        if base is None or np.asarray(base).ndim != 2 or np.asarray(base).shape[1] != ENV_OBS_DIM or missing:
            raise MageError(f"{task.name}: not a FrankaKitchen-v1 observation layout (expected 'observation' of "
                            f"{ENV_OBS_DIM} and achieved_goal / desired_goal for {', '.join(targets)}"
                            + (f"; missing {', '.join(missing)}" if missing else "") + ")")
        base = np.asarray(base, np.float32)
        flags = []
        for t in targets:
            a, d = np.asarray(ach[t], np.float64), np.asarray(des[t], np.float64)
            if a.shape != (len(base), len(GOALS[t])) or d.shape != a.shape:
                raise MageError(f"{task.name}: the {t!r} goal has shape {a.shape}, expected "
                                f"{(len(base), len(GOALS[t]))}")
            within = np.linalg.norm(a - d, axis=1) < COMPLETION_THRESHOLD
            within[0] = False
            flags.append(np.maximum.accumulate(within))
        return np.concatenate([base, np.stack(flags, 1).astype(np.float32)], axis=1)

    # ---- data recipes --------------------------------------------------------------------------------------------
    def variants(self, task) -> tuple:
        return VARIANTS

    def default_data_steps(self, task, variant) -> int:
        return DEFAULT_STEPS[variant]

    def dataset_id(self, task, variant) -> str:
        return f"mage/{task.name}/{variant}-{DATASET_VERSION}"

    def collect_buffers(self, task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """Minari EpisodeBuffers of cfg.variant: each episode the scripted controller performs a drawn sequence of
        sub-tasks (draw_sequence) from a jittered start with noisy actions, on the data env (the task's targets,
        D4RL's 280 steps). An episode ends when the env counts every target done (termination), a few steps after
        the controller finished its sequence, when it gives up on a sub-task, or at the time limit (truncations).
        Every sub-task the controller did not get done is counted in last_stats and the dataset's description;
        infos['success'] is the env's own signal (every target done)."""
        from minari.data_collector import EpisodeBuffer

        from mage_core.suites.kitchen.controller import ScriptedKitchen
        from mage_core.suites.kitchen.env import jitter_start

        variant = cfg.variant or VARIANTS[0]
        if variant not in VARIANTS:
            raise MageError(f"{task.name} has no {variant!r} data; its variants: {', '.join(VARIANTS)}")
        if cfg.steps < 1:
            raise MageError("--steps must be positive")
        rc = recipe_of(cfg)
        targets = targets_of(task)
        rng = np.random.default_rng(cfg.seed)
        tick = Ticker(progress, cfg.steps)
        stats = {"episodes": 0, "all_targets": 0, "attempted": {}, "done": {}, "gave_up": {}, "passed_over": {},
                 "time_limit": {}}
        env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
        model = env.unwrapped.model
        buffers, done = [], 0
        try:
            while done < cfg.steps:
                env_seed = int(cfg.seed) * 1_000_003 + len(buffers)
                env.reset(seed=env_seed)
                obs = jitter_start(env, rng, rc.arm_jitter)
                seq = draw_sequence(variant, targets, rng, rc)
                ctl = ScriptedKitchen(model, seq, targets=targets, noise=rc.action_noise, rng=rng)
                qpos = env.unwrapped.data.qpos
                reached = {s: False for s in seq}  # a sub-task's joints within the threshold at some step
                obs_l, acts, rews, terms, truncs, succ = [obs], [], [], [], [], [False]
                settle = 0
                while True:
                    a = ctl.act(obs)
                    obs, r, term, trunc, info = env.step(a)
                    done += 1
                    tick(1)
                    for s in seq:
                        reached[s] = reached[s] or goal_distance(s, qpos) < COMPLETION_THRESHOLD
                    settle += bool(ctl.finished)
                    end = bool(term or trunc or ctl.failed or settle > rc.settle_steps or done >= cfg.steps)
                    obs_l.append(obs), acts.append(a), rews.append(float(r)), succ.append(bool(info["success"]))
                    terms.append(bool(term)), truncs.append(bool(end and not term))
                    if end:
                        break
                _count(stats, seq, reached, ctl, budget_cut=done >= cfg.steps and not (term or trunc or ctl.failed))
                stats["all_targets"] += bool(succ[-1])
                buffers.append(EpisodeBuffer(id=len(buffers), seed=env_seed, observations=np.asarray(obs_l, np.float64),
                                             actions=np.asarray(acts, np.float32), rewards=rews, terminations=terms,
                                             truncations=truncs, infos={"success": np.asarray(succ)}))
        finally:
            env.close()
        stats["episodes"] = len(buffers)
        self.last_stats = stats
        tick.done()
        return buffers

    def data_description(self, task, cfg) -> tuple[str, str]:
        variant = cfg.variant or VARIANTS[0]
        rc = recipe_of(cfg)
        s = getattr(self, "last_stats", None) or {}
        what = {"complete": "the four targets in order, every episode",
                "partial": f"the four targets in order in a share of {rc.partial_target_share:.2f} of the episodes, "
                           f"else {rc.sequence_length} distinct sub-tasks drawn from all seven",
                "mixed": f"2 to {rc.sequence_length} distinct sub-tasks drawn from all seven, never every target"}[variant]
        return (f"scripted-kitchen-{variant} (D4RL kitchen-{variant} recipe)",
                f"{task.name} ({variant}): a scripted controller (end-effector targets from the scene's handles and "
                f"objects, joint velocities by damped least squares on MuJoCo's Jacobian, fingers to grasp) performs "
                f"{what}; targets {', '.join(targets_of(task))}; start jitter +-{rc.arm_jitter} rad on the arm's "
                f"joints, action noise N(0, {rc.action_noise}); episodes end when every target is done, "
                f"{rc.settle_steps} steps after the sequence, when the controller gives up on a sub-task, or at "
                f"{task.data_max_episode_steps} steps; reward 1 for each target the env counts done. "
                f"{stats_line(s)} seed {cfg.seed}, {cfg.steps} steps. {refs_line(self, task, cfg)}")


def refs_line(facet, task, cfg) -> str:
    """What the dataset's reference scores are, and the ones measured on the evaluation protocol."""
    lo, hi = REFERENCE_SCORES
    m = getattr(facet, "last_measured_refs", None)
    measured = (f"; measured on the evaluation protocol ({cfg.ref_episodes} episodes of {task.eval_steps} steps "
                f"each): random policy {m[0]:.2f}, the noise-free controller performing the targets {m[1]:.2f}"
                if m else "")
    return f"ref_min_score {lo:g} and ref_max_score {hi:g}: D4RL's kitchen reference scores{measured}."


def _count(stats: dict, seq: tuple, reached: dict, ctl, budget_cut: bool) -> None:
    """Book one episode's sub-tasks that the controller began: done (their joints within the env's threshold at
    some step), given up by the controller, passed over (the controller went on although the env's measure never
    got there), or cut by the time limit (not counted where the step budget itself cut the episode)."""
    for i, s in enumerate(seq if ctl.finished else seq[:ctl.index + 1]):
        stats["attempted"][s] = stats["attempted"].get(s, 0) + 1
        if reached[s]:
            kind = "done"
        elif ctl.failed == s:
            kind = "gave_up"
        elif ctl.finished or i < ctl.index:
            kind = "passed_over"
        elif not budget_cut:
            kind = "time_limit"
        else:
            continue
        stats[kind][s] = stats[kind].get(s, 0) + 1


def stats_line(s: dict) -> str:
    """One line on how the controller did while making the data (what last_stats holds)."""
    if not s:
        return ""
    att, dn = s.get("attempted", {}), s.get("done", {})
    per = ", ".join(f"{k} {dn.get(k, 0)}/{v}" for k, v in sorted(att.items()))
    n = {k: sum(s.get(k, {}).values()) for k in ("gave_up", "passed_over", "time_limit")}
    return (f"Controller: {s.get('episodes', 0)} episodes, {s.get('all_targets', 0)} with every target done; "
            f"sub-tasks done / begun: {per}; not done: {sum(n.values())} (given up {n['gave_up']}, passed over "
            f"{n['passed_over']}, cut by the time limit {n['time_limit']}).")
