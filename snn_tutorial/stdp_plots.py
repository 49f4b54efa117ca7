"""STDP 网络的图：感受野拼图、感受野形成过程的动画、指定类别的混淆矩阵、赢家通吃的脉冲栅格图。"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import torch
from matplotlib import pyplot as plt

from .plotting import zh

SIDE = 28


def tile_weights(weight: torch.Tensor, ncols: int | None = None) -> np.ndarray:
    """把 [N, 784] 的输入权重排成 28×28 小图的网格（小图之间留 1 像素的缝，填 NaN，画出来是背景色）。"""
    w = weight.detach().float().cpu().reshape(-1, SIDE, SIDE).numpy()
    n = len(w)
    ncols = ncols or math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncols)
    grid = np.full((nrows * (SIDE + 1) - 1, ncols * (SIDE + 1) - 1), np.nan, dtype=np.float32)
    for i, tile in enumerate(w):
        r, c = divmod(i, ncols)
        grid[r * (SIDE + 1): r * (SIDE + 1) + SIDE, c * (SIDE + 1): c * (SIDE + 1) + SIDE] = tile
    return grid


def plot_receptive_fields(weight: torch.Tensor, ax=None, title: str | None = None, w_max: float = 1.0, ncols=None):
    """每个兴奋神经元的输入权重画成一张 28×28 的小图（颜色从 0 到 w_max）。返回 matplotlib 的 Axes。"""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 7))
    image = ax.imshow(tile_weights(weight, ncols), cmap="hot_r", vmin=0, vmax=w_max, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02, label=zh("权重（无量纲）", "weight"))
    return ax


def save_receptive_field_gif(snapshots: list[tuple[int, torch.Tensor]], path: str | os.PathLike,
                             w_max: float = 1.0, fps: int = 4) -> Path:
    """snapshots 是 (已呈现的图像数, 权重 [N, 784]) 的列表：每个快照一帧，写成 GIF（需要 Pillow）。"""
    from matplotlib import animation

    if not snapshots:
        raise ValueError("snapshots 为空：至少要有一个 (图像数, 权重) 快照")
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(5, 5.3))
    image = ax.imshow(tile_weights(snapshots[0][1]), cmap="hot_r", vmin=0, vmax=w_max, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])

    def frame(i):
        seen, weight = snapshots[i]
        image.set_data(tile_weights(weight))
        ax.set_title(zh(f"已呈现 {seen} 张图", f"{seen} images seen"))
        return (image,)

    animation.FuncAnimation(fig, frame, frames=len(snapshots), blit=False).save(
        path, writer=animation.PillowWriter(fps=fps))
    plt.close(fig)
    return path


def plot_confusion(labels: torch.Tensor, predicted: torch.Tensor, ax=None, title: str | None = None):
    """混淆矩阵：每行是真实类别，按行归一化成百分比（每格标出数值）。返回 (Axes, 计数矩阵 [10, 10])。"""
    counts = torch.zeros(10, 10, dtype=torch.long)
    counts.index_put_((labels.long(), predicted.long()), torch.ones_like(labels, dtype=torch.long), accumulate=True)
    share = counts.float() / counts.sum(1, keepdim=True).clamp(min=1) * 100
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    ax.imshow(share.numpy(), cmap="Blues", vmin=0, vmax=100)
    for i in range(10):
        for j in range(10):
            if share[i, j] >= 0.5:
                ax.text(j, i, f"{share[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if share[i, j] > 50 else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel(zh("预测的类别", "predicted class"))
    ax.set_ylabel(zh("真实的类别", "true class"))
    if title:
        ax.set_title(title)
    return ax, counts


def plot_raster(spikes: torch.Tensor, ax=None, order: torch.Tensor | None = None, title: str | None = None):
    """一张图呈现期间兴奋层的脉冲栅格：spikes [T, N]（0/1），横轴是时间（ms），纵轴是神经元（可按 order 重排）。"""
    s = spikes.detach().cpu()
    if order is not None:
        s = s[:, order]
    t, n = s.nonzero(as_tuple=True)
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3))
    ax.scatter(t.numpy(), n.numpy(), s=80, marker="|", linewidths=1.5, color="black")
    ax.set_xlim(0, s.shape[0])
    ax.set_ylim(-0.5, s.shape[1] - 0.5)
    ax.set_xlabel(zh("时间（ms）", "time (ms)"))
    ax.set_ylabel(zh("神经元编号", "neuron"))
    if title:
        ax.set_title(title)
    return ax
