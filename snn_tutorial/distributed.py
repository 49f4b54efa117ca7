"""多进程训练（torchrun + DistributedDataParallel）的少量辅助函数。

单进程运行时这里的函数都退化为无操作，训练结果与不用它们时完全相同。
"""

from __future__ import annotations

import datetime
import math
import os

import torch
import torch.distributed as dist

from .errors import TutorialError

TIMEOUT_ENV = "SNN_TUTORIAL_DIST_TIMEOUT"
DEFAULT_TIMEOUT = 120.0   # 秒：一次跨进程通信最多等这么久。各进程每步的工作量相同，正常时彼此只差零点几秒


class DistributedError(TutorialError):
    """多进程训练没能建立起来（例如别的进程没有启动），消息为中文。exit_code 是命令行的退出码。"""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def timeout_seconds() -> float:
    """跨进程通信的超时（秒）：环境变量 SNN_TUTORIAL_DIST_TIMEOUT，默认 120。某个进程被暂停或卡住时，
    其余进程等这么久就报错（0 号进程随即保存最近一次评估的权重），而不是等上 PyTorch 默认的 30 分钟。"""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise DistributedError(f"环境变量 {TIMEOUT_ENV}={text!r} 应为正的秒数，例如 120。训练还没有开始。", exit_code=2)
    return value


def is_communication_error(err: BaseException) -> bool:
    """err 是不是跨进程通信失败：对方进程退出（连接断开）、超时、gloo/nccl 报错。"""
    if not is_distributed() or not isinstance(err, RuntimeError):
        return False
    backend_error = getattr(dist, "DistBackendError", ())
    text = str(err).lower()
    return (isinstance(err, backend_error) or "gloo" in text or "nccl" in text or "connection" in text
            or "timed out" in text or "timeout" in text or "peer" in text)


def world() -> tuple[int, int, int]:
    """返回 (rank, world_size, local_rank)；不是由 torchrun 启动时为 (0, 1, 0)。"""
    return (int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0)))


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def is_main() -> bool:
    """是否为 0 号进程（只有它打印、写日志、保存检查点）。"""
    return not is_distributed() or dist.get_rank() == 0


def init(device_type: str) -> None:
    """由 torchrun 启动（WORLD_SIZE > 1）时初始化进程组：GPU 用 nccl，CPU 用 gloo；通信超时见 timeout_seconds。

    nccl：让通信超时或出错时只中止通信、以异常的形式报告（TORCH_NCCL_ASYNC_ERROR_HANDLING=2），
    而不是直接结束进程，0 号进程才来得及保存（尚未在多块 GPU 上验证）。
    """
    if world()[1] > 1 and not is_distributed():
        backend = "nccl" if device_type == "cuda" else "gloo"
        seconds = timeout_seconds()
        if backend == "nccl":
            os.environ.setdefault("TORCH_NCCL_ASYNC_ERROR_HANDLING", "2")
        try:
            dist.init_process_group(backend=backend, timeout=datetime.timedelta(seconds=seconds))
        except (RuntimeError, ValueError) as err:
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
            raise DistributedError(
                f"多进程训练没能建立起来（{first}）：{seconds:g} 秒内没有等到所有进程。"
                f"请用 torchrun 启动（例如 torchrun --standalone --nproc_per_node=2 -m snn_tutorial.train ...），"
                f"并确认每个进程都正常启动了。训练还没有开始。"
            ) from err


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
