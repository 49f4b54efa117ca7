"""多进程训练：torchrun 启动 2 个 CPU 进程（gloo），在随包样本上快速训练。"""

import subprocess
import sys

import torch

from snn_tutorial import data, runtime
from snn_tutorial.checkpoint import load_checkpoint
from snn_tutorial.models import build_model
from snn_tutorial.recipes import RECIPES
from snn_tutorial.training import evaluate

ARGS = ["--dataset", "mnist-sample", "--epochs", "1", "--batch-size", "64", "--no-progress"]


def _train(tmp_path, name, *launcher, out_arg=None):
    out = tmp_path / f"{name}.pt"
    cmd = [sys.executable, *launcher, "-m", "snn_tutorial.train", *ARGS, "--out", out_arg or str(out)]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    return out, res.stdout


def test_two_gloo_processes_agree_and_checkpoint_loads(tmp_path):
    # --out 给的是一个（还不存在的）目录：0 号进程把检查点存成其中的 csnn-mnist-sample-quick.pt（pytest 打开了快速模式）
    _, stdout = _train(tmp_path, "ddp", "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                       out_arg=f"{tmp_path}/ddp/")
    out = tmp_path / "ddp" / "csnn-mnist-sample-quick.pt"
    assert [p.name for p in out.parent.iterdir()] == [out.name]      # 只有 0 号进程保存，没有残留的临时文件
    assert "2 个进程（DistributedDataParallel）" in stdout
    assert "2 个进程的参数逐位一致：是" in stdout
    assert stdout.count("最终测试准确率") == 1          # 只有 0 号进程打印
    printed = float(stdout.strip().splitlines()[-1].split("：")[1].rstrip("%"))
    model, ckpt = load_checkpoint(out)                  # 单进程加载
    assert ckpt["run"]["world_size"] == 2
    _, acc = evaluate(model, data.tensor_batches("mnist-sample", False, batch_size=256))
    assert f"{acc:.2%}" == f"{printed:.2f}%"          # 汇总后的多进程评估 = 单进程评估


def test_single_process_cli_matches_plain_fit(tmp_path):
    """命令行在单进程下的结果与直接调用 fit 逐位相同：多进程的改动没有影响单进程。"""
    out, _ = _train(tmp_path, "single")
    cli_model, _ = load_checkpoint(out)
    runtime.set_cpu_threads()
    runtime.seed_everything(0)
    model = build_model("csnn")
    recipe = RECIPES["csnn"].replace(batch_size=64)
    train = recipe.train_batches(*data.load_raw("mnist-sample", train=True), seed=0, dataset="mnist-sample")
    test = data.tensor_batches("mnist-sample", False, batch_size=256)
    recipe.fit(model, train, test, epochs=1, progress=False)
    for (k, a), b in zip(model.state_dict().items(), cli_model.state_dict().values()):
        assert torch.equal(a, b), k
