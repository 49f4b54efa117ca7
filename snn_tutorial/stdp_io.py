"""STDP 网络的保存与加载：纯数据（配置、权重、自适应阈值、指标），用 weights_only=True 读。

随包附带两份训练好的网络（stdp_mnist_100.pt 与 stdp_mnist_400.pt，说明见同名 .md），
让快速模式与没有时间训练的读者也能看到学到的感受野。
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import torch

from .atomic import atomic_open
from .checkpoint import CheckpointError, _check_file, _read
from .file_formats import foreign_format
from .stdp import DiehlCookNetwork, STDPConfig

FORMAT = "snn_tutorial.stdp/1"
SHIPPED_STDP = Path(__file__).resolve().parent / "assets" / "stdp_mnist_400.pt"


def save_network(path: str | os.PathLike, net: DiehlCookNetwork, metrics: dict | None = None) -> Path:
    """把网络写成纯数据文件（先写临时文件再替换，写到一半被打断不会留下坏文件）。metrics 只放测得的数。"""
    if not isinstance(net, DiehlCookNetwork):
        raise ValueError(f"net 应为 DiehlCookNetwork，收到 {type(net).__name__}")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": dataclasses.asdict(net.config), **net.state_dict(),
               "metrics": dict(metrics or {})}
    with atomic_open(path) as f:
        torch.save(payload, f)
    return path


def load_network(path: str | os.PathLike | None = None) -> tuple[DiehlCookNetwork, dict]:
    """读回 save_network 写的文件，返回 (网络, 文件内容)。path 为 None 时读随包附带的 400 个神经元的网络。"""
    path = Path(path).expanduser() if path is not None else SHIPPED_STDP
    if not path.exists() and not path.is_symlink():
        raise CheckpointError(f"STDP 网络文件不存在：{path}。请检查路径；也可以不给路径，读随包附带的 400 个神经元的网络。")
    head = _check_file(path)
    foreign = foreign_format(path, head)
    if foreign is not None:
        raise CheckpointError(f"{path} 不是 STDP 网络文件：{foreign}。")
    saved = _read(path, head)
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        raise CheckpointError(f"{path} 不是 STDP 网络文件（缺少格式标记 {FORMAT!r}）。"
                              f"请用 snn_tutorial.stdp_io.save_network 保存的文件；卷积网络的检查点请用 load_checkpoint 读。")
    missing = [k for k in ("config", "weight", "theta") if k not in saved]
    if missing:
        raise CheckpointError(f"STDP 网络文件 {path} 缺少 {'、'.join(missing)}：文件不完整或被改写过。请重新训练或重新复制。")
    try:
        net = DiehlCookNetwork(STDPConfig(**saved["config"]))
        net.load_state_dict(saved)
    except (TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"STDP 网络文件 {path} 的配置或权重不合法（{err}）。"
                              f"它可能来自其他版本的本教程，或被改写过；请用当前版本重新训练。") from err
    if not (torch.isfinite(net.weight).all() and torch.isfinite(net.theta).all()):
        raise CheckpointError(f"STDP 网络文件 {path} 的权重或阈值里有 NaN 或无穷大：文件已损坏。请重新训练或重新复制。")
    return net, saved
