"""模型：形状、可复现的前向、原始模型的数学、训练一步降低损失。"""

import pytest
import torch
import torch.nn.functional as F
from spikingjelly.activation_based import functional

from snn_tutorial import data, runtime
from snn_tutorial.models import ANN, CSNN, OriginalNet, build_model, count_parameters
from snn_tutorial.training import evaluate, fit


@pytest.fixture(scope="module")
def sample():
    x, y = data.load_sample()
    return data.normalize(x), y


@pytest.mark.parametrize("name", ["csnn", "ann", "original"])
def test_output_shapes(name, sample):
    x, _ = sample
    model = build_model(name).eval()
    with torch.no_grad():
        out = model(x[:5])
    functional.reset_net(model)
    assert out.shape == (5, 10)


def test_csnn_outputs_are_firing_rates(sample):
    x, _ = sample
    model = CSNN(T=4, vote=10).eval()
    with torch.no_grad():
        seq = model.forward_seq(x[:16])
        functional.reset_net(model)
        rate = model(x[:16])
        functional.reset_net(model)
        spikes = model.snn[:-1](model.encoder(x[:16]).unsqueeze(0).expand(4, 16, -1, -1, -1))
    functional.reset_net(model)
    assert seq.shape == (4, 16, 10) and spikes.shape == (4, 16, 100)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}                    # 输出层发的是脉冲
    assert torch.allclose(seq, spikes.view(4, 16, 10, 10).mean(-1))       # 投票 = 每类 10 个神经元的平均
    assert torch.equal(rate, seq.mean(0))                                 # 读出 = 发放率
    assert torch.allclose(rate * 40, (rate * 40).round(), atol=1e-5)      # 取值 0, 1/40, …, 1


def test_single_and_multi_step_agree(sample):
    x, _ = sample
    runtime.seed_everything(0)
    model = CSNN().eval()
    with torch.no_grad():
        multi = model.forward_seq(x[:32])
        functional.reset_net(model)
        single = model.set_step_mode("s").forward_seq(x[:32])
    functional.reset_net(model)
    assert torch.equal(single, multi)


# 未训练的网络在 eval 模式下（BN 用初始的滑动统计量）几乎不发放；下面用 train 模式（BN 用本批统计量）测前向


def test_seeded_forward_is_reproducible(sample):
    x, _ = sample
    outs = []
    for _ in range(2):
        runtime.seed_everything(7)
        model = CSNN()
        with torch.no_grad():
            outs.append(model.forward_seq(x[:32]))
        functional.reset_net(model)
    assert torch.equal(outs[0], outs[1]) and outs[0].sum() > 0
    runtime.seed_everything(8)
    with torch.no_grad():
        other = CSNN().forward_seq(x[:32])
    assert not torch.equal(outs[0], other)


def test_forward_without_reset_differs(sample):
    """忘记 reset_net，同一输入会得到不同输出：模型确实有状态。"""
    x, _ = sample
    runtime.seed_everything(0)
    model = CSNN()
    with torch.no_grad():
        a = model.forward_seq(x[:32])
        b = model.forward_seq(x[:32])
        functional.reset_net(model)
        c = model.forward_seq(x[:32])
    assert not torch.equal(a, b) and torch.equal(a, c)


def test_original_model_reproduces_original_maths(sample):
    """原始模型：卷积 + IF 只跑一次，全连接 + LIF 跑 T 次，log_softmax(平均发放) 与 one-hot 做 MSE。"""
    x, y = sample
    runtime.seed_everything(0)
    model = OriginalNet(T=8).eval()
    with torch.no_grad():
        out = model(x[:16])
        functional.reset_net(model)
        # 手写一遍：卷积部分单步运行一次（IF 从 0 开始，只有一步 → 就是阈值 1 的阶跃函数）
        h = x[:16]
        for m in model.conv:
            h = (h >= 1.0).float() if m.__class__.__name__ == "IFNode" else m(h)
        lin1, lif1, lin2, lif2 = model.fc
        v1 = torch.zeros(16, lin1.out_features)
        v2 = torch.zeros(16, 10)
        total = torch.zeros(16, 10)
        for _ in range(8):                                          # LIF：tau = 2，硬重置到 0
            h1 = v1 + (lin1(h) - v1) / 2.0
            s1 = (h1 >= 1.0).float()
            v1 = h1 * (1 - s1)
            h2 = v2 + (lin2(s1) - v2) / 2.0
            s2 = (h2 >= 1.0).float()
            v2 = h2 * (1 - s2)
            total += s2
        expected = F.log_softmax(total / 8, dim=1)
    functional.reset_net(model)
    assert torch.allclose(out, expected, atol=1e-6)
    loss = OriginalNet.loss(out, y[:16])
    assert torch.allclose(loss, ((out - F.one_hot(y[:16], 10)) ** 2).mean())
    assert OriginalNet.train_recipe == {"lr": 0.01, "batch_size": 512, "schedule": "none"}
    assert model.T == 8 and model.fc[1].tau == 2.0


def test_same_size_ann_and_snn():
    assert count_parameters(CSNN()) == count_parameters(ANN())
    assert CSNN().config == {"channels": [32, 32], "hidden": 256, "T": 4, "tau": 2.0, "vote": 10}


def test_one_training_step_lowers_loss(sample):
    x, y = sample
    runtime.seed_everything(0)
    model = CSNN()

    def loss_now():
        with torch.no_grad():
            loss = model.loss(model(x[:256]), y[:256]).item()
        functional.reset_net(model)
        return loss

    before = loss_now()
    batch = data.TensorBatches(data.load_sample()[0][:256], y[:256], batch_size=256, shuffle=False)
    fit(model, batch, batch, epochs=1, lr=1e-2, schedule="none", progress=False)
    model.train()
    assert loss_now() < before


def test_fit_learns_on_the_sample_and_records_history(tmp_path):
    x, y = data.load_sample()
    runtime.seed_everything(0)
    train = data.TensorBatches(x[:800], y[:800], batch_size=50, seed=0)
    test = data.TensorBatches(x[800:], y[800:], batch_size=200, shuffle=False)
    model = CSNN()
    h = fit(model, train, test, epochs=3, lr=3e-3, evals_per_epoch=2, log_dir=str(tmp_path / "tb"), progress=False)
    assert len(h.eval_acc) == 6 and h.epoch[-1] == 3.0
    assert h.eval_acc[-1] > 0.6                      # 200 张留出的样本：随机猜只有 10%
    assert h.seconds == sorted(h.seconds) and h.lr[-1] < 1e-5   # 余弦退火到接近 0
    assert h.time_to(0.0) == h.seconds[0] and h.time_to(1.01) is None
    assert any((tmp_path / "tb").iterdir())          # 写了 TensorBoard 日志


def test_unknown_model():
    with pytest.raises(ValueError, match="未知模型"):
        build_model("resnet")


def test_channels_last_keeps_the_numbers(sample):
    """channels_last 只改内存布局：前向结果与普通布局逐位相同（float32）。"""
    from snn_tutorial.training import channels_last_input, to_channels_last

    x, _ = sample
    runtime.seed_everything(0)
    model = CSNN().eval()
    with torch.no_grad():
        plain = model(x[:64])
        functional.reset_net(model)
        to_channels_last(model)
        assert model.snn[1].weight.is_contiguous(memory_format=torch.channels_last)
        fast = model(channels_last_input(x[:64]))
    functional.reset_net(model)
    assert torch.equal(plain, fast)


def test_evaluate_is_float32_whatever_fit_trained_with(monkeypatch):
    """fit 里的评估和单独调用 evaluate 都用 float32：记录的准确率与之后复核的逐位相同（CPU 有没有 bfloat16 都一样）。"""
    from snn_tutorial import training

    x, y = data.load_sample()
    for native in (True, False):
        monkeypatch.setattr(runtime, "_native_bf16", lambda: native)
        runtime.seed_everything(0)
        model = CSNN()
        train = data.TensorBatches(x[:256], y[:256], batch_size=64, seed=0)
        test = data.TensorBatches(x[800:], y[800:], batch_size=200, shuffle=False)
        h = fit(model, train, test, epochs=1, lr=3e-3, progress=False)
        assert h.eval_acc[-1] == training.evaluate(model, test)[1]


def test_fit_without_channels_last_never_switches_layout():
    """fit(channels_last=False) 中途评估也不能把卷积核换成 channels_last（否则反向的算法在训练中途变了）。"""
    x, y = data.load_sample()
    runtime.seed_everything(0)
    model = CSNN()
    train = data.TensorBatches(x[:256], y[:256], batch_size=64, seed=0)
    test = data.TensorBatches(x[800:], y[800:], batch_size=200, shuffle=False)
    fit(model, train, test, epochs=1, lr=3e-3, evals_per_epoch=2, amp=False, channels_last=False, progress=False)
    weight = model.snn[1].weight                                   # [32, 32, 3, 3]：两种布局可以区分
    assert weight.is_contiguous() and not weight.is_contiguous(memory_format=torch.channels_last)


def test_evaluate_clears_state_left_by_an_interrupted_forward():
    """之前的前向没有 reset_net（例如在笔记本里中断了训练）：evaluate 的结果应与干净的模型相同。"""
    runtime.seed_everything(0)
    model = CSNN(channels=(4, 4), hidden=16).eval()
    batches = data.TensorBatches(*data.load_sample(), batch_size=100, shuffle=False, dataset="mnist-sample")
    clean = evaluate(model, batches, channels_last=False)
    with torch.no_grad():
        model(next(iter(batches))[0][:50] * 3)                 # 留下膜电位，不重置
    assert any(getattr(m, "v", 0.0) is not None and torch.is_tensor(getattr(m, "v", None)) for m in model.modules())
    assert evaluate(model, batches, channels_last=False) == clean
