"""A low and a high RTG target side by side: two closed loops from the same start, rendered into one GIF and figure."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from mage_core.errors import UsageError

PANEL_SIZE = (480, 360)  # pixels of each run's panel (the GIF is two panels wide plus a caption band)
CAPTION_PX = 46  # height of the band under the panels that says what is shown
FRAME_EVERY = 2  # environment steps between recorded frames (a 200-step hand episode -> 100 frames)
FRAME_MS = 60  # GIF frame duration


@dataclass
class TargetRun:
    """One closed loop at one RTG target: its frames and what it achieved."""

    target: float  # the RTG target the planner was conditioned on
    frames: list = field(default_factory=list)  # (H, W, 3) uint8 renders, every FRAME_EVERY steps
    returns: list = field(default_factory=list)  # return so far at each recorded frame
    episode_return: float = 0.0  # return of the whole run
    normalised: float | None = None  # its normalised score (None without reference scores)
    steps: int = 0  # steps run


def run_target(task, planner, target: float, seed: int, steps: int, scene, camera, size=PANEL_SIZE,
               every: int = FRAME_EVERY, ref_scores=None, tick: Callable[[], None] | None = None) -> TargetRun:
    """Run the planner's closed loop (re-planning every step, as `mage eval` scores it) at one target and render
    the env's state every `every` steps in `scene` (a render.TaskScene of the task)."""
    from mage_core.render import MODEL_LOCK

    with MODEL_LOCK:
        env = task.make_env(mode="eval")
    run = TargetRun(target=float(target))
    try:
        obs, _ = env.reset(seed=seed)
        obs_D = task.flatten_obs(obs)
        policy = planner.policy(float(target), replan_every=1, seed=seed)
        policy.reset(1)
        reward = 0.0
        goal = task.suite.goal_point(task, obs_D)
        if goal is not None:
            scene.set_goal(goal)
        for t in range(steps + 1):
            if t % every == 0 or t == steps:
                scene.set_qpos(env.unwrapped.data.qpos)
                run.frames.append(scene.render(camera, None, size))
                run.returns.append(run.episode_return)
            if t == steps:
                break
            action = np.asarray(policy.act(obs_D[None], np.array([reward]))[0], np.float32)
            obs, reward, term, trunc, _ = env.step(action)
            obs_D = task.flatten_obs(obs)
            run.episode_return += float(reward)
            run.steps = t + 1
            if tick is not None:
                tick()
            if term or trunc:
                scene.set_qpos(env.unwrapped.data.qpos)
                run.frames.append(scene.render(camera, None, size))
                run.returns.append(run.episode_return)
                break
    finally:
        with MODEL_LOCK:
            env.close()
    if ref_scores is not None and ref_scores[1] != ref_scores[0]:
        run.normalised = 100.0 * (run.episode_return - ref_scores[0]) / (ref_scores[1] - ref_scores[0])
    return run


def _label(run: TargetRun, which: str, ret: float) -> str:
    return f"{which} target {run.target:,.0f}  ·  return so far {ret:,.0f}"


def compose_pair(low: TargetRun, high: TargetRun, title: str) -> list:
    """Side-by-side frames (PIL images): each panel labelled with its target and return so far, a caption under."""
    from PIL import Image, ImageDraw

    n = max(len(low.frames), len(high.frames))
    h, w = low.frames[0].shape[:2]
    out = []

    def score(r: TargetRun) -> str:
        return f"{r.episode_return:,.0f}" + ("" if r.normalised is None else f" ({r.normalised:.0f} normalised)")

    caption = f"{title}: low target -> {score(low)}, high target -> {score(high)}"
    for i in range(n):
        img = Image.new("RGB", (2 * w + 6, h + CAPTION_PX), (24, 26, 30))
        draw = ImageDraw.Draw(img)
        for k, (run, which) in enumerate(((low, "low"), (high, "high"))):
            j = min(i, len(run.frames) - 1)
            img.paste(Image.fromarray(run.frames[j]), (k * (w + 6), 0))
            draw.rectangle((k * (w + 6), 0, k * (w + 6) + w, 20), fill=(0, 0, 0))
            draw.text((k * (w + 6) + 6, 4), _label(run, which, run.returns[j]), fill=(255, 236, 180))
        draw.text((6, h + 6), caption, fill=(230, 230, 235))
        draw.text((6, h + 24), "MAGE closed loop, same start and seed; only the return-to-go target differs",
                  fill=(160, 165, 175))
        out.append(img)
    return out


def write_target_pair(checkpoint, out_gif: str | Path, low: float | None = None, high: float | None = None,
                      seed: int = 0, steps: int | None = None, size=PANEL_SIZE, every: int = FRAME_EVERY,
                      progress: Callable[[int, int], None] | None = None, planner=None) -> dict:
    """Run the checkpoint at a low and a high RTG target (default: the ends of its data's return range) from the
    same reset, write the side-by-side GIF and a PNG of the last frame beside it (OUT.png); returns the numbers.
    `progress(done, total)` sees the steps run."""
    from mage_core.planner import Planner
    from mage_core.policies import checkpoint_ref_scores
    from mage_core.render import TaskScene

    out_gif = Path(out_gif)
    if out_gif.suffix.lower() != ".gif":
        raise UsageError(f"the pair is written as a GIF: {out_gif} should end in .gif")
    planner = planner or Planner.from_checkpoint(checkpoint)
    task = planner.task
    lo, hi = planner.rtg_range
    low, high = float(lo if low is None else low), float(hi if high is None else high)
    if not low < high:
        raise UsageError(f"the low target ({low:g}) must be below the high one ({high:g})")
    steps = int(steps or task.eval_steps)
    ref = checkpoint_ref_scores(getattr(planner, "ckpt_meta", None) or {}, task)
    done = [0]

    def tick() -> None:
        done[0] += 1
        if progress is not None:
            progress(done[0], 2 * steps)

    scene = TaskScene(task)
    try:
        camera = scene.default_camera(size[0] / size[1])
        runs = [run_target(task, planner, g, seed, steps, scene, camera, size, every, ref, tick) for g in (low, high)]
    finally:
        scene.close()
    frames = compose_pair(runs[0], runs[1], task.name)
    out_gif.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_gif.with_name(out_gif.name + ".tmp.gif")
    frames[0].save(tmp, save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0, optimize=False)
    tmp.replace(out_gif)
    png = out_gif.with_suffix(".png")
    frames[-1].save(png)
    return dict(task=task.name, seed=seed, steps=steps, gif=str(out_gif), png=str(png), frames=len(frames),
                runs=[dict(target=r.target, episode_return=r.episode_return, normalised=r.normalised, steps=r.steps)
                      for r in runs])
