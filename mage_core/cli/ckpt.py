"""`mage ckpt info|card`: describe a checkpoint, and write its model card (training facts + measured score)."""
from __future__ import annotations

import json

from mage_core.cli.argtypes import seed_list
from mage_core.cli.output import add_json_option, write_json_output


def register(sub) -> None:
    p = sub.add_parser("ckpt", help="inspect checkpoints",
                       description="Inspect checkpoint files written by `mage train` (MAGE or baselines).")
    csub = p.add_subparsers(dest="ckpt_command", metavar="ACTION", required=True)
    info = csub.add_parser("info", help="print a checkpoint's config, task, dataset, spaces, versions and metrics",
                           description="Load a checkpoint safely (weights_only) and print what it contains.")
    info.add_argument("file", help="checkpoint file (.pt)")
    add_json_option(info, "write what it holds as one JSON object to FILE, or to stdout with - (a bare --json is -)",
                    optional_value=True)
    info.set_defaults(func=cmd_info)
    card = csub.add_parser("card", help="evaluate a checkpoint and write its card (<file>.card.md and .card.json)",
                           description="Scores the checkpoint on the evaluation protocol and writes a small card next to "
                           "it: the training command, data, steps, wall time, machine and score ± standard error.")
    card.add_argument("file", help="checkpoint file (.pt)")
    card.add_argument("--command", dest="train_command", required=True, help="the exact command that trained it")
    card.add_argument("--episodes", type=int, default=20, help="evaluation episodes per seed (default 20)")
    card.add_argument("--seeds", type=seed_list, default=[0],
                      help="evaluation seeds (default 0)")
    card.set_defaults(func=cmd_card)


def cmd_info(args) -> int:
    from mage_core.checkpoint import checkpoint_info

    info = checkpoint_info(args.file)
    if args.json_out:
        write_json_output(info, args.json_out)
        return 0
    ds = info.get("dataset") or {}
    sp = info.get("spaces") or {}
    prog = info["progress"]
    print(f"checkpoint   {args.file}")
    print(f"algo         {info['algo']}   (format v{info['format_version']}, {info['params']:,} parameters)")
    print(f"task         {info['task']}")
    if ds:
        rng = ds.get("rtg_range")
        print(f"dataset      {ds.get('id')}   {ds.get('episodes')} episodes, {ds.get('steps')} steps"
              + (f", RTG range [{rng[0]:g}, {rng[1]:g}]" if rng else ""))
    print(f"spaces       obs_dim={sp.get('obs_dim')} act_dim={sp.get('act_dim')} keys={sp.get('obs_keys')}"
          + (f" horizon={sp['horizon']} scales={sp.get('scales')}" if "horizon" in sp else ""))
    print(f"progress     stage {prog['stage']} step {prog['step']}" + ("  (complete)" if prog["done"] else
                                                                        "  (incomplete: resume with --resume)"))
    versions = info.get("versions") or {}
    print("versions     " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print("config")
    for group, fields in (info.get("config") or {}).items():
        if isinstance(fields, dict):
            print(f"  {group}: " + ", ".join(f"{k}={v}" for k, v in fields.items()))
        else:
            print(f"  {group}: {fields}")
    metrics = info.get("metrics") or {}
    if metrics:
        print("metrics")
        for name, m in metrics.items():
            if name == "last":
                continue
            print(f"  {name}: {json.dumps(m)}")
    return 0


def cmd_card(args) -> int:
    import torch

    from mage_core.bench import machine
    from mage_core.checkpoint import checkpoint_info, load_checkpoint
    from mage_core.evaluate import evaluate
    from mage_core.policies import checkpoint_ref_scores, load_policy
    from mage_core.progress import ProgressBar

    torch.set_num_threads(1)
    ckpt = load_checkpoint(args.file)
    info = checkpoint_info(ckpt)
    policy, task, meta = load_policy(ckpt, seed=0)
    ref = checkpoint_ref_scores(meta, task)
    bar = ProgressBar(args.episodes * len(args.seeds) * task.eval_steps, label=f"card eval {task.name}")
    res = evaluate(task, policy, episodes=args.episodes, seeds=args.seeds, ref_scores=ref,
                   progress=bar.update)
    bar.close()
    ts = ckpt.get("train_state") or {}
    card = dict(checkpoint=args.file, algo=info["algo"], task=task.name, command=args.train_command,
                dataset=info.get("dataset"), params=info["params"], steps=ckpt.get("config", {}).get("train"),
                train_wall_s=ts.get("wall_s"), versions=info.get("versions"), machine=machine(),
                eval=dict(episodes=res.n, seeds=args.seeds, rtg_target=getattr(policy, "target", None), mean=res.mean,
                          se=res.se, normalised_mean=res.normalised_mean, normalised_se=res.normalised_se,
                          success_rate=res.to_dict()["success_rate"],
                          regoal_steps=getattr(getattr(policy, "rtg", None), "regoal_cap", None),
                          reproduce=f"mage eval --checkpoint {args.file} --episodes {args.episodes} "
                                    f"--seeds {','.join(map(str, args.seeds))}"))
    md = write_card(args.file, card)
    print(md)
    return 0


def card_base(checkpoint: str) -> str:
    """CKPT.pt -> CKPT: the card is CKPT.card.json and CKPT.card.md, the sweep plot CKPT.sweep.png."""
    return checkpoint[:-3] if checkpoint.endswith(".pt") else checkpoint


def write_card(checkpoint: str, card: dict) -> str:
    """Write the card's JSON and markdown beside the checkpoint (each atomically); returns the markdown."""
    import os

    base = card_base(str(checkpoint))
    tr = card.get("steps") or {}
    ds = card.get("dataset") or {}
    ev = card["eval"]
    wall = f"{card['train_wall_s'] / 60:.1f} min" if card.get("train_wall_s") else "?"
    score = (f"{ev['normalised_mean']:.1f} ± {ev['normalised_se']:.1f} normalised" if ev.get("normalised_mean") is not None
             else f"{ev['mean']:.1f} ± {ev['se']:.1f} return")
    regoal = f" (outside the goal: at it within {ev['regoal_steps']} steps)" if ev.get("regoal_steps") else ""
    inv_batch = f" (L_inv: {tr['inv_batch_size']} in stage 2)" if tr.get("inv_batch_size") else ""
    success = "n/a" if ev.get("success_rate") is None else f"{100 * ev['success_rate']:.0f}%"
    m = card["machine"]
    rows = [("command", f"`{card.get('command')}`"),
            ("data", f"`{ds.get('id')}`: {ds.get('episodes')} episodes, {ds.get('steps')} steps (reference scores "
                     f"{ds.get('ref_scores')})"),
            ("steps", f"stage 1: {tr.get('stage1_steps')}, stage 2: {tr.get('stage2_steps')}, stage 3: "
                      f"{tr.get('stage3_steps')}, batch {tr.get('batch_size')}{inv_batch}"),
            ("parameters", f"{card['params']:,}"), ("wall time", wall),
            ("machine", f"{m['cpu']} ({m['cores']} cores), torch {m['torch']}"),
            ("evaluation", f"{score} (return {ev['mean']:.1f} ± {ev['se']:.1f}, success {success}), {ev['episodes']} "
                           f"episodes, seeds {ev['seeds']}, RTG target {ev['rtg_target']}{regoal}"),
            ("reproduce", f"`{ev['reproduce']}`")]
    sw = card.get("controllability")
    if sw:
        swept = "data's return range" if "--range data" in sw.get("command", "") else "feasible range"
        rho = "n/a" if sw.get("spearman") is None else f"{sw['spearman']:.2f}"
        rows.append(("controllability", f"{sw['verdict']}: achieved {sw['achieved_span']:+.0f} "
                     f"{'normalised points' if sw['normalised'] else 'return'} from the lowest to the highest of "
                     f"{len(sw['rows'])} targets over the {swept} (slope {sw['slope']:.2f}, Spearman {rho}; "
                     f"{sw['episodes']} episodes per target) — `{sw['command']}`, plot "
                     f"[{os.path.basename(base)}.sweep.png]({os.path.basename(base)}.sweep.png)"))
    md = f"# {card['task']} — {card['algo']} checkpoint\n\n| | |\n| --- | --- |\n"
    md += "".join(f"| {k} | {v} |\n" for k, v in rows)
    for suffix, text in ((".card.json", json.dumps(card, indent=2)), (".card.md", md)):
        tmp = base + suffix + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, base + suffix)
    return md
