"""Experiment: train MAGE's small preset with another segment horizon H (the CLI uses the task's default).

usage: python docs/bench_scripts/train_horizon.py TASK H OUT.pt SEED"""
import sys, torch
torch.set_num_threads(1)
from mage_core.config import preset
from mage_core.data.store import load_episodes
from mage_core.train import train_mage
task_name, H, out, seed = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
cfg = preset("small"); cfg.model.horizon = H; cfg.train.seed = seed
from mage_core.tasks import get_task
task = get_task(task_name)
_, eps, _ = load_episodes(task.dataset_id)
train_mage(cfg, eps, task, out_path=out, dataset_id=task.dataset_id, progress=False)
