"""Shared pytest set-up: offscreen Qt and EGL MuJoCo, a private Minari store, single-threaded torch."""
import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _torch_threads():
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


@pytest.fixture(scope="session")
def minari_root(tmp_path_factory):
    """A private Minari dataset store for the whole test session (never the user's ~/.minari)."""
    root = tmp_path_factory.mktemp("minari")
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)  # child processes inherit it
    yield root
    if old is None:
        os.environ.pop("MINARI_DATASETS_PATH", None)
    else:
        os.environ["MINARI_DATASETS_PATH"] = old


@pytest.fixture(scope="session")
def umaze_dataset(minari_root):
    """A small generated pointmaze-umaze dataset (id), shared by the tests that need real data."""
    from mage_core.data.generate import GenerateConfig, make_dataset
    from mage_core.tasks import get_task

    task = get_task("pointmaze-umaze")
    ds = make_dataset(task, GenerateConfig(steps=6000, seed=0, ref_episodes=3), force=True)
    return ds.id
