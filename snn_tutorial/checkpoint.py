"""检查点：只保存 state_dict、模型配置与指标（纯数据），原子写入，用 weights_only=True 加载。"""

from __future__ import annotations

import errno
import os
import pickle
import re
import stat
import tempfile
import time
from pathlib import Path

import torch

from . import runtime
from .models import build_model

FORMAT = "snn-tutorial-checkpoint/1"
SHIPPED = Path(__file__).resolve().parent / "assets" / "csnn_mnist.pt"

# save_checkpoint 的临时文件名：.<文件名>.<mkstemp 的 8 个随机字符>.tmp
TEMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")
_PROCESS_START = time.time()  # 比这更早的临时文件不可能属于本进程


class CheckpointError(RuntimeError):
    """检查点无法加载，消息为中文并说明如何处理。"""


def remove_stale_temp_files(folder: str | os.PathLike) -> list[Path]:
    """删除被强行结束的保存（SIGKILL、断电）留在 folder 里的临时文件，返回删掉的文件。

    只删同时满足这些条件的文件：名字符合 .<文件名>.<8 个随机字符>.tmp；是普通文件；
    修改时间早于本进程启动；内容为空或以 zip 文件头开始（torch.save 写的格式）。别的文件一概不动。
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
                if f.read(4) not in (b"", b"PK\x03\x04"):
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
                    metrics: dict | None = None) -> Path:
    """保存 {格式, 模型名, 配置, state_dict, 指标}。先写临时文件再改名，中途失败或被中断不会留下半个文件，
    原有的同名检查点也保持不变。顺便清理以前被强行结束的保存留下的临时文件。

    config 默认取 model.config（本教程的模型在构造时记下了自己的完整配置）。
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
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp 建的文件只有本人可读，改回普通文件的权限
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
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


def _structure_problems(ckpt: dict) -> list[str]:
    problems = []
    if not isinstance(ckpt.get("model"), str):
        problems.append("'model'（模型名）")
    if not isinstance(ckpt.get("config"), dict):
        problems.append("'config'（模型配置）")
    state = ckpt.get("state_dict")
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        problems.append("'state_dict'（参数）")
    if not isinstance(ckpt.get("metrics"), dict):
        problems.append("'metrics'（指标）")
    return problems


def load_checkpoint(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """加载检查点，返回 (已切到 eval 模式的模型, 检查点字典)。path 为 None 时加载随包附带的权重。

    张量先读到 CPU，再把模型移到 device；device 不可用时抛出 runtime.DeviceError（而不是说文件坏了）。
    """
    device = runtime.select_device(device)
    path = Path(path) if path is not None else SHIPPED
    try:
        exists, is_dir = path.exists(), path.is_dir()
    except OSError as err:
        raise CheckpointError(f"无法访问检查点 {path}：{runtime.describe_os_error(err, reading=True)}。请检查它所在目录的权限。") from err
    if not exists:
        raise CheckpointError(f"检查点文件不存在：{path}。请检查路径，或先用 python -m snn_tutorial.train 训练并保存一个。")
    if is_dir:
        raise CheckpointError(f"{path} 是一个目录，不是检查点文件。请给出 .pt 文件的路径，例如 {path / 'csnn.pt'}。")
    try:
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
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        raise CheckpointError(
            f"检查点 {path} 里有 Python 对象{f'（{found[1]}）' if found else ''}，不是纯数据。"
            f"它多半是用 torch.save(整个模型) 保存的，或者根本不是本教程的检查点。"
            f"本教程只用 weights_only=True 加载纯数据，不会执行文件里的代码。\n"
            f"处理办法：让文件的来源改为保存 state_dict（torch.save(model.state_dict(), ...)），或用本教程重新训练。"
        ) from err
    except Exception as err:  # 坏文件可能引发各种异常：RuntimeError、EOFError、IndexError……
        raise CheckpointError(
            f"无法读取检查点 {path}：它不是有效的 PyTorch 检查点，或已损坏/不完整（{_first_line(err)}）。"
            f"请重新训练，或重新下载/复制这个文件。"
        ) from err
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
    try:
        model = build_model(ckpt["model"], **ckpt["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(
            f"检查点 {path} 里的模型配置无法识别或不合法（模型 {ckpt['model']!r}，配置 {ckpt['config']}：{err}）。"
            f"它可能来自更新或更旧版本的本教程，或被改写过；请用当前版本重新训练。"
        ) from err
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        detail = "\n".join(str(err).splitlines()[:4])
        raise CheckpointError(
            f"检查点 {path} 的参数与模型结构对不上（模型 {ckpt['model']}，配置 {ckpt['config']}）：\n{detail}\n"
            f"请确认检查点与代码版本一致，或重新训练。"
        ) from err
    return model.to(device).eval(), ckpt
