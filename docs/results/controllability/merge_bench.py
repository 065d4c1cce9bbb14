"""Fold `mage bench controllability` outputs into bundled.json: each row replaces its task's entry (feasible-range
runs into `results`, data-range runs into `results_data_range`) and its command is listed once.

    python docs/results/controllability/merge_bench.py BENCH.json [BENCH.json ...]
"""
import json
import sys
from pathlib import Path

TABLE = Path(__file__).with_name("bundled.json")
KEEP = ("spearman", "achieved_span", "achieved_range", "swept_span", "slope", "verdict", "achieved", "episodes",
        "command", "checkpoint")


def entry(row: dict) -> dict:
    """One bench row in the table's form: the sweep's numbers, its targets and raw returns with their s.e."""
    out = {k: row[k] for k in KEEP if k in row}
    out["targets"] = [r["target"] for r in row["rows"]]
    out["achieved_raw"] = [r["mean"] for r in row["rows"]]
    out["achieved_se_raw"] = [r["se"] for r in row["rows"]]
    return out


def main(paths: list[str]) -> None:
    table = json.loads(TABLE.read_text())
    for p in paths:
        bench = json.loads(Path(p).read_text())
        key = "results" if bench["range"] == "feasible" else "results_data_range"
        for row in bench["rows"]:
            table.setdefault(key, {})[row["task"]] = {"mage": entry(row)}
            cmd = f"mage bench controllability {row['checkpoint']}" + (" --cards" if key == "results" else
                                                                      f" --range {bench['range']}")
            if key == "results" and cmd not in table["command"]:
                table["command"] = [c for c in table["command"] if row["checkpoint"] not in c.split()] + [cmd]
    TABLE.write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
