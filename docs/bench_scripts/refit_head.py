"""Experiment helper (issues 13, 14): give a trained MAGE checkpoint a new plan-reading action head — optionally in a
suite's frame (ModelConfig.inv_frame, e.g. ant-heading) — fitted on the frozen model's decoded teacher latents of the
checkpoint's own data, and write the result as an ordinary checkpoint that `mage eval`, `mage demo` and the studio
open. The tokenizer and the transformer are copied unchanged; only the head is new.

usage: python docs/bench_scripts/refit_head.py CKPT OUT.pt --lookahead T1,T2,... [--frame NAME] [--steps N]
                                               [--batch B] [--seed S]"""
import argparse, time
import numpy as np, torch, torch.nn.functional as F

from mage_core.checkpoint import load_checkpoint, build_model_from_checkpoint, save_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.model.mage import MAGE
from mage_core.train import make_segment_dataset

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("ckpt"); ap.add_argument("out")
ap.add_argument("--lookahead", required=True, help="plan steps the head reads, e.g. 1,2,4,8,16,32")
ap.add_argument("--frame", default="", help="a suite's head frame, e.g. ant-heading ('' = normalised rows)")
ap.add_argument("--steps", type=int, default=4000); ap.add_argument("--batch", type=int, default=256)
ap.add_argument("--seed", type=int, default=0); ap.add_argument("--lr", type=float, default=1e-3)
a = ap.parse_args()
torch.set_num_threads(1)
torch.manual_seed(a.seed)

ck = load_checkpoint(a.ckpt)
old = build_model_from_checkpoint(ck)
cfg = MageConfig.from_dict(ck["config"])
cfg.model.inv_lookahead = tuple(int(v) for v in a.lookahead.split(","))
cfg.model.inv_frame = a.frame
model = MAGE(cfg.model)
missing = model.load_state_dict({k: v for k, v in old.state_dict().items() if not k.startswith("inv.")}, strict=False)
assert all(k.startswith("inv.") for k in missing.missing_keys), missing
model.eval()
for p in model.parameters():
    p.requires_grad_(False)
for p in model.inv.net.parameters():
    p.requires_grad_(True)
task, eps, _ = load_episodes(ck["dataset"]["id"])
norm = Normaliser.from_state_dict(ck["normaliser"])
ds = make_segment_dataset(eps, task, cfg, norm)
rng = np.random.default_rng(a.seed)
if model.inv.frame is not None:
    model.inv.fit_frame(norm.x_mean_D, norm.x_std_D, ds.sample(4096, np.random.default_rng(a.seed)).x_BHD)
opt = torch.optim.AdamW(model.inv.net.parameters(), lr=a.lr, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, s / a.steps))))
t0 = time.time()
for i in range(a.steps):
    b = ds.sample(a.batch, rng)
    with torch.no_grad():
        f = model.encode(model.segment_input(b)).fhat_cum_list[-1]
    loss = F.mse_loss(model.inv(f, b.x_BHD[:, 0], model.mtae.decode), b.a_BA)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if i % 500 == 0 or i == a.steps - 1:
        print(f"step {i} L_inv {float(loss.detach()):.4f} {time.time() - t0:.0f}s", flush=True)
wall = time.time() - t0
b = ds.sample(2000, np.random.default_rng(a.seed + 1))
with torch.no_grad():
    f = old.encode(old.segment_input(b)).fhat_cum_list[-1]
    before = float(F.mse_loss(old.inv(f, b.x_BHD[:, 0], old.mtae.decode), b.a_BA))
    after = float(F.mse_loss(model.inv(f, b.x_BHD[:, 0], model.mtae.decode), b.a_BA))
print(f"held-out L_inv on teacher latents: old head {before:.4f}, new head {after:.4f}")
out = dict(ck, config=cfg.to_dict(), state_dict=model.state_dict())
out["head_refit"] = dict(source=str(a.ckpt), lookahead=list(cfg.model.inv_lookahead), frame=a.frame, steps=a.steps,
                         batch=a.batch, seed=a.seed, wall_s=round(wall, 1), heldout_inv_before=before,
                         heldout_inv_after=after)
save_checkpoint(a.out, out)
print(f"wrote {a.out} ({wall:.0f} s of head training)")
