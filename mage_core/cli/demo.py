"""`mage demo`: headless out-of-the-box run — plan and execute the bundled checkpoint, write a PNG, print the score."""
from __future__ import annotations

import sys
import time

import numpy as np

from mage_core.bundled import CHECKPOINT_DIR, DEFAULT_TASK, bundled_checkpoint


def register(sub) -> None:
    p = sub.add_parser("demo", help="headless demo: plan and run the bundled checkpoint, write a PNG, print the score",
                       description="Loads the bundled checkpoint (checkpoints/<task>.pt), plans from the evaluation "
                       "start, runs one closed-loop episode with replanning every step, writes a PNG with each "
                       "scale's first plan and the executed path, and prints the episode's score.")
    p.add_argument("--task", default=DEFAULT_TASK, help=f"task of the bundled checkpoint (default {DEFAULT_TASK})")
    p.add_argument("--checkpoint", default=None, help="use this checkpoint instead of the bundled one")
    p.add_argument("--rtg", type=float, default=None, help="RTG target (default: top of the data's range)")
    p.add_argument("--seed", type=int, default=0, help="episode and sampling seed (default 0)")
    p.add_argument("--png", default="mage-demo.png", help="output image (default mage-demo.png)")
    p.add_argument("--video", metavar="FILE.mp4|FILE.gif", default=None,
                   help="also write the closed loop as a video, one frame per step: the scene, the plan being executed "
                   "per scale (coarse to fine colours), the path so far and a caption with the target and the return "
                   "so far (MP4 needs the video extra: pip install \"mage-studio[video]\")")
    p.add_argument("--pair", default=None, metavar="FILE.gif",
                   help="instead: run a low and a high RTG target from the same start and write them side by side "
                        "as FILE.gif (and its last frame as FILE.png) — the controllability demo for a slide")
    p.add_argument("--low", type=float, default=None, help="--pair: the low target (default: the data's lowest return)")
    p.add_argument("--high", type=float, default=None,
                   help="--pair: the high target (default: the data's highest return)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args) -> int:
    from mage_core.errors import MageError, UsageError, usage_errors
    from mage_core.evaluate import EvalResult
    from mage_core.planner import Planner
    from mage_core.render import render_plan_png

    if not args.checkpoint:
        from mage_core.tasks import get_task

        with usage_errors():
            get_task(args.task)  # an unknown task: the error lists the known ones
    if args.pair:
        if not str(args.pair).lower().endswith(".gif"):
            raise UsageError(f"the pair is written as a GIF: {args.pair} should end in .gif")
        if args.low is not None and args.high is not None and not args.low < args.high:
            raise UsageError(f"the low target ({args.low:g}) must be below the high one ({args.high:g})")
        if args.video:
            raise UsageError("--video records the single run; --pair writes its own GIF (leave one of them out)")
    if args.video:
        from mage_core.video import check_video_path

        check_video_path(args.video)  # a bad suffix or a missing extra, before anything runs
    ckpt = args.checkpoint or bundled_checkpoint(args.task)
    if ckpt is None:
        raise MageError(f"no bundled checkpoint for {args.task} in {CHECKPOINT_DIR}; train one with "
                        f"`mage train --task {args.task}` and pass --checkpoint")
    t0 = time.perf_counter()
    if args.pair:
        return _demo_pair(args, ckpt, t0)
    import torch

    torch.set_num_threads(1)  # batch-1 planning is latency-bound; more threads only add contention
    planner = Planner.from_checkpoint(ckpt)
    task = planner.task
    target = planner.rtg_range[1] if args.rtg is None else planner.clamp_rtg(args.rtg)
    env = task.make_env(mode="eval")
    obs, _ = env.reset(seed=args.seed)
    o = task.flatten_obs(obs)
    first = planner.plan(o, target, seed=args.seed)
    policy = planner.policy(target, seed=args.seed, keep_plan=bool(args.video))
    policy.reset(1)
    suite = task.suite
    floor = suite.draws_floor_path(task)  # the path is an xy trail on the floor (mazes), else a key point's 3-D path
    model = env.unwrapped.model
    track = suite.key_point_names(task)[:1]  # the first key point's executed path (agent xy, palm, torso)

    def where(o_D):
        if floor:
            return suite.agent_point(task, o_D)
        if track and suite.can_pose(task, model, len(o_D)):
            return suite.key_points(task, model, o_D[None])[track[0]][0]
        return None

    path, ret, reward, success, lat = [where(o)], 0.0, 0.0, False, []
    video = _DemoVideo(args.video, task, target, ckpt) if args.video else None
    try:
        for t in range(task.eval_steps):
            t1 = time.perf_counter()
            a = policy.act(o[None], np.array([reward]))[0]
            lat.append(1e3 * (time.perf_counter() - t1))
            if video is not None:
                video.add(t, env, policy.last_plan, path, ret, o)
            obs, reward, term, trunc, info = env.step(a)
            o = task.flatten_obs(obs)
            path.append(where(o))
            ret += reward
            success |= bool(info.get("success"))
            if term or trunc:
                break
        if video is not None:
            video.add(t + 1, env, None, path, ret, o)
    finally:
        if video is not None:
            video.finish(keep=sys.exc_info()[0] is None)
    env.close()
    from mage_core.policies import checkpoint_ref_scores

    ref = checkpoint_ref_scores(planner.ckpt_meta, task)
    res = EvalResult(task.name, [ret], [args.seed], [success], *(ref or (None, None)), task.eval_steps)
    path = None if path[0] is None else np.array(path)
    start = path[0] if floor else None
    goal = suite.goal_point(task, o) if floor else None
    render_plan_png(task, first, path, start, goal, args.png, start_obs=first.states_KHD[-1, 0])
    print(f"checkpoint {ckpt} ({task.name}, {len(planner.scales)} scales {planner.scales})")
    print(f"RTG target {target:g}; episode return {ret:.0f}" +
          (f" = {res.normalised_mean:.1f} normalised" if res.normalised_mean is not None else "") +
          (f"; reached goal: {'yes' if success else 'no'}" if suite.reports_success(task) else "")
          + f"; median plan+act {np.median(lat):.2f} ms")
    print(f"wrote {args.png} (per-scale first plan, coarse→fine colours, and the executed path)"
          + (f" and {args.video} ({video.writer.frames} frames)" if video is not None else "")
          + f" in {time.perf_counter() - t0:.1f}s")
    return 0


class _DemoVideo:
    """The demo's closed loop as a video: a captioned frame of the scene and the executed plan before every step."""

    def __init__(self, path, task, target: float, ckpt):
        from pathlib import Path

        from mage_core.cli.recording import FPS, EpisodeFrames
        from mage_core.video import VideoWriter

        self.task, self.target, self.name = task, target, Path(str(ckpt)).name
        self.frames = EpisodeFrames(task)
        self.writer = VideoWriter(path, FPS)

    def add(self, t: int, env, plan, path: list, ret: float, obs_D) -> None:
        """The frame of step t: the env's state, the plan whose first action is about to run (None at the end)."""
        suite = self.task.suite
        goal = suite.goal_point(self.task, obs_D) if self.frames.floor else None
        what = "plan per scale, coarse to fine; white: the path so far" if plan is not None else "episode end"
        caption = [f"MAGE closed loop · {self.task.name} · {self.name} · RTG target {self.target:g}",
                   f"step {t}/{self.task.eval_steps} · return so far {ret:,.1f} · {what}"]
        self.writer.append(self.frames.frame(caption, qpos=env.unwrapped.data.qpos, plan=plan, path=path, goal=goal))

    def finish(self, keep: bool = True) -> None:
        """Close the scene and the file (keep=False: an interrupted run leaves no partial video)."""
        self.frames.close()
        self.writer.close(keep=keep)


def _demo_pair(args, ckpt, t0: float) -> int:
    import torch

    from mage_core.progress import ProgressBar
    from mage_core.target_pair import write_target_pair

    torch.set_num_threads(1)
    bar = ProgressBar(1, label="low / high target pair")

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done)

    r = write_target_pair(ckpt, args.pair, low=args.low, high=args.high, seed=args.seed, progress=progress)
    bar.close()
    for run, which in zip(r["runs"], ("low", "high")):
        norm = "" if run["normalised"] is None else f" = {run['normalised']:.1f} normalised"
        print(f"{which:4s} target {run['target']:10.1f}: return {run['episode_return']:10.1f}{norm} "
              f"({run['steps']} steps)")
    print(f"wrote {r['gif']} ({r['frames']} frames) and {r['png']} in {time.perf_counter() - t0:.1f}s")
    return 0
