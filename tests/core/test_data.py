"""Foundation tests: tasks, maze geometry, generation determinism, Minari round trip, D4RL import, bad input."""
import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mage_core.suites.pointmaze import geometry
from mage_core.data.generate import GenerateConfig, collect_buffers, make_dataset
from mage_core.data.store import dataset_info, import_d4rl, list_datasets, load_episodes
from mage_core.errors import MageError
from mage_core.evaluate import ExpertPolicy, RandomPolicy, evaluate
from mage_core.tasks import TASKS, get_task


def test_registry_knows_the_three_mazes():
    assert {"pointmaze-umaze", "pointmaze-medium", "pointmaze-large"} <= set(TASKS)
    assert [get_task(n).eval_steps for n in ("pointmaze-umaze", "pointmaze-medium", "pointmaze-large")] == [300, 600, 800]
    with pytest.raises(MageError, match="known tasks: .*pointmaze-umaze"):
        get_task("nope")


def test_flattened_observation_includes_goal():
    task = get_task("pointmaze-umaze")
    env = task.make_env()
    obs, _ = env.reset(seed=1)
    flat = task.flatten_obs(obs)
    assert flat.shape == (6,)
    np.testing.assert_allclose(flat[4:], obs["desired_goal"], rtol=1e-6)
    # the evaluation protocol's goal is fixed in the goal cell
    g = geometry(task)
    assert g.xy_to_cell(flat[4:]) == task.params["eval_goal_cell"]
    assert g.xy_to_cell(flat[:2]) == task.params["eval_start_cell"]


def test_geometry_walls_and_waypoints():
    g = geometry(get_task("pointmaze-umaze"))
    assert not g.is_free(g.cell_to_xy((2, 1)))  # the U's middle wall
    assert g.is_free(g.cell_to_xy((1, 1)))
    with pytest.raises(MageError, match="wall"):
        g.check_free(g.cell_to_xy((2, 2)), "start")
    with pytest.raises(MageError, match="outside"):
        g.check_free([10.0, 10.0], "start")
    # from the bottom-left arm the way to the top-left goal goes right, around the U
    start, goal = g.cell_to_xy((3, 1)), g.cell_to_xy((1, 1))
    wp = g.next_waypoint(start, goal)
    assert g.xy_to_cell(wp) == (3, 2)
    assert g.cell_distance(start, goal) == 6


def test_generation_is_deterministic_and_cut_at_success():
    task = get_task("pointmaze-umaze")
    a = collect_buffers(task, GenerateConfig(steps=1500, seed=3))
    b = collect_buffers(task, GenerateConfig(steps=1500, seed=3))
    c = collect_buffers(task, GenerateConfig(steps=1500, seed=4))
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.actions, y.actions)
        np.testing.assert_array_equal(x.observations["observation"], y.observations["observation"])
    assert not np.array_equal(a[0].actions[:20], c[0].actions[:20])
    assert sum(len(x.actions) for x in a) == 1500
    dwell = GenerateConfig().dwell_steps
    for ep in a[:-1]:  # every complete episode reaches its goal, holds it `dwell` steps, then is cut
        assert ep.terminations[-1] or ep.truncations[-1]
        first = int(np.flatnonzero(np.asarray(ep.rewards) > 0)[0])
        assert len(ep.actions) - 1 - first == dwell
        assert np.mean(ep.rewards[first:]) > 0.5  # the expert mostly stays within the goal radius
        assert np.all(ep.observations["desired_goal"] == ep.observations["desired_goal"][0])  # one goal per episode
        if ep.terminations[-1]:
            assert ep.rewards[-1] == 1.0
            assert np.linalg.norm(ep.observations["achieved_goal"][-1] - ep.observations["desired_goal"][-1]) <= 0.45


def test_minari_round_trip_and_reference_scores(umaze_dataset):
    import minari

    ds = minari.load_dataset(umaze_dataset)
    assert ds.total_steps == 6000
    meta = ds.storage.metadata
    assert meta["ref_max_score"] > 100 and meta["ref_min_score"] < 10  # expert reaches and stays; random does not
    task, episodes, _ = load_episodes(umaze_dataset)
    assert task.name == "pointmaze-umaze"
    assert sum(e.length for e in episodes) == 6000
    assert episodes[0].obs_TD.shape[1] == 6 and episodes[0].actions_TA.shape[1] == 2
    assert any(d["id"] == umaze_dataset for d in list_datasets())
    info = dataset_info(umaze_dataset)
    assert info["episodes"] == len(episodes) and info["success_rate"] > 0.9
    env = ds.recover_environment(eval_env=True)  # the fixed-goal evaluation env travels with the dataset
    assert env.spec.kwargs["maze_map"][1][1] == "g"


def test_expert_and_random_scores_bracket_the_scale():
    task = get_task("pointmaze-umaze")
    hi = evaluate(task, ExpertPolicy(task), episodes=2, seeds=(0,), ref_scores=(0.0, 180.0))
    lo = evaluate(task, RandomPolicy(seed=0), episodes=2, seeds=(0,), ref_scores=(0.0, 180.0))
    assert hi.mean > 150 and all(hi.successes)
    assert lo.mean < 5
    assert hi.normalised_mean > 85 and lo.normalised_mean < 5
    d = hi.to_dict()
    assert d["n"] == 2 and d["normalised_se"] is not None


def _write_d4rl(path, n=300, goal=True, drop=(), nan=False, mismatch=False):
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(n, 4)).astype(np.float32)
    if nan:
        obs[5, 0] = np.nan
    with h5py.File(path, "w") as f:
        f["observations"] = obs
        f["actions"] = rng.uniform(-1, 1, size=(n - (1 if mismatch else 0), 2)).astype(np.float32)
        f["rewards"] = np.zeros(n, np.float32)
        term = np.zeros(n, bool)
        term[99] = term[199] = True
        f["terminals"] = term
        f["timeouts"] = np.zeros(n, bool)
        if goal:
            f["infos/goal"] = np.tile([[1.0, 1.0]], (n, 1))
        for k in drop:
            del f[k]


def test_d4rl_import(minari_root, tmp_path):
    src = tmp_path / "maze.hdf5"
    _write_d4rl(src)
    ds = import_d4rl(str(src), get_task("pointmaze-umaze"), dataset_id="test/imported-v0")
    assert ds.total_episodes == 3
    task, eps, _ = load_episodes("test/imported-v0")
    assert eps[0].obs_TD.shape[1] == 6  # observation + goal
    assert eps[0].success and not eps[-1].success


@pytest.mark.parametrize("kind,msg", [("missing", "missing D4RL keys: terminals"), ("nan", "NaN"),
                                      ("mismatch", "mismatched lengths"), ("corrupt", "cannot read HDF5"),
                                      ("absent", "no such file")])
def test_d4rl_import_bad_input(minari_root, tmp_path, kind, msg):
    src = tmp_path / f"{kind}.hdf5"
    if kind == "missing":
        _write_d4rl(src, drop=("terminals",))
    elif kind == "nan":
        _write_d4rl(src, nan=True)
    elif kind == "mismatch":
        _write_d4rl(src, mismatch=True)
    elif kind == "corrupt":
        _write_d4rl(src)
        data = src.read_bytes()
        src.write_bytes(data[: len(data) // 3])  # truncated file
    with pytest.raises(MageError, match=msg):
        import_d4rl(str(src), get_task("pointmaze-umaze"), dataset_id=f"test/bad-{kind}-v0")
    assert not (minari_root / "test" / f"bad-{kind}-v0").exists()  # nothing half-written


def test_make_refuses_to_overwrite_and_cleans_up_on_failure(minari_root, umaze_dataset, monkeypatch):
    task = get_task("pointmaze-umaze")
    with pytest.raises(MageError, match="already exists"):
        make_dataset(task, GenerateConfig(steps=100))
    import mage_core.data.generate as gen

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(gen, "reference_scores", boom)
    with pytest.raises(RuntimeError):
        make_dataset(task, GenerateConfig(steps=100), dataset_id="test/fails-v0")
    assert not (minari_root / "test" / "fails-v0").exists()


def _mage(*args, env=None):
    return subprocess.run([sys.executable, "-m", "mage_core", *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
def test_cli_bad_input_is_one_line(minari_root, tmp_path):
    import os

    env = dict(os.environ, MINARI_DATASETS_PATH=str(minari_root))
    for args, msg, code in [(("data", "make", "pointmaze-nope", "--steps", "10"), "unknown task", 2),  # usage
                            (("data", "make", "pointmaze-umaze", "--steps", "0"), "--steps", 2),
                            (("data", "import-d4rl", "x.hdf5", "--task", "maze-nope"), "unknown task", 2),
                            (("data", "info", "no/such-v0"), "unknown dataset", 1),  # missing or not data: runtime
                            (("data", "info", str(tmp_path)), "is not a Minari dataset", 1),
                            (("data", "import-d4rl", str(tmp_path / "x.hdf5"), "--task", "pointmaze-umaze"),
                             "no such file", 1)]:
        r = _mage(*args, env=env)
        assert r.returncode == code, (args, r.stderr)
        assert msg in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_cli_make_list_info(minari_root):
    import os

    env = dict(os.environ, MINARI_DATASETS_PATH=str(minari_root))
    r = _mage("data", "make", "pointmaze-umaze", "--steps", "300", "--id", "test/cli-v0", "--events", "-", env=env)
    assert r.returncode == 0, r.stderr
    events = [json.loads(line) for line in r.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "done" and events[-1]["steps"] == 300
    r = _mage("data", "list", "--json", env=env)
    assert "test/cli-v0" in [d["id"] for d in json.loads(r.stdout)]
    r = _mage("data", "info", "test/cli-v0", "--json", env=env)
    assert json.loads(r.stdout)["steps"] == 300


def test_episode_cache_matches_and_is_rebuilt_when_stale(umaze_dataset):
    from mage_core.data.store import CACHE_NAME, open_dataset

    _, first, _ = load_episodes(umaze_dataset)
    data_dir = Path(open_dataset(umaze_dataset).storage.data_path)
    assert (data_dir / CACHE_NAME).is_file()
    _, cached, _ = load_episodes(umaze_dataset)
    assert len(cached) == len(first)
    for a, b in zip(first, cached):
        np.testing.assert_array_equal(a.obs_TD, b.obs_TD)
        np.testing.assert_array_equal(a.actions_TA, b.actions_TA)
        assert a.success == b.success
    (data_dir / CACHE_NAME).write_bytes(b"garbage")  # a corrupt cache is ignored and rebuilt
    _, again, _ = load_episodes(umaze_dataset)
    assert sum(e.length for e in again) == sum(e.length for e in first)


def test_minari_is_within_the_declared_bound():
    """pyproject bounds minari above (its storage API changes between minor versions); the installed one is inside."""
    import importlib.metadata
    import pathlib
    import tomllib

    from packaging.requirements import Requirement

    root = pathlib.Path(__file__).resolve().parents[2]
    deps = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    req = next(Requirement(d) for d in deps if Requirement(d).name == "minari")
    assert any(s.operator == "<" for s in req.specifier), req
    assert req.specifier.contains(importlib.metadata.version("minari")), (req, importlib.metadata.version("minari"))


def _arrow_dataset(dataset_id: str) -> str:
    """A small PointMaze dataset written in Minari's arrow format."""
    import minari

    task = get_task("pointmaze-umaze")
    buffers = collect_buffers(task, GenerateConfig(steps=400, seed=1))
    env = task.make_env(mode="data")
    try:
        minari.create_dataset_from_buffers(dataset_id=dataset_id, buffer=buffers, env=env.spec, eval_env=env.spec,
                                           algorithm_name="test", author="t", author_email="t", code_permalink="t",
                                           description="arrow round trip", data_format="arrow")
    finally:
        env.close()
    return dataset_id


def test_arrow_datasets_load_with_the_extra_and_name_it_without(minari_root):
    pytest.importorskip("pyarrow", reason="the arrow extra is not installed (pip install -e '.[arrow]')")
    ds_id = _arrow_dataset("test/umaze-arrow-v0")
    task, episodes, meta = load_episodes(ds_id)
    assert task.name == "pointmaze-umaze" and meta["data_format"] == "arrow"
    assert sum(e.length for e in episodes) == 400
    assert dataset_info(ds_id)["format"] == "arrow" and ds_id in [d["id"] for d in list_datasets()]
    _, again, _ = load_episodes(ds_id)  # from the episode cache, keyed on the arrow files
    np.testing.assert_array_equal(np.concatenate([e.obs_TD for e in again]),
                                  np.concatenate([e.obs_TD for e in episodes]))
    code = ("import sys; sys.modules['pyarrow'] = None\n"
            "from mage_core.data.store import open_dataset\n"
            "try:\n    open_dataset(sys.argv[1])\nexcept Exception as exc:\n    print(type(exc).__name__, exc)")
    r = subprocess.run([sys.executable, "-c", code, ds_id], capture_output=True, text=True, timeout=120)
    assert r.stdout.startswith("MageError") and 'pip install "mage-studio[arrow]"' in r.stdout, r.stdout + r.stderr
