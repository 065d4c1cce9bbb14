"""Probe (issue 12): does a state-only policy on Adroit door lose because the door observation has no velocities?
Trains two BC policies the same way — on s_t alone, and on (s_t, s_t - s_{t-1}) (s_{-1} = s_0 at an episode start) —
with BC's small-preset network and schedule (3 x 256 GELU MLP, 6,000 steps of 256, AdamW 1e-3, cosine), and scores
both with the project's evaluator on the same episodes (evaluation seed = training seed, as `mage bench quality`).

usage: python docs/bench_scripts/bc_velocity_probe.py DATASET_ID [--seeds 0,1] [--episodes 10] [--out FILE.json]"""
import argparse, json, time
import numpy as np, torch
from torch import nn
from mage_core.data.store import load_episodes, reference_scores
from mage_core.evaluate import evaluate

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("dataset"); ap.add_argument("--seeds", default="0,1"); ap.add_argument("--episodes", type=int, default=10)
ap.add_argument("--steps", type=int, default=6000); ap.add_argument("--out", default="")
a = ap.parse_args()
torch.set_num_threads(1)
task, eps, meta = load_episodes(a.dataset)
ref = reference_scores(a.dataset, task)


def features(obs_TD: np.ndarray, with_vel: bool) -> np.ndarray:
    if not with_vel:
        return obs_TD
    prev_TD = np.concatenate([obs_TD[:1], obs_TD[:-1]])
    return np.concatenate([obs_TD, obs_TD - prev_TD], axis=1)


class VelBC:
    """Policy interface (mage_core.evaluate.Policy) around the MLP; keeps each env's previous observation."""

    def __init__(self, net, mu, sd, lo, hi, with_vel):
        self.net, self.mu, self.sd, self.lo, self.hi, self.with_vel = net, mu, sd, lo, hi, with_vel

    def reset(self, n):
        self.prev = None

    def act(self, obs_ND, reward_N):
        obs_ND = np.asarray(obs_ND, np.float32)
        prev = obs_ND if self.prev is None else self.prev
        self.prev = obs_ND.copy()
        x = np.concatenate([obs_ND, obs_ND - prev], 1) if self.with_vel else obs_ND
        with torch.no_grad():
            a = self.net(torch.as_tensor((x - self.mu) / self.sd, dtype=torch.float32)).numpy()
        return np.clip(a, self.lo, self.hi)


rows = []
for with_vel in (False, True):
    X = np.concatenate([features(e.obs_TD[: len(e.actions_TA)], with_vel) for e in eps]).astype(np.float32)
    A = np.concatenate([e.actions_TA for e in eps]).astype(np.float32)
    mu, sd = X.mean(0), X.std(0) + 1e-6
    Xn = torch.as_tensor((X - mu) / sd)
    At = torch.as_tensor(A)
    for seed in [int(s) for s in a.seeds.split(",")]:
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        d = X.shape[1]
        layers = []
        for _ in range(3):
            layers += [nn.Linear(d, 256), nn.GELU(), nn.Dropout(0.1)]
            d = 256
        net = nn.Sequential(*layers, nn.Linear(d, A.shape[1]))
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * s / a.steps))))
        t0 = time.time()
        for i in range(a.steps):
            idx = torch.as_tensor(rng.integers(0, len(Xn), 256))
            loss = ((net(Xn[idx]) - At[idx]) ** 2).mean()
            opt.zero_grad(); loss.backward(); opt.step(); sched.step()
        net.eval()
        train_s = time.time() - t0
        res = evaluate(task, VelBC(net, mu, sd, A.min(0), A.max(0), with_vel), episodes=a.episodes, seeds=(seed,),
                       ref_scores=ref)
        rows.append(dict(inputs="s_t, s_t - s_t-1" if with_vel else "s_t", seed=seed, normalised=res.normalised_mean,
                         normalised_se=res.normalised_se, success=float(np.mean(res.successes)),
                         returns=res.returns, train_s=round(train_s, 1), final_loss=float(loss)))
        print(rows[-1]["inputs"], seed, round(res.normalised_mean, 1), rows[-1]["success"], f"{train_s:.0f}s", flush=True)
for inp in ("s_t", "s_t, s_t - s_t-1"):
    r = [x for x in rows if x["inputs"] == inp]
    allret = np.concatenate([x["returns"] for x in r])
    n = 100 * (allret - ref[0]) / (ref[1] - ref[0])
    per_seed = ", ".join(f"{x['normalised']:.1f}" for x in r)
    print(f"{inp}: {n.mean():.1f} ± {n.std(ddof=1) / np.sqrt(len(n)):.1f} over {len(n)} episodes (per seed {per_seed})")
if a.out:
    json.dump(dict(command="python docs/bench_scripts/bc_velocity_probe.py " + a.dataset, dataset=a.dataset, rows=rows),
              open(a.out, "w"), indent=1)
