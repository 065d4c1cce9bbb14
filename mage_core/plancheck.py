"""Plan feasibility (`mage diagnose --plans`): how deep a checkpoint's sampled plans run into obstacles, per scale, from
the states of the reference expert's route — a check in seconds of what closed-loop episodes take minutes to show."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

import numpy as np
import torch

from mage_core.errors import UsageError


INFEASIBLE_DEPTH = 0.25  # cells: a plan deeper than this inside an obstacle cannot be followed (the tokenizer's own
#                          reconstruction error is ~0.1 cell on pointmaze-large)


def scale_wall_depths(task, states_KHD: np.ndarray) -> np.ndarray | None:
    """Per scale, how deep the plan decoded after that scale runs into an obstacle (cells; 0 = clear), from one
    Plan's states_KHD; None where the task's suite knows no obstacles (what the studio's Plan dock shows)."""
    if not task.suite.has_obstacles(task):
        return None
    return task.suite.wall_depth(task, np.asarray(states_KHD)).max(-1)


@dataclass
class PlanCheckConfig:
    """Where plans are sampled from and what counts as infeasible."""

    episodes: int = 3  # reference-expert evaluation episodes whose route states are planned from
    every: int = 10  # plan from every n-th state of a route (up to the step the expert first reaches the goal)
    samples: int = 16  # plans sampled per state, in one batch
    threshold: float = INFEASIBLE_DEPTH  # infeasible: the agent runs deeper than this into an obstacle (cells)
    seed: int = 0  # evaluation seed of the expert episodes and seed of the token sampling
    rtg: float | None = None  # episode return target G (None: the top of the data's range, as `mage eval`)


def route_states(task, cfg: PlanCheckConfig) -> list[tuple[int, np.ndarray]]:
    """(step, observation) pairs every cfg.every steps along the reference expert's evaluation episodes, each route
    cut where the expert first collects reward (after that it only holds the goal)."""
    from mage_core.evaluate import ExpertPolicy, evaluate

    res = evaluate(task, ExpertPolicy(task), episodes=cfg.episodes, seeds=(cfg.seed,), record=True)
    out = []
    for ep in res.extra["episodes"]:
        hit = np.nonzero(np.asarray(ep["rewards_T"]) > 0)[0]
        end = int(hit[0]) if len(hit) else len(ep["rewards_T"])
        out += [(t, np.asarray(ep["obs_TD"][t], np.float32)) for t in range(0, max(end, 1), cfg.every)]
    return out


def check_plans(planner, cfg: PlanCheckConfig | None = None,
                progress: Callable[[int, int], None] | None = None) -> dict:
    """Sample cfg.samples plans from every route state and measure, per scale, the share of plans whose decoded path
    goes deeper than cfg.threshold into an obstacle (the suite's wall_depth) and the median of each plan's deepest
    point. Plans are conditioned as `mage eval` conditions them (the window-equivalent target limited to the data's
    range and the return ceiling)."""
    from mage_core.rtg import condition_rtg

    cfg = cfg or PlanCheckConfig()
    if cfg.episodes < 1 or cfg.every < 1 or cfg.samples < 1:
        raise UsageError("--plan-episodes, --plan-every and --plan-samples must be at least 1")
    if not np.isfinite(cfg.threshold) or cfg.threshold <= 0:
        raise UsageError("--plan-threshold must be a positive number of cells")
    task = planner.task
    if not task.suite.has_obstacles(task):
        raise UsageError(f"{task.name} ({task.suite.title}) has no obstacles to check plans against; "
                        "`mage diagnose --plans` works on the maze suites")
    target = planner.rtg_range[1] if cfg.rtg is None else planner.clamp_rtg(cfg.rtg)
    states = route_states(task, cfg)
    K, S = len(planner.scales), cfg.samples
    gen = torch.Generator(device=planner.device).manual_seed(int(cfg.seed))
    depth_list, agent_xy = [], []  # per state: (K, S) deepest point of each plan; the agent's xy there
    with torch.inference_mode():
        for i, (t, obs_D) in enumerate(states):
            cond_N = planner.feasible(obs_D[None], condition_rtg(target, 0.0, t, task.rtg_mode)[None])
            cond_SD = planner._cond(np.repeat(obs_D[None], S, 0), np.repeat(cond_N, S))
            s = planner.sampling
            out = planner.model.sample(cond_SD, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                                       cfg_scale=s.cfg_scale, generator=gen)
            fhat_KSCT = torch.cat(out.fhat_cum_list)  # every scale's cumulative latent, decoded in one batch
            x_KSHD = planner.model.decode(fhat_KSCT, cond_SD.repeat(K, 1))[..., : 1 + planner.obs_dim]
            states_KSHD = planner.normaliser.denorm_x(x_KSHD).float().cpu().numpy()[..., 1:]
            depth_KS = task.suite.wall_depth(task, states_KSHD).max(-1).reshape(K, S)
            depth_list.append(depth_KS)
            agent_xy.append(task.suite.agent_point(task, obs_D))
            if progress is not None:
                progress(i + 1, len(states))
    depth_KNS = np.stack(depth_list, axis=1)  # (K, states N, samples S)
    bad_KNS = depth_KNS > cfg.threshold
    per_scale = [dict(scale=k + 1, tokens=int(planner.scales[k]), share_infeasible=float(bad_KNS[k].mean()),
                      median_depth=float(np.median(depth_KNS[k]))) for k in range(K)]
    per_state = [dict(step=int(t), xy=None if c is None else [float(v) for v in c],
                      share_infeasible=float(bad_KNS[-1, i].mean())) for i, ((t, _), c) in enumerate(zip(states, agent_xy))]
    return dict(task=task.name, config=asdict(cfg), rtg_target=float(target), states=len(states), samples=S,
                share_infeasible=float(bad_KNS[-1].mean()), per_scale=per_scale, per_state=per_state)


def format_plan_check(rep: dict) -> str:
    """The report as a few lines of text: the headline share, then one row per scale."""
    thr = rep["config"]["threshold"]
    lines = [f"{rep['task']}: {rep['samples']} plans from each of {rep['states']} states along the expert's route; "
             f"{100 * rep['share_infeasible']:.1f}% of the full-resolution plans run more than {thr:g} cell into a wall",
             "scale  tokens  infeasible  median deepest point (cells)"]
    for r in rep["per_scale"]:
        lines.append(f"{r['scale']:5d}  {r['tokens']:6d}  {100 * r['share_infeasible']:9.1f}%  {r['median_depth']:8.3f}")
    return "\n".join(lines)
