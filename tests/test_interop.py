"""可移植的 NIR 图（issue 29）：它能往返、snnTorch 与 Norse 的导入都成功、在随包样本上与 SpikingJelly 的预测相同；
整数量化的权重真的是整数、阈值随刻度缩放。没有装 interop 附加依赖（snntorch、norse）时，相应的测试跳过。
"""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn_tutorial import data
from snn_tutorial import export as ex
from snn_tutorial import nir_portable as npo
from snn_tutorial.checkpoint import load_checkpoint

N_IMAGES = 200   # 随包样本里用来核对的测试图张数（与命令行 --verify-images 的默认值相同）


@pytest.fixture(scope="module")
def sample_x() -> torch.Tensor:
    x, _ = data.load_raw("mnist-sample", train=False)
    return data.normalize(x[:N_IMAGES])


@pytest.fixture(scope="module")
def shipped():
    """随包的可部署变体、它的可移植 NIR 图、SpikingJelly 在样本上的输出层脉冲（参照）。"""
    model, _ = load_checkpoint(ex.DEPLOYABLE)
    x, _ = data.load_raw("mnist-sample", train=False)
    x = data.normalize(x[:N_IMAGES])
    reference = ex.run_core(ex.spiking_core(model), x, model.T)
    return model, ex.export_nir(model, portable=True), x, reference


# ---------------------------------------------------------------- 图的形式（不需要 snntorch、norse）
def test_pool_as_conv_computes_the_average():
    pool = nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    pool.input_type = {"input": np.array([3, 6, 6])}
    conv = npo.pool_as_conv(pool)
    x = torch.randn(5, 3, 6, 6, generator=torch.Generator().manual_seed(0))
    got = F.conv2d(x, torch.from_numpy(conv.weight), torch.from_numpy(conv.bias), stride=tuple(conv.stride))
    assert got.shape == (5, 3, 3, 3)
    assert torch.allclose(got, F.avg_pool2d(x, 2), atol=1e-6)
    assert np.count_nonzero(conv.weight) == 3 * 4            # 只在对角的通道上有 k×k 个 1/k²


def test_pool_as_conv_refuses_what_it_cannot_express():
    pool = nir.AvgPool2d(kernel_size=2, stride=1, padding=0)
    pool.input_type = {"input": np.array([3, 6, 6])}
    with pytest.raises(npo.PortableError, match="步长为 k"):
        npo.pool_as_conv(pool)


def test_strict_threshold_turns_greater_equal_into_greater():
    theta = np.float32(1.0)
    strict = np.float32(npo.strict_threshold(theta))
    around = np.array([np.nextafter(theta, np.float32(0)), theta, np.nextafter(theta, np.float32(2)), 0.5, 1.5], np.float32)
    assert strict < theta
    assert np.array_equal(around >= theta, around > strict)
    assert not np.array_equal(around >= theta, around > theta)   # 不换阈值时，恰好等于阈值的那一个不同


def test_portable_graph_round_trips_through_a_file(tmp_path, shipped):
    model, graph, x, reference = shipped
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert "AvgPool2d" not in kinds and kinds.count("Conv2d") == 4 and npo.non_portable(graph) == []
    nir.write(str(tmp_path / "p.nir"), graph)
    back = nir.read(str(tmp_path / "p.nir"))
    assert {k: type(n).__name__ for k, n in back.nodes.items()} == {k: type(n).__name__ for k, n in graph.nodes.items()}
    assert sorted(back.edges) == sorted(graph.edges)
    spikes = ex.run_nir(ex.load_nir(tmp_path / "p.nir"), x, model.T)   # SpikingJelly 也能读可移植的形式
    assert torch.equal(spikes, reference)


def test_sj_graph_is_not_portable_and_interop_says_so():
    model, _ = load_checkpoint(ex.DEPLOYABLE)
    plain = ex.export_nir(model)
    assert [p.split("：")[1] for p in npo.non_portable(plain)] == ["AvgPool2d", "AvgPool2d"]
    pytest.importorskip("snntorch")
    from snn_tutorial import interop

    with pytest.raises(interop.InteropError, match="--portable"):
        interop.load_snntorch(plain)


# ---------------------------------------------------------------- 整数权重
@pytest.mark.parametrize("bits", [8, 4])
def test_quantized_core_has_integer_weights_and_scaled_thresholds(bits, shipped):
    model, _, x, reference = shipped
    core = ex.spiking_core(model)
    q, scales = npo.quantize_core(core, bits)
    top = 2 ** (bits - 1) - 1
    layers = [m for m in q if hasattr(m, "weight")]
    assert len(layers) == len(scales) == 4
    for m in layers:
        assert torch.equal(m.weight, m.weight.round()) and m.weight.abs().max() == top
    thresholds = [m.v_threshold for m in q if hasattr(m, "v_threshold")]
    assert thresholds == [round(1 / s) for s in scales.values()]                # 阈值也随刻度缩放、取整
    assert core.conv1.weight.abs().max() < 10                       # 原来的核心没有被改动
    same = (ex.readout(ex.run_core(q, x, model.T), 10).argmax(1) == ex.readout(reference, 10).argmax(1)).double().mean()
    assert same >= (0.97 if bits == 8 else 0.5)


def test_quantize_core_checks_bits():
    model, _ = load_checkpoint(ex.DEPLOYABLE)
    core = ex.spiking_core(model)
    for bad in (1, 17, 8.0, True, "8"):
        with pytest.raises(ValueError, match="bits 须为"):
            npo.quantize_core(core, bad)
    q, _ = npo.quantize_core(core, np.int64(3))                          # NumPy 的整数也是整数（家规）
    assert q.conv1.weight.abs().max() == 3


def test_quantized_threshold_never_rounds_to_zero():
    model, _ = load_checkpoint(ex.DEPLOYABLE)
    core = ex.spiking_core(model)
    with torch.no_grad():
        core.fc2.weight.mul_(1000)                                       # 刻度 s > 2：1/s 取整会是 0
    q, scales = npo.quantize_core(core, 8)
    assert scales["fc2"] > 2 and q.lif4.v_threshold == 1.0


# ---------------------------------------------------------------- 在 snnTorch 与 Norse 里运行
@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_framework_runs_portable_graph_like_spikingjelly(framework, shipped):
    pytest.importorskip(framework)
    from snn_tutorial import interop

    model, graph, x, reference = shipped
    net = (interop.load_snntorch if framework == "snntorch" else interop.load_norse)(graph)
    spikes = (interop.run_snntorch if framework == "snntorch" else interop.run_norse)(net, x, model.T)
    stats = interop.agreement(spikes, reference, vote=10)
    assert stats["predictions"] == 1.0 and stats["spike_counts"] == 1.0, stats
    assert spikes.sum() > 0


@pytest.mark.parametrize("framework", ["snntorch", "norse"])
def test_importer_still_flattens_the_batch(framework, shipped):
    """上游的错误还在：不修正 Flatten 时，批大小 > 1 的输入在全连接层报形状错误。上游修好后这个测试会失败，提醒删掉 fix_flatten。"""
    pytest.importorskip(framework)
    from snn_tutorial import interop

    _, graph, x, _ = shipped
    net = (interop.load_snntorch if framework == "snntorch" else interop.load_norse)(graph)
    flattens = [m for m in net.modules() if isinstance(m, torch.nn.Flatten)]
    assert [(m.start_dim, m.end_dim) for m in flattens] == [(1, -1)]
    flattens[0].start_dim = 0                                    # 退回导入器原样建出的样子
    with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
        (interop.run_snntorch if framework == "snntorch" else interop.run_norse)(net, x[:4], 1)


def test_norse_needs_the_export_dt(shipped):
    pytest.importorskip("norse")
    from snn_tutorial import interop

    model, graph, x, reference = shipped
    wrong = interop.run_norse(interop.load_norse(graph, dt=1e-3), x[:50], model.T)   # Norse 的默认步长
    assert interop.agreement(wrong, reference[:, :50], vote=10)["spike_counts"] < 0.5
    with pytest.raises(interop.InteropError, match="dt 须为正数"):
        interop.load_norse(graph, dt=0)
