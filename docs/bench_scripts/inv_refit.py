"""Ablation: refit only the inverse-dynamics head of a MAGE checkpoint on frozen latents, then score it.

usage: python docs/bench_scripts/inv_refit.py CKPT new|old STEPS NPOS teacher|sampled [mse|l1] [EVAL_SEEDS] [EPISODES]
  new = a fresh head, old = fine-tune the checkpoint's own head. NPOS = leading latent positions the new head reads
  (the whole latent = T); "teacher" = autoencoder latents of the data segments, "sampled" = latents the transformer
  samples for the segment's condition. Loss: mse (the paper's L_inv, default) or l1 (the median action). EPISODES
  (default 10) evaluation episodes per seed of EVAL_SEEDS (default 0)."""
import sys, time, numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
from mage_core.checkpoint import load_checkpoint, build_model_from_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.train import make_segment_dataset
from mage_core.planner import Planner
from mage_core.evaluate import evaluate
from mage_core.policies import checkpoint_ref_scores
path, variant, steps, npos, src = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
loss_name = sys.argv[6] if len(sys.argv) > 6 else "mse"
eval_seeds = tuple(int(x) for x in (sys.argv[7] if len(sys.argv) > 7 else "0").split(","))
n_episodes = int(sys.argv[8]) if len(sys.argv) > 8 else 10
loss_fn = {"mse": F.mse_loss, "l1": F.l1_loss}[loss_name]
ck = load_checkpoint(path); model = build_model_from_checkpoint(ck).eval()
task, eps, _ = load_episodes(ck["dataset"]["id"])
cfg = MageConfig.from_dict(ck["config"])
ds = make_segment_dataset(eps, task, cfg, Normaliser.from_state_dict(ck["normaliser"]))
C, T = cfg.model.latent_dim, model.T
class Inv(nn.Module):
    def __init__(s, npos, hidden=256):
        super().__init__(); s.npos = npos
        s.net = nn.Sequential(nn.Linear(C * npos + model.cond_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, cfg.model.act_dim))
    def forward(s, f, c, decode=None): return s.net(torch.cat([f[:, :, :s.npos].flatten(1), c], 1))
if variant == "new":
    inv = Inv(npos)
else:
    inv = model.inv
opt = torch.optim.AdamW(inv.parameters(), lr=1e-3 if variant == "new" else 3e-4, weight_decay=0.01)
rng = np.random.default_rng(0)
t0 = time.time()
for i in range(steps):
    b = ds.sample(256, rng)
    with torch.no_grad():
        cond = b.x_BHD[:, 0]
        if src == "teacher":
            f = model.encode(b.x_BHD).fhat_cum_list[-1]
        else:
            f = model.sample(cond).fhat_BCT
    loss = loss_fn(inv(f, cond), b.a_BA)
    opt.zero_grad(); loss.backward(); opt.step()
    for g in opt.param_groups: g["lr"] = g["lr"] if i < steps * 0.7 else g["lr"] * 0.995
    if i % 500 == 0: print(i, float(loss), f"{time.time()-t0:.0f}s", flush=True)
model.inv = inv.eval()
b = ds.sample(2000, np.random.default_rng(1))
with torch.no_grad():
    cond = b.x_BHD[:, 0]
    for name, f in [("teacher", model.encode(b.x_BHD).fhat_cum_list[-1]), ("sampled", model.sample(cond).fhat_BCT)]:
        print(name, "mse(norm)", float(F.mse_loss(inv(f, cond), b.a_BA)), "l1(norm)", float(F.l1_loss(inv(f, cond), b.a_BA)))
pl = Planner(model, ds.normaliser, task, ck)
pol = pl.policy(pl.rtg_range[1], seed=0)
res = evaluate(task, pol, episodes=n_episodes, seeds=eval_seeds, ref_scores=checkpoint_ref_scores(ck, task))
n = res.normalise(res.returns)
print(f"RESULT {variant} steps={steps} npos={npos} src={src} loss={loss_name} seeds={eval_seeds}: "
      f"{np.mean(n):.1f} ± {np.std(n, ddof=1)/np.sqrt(len(n)):.1f}, success {np.mean(res.successes):.2f}")
