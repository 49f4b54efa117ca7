"""检查点的保存与加载、各种坏检查点的中文报错、命令行。"""

import subprocess
import sys

import pytest
import torch
from spikingjelly.activation_based import functional

from snn_tutorial import data, runtime
from snn_tutorial.checkpoint import SHIPPED, CheckpointError, load_checkpoint, run_inputs, save_checkpoint
from snn_tutorial.models import CSNN


def test_round_trip(tmp_path):
    model = CSNN(channels=(8, 16), hidden=32, T=2)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, "csnn", {"channels": (8, 16), "hidden": 32, "T": 2}, {"test_acc": 0.5})
    loaded, ckpt = load_checkpoint(path)
    assert ckpt["metrics"] == {"test_acc": 0.5} and ckpt["config"]["channels"] == [8, 16]
    assert not loaded.training
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    x = data.normalize(data.load_sample()[0][:8])
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    functional.reset_net(model)
    assert [p.name for p in path.parent.iterdir()] == ["m.pt"]     # 没有残留的临时文件
    torch.load(path, weights_only=True)                            # 纯数据，weights_only 可以加载


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="不存在"):
        load_checkpoint(tmp_path / "nope.pt")


def test_garbage_file(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(CheckpointError, match="不是检查点：它是文本文件"):
        load_checkpoint(bad)
    bad.write_bytes(bytes(range(256)))                     # 认不出的二进制：说明开头的字节
    with pytest.raises(CheckpointError, match="格式无法识别.*00 01 02 03"):
        load_checkpoint(bad)


def test_truncated_file(tmp_path):
    good = save_checkpoint(tmp_path / "g.pt", CSNN(), "csnn", {})
    cut = tmp_path / "cut.pt"
    cut.write_bytes(good.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="损坏"):
        load_checkpoint(cut)


def test_pickled_whole_model(tmp_path):
    path = tmp_path / "whole.pt"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(CheckpointError, match="state_dict") as err:
        load_checkpoint(path)
    # PyTorch 原文截断后读起来像在建议 weights_only=False：一律不转述
    assert "weights_only=False" not in str(err.value) and "Re-running" not in str(err.value)


def test_load_reads_tensors_on_cpu_then_moves(tmp_path):
    """检查点里的张量总是先读到 CPU；要求不可用的设备时报 DeviceError，而不是说文件坏了。"""
    path = save_checkpoint(tmp_path / "m.pt", CSNN(channels=(2, 2), hidden=8), "csnn")
    model, ckpt = load_checkpoint(path, torch.device("cpu"))
    assert all(v.device.type == "cpu" for v in ckpt["state_dict"].values())
    with pytest.raises(runtime.DeviceError):
        load_checkpoint(path, "mps")


def test_bare_state_dict(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(CSNN().state_dict(), path)
    with pytest.raises(CheckpointError, match="裸的 state_dict"):
        load_checkpoint(path)


def test_wrong_architecture(tmp_path):
    path = save_checkpoint(tmp_path / "w.pt", CSNN(channels=(8, 8)), "csnn", {"channels": (16, 16)})
    with pytest.raises(CheckpointError, match="对不上"):
        load_checkpoint(path)


def test_unknown_config(tmp_path):
    path = save_checkpoint(tmp_path / "u.pt", CSNN(), "csnn", {"depth": 50})
    with pytest.raises(CheckpointError, match="无法识别"):
        load_checkpoint(path)


def test_shipped_weights_load():
    model, ckpt = load_checkpoint()
    assert SHIPPED.stat().st_size < 5_000_000
    assert ckpt["model"] == "csnn" and ckpt["metrics"]["test_acc"] >= 0.995
    assert "python -m snn_tutorial.train" in run_inputs(ckpt)["command"]
    x, y = data.load_sample()
    with torch.no_grad():
        acc = (model(data.normalize(x)).argmax(1) == y).float().mean().item()
    assert acc >= 0.98       # 随包样本来自测试集


def _run(module, *args):
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=600)


def test_cli_help_is_chinese():
    for module in ["snn_tutorial.train", "snn_tutorial.evaluate"]:
        res = _run(module, "--help")
        assert res.returncode == 0 and "数据目录" in res.stdout and "检查点" in res.stdout


def test_cli_quick_train_then_evaluate(tmp_path):
    pytest.importorskip("torchvision")
    root = data.resolve_data_root()[0]
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip("没有 MNIST 数据")
    out = tmp_path / "q.pt"
    res = _run("snn_tutorial.train", "--quick", "--no-progress", "--out", str(out), "--log-dir", str(tmp_path / "tb"))
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("最终测试准确率：") and last.endswith("%")
    acc = float(last.split("：")[1].rstrip("%"))
    assert 30 < acc <= 100                       # 4000 张、1 轮：远好于随机
    res = _run("snn_tutorial.evaluate", "--checkpoint", str(out), "--limit", "1000")
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == f"测试准确率：{acc:.2f}%（mnist 测试集 1000 张）"


def test_cli_errors_are_clear(tmp_path):
    res = _run("snn_tutorial.evaluate", "--checkpoint", str(tmp_path / "none.pt"))
    assert res.returncode == 2 and "检查点文件不存在" in res.stderr and "Traceback" not in res.stderr
    res = _run("snn_tutorial.train", "--quick", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.pt"))
    assert res.returncode == 2 and "数据目录不存在" in res.stderr
    if not torch.cuda.is_available():
        res = _run("snn_tutorial.train", "--quick", "--device", "cuda")
        assert res.returncode == 2 and "CUDA" in res.stderr and "Traceback" not in res.stderr
    res = _run("snn_tutorial.train", "--quick", "--device", "mps")
    assert res.returncode == 2 and "SpikingJelly 2.0" in res.stderr and "--device cpu" in res.stderr


def test_shipped_weights_reach_99_5_on_full_test_set():
    root = data.resolve_data_root()[0]
    if not (root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").exists():
        pytest.skip("没有完整的 MNIST 测试集")
    res = _run("snn_tutorial.evaluate")
    assert res.returncode == 0, res.stderr
    last = res.stdout.strip().splitlines()[-1]
    acc = float(last.split("：")[1].split("%")[0])
    assert acc >= 99.5 and "10000 张" in last


def test_cli_validation_split_keeps_the_test_set_for_the_end(tmp_path):
    """--val：训练中的每次评估都在验证集上，测试集只在最后评估一次；检查点里两个准确率都有。"""
    out = tmp_path / "v.pt"
    res = _run("snn_tutorial.train", "--dataset", "mnist-sample", "--epochs", "1", "--channels", "4", "4", "--hidden", "16",
               "--val", "200", "--evals-per-epoch", "2", "--no-progress", "--out", str(out))
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert "训练 600 张、验证 200 张（从训练集随机留出）" in lines[0]
    evals = [line for line in lines if line.lstrip().startswith("第 ")]
    assert len(evals) == 2 and all("验证准确率" in line and "测试" not in line for line in evals)
    _, ckpt = load_checkpoint(out)
    assert ckpt["run"]["val"] == 200 and ckpt["run"]["val_split"] == "random"
    assert lines[-2] == f"最终验证准确率：{ckpt['metrics']['val_acc']:.2%}"
    assert lines[-1] == f"最终测试准确率：{ckpt['metrics']['test_acc']:.2%}"


def test_cli_tail_validation_split_is_used_and_recorded(tmp_path):
    """--val-split tail：留出的是训练集最后的连续一段；开头一行说明，检查点记录下来。"""
    out = tmp_path / "t.pt"
    res = _run("snn_tutorial.train", "--dataset", "mnist-sample", "--epochs", "1", "--channels", "4", "4", "--hidden", "16",
               "--val", "200", "--val-split", "tail", "--no-progress", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "训练 600 张、验证 200 张（从训练集末尾连续留出）" in res.stdout.splitlines()[0]
    _, ckpt = load_checkpoint(out)
    assert ckpt["run"]["val_split"] == "tail" and ckpt["run"]["val"] == 200


@pytest.mark.parametrize("flags, said, recorded", [
    (["--max-shift", "1", "--max-rotate", "5", "--max-scale", "0"], "随机平移至多 1 像素、旋转至多 5°",
     {"max_shift": 1, "max_rotate": 5.0, "max_scale": 0}),
    (["--max-shift", "0", "--max-rotate", "0", "--max-scale", "0"], "不做数据增强", {"max_shift": 0, "max_rotate": 0, "max_scale": 0}),
])
def test_cli_augmentation_flags_are_used_and_recorded(tmp_path, flags, said, recorded):
    out = tmp_path / "a.pt"
    res = _run("snn_tutorial.train", "--dataset", "mnist-sample", "--epochs", "1", "--channels", "4", "4", "--hidden", "16",
               *flags, "--no-progress", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert said in res.stdout.splitlines()[0]
    _, ckpt = load_checkpoint(out)
    assert {k: ckpt["run"][k] for k in recorded} == recorded
