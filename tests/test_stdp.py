"""snn_tutorial.stdp：从零写的成对 STDP 与 SpikingJelly 的 STDPLearner 一致、学习窗与理论指数相同、
权重不出界且归一化成立、同一种子得到同样的权重、坏参数得到中文说明。都用很小的尺寸，几秒内跑完。"""

from __future__ import annotations

import pytest
import torch
from spikingjelly.activation_based import functional, learning, neuron

from snn_tutorial import data, stdp

TAU_PRE, TAU_POST, ETA_PRE, ETA_POST = 5.0, 8.0, 0.3, 0.7


def spikingjelly_run(batch: int, steps: int = 30, seed: int = 0):
    """一个 Linear(12→5) + IF 神经元，随机输入脉冲，逐步让 STDPLearner 算 Δw（不改权重）。
    返回 (输入脉冲 [T, B, 12], 输出脉冲 [T, B, 5], 每步的 Δw [T, 5, 12])。"""
    g = torch.Generator().manual_seed(seed)
    fc = torch.nn.Linear(12, 5, bias=False)
    with torch.no_grad():
        fc.weight.copy_(torch.rand(5, 12, generator=g))
    sn = neuron.IFNode(v_threshold=1.0)
    learner = learning.STDPLearner("s", fc, sn, tau_pre=TAU_PRE, tau_post=TAU_POST,
                                   f_pre=lambda w: torch.full_like(w, ETA_PRE),
                                   f_post=lambda w: torch.full_like(w, ETA_POST))
    pre = (torch.rand(steps, batch, 12, generator=g) < 0.3).float()
    post, deltas = [], []
    with torch.no_grad():
        for t in range(steps):
            post.append(sn(fc(pre[t])))
            deltas.append(learner.step(on_grad=False))
    learner.close()
    functional.reset_net(sn)
    post = torch.stack(post)
    assert 0 < post.sum() < post.numel(), "输出应有脉冲也有静默，否则比较没有意义"
    return pre, post, torch.stack(deltas)


def own_run(pre, post, tau_pre=TAU_PRE, tau_post=TAU_POST, eta_pre=ETA_PRE, eta_post=ETA_POST):
    """逐步调用 stdp_step：每步的 Δw [T, O, I]。"""
    trace = (torch.zeros_like(pre[0]), torch.zeros_like(post[0]))
    deltas = []
    for t in range(pre.shape[0]):
        dw, trace = stdp.stdp_step(pre[t], post[t], trace, tau_pre=tau_pre, tau_post=tau_post,
                                   eta_pre=eta_pre, eta_post=eta_post)
        deltas.append(dw)
    return torch.stack(deltas)


def test_matches_stdplearner_bit_for_bit_with_one_sample():
    # 批大小 1：每个 Δw 元素只有一次乘法（脉冲是 0/1，乘积精确）和同样次序的加减，所以逐位相同
    pre, post, expected = spikingjelly_run(batch=1)
    assert torch.equal(own_run(pre, post), expected)


def test_matches_stdplearner_with_a_batch():
    # 批大小 > 1：两边都对批求和，SpikingJelly 用逐元素乘再 sum(0)，这里用矩阵乘法，加法次序可能不同。
    # 增强项与减弱项各是几个 1 左右的数之和，相减后的舍入误差是它们的几个 ulp（float32 在 8 附近的 ulp ≈ 1e-6），
    # 所以按绝对误差 1e-5 比较（实测最大差 1.9e-6，出现在 1800 个元素里的 1 个上）
    pre, post, expected = spikingjelly_run(batch=6, seed=1)
    torch.testing.assert_close(own_run(pre, post), expected, rtol=0, atol=1e-5)


def test_fast_delta_equals_sum_of_steps():
    # stdp_delta 换了求和次序（按突触后脉冲汇总），a^k 用乘方而不是逐步连乘：只差浮点舍入
    pre, post, expected = spikingjelly_run(batch=4, steps=60, seed=2)
    fast = stdp.stdp_delta(pre, post, tau_pre=TAU_PRE, tau_post=TAU_POST, eta_pre=ETA_PRE, eta_post=ETA_POST)
    torch.testing.assert_close(fast, expected.sum(0), rtol=1e-5, atol=1e-4)
    assert fast.abs().max() > 1, "增量应足够大，比较才有意义"


def test_learning_window_is_the_analytic_exponential():
    # 101 对脉冲同时模拟：第 k 个突触前神经元在 t_pre 发放，第 k 个突触后神经元在 t_pre + Δt_k 发放；
    # Δw 的对角元 [k, k] 只含第 k 对的贡献（非对角元是不同对之间的，这里不用）
    steps, t_pre = 121, 60
    shifts = torch.arange(-50, 51)
    pre, post = torch.zeros(steps, 1, 101), torch.zeros(steps, 1, 101)
    pre[t_pre, 0, :] = 1.0
    post[t_pre + shifts, 0, torch.arange(101)] = 1.0
    taus = dict(tau_pre=20.0, tau_post=10.0, eta_pre=0.5, eta_post=1.0)
    simulated = own_run(pre, post, **taus).sum(0).diagonal()
    analytic = stdp.stdp_window(shifts, **taus)
    torch.testing.assert_close(simulated.double(), analytic, rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(stdp.stdp_delta(pre, post, **taus).diagonal(), simulated, rtol=1e-5, atol=1e-7)
    window = dict(zip(shifts.tolist(), simulated.tolist()))
    assert window[1] > window[10] > 0      # 先前后后：增强，间隔越短越强
    assert window[-1] < window[-10] < 0    # 先后后前：减弱
    assert window[0] == pytest.approx(1.0 - 0.5)   # 同一步：两项都有


def test_projection_keeps_bounds_and_row_sums():
    g = torch.Generator().manual_seed(0)
    w = torch.rand(50, 784, generator=g) ** 20 * 50  # 大多很小、少数很大：单纯乘一个系数会超出上界
    w[0] = 0.0                                      # 全 0 的行
    out = stdp.project_weights(w, w_sum=78.4, w_max=1.0)
    assert out.min() >= 0 and out.max() <= 1.0
    torch.testing.assert_close(out.sum(1), torch.full((50,), 78.4), rtol=1e-5, atol=1e-3)
    assert (out == 1.0).any(), "这组权重应有被截到上界的"
    naive = w[1:] * (78.4 / w[1:].sum(1, keepdim=True))
    assert naive.max() > 1.0, "只乘系数会出界：这正是 project_weights 要处理的情况"


def tiny(seed: int = 0, **changes) -> stdp.DiehlCookNetwork:
    return stdp.DiehlCookNetwork(stdp.STDPConfig(n_neurons=8, steps=40, batch_size=4, seed=seed, **changes))


@pytest.fixture(scope="module")
def images():
    return data.load_raw("mnist-sample", train=True)[0][:16]


def test_training_keeps_bounds_normalisation_and_changes_weights(images):
    net = tiny()
    before = net.weight.clone()
    net.fit(images)
    assert not torch.equal(net.weight, before)
    assert net.weight.min() >= 0 and net.weight.max() <= net.config.w_max
    torch.testing.assert_close(net.weight.sum(1), torch.full((8,), 78.4), rtol=1e-5, atol=1e-3)
    assert net.theta.max() > 0 and net.images_seen == 16


def test_same_seed_same_weights(images):
    a, b, c = tiny(seed=3), tiny(seed=3), tiny(seed=4)
    for net in (a, b, c):
        net.fit(images)
    assert torch.equal(a.weight, b.weight) and torch.equal(a.theta, b.theta)
    assert not torch.equal(a.weight, c.weight)


def test_assign_and_predict():
    counts = torch.tensor([[5., 0, 0], [4, 1, 0], [0, 6, 0], [1, 3, 0]])
    labels = torch.tensor([2, 2, 7, 7])
    assignments = stdp.assign(counts, labels)
    assert assignments.tolist() == [2, 7, -1]   # 第 3 个神经元从不发放：不参与投票
    assert stdp.predict(counts, assignments).tolist() == [2, 2, 7, 7]


@pytest.mark.parametrize("changes, fragment", [
    ({"n_neurons": 0}, "n_neurons 应 ≥ 1"),
    ({"n_neurons": 2.5}, "n_neurons 应为整数"),
    ({"steps": True}, "steps 应为整数"),
    ({"tau_pre": 0.5}, "tau_pre 应 ≥ 1"),
    ({"eta_post": float("nan")}, "eta_post 应为有限的数"),
    ({"eta_pre": -1e-4}, "eta_pre 不能为负"),
    ({"w_sum": 1000.0}, "w_sum 应在 0 到 784"),
    ({"w_max": 0.1}, "w_max 应为正数且不小于 w_init"),
    ({"max_rate": 2000.0}, "max_rate 应在"),
    ({"normalize": "yes"}, "normalize 应为 True 或 False"),
    ({"v_reset": -40.0}, "应低于阈值"),
    ({"seed": -1}, "seed 应为 0 到"),
])
def test_bad_config_gets_a_chinese_error(changes, fragment):
    with pytest.raises(ValueError, match=fragment):
        stdp.STDPConfig(**changes)


def test_bad_arguments_get_a_chinese_error(images):
    net = tiny()
    with pytest.raises(ValueError, match="images 应为至少一张图的 uint8 张量"):
        net.fit(images.float())
    with pytest.raises(ValueError, match="images 应为"):
        net.responses(images[:, :, :14])
    with pytest.raises(ValueError, match="config 应为 STDPConfig"):
        stdp.DiehlCookNetwork({"n_neurons": 10})
    with pytest.raises(ValueError, match="tau_post 应为 ≥ 1"):
        stdp.stdp_delta(torch.zeros(3, 1, 2), torch.zeros(3, 1, 2), tau_pre=2.0, tau_post=0.5)
    with pytest.raises(ValueError, match="every 应为"):
        net.fit(images, callback=print, every=0)
    with pytest.raises(ValueError, match="权重形状应为"):
        net.load_state_dict({"weight": torch.zeros(3, 784), "theta": torch.zeros(3)})
    assert net.images_seen == 0, "坏参数应在开始训练之前就被拒绝"
