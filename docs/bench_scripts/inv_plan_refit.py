"""Experiment (issue 14): refit MAGE's inverse-dynamics head to read the decoded first planned steps instead of the raw
latent, a_0 = g(D(sum_k z_k, c)[lookahead steps], c), on frozen autoencoder latents of the data segments; then score
it with the paper's loop (sample, act, re-plan every step).

usage: python docs/bench_scripts/inv_plan_refit.py CKPT STEPS OUT.pt [LOOKAHEAD,...]
  LOOKAHEAD: planned steps the head reads (default 1,2,4,8,12,16,24; each step gives its whole (R, s) row)."""
import sys, time
import numpy as np, torch, torch.nn.functional as F
torch.set_num_threads(1)
from mage_core.checkpoint import load_checkpoint, build_model_from_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.train import make_segment_dataset
from mage_core.planner import Planner
from mage_core.evaluate import evaluate
from mage_core.policies import checkpoint_ref_scores

path, steps, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
look = [int(v) for v in (sys.argv[4] if len(sys.argv) > 4 else "1,2,4,8,12,16,24").split(",")]
ck = load_checkpoint(path)
model = build_model_from_checkpoint(ck).eval()
for p in model.parameters():
    p.requires_grad_(False)
look = [l for l in look if l < model.horizon]
task, eps, _ = load_episodes(ck["dataset"]["id"])
cfg = MageConfig.from_dict(ck["config"])
ds = make_segment_dataset(eps, task, cfg, Normaliser.from_state_dict(ck["normaliser"]))


from mage_core.model.mage import InverseDynamics

# the model's own plan-reading head (ModelConfig.inv_lookahead), fitted here on frozen latents
inv = InverseDynamics(cfg.model.latent_dim, model.T, model.cond_dim, cfg.model.act_dim, cfg.model.inv_hidden, tuple(look),
                      model.x_dim)
opt = torch.optim.AdamW(inv.net.parameters(), lr=1e-3, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, s / steps))))
rng = np.random.default_rng(0)
t0 = time.time()
for i in range(steps):
    b = ds.sample(256, rng)
    cond = b.x_BHD[:, 0]
    with torch.no_grad():
        f = model.encode(model.segment_input(b)).fhat_cum_list[-1]
    loss = F.mse_loss(inv(f, cond, model.mtae.decode), b.a_BA)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if i % 250 == 0:
        print(i, round(float(loss), 4), f"{time.time() - t0:.0f}s", flush=True)
train_s = time.time() - t0
inv.eval()
b = ds.sample(2000, np.random.default_rng(1))
with torch.no_grad():
    cond = b.x_BHD[:, 0]
    f_t = model.encode(model.segment_input(b)).fhat_cum_list[-1]
    old = float(F.mse_loss(model.inv(f_t, cond), b.a_BA))
    model.inv = inv
    new = float(F.mse_loss(inv(f_t, cond, model.mtae.decode), b.a_BA))
print(f"held-out action MSE (normalised, teacher latents): latent head {old:.4f}, plan-reading head {new:.4f}")
torch.save({"look": look, "state_dict": inv.state_dict()}, out)
pl = Planner(model, ds.normaliser, task, ck)
t1 = time.time()
res = evaluate(task, pl.policy(pl.rtg_range[1], seed=0), episodes=10, seeds=(0, 1),
               ref_scores=checkpoint_ref_scores(ck, task))
n = res.normalise(res.returns)
print(f"RESULT plan-reading head ({steps} steps, {train_s:.0f} s, look {look}) on {path}: "
      f"{np.mean(n):.1f} ± {np.std(n, ddof=1) / np.sqrt(len(n)):.1f} normalised, success {float(np.mean(res.successes)):.0%}, "
      f"20 episodes, eval {time.time() - t1:.0f} s")
