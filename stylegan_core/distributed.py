"""torch.distributed helpers that fall back to one process.

Run under `torchrun --nproc_per_node N` and `init()` joins the process group (NCCL when CUDA is
available, gloo otherwise); run plainly and every helper behaves as world size 1. Metrics shard
*sample indices* across ranks and gather per-sample results back into index order, so the
result is independent of the number of processes.
"""

import atexit
import os

import torch
import torch.distributed as dist


def init(device: str | torch.device = "cpu") -> None:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1); otherwise do nothing."""
    if dist.is_available() and not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        # A process that exits with the group alive can abort in the backend's teardown (gloo:
        # "terminate called without an active exception", exit -6) after its work is done.
        atexit.register(shutdown)
        if torch.device(device).type == "cuda":
            torch.cuda.set_device(local_rank())


def shutdown() -> None:
    """Leave the process group (no-op when none was joined); called at exit after `init`."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


def default_device(requested: str = "auto") -> torch.device:
    """'auto' picks this rank's GPU when CUDA is available, else the CPU."""
    if requested != "auto":
        return torch.device(requested)
    return torch.device("cuda", local_rank()) if torch.cuda.is_available() else torch.device("cpu")


def shard(indices: range, rank_: int | None = None, world: int | None = None) -> range:
    """This rank's share of `indices`: a strided slice (rank, rank + world, ...)."""
    rank_ = rank() if rank_ is None else rank_
    world = world_size() if world is None else world
    return indices[rank_::world]


def gather_by_index(local: torch.Tensor, total: int) -> torch.Tensor:
    """Reassemble per-sample rows computed under `shard(range(total))` into index order.

    `local` is [len(shard), ...] on this rank; returns [total, ...] on every rank (CPU).
    """
    world = world_size()
    if world == 1:
        return local.cpu()
    sizes = [len(shard(range(total), r, world)) for r in range(world)]
    pad = max(sizes)
    device = local.device if local.device.type == "cuda" else torch.device("cpu")
    buf = torch.zeros((pad, *local.shape[1:]), dtype=local.dtype, device=device)
    buf[: local.shape[0]] = local.to(device)
    parts = [torch.empty_like(buf) for _ in range(world)]
    dist.all_gather(parts, buf)
    out = torch.empty((total, *local.shape[1:]), dtype=local.dtype)
    for r, part in enumerate(parts):
        out[r::world] = part[: sizes[r]].cpu()
    return out


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum `t` over ranks (returns `t` unchanged with one process)."""
    if world_size() > 1:
        t = t.clone()
        dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()
