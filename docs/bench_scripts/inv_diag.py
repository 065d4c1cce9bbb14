"""Diagnostic: MAGE's inverse-dynamics actions vs the data's and a BC checkpoint's on 2,000 dataset states.

usage: python docs/bench_scripts/inv_diag.py MAGE.pt BC.pt   (prints MSE and mean |a| per source)"""
import sys, numpy as np, torch
torch.set_num_threads(1)
from mage_core.checkpoint import load_checkpoint, build_model_from_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.train import make_segment_dataset
ck = load_checkpoint(sys.argv[1]); model = build_model_from_checkpoint(ck).eval()
task, eps, _ = load_episodes(ck["dataset"]["id"])
cfg = MageConfig.from_dict(ck["config"])
ds = make_segment_dataset(eps, task, cfg, Normaliser.from_state_dict(ck["normaliser"]))
rng = np.random.default_rng(1)
b = ds.sample(2000, rng)
with torch.no_grad():
    cond = b.x_BHD[:, 0]
    q = model.encode(b.x_BHD)
    a_t = model.inv(q.fhat_cum_list[-1], cond)
    s = model.sample(cond, generator=torch.Generator().manual_seed(0))
    a_s = model.inv(s.fhat_BCT, cond)
    s0 = model.sample(cond, temperature=0)
    a_g = model.inv(s0.fhat_BCT, cond)
a = b.a_BA
nz = ds.normaliser
def den(x): return np.clip(nz.denorm_a(x.numpy()), -1, 1)
A = den(a)
for name, x in [("teacher", a_t), ("sampled", a_s), ("greedy", a_g)]:
    X = den(x)
    print(f"{name:8s} mse {((X-A)**2).sum(1).mean():.3f} |a| {np.linalg.norm(X,axis=1).mean():.3f} (data {np.linalg.norm(A,axis=1).mean():.3f})")
from mage_core.policies import load_policy
bc, _, _ = load_policy(sys.argv[2], seed=0); bc.reset(len(A))
obs = nz.denorm_x(cond.numpy())[:, 1:]
X = bc.act(obs, np.zeros(len(A)))
print(f"BC       mse {((X-A)**2).sum(1).mean():.3f} |a| {np.linalg.norm(X,axis=1).mean():.3f}")
