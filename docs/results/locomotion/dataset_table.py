"""The locomotion datasets made from the shipped policies, one row per env and variant: episodes, steps, returns
(raw and normalised with the dataset's own reference scores) and episode lengths, read from the local Minari store.

    python docs/results/locomotion/dataset_table.py hopper walker2d
"""
import json
import sys
from pathlib import Path

import minari
import numpy as np

from mage_core.tasks import get_task


def row(dataset_id: str) -> dict:
    """One dataset's numbers."""
    ds = minari.load_dataset(dataset_id)
    R = np.array([ep.rewards.sum() for ep in ds.iterate_episodes()])
    L = np.array([len(ep.rewards) for ep in ds.iterate_episodes()])
    lo, hi = ds.storage.metadata["ref_min_score"], ds.storage.metadata["ref_max_score"]
    norm = lambda x: float(100 * (x - lo) / (hi - lo))  # noqa: E731
    return {"dataset": dataset_id, "episodes": int(len(R)), "steps": int(L.sum()), "ref_scores": [lo, hi],
            "return_mean": float(R.mean()), "return_min": float(R.min()), "return_max": float(R.max()),
            "normalised_mean": norm(R.mean()), "normalised_max": norm(R.max()), "length_mean": float(L.mean())}


def main(envs: list[str]) -> None:
    out = Path(__file__).with_name("datasets.json")
    table = json.loads(out.read_text()) if out.is_file() else {"rows": {}}
    table["command"] = "python docs/results/locomotion/dataset_table.py " + " ".join(sorted(set(envs) | {
        k.split("/")[0] for k in table["rows"]}))
    table["made_with"] = "mage data make ENV --variant VARIANT (200k steps; the replay variants: the whole shipped log)"
    for env in envs:
        task = get_task(env)
        for v in task.suite.variants(task):  # what the shipped files make (full-replay where the tail is shipped)
            r = row(f"mage/{env}/{v}-v0")
            table["rows"][f"{env}/{v}"] = r
            print(f"{env} {v}: {r['episodes']} episodes, {r['steps']} steps, return {r['return_mean']:.0f} "
                  f"(normalised {r['normalised_mean']:.1f}, max {r['normalised_max']:.1f}), length {r['length_mean']:.0f}")
    out.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
