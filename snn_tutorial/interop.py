"""在 snnTorch 与 Norse 里运行可移植的 NIR 图（笔记本 09）：导入、修正导入器的一个错误、按时间步运行。

两个框架都在 nir_portable.portable_graph 写出的图上工作（平均池化已写成卷积）。导入器本身有一个共同的错误，
这里集中修正它（只此一处）：

- Flatten：NIR 节点的形状不含批维，start_dim = 0 指“不含批维的第 0 维”（SpikingJelly 照此写出，nir 也按此检查形状）；
  snnTorch 1.0.0 与 Norse 1.1.0 的导入都把它原样交给 torch.nn.Flatten(start_dim, end_dim)，
  而 torch 的维数是算上批维的，于是批维也被展平，下一层全连接报形状错误。fix_flatten 把这样建出的 Flatten 的维数各加 1。

约定上的差别不靠改代码，而靠选对参数：
- Norse 不从文件里读时间步长，from_nir(..., dt=...) 的默认值是 1e-3 秒；要与导出时的 dt（export.DT）相同；
- snnTorch 的导入把 dt 固定为 1e-4 秒（源码里写死），所以导出时的 dt 也要是 1e-4 秒（export.DT 正是它）。
"""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .export import DT, _quiet
from .errors import TutorialError

VERSIONS = {"snntorch": "1.0.0", "norse": "1.1.0"}   # 本教程核对过的版本（pyproject.toml 的 interop 附加依赖）


class InteropError(TutorialError):
    """另一个框架读不了或跑不了这张图，消息为中文。"""


def fix_flatten(net: nn.Module) -> int:
    """把导入器按 NIR 的维数（不含批维）建出的 torch.nn.Flatten 改成含批维的维数（各加 1）；返回改了几个。"""
    fixed = 0
    for m in net.modules():
        if isinstance(m, nn.Flatten) and m.start_dim >= 0:
            m.start_dim += 1
            m.end_dim = m.end_dim + 1 if m.end_dim >= 0 else m.end_dim
            fixed += 1
    return fixed


def _portable_only(graph) -> None:
    from .nir_portable import non_portable

    bad = non_portable(graph)
    if bad:
        raise InteropError(f"这张图不是可移植的形式（{'；'.join(bad)}）：先用 nir_portable.portable_graph 转换，"
                           f"或用 python -m snn_tutorial.export --format nir --portable 导出")


def load_snntorch(graph) -> nn.Module:
    """可移植的 NIR 图 → snnTorch 的模型（torch.fx.GraphModule；LIF 是 snn.Leaky，状态存在模块里）。"""
    _portable_only(graph)
    from snntorch.import_nir import import_from_nir

    with _quiet():   # snnTorch 的导入会把每层的参数数组打印到标准输出
        net = import_from_nir(copy.deepcopy(graph))   # 导入会改动传入的图（合并循环连接），所以给它一份副本
    fix_flatten(net)
    return net.eval()


def load_norse(graph, dt: float = DT) -> nn.Module:
    """可移植的 NIR 图 → Norse 的模型（nirtorch 的 GraphExecutor；前向返回 (输出, 状态)）。dt 是 Norse 积分的步长（秒）。"""
    _portable_only(graph)
    if not isinstance(dt, (int, float)) or isinstance(dt, bool) or not dt > 0:
        raise InteropError(f"dt 须为正数（秒），收到 {dt!r}")
    import norse.torch as norse

    with _quiet():   # Norse 对 r ≠ 1 等参数发日志警告；nirtorch.load 发弃用警告
        net = norse.from_nir(copy.deepcopy(graph), dt=float(dt))
    fix_flatten(net)
    return net.eval()


def _snntorch_neurons(net: nn.Module) -> list[nn.Module]:
    import snntorch

    return [m for m in net.modules() if isinstance(m, snntorch.SpikingNeuron)]


@torch.no_grad()
def run_snntorch(net: nn.Module, x: torch.Tensor, T: int, batch_size: int = 256) -> torch.Tensor:
    """[N, 1, 28, 28] → 输出层脉冲 [T, N, 输出数]：每批先把膜电位清零，再逐个时间步调用一次（直接编码：每步同一张图）。"""
    outs = []
    for i in range(0, len(x), batch_size):
        for m in _snntorch_neurons(net):
            m.reset_mem()
        xb = x[i:i + batch_size]
        outs.append(torch.stack([first_output(net(xb)) for _ in range(T)]))
    return torch.cat(outs, dim=1)


@torch.no_grad()
def run_norse(net: nn.Module, x: torch.Tensor, T: int, batch_size: int = 256) -> torch.Tensor:
    """[N, 1, 28, 28] → 输出层脉冲 [T, N, 输出数]：状态显式传递，每批从 None（膜电位为 0）开始。"""
    outs = []
    for i in range(0, len(x), batch_size):
        xb, state, steps = x[i:i + batch_size], None, []
        for _ in range(T):
            out, state = net(xb, state)
            steps.append(out)
        outs.append(torch.stack(steps))
    return torch.cat(outs, dim=1)


def first_output(out):
    """snnTorch 导入的 GraphModule 返回 (输出, 状态字典)；只要输出。"""
    return out[0] if isinstance(out, tuple) else out


def agreement(spikes: torch.Tensor, reference: torch.Tensor, vote: int) -> dict[str, float]:
    """两组输出层脉冲 [T, N, 10·vote] 的一致程度：预测相同、每个输出神经元的脉冲数相同、每个脉冲都相同的图所占比例，
    以及脉冲不同的（时间步, 图, 神经元）个数。"""
    from .export import readout

    if spikes.shape != reference.shape:
        raise InteropError(f"两组脉冲的形状不同：{tuple(spikes.shape)} 与 {tuple(reference.shape)}")
    same_pred = readout(spikes, vote).argmax(1) == readout(reference, vote).argmax(1)
    same_counts = (spikes.sum(0) == reference.sum(0)).all(1)
    same_spikes = (spikes == reference).flatten(2).all(2).all(0)
    return {"predictions": same_pred.double().mean().item(), "spike_counts": same_counts.double().mean().item(),
            "all_spikes": same_spikes.double().mean().item(), "spike_flips": int((spikes != reference).sum())}
