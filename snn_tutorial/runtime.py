"""运行环境：随机种子、设备选择、CPU 线程数，以及“这个文件夹能不能写”的检查。"""

from __future__ import annotations

import errno
import functools
import os
import random
import re
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import TutorialError, render_for_notebook  # noqa: F401 -- render_for_notebook 的旧导入位置
from .validate import int_between

SEED_MAX = 2**32 - 1  # NumPy 接受的最大种子


class DeviceError(TutorialError):
    """请求的计算设备不可用或写法不对。"""


def seed_everything(seed: int = 0) -> None:
    """固定 Python、NumPy 与 PyTorch（含 CUDA）的随机种子。seed 须为 0 … 2**32-1 的整数。"""
    seed = int_between("随机种子", seed, 0, SEED_MAX, verb="须为")
    random.seed(int(seed))
    np.random.seed(int(seed))
    torch.manual_seed(int(seed))  # 也会为所有 CUDA 设备设种子


MPS_MESSAGE = (
    "不支持 MPS（Apple 芯片 GPU）：SpikingJelly 2.0 的神经元只能在 CPU 和 CUDA 上运行，"
    "在 MPS 上 functional.neuron_implementation 会报 ValueError: Unsupported neuron device mps。\n"
    "处理办法：改用 device='cpu'（命令行：--device cpu）；在 Apple 芯片的 Mac 上，本教程的全部内容都在 CPU 上运行。"
)
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|cuda|mps)(?::(\d+))?$")


def select_device(preference: str | torch.device = "auto") -> torch.device:
    """选择计算设备。

    "auto"（默认）：有可用的 CUDA 就用 cuda，否则用 cpu；从不选 MPS（SpikingJelly 2.0 的神经元不支持它）。
    明确要求 "cuda"/"cuda:N" 但不可用、要求 "mps"、或写法无法识别时抛出 DeviceError，而不是悄悄退回 CPU。
    """
    text = str(preference if preference is not None else "auto").strip().lower() or "auto"
    match = _DEVICE_PATTERN.match(text)
    if not match or not (match.group(2) is None or match.group(1) in {"cuda", "mps"} or text == "cpu:0"):
        raise DeviceError(f"无法识别的设备 {str(preference)!r}：请使用 auto、cpu、cuda 或 cuda:0（第几块 GPU）。")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if kind == "mps":
        raise DeviceError(MPS_MESSAGE)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(
                "请求使用 CUDA（GPU），但当前 PyTorch 检测不到可用的 GPU。\n"
                "可能的原因：本机没有 NVIDIA GPU、驱动未安装，或安装的是 CPU 版 PyTorch。\n"
                "处理办法：在终端运行 nvidia-smi 检查驱动；"
                "用 python -c \"import torch; print(torch.version.cuda)\" 查看 PyTorch 是否带 CUDA；"
                "或改用 device='cpu'（命令行：--device cpu）。"
            )
        count = torch.cuda.device_count()
        if index is not None and int(index) >= count:
            raise DeviceError(f"请求使用 {text}，但本机只有 {count} 块可用的 GPU（编号 0 … {count - 1}）。")
        return torch.device(text)
    return torch.device("cpu")


def available_cores() -> int:
    """本进程可用的 CPU 核数（考虑容器/任务集的限制）。"""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Windows、macOS
        return os.cpu_count() or 1


def max_threads() -> int:
    """线程数的上限：本机 CPU 核数的 4 倍（至少 8）。线程比核多只会更慢；几万个线程会耗尽内存。"""
    return max(8, 4 * (os.cpu_count() or 1))


def set_cpu_threads(n: int | None = None) -> int:
    """设置 PyTorch 的 CPU 线程数并返回它。

    默认用全部可用核：在 2 核机器上实测（python -m snn_tutorial.bench），
    本教程的卷积 SNN 训练用 2 个线程明显快于 1 个；
    只有很小的张量（例如单个神经元的演示）才是 1 个线程更快。
    """
    if n is None:
        n = available_cores()
    n = int_between("线程数", n, 1, max_threads(), verb="须为", note=f"（本机 {os.cpu_count()} 个 CPU 核）")
    torch.set_num_threads(n)
    return n


BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # 能直接计算 bfloat16 的 x86 指令集扩展


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """这颗 CPU 能否直接计算 bfloat16（AVX-512 BF16 或 AMX）。只在 Linux 上检测，其余平台一律返回 False。

    没有这些指令时 bfloat16 要靠软件模拟，可能反而比 float32 慢（例如 Apple 芯片、较老的 x86），
    所以 CPU 上的混合精度只在这里返回 True 时才打开。cpuinfo 用于测试（/proc/cpuinfo 的文本）。
    """
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return any(flag in flags for flag in BF16_CPU_FLAGS)
    return False


def amp_dtype(device: torch.device | str, enabled: bool = True) -> torch.dtype | None:
    """自动混合精度用的低精度类型：CUDA 上 float16；CPU 上有原生 bfloat16 指令时 bfloat16；否则 None（不用混合精度）。"""
    device = torch.device(device)
    if not enabled:
        return None
    if device.type == "cuda":
        return torch.float16
    if device.type == "cpu" and _native_bf16():
        return torch.bfloat16
    return None


@functools.lru_cache(maxsize=None)
def _native_bf16() -> bool:
    return cpu_has_native_bf16()


# ---------------------------------------------------------------- 文件系统
_OS_REASONS = {
    errno.EACCES: "没有写权限",
    errno.EPERM: "操作不被允许（没有权限）",
    errno.EROFS: "所在的文件系统是只读的",
    errno.ENOSPC: "磁盘已满",
    errno.ENOENT: "路径不存在，或这里不允许新建文件",
    errno.ENOTDIR: "路径中有一段不是目录",
    errno.EISDIR: "这是一个目录，不是文件",
    errno.ENAMETOOLONG: "文件名太长",
}
if hasattr(errno, "EDQUOT"):
    _OS_REASONS[errno.EDQUOT] = "超出了磁盘配额"


def describe_os_error(err: OSError, reading: bool = False) -> str:
    """把 OSError 说成一句中文原因，例如“没有写权限（[Errno 13] Permission denied）”。"""
    reason = _OS_REASONS.get(err.errno, "系统报错")
    if reading and err.errno in (errno.EACCES, errno.EPERM):
        reason = "没有读取权限"
    detail = f"[Errno {err.errno}] {err.strerror}" if err.errno is not None and err.strerror else str(err)
    return f"{reason}（{detail}）"


_KINDS = ((stat.S_ISDIR, "目录"), (stat.S_ISCHR, "字符设备文件"), (stat.S_ISBLK, "块设备文件"),
          (stat.S_ISFIFO, "命名管道（FIFO）"), (stat.S_ISSOCK, "套接字"), (stat.S_ISLNK, "符号链接"))


def file_kind(mode: int) -> str:
    """stat 的 st_mode → “普通文件”“目录”“字符设备文件”“命名管道（FIFO）”……"""
    return next((name for test, name in _KINDS if test(mode)), "普通文件" if stat.S_ISREG(mode) else "特殊文件")


def link_problem(path: str | os.PathLike) -> str | None:
    """path 看起来“不存在”时，说明是不是符号链接的问题：失效的链接（指向哪里）、循环的链接。不是时返回 None。"""
    path = Path(path)
    try:
        os.stat(path)
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            return f"{path} 是循环的符号链接（链接一层层指下去又回到了自己），它不指向任何文件"
        if err.errno != errno.ENOENT:
            return None
    try:
        if stat.S_ISLNK(os.lstat(path).st_mode):
            return f"{path} 是失效的符号链接：它指向 {os.readlink(path)}，而那里没有文件"
    except OSError:
        pass
    return None


def name_length_problem(path: str | os.PathLike, extra: int = 0) -> str | None:
    """文件名（加上 extra 个字节的临时后缀）是否超过文件系统的上限（通常 255 字节）。不超过时返回 None。"""
    path = Path(path)
    folder = next((p for p in path.parents if p.is_dir()), Path("."))
    try:
        limit = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        limit = 255
    size = len(os.fsencode(path.name))
    if size + extra > limit:
        return f"文件名太长：{size} 字节，这里的文件系统最多允许 {limit - extra} 字节（还要留 {extra} 字节给保存时的临时文件名）"
    return None


MIN_FREE_BYTES = 10 * 1024 * 1024   # 日志目录等至少要剩这么多空间


def writable_dir_problem(folder: str | os.PathLike, create: bool = True) -> str | None:
    """检查能否在 folder 里新建文件：必要时先建好目录，再试写一个临时文件并立即删掉。

    可以写时返回 None，否则返回一句中文原因（指明哪一段路径出了问题）。
    """
    folder = Path(folder)
    for parent in [folder, *folder.parents]:  # 最近的已存在的那一级必须是目录
        if parent.exists():
            if not parent.is_dir():
                return f"{parent} 是一个文件，不是目录"
            break
    try:
        if create:
            folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".snn-tutorial-probe.", suffix=".tmp")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        return f"无法在 {folder} 里新建文件：{describe_os_error(err)}"
    return None


def free_space_problem(folder: str | os.PathLike, need: int = MIN_FREE_BYTES, what: str = "") -> str | None:
    """folder 所在的磁盘是否至少还有 need 字节。够时返回 None。"""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free < need:
        return f"磁盘空间不足：{folder} 所在的磁盘只剩 {free / 1e6:.1f} MB，{what or '至少'}需要 {need / 1e6:.1f} MB"
    return None
