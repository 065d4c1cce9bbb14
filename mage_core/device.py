"""Devices and data parallel: resolve a device name, join a torchrun job, share CPU threads, rank collectives."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn as nn

from mage_core.errors import MageError


def resolve_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda if available else cpu; 'cuda' without a GPU is a MageError."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise MageError("device 'cuda' requested but no CUDA GPU is available; use --device cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError:
        raise MageError(f"unknown device {name!r}; use auto, cpu or cuda") from None


@dataclass
class DistInfo:
    """Where this process sits in a (torchrun) data-parallel job; world_size 1 = plain single process."""

    rank: int = 0  # global rank
    world_size: int = 1  # number of processes
    local_rank: int = 0  # rank on this machine (selects the GPU)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init_distributed(device: torch.device) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1): gloo on CPU, nccl on CUDA."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo(), device
    import torch.distributed as dist

    info = DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
        device = torch.device("cuda", info.local_rank)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return info, device


def shutdown_distributed(synchronise: bool = True) -> None:
    """Leave the process group (if any) so that no rank exits while another still talks to it: a barrier first when
    every rank finished normally (after an error one rank may never arrive), then destroy_process_group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        if synchronise:
            dist.barrier()
        dist.destroy_process_group()


def configure_cpu_threads(requested: int, dist_info: DistInfo | None = None) -> int:
    """Set torch's CPU threads: `requested`, or (0 = auto) all cores but one shared among the DDP processes.
    Leaving a core free matters: an oversubscribed OpenMP pool is several times slower than a single thread."""
    world = dist_info.world_size if dist_info else 1
    n = requested or max(1, ((os.cpu_count() or 1) - 1) // world)
    torch.set_num_threads(n)
    return n


def all_max(flag: float, dist_info: DistInfo, device) -> float:
    """The largest `flag` over all ranks (the flag itself in a single process): one rank's NaN stops every rank."""
    if not dist_info.enabled:
        return flag
    import torch.distributed as dist

    t = torch.tensor([flag], dtype=torch.float32, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return float(t.item())


def broadcast_module(model: nn.Module) -> None:
    """Copy rank 0's parameters and buffers to every rank (after a change made outside the optimiser)."""
    import torch.distributed as dist

    for t in list(model.parameters()) + list(model.buffers()):
        dist.broadcast(t.data, 0)
