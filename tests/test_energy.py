"""energy.per_image：笔记本 04、05、07 的每图运算量与能耗，与直接调用 op_counter 的结果一致。"""

import torch
from spikingjelly.activation_based import functional, op_counter

from snn_tutorial import energy
from snn_tutorial.models import CSNN


def test_per_image_matches_op_counter_and_resets_state():
    torch.manual_seed(0)
    model = CSNN(channels=(2, 2), hidden=8).eval()
    x = torch.randn(4, 1, 28, 28)
    r = op_counter.estimate_simple_energy(model, x)
    functional.reset_net(model)
    row = energy.per_image(model, x)
    assert row == energy.per_image(r, x)
    assert row["MAC"] == r.counts["mac"] / 4 and row["total_nJ"] == r.energy_total_pj / 4 / 1e3
    assert all(float(getattr(m, "v", 0.0) if not isinstance(getattr(m, "v", 0.0), torch.Tensor) else 0.0) == 0.0
               for m in model.modules())
    assert list(energy.labelled(row)) == ["MAC", "AC", "SynOp", "计算能耗 (nJ)", "访存能耗 (nJ)", "总能耗 (nJ)"]
    assert list(energy.labelled(row, ("MAC", "compute_nJ"))) == ["MAC", "计算能耗 (nJ)"]


def test_bias_additions_count_every_output_of_a_biased_layer():
    """CSNN 的卷积、全连接都不带偏置（BN 管偏移）：0 次。折叠 BN 之后每层都带偏置，每个输出每算一次加一次：
    第一层卷积只算一次（直接编码，输入不变），其余三层每个时间步都算。"""
    from snn_tutorial import export

    torch.manual_seed(0)
    model = CSNN(channels=(2, 3), hidden=8, T=4).eval()
    x = torch.randn(3, 1, 28, 28)
    assert energy.bias_additions(model, x) == 0
    folded = export.fold_bn(model)
    vote = model.cfg.vote
    assert energy.bias_additions(folded, x) == 2 * 28 * 28 + 4 * (3 * 14 * 14 + 8 + 10 * vote)
    assert all(not isinstance(getattr(m, "v", 0.0), torch.Tensor) for m in folded.modules())   # 之后重置了状态


def test_with_bias_additions_adds_one_ac_each():
    row = {"MAC": 10.0, "AC": 5.0, "SynOp": 3.0, "compute_nJ": 1.0, "memory_nJ": 2.0, "total_nJ": 3.0}
    cost = op_counter.SimpleEnergyCostConfig()
    out = energy.with_bias_additions(row, 1000.0, cost)
    assert out["AC"] == 1005.0 and out["MAC"] == 10.0 and out["SynOp"] == 3.0 and out["memory_nJ"] == 2.0
    assert abs(out["compute_nJ"] - (1.0 + cost.e_ac_pj)) < 1e-12 and abs(out["total_nJ"] - (3.0 + cost.e_ac_pj)) < 1e-12
