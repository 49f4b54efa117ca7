"""STDP 网络的保存与加载（纯数据、weights_only=True、坏文件有中文说明）与 STDP 的图。"""

from __future__ import annotations

import pytest
import torch

from snn_tutorial import stdp, stdp_io, stdp_plots
from snn_tutorial.checkpoint import CheckpointError


def small_net(seed=0):
    net = stdp.DiehlCookNetwork(stdp.STDPConfig(n_neurons=6, steps=20, seed=seed, inhibition=50.0))
    images = (torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 255).to(torch.uint8)
    net.fit(images)
    return net


def test_round_trip_keeps_config_weights_and_threshold(tmp_path):
    net = small_net()
    path = stdp_io.save_network(tmp_path / "net.pt", net, metrics={"val_accuracy": 0.5})
    back, saved = stdp_io.load_network(path)
    assert back.config == net.config
    assert torch.equal(back.weight, net.weight) and torch.equal(back.theta, net.theta)
    assert back.images_seen == net.images_seen == 8
    assert saved["metrics"] == {"val_accuracy": 0.5}
    # 纯数据：weights_only=True 能直接读
    assert torch.load(path, weights_only=True)["format"] == stdp_io.FORMAT


def test_shipped_network_loads_and_has_learned_fields():
    net, saved = stdp_io.load_network()
    assert net.config.n_neurons == 400 and net.weight.shape == (400, 784)
    assert torch.allclose(net.weight.sum(1), torch.full((400,), net.config.w_sum), rtol=1e-4)
    assert saved["images_seen"] > 0 and net.theta.max() > 0
    # 学到的感受野集中在图像中部（不是初始的均匀噪声）：边上 3 像素的权重之和远小于中间
    w = net.weight.reshape(400, 28, 28)
    border = w.sum((1, 2)) - w[:, 3:-3, 3:-3].sum((1, 2))
    assert (border < 0.05 * net.config.w_sum).float().mean() > 0.9


@pytest.mark.parametrize("make, words", [
    (lambda p: p, "不存在"),
    (lambda p: (p.mkdir(), p)[1], "目录"),
    (lambda p: (torch.save({"state_dict": {}}, p), p)[1], "不是 STDP 网络文件"),
    (lambda p: (p.write_bytes(b"\x80\x02garbage"), p)[1], "无法读取"),
])
def test_bad_files_get_chinese_errors(tmp_path, make, words):
    path = make(tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match=words):
        stdp_io.load_network(path)


def test_truncated_and_tampered_files(tmp_path):
    net = small_net()
    path = stdp_io.save_network(tmp_path / "net.pt", net)
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="损坏或不完整"):
        stdp_io.load_network(tmp_path / "cut.pt")
    saved = torch.load(path, weights_only=True)
    for change, words in [({"weight": saved["weight"][:3]}, "不合法"), ({"config": {**saved["config"], "n_neurons": -1}}, "不合法"),
                          ({"weight": saved["weight"] * float("nan")}, "NaN"), ({"theta": None}, "不合法")]:
        torch.save({**saved, **change}, tmp_path / "bad.pt")
        with pytest.raises(CheckpointError, match=words):
            stdp_io.load_network(tmp_path / "bad.pt")
    del saved["theta"]
    torch.save(saved, tmp_path / "missing.pt")
    with pytest.raises(CheckpointError, match="缺少 theta"):
        stdp_io.load_network(tmp_path / "missing.pt")


def test_save_rejects_a_non_network(tmp_path):
    with pytest.raises(ValueError, match="DiehlCookNetwork"):
        stdp_io.save_network(tmp_path / "x.pt", torch.nn.Linear(2, 2))
    assert not (tmp_path / "x.pt").exists()


def test_tiles_put_each_neuron_in_its_place():
    weight = torch.arange(5).float()[:, None].expand(5, 784)
    grid = stdp_plots.tile_weights(weight, ncols=3)
    assert grid.shape == (2 * 29 - 1, 3 * 29 - 1)
    assert grid[0, 0] == 0 and grid[0, 29] == 1 and grid[29, 29] == 4 and grid[28, 0] != grid[28, 0]   # 缝是 NaN
    assert (grid[29:, 58:] != grid[29:, 58:]).all()   # 第 6 格空着


def test_confusion_counts_and_gif(tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    from PIL import Image

    labels, predicted = torch.tensor([0, 0, 1, 2, 2, 2]), torch.tensor([0, 1, 1, 2, 2, 0])
    _, counts = stdp_plots.plot_confusion(labels, predicted)
    assert counts[0, 0] == 1 and counts[0, 1] == 1 and counts[2, 2] == 2 and counts[2, 0] == 1 and counts.sum() == 6
    snaps = [(i * 10, torch.rand(4, 784)) for i in range(3)]
    path = stdp_plots.save_receptive_field_gif(snaps, tmp_path / "gif" / "rf.gif")
    with Image.open(path) as gif:
        assert gif.n_frames == 3
    with pytest.raises(ValueError, match="snapshots 为空"):
        stdp_plots.save_receptive_field_gif([], tmp_path / "empty.gif")


def test_spike_trains_match_responses_and_synops():
    net = small_net()
    images = (torch.rand(5, 784, generator=torch.Generator().manual_seed(3)) * 255).to(torch.uint8)
    net.generator.manual_seed(0)
    counts = net.responses(images, batch_size=2)
    synops = net.last_synops
    net.generator.manual_seed(0)
    trains = net.spike_trains(images, batch_size=2)
    assert trains.dtype == torch.bool and trains.shape == (5, 20, 6)
    assert torch.equal(trains.sum(1).float(), counts)
    assert synops.shape == (5,) and (synops > 0).all()
    # 全黑的图没有输入脉冲，兴奋层也不发放（重呈现也一样）：突触运算为 0
    net.responses(torch.zeros(2, 784, dtype=torch.uint8))
    assert torch.equal(net.last_synops, torch.zeros(2))
    # 突触运算 = 输入脉冲 × N + 兴奋脉冲 × (N − 1)：只有一个像素亮时，输入脉冲数可以从兴奋层之外单独数出来
    one = torch.zeros(1, 784, dtype=torch.uint8)
    one[0, 400] = 255
    net.generator.manual_seed(1)
    _, pre, post, _ = net.run(one.float() / 255 * net.config.max_rate, learn=False)
    net.generator.manual_seed(1)
    net.config = net.config.replace(max_retries=0)
    net.present(one, learn=False)
    assert net.last_synops.item() == pre.sum().item() * 6 + post.sum().item() * 5
