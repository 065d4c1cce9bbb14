"""The Adroit suite: DAPG expert, human and cloned data on AdroitHand{Door,Hammer,Pen,Relocate}-v1, the Minari D4RL
evaluation protocol (dense reward, the env's `success` signal), and the hand posed from its observations."""
from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mage_core.errors import MageError
from mage_core.suites.base import EditableState, Suite, Task

ASSET_DIR = Path(__file__).resolve().parents[2] / "assets" / "adroit"  # shipped policies and demos (source checkout)
KINDS = ("door", "hammer", "pen", "relocate")  # the four Adroit tasks
ENV_RE = re.compile(r"^AdroitHand(Door|Hammer|Pen|Relocate)")  # env ids this suite claims (any reward type / version)


@dataclass(frozen=True)
class Layout:
    """Facts about one Adroit env's flat observation (gymnasium-robotics 1.4 `_get_obs`) and its MuJoCo model."""

    env_id: str  # gymnasium id of the dense-reward env
    eval_steps: int  # episode length of the Minari D4RL datasets' env spec (door/hammer/relocate 200, pen 100)
    obs_dim: int  # flat observation size
    act_dim: int  # action size
    nq: int  # model qpos size
    hand_qpos: tuple  # (qpos start, qpos stop, obs start): qpos[a:b] == obs[c:c + b - a]
    slices: tuple  # (name, start, stop) named parts of the observation


LAYOUTS = {
    # door obs: qpos[1:28] (hand without the arm's ARTz slide), latch, door hinge, palm xyz, handle xyz,
    # palm - handle, door open flag
    "door": Layout("AdroitHandDoor-v1", 200, 39, 28, 30, (1, 28, 0),
                   (("hand_qpos", 0, 27), ("latch", 27, 28), ("door_hinge", 28, 29), ("palm_xyz", 29, 32),
                    ("handle_xyz", 32, 35), ("palm_minus_handle", 35, 38), ("door_open", 38, 39))),
    # hammer obs: qpos[:27] (arm, hand, nail slide), hammer velocity (clipped), palm xyz, hammer xyz, hammer euler,
    # nail xyz, nail impact
    "hammer": Layout("AdroitHandHammer-v1", 200, 46, 26, 33, (0, 27, 0),
                     (("hand_qpos", 0, 26), ("nail_slide", 26, 27), ("object_vel", 27, 33), ("palm_xyz", 33, 36),
                      ("object_xyz", 36, 39), ("object_euler", 39, 42), ("target_xyz", 42, 45),
                      ("nail_impact", 45, 46))),
    # pen obs: qpos[:24] (hand), pen xyz, pen velocity, pen axis, target axis, pen - target xyz, pen - target axis
    "pen": Layout("AdroitHandPen-v1", 100, 45, 24, 30, (0, 24, 0),
                  (("hand_qpos", 0, 24), ("object_xyz", 24, 27), ("object_vel", 27, 33), ("object_axis", 33, 36),
                   ("target_axis", 36, 39), ("object_minus_target", 39, 42), ("axis_minus_target", 42, 45))),
    # relocate obs: qpos[:30] (arm, hand), palm - ball, palm - target, ball - target
    "relocate": Layout("AdroitHandRelocate-v1", 200, 39, 30, 36, (0, 30, 0),
                       (("hand_qpos", 0, 30), ("palm_minus_object", 30, 33), ("palm_minus_target", 33, 36),
                        ("object_minus_target", 36, 39))),
}

# Reference scores for datasets that carry none (a user's own Minari data of these envs): (random, expert) mean
# returns on the evaluation protocol above, 20 episodes each, env seeds 10000 * 100003 + e (as `mage data make`
# measures them), gymnasium-robotics 1.4.2, mujoco 4.0.0 (D4RL's own numbers came from the older mujoco-py envs and
# do not apply to these). Measured (about 70 s) with
#   python -c "from mage_core.suites.adroit import measure_reference_table; measure_reference_table()"
BUILTIN_REFERENCE_SCORES = {
    "AdroitHandDoor-v1": (-45.75, 3013.32),
    "AdroitHandHammer-v1": (-267.96, 16311.98),
    "AdroitHandPen-v1": (-171.37, 3617.22),  # 100-step episodes
    "AdroitHandRelocate-v1": (10.32, 4270.41),  # gymnasium-robotics' relocate reward is >= 0 near the start
}

# Steps `mage data make` records by default. D4RL's expert sets are 1M steps (5000 episodes); here 100k steps
# (500 door/hammer/relocate episodes, 1000 pen episodes): `mage data make adroit-door` took 208 s wall (106 s CPU,
# the 8000 reference-score steps included) on the project's shared 2-core CPU, and the small preset samples 48k
# segments in stage 1 and 512k in stage 2, so a 10x larger set would cost half an hour and be mostly unseen.
DEFAULT_EXPERT_STEPS = 100_000
DEFAULT_CLONED_STEPS = 100_000  # half BC rollouts, half the 6704 demo steps tiled (about 7 passes over the demos)


@dataclass
class AdroitDataConfig:
    """Knobs of the Adroit data recipes that GenerateConfig does not carry."""

    bc_hidden: int = 256  # cloned: hidden width of the two-layer BC MLP trained on the human demos
    bc_steps: int = 3000  # cloned: Adam steps of BC training (about 35 s on one core)
    bc_batch: int = 256  # cloned: demo transitions per BC step
    bc_lr: float = 1e-3  # cloned: BC learning rate
    bc_noise: bool = True  # cloned: roll the BC policy out with Gaussian noise of its per-dim residual std
    progress_every: int = 2000  # steps between progress callbacks


# Default viewport camera per task: (look-at xyz, distance, azimuth, elevation), chosen from renders of each scene
CAMERAS = {"door": ((0.05, -0.1, 0.2), 1.45, 60.0, -35.0), "hammer": ((0.08, -0.12, 0.2), 0.95, 200.0, -20.0),
           "pen": ((0.0, -0.2, 0.2), 0.8, 135.0, -25.0), "relocate": ((0.0, -0.05, 0.2), 1.3, 150.0, -25.0)}

GHOSTLESS_BODIES = {"door": ("door", "latch")}  # moving bodies not drawn for ghosts, besides the forearm
FIRST_HIDDEN_GROUP = 3  # MuJoCo's default mjvOption shows geom groups 0-2 only; Adroit's collision geoms are 3-4

# ---- shipped files -----------------------------------------------------------------------------------------------
POLICY_KEYS = ("in_shift", "in_scale", "w0", "b0", "w1", "b1", "w2", "b2", "out_shift", "out_scale", "log_std")
DEMO_FIELDS = ("observations", "actions", "rewards", "init_qpos", "init_qvel", "init_door_body_pos")
N_DEMOS = {"door": 25}  # tasks with human demonstrations shipped, and how many


def _load_npz(path: Path, what: str) -> dict:
    """Every array of an npz file, or a MageError naming the file when it is missing or damaged."""
    if not path.is_file():
        raise MageError(f"missing Adroit {what} file {path} (shipped under assets/adroit/, see its README)")
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: np.asarray(z[k]) for k in z.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise MageError(f"damaged Adroit {what} file {path}: {exc}") from None


class DAPGPolicy:
    """The DAPG Gaussian MLP (mjrl's MLP: tanh, tanh, linear) in numpy: mean(obs) and its own exploration noise."""

    def __init__(self, arrays: dict, path: Path, obs_dim: int, act_dim: int):
        missing = [k for k in POLICY_KEYS if k not in arrays]
        if missing:
            raise MageError(f"damaged Adroit policy file {path}: missing arrays {', '.join(missing)}")
        a = {k: np.asarray(arrays[k], np.float64) for k in POLICY_KEYS}
        shapes_ok = (a["in_shift"].shape == (obs_dim,) and a["in_scale"].shape == (obs_dim,)
                     and a["w0"].shape[1] == obs_dim and a["w2"].shape[0] == act_dim
                     and a["w1"].shape == (a["w0"].shape[0], a["w0"].shape[0]) and a["w2"].shape[1] == a["w1"].shape[0]
                     and a["out_shift"].shape == (act_dim,) and a["log_std"].shape == (act_dim,))
        if not shapes_ok:
            raise MageError(f"damaged Adroit policy file {path}: shapes do not match a {obs_dim}->{act_dim} policy "
                            f"(w0 {a['w0'].shape}, w2 {a['w2'].shape})")
        if not all(np.all(np.isfinite(v)) for v in a.values()):
            raise MageError(f"damaged Adroit policy file {path}: NaN or inf weights")
        self.a, self.path = a, path
        self.std_A = np.exp(a["log_std"])  # the policy's own Gaussian noise

    def mean(self, obs_ND: np.ndarray) -> np.ndarray:
        a = self.a
        x_ND = (np.asarray(obs_ND, np.float64) - a["in_shift"]) / (a["in_scale"] + 1e-8)
        h_NH = np.tanh(x_ND @ a["w0"].T + a["b0"])
        h_NH = np.tanh(h_NH @ a["w1"].T + a["b1"])
        return (h_NH @ a["w2"].T + a["b2"]) * a["out_scale"] + a["out_shift"]

    def sample(self, obs_ND: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """mjrl's get_action: mean + exp(log_std) * N(0, 1)."""
        mean_NA = self.mean(obs_ND)
        return mean_NA + self.std_A * rng.standard_normal(mean_NA.shape)


class AdroitExpertPolicy:
    """The noise-free DAPG expert on the evaluation protocol (an evaluate.Policy): the mean action clipped to [-1, 1]."""

    def __init__(self, policy: DAPGPolicy):
        self.policy = policy

    def reset(self, n_envs: int) -> None:
        pass

    def act(self, obs_ND, reward_N):
        return np.clip(self.policy.mean(obs_ND), -1.0, 1.0).astype(np.float32)


@dataclass
class Demo:
    """One human demonstration as recorded: T observations, T actions and rewards, and the state it started from."""

    obs_TD: np.ndarray  # recorded observations
    actions_TA: np.ndarray  # recorded actions (about 5% of door's lie outside [-1, 1]; the env clips them)
    rewards_T: np.ndarray  # recorded rewards
    init_state: dict  # {'qpos', 'qvel', 'door_body_pos'}: env.reset(options={'initial_state_dict': init_state})


def load_demos(path: Path, obs_dim: int, act_dim: int, n: int) -> list[Demo]:
    """The human demonstrations of an npz file (keys epNN_<field>), checked, or a MageError naming the file."""
    z = _load_npz(path, "demonstrations")
    demos = []
    for i in range(n):
        missing = [f for f in DEMO_FIELDS if f"ep{i:02d}_{f}" not in z]
        if missing:
            raise MageError(f"damaged Adroit demonstrations file {path}: episode {i} lacks {', '.join(missing)}")
        g = {f: z[f"ep{i:02d}_{f}"] for f in DEMO_FIELDS}
        T = len(g["observations"])
        if (g["observations"].shape != (T, obs_dim) or g["actions"].shape != (T, act_dim) or g["rewards"].shape != (T,)
                or T < 2):
            raise MageError(f"damaged Adroit demonstrations file {path}: episode {i} has observations "
                            f"{g['observations'].shape}, actions {g['actions'].shape}, rewards {g['rewards'].shape}")
        if not all(np.all(np.isfinite(v)) for v in g.values()):
            raise MageError(f"damaged Adroit demonstrations file {path}: episode {i} holds NaN or inf values")
        demos.append(Demo(g["observations"].astype(np.float64), g["actions"].astype(np.float32),
                          g["rewards"].astype(np.float64),
                          dict(qpos=g["init_qpos"].astype(np.float64), qvel=g["init_qvel"].astype(np.float64),
                               door_body_pos=g["init_door_body_pos"].astype(np.float64))))
    return demos


# ---- the suite ---------------------------------------------------------------------------------------------------
def kind_of(task: Task) -> str:
    """'door', 'hammer', 'pen' or 'relocate' for a task of this suite (built-in or recovered from a dataset)."""
    kind = task.params.get("kind")
    if kind:
        return kind
    m = ENV_RE.match(task.env_id)
    if not m:
        raise MageError(f"{task.env_id} is not an Adroit environment")
    return m.group(1).lower()


class AdroitSuite(Suite):
    """Adroit door / hammer / pen / relocate (`AdroitHand*-v1`) with DAPG expert, human and cloned data."""

    name = "adroit"
    title = "Adroit"
    has_generator = True

    def __init__(self, data_cfg: AdroitDataConfig | None = None, asset_dir: Path | None = None):
        self.data_cfg = data_cfg or AdroitDataConfig()  # recipe knobs beyond GenerateConfig
        self.asset_dir = Path(asset_dir) if asset_dir is not None else ASSET_DIR  # where policies and demos live
        self._policies: dict = {}  # kind -> DAPGPolicy, loaded once

    # ---- tasks and datasets --------------------------------------------------------------------------------------
    def tasks(self) -> list[Task]:
        return [_task(k) for k in KINDS]

    def claims(self, env_id, spec, meta) -> bool:
        return bool(ENV_RE.match(env_id))

    def task_for_spec(self, meta, spec, eval_spec) -> Task:
        """A user's dataset of an Adroit env: the built-in protocol of that env (episode length, dense RTG)."""
        t = super().task_for_spec(meta, spec, eval_spec)
        m = ENV_RE.match(spec["id"])
        kind = m.group(1).lower()
        t.eval_steps, t.horizon, t.rtg_mode = LAYOUTS[kind].eval_steps, 32, "dense"
        t.data_max_episode_steps = t.eval_steps
        t.params = dict(kind=kind)
        return t

    def matches_builtin(self, task, meta, spec) -> bool:
        """Any variant this suite makes of a task (expert, human, cloned) belongs to that task."""
        return meta.get("dataset_id") in {self.dataset_id(task, v) for v in self.variants(task)}

    # ---- envs and observations -----------------------------------------------------------------------------------
    def obs_slices(self, task) -> dict:
        return {name: slice(a, b) for name, a, b in LAYOUTS[kind_of(task)].slices}

    def check_obs(self, task, obs_D, expected_dim=None) -> None:
        lay = LAYOUTS[kind_of(task)]
        n = np.asarray(obs_D).shape[-1]
        if n != lay.obs_dim:
            raise MageError(f"observation has {n} dims but {task.env_id} observations have {lay.obs_dim}")
        super().check_obs(task, obs_D, expected_dim)

    # ---- protocol ------------------------------------------------------------------------------------------------
    def policy(self, task) -> DAPGPolicy:
        """The shipped DAPG policy of a task (checked on first use)."""
        kind = kind_of(task)
        if kind not in self._policies:
            lay = LAYOUTS[kind]
            path = self.asset_dir / f"{kind}-expert-policy.npz"
            self._policies[kind] = DAPGPolicy(_load_npz(path, "policy"), path, lay.obs_dim, lay.act_dim)
        return self._policies[kind]

    def expert_policy(self, task):
        return AdroitExpertPolicy(self.policy(task))

    def builtin_reference_scores(self, task):
        ref = BUILTIN_REFERENCE_SCORES.get(LAYOUTS[kind_of(task)].env_id)
        return None if ref is None else (float(ref[0]), float(ref[1]))

    # ---- data ----------------------------------------------------------------------------------------------------
    def variants(self, task) -> tuple:
        return ("expert", "human", "cloned") if kind_of(task) in N_DEMOS else ("expert",)

    def default_data_steps(self, task, variant) -> int:
        if variant == "human":
            return sum(len(d.obs_TD) - 1 for d in self.demos(task))  # every demo, each as recorded
        return DEFAULT_CLONED_STEPS if variant == "cloned" else DEFAULT_EXPERT_STEPS

    def demos(self, task) -> list[Demo]:
        """The shipped human demonstrations of a task, or a MageError listing the tasks that have them."""
        kind = kind_of(task)
        if kind not in N_DEMOS:
            raise MageError(f"{task.name} has no human demonstrations; tasks with them: "
                            f"{', '.join(f'adroit-{k}' for k in N_DEMOS)}")
        lay = LAYOUTS[kind]
        return load_demos(self.asset_dir / f"{kind}-human-demos.npz", lay.obs_dim, lay.act_dim, N_DEMOS[kind])

    def collect_buffers(self, task, cfg, progress: Callable[[int, int], None] | None = None) -> list:
        """Minari EpisodeBuffers of cfg.variant: 'expert' (noisy DAPG rollouts), 'human' (the demos as recorded) or
        'cloned' (the demos tiled for half the steps, noisy BC rollouts for the other half)."""
        variant = cfg.variant or self.variants(task)[0]
        if variant not in self.variants(task):
            having = [t.name for t in self.tasks() if variant in self.variants(t)]
            raise MageError(f"{task.name} has no {variant!r} data (variants: {', '.join(self.variants(task))})"
                            + (f"; tasks with {variant!r} data: {', '.join(having)}" if having else ""))
        if cfg.steps < 1:
            raise MageError("--steps must be positive")
        tick = _Ticker(progress, cfg.steps, self.data_cfg.progress_every)
        if variant == "expert":
            pol = self.policy(task)
            rng = np.random.default_rng(cfg.seed)
            buffers = self._rollouts(task, lambda o: pol.sample(o[None], rng)[0], cfg.steps, cfg.seed, 0, tick)
        elif variant == "human":
            buffers = _demo_buffers(self.demos(task), cfg.steps, tiled=False, tick=tick)
        else:
            demos = self.demos(task)
            half = cfg.steps // 2
            buffers = _demo_buffers(demos, half, tiled=True, tick=tick) if half else []
            bc = train_bc(demos, self.data_cfg, cfg.seed)
            rng = np.random.default_rng(cfg.seed)
            act = (lambda o: bc.sample(o, rng)) if self.data_cfg.bc_noise else bc.mean
            buffers += self._rollouts(task, act, cfg.steps - half, cfg.seed, len(buffers), tick)
        tick.done()
        return buffers

    def _rollouts(self, task, act: Callable, steps: int, seed: int, first_id: int, tick) -> list:
        """Episodes of `act(obs_D) -> action_A` (clipped to [-1, 1] as the env does) on the data env, seeded resets."""
        from minari.data_collector import EpisodeBuffer

        env = task.make_env(mode="data", max_episode_steps=task.data_max_episode_steps)
        buffers, done, ep_id = [], 0, first_id
        try:
            while done < steps:
                env_seed = int(seed) * 1_000_003 + ep_id
                obs, _ = env.reset(seed=env_seed)
                obs_l, acts, rews, terms, truncs, succ = [obs], [], [], [], [], [False]
                while True:
                    a = np.clip(np.asarray(act(np.asarray(obs, np.float64)), np.float32), -1.0, 1.0)
                    obs, r, term, trunc, info = env.step(a)
                    done += 1
                    tick(1)
                    end = bool(term or trunc or done >= steps)
                    obs_l.append(obs), acts.append(a), rews.append(float(r)), succ.append(bool(info["success"]))
                    terms.append(bool(term)), truncs.append(bool(end and not term))
                    if end:
                        break
                buffers.append(EpisodeBuffer(id=ep_id, seed=env_seed, observations=np.asarray(obs_l, np.float64),
                                             actions=np.asarray(acts, np.float32), rewards=rews, terminations=terms,
                                             truncations=truncs, infos={"success": np.asarray(succ)}))
                ep_id += 1
        finally:
            env.close()
        return buffers

    def data_description(self, task, cfg) -> tuple[str, str]:
        variant = cfg.variant or self.variants(task)[0]
        refs = (f"ref_min_score: uniform random policy, ref_max_score: the noise-free DAPG expert (mean action "
                f"clipped to [-1, 1]), {cfg.ref_episodes} episodes of {task.eval_steps} steps each.")
        src = "DAPG policies and door demos from github.com/aravindr93/hand_dapg (Apache-2.0, assets/adroit/)"
        if variant == "expert":
            return ("dapg-expert (D4RL adroit expert recipe)",
                    f"{task.name}: rollouts of the DAPG expert with its own Gaussian noise exp(log_std), episodes of "
                    f"{task.eval_steps} steps from seeded resets, seed {cfg.seed}, {cfg.steps} steps. {src}. {refs}")
        if variant == "human":
            return ("human-teleoperation (D4RL adroit human)",
                    f"{task.name}: the human demonstrations as recorded (observations, actions, rewards; each "
                    f"episode's start state in its options), the last recorded action of each dropped because its "
                    f"next observation was not recorded; up to {cfg.steps} steps. {src}. {refs}")
        return ("bc-cloned (D4RL adroit cloned recipe)",
                f"{task.name}: {cfg.steps // 2} steps of the human demonstrations tiled, then "
                f"{cfg.steps - cfg.steps // 2} steps of rollouts of a {self.data_cfg.bc_hidden}x2 MLP behaviour-cloned "
                f"on them ({self.data_cfg.bc_steps} Adam steps"
                f"{', Gaussian noise of its residual std' if self.data_cfg.bc_noise else ''}), seed {cfg.seed}. "
                f"{src}. {refs}")

    # ---- initial state -------------------------------------------------------------------------------------------
    def editable(self, task) -> EditableState:
        return EditableState(points=(), dims=(), from_dataset=True, from_reset=True)

    def reset_env_to_obs(self, task, env, obs_D) -> np.ndarray:
        """Move an (already reset) env to the state an observation describes, e.g. a dataset state to Run from;
        returns the env's own observation there. Exact up to what pose() documents (velocities the observation
        lacks are zero, pen roll and ball spin unobserved). Not part of the Suite interface yet (a hook request)."""
        import mujoco

        self.check_obs(task, obs_D)
        u = env.unwrapped
        self.pose(task, u.model, u.data, obs_D)
        mujoco.mj_forward(u.model, u.data)
        return task.flatten_obs(u._get_obs())

    # ---- scene ---------------------------------------------------------------------------------------------------
    def hide_for_ghost(self, task, model) -> set:
        """Ghosts draw the hand from the wrist on and the moving objects: geoms welded to the world (table, door
        frame, nail board, pen target), the forearm (a large cylinder that would cover the hand ghosts; its
        motion shows in the palm path), the door itself (a dozen translucent doors hide the hand; the door's swing
        shows in the handle path) and the collision geoms in groups 3+ (the Adroit models' capsules and
        spheres, which the viewer hides by default) are left out."""
        import mujoco

        hidden_bodies = {mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, b)
                         for b in ("forearm",) + GHOSTLESS_BODIES.get(kind_of(task), ())}
        return {i for i in range(model.ngeom)
                if int(model.body_weldid[model.geom_bodyid[i]]) == 0 or int(model.geom_bodyid[i]) in hidden_bodies
                or int(model.geom_group[i]) >= FIRST_HIDDEN_GROUP}

    def can_pose(self, task, model, obs_dim) -> bool:
        lay = LAYOUTS[kind_of(task)]
        return model is not None and int(model.nq) == lay.nq and int(obs_dim) == lay.obs_dim

    def pose(self, task, model, data, obs_D) -> None:
        """Set the hand's qpos from the observation and solve the rest of the state the observation fixes.

        Exact: every hand joint the observation lists; door: the arm's ARTz slide (from the palm position), the door
        hinge and latch, the door frame's position (model.body_pos, from the handle position); hammer: the hammer's
        six joints (from its position and Euler angles) and the nail board's position (from the nail's); relocate:
        the ball's position (its three slides) and the target (model.site_pos). Approximate: the ball's spin
        (relocate; a sphere, invisible) and the pen's roll about its own axis are not observed and kept near their
        previous value; velocities the observation lacks are zero. The per-episode scene constants (door frame,
        nail board, pen target orientation, relocate target) are written into `model`, shared by every pose of it.
        An env observation is itself slightly inconsistent: its qpos is after the last physics substep but its
        site/body positions (palm, handle, hammer, nail) are from before it (MuJoCo's mj_step computes kinematics
        first), so posing a recorded observation reproduces those positions to a few mm, in a least-squares fit.
        """
        import mujoco

        kind = kind_of(task)
        lay = LAYOUTS[kind]
        obs_D = np.asarray(obs_D, np.float64)
        if not self.can_pose(task, model, len(obs_D)):
            raise MageError(f"{task.name}: cannot pose a {len(obs_D)}-dim observation on a model with nq={model.nq}")
        a, b, c = lay.hand_qpos
        data.qpos[a:b] = obs_D[c:c + b - a]
        data.qvel[:] = 0.0
        sl = self.obs_slices(task)
        names = _Names(model)
        if kind == "door":
            data.qpos[29] = obs_D[sl["latch"]][0]
            data.qpos[28] = obs_D[sl["door_hinge"]][0]
            frame = names.body("frame")
            grasp, handle = names.site("S_grasp"), names.site("S_handle")

            def write(p):
                data.qpos[0] = p[0]
                model.body_pos[frame] = p[1:4]

            def resid():
                return np.concatenate([data.site_xpos[grasp] - obs_D[sl["palm_xyz"]],
                                       data.site_xpos[handle] - obs_D[sl["handle_xyz"]]])

            p0 = np.concatenate([[data.qpos[0]], model.body_pos[frame]])
        elif kind == "hammer":
            from gymnasium_robotics.utils.rotations import euler2mat

            obj, board, nail = names.body("Object"), names.body("nail_board"), names.site("S_target")
            R_want = euler2mat(obs_D[sl["object_euler"]])
            data.qvel[27:33] = obs_D[sl["object_vel"]]

            def write(p):
                data.qpos[27:33] = p[:6]
                model.body_pos[board] = p[6:9]

            def resid():
                return np.concatenate([data.xpos[obj] - obs_D[sl["object_xyz"]],
                                       (data.xmat[obj].reshape(3, 3) - R_want).ravel(),
                                       data.site_xpos[nail] - obs_D[sl["target_xyz"]]])

            p0 = np.concatenate([data.qpos[27:33], model.body_pos[board]])
        elif kind == "pen":
            from gymnasium_robotics.utils.rotations import euler2quat

            obj, tgt = names.body("Object"), names.body("target")
            top, bot = names.site("object_top"), names.site("object_bottom")
            ttop, tbot = names.site("target_top"), names.site("target_bottom")
            data.qvel[24:30] = obs_D[sl["object_vel"]]
            mujoco.mj_kinematics(model, data)
            pen_len = np.linalg.norm(data.site_xpos[top] - data.site_xpos[bot])  # rigid: the same in every pose
            tar_len = np.linalg.norm(data.site_xpos[ttop] - data.site_xpos[tbot])

            def write(p):
                data.qpos[24:30] = p[:6]
                model.body_quat[tgt] = euler2quat(np.array([p[6], p[7], 0.0]))  # as the env's reset draws it

            def resid():
                return np.concatenate([data.xpos[obj] - obs_D[sl["object_xyz"]],
                                       (data.site_xpos[top] - data.site_xpos[bot]) / pen_len - obs_D[sl["object_axis"]],
                                       (data.site_xpos[ttop] - data.site_xpos[tbot]) / tar_len
                                       - obs_D[sl["target_axis"]]])

            from gymnasium_robotics.utils.rotations import quat2euler

            p0 = np.concatenate([data.qpos[24:30], quat2euler(model.body_quat[tgt])[:2]])
        else:  # relocate
            obj, tgt, grasp = names.body("Object"), names.site("target"), names.site("S_grasp")
            mujoco.mj_kinematics(model, data)
            palm = data.site_xpos[grasp].copy()  # the hand is posed: the palm is known, ball and target are relative
            want_obj = palm - obs_D[sl["palm_minus_object"]]
            model.site_pos[tgt] = palm - obs_D[sl["palm_minus_target"]]  # the target site hangs on the world body

            def write(p):
                data.qpos[30:33] = p

            def resid():
                return data.xpos[obj] - want_obj

            p0 = data.qpos[30:33].copy()
        _solve(model, data, write, resid, p0)

    def key_point_names(self, task) -> tuple:
        return ("palm", "object") if kind_of(task) == "door" else ("palm", "object", "target")

    def key_points(self, task, model, states_HD) -> dict:
        """Palm, object (door: the handle) and target xyz along a plan: read from the observation where it holds them
        (door, hammer; pen's object and target), else from the posed kinematics (pen's palm, relocate)."""
        kind = kind_of(task)
        s_HD = np.asarray(states_HD, np.float64)
        sl = self.obs_slices(task)
        if kind == "door":
            return {"palm": s_HD[:, sl["palm_xyz"]], "object": s_HD[:, sl["handle_xyz"]]}
        if kind == "hammer":
            return {"palm": s_HD[:, sl["palm_xyz"]], "object": s_HD[:, sl["object_xyz"]],
                    "target": s_HD[:, sl["target_xyz"]]}
        if model is None or not self.can_pose(task, model, s_HD.shape[-1]):
            return {}
        palm_H3 = self._palm_path(task, model, s_HD)
        if kind == "pen":
            return {"palm": palm_H3, "object": s_HD[:, sl["object_xyz"]],
                    "target": s_HD[:, sl["object_xyz"]] - s_HD[:, sl["object_minus_target"]]}
        return {"palm": palm_H3, "object": palm_H3 - s_HD[:, sl["palm_minus_object"]],
                "target": palm_H3 - s_HD[:, sl["palm_minus_target"]]}

    def _palm_path(self, task, model, s_HD) -> np.ndarray:
        """The palm (S_grasp site) for each planned hand configuration (forward kinematics of the hand qpos only)."""
        import mujoco

        a, b, c = LAYOUTS[kind_of(task)].hand_qpos
        data = mujoco.MjData(model)
        grasp = _Names(model).site("S_grasp")
        out = []
        for s in s_HD:
            data.qpos[a:b] = s[c:c + b - a]
            mujoco.mj_kinematics(model, data)
            out.append(data.site_xpos[grasp].copy())
        return np.asarray(out)

    def camera(self, task, model, aspect: float):
        """A three-quarter view of where the hand works (the envs' own defaults look at the model's centre, under
        the table, from 1.5-2 m: the hand is small there)."""
        from mage_core.render import CameraPose

        return CameraPose(*CAMERAS[kind_of(task)])

    def summary(self, task) -> str:
        kind = kind_of(task)
        what = {"door": "door angle and frame", "hammer": "hammer pose and nail board", "pen": "pen and target axis",
                "relocate": "ball and target"}[kind]
        return f"Adroit {kind}: hand posed from the observation, {what} recovered from it; key points palm, object" + (
            "" if kind == "door" else ", target")


# ---- helpers -----------------------------------------------------------------------------------------------------
def _task(kind: str, horizon: int = 32) -> Task:
    lay = LAYOUTS[kind]
    return Task(name=f"adroit-{kind}", env_id=lay.env_id, suite_name="adroit", env_kwargs={}, eval_kwargs={},
                dataset_id=f"mage/adroit-{kind}/expert-v0", horizon=horizon, eval_steps=lay.eval_steps,
                obs_keys=(), data_max_episode_steps=lay.eval_steps, rtg_mode="dense", params=dict(kind=kind))


class _Names:
    """Body and site ids by name, with a MageError naming what a model lacks."""

    def __init__(self, model):
        self.model = model

    def _id(self, kind, name: str) -> int:
        import mujoco

        i = mujoco.mj_name2id(self.model, kind, name)
        if i < 0:
            raise MageError(f"the MuJoCo model has no {name!r}; is it an Adroit model?")
        return int(i)

    def body(self, name: str) -> int:
        import mujoco

        return self._id(mujoco.mjtObj.mjOBJ_BODY, name)

    def site(self, name: str) -> int:
        import mujoco

        return self._id(mujoco.mjtObj.mjOBJ_SITE, name)


FD_EPS = 1e-6  # finite-difference step of the pose solver (m or rad)
SOLVE_ITERS = 30  # Gauss-Newton iterations at most
SOLVE_TOL = 1e-14  # stop when the squared residual is below this
SOLVE_STEP_TOL = 1e-9  # ... or when a step moves no parameter more than this
SOLVE_DAMPING = 1e-9  # Levenberg damping: picks the smallest step along unobserved directions (pen roll)


def _solve(model, data, write: Callable, resid: Callable, p0: np.ndarray) -> np.ndarray:
    """Damped Gauss-Newton on a few state parameters so the posed kinematics reproduce the observed positions."""
    import mujoco

    p = np.asarray(p0, np.float64).copy()
    for _ in range(SOLVE_ITERS):
        write(p)
        mujoco.mj_kinematics(model, data)
        r = resid()
        if float(r @ r) < SOLVE_TOL:
            break
        J = np.empty((len(r), len(p)))
        for j in range(len(p)):
            q = p.copy()
            q[j] += FD_EPS
            write(q)
            mujoco.mj_kinematics(model, data)
            J[:, j] = (resid() - r) / FD_EPS
        step = np.linalg.solve(J.T @ J + SOLVE_DAMPING * np.eye(len(p)), -J.T @ r)
        p = p + step
        if float(np.abs(step).max()) < SOLVE_STEP_TOL:  # converged to a least-squares fit (inconsistent obs)
            break
    write(p)
    mujoco.mj_kinematics(model, data)
    return p


class _Ticker:
    """Calls progress(done, total) every `every` steps and once at the end."""

    def __init__(self, progress, total: int, every: int):
        self.progress, self.total, self.every, self.n = progress, int(total), max(1, int(every)), 0

    def __call__(self, k: int) -> None:
        before, self.n = self.n, self.n + k
        if self.progress is not None and self.n // self.every > before // self.every:
            self.progress(min(self.n, self.total), self.total)

    def done(self) -> None:
        if self.progress is not None:
            self.progress(min(self.n, self.total), self.total)


DOOR_HINGE = 28  # door observation index of the hinge angle
DOOR_OPEN = 1.35  # AdroitHandDoor-v1 counts the door open (info['success']) at this hinge angle (rad)


def _demo_buffers(demos: list[Demo], steps: int, tiled: bool, tick, first_id: int = 0) -> list:
    """Demos as Minari episodes (T observations, the first T - 1 actions and rewards), in order, until `steps`
    transitions (cycling through them again when `tiled`); the last one is cut (truncated) to fit. Only door has
    demos: infos['success'] is its hinge criterion on each next observation, as the env reports it."""
    from minari.data_collector import EpisodeBuffer

    buffers, done, i = [], 0, 0
    while done < steps and (tiled or i < len(demos)):
        d = demos[i % len(demos)]
        n = min(len(d.obs_TD) - 1, steps - done)
        terms = [False] * n
        truncs = [False] * (n - 1) + [True]  # the recording (or our budget) ended; the task did not terminate
        succ = np.concatenate([[False], d.obs_TD[1:n + 1, DOOR_HINGE] >= DOOR_OPEN])  # the env's own criterion
        buffers.append(EpisodeBuffer(id=first_id + len(buffers), options={"initial_state_dict": d.init_state},
                                     observations=d.obs_TD[:n + 1].copy(), actions=d.actions_TA[:n].copy(),
                                     rewards=d.rewards_T[:n].tolist(), terminations=terms, truncations=truncs,
                                     infos={"success": succ}))
        done += n
        tick(n)
        i += 1
    return buffers


class BCPolicy:
    """A behaviour-cloned Gaussian policy: torch MLP mean on normalised observations, per-dim residual std."""

    def __init__(self, net, obs_mean_D, obs_std_D, std_A):
        self.net, self.obs_mean_D, self.obs_std_D, self.std_A = net, obs_mean_D, obs_std_D, std_A

    def mean(self, obs_D: np.ndarray) -> np.ndarray:
        import torch

        x = torch.as_tensor((np.asarray(obs_D) - self.obs_mean_D) / self.obs_std_D, dtype=torch.float32)
        with torch.no_grad():
            return self.net(x[None])[0].numpy().astype(np.float64)

    def sample(self, obs_D: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return self.mean(obs_D) + self.std_A * rng.standard_normal(self.std_A.shape)


def train_bc(demos: list[Demo], cfg: AdroitDataConfig, seed: int) -> BCPolicy:
    """Fit an MLP to the demos' (observation, action) pairs by MSE (deterministic for a seed)."""
    import torch

    obs_ND = np.concatenate([d.obs_TD[:-1] for d in demos])
    act_NA = np.concatenate([d.actions_TA[:-1] for d in demos]).astype(np.float64)
    mean_D, std_D = obs_ND.mean(0), obs_ND.std(0) + 1e-6
    gen = torch.Generator().manual_seed(int(seed))
    torch.manual_seed(int(seed))
    h = cfg.bc_hidden
    net = torch.nn.Sequential(torch.nn.Linear(obs_ND.shape[1], h), torch.nn.ReLU(), torch.nn.Linear(h, h),
                              torch.nn.ReLU(), torch.nn.Linear(h, act_NA.shape[1]))
    x_ND = torch.as_tensor((obs_ND - mean_D) / std_D, dtype=torch.float32)
    y_NA = torch.as_tensor(act_NA, dtype=torch.float32)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.bc_lr)
    for _ in range(cfg.bc_steps):
        idx_B = torch.randint(0, len(x_ND), (cfg.bc_batch,), generator=gen)
        loss = ((net(x_ND[idx_B]) - y_NA[idx_B]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    net.eval()
    with torch.no_grad():
        resid_NA = (net(x_ND) - y_NA).numpy()
    return BCPolicy(net, mean_D, std_D, resid_NA.std(0).astype(np.float64))


def measure_reference_table(episodes: int = 20, seed: int = 10_000) -> dict:
    """Measure (random, expert) on every task's protocol as `mage data make` does; prints a table to paste above."""
    import time

    suite = SUITE
    out = {}
    for t in suite.tasks():
        t0 = time.time()
        lo, hi = Suite.reference_scores(suite, t, episodes, seed)
        out[t.env_id] = (round(lo, 2), round(hi, 2))
        print(f'    "{t.env_id}": ({lo:.2f}, {hi:.2f}),  # {time.time() - t0:.0f} s', flush=True)
    return out


SUITE = AdroitSuite()
