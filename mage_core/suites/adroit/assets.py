"""Adroit's shipped files: the DAPG expert policies and the door's human demonstrations, loaded and checked."""
from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mage_core.errors import MageError

ASSET_DIR = Path(__file__).resolve().parents[3] / "assets" / "adroit"  # shipped policies and demos (source checkout)
POLICY_KEYS = ("in_shift", "in_scale", "w0", "b0", "w1", "b1", "w2", "b2", "out_shift", "out_scale", "log_std")
DEMO_FIELDS = ("observations", "actions", "rewards", "init_qpos", "init_qvel", "init_door_body_pos")
N_DEMOS = {"door": 25}  # tasks with human demonstrations shipped, and how many


def load_npz(path: Path, what: str) -> dict:
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
    z = load_npz(path, "demonstrations")
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
