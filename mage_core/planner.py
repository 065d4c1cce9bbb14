"""The MAGE planner: a checkpoint becomes per-scale plans, actions and a closed-loop policy with RTG bookkeeping."""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from mage_core.checkpoint import load_checkpoint
from mage_core.data.segments import Normaliser
from mage_core.device import resolve_device
from mage_core.errors import MageError
from mage_core.factory import build_model_from_checkpoint
from mage_core.model.ceiling import load_return_ceiling
from mage_core.rtg import RTGTracker, clamp_rtg
from mage_core.task_spec import task_from_checkpoint
from mage_core.tasks import Task, flatten_obs


@dataclass
class SamplingConfig:
    """How token maps are sampled when planning."""

    temperature: float = 1.0  # softmax temperature; <= 0 means greedy (argmax) tokens
    top_k: int = 0  # keep only the k most likely tokens (0 = all)
    top_p: float = 1.0  # nucleus sampling mass (1 = off)
    cfg_scale: float = 1.0  # classifier-free guidance scale (1 = plain conditional sampling)


@dataclass
class Plan:
    """One plan: token maps and decoded trajectories per scale, the action to execute, timings."""

    tokens: list  # K arrays; tokens[k] has shape (p_k,)
    states_KHD: np.ndarray  # (K, H, obs_dim) trajectory decoded from the cumulative latent after scale k, env units
    rtg_KH: np.ndarray  # (K, H) decoded RTG channel per scale, env units
    action_A: np.ndarray  # the action to execute (env units): I(sum_k z_k)
    scales: tuple  # (p_1, ..., p_K)
    condition_rtg: float  # the (window-equivalent) RTG the model was conditioned on
    timings_ms: dict = field(default_factory=dict)  # "sample", "decode", "total"
    rtg_ceiling: float | None = None  # the highest RTG the data supports from this state (None: no ceiling model)
    requested_rtg: float | None = None  # the target asked for, before the data's range and the ceiling limited it
    held_scales: int = 0  # scales 1..held_scales were given (prefix_tokens), not sampled; only the finer ones were
    prefix_logprob: float | None = None  # log-probability of scales 1..held_scales' tokens under the model (natural log)

    @property
    def clamped(self) -> bool:
        """Whether the condition differs from the requested target (outside the data's range or above the ceiling)."""
        return self.requested_rtg is not None and abs(self.requested_rtg - self.condition_rtg) > 1e-6


def rtg_target_of(v) -> float:
    return float(v)


ALTERNATIVE_CANDIDATES = 8  # Planner.alternatives samples this many coarse plans per alternative asked for ...
MIN_ALTERNATIVE_CANDIDATES = 32  # ... and never fewer, then keeps the most likely distinct ones
HOLD_RELEASE_RATIO = 100.0  # a closed loop releases a held coarse plan once one of its tokens has become this many
# times less likely than the model's own choice for that position (the world no longer agrees with the held route)


class Planner:
    """Plans with a trained MAGE checkpoint. Build with Planner.from_checkpoint(path)."""

    def __init__(self, model, normaliser: Normaliser, task: Task, ckpt: dict | None = None, device="cpu",
                 sampling: SamplingConfig | None = None):
        self.model = model.eval().to(device)
        self.normaliser = normaliser
        self.task = task
        self.ckpt_meta = {k: v for k, v in (ckpt or {}).items() if k not in ("state_dict", "train_state")}
        self.device = torch.device(device)
        self.sampling = sampling or SamplingConfig()
        self.horizon = model.horizon
        self.scales = tuple(int(p) for p in model.scales)
        self.codebook_size = int(model.cfg.codebook_size)  # V: token ids are in [0, V)
        spaces = (ckpt or {}).get("spaces", {})
        self.obs_dim = int(spaces.get("obs_dim", model.cfg.obs_dim))
        self.act_dim = int(spaces.get("act_dim", model.cfg.act_dim))
        rng = (ckpt or {}).get("dataset", {}).get("rtg_range")
        self.rtg_range = (float(rng[0]), float(rng[1])) if rng else (0.0, float(task.eval_steps))
        self.model_actions = bool(getattr(model.cfg, "model_actions", False))
        self.limit_to_ceiling = True  # plan() conditions on min(rtg, ceiling(s)) when a ceiling model exists
        self.ceiling = None  # ReturnCeiling: highest RTG the data supports from a state (keeps conditions feasible)
        if (ckpt or {}).get("ceiling"):
            self.ceiling = load_return_ceiling(ckpt["ceiling"]).to(device)

    @classmethod
    def from_checkpoint(cls, path_or_ckpt, device: str = "cpu", sampling: SamplingConfig | None = None) -> "Planner":
        ckpt = load_checkpoint(path_or_ckpt) if not isinstance(path_or_ckpt, dict) else path_or_ckpt
        if ckpt.get("algo", "mage") != "mage":
            raise MageError(f"this is a {ckpt.get('algo')} checkpoint, not a MAGE one; use it with `mage eval`")
        dev = resolve_device(device)
        model = build_model_from_checkpoint(ckpt)
        return cls(model, Normaliser.from_state_dict(ckpt["normaliser"]), task_from_checkpoint(ckpt), ckpt, dev, sampling)

    # ---- inputs ------------------------------------------------------------------------------------------------
    def _obs(self, obs) -> np.ndarray:
        flat = flatten_obs(obs, self.task.obs_keys) if isinstance(obs, dict) else np.asarray(obs, np.float32)
        if flat.shape[-1] != self.obs_dim:
            raise MageError(f"observation has {flat.shape[-1]} dims but the checkpoint expects {self.obs_dim}")
        if not np.all(np.isfinite(flat)):
            raise MageError("observation contains NaN or inf values")
        return flat.astype(np.float32)

    def clamp_rtg(self, rtg: float) -> float:
        """RTG targets outside the data's range are clamped to it (the model never saw them); Plan.clamped and
        Plan.requested_rtg tell the caller, who decides whether to say so."""
        try:
            rtg = float(rtg)
        except (TypeError, ValueError):
            raise MageError(f"RTG target must be a number, got {rtg!r}") from None
        if not np.isfinite(rtg):
            raise MageError(f"RTG target must be a finite number, got {rtg}")
        return float(np.clip(rtg, *self.rtg_range))

    def rtg_ceiling(self, obs_ND: np.ndarray) -> np.ndarray | None:
        """Per observation, the highest RTG the training data supports from that state (env units), or None."""
        if self.ceiling is None:
            return None
        x_ND = np.concatenate([np.zeros((len(obs_ND), 1), np.float32), obs_ND], axis=1)
        s_ND = torch.as_tensor(self.normaliser.norm_x(x_ND)[:, 1:], dtype=torch.float32, device=self.device)
        with torch.inference_mode():
            r_N = self.ceiling(s_ND).float().cpu().numpy()
        hi = r_N * self.normaliser.x_std_D[0] + self.normaliser.x_mean_D[0]
        return np.clip(hi, *self.rtg_range)

    def feasible(self, obs_ND: np.ndarray, rtg_N: np.ndarray) -> np.ndarray:
        """RTG conditions limited to the data's range and to the return ceiling of each state."""
        return clamp_rtg(rtg_N, *self.rtg_range, self.rtg_ceiling(obs_ND))

    def _cond(self, obs_ND: np.ndarray, rtg_N: np.ndarray) -> torch.Tensor:
        x_ND = np.concatenate([np.asarray(rtg_N, np.float32)[:, None], obs_ND], axis=1)
        return torch.as_tensor(self.normaliser.norm_x(x_ND), dtype=torch.float32, device=self.device)

    def _generator(self, seed):
        if seed is None:
            return None
        return torch.Generator(device=self.device).manual_seed(int(seed))

    # ---- planning ----------------------------------------------------------------------------------------------
    def plan(self, obs, rtg: float, *, seed=None, decode: bool = True, prefix_tokens=None) -> Plan:
        """Plan from one observation with RTG target `rtg`: token maps, per-scale decoded trajectories, action.

        prefix_tokens: the token maps of scales 1..k (k arrays of shapes (p_1,), ..., (p_k,)) to hold: the
        transformer reads them into its KV cache and samples only scales k+1..K, so the finer plan is generated under
        that coarse plan (Plan.held_scales = k; Plan.prefix_logprob says how likely the model finds them here)."""
        t0 = time.perf_counter()
        obs_D, cond_BD, rtg, ceiling, requested = self._condition(obs, rtg)
        gen = self._generator(seed)
        if prefix_tokens is None or len(prefix_tokens) == 0:
            s = self.sampling
            out = self.model.sample(cond_BD, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                                    cfg_scale=s.cfg_scale, generator=gen)
            held, logp = 0, None
        else:
            prefix = [torch.as_tensor(t, device=self.device)[None] for t in self.check_prefix(prefix_tokens)]
            out, logp_B, _ = self.sample_scales(cond_BD, prefix=prefix, generator=gen)
            held, logp = len(prefix), float(logp_B[0])
        a_BA = self.model.inverse_dynamics(out.fhat_BCT, cond_BD)
        action = np.clip(self.normaliser.denorm_a(a_BA.float().cpu().numpy())[0], -1.0, 1.0)
        plan = self._make_plan(out, cond_BD, action, rtg, ceiling, requested, t0, decode)
        plan.held_scales, plan.prefix_logprob = held, logp
        return plan

    def _condition(self, obs, rtg) -> tuple:
        """(obs_D, cond_1D, conditioning RTG, ceiling or None, requested target) for one observation and target:
        the target limited to the data's range and, with a ceiling model, to what the data supports from there."""
        obs_D = self._obs(obs)
        rtg_in = rtg
        rtg = self.clamp_rtg(rtg)  # validates: a number, finite
        requested = float(rtg_target_of(rtg_in))
        hi = self.rtg_ceiling(obs_D[None])
        ceiling = None if hi is None else float(hi[0])
        if ceiling is not None and self.limit_to_ceiling:
            rtg = min(rtg, ceiling)
        return obs_D, self._cond(obs_D[None], np.array([rtg])), rtg, ceiling, requested

    def check_prefix(self, prefix_tokens) -> list[np.ndarray]:
        """The token maps of scales 1..k as int64 arrays, or a MageError naming what is wrong with them."""
        try:
            maps = [np.asarray(t) for t in prefix_tokens]
        except TypeError:
            raise MageError("prefix tokens are a list of token maps, one per coarse scale") from None
        K = len(self.scales)
        if len(maps) > K:
            raise MageError(f"{len(maps)} prefix token maps given, but the checkpoint has only {K} scales")
        for k, t in enumerate(maps):
            if t.shape != (self.scales[k],):
                raise MageError(f"scale {k + 1} has {self.scales[k]} token(s); the prefix gives shape {t.shape}")
            if not np.issubdtype(t.dtype, np.integer) or t.min() < 0 or t.max() >= self.codebook_size:
                raise MageError(f"scale {k + 1}'s prefix tokens must be whole numbers in [0, {self.codebook_size})")
        return [t.astype(np.int64) for t in maps]

    @torch.no_grad()
    def sample_scales(self, cond_BD: torch.Tensor, prefix: list | None = None, stop: int | None = None,
                      generator: torch.Generator | None = None, hold_B: torch.Tensor | None = None,
                      release_gap: float | None = None):
        """Token maps coarse to fine, one transformer step per scale with the KV cache (as MAGE.sample), where the
        first len(prefix) scales take the given token maps ((1 or B, p_k) LongTensors) instead of sampling, and
        sampling stops after `stop` scales (default all). hold_B (bool, optional): only these rows take the prefix,
        the others sample every scale. release_gap: a row whose held token is more than this (natural log) less
        likely than the model's own choice for its position stops holding from that scale on and samples.
        Returns (SampleOut, logp_B, held_B): the log-probability of each row's tokens of the prefixed scales (of
        every sampled scale when there is no prefix), and which rows kept the whole prefix."""
        from mage_core.model.mage import SampleOut
        from mage_core.model.transformer import sample_tokens

        tr, q, s = self.model.transformer, self.model.mtae.quantiser, self.sampling
        prefix = list(prefix or [])
        B = cond_BD.shape[0]
        guided = s.cfg_scale != 1.0
        c_Bd = tr.embed_condition(cond_BD)
        if guided:
            c_Bd = torch.cat([c_Bd, tr.null_condition(B).to(c_Bd.dtype)])
        state = tr.prepare_sampling(c_Bd)
        embed_w = q.sampling_weights()
        fhat_BCT, idx_list, cum_list = None, [], []
        logp_B = torch.zeros(B, device=cond_BD.device)
        held_B = torch.ones(B, dtype=torch.bool, device=cond_BD.device) if hold_B is None else hold_B.clone()
        scored = len(prefix) or len(self.scales)
        for k in range(len(self.scales) if stop is None else int(stop)):
            prev = None if fhat_BCT is None else (torch.cat([fhat_BCT, fhat_BCT]) if guided else fhat_BCT)
            logits = tr.step(k, c_Bd, prev, state)
            if guided:
                logits = logits[B:] + s.cfg_scale * (logits[:B] - logits[B:])
            lp_BpV = torch.log_softmax(logits.float(), dim=-1) if k < scored else None
            if k < len(prefix):
                given_Bp = prefix[k].to(cond_BD.device).expand(B, -1)
                if release_gap is not None:  # the model's own choice vs the held token, its worst position
                    gap_B = (lp_BpV.max(-1).values - lp_BpV.gather(-1, given_Bp[..., None]).squeeze(-1)).max(-1).values
                    held_B &= gap_B <= release_gap
                idx_Bp = given_Bp
                if not bool(held_B.all()):
                    idx_Bp = torch.where(held_B[:, None], given_Bp,
                                         sample_tokens(logits, s.temperature, s.top_k, s.top_p, generator))
            else:
                idx_Bp = sample_tokens(logits, s.temperature, s.top_k, s.top_p, generator)
            if lp_BpV is not None:
                logp_B += lp_BpV.gather(-1, idx_Bp[..., None]).squeeze(-1).sum(-1)
            z_BCT = q.embed_idx_fast(k, idx_Bp, embed_w)
            fhat_BCT = z_BCT if fhat_BCT is None else fhat_BCT + z_BCT
            idx_list.append(idx_Bp)
            cum_list.append(fhat_BCT)
        return SampleOut(idx_list, cum_list), logp_B, held_B

    def alternatives(self, obs, rtg: float, scale: int, n: int = 4, *, seed=None,
                     candidates: int | None = None) -> list[Plan]:
        """Up to n plans whose coarse scales 1..scale differ, most likely first: `candidates` coarse plans (default
        max(32, 8 n)) are sampled to scale `scale` in one batch, the distinct token maps of scales 1..scale are
        ranked by their log-probability under the model, and each of the n best is completed to the finest scale by
        plan(obs, rtg, seed=seed, prefix_tokens=...) — so adopting alternative i (holding its coarse tokens with the
        same seed) reproduces it exactly. Fewer than n come back when the model proposes fewer distinct ones."""
        K = len(self.scales)
        if isinstance(scale, bool) or not isinstance(scale, (int, np.integer)) or not 1 <= scale <= K:
            raise MageError(f"the alternatives' scale is a whole number from 1 to {K}, got {scale!r}")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise MageError(f"the number of alternatives is a whole number of 1 or more, got {n!r}")
        m = int(candidates or max(MIN_ALTERNATIVE_CANDIDATES, ALTERNATIVE_CANDIDATES * int(n)))
        _, cond_BD, *_ = self._condition(obs, rtg)
        with torch.inference_mode():
            out, logp_B, _ = self.sample_scales(cond_BD.expand(m, -1), stop=int(scale), generator=self._generator(seed))
        maps_MP = torch.cat(out.idx_list[:scale], dim=1).cpu().numpy()  # the coarse token maps side by side
        logp = logp_B.cpu().numpy()
        best: dict = {}
        for i in np.argsort(-logp, kind="stable"):
            best.setdefault(maps_MP[i].tobytes(), i)
        rows = sorted(best.values(), key=lambda i: -logp[i])[: int(n)]
        with torch.inference_mode():
            return [self.plan(obs, rtg, seed=seed, prefix_tokens=[out.idx_list[j][i].cpu().numpy()
                                                                  for j in range(scale)]) for i in rows]

    def _make_plan(self, out, cond_BD, action, rtg, ceiling, requested, t0, decode=True, row: int = 0) -> Plan:
        """A Plan from one row of a sample: its token maps and the trajectory decoded after each scale."""
        t1 = time.perf_counter()
        K, H = len(self.scales), self.horizon
        states, rtgs = np.zeros((K, H, self.obs_dim), np.float32), np.zeros((K, H), np.float32)
        if decode:
            fhat_KCT = torch.cat([f[row:row + 1] for f in out.fhat_cum_list])  # all scales decoded in one batch
            cond_KD = cond_BD[row:row + 1].expand(K, -1)
            x_KHD = self.normaliser.denorm_x(self.model.decode(fhat_KCT, cond_KD)[..., : 1 + self.obs_dim])
            x_KHD = x_KHD.float().cpu().numpy()
            rtgs, states = x_KHD[..., 0], x_KHD[..., 1:]
        t2 = time.perf_counter()
        return Plan(tokens=[i[row].cpu().numpy() for i in out.idx_list], states_KHD=states, rtg_KH=rtgs,
                    action_A=np.asarray(action, np.float32), scales=self.scales, condition_rtg=float(rtg),
                    timings_ms=dict(sample=1e3 * (t1 - t0), decode=1e3 * (t2 - t1), total=1e3 * (t2 - t0)),
                    rtg_ceiling=ceiling, requested_rtg=requested)

    def act_batch(self, obs_ND: np.ndarray, rtg_N: np.ndarray, generator=None, return_fhat: bool = False,
                  return_sample: bool = False):
        """Fast path: actions (N, act_dim) for N observations and (already clamped) conditioning RTGs."""
        cond_BD = self._cond(obs_ND, rtg_N)
        s = self.sampling
        out = self.model.sample(cond_BD, temperature=s.temperature, top_k=s.top_k, top_p=s.top_p,
                                cfg_scale=s.cfg_scale, generator=generator)
        a_BA = self.model.inverse_dynamics(out.fhat_BCT, cond_BD)
        act = np.clip(self.normaliser.denorm_a(a_BA.float().cpu().numpy()), -1.0, 1.0).astype(np.float32)
        if return_sample:
            return act, out, cond_BD
        if return_fhat:
            return act, out.fhat_BCT, cond_BD
        return act

    def policy(self, rtg_target: float, replan_every: int = 1, seed=None, executor: str = "inverse",
               keep_plan: bool = False, regoal_steps: int | None = None, prefix_tokens=None,
               hold_steps: int | None = None) -> "PlannerPolicy":
        return PlannerPolicy(self, rtg_target, replan_every, seed, executor=executor, keep_plan=keep_plan,
                             regoal_steps=regoal_steps, prefix_tokens=prefix_tokens, hold_steps=hold_steps)


EXECUTORS = ("inverse", "track")  # how a plan becomes an action: I(sum z), or the suite's tracker on the planned state


class PlannerPolicy:
    """Closed-loop MAGE policy (the evaluate.Policy interface) with RTG bookkeeping and optional sparse replanning.

    The user's target G is the return wanted over the whole evaluation episode. The RTG condition comes from
    mage_core.rtg (window relabel for sparse goal reaching, plain RTG for dense tasks), clamped to the data's range
    and, when the checkpoint has a return ceiling, to the highest RTG the data supports from the current state: an
    agent that falls behind its schedule is asked for the best the data shows rather than for a return no
    demonstration ever reached from there.

    executor "inverse" (the paper's, default) executes a_0 = I(sum_k z_k). executor "track" (suites with a tracking
    controller: PointMaze's PD) decodes the plan and steers to the planned state `track_ahead` steps ahead (default
    3/16 of the horizon: 12 for H = 64, 24 for H = 128, where 12 stalled the agent on pointmaze-large) — how
    Diffuser's maze2d setup follows its plans. With replan_every = n > 1 the steps between replans follow the last
    plan: its decoded actions under the (R, s, a) ablation, else the suite's tracker on its planned states.
    keep_plan = True also keeps, at every replan, env 0's full per-scale Plan in `last_plan` (what the studio draws:
    the very plan whose action is executed). regoal_steps: whenever the agent is outside the goal (its latest step
    paid no reward), the window condition is capped at W - regoal_steps (mage_core.rtg.RTGTracker; default: the
    task suite's regoal_steps, 0 = off).

    prefix_tokens (an adopted plan's coarse token maps, scales 1..k): the replans of the first `hold_steps` steps
    (default: the plan's horizon H, the segment that coarse plan describes) feed them as the prefix, so the agent keeps
    the chosen route while the finer scales are re-planned from where it is. An env releases the hold for good, and
    plans freely as above, once the model finds one of the held tokens HOLD_RELEASE_RATIO times less likely than its
    own choice from the current state: the held route no longer fits where the agent is.
    """

    def __init__(self, planner: Planner, rtg_target: float, replan_every: int = 1, seed=None,
                 executor: str = "inverse", track_ahead: int | None = None, keep_plan: bool = False,
                 regoal_steps: int | None = None, prefix_tokens=None, hold_steps: int | None = None):
        if replan_every < 1:
            raise MageError("replan_every must be at least 1")
        if executor not in EXECUTORS:
            raise MageError(f"unknown executor {executor!r}; choose one of {', '.join(EXECUTORS)}")
        suite = planner.task.suite
        if executor == "track" and not suite.has_tracker:
            raise MageError(f"the 'track' executor needs a tracking controller, which {planner.task.name} "
                            f"({suite.title}) does not have; use 'inverse'")
        if replan_every > 1 and not (planner.model_actions or suite.has_tracker):
            raise MageError("replanning every n > 1 steps needs a model trained with --model-actions or a suite with "
                            "a tracking controller (PointMaze)")
        self.planner, self.target, self.replan_every, self.seed = planner, float(rtg_target), replan_every, seed
        self.executor = executor
        self.keep_plan = keep_plan
        self.track_ahead = int(track_ahead) if track_ahead is not None else max(1, round(3 * planner.horizon / 16))
        if regoal_steps is not None and regoal_steps < 0:
            raise MageError(f"regoal_steps must be 0 (off) or a positive number of steps, got {regoal_steps}")
        if regoal_steps is None:
            regoal_steps = suite.regoal_steps(planner.task)
        self.rtg = RTGTracker(self.target, planner.task.rtg_mode, planner.task.eval_steps, int(regoal_steps))
        self.prefix = None  # the held coarse token maps as (1, p_k) LongTensors, or None
        if prefix_tokens is not None and len(prefix_tokens):
            self.prefix = [torch.as_tensor(t, device=planner.device)[None] for t in planner.check_prefix(prefix_tokens)]
        if hold_steps is not None and hold_steps < 1:
            raise MageError(f"hold_steps must be at least 1, got {hold_steps}")
        self.hold_steps = int(hold_steps) if hold_steps is not None else planner.horizon
        self.reset(1)

    @property
    def t(self) -> int:
        return self.rtg.t

    @property
    def received_N(self) -> np.ndarray:
        return self.rtg.received_N

    def reset(self, n_envs: int) -> None:
        self.n = n_envs
        self.rtg.target = self.target
        self.rtg.reset(n_envs)
        self.generator = self.planner._generator(self.seed)
        self._plan_x = None  # (N, H, x_dim) decoded plan in env units while executing it
        self._plan_a = None  # (N, H, act_dim) decoded actions under the (R, s, a) ablation
        self.last_plan: Plan | None = None  # env 0's plan at the last replan (keep_plan)
        self.last_condition_N: np.ndarray | None = None  # the RTG conditions of the last model call
        self.holding_N = np.full(n_envs, self.prefix is not None)  # envs still holding the adopted coarse plan

    def condition(self, obs_ND: np.ndarray | None = None) -> np.ndarray:
        """The RTG each env's model call is conditioned on (limited to the ceiling of its state when obs given)."""
        c = self.rtg.raw()
        if obs_ND is None:
            return np.clip(c, *self.planner.rtg_range)
        return self.planner.feasible(obs_ND, c)

    def act(self, obs_ND: np.ndarray, reward_N: np.ndarray) -> np.ndarray:
        p = self.planner
        obs_ND = np.stack([p._obs(o) for o in obs_ND])
        self.rtg.receive(reward_N)
        k = self.t % self.replan_every
        track = self.executor == "track"
        with torch.inference_mode():
            if k == 0:
                t0 = time.perf_counter()
                cond_N = self.condition(obs_ND)
                self.last_condition_N = cond_N
                self.holding_N &= self.t < self.hold_steps
                if self.holding_N.any():
                    act, out, cond = self._act_holding(obs_ND, cond_N)
                else:
                    act, out, cond = p.act_batch(obs_ND, cond_N, self.generator, return_sample=True)
                if self.replan_every > 1 or track:
                    x = p.model.decode(out.fhat_BCT, cond)
                    self._plan_x = p.normaliser.denorm_x(x[..., : 1 + p.obs_dim]).float().cpu().numpy()
                    self._plan_a = None
                    if p.model_actions and not track:
                        self._plan_a = p.normaliser.denorm_a(x[..., 1 + p.obs_dim:]).float().cpu().numpy()
                if self.keep_plan:
                    hi = p.rtg_ceiling(obs_ND[:1])
                    requested = float(self.rtg.raw()[0])
                    self.last_plan = p._make_plan(out, cond, act[0], float(cond_N[0]),
                                                  None if hi is None else float(hi[0]), requested, t0)
                    self.last_plan.held_scales = len(self.prefix) if self.holding_N[0] else 0
            if k > 0 and self._plan_a is not None:
                act = np.clip(self._plan_a[:, k], -1, 1).astype(np.float32)
            elif track or k > 0:  # steer to the planned state a little ahead with the suite's tracking controller
                target_ND = self._plan_x[:, min(k + self.track_ahead, p.horizon - 1), 1:]
                act = p.task.suite.track_action(p.task, obs_ND, target_ND)
        self.rtg.t += 1
        return act

    def _act_holding(self, obs_ND: np.ndarray, cond_N: np.ndarray) -> tuple:
        """act_batch's (actions, sample, condition) with the held coarse plan as the prefix of the holding envs; an
        env whose held tokens the model no longer agrees with samples freely from now on."""
        p = self.planner
        cond_BD = p._cond(obs_ND, cond_N)
        hold_B = torch.as_tensor(self.holding_N, device=p.device)
        out, _, held_B = p.sample_scales(cond_BD, prefix=self.prefix, generator=self.generator, hold_B=hold_B,
                                         release_gap=float(np.log(HOLD_RELEASE_RATIO)))
        self.holding_N = held_B.cpu().numpy()
        a_BA = p.model.inverse_dynamics(out.fhat_BCT, cond_BD)
        act = np.clip(p.normaliser.denorm_a(a_BA.float().cpu().numpy()), -1.0, 1.0).astype(np.float32)
        return act, out, cond_BD
