"""检查点：只保存 state_dict、模型配置与指标（纯数据），原子写入，用 weights_only=True 加载。"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from .models import build_model

FORMAT = "snn-tutorial-checkpoint/1"
SHIPPED = Path(__file__).resolve().parent / "assets" / "csnn_mnist.pt"


class CheckpointError(RuntimeError):
    """检查点无法加载，消息为中文并说明如何处理。"""


def save_checkpoint(path: str | os.PathLike, model: torch.nn.Module, name: str, config: dict | None = None,
                    metrics: dict | None = None) -> Path:
    """保存 {格式, 模型名, 配置, state_dict, 指标}。先写临时文件再改名，中途失败不会留下半个文件。

    config 默认取 model.config（本教程的模型在构造时记下了自己的完整配置）。
    """
    if config is None:
        config = model.config
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
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
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict]:
    """加载检查点，返回 (已切到 eval 模式的模型, 检查点字典)。path 为 None 时加载随包附带的权重。"""
    path = Path(path) if path is not None else SHIPPED
    if not path.exists():
        raise CheckpointError(f"检查点文件不存在：{path}。请检查路径，或先用 python -m snn_tutorial.train 训练并保存一个。")
    try:
        ckpt = torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # 坏文件可能引发各种异常：UnpicklingError、RuntimeError、EOFError、IndexError……
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"无法读取检查点 {path}：它不是有效的 PyTorch 检查点，或已损坏/不完整（{first[:200]}）。\n"
            f"如果它是用 torch.save(整个模型) 保存的旧文件，请改为保存 state_dict；否则请重新训练或重新下载。"
        ) from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        hint = "它看起来是一个裸的 state_dict，缺少模型配置；" if isinstance(ckpt, dict) and all(
            isinstance(v, torch.Tensor) for v in ckpt.values()) else ""
        raise CheckpointError(
            f"{path} 不是本教程的检查点（缺少格式标记 {FORMAT!r}）。{hint}"
            f"请用 snn_tutorial.checkpoint.save_checkpoint 保存，或自己建好模型后用 model.load_state_dict 加载。"
        )
    try:
        model = build_model(ckpt["model"], **ckpt["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"检查点 {path} 里的模型配置无法识别（{err}）。它可能来自更新或更旧版本的本教程。") from err
    try:
        model.load_state_dict(ckpt["state_dict"], strict=True)
    except RuntimeError as err:
        detail = "\n".join(str(err).splitlines()[:4])
        raise CheckpointError(
            f"检查点 {path} 的参数与模型结构对不上（模型 {ckpt['model']}，配置 {ckpt['config']}）：\n{detail}\n"
            f"请确认检查点与代码版本一致，或重新训练。"
        ) from err
    return model.to(device).eval(), ckpt
