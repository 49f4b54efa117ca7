"""模型：旧教程的原始网络（照原样移植，保留其缺陷）与本教程的卷积 SNN，以及同结构的 ANN。

每个模型都带一个 loss(output, target) 方法，训练循环因此不必知道模型的细节。
build_model(name, **config) 按名字和配置重建模型，检查点里保存的就是这份配置。
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron, surrogate

from .configs import LIMIT_REASON, LIMITS, ANNConfig, CSNNConfig, OriginalConfig
from .neurons import lif, neuron_kind, plif


# 旧的导入位置（笔记本与测试用 models.lif、models.LIMITS）：定义在 neurons 与 configs 里
__all__ = ["ANN", "CSNN", "LIMITS", "LIMIT_REASON", "MODELS", "OriginalNet", "build_model", "count_parameters", "lif", "plif"]


class CSNN(nn.Module):
    """本教程的卷积 SNN（多步模式，直接编码，发放率读出）。

    结构：Conv-BN-池化 →[LIF]→ Conv-BN-池化 →[LIF]→ 全连接-BN →[LIF]→ 全连接-BN →[LIF]→ 投票，输出 10 个类别的发放率。
    每个 LIF 之前都有 BN，神经元从训练一开始就有合适的输入尺度（否则全连接层在初始化时几乎不发放）。
    输出层每类有 vote 个神经元（群体编码），投票层取它们的平均发放率：T = 4 时单个神经元的发放率只有 5 档，
    10 个神经元一起投票就有 41 档，减少了“两个类别发放率相同”的平局。
    直接编码时每个时间步的输入相同，第一层卷积、BN 与池化的结果也相同，所以只算一次再沿时间复制（encoder）；
    池化放在 LIF 之前（先在 2×2 区域里取最大的输入，再交给神经元），需要模拟的 LIF 神经元减为四分之一。
    pool="avg" 把两处最大池化换成平均池化（参数量不变）：神经形态交换格式 NIR 没有最大池化，SpikingJelly 只能把平均池化导出为 NIR（笔记本 07）。
    默认 "max"，配置里不记录，旧检查点照常加载。
    """

    POOLS = {"max": (nn.MaxPool2d, layer.MaxPool2d), "avg": (nn.AvgPool2d, layer.AvgPool2d)}

    def __init__(self, channels: tuple[int, int] = (32, 32), hidden: int = 256, T: int = 4, tau: float = 2.0, vote: int = 10,
                 pool: str = "max", neuron: str = "lif"):
        super().__init__()
        self.cfg = cfg = CSNNConfig(channels, hidden, T, tau, vote, pool, neuron)
        (c1, c2), hidden, T, tau, vote = cfg.channels, cfg.hidden, cfg.T, cfg.tau, cfg.vote
        Pool, SeqPool = self.POOLS[cfg.pool]
        make = neuron_kind(cfg.neuron).build
        self.T = T
        self.config = cfg.to_dict()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), Pool(2),
        )
        self.snn = nn.Sequential(
            make(tau),
            layer.Conv2d(c1, c2, 3, padding=1, bias=False), layer.BatchNorm2d(c2), SeqPool(2),
            make(tau),
            layer.Flatten(),
            layer.Linear(c2 * 7 * 7, hidden, bias=False), layer.BatchNorm1d(hidden),
            make(tau),
            layer.Linear(hidden, 10 * vote, bias=False), layer.BatchNorm1d(10 * vote),
            make(tau),
            layer.VotingLayer(vote),
        )
        functional.set_step_mode(self.snn, "m")

    def set_step_mode(self, mode: str) -> "CSNN":
        """切换步进模式：'m'（默认，第一层只算一次，其余一次处理 [T, N, ...]）或 's'（朴素的逐步循环，用于对照）。"""
        functional.set_step_mode(self.snn, mode)
        self.step_mode = mode
        return self

    def forward_seq(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, 28, 28] → 每个时间步各类别的投票结果 [T, N, 10]（该类神经元中发放的比例）。"""
        if getattr(self, "step_mode", "m") == "s":
            # 朴素的逐步循环：每个时间步把整张图重新送进整个网络（第一层也重复计算 T 次）
            return torch.stack([self.snn(self.encoder(x)) for _ in range(self.T)])
        static = self.encoder(x)
        return self.snn(static.unsqueeze(0).expand(self.T, *static.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 1, 28, 28] → 各类别的发放率 [N, 10]（取值 0, 1/(T·vote), …, 1）。"""
        return self.forward_seq(x).mean(0)

    @staticmethod
    def loss(rate: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """发放率与 one-hot 目标的均方误差：正确类别的神经元应一直发放，其余保持沉默。"""
        return F.mse_loss(rate, F.one_hot(target, rate.shape[-1]).to(rate.dtype))


class ANN(nn.Module):
    """与 CSNN 结构相同、把 LIF 换成 ReLU 的普通卷积网络（没有时间维），用交叉熵训练。

    输出层同样是每类 vote 个神经元再取平均，参数量与 CSNN 完全相同。
    pool="avg" 把两处最大池化换成平均池化（参数量不变）：转换成 SNN 时，平均池化对脉冲序列是线性的，
    最大池化则会高估发放率（笔记本 05 第 3 节）。默认 "max"，配置里不记录，旧检查点照常加载。
    """

    POOLS = {"max": nn.MaxPool2d, "avg": nn.AvgPool2d}

    def __init__(self, channels: tuple[int, int] = (32, 32), hidden: int = 256, vote: int = 10, pool: str = "max"):
        super().__init__()
        self.cfg = cfg = ANNConfig(channels, hidden, vote, pool)
        (c1, c2), hidden, vote = cfg.channels, cfg.hidden, cfg.vote
        Pool = self.POOLS[cfg.pool]
        self.vote = vote
        self.config = cfg.to_dict()
        self.encoder = nn.Sequential(nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), Pool(2))
        self.body = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(c1, c2, 3, padding=1, bias=False), nn.BatchNorm2d(c2), Pool(2),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(c2 * 7 * 7, hidden, bias=False), nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, 10 * vote, bias=False), nn.BatchNorm1d(10 * vote),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(self.encoder(x))
        # unflatten 而不是 view(len(out), ...)：torch.fx 能符号追踪它，ANN→SNN 转换（笔记本 05）需要这一点
        return out.unflatten(1, (10, self.vote)).mean(-1)

    @staticmethod
    def loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits, target)


class OriginalNet(nn.Module):
    """旧博客教程的网络，照原样移植到 SpikingJelly 2.x，连同它的缺陷：

    - 卷积 + IF 部分只运行一次（单步），全连接 + LIF 部分运行 T 次；
    - 输出是 T 步发放率的 log_softmax，再与 one-hot 目标做均方误差；
    - 原教程的训练设置：Adam，学习率 0.01，批大小 512，tau = 2，T = 8。
    各层宽度（32、32、128）沿用原网络的层次结构，以便与 CSNN 公平比较。
    """

    train_recipe = {"lr": 0.01, "batch_size": 512, "schedule": "none"}

    def __init__(self, channels: tuple[int, int] = (32, 32), hidden: int = 128, T: int = 8, tau: float = 2.0,
                 fix_loss: bool = False, conv_every_step: bool = False):
        super().__init__()
        self.cfg = cfg = OriginalConfig(channels, hidden, T, tau, fix_loss, conv_every_step)
        (c1, c2), hidden, T, tau = cfg.channels, cfg.hidden, cfg.T, cfg.tau
        self.T = T
        # 两个开关用于消融实验（笔记本 03）：默认都关闭，即原样的旧模型
        self.fix_loss = fix_loss                # True：输出发放率本身，与 one-hot 做 MSE（不再经过 log_softmax）
        self.conv_every_step = conv_every_step  # True：卷积 + IF 部分也运行 T 步
        self.config = cfg.to_dict()
        self.conv = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1), neuron.IFNode(surrogate_function=surrogate.ATan()), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), neuron.IFNode(surrogate_function=surrogate.ATan()), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Sequential(
            nn.Linear(c2 * 7 * 7, hidden), neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan()),
            nn.Linear(hidden, 10), neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan()),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_every_step:                                  # 修正：卷积部分的 IF 神经元也运行 T 步
            rate = sum(self.fc(self.conv(x)) for _ in range(self.T)) / self.T
        else:
            features = self.conv(x)                               # 原样：只算一次，IF 神经元只有一步
            rate = sum(self.fc(features) for _ in range(self.T)) / self.T
        return rate if self.fix_loss else F.log_softmax(rate, dim=1)

    @staticmethod
    def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """原教程的损失：输出与 one-hot 的均方误差。原样时输出是对数概率（这正是它的问题之一）；
        fix_loss=True 时输出是发放率，这就是本教程 CSNN 用的损失。"""
        return F.mse_loss(output, F.one_hot(target, output.shape[-1]).to(output.dtype))


MODELS = {"csnn": CSNN, "ann": ANN, "original": OriginalNet}


def build_model(name: str, **config) -> nn.Module:
    """按名字与配置建立模型，例如 build_model("csnn", T=4)。"""
    if name not in MODELS:
        raise ValueError(f"未知模型 {name!r}，可选：{', '.join(MODELS)}")
    return MODELS[name](**config)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
