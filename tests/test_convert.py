"""ANN→SNN 转换：在随包样本上训练一个很小的 ANN，转换后 SNN 的准确率随 T 增大逼近 ANN。"""

import pytest
import torch
import torch.nn as nn
from spikingjelly.activation_based import ann2snn, functional
from torch import fx

from snn_tutorial import convert, data, runtime
from snn_tutorial.models import ANN, build_model
from snn_tutorial.training import evaluate, fit


@pytest.fixture(scope="module")
def tiny():
    """随包样本（800 张训练、200 张测试）上训练 4 轮的小 ANN（平均池化），以及转换用的数据。"""
    runtime.seed_everything(0)
    train_x, train_y = data.load_raw("mnist-sample", train=True)
    test_x, test_y = data.load_raw("mnist-sample", train=False)
    train = data.TensorBatches(train_x, train_y, batch_size=32, seed=0)
    test = data.TensorBatches(test_x, test_y, batch_size=100, shuffle=False)
    ann = ANN(channels=(8, 16), hidden=64, pool="avg")
    fit(ann, train, test, epochs=4, lr=3e-3, progress=False)
    ann.eval()
    calibration = data.TensorBatches(train_x, train_y, batch_size=100, shuffle=False)
    return ann, calibration, test


def _convert(ann, calibration, **kw):
    return ann2snn.Converter(recipe=ann2snn.RateCodingRecipe(dataloader=calibration, **kw)).convert(ann)


def test_ann_forward_is_fx_traceable_and_unchanged():
    runtime.seed_everything(0)
    ann = ANN().eval()
    x = torch.randn(3, 1, 28, 28)
    traced = fx.symbolic_trace(ann)
    with torch.no_grad():
        expected = ann.body(ann.encoder(x)).view(3, 10, ann.vote).mean(-1)   # 旧的写法
        assert torch.equal(ann(x), expected) and torch.equal(traced(x), expected)


def test_pool_option():
    assert ANN().config == {"channels": [32, 32], "hidden": 256, "vote": 10}             # 默认不记录，旧检查点照常加载
    assert isinstance(ANN().body[3], nn.MaxPool2d)
    avg = build_model("ann", pool="avg")
    assert avg.config["pool"] == "avg" and isinstance(avg.body[3], nn.AvgPool2d) and isinstance(avg.encoder[2], nn.AvgPool2d)
    assert sum(p.numel() for p in avg.parameters()) == sum(p.numel() for p in ANN().parameters())
    for bad in ("min", None, ["avg"]):
        with pytest.raises(ValueError, match="pool"):
            ANN(pool=bad)


def test_round_trip_accuracy_approaches_ann(tiny):
    ann, calibration, test = tiny
    _, ann_acc = evaluate(ann, test)
    assert ann_acc > 0.8
    snn = _convert(ann, calibration, mode="99.9%")
    acc = convert.accuracy_vs_T(snn, test, 64)
    assert acc.shape == (64,) and acc.dtype == torch.float64
    # 时间步越多越接近 ANN：很少的步数时远不如 ANN，64 步时相差不超过 3%（200 张图里 6 张）
    assert acc[1] < ann_acc - 0.1
    assert abs(acc[63].item() - ann_acc) <= 0.03
    assert acc[31:].mean() > acc[:8].mean()


def test_accuracy_vs_T_matches_separate_runs(tiny):
    """一次运行 T_max 步得到的第 T 个值，与单独用 T 步运行完全相同。"""
    ann, calibration, test = tiny
    snn = _convert(ann, calibration, mode="max")
    acc = convert.accuracy_vs_T(snn, test, 12)
    for T in (3, 12):
        model = convert.DirectEncodingSNN(snn, T)
        with torch.no_grad():
            correct = sum((model(x).argmax(1) == y).sum().item() for x, y in test)
        assert correct / len(test.y) == acc[T - 1].item()


def test_direct_encoding_wrapper_equals_plain_loop(tiny):
    ann, calibration, test = tiny
    snn = _convert(ann, calibration, mode="99.9%", channel_wise=True, half_threshold=True)
    x = test.x[:50]
    with torch.no_grad():
        wrapped = convert.DirectEncodingSNN(snn, 8)(x)
        functional.reset_net(snn)
        loop = sum(snn(x) for _ in range(8)) / 8
        functional.reset_net(snn)
    assert torch.equal(wrapped, loop)


@pytest.mark.parametrize("kw", [dict(mode="max"), dict(mode="99.9%", channel_wise=True)])
def test_thresholds_and_folding(tiny, kw):
    ann, calibration, test = tiny
    snn = _convert(ann, calibration, **kw)
    th = convert.thresholds(snn)
    assert len(th) == 3 and all((v > 0).all() for v in th.values())
    assert all(v.dim() == (1 if kw.get("channel_wise") else 0) for v in th.values())
    folded = convert.fold_output_scales(snn)
    assert all((v == 1).all() for v in convert.thresholds(folded).values())
    x = test.x[:50]
    with torch.no_grad():
        a, b = convert.DirectEncodingSNN(snn, 16)(x), convert.DirectEncodingSNN(folded, 16)(x)
    # 浮点运算的次序变了（先乘 θ 再卷积 ↔ 权重先乘 θ），输出只差舍入误差
    assert torch.allclose(a, b, atol=1e-4)
    assert (a.argmax(1) == b.argmax(1)).float().mean() >= 0.98


def test_bad_T_max(tiny):
    ann, calibration, test = tiny
    snn = _convert(ann, calibration, mode="max")
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="T_max"):
            convert.accuracy_vs_T(snn, test, bad)
