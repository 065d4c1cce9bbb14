"""Experiment (issue 13): refit MAGE's action head on AntMaze in the ant's heading frame — the input the data's own
controller sees (proprioception without xy or heading) plus the decoded plan's torso xy at a few lookahead steps,
relative to the ant and rotated into its heading frame — on frozen latents; then score it with the paper's loop
(sample, act from the sampled latent, re-plan every step) on the umaze protocol.

usage: python docs/bench_scripts/antmaze_ego_head.py CKPT STEPS OUT.pt [LOOKAHEAD,...] [--source decoded|true]
  LOOKAHEAD: planned steps whose xy the head reads (default 4,8,16,32)
  --source: train on the decoded teacher latents (default, what the head sees at run time) or the data's true xy.
  --eval-only: load OUT.pt instead of training; --rtg R: the return target (default: the top of the data's range)
  --proprio STEPS: also read the plan's joint angles and joint velocities (heading-free already) at these steps."""
import sys, time, math, json
import numpy as np, torch, torch.nn as nn, torch.nn.functional as F
torch.set_num_threads(1)
from mage_core.checkpoint import load_checkpoint, build_model_from_checkpoint
from mage_core.config import MageConfig
from mage_core.data.segments import Normaliser
from mage_core.data.store import load_episodes
from mage_core.train import make_segment_dataset
from mage_core.planner import Planner
from mage_core.evaluate import evaluate
from mage_core.policies import checkpoint_ref_scores

args = [a for a in sys.argv[1:] if not a.startswith("--")]
source = "true" if "--source" in sys.argv and sys.argv[sys.argv.index("--source") + 1] == "true" else "decoded"
args = [a for a in args if a not in ("true", "decoded")]
proprio = []
if "--proprio" in sys.argv:
    proprio = [int(v) for v in sys.argv[sys.argv.index("--proprio") + 1].split(",")]
    args = [a for a in args if a != sys.argv[sys.argv.index("--proprio") + 1]]
path, steps, out = args[0], int(args[1]), args[2]
look = [int(v) for v in (args[3] if len(args) > 3 else "4,8,16,32").split(",")]


def ego_features(s_BD: torch.Tensor, xy_BL2: torch.Tensor) -> torch.Tensor:
    """Raw AntMaze obs (B, 31) + planned torso xy (B, L, 2) -> heading-frame features (B, 27 + 2 L + 2)."""
    q = s_BD[:, 1:5]
    w, x, y, z = q.unbind(1)
    yaw = torch.atan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z))
    c, s = torch.cos(yaw), torch.sin(yaw)
    hw, hz = torch.cos(-yaw / 2), torch.sin(-yaw / 2)  # half-turn quaternion (hw, 0, 0, hz) removing the heading
    ql = torch.stack([hw * w - hz * z, hw * x - hz * y, hw * y + hz * x, hw * z + hz * w], 1)
    ql = ql * torch.where(ql[:, :1] < 0, -1.0, 1.0)

    def rot(v_B2):  # world -> heading frame
        return torch.stack([c * v_B2[..., 0] + s * v_B2[..., 1], -s * v_B2[..., 0] + c * v_B2[..., 1]], -1)

    xy0 = s_BD[:, 27:29]
    vel = torch.cat([rot(s_BD[:, 13:15]), s_BD[:, 15:16]], 1)
    rel = xy_BL2 - xy0[:, None]
    c_, s_ = c[:, None], s[:, None]
    rel = torch.stack([c_ * rel[..., 0] + s_ * rel[..., 1], -s_ * rel[..., 0] + c_ * rel[..., 1]], -1)
    goal = rot(s_BD[:, 29:31] - xy0)
    return torch.cat([s_BD[:, 0:1], ql, s_BD[:, 5:13], vel, s_BD[:, 16:27], rel.flatten(1), goal], 1)


class EgoHead(nn.Module):
    """a_0 = g(ego(s0, D(z)[lookahead].xy)): same MLP width as the model's head, standardised inputs."""

    def __init__(self, look, norm: Normaliser, act_dim: int, hidden: int, proprio=()):
        super().__init__()
        self.n_xy = len(look)
        self.look = list(look) + list(proprio)
        d = 27 + 2 * len(look) + 2 + 16 * len(proprio)
        self.register_buffer("xm", torch.as_tensor(norm.x_mean_D))
        self.register_buffer("xs", torch.as_tensor(norm.x_std_D))
        self.register_buffer("fm", torch.zeros(d))
        self.register_buffer("fs", torch.ones(d))
        self.net = nn.Sequential(nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, act_dim))

    def feats(self, xplan_BLD, cond_BD):
        raw_c = cond_BD * self.xs + self.xm
        raw_p = xplan_BLD * self.xs + self.xm
        f = ego_features(raw_c[:, 1:], raw_p[:, :self.n_xy, 28:30])
        joints = torch.cat([raw_p[:, self.n_xy:, 6:14], raw_p[:, self.n_xy:, 20:28]], -1)  # x columns = 1 + s index
        return torch.cat([f, joints.flatten(1)], 1)

    def forward(self, fhat_BCT, cond_BD, decode=None):
        xp = decode(fhat_BCT, cond_BD)[:, self.look]
        return self.net((self.feats(xp, cond_BD) - self.fm) / self.fs)


ck = load_checkpoint(path)
model = build_model_from_checkpoint(ck).eval()
for p in model.parameters():
    p.requires_grad_(False)
task, eps, _ = load_episodes(ck["dataset"]["id"])
cfg = MageConfig.from_dict(ck["config"])
norm = Normaliser.from_state_dict(ck["normaliser"])
ds = make_segment_dataset(eps, task, cfg, norm)
head = EgoHead(look, norm, cfg.model.act_dim, cfg.model.inv_hidden, proprio)


def plan_rows(b):
    if source == "true":
        return b.x_BHD[:, head.look]
    with torch.no_grad():
        f = model.encode(model.segment_input(b)).fhat_cum_list[-1]
        return model.mtae.decode(f, b.x_BHD[:, 0])[:, head.look]


rtg = float(sys.argv[sys.argv.index("--rtg") + 1]) if "--rtg" in sys.argv else None
eval_only = "--eval-only" in sys.argv
if eval_only:
    steps = 0
rng = np.random.default_rng(0)
with torch.no_grad():  # input standardisation from one big batch
    b = ds.sample(4096, rng)
    f0 = head.feats(plan_rows(b), b.x_BHD[:, 0])
    head.fm.copy_(f0.mean(0)); head.fs.copy_(f0.std(0).clamp_min(1e-3))
opt = torch.optim.AdamW(head.net.parameters(), lr=1e-3, weight_decay=0.01)
sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * min(1.0, s / max(steps, 1)))))
t0 = time.time()
for i in range(steps):
    b = ds.sample(256, rng)
    cond = b.x_BHD[:, 0]
    xp = plan_rows(b)
    loss = F.mse_loss(head.net((head.feats(xp, cond) - head.fm) / head.fs), b.a_BA)
    opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    if i % 500 == 0:
        print(i, round(float(loss.detach()), 4), f"{time.time() - t0:.0f}s", flush=True)
train_s = time.time() - t0
head.eval()
b = ds.sample(2000, np.random.default_rng(1))
with torch.no_grad():
    cond = b.x_BHD[:, 0]
    f_t = model.encode(model.segment_input(b)).fhat_cum_list[-1]
    old = float(F.mse_loss(model.inv(f_t, cond, model.mtae.decode), b.a_BA))
    new = float(F.mse_loss(head(f_t, cond, model.mtae.decode), b.a_BA))
print(f"held-out action MSE (normalised, teacher latents): model head {old:.4f}, ego head {new:.4f}", flush=True)
if eval_only:
    head.load_state_dict(torch.load(out, weights_only=True)["state_dict"])
else:
    torch.save({"look": look, "source": source, "proprio": proprio, "state_dict": head.state_dict()}, out)
model.inv = head
pl = Planner(model, ds.normaliser, task, ck)
t1 = time.time()
res = evaluate(task, pl.policy(rtg if rtg is not None else pl.rtg_range[1], seed=0), episodes=10, seeds=(0,),
               ref_scores=checkpoint_ref_scores(ck, task), record=True)
n = res.normalise(res.returns)
from mage_core.suites.pointmaze import geometry
g = geometry(task)
for ep in res.extra["episodes"]:
    o, r = ep["obs_TD"], ep["rewards_T"]
    xy = o[:, 27:29]
    hit = np.flatnonzero(r > 0)
    print(json.dumps(dict(ret=float(r.sum()), first=int(hit[0]) if len(hit) else None,
                          end_cell=list(map(int, g.xy_to_cell(xy[-1]))),
                          end_goal_m=round(float(np.linalg.norm(xy[-1] - o[0, 29:31])), 2), min_goal_m=round(float(np.linalg.norm(xy - o[0, 29:31], axis=1).min()), 2),
                          path_m=round(float(np.linalg.norm(np.diff(xy, axis=0), axis=1).sum()), 1))))
print(f"RESULT ego head ({steps} steps, {train_s:.0f} s, look {look}, proprio {proprio}, source {source}, rtg {rtg}) on {path}: "
      f"success {float(np.mean(res.successes)):.0%}, {np.mean(n):.1f} ± {np.std(n, ddof=1) / np.sqrt(len(n)):.1f} "
      f"normalised, 10 episodes seed 0, eval {time.time() - t1:.0f} s")
