"""检查点：只保存 state_dict、模型配置、指标与运行输入（纯数据），原子写入，用 weights_only=True 加载。

检查点的键：format、model（模型名）、config（模型配置）、state_dict、metrics（只放测得的数：准确率、用时、训练了几轮……）、
run（这次运行的输入：数据集、配方、种子、命令……；没有时不写）。早先的检查点没有 run，运行输入和指标一起放在 metrics 里：
用 run_inputs(ckpt) 读运行输入，两种检查点都可以（旧的从 metrics 里按 RUN_KEYS 取出来）。
"""

from __future__ import annotations

import errno
import os
import pickle
import re
import stat
import time
import warnings
from pathlib import Path

import torch

from . import runtime
from .atomic import atomic_open
from .errors import TutorialError
from .file_formats import foreign_format, looks_like_onnx
from .models import build_model

FORMAT = "snn-tutorial-checkpoint/1"
# 运行输入：早先的检查点把它们记在 metrics 里
RUN_KEYS = ("dataset", "batch_size", "lr", "schedule", "max_shift", "max_rotate", "max_scale", "val", "val_split", "seed",
            "quick", "world_size", "command")
SHIPPED = Path(__file__).resolve().parent / "assets" / "csnn_mnist.pt"

# save_checkpoint 的临时文件名：.<文件名>.<mkstemp 的 8 个随机字符>.tmp
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_PROCESS_START = time.time()  # 比这更早的临时文件不可能属于本进程


class CheckpointError(TutorialError):
    """检查点无法加载，消息为中文并说明如何处理。"""


# 导出文件（NIR 是 HDF5，ONNX 是 protobuf）的临时文件也可能被强行结束的进程留下
_TEMP_MAGIC = (b"PK\x03\x04", b"\x89HDF\r\n\x1a\n")


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """删除被强行结束的保存（SIGKILL、断电）留在 folder 里的临时文件，返回删掉的文件。

    只删同时满足这些条件的文件：名字符合 .<文件名>.<8 个随机字符>.tmp；是普通文件；
    修改时间早于本进程启动；内容为空、以 zip 文件头开始（torch.save 写的格式），或是导出的 NIR（HDF5）、ONNX 文件。
    别的文件一概不动。
    """
    removed = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        if not TEMP_NAME.match(entry.name):
            continue
        try:
            info = entry.lstat()
            if not stat.S_ISREG(info.st_mode) or info.st_mtime >= _PROCESS_START:
                continue
            with open(entry, "rb") as f:
                head = f.read(8)
            onnx = ".onnx." in entry.name and looks_like_onnx(head)
            if head and not onnx and not head.startswith(_TEMP_MAGIC):
                continue
            entry.unlink()
            removed.append(entry)
        except OSError:
            continue
    return removed


def _interrupt_in_chain(err: BaseException) -> KeyboardInterrupt | None:
    """torch.save 被 Ctrl+C 打断时，抛出来的常是 “enforce fail at inline_container.cc”，真正的原因在 __context__ 里。"""
    seen = err
    while seen is not None:
        if isinstance(seen, KeyboardInterrupt):
            return seen
        seen = seen.__context__
    return None


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, name: str, config: dict | None = None,
                    metrics: dict | None = None, overwrite: bool = True, run: dict | None = None) -> Path:
    """保存 {格式, 模型名, 配置, state_dict, 指标, 运行输入}。先写临时文件再改名，中途失败或被中断不会留下半个文件，
    原有的同名检查点也保持不变。顺便清理以前被强行结束的保存留下的临时文件。

    config 默认取 model.config（本教程的模型在构造时记下了自己的完整配置）。
    overwrite=False：path 已存在时不覆盖，抛出 FileExistsError（文件保持原样）。
    """
    if config is None:
        config = model.config
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent)
    payload = {
        "format": FORMAT,
        "model": name,
        "config": {k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "metrics": dict(metrics or {}),
        **({"run": dict(run)} if run else {}),
    }
    try:
        with atomic_open(path, "wb", overwrite=overwrite) as f:
            torch.save(payload, f)
    except BaseException as err:
        interrupt = _interrupt_in_chain(err)
        if interrupt is not None and interrupt is not err:
            raise interrupt from None
        raise
    return path


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    if "weights_only" in text:  # PyTorch 关于 weights_only 的长消息截断后读起来像在建议关掉保护，一律不转述
        first = type(err).__name__
    return first[:200]


def run_inputs(ckpt: dict) -> dict:
    """检查点记录的运行输入（数据集、配方、种子、命令……）：新检查点的 ckpt["run"]；早先的检查点把它们记在 metrics 里。"""
    if isinstance(ckpt.get("run"), dict):
        return ckpt["run"]
    return {k: v for k, v in ckpt.get("metrics", {}).items() if k in RUN_KEYS}


def _structure_problems(ckpt: dict) -> list[str]:
    problems = []
    if not isinstance(ckpt.get("model"), str):
        problems.append("'model'（模型名）")
    if not isinstance(ckpt.get("config"), dict):
        problems.append("'config'（模型配置）")
    state = ckpt.get("state_dict")
    if (not isinstance(state, dict) or not state
            or not all(isinstance(v, torch.Tensor) and v.layout == torch.strided for v in state.values())):
        problems.append("'state_dict'（参数；须为普通的稠密张量）")
    if not isinstance(ckpt.get("metrics"), dict):
        problems.append("'metrics'（指标）")
    if not isinstance(ckpt.get("run", {}), dict):
        problems.append("'run'（运行输入）")
    return problems


def non_finite_parameters(state: dict) -> list[str]:
    """state_dict 里含 NaN 或无穷大的张量名。"""
    return [k for k, v in state.items() if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]


def _check_file(path: Path) -> bytes:
    """确认 path 是一个能读的普通文件，返回它开头的 64 字节。问题（不存在、失效的链接、目录、管道……）抛出 CheckpointError。"""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        problem = runtime.link_problem(path)
        if problem is not None:
            raise CheckpointError(f"检查点不能用：{problem}。请修正这个链接，或直接给出检查点文件的路径。") from None
        raise CheckpointError(f"检查点文件不存在：{path}。请检查路径，或先用 python -m snn_tutorial.train 训练并保存一个。") from None
    except OSError as err:
        problem = runtime.link_problem(path)
        if problem is not None:
            raise CheckpointError(f"检查点不能用：{problem}。请修正这个链接，或直接给出检查点文件的路径。") from None
        raise CheckpointError(f"无法访问检查点 {path}：{runtime.describe_os_error(err, reading=True)}。请检查它所在目录的权限。") from err
    if stat.S_ISDIR(info.st_mode):
        raise CheckpointError(f"{path} 是一个目录，不是检查点文件。请给出 .pt 文件的路径，例如 {path / 'csnn.pt'}。")
    if not stat.S_ISREG(info.st_mode):
        raise CheckpointError(f"{path} 是一个{runtime.file_kind(info.st_mode)}，不是普通文件，不能当作检查点读取。"
                              f"请给出训练保存的 .pt 文件的路径。")
    try:
        with open(path, "rb") as f:
            return f.read(64)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM):
            raise CheckpointError(f"无法读取检查点 {path}：{runtime.describe_os_error(err, reading=True)}。") from err
        raise CheckpointError(
            f"无法读取检查点 {path}：{runtime.describe_os_error(err, reading=True)}。"
            f"文件本身可能完好：请检查文件权限（例如 ls -l），或换一个有权限的账户运行。"
        ) from err


def _unpickling_message(path: Path, err: BaseException, head: bytes) -> str:
    text = str(err)
    found = re.search(r"Unsupported global: GLOBAL (\S+)", text) or re.search(r"unsupported GLOBAL (\S+)", text)
    if found and found[1].startswith("torch.nn."):
        return (f"检查点 {path} 里存的是整个模型对象（{found[1]}），不是纯数据：它是用 torch.save(整个模型) 保存的。"
                f"本教程只用 weights_only=True 加载纯数据，不会执行文件里的代码。\n"
                f"处理办法：让文件的来源改为保存 state_dict（torch.save(model.state_dict(), ...)），或用本教程重新训练。")
    if found:
        return (f"检查点 {path} 里有 Python 对象（{found[1]}），不是纯数据，也不是本教程的检查点。"
                f"本教程只用 weights_only=True 加载纯数据，没有执行文件里的代码。请不要用 weights_only=False 去打开来历不明的文件；"
                f"请换成本教程训练保存的检查点。")
    if head[:1] == b"\x80" and len(head) > 1 and head[1] > 2:   # torch.save 的旧格式用 pickle 协议 2，新格式是 zip
        return (f"{path} 不是检查点：它是直接用 pickle（协议 {head[1]}）保存的 Python 对象，不是 torch.save 写的文件。"
                f"本教程只用 weights_only=True 加载纯数据，没有执行文件里的代码；请不要用 pickle.load 或 weights_only=False 打开"
                f"来历不明的文件。请换成本教程训练保存的检查点。")
    return (f"无法读取检查点 {path}：它不是本教程能读的纯数据检查点（{_first_line(err)}）。"
            f"本教程只用 weights_only=True 加载纯数据，没有执行文件里的代码。请换成本教程训练保存的检查点，或重新训练。")


def load_checkpoint(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """加载检查点，返回 (已切到 eval 模式的模型, 检查点字典)。path 为 None 时加载随包附带的权重。

    张量先读到 CPU，再把模型移到 device；device 不可用时抛出 runtime.DeviceError（而不是说文件坏了）。
    读之前先看文件开头的字节：ONNX、NIR、Git LFS 指针等不是检查点的文件，会说清它们是什么。
    """
    device = runtime.select_device(device)
    path = Path(path).expanduser() if path is not None else SHIPPED
    head = _check_file(path)
    foreign = foreign_format(path, head)
    if foreign is not None:
        raise CheckpointError(f"{path} 不是检查点：{foreign}。")
    ckpt = _read(path, head)
    _check_contents(path, ckpt)
    return _build(path, ckpt).to(device).eval(), ckpt


def _read(path: Path, head: bytes) -> dict:
    """torch.load(weights_only=True)，把各种读不出来的情形换成中文的 CheckpointError。"""
    try:
        with warnings.catch_warnings():   # PyTorch 的英文警告（pickle 协议、稀疏张量……）不应抢在中文说明之前
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except OSError as err:
        if err.errno not in (errno.EACCES, errno.EPERM):  # 截断的文件也会引发 OSError（例如 EINVAL）
            raise CheckpointError(f"无法读取检查点 {path}：它已损坏或不完整（{_first_line(err)}）。请重新训练，或重新下载/复制这个文件。") from err
        raise CheckpointError(
            f"无法读取检查点 {path}：{runtime.describe_os_error(err, reading=True)}。"
            f"文件本身可能完好：请检查文件权限（例如 ls -l），或换一个有权限的账户运行。"
        ) from err
    except pickle.UnpicklingError as err:
        if "Weights only load failed" not in str(err):
            raise CheckpointError(f"无法读取检查点 {path}：它不是有效的 PyTorch 检查点，或已损坏/不完整（{_first_line(err)}）。"
                                  f"请重新训练，或重新下载/复制这个文件。") from err
        raise CheckpointError(_unpickling_message(path, err, head)) from err
    except MemoryError as err:
        raise CheckpointError(f"读取检查点 {path} 时内存或系统资源不足（{_first_line(err)}）：这不是文件损坏。"
                              f"请关掉别的程序、减少 --threads 后再试。") from err
    except Exception as err:  # 坏文件可能引发各种异常：RuntimeError、EOFError、IndexError……
        if isinstance(err, RuntimeError) and _resource_error(err):
            raise CheckpointError(f"读取检查点 {path} 时内存或系统资源不足（{_first_line(err)}）：这不是文件损坏。"
                                  f"请关掉别的程序、减少 --threads 后再试。") from err
        raise CheckpointError(
            f"无法读取检查点 {path}：它不是有效的 PyTorch 检查点，或已损坏/不完整（{_first_line(err)}）。"
            f"请重新训练，或重新下载/复制这个文件。"
        ) from err
    return ckpt


def _check_contents(path: Path, ckpt) -> None:
    """格式标记、必需的键、参数里没有 NaN/无穷大。"""
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        hint = "它看起来是一个裸的 state_dict，缺少模型配置；" if isinstance(ckpt, dict) and ckpt and all(
            isinstance(v, torch.Tensor) for v in ckpt.values()) else ""
        raise CheckpointError(
            f"{path} 不是本教程的检查点（缺少格式标记 {FORMAT!r}）。{hint}"
            f"请用 snn_tutorial.checkpoint.save_checkpoint 保存，或自己建好模型后用 model.load_state_dict 加载。"
        )
    problems = _structure_problems(ckpt)
    if problems:
        raise CheckpointError(
            f"检查点 {path} 带有本教程的格式标记，但缺少或弄坏了 {'、'.join(problems)}：文件不完整，或被别的程序改写过。"
            f"请重新训练，或重新下载/复制这个文件。"
        )
    bad = non_finite_parameters(ckpt["state_dict"])
    if bad:
        raise CheckpointError(
            f"检查点 {path} 的参数里有 NaN 或无穷大（{len(bad)} 个张量，例如 {', '.join(bad[:3])}）：它是训练发散时存下的，或已损坏。"
            f"用它评估或导出只会得到无意义的结果；请减小学习率重新训练，或换一个检查点。"
        )


def _build(path: Path, ckpt: dict) -> torch.nn.Module:
    """按配置重建模型并严格装入参数。"""
    try:
        model = build_model(ckpt["model"], **ckpt["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"检查点 {path} 里的模型配置无法识别或不合法（模型 {ckpt['model']!r}，配置 {_short(ckpt['config'])}：{err}）。"
            f"它可能来自更新或更旧版本的本教程，或被改写过；请用当前版本重新训练。"
        ) from err
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        detail = "\n".join(str(err).splitlines()[:4])
        raise CheckpointError(
            f"检查点 {path} 的参数与模型结构对不上（模型 {ckpt['model']}，配置 {_short(ckpt['config'])}）：\n{detail}\n"
            f"请确认检查点与代码版本一致，或重新训练。"
        ) from err
    return model


def _short(value, limit: int = 300) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "…"


def _resource_error(err: BaseException) -> bool:
    text = str(err).lower()
    return "can't allocate memory" in text or "out of memory" in text or "resource temporarily unavailable" in text
