"""脉冲神经元的登记表：CSNN 可以用哪些神经元，命令行的 --neuron 与 NIR 导出都只看这里。

加一种神经元 = 在 NEURONS 里登记一项（名字、说明、怎样建、NIR 能不能表示）再加上它的测试；
命令行的可选值、参数校验、检查点里的配置与导出前的检查都随之更新。
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch.nn as nn
from spikingjelly.activation_based import neuron, surrogate


def lif(tau: float = 2.0, step_mode: str = "m") -> neuron.LIFNode:
    """本教程统一使用的 LIF 神经元：ATan 替代梯度，重置不参与反向传播（detach_reset）。"""
    return neuron.LIFNode(tau=tau, surrogate_function=surrogate.ATan(), detach_reset=True, step_mode=step_mode)


def plif(tau: float = 2.0, step_mode: str = "m") -> neuron.ParametricLIFNode:
    """可学习膜时间常数的 LIF（PLIF）：τ 从 tau 开始、随训练变化；其余与 lif() 相同（ATan、detach_reset）。"""
    return neuron.ParametricLIFNode(init_tau=tau, surrogate_function=surrogate.ATan(), detach_reset=True,
                                    step_mode=step_mode)


@dataclass(frozen=True)
class NeuronKind:
    """一种神经元。build(tau, step_mode) 建一个神经元层；node_type 是它的 SpikingJelly 类；
    nir：导出到 NIR 时变成什么（一句中文），None 表示 NIR 表示不了它。"""

    name: str
    help: str
    build: Callable[..., nn.Module]
    node_type: type
    nir: str | None


NEURONS = {kind.name: kind for kind in (
    NeuronKind("lif", "LIF，膜时间常数 τ 固定（默认）", lif, neuron.LIFNode, nir="LIF"),
    # SpikingJelly 的 nir_exchange 把 ParametricLIFNode 写成普通的 LIF：τ 取训练后学到的值，导出后不再可学习
    NeuronKind("plif", "PLIF（ParametricLIFNode），τ 可学习、从 --tau 的值开始", plif, neuron.ParametricLIFNode,
               nir="LIF（τ 取训练后学到的值）"),
)}


def neuron_kind(name: str) -> NeuronKind:
    """按名字找神经元；不认识时抛出 ValueError（中文，列出可选值）。"""
    if not isinstance(name, str) or name not in NEURONS:
        raise ValueError(f"neuron 须为 {' 或 '.join(map(repr, NEURONS))}，收到 {name!r}")
    return NEURONS[name]


def kind_of(module: nn.Module) -> NeuronKind | None:
    """module 是登记表里的哪一种神经元（按类型精确匹配）；不是时返回 None。"""
    return next((k for k in NEURONS.values() if type(module) is k.node_type), None)


def nir_exportable() -> str:
    """能导出到 NIR 的神经元及其在 NIR 里的样子，一句中文（用在报错里）。"""
    return "、".join(f"{k.name}（导出为 {k.nir}）" for k in NEURONS.values() if k.nir is not None)
