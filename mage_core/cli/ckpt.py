"""`mage ckpt info`: describe a checkpoint (config, task, dataset, spaces, versions, metrics)."""
from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("ckpt", help="inspect checkpoints",
                       description="Inspect checkpoint files written by `mage train` (MAGE or baselines).")
    csub = p.add_subparsers(dest="ckpt_command", metavar="ACTION", required=True)
    info = csub.add_parser("info", help="print a checkpoint's config, task, dataset, spaces, versions and metrics",
                           description="Load a checkpoint safely (weights_only) and print what it contains.")
    info.add_argument("file", help="checkpoint file (.pt)")
    info.add_argument("--json", action="store_true", help="print one JSON object")
    info.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    from mage_core.checkpoint import checkpoint_info

    info = checkpoint_info(args.file)
    if args.json:
        print(json.dumps(info, indent=2))
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
