"""`mage data ...`: make, list, inspect and import offline datasets."""
from __future__ import annotations

import time

from mage_core.cli.output import add_json_option, write_json_output
from mage_core.errors import usage_errors
from mage_core.tasks import get_task, task_names


def register(sub) -> None:
    p = sub.add_parser("data", help="make, list, inspect and import datasets",
                       description="Offline datasets live in the local Minari store (MINARI_DATASETS_PATH or ~/.minari/datasets).")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    m = dsub.add_parser("make", help="generate a dataset for a built-in task with its suite's data protocol",
                        description="Roll out the task's data policy and write a Minari dataset with "
                        "ref_min_score/ref_max_score measured on the evaluation protocol. PointMaze: the noisy "
                        "waypoint expert (value-iteration waypoints, PD controller, waypoint jitter, N(0, 0.5) action "
                        "noise, a 40-step dwell at the goal). Adroit: the DAPG expert with its own noise (expert), the "
                        "expert through a per-episode lag so returns span random to expert (mixed), the human "
                        "demonstrations (human, door) or the D4RL cloned recipe (cloned, door). AntMaze: the "
                        "goal-reaching ant controller steered by maze waypoints (diverse, play; paced: a per-episode "
                        "gait speed, so equal routes arrive early or late). Kitchen: the scripted arm controller "
                        "(complete, partial, mixed). Locomotion: the SAC behaviour policies in assets/locomotion/ "
                        "(random, medium, medium-replay, medium-expert, expert).")
    m.add_argument("task", help=f"one of: {', '.join(t for t in task_names() if get_task(t).suite.has_generator)}")
    m.add_argument("--variant", default="", help="data variant (default: the task's first, e.g. expert; "
                   "see the error for a task's list)")
    m.add_argument("--steps", type=int, default=None, help="environment steps to record (default: the suite's, "
                   "1,000,000 for PointMaze)")
    m.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same dataset (default 0)")
    m.add_argument("--id", dest="dataset_id", help="dataset id (default: the task's default id)")
    m.add_argument("--force", action="store_true", help="replace an existing dataset with the same id")
    m.add_argument("--events", metavar="FILE|-", help="write JSON-lines progress events to FILE or stdout")
    m.set_defaults(func=cmd_make)

    ls = dsub.add_parser("list", help="list local datasets")
    add_json_option(ls, "write the list as JSON to FILE, or to stdout with - (a bare --json is -)", optional_value=True)
    ls.set_defaults(func=cmd_list)

    info = dsub.add_parser("info", help="describe a dataset: episodes, steps, spaces, returns")
    info.add_argument("dataset", help="dataset id or path")
    add_json_option(info, "write the description as JSON to FILE, or to stdout with - (a bare --json is -)",
                    optional_value=True)
    info.set_defaults(func=cmd_info)

    imp = dsub.add_parser("import-d4rl", help="import a D4RL-format HDF5 file as a Minari dataset",
                          description="Reads observations, actions, rewards, terminals, timeouts (and optional "
                          "infos/goal, next_observations) and writes a Minari dataset for the given task.")
    imp.add_argument("file", help="path to the .hdf5 file")
    imp.add_argument("--task", required=True, help=f"task whose environment the data belongs to: {', '.join(task_names())}")
    imp.add_argument("--id", dest="dataset_id", help="dataset id (default mage/<task>/d4rl-import-v0)")
    imp.add_argument("--force", action="store_true", help="replace an existing dataset with the same id")
    imp.set_defaults(func=cmd_import)


def cmd_make(args) -> int:
    from mage_core.data.generate import GenerateConfig, make_dataset
    from mage_core.progress import EventWriter, ProgressBar
    from mage_core.tasks import get_task

    from mage_core.data.generate import resolve_variant
    from mage_core.errors import UsageError

    with usage_errors():
        task = get_task(args.task)
        variant = resolve_variant(task, args.variant)
    if args.steps is not None and args.steps < 1:
        raise UsageError("--steps must be positive")
    steps = args.steps or task.suite.default_data_steps(task, variant)
    events = EventWriter(args.events)
    bar = ProgressBar(steps, label=f"generating {task.name} ({variant})", enabled=args.events != "-")
    events.emit("start", task=task.name, variant=variant, total=steps)
    t0 = time.perf_counter()

    def progress(done, total):
        bar.update(done)
        events.emit("progress", done=done, total=total)

    try:
        ds = make_dataset(task, GenerateConfig(steps=steps, seed=args.seed, variant=variant), dataset_id=args.dataset_id,
                          force=args.force, progress=progress)
    except Exception as exc:
        events.emit("error", message=str(exc))
        raise
    finally:
        bar.close()
    wall = time.perf_counter() - t0
    meta = ds.storage.metadata
    events.emit("done", dataset_id=ds.id, episodes=ds.total_episodes, steps=ds.total_steps, wall_s=wall)
    msg = (f"wrote {ds.id}: {ds.total_episodes} episodes, {ds.total_steps} steps in {wall:.1f}s; "
           f"ref_min_score={meta.get('ref_min_score'):.2f} ref_max_score={meta.get('ref_max_score'):.2f}")
    print(msg, file=__import__("sys").stderr if args.events == "-" else __import__("sys").stdout)
    return 0


def cmd_list(args) -> int:
    from mage_core.data.store import datasets_root, list_datasets

    rows = list_datasets()
    if args.json_out:
        write_json_output(rows, args.json_out)
        return 0
    if not rows:
        print(f"no datasets in {datasets_root()} — make one with `mage data make pointmaze-umaze`")
        return 0
    print(f"{'id':44s} {'task':18s} {'episodes':>9s} {'steps':>10s}")
    for r in rows:
        print(f"{r['id']:44s} {str(r['task'] or '-'):18s} {r['episodes']:>9} {r['steps']:>10}")
    return 0


def cmd_info(args) -> int:
    from mage_core.data.store import dataset_info

    info = dataset_info(args.dataset)
    if args.json_out:
        write_json_output(info, args.json_out)
        return 0
    el, er = info["episode_length"], info["episode_return"]
    success = ("n/a (no goal: an episode ends by a fall or the time limit)" if info["success_rate"] is None
               else f"{100 * info['success_rate']:.1f}% of episodes end at the goal")
    print(f"dataset   {info['id']}\npath      {info['path']}\ntask      {info['task']} ({info['env_id']})\n"
          f"episodes  {info['episodes']}\nsteps     {info['steps']}\nobs dim   {info['obs_dim']} (flattened)\n"
          f"act dim   {info['act_dim']}\nsuccess   {success}\n"
          f"length    mean {el['mean']:.1f}, min {el['min']}, max {el['max']}\n"
          f"return    mean {er['mean']:.2f}, min {er['min']:.2f}, max {er['max']:.2f}\n"
          f"ref score min {info['ref_min_score']}, max {info['ref_max_score']}")
    return 0


def cmd_import(args) -> int:
    from mage_core.data.store import import_d4rl
    from mage_core.tasks import get_task

    with usage_errors():
        task = get_task(args.task)
    ds = import_d4rl(args.file, task, dataset_id=args.dataset_id, force=args.force)
    print(f"wrote {ds.id}: {ds.total_episodes} episodes, {ds.total_steps} steps")
    return 0
