"""Waypoint success of a controller npz in the three mazes (the data recipe) and the noise-free expert on the umaze
evaluation protocol (continuing task, 700 steps, 20 episodes at the reference-score seed)."""
import json, sys, time
import numpy as np
from mage_core.suites.antmaze import SUITE
from mage_core.data.generate import GenerateConfig
from mage_core.evaluate import evaluate
SUITE.controller_path = sys.argv[1]
out = {"controller": sys.argv[1], "mazes": {}}
t0 = time.time()
tot_p = tot_a = tot_f = 0
for size in ("umaze", "medium", "large"):
    SUITE.collect_buffers(SUITE.task(size), GenerateConfig(steps=6000, seed=7))
    s = SUITE.last_stats
    out["mazes"][size] = s
    tot_p += s["waypoints_passed"]; tot_a += s["waypoints_abandoned"]; tot_f += s["flips"]
out["waypoints"] = {"passed": tot_p, "abandoned": tot_a, "success": tot_p / (tot_p + tot_a), "flips": tot_f, "steps": 18000}
task = SUITE.task("umaze")
res = evaluate(task, SUITE.expert_policy(task), episodes=20, seeds=(10_000,))
out["expert_umaze_eval"] = {"success_rate": float(np.mean(res.successes)), "mean_return": res.mean, "se": res.se, "episodes": 20}
out["wall_s"] = round(time.time() - t0, 1)
print(json.dumps(out))
