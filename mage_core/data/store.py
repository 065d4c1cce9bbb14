"""Local datasets: list and describe Minari datasets, load them as Episodes, and import D4RL-format HDF5 files."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np

from mage_core.data.segments import Episode
from mage_core.errors import MageError
from mage_core.suites import Task, builtin_task_for, task_for_dataset  # noqa: F401 (task_for_dataset re-exported)

D4RL_REQUIRED = ("observations", "actions", "rewards", "terminals")  # keys a D4RL HDF5 file must have


ARROW_EXTRA = 'pip install "mage-studio[arrow]"'  # the install step for datasets in Minari's arrow format


def datasets_root() -> Path:
    """Where Minari keeps local datasets (MINARI_DATASETS_PATH or ~/.minari/datasets)."""
    from minari.storage import get_dataset_path

    return Path(get_dataset_path(""))


def open_dataset(id_or_path: str):
    """A local dataset through Minari's public API: an id with minari.load_dataset, a folder (the dataset's or its
    data/ folder) with minari.MinariDataset. Unknown ids, folders that hold no dataset and unreadable ones are one-line
    MageErrors; a dataset in Minari's arrow format without pyarrow names the install step."""
    import minari

    p = Path(str(id_or_path)).expanduser()
    try:
        if p.exists():
            data = p / "data" if (p / "data").is_dir() else p
            if not (data / "metadata.json").is_file():
                raise MageError(f"{id_or_path} is not a Minari dataset (no data/metadata.json inside)")
            return minari.MinariDataset(data)
        if not (datasets_root() / str(id_or_path) / "data").is_dir():
            known = [d["id"] for d in list_datasets()]
            raise MageError(f"unknown dataset {id_or_path!r}; local datasets: {', '.join(known) or 'none'} "
                            f"(make one with `mage data make <task>`)")
        return minari.load_dataset(str(id_or_path))
    except MageError:
        raise
    except ImportError as exc:
        if "pyarrow" in str(exc) or getattr(exc, "name", "") == "pyarrow":
            raise MageError(f"dataset {id_or_path} is stored in Minari's arrow format, which needs pyarrow: "
                            f"{ARROW_EXTRA}") from None
        raise MageError(f"cannot read dataset {id_or_path}: {exc}") from None
    except Exception as exc:  # corrupt metadata, a truncated file, spaces Minari cannot read
        raise MageError(f"cannot read dataset {id_or_path}: {type(exc).__name__}: {exc}") from None


def _metadata(ds) -> dict:
    return dict(ds.storage.metadata)


def dataset_task(id_or_path: str) -> Task:
    """The task a local dataset (id or path) was recorded for, read from its metadata without loading its episodes."""
    return task_for_dataset(_metadata(open_dataset(id_or_path)))


def reference_scores(id_or_path, task: Task | None = None) -> list | None:
    """[ref_min_score, ref_max_score] from a local dataset's metadata; else, when a task is given, its suite's own
    reference scores for that env (a user's dataset that carries none); None when neither exists."""
    meta = None
    if id_or_path:
        try:
            meta = _metadata(open_dataset(str(id_or_path)))
        except MageError:
            meta = None
    lo, hi = (meta or {}).get("ref_min_score"), (meta or {}).get("ref_max_score")
    if lo is not None and hi is not None:
        return [float(lo), float(hi)]
    if task is not None:
        ref = task.suite.builtin_reference_scores(task)
        return None if ref is None else [float(ref[0]), float(ref[1])]
    return None


def list_datasets() -> list[dict]:
    """Every local Minari dataset (minari.list_local_datasets): id, path, episodes, steps, task (when it maps to a
    known one). Folders Minari finds misconfigured are left out."""
    import warnings

    import minari

    root = datasets_root()
    if not root.is_dir():
        return []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Minari warns about each misconfigured folder; the list leaves them out
        found = minari.list_local_datasets()
    return [dict(id=ds_id, path=str(root / ds_id), episodes=meta.get("total_episodes"), steps=meta.get("total_steps"),
                 task=_task_name_for(meta)) for ds_id, meta in sorted(found.items())]


def _task_name_for(meta: dict) -> str | None:
    t = builtin_task_for(meta)
    return None if t is None else t.name


def dataset_info(id_or_path: str) -> dict:
    """Summary of a dataset: id, task, episodes, steps, spaces, return and length statistics, reference scores."""
    ds = open_dataset(id_or_path)
    meta = _metadata(ds)
    task, episodes, _ = load_episodes(id_or_path, dataset=ds)
    ref = reference_scores(id_or_path, task)
    lengths = np.array([e.length for e in episodes])
    returns = np.array([float(e.rewards_T.sum()) for e in episodes])
    success = float(np.mean([e.success for e in episodes])) if task.suite.reports_success(task) else None  # None: n/a
    return dict(id=meta.get("dataset_id"), path=str(Path(ds.storage.data_path).parent), task=task.name,
                env_id=task.env_id, format=meta.get("data_format", "hdf5"),
                episodes=len(episodes), steps=int(lengths.sum()), obs_dim=int(episodes[0].obs_TD.shape[1]),
                act_dim=int(episodes[0].actions_TA.shape[1]), success_rate=success,
                episode_length=dict(mean=float(lengths.mean()), min=int(lengths.min()), max=int(lengths.max())),
                episode_return=dict(mean=float(returns.mean()), min=float(returns.min()), max=float(returns.max())),
                ref_min_score=(ref or [None])[0], ref_max_score=(ref or [None, None])[1],
                ref_scores_from=None if ref is None else ("dataset" if meta.get("ref_max_score") is not None else
                                                          f"suite {task.suite.title} (the dataset carries none)"),
                observation_space=str(meta.get("observation_space", "")), action_space=str(meta.get("action_space", "")),
                description=meta.get("description"))


def load_episodes(id_or_path: str, dataset=None) -> tuple[Task, list[Episode], dict]:
    """Load a local Minari dataset (id or path) as flattened Episodes; returns (task, episodes, metadata).
    dataset: the dataset already opened with open_dataset (else it is opened here)."""
    ds = dataset if dataset is not None else open_dataset(id_or_path)
    meta = _metadata(ds)
    task = task_for_dataset(meta)
    data_dir = Path(ds.storage.data_path)
    cached = _read_cache(data_dir, task)
    if cached is not None:
        return task, cached, meta
    episodes = _read_episodes(ds, task, id_or_path)
    _write_cache(data_dir, task, episodes)
    return task, episodes, meta


CACHE_NAME = "mage_episodes.npz"  # flattened copy of a dataset's episodes next to its HDF5 file, for fast loads
CACHE_VERSION = 2  # bump when what the cache holds changes (2: success read from infos["success"] where recorded)


def _cache_key(data_dir: Path, task: Task) -> str:
    """What the cache was built from: the sizes and times of the dataset's files (HDF5: its one file; arrow: every
    episode file), the version of the cache layout and the observation keys flattened."""
    files = sorted(data_dir.glob("*.hdf5")) or sorted(
        f for f in data_dir.rglob("*") if f.is_file() and f.name != "metadata.json" and not f.name.startswith(CACHE_NAME))
    stats = [(str(f.relative_to(data_dir)), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return json.dumps([CACHE_VERSION, stats, list(task.obs_keys)])


def _read_cache(data_dir: Path, task: Task) -> list[Episode] | None:
    path = data_dir / CACHE_NAME
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            if str(z["key"]) != _cache_key(data_dir, task):
                return None
            obs, acts, rews, succ, ends = z["obs"], z["acts"], z["rews"], z["success"], z["ends"]
    except (OSError, ValueError, KeyError):
        return None  # unreadable cache: rebuild it from the dataset
    episodes, o0, a0 = [], 0, 0
    for i, t in enumerate(ends):
        episodes.append(Episode(obs[o0:o0 + t + 1], acts[a0:a0 + t], rews[a0:a0 + t], bool(succ[i])))
        o0, a0 = o0 + t + 1, a0 + t
    return episodes


def _write_cache(data_dir: Path, task: Task, episodes: list[Episode]) -> None:
    tmp = data_dir / (CACHE_NAME + ".tmp.npz")
    try:
        np.savez(tmp, key=np.array(_cache_key(data_dir, task)), obs=np.concatenate([e.obs_TD for e in episodes]),
                 acts=np.concatenate([e.actions_TA for e in episodes]), rews=np.concatenate([e.rewards_T for e in episodes]),
                 success=np.array([e.success for e in episodes]), ends=np.array([e.length for e in episodes]))
        os.replace(tmp, data_dir / CACHE_NAME)
    except OSError:
        tmp.unlink(missing_ok=True)  # a read-only dataset folder just loads slower


def _read_episodes(ds, task: Task, id_or_path: str) -> list[Episode]:
    try:
        raw = [(ep.observations, ep.actions, ep.rewards, ep.terminations, ep.infos) for ep in ds.iterate_episodes()]
    except Exception as exc:  # truncated HDF5, missing groups, bad spaces
        raise MageError(f"cannot read dataset {id_or_path}: {type(exc).__name__}: {exc}") from None
    episodes = []
    for obs, actions, rewards, terminations, infos in raw:
        obs_TD = task.suite.flatten_dataset_obs(task, obs)
        acts = np.asarray(actions, np.float32).reshape(len(actions), -1)
        rews = np.asarray(rewards, np.float32)
        terms = np.asarray(terminations, bool)
        if isinstance(infos, dict) and "success" in infos:  # the env's own signal (Adroit), where it was recorded
            success = bool(np.any(np.asarray(infos["success"], bool)))
        else:
            success = bool(len(terms) and terms[-1]) or bool(task.suite.sparse_goal_reward(task) and len(rews) and rews.max() > 0)
        if len(acts) == 0:
            continue
        episodes.append(Episode(obs_TD, acts, rews, success))
    if not episodes:
        raise MageError(f"dataset {id_or_path} has no episodes")
    return episodes


def import_d4rl(h5_path: str, task: Task, dataset_id: str | None = None, force: bool = False):
    """Read a D4RL-format HDF5 file (observations, actions, rewards, terminals, timeouts, optional infos/goal)
    and write it as a Minari dataset. Observations are stored as PointMaze-style Dicts when a goal is present."""
    import h5py
    import minari
    from minari.data_collector import EpisodeBuffer
    from minari.storage import get_dataset_path

    p = Path(h5_path)
    if not p.is_file():
        raise MageError(f"no such file: {h5_path}")
    try:
        with h5py.File(p, "r") as f:
            missing = [k for k in D4RL_REQUIRED if k not in f]
            if missing:
                raise MageError(f"{h5_path} is missing D4RL keys: {', '.join(missing)} (needs {', '.join(D4RL_REQUIRED)})")
            data = {k: np.asarray(f[k]) for k in D4RL_REQUIRED}
            data["timeouts"] = np.asarray(f["timeouts"]) if "timeouts" in f else np.zeros(len(data["rewards"]), bool)
            goal = np.asarray(f["infos/goal"]) if "infos/goal" in f else None
            nxt = np.asarray(f["next_observations"]) if "next_observations" in f else None
    except MageError:
        raise
    except Exception as exc:  # OSError for truncated / not-HDF5 files
        raise MageError(f"cannot read HDF5 file {h5_path}: {exc}") from None
    n = len(data["observations"])
    lengths = {k: len(v) for k, v in data.items()} | ({"infos/goal": len(goal)} if goal is not None else {})
    if len(set(lengths.values())) != 1:
        raise MageError(f"{h5_path}: arrays have mismatched lengths: {lengths}")
    if n == 0:
        raise MageError(f"{h5_path} holds no transitions")
    for k in ("observations", "actions", "rewards"):
        if not np.all(np.isfinite(data[k])):
            raise MageError(f"{h5_path}: {k} contains NaN or inf values")
    obs = data["observations"].astype(np.float64).reshape(n, -1)
    acts = data["actions"].astype(np.float32).reshape(n, -1)
    ends = np.nonzero(data["terminals"].astype(bool) | data["timeouts"].astype(bool))[0].tolist()
    if not ends or ends[-1] != n - 1:
        ends.append(n - 1)
    buffers, start = [], 0
    for i, end in enumerate(ends):
        sl = slice(start, end + 1)
        if nxt is not None:
            o = np.concatenate([obs[sl], nxt[end:end + 1].reshape(1, -1)])
            a, r = acts[sl], data["rewards"][sl]
            term = data["terminals"][sl].astype(bool)
        else:  # no next_observations: drop the last transition so every action has its successor state
            o, a, r = obs[sl], acts[start:end], data["rewards"][start:end]
            term = data["terminals"][start + 1:end + 1].astype(bool)
        start = end + 1
        if len(a) == 0:
            continue
        trunc = np.zeros(len(a), bool)
        if not term[-1]:
            trunc[-1] = True
        if goal is not None:
            g = goal[sl] if nxt is not None else goal[sl]
            g = np.concatenate([g, g[-1:]])[: len(o)] if len(g) < len(o) else g[: len(o)]
            observations = {"observation": o, "achieved_goal": o[:, :2].copy(), "desired_goal": g.astype(np.float64)}
        else:
            observations = o
        buffers.append(EpisodeBuffer(id=len(buffers), observations=observations, actions=a,
                                     rewards=r.astype(float).tolist(), terminations=term.tolist(), truncations=trunc.tolist()))
    dataset_id = dataset_id or f"mage/{task.name}/d4rl-import-v0"
    path = get_dataset_path(dataset_id)
    if path.exists():
        if not force:
            raise MageError(f"dataset {dataset_id} already exists at {path}; use --force or --id")
        shutil.rmtree(path)
    import gymnasium as gym

    env = task.make_env(mode="data")
    obs_space = env.observation_space if goal is not None else gym.spaces.Box(-np.inf, np.inf, (obs.shape[1],), np.float64)
    try:
        return minari.create_dataset_from_buffers(
            dataset_id=dataset_id, buffer=buffers, env=env.spec, eval_env=task.make_env(mode="eval").spec,
            observation_space=obs_space, action_space=env.action_space, algorithm_name=f"imported from {p.name}", code_permalink="mage_core/data/store.py",
            author="MAGE Studio", author_email="n/a", data_format="hdf5",
            description=f"D4RL-format file {p.name} imported by `mage data import-d4rl` for task {task.name}")
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    finally:
        env.close()
