"""每张图的运算量与能耗估计（笔记本 04、05、07 共用）：SpikingJelly 的 op_counter.estimate_simple_energy 除以图数。

这是能耗模型的估计，不是测量：MAC（乘加）、AC（只加）、SynOp（突触运算）按次数计，能耗按 op_counter 的单位能耗换算成 nJ。
"""

from __future__ import annotations

import torch
from spikingjelly.activation_based import functional, op_counter

OPS = ("MAC", "AC", "SynOp")
# 键 → 表格里的中文列名
LABELS = {"MAC": "MAC", "AC": "AC", "SynOp": "SynOp", "compute_nJ": "计算能耗 (nJ)", "memory_nJ": "访存能耗 (nJ)",
          "total_nJ": "总能耗 (nJ)"}


def report(model: torch.nn.Module, x: torch.Tensor, config=None):
    """在 x 上数一遍 model 的运算（op_counter.estimate_simple_energy），之后重置神经元状态。config 默认是 fp32 的单位能耗。"""
    result = op_counter.estimate_simple_energy(model, x, config=config)
    functional.reset_net(model)
    return result


def per_image(model_or_report, x: torch.Tensor, config=None) -> dict[str, float]:
    """每张图的 MAC、AC、SynOp 次数与计算 / 访存 / 总能耗（nJ）。

    传入模型时先在 x 上数一遍（见 report）；传入已有的报告时只用 len(x) 作图数。
    """
    r = report(model_or_report, x, config) if isinstance(model_or_report, torch.nn.Module) else model_or_report
    c, n = r.counts, len(x)
    return {"MAC": c["mac"] / n, "AC": c["ac"] / n, "SynOp": c["synop"] / n, "compute_nJ": r.energy_compute_pj / n / 1e3,
            "memory_nJ": r.energy_memory_pj / n / 1e3, "total_nJ": r.energy_total_pj / n / 1e3}


def labelled(row: dict[str, float], keys=tuple(LABELS)) -> dict[str, float]:
    """只留 keys 里的项（按这个顺序），键换成表格用的中文列名，例如 "compute_nJ" → "计算能耗 (nJ)"。"""
    return {LABELS[k]: row[k] for k in keys}


def bias_additions(model: torch.nn.Module, x: torch.Tensor) -> float:
    """每张图的偏置加法次数：op_counter 不数卷积层、全连接层的偏置（每个输出每算一次就是一次加法）。

    在 x 上跑一遍前向来数（之后重置神经元状态）。BN 折叠进卷积后，原来 BN 的减均值、加 β 都变成了这种偏置加法。
    """
    counts = []
    hooks = [m.register_forward_hook(lambda mod, inp, out: counts.append(out.numel()))
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) and m.bias is not None]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in hooks:
            h.remove()
        functional.reset_net(model)
    return sum(counts) / len(x)


def with_bias_additions(row: dict[str, float], bias_adds: float, config=None) -> dict[str, float]:
    """把偏置加法补进 per_image 的一行：AC 加上 bias_adds，计算能耗与总能耗按每次 AC 的单位能耗加上去。"""
    e_ac = (config or op_counter.SimpleEnergyCostConfig()).e_ac_pj
    extra_nJ = e_ac * bias_adds / 1e3
    return {**row, "AC": row["AC"] + bias_adds, "compute_nJ": row["compute_nJ"] + extra_nJ, "total_nJ": row["total_nJ"] + extra_nJ}
