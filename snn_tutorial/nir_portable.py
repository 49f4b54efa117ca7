"""可移植的 NIR 图：只用 snnTorch 与 Norse 都能读入的原语，神经元的约定写成与 SpikingJelly 逐位一致（笔记本 09）。

SpikingJelly 导出的图（export.export_nir）有两处别的框架读不了或读得不一样：

- 平均池化 AvgPool2d：Norse 1.1.0 没有这个原语；snnTorch 1.0.0 要求 kernel_size/stride/padding 是（高, 宽）两个数，
  而 SpikingJelly 写的是一个数。这里把每个 AvgPool2d 写成一个等价的 Conv2d：核的大小与步长都是 k，
  第 c 个输出通道只在第 c 个输入通道上有 k×k 个 1/k²，其余为 0（“对角”的稠密核，作用与逐通道卷积相同）。
  不用 groups=C 的逐通道卷积：两个框架的导入都把 weight.shape[1]（逐通道卷积里是 1）当输入通道数，又原样传入
  groups=C，torch.nn.Conv2d(1, C, groups=C) 在建层时就报 ValueError（in_channels must be divisible by groups），导入失败。
- 阈值：NIR 规定 v > v_threshold 时发放，SpikingJelly 是 v ≥ v_threshold。对 float32 的膜电位，
  v ≥ θ 与 v > θ'（θ' 是比 θ 小的那个相邻 float32）完全等价，所以可移植的图把阈值写成 θ'。

图里的数仍然是浮点数（NIR 只存浮点数组）；权重的整数量化见 quantize_core。
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron

from .errors import TutorialError
from .validate import is_int

# snnTorch 1.0.0 与 Norse 1.1.0 的导入都认识的原语（另有 Input、Output）
PORTABLE_TYPES = ("Input", "Output", "Conv2d", "Affine", "Linear", "Flatten", "LIF")


class PortableError(TutorialError):
    """图里有可移植形式表示不了的节点，消息为中文。"""


def strict_threshold(threshold) -> np.ndarray:
    """SpikingJelly 的阈值 θ（v ≥ θ 发放）→ NIR 的阈值 θ'（v > θ' 发放）：比 θ 小的相邻 float32。"""
    th = np.asarray(threshold, dtype=np.float32)
    return np.nextafter(th, np.float32(-np.inf)).astype(np.float64)


def pool_as_conv(node) -> "nir.Conv2d":  # noqa: F821
    """NIR 的 AvgPool2d（k×k，步长 k，无填充）→ 等价的 Conv2d：对角的稠密核，每个非零元素为 1/k²，偏置为 0。"""
    import nir

    k, stride, pad = (np.atleast_1d(np.asarray(v)).astype(int) for v in (node.kernel_size, node.stride, node.padding))
    if len(set(k.tolist())) != 1 or not np.array_equal(np.resize(stride, 2), np.resize(k, 2)) or np.any(pad != 0):
        raise PortableError(f"只能把“核为 k×k、步长为 k、无填充”的平均池化写成卷积，收到核 {k.tolist()}、步长 {stride.tolist()}、填充 {pad.tolist()}")
    shape = node.input_type.get("input")
    if shape is None:
        raise PortableError("平均池化节点没有记录输入的形状（通道数），无法写成卷积")
    channels, k = int(shape[0]), int(k[0])
    weight = np.zeros((channels, channels, k, k), dtype=np.float32)
    weight[np.arange(channels), np.arange(channels)] = 1.0 / k ** 2
    return nir.Conv2d(input_shape=tuple(int(v) for v in shape[1:]), weight=weight, stride=(k, k), padding=(0, 0),
                      dilation=(1, 1), groups=1, bias=np.zeros(channels, dtype=np.float32))


def portable_graph(graph) -> "nir.NIRGraph":  # noqa: F821
    """SpikingJelly 导出的 NIR 图 → 可移植的副本：平均池化写成卷积，LIF 的阈值换成严格大于的形式。原图不变。"""
    import nir

    nodes = {}
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind == "AvgPool2d":
            node = pool_as_conv(node)
        elif kind == "LIF":
            node = nir.LIF(tau=node.tau, r=node.r, v_leak=node.v_leak, v_threshold=strict_threshold(node.v_threshold),
                           v_reset=node.v_reset)
        elif kind not in PORTABLE_TYPES:
            raise PortableError(f"节点 {name} 是 {kind}：可移植的图只能含 {'、'.join(PORTABLE_TYPES)}")
        else:
            node = copy.deepcopy(node)
        nodes[name] = node
    return nir.NIRGraph(nodes=nodes, edges=list(graph.edges))


def non_portable(graph) -> list[str]:
    """图里不在 PORTABLE_TYPES 之内的节点，“名字：类型”；空列表表示 snnTorch 与 Norse 都认识每个节点。"""
    return [f"{name}：{type(n).__name__}" for name, n in graph.nodes.items() if type(n).__name__ not in PORTABLE_TYPES]


# ---------------------------------------------------------------- 整数权重
def symmetric_scale(weight: torch.Tensor, bits: int) -> float:
    """逐层对称量化的刻度 s：最大的 |w| 对应最大的整数 2^(bits−1) − 1。"""
    return float(weight.abs().max()) / (2 ** (bits - 1) - 1)


def quantize_core(core: nn.Sequential, bits: int) -> tuple[nn.Sequential, dict[str, float]]:
    """export.spiking_core 的副本，每层卷积/全连接的权重换成 bits 位的有符号整数（逐层对称量化），偏置按同一刻度取整，
    紧随其后的 LIF 的阈值除以同一个刻度 s 再取整（只有池化隔在中间时也一样：池化是线性的）。返回 (副本, {层名: s})。

    LIF 的硬重置到 0、v_leak = 0 时，把一个神经元的全部输入与阈值同乘 1/s，脉冲不变；所以误差只来自取整。
    阈值也取整（至少为 1）：芯片上的阈值同样是整数寄存器。
    """
    if not is_int(bits) or not 2 <= bits <= 16:
        raise ValueError(f"bits 须为 2 … 16 的整数，收到 {bits!r}")
    q = copy.deepcopy(core).eval()
    scales, scale = {}, None
    for name, m in q.named_children():
        if isinstance(m, (layer.Conv2d, layer.Linear)):
            bits = int(bits)
            scale = scales[name] = symmetric_scale(m.weight.data, bits)
            top = 2 ** (bits - 1) - 1
            m.weight.data = torch.clamp(torch.round(m.weight.data / scale), -top, top)
            if m.bias is not None:
                m.bias.data = torch.round(m.bias.data / scale)
        elif isinstance(m, neuron.BaseNode):
            if scale is None:
                raise PortableError(f"{name} 前面没有卷积或全连接层，无法确定阈值的刻度")
            m.v_threshold = float(max(1, round(m.v_threshold / scale)))
            scale = None
    functional.reset_net(q)
    return q, scales
