"""运行环境：随机种子、设备选择、CPU 线程数。"""

import os
import random

import numpy as np
import torch


class DeviceError(RuntimeError):
    """请求的计算设备不可用。"""


def seed_everything(seed: int = 0) -> None:
    """固定 Python、NumPy 与 PyTorch（含 CUDA）的随机种子。"""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # 也会为所有 CUDA 设备设种子


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())


def select_device(preference: str = "auto") -> torch.device:
    """选择计算设备。

    preference 为 "auto" 时依次尝试 cuda、mps、cpu；
    明确要求 "cuda"/"mps" 但不可用时抛出 DeviceError，而不是悄悄退回 CPU。
    """
    pref = (preference or "auto").strip().lower()
    if pref == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    kind = pref.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "请求使用 CUDA（GPU），但当前 PyTorch 检测不到可用的 GPU。\n"
            "可能的原因：本机没有 NVIDIA GPU、驱动未安装，或安装的是 CPU 版 PyTorch。\n"
            "处理办法：在终端运行 nvidia-smi 检查驱动；"
            "用 python -c \"import torch; print(torch.version.cuda)\" 查看 PyTorch 是否带 CUDA；"
            "或改用 device='cpu'（命令行：--device cpu）。"
        )
    if kind == "mps" and not _mps_available():
        raise DeviceError(
            "请求使用 MPS（Apple 芯片 GPU），但当前环境不可用。"
            "MPS 需要 Apple Silicon 的 Mac 与 macOS 12.3 以上；否则请改用 device='cpu'。"
        )
    if kind not in {"cuda", "mps", "cpu"}:
        raise DeviceError(f"无法识别的设备 {preference!r}：请使用 auto、cpu、cuda、cuda:0 或 mps。")
    return torch.device(pref)


def available_cores() -> int:
    """本进程可用的 CPU 核数（考虑容器/任务集的限制）。"""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Windows、macOS
        return os.cpu_count() or 1


def set_cpu_threads(n: int | None = None) -> int:
    """设置 PyTorch 的 CPU 线程数并返回它。

    默认用全部可用核：在 2 核机器上实测（python -m snn_tutorial.bench），
    本教程的卷积 SNN 训练用 2 个线程明显快于 1 个；
    只有很小的张量（例如单个神经元的演示）才是 1 个线程更快。
    """
    n = available_cores() if n is None else int(n)
    if n < 1:
        raise ValueError(f"线程数必须 ≥ 1，收到 {n}")
    torch.set_num_threads(n)
    return n
