"""多进程训练（torchrun + DistributedDataParallel）的少量辅助函数。

单进程运行时这里的函数都退化为无操作，训练结果与不用它们时完全相同。
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def world() -> tuple[int, int, int]:
    """返回 (rank, world_size, local_rank)；不是由 torchrun 启动时为 (0, 1, 0)。"""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    """是否为 0 号进程（只有它打印、写日志、保存检查点）。"""
    return not is_distributed() or dist.get_rank() == 0


def init(device_type: str) -> None:
    """由 torchrun 启动（WORLD_SIZE > 1）时初始化进程组：GPU 用 nccl，CPU 用 gloo。"""
    if world()[1] > 1 and not is_distributed():
        dist.init_process_group(backend="nccl" if device_type == "cuda" else "gloo")


def shutdown() -> None:
    if is_distributed():
        dist.destroy_process_group()


def sum_across(*values: float, device: torch.device | str = "cpu") -> list[float]:
    """把各进程的数值逐项相加（单进程时原样返回）。"""
    if not is_distributed():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return t.tolist()


def parameters_agree(model: torch.nn.Module) -> bool:
    """各进程的参数与缓冲区是否逐位相同（比较 0 号进程广播来的副本）。"""
    if not is_distributed():
        return True
    same = True
    for tensor in list(model.state_dict().values()):
        reference = tensor.detach().clone()
        dist.broadcast(reference, src=0)
        same &= torch.equal(reference, tensor.detach())
    flag = torch.tensor([1.0 if same else 0.0], device=next(model.parameters()).device)
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())
