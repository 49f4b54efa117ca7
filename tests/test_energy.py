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
