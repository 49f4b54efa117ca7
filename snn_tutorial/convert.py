"""ANN→SNN 转换之后要反复用到的几件事：笔记本 05 与 tests/test_convert.py 共用。

转换本身直接调用 SpikingJelly：ann2snn.Converter(recipe=ann2snn.RateCodingRecipe(...)).convert(ann)，
得到单步模式的 torch.fx.GraphModule（ReLU 换成“缩放 → 软重置 IF → 缩放”）。这里只放转换之后的工具：

- split_static_prefix：直接编码时每个时间步的输入相同，第一个脉冲神经元之前的部分只需算一次；
- DirectEncodingSNN：把转换后的 SNN 包成“输入一张图、运行 T 步、输出平均”的普通模块（用于统计运算量）；
- accuracy_vs_T：运行一次 T_max 步，得到 T = 1 … T_max 每个 T 的准确率；
- thresholds：每个脉冲层的阈值（换算回 ANN 激活值的尺度）；
- fold_output_scales：把每层输出的缩放并进下一层的权重，脉冲恢复成 0/1（网络的输出不变）。
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional
from spikingjelly.activation_based.ann2snn.modules import ChannelVoltageScaler, VoltageScaler
from spikingjelly.activation_based.base import MemoryModule
from torch import fx

from .validate import int_at_least

SCALERS = (VoltageScaler, ChannelVoltageScaler)


def _modules(snn: fx.GraphModule) -> dict[str, nn.Module]:
    return dict(snn.named_modules())


def spiking_nodes(snn: fx.GraphModule) -> list[fx.Node]:
    """按前向顺序列出图里的脉冲神经元节点（有状态的模块）。"""
    modules = _modules(snn)
    return [n for n in snn.graph.nodes if n.op == "call_module" and isinstance(modules[n.target], MemoryModule)]


def split_static_prefix(snn: fx.GraphModule) -> tuple[fx.GraphModule, fx.GraphModule]:
    """把转换后的 SNN 在第一个脉冲神经元之前切开，返回 (static, dynamic)。

    static(x) 是第一个神经元的输入电流，不含任何状态；直接编码时它每步都一样，算一次即可。
    dynamic(current) 是剩下的部分，与原图共用同一批模块（神经元状态也是同一份）。
    """
    first = spiking_nodes(snn)[0]
    cut = first.args[0]
    nodes = list(snn.graph.nodes)
    prefix, env = fx.Graph(), {}
    for node in nodes[: nodes.index(cut) + 1]:
        env[node] = prefix.node_copy(node, lambda a: env[a])
    prefix.output(env[cut])
    rest, env = fx.Graph(), {}
    env[cut] = rest.placeholder("current")
    for node in nodes[nodes.index(cut) + 1:]:
        try:
            env[node] = rest.node_copy(node, lambda a: env[a])
        except KeyError as err:
            raise ValueError("第一个脉冲神经元之后的节点又用到了它之前的中间结果，无法切开。") from err
    return fx.GraphModule(snn, prefix), fx.GraphModule(snn, rest)


class DirectEncodingSNN(nn.Module):
    """转换得到的单步 SNN，包成“输入 [N, ...] → 运行 T 步 → 输出的平均 [N, 10]”。

    第一个神经元之前的部分只算一次（直接编码：每步输入相同），与本教程 CSNN 的 encoder 一样。
    """

    def __init__(self, snn: fx.GraphModule, T: int):
        super().__init__()
        self.static, self.dynamic = split_static_prefix(snn)
        self.T = int(T)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self.dynamic)
        current = self.static(x)
        total = self.dynamic(current)
        for _ in range(self.T - 1):
            total = total + self.dynamic(current)
        functional.reset_net(self.dynamic)
        return total / self.T


@torch.no_grad()
def accuracy_vs_T(snn: fx.GraphModule, batches, T_max: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """每批运行 T_max 步，返回长度为 T_max 的准确率张量：下标 t - 1 是只用前 t 步的累计输出（t = 1 … T_max）时的准确率。

    网络是因果的，输入每步相同，所以“只看前 t 步的累计输出”与“用 T = t 重新运行”完全一样：一次运行得到所有 T。
    """
    T_max = int_at_least("T_max", T_max, 1, verb="须为")
    device = torch.device(device)
    snn.eval()
    static, dynamic = split_static_prefix(snn)
    correct = torch.zeros(T_max, dtype=torch.long)
    count = 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        functional.reset_net(dynamic)
        current = static(x)
        total = None
        hits = torch.empty(T_max, dtype=torch.long, device=device)
        for t in range(T_max):
            out = dynamic(current)
            total = out if total is None else total + out
            hits[t] = (total.argmax(1) == y).sum()
        correct += hits.cpu()
        count += len(y)
    functional.reset_net(dynamic)
    if count == 0:
        raise ValueError("没有可评估的样本：batches 是空的。")
    return correct.double() / count


def thresholds(snn: fx.GraphModule) -> dict[str, torch.Tensor]:
    """每个脉冲层的阈值 θ（ANN 激活值的尺度），键为神经元节点名。逐层阈值是标量，逐通道阈值是一维张量。

    转换后的结构是 scaler0(1/θ) → IF(阈值 1) → scaler1(θ)：发放率 × θ 近似 ReLU 的输出，θ 就是 scaler1 的缩放。
    """
    modules = _modules(snn)
    out = {}
    for node in spiking_nodes(snn):
        users = list(node.users)
        if len(users) != 1 or not isinstance(modules.get(users[0].target), SCALERS):
            raise ValueError(f"神经元 {node.target} 之后不是缩放层，这不是 RateCoding/LTB 转换的结果。")
        out[node.target] = modules[users[0].target].scale.detach().cpu().clone()
    return out


_PASS_THROUGH = (nn.Flatten, nn.AvgPool2d, nn.Dropout, nn.Identity)


def fold_output_scales(snn: fx.GraphModule) -> fx.GraphModule:
    """返回一个副本：每层输出的缩放 θ 并进下一层卷积/全连接的权重，于是层与层之间传的是真正的 0/1 脉冲。

    这是“阈值平衡”与“权重归一化”的等价：下一层看到的输入 θ·s 与 权重 × θ、输入 s 完全相同。
    只处理本教程网络里的结构（缩放之后可能隔着 Flatten、平均池化，再接 Conv2d 或 Linear）。
    """
    snn = copy.deepcopy(snn)
    modules = _modules(snn)
    for node in spiking_nodes(snn):
        scaler_node = next(iter(node.users))
        scaler = modules[scaler_node.target]
        scale = scaler.scale.detach()
        user, flatten = scaler_node, False
        while True:
            users = list(user.users)
            if len(users) != 1 or users[0].op != "call_module":
                raise ValueError(f"{scaler_node.target} 之后的结构无法处理")
            user = users[0]
            layer = modules[user.target]
            if isinstance(layer, (nn.Conv2d, nn.Linear)):
                break
            if not isinstance(layer, _PASS_THROUGH):
                raise ValueError(f"{scaler_node.target} 之后遇到 {type(layer).__name__}，无法把缩放并进权重")
            flatten = flatten or isinstance(layer, nn.Flatten)
        w = layer.weight.data
        if scale.dim() == 0:
            w.mul_(scale)
        elif isinstance(layer, nn.Conv2d):
            w.mul_(scale.view(1, -1, 1, 1))
        elif flatten:  # 逐通道的缩放经 Flatten 展开：每个通道对应连续的 H×W 个输入
            w.view(w.shape[0], scale.numel(), -1).mul_(scale.view(1, -1, 1))
        else:
            w.mul_(scale.view(1, -1))
        scaler.scale.fill_(1.0)
    return snn
