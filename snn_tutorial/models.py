"""模型：旧教程的原始网络（照原样移植，保留其缺陷）与本教程的卷积 SNN，以及同结构的 ANN。

每个模型都带一个 loss(output, target) 方法，训练循环因此不必知道模型的细节。
build_model(name, **config) 按名字和配置重建模型，检查点里保存的就是这份配置。
"""

from __future__ import annotations

import numbers

import torch
import torch.nn as nn
import torch.nn.functional as F
from spikingjelly.activation_based import functional, layer, neuron, surrogate


def lif(tau: float = 2.0, step_mode: str = "m") -> neuron.LIFNode:
    """本教程统一使用的 LIF 神经元：ATan 替代梯度，重置不参与反向传播（detach_reset）。"""
    return neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan(), detach_reset=True, step_mode=step_mode)


# 结构参数的上限：远大于本教程用到的值（T 4–30、隐藏层 256、通道 32/64），又挡住会让训练卡住或耗尽内存的值
# （例如 T = 100000 一批也跑不完；通道数上百万要几百 GB 内存）。命令行与加载检查点时都按它检查。
LIMITS = {"T": 256, "hidden": 8192, "channels": 1024, "vote": 100}
LIMIT_REASON = "；再大的值会让一步训练慢到像卡住、或耗尽内存"


def _count(name: str, value, limit: str | None = None) -> int:
    """结构参数（通道数、神经元数、时间步数……）须为 ≥ 1 的整数，且不超过 LIMITS 里的上限。"""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} 须为 ≥ 1 的整数，收到 {value!r}")
    maximum = LIMITS.get(limit or name)
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} 须为 1 到 {maximum} 之间的整数，收到 {value!r}{LIMIT_REASON}")
    return int(value)


def _channels(value) -> tuple[int, int]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"channels 须为两个 ≥ 1 的整数（两层卷积的通道数），收到 {value!r}")
    return _count("channels[0]", value[0], "channels"), _count("channels[1]", value[1], "channels")


def _tau(value) -> float:
    """LIF 的膜时间常数须为大于 1 的有限数（每步衰减 1/tau 须小于 1；tau 为无穷大时膜电位不再衰减，不是 LIF）。"""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 1 < value < float("inf"):
        raise ValueError(f"tau 须为大于 1 的有限数，收到 {value!r}")
    return float(value)


class CSNN(nn.Module):
    """本教程的卷积 SNN（多步模式，直接编码，发放率读出）。

    结构：Conv-BN-池化 →[LIF]→ Conv-BN-池化 →[LIF]→ 全连接-BN →[LIF]→ 全连接-BN →[LIF]→ 投票，输出 10 个类别的发放率。
    每个 LIF 之前都有 BN，神经元从训练一开始就有合适的输入尺度（否则全连接层在初始化时几乎不发放）。
    输出层每类有 vote 个神经元（群体编码），投票层取它们的平均发放率：T = 4 时单个神经元的发放率只有 5 档，
    10 个神经元一起投票就有 41 档，减少了“两个类别发放率相同”的平局。
    直接编码时每个时间步的输入相同，第一层卷积、BN 与池化的结果也相同，所以只算一次再沿时间复制（encoder）；
    池化放在 LIF 之前（先在 2×2 区域里取最大的输入，再交给神经元），需要模拟的 LIF 神经元减为四分之一。
    pool="avg" 把两处最大池化换成平均池化（参数量不变）：神经形态交换格式 NIR 只有平均池化（笔记本 07）。
    默认 "max"，配置里不记录，旧检查点照常加载。
    """

    POOLS = {"max": (nn.MaxPool2d, layer.MaxPool2d), "avg": (nn.AvgPool2d, layer.AvgPool2d)}

    def __init__(self, channels: tuple[int, int] = (32, 32), hidden: int = 256, T: int = 4, tau: float = 2.0, vote: int = 10,
                 pool: str = "max"):
        super().__init__()
        (c1, c2), hidden, T, tau, vote = _channels(channels), _count("hidden", hidden), _count("T", T), _tau(tau), _count("vote", vote)
        if not isinstance(pool, str) or pool not in self.POOLS:
            raise ValueError(f"pool 须为 {' 或 '.join(map(repr, self.POOLS))}，收到 {pool!r}")
        Pool, SeqPool = self.POOLS[pool]
        self.T = T
        self.config = {"channels": [c1, c2], "hidden": hidden, "T": T, "tau": tau, "vote": vote}
        if pool != "max":
            self.config["pool"] = pool
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1, bias=False), nn.BatchNorm2d(c1), Pool(2),
        )
        self.snn = nn.Sequential(
            lif(tau),
            layer.Conv2d(c1, c2, 3, padding=1, bias=False), layer.BatchNorm2d(c2), SeqPool(2),
            lif(tau),
            layer.Flatten(),
            layer.Linear(c2 * 7 * 7, hidden, bias=False), layer.BatchNorm1d(hidden),
            lif(tau),
            layer.Linear(hidden, 10 * vote, bias=False), layer.BatchNorm1d(10 * vote),
            lif(tau),
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
        (c1, c2), hidden, vote = _channels(channels), _count("hidden", hidden), _count("vote", vote)
        if not isinstance(pool, str) or pool not in self.POOLS:
            raise ValueError(f"pool 须为 {' 或 '.join(map(repr, self.POOLS))}，收到 {pool!r}")
        Pool = self.POOLS[pool]
        self.vote = vote
        self.config = {"channels": [c1, c2], "hidden": hidden, "vote": vote}
        if pool != "max":
            self.config["pool"] = pool
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
        (c1, c2), hidden, T, tau = _channels(channels), _count("hidden", hidden), _count("T", T), _tau(tau)
        self.T = T
        # 两个开关用于消融实验（笔记本 03）：默认都关闭，即原样的旧模型
        self.fix_loss = fix_loss                # True：输出发放率本身，与 one-hot 做 MSE（不再经过 log_softmax）
        self.conv_every_step = conv_every_step  # True：卷积 + IF 部分也运行 T 步
        self.config = {"channels": [c1, c2], "hidden": hidden, "T": T, "tau": tau}
        if fix_loss or conv_every_step:
            self.config.update(fix_loss=fix_loss, conv_every_step=conv_every_step)
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
