"""坏输入不会浪费一次训练（issue 11）：每一种坏输入都得到一段指明问题的中文说明、正确的退出码，没有调用栈。

主体是一张表（CASES）：每行是一次命令行调用，在本进程里直接调用 main(argv)（用 capsys 截获输出），
断言退出码、没有 Traceback、输出里有指明问题的中文片段；--out 类的情况还断言训练根本没有开始。
root 账户不受文件权限限制，所以“没有权限”“只读”用 monkeypatch 在系统调用处模拟；
/proc、/sys 对 root 也是真的写不进去。只有真实的信号（Ctrl+C、SIGTERM）和 torchrun 才用子进程。
"""

from __future__ import annotations

import builtins
import errno
import gzip
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from snn_tutorial import bench, cli, data, evaluate as evaluate_cli, runtime, train as train_cli
from snn_tutorial import checkpoint
from snn_tutorial.checkpoint import FORMAT, SHIPPED, CheckpointError, load_checkpoint, save_checkpoint
from snn_tutorial.models import CSNN, build_model
from snn_tutorial.training import History, evaluate, fit

REPO = Path(__file__).resolve().parents[1]
TINY = ["--dataset", "mnist-sample", "--epochs", "1", "--channels", "2", "2", "--hidden", "8", "--no-progress"]
CLIS = {"train": train_cli.main, "evaluate": evaluate_cli.main, "bench": bench.main, "data": data._main}
CJK = re.compile(r"[\u4e00-\u9fff]")


# ---------------------------------------------------------------- 造出坏环境的小工具
def fake_mnist(root: Path, *, gz: bool = False, label: int = 0, header: dict | None = None, plain: bool = False) -> Path:
    """在 root/MNIST/raw（plain=True 时直接在 root）写出四个大小正确的假 MNIST 文件（合法文件头 + 全零，稀疏文件，很快）。

    gz=True 时只写 .gz；label 为测试集的全部标签；header={文件名: 开头的字节} 用来写坏文件头。
    """
    raw = root if plain else root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, size in data.ALL_FILES:
        head = (header or {}).get(name, data._expected_header(name))
        if gz:
            body = head + bytes(size - len(head))
            (raw / f"{name}.gz").write_bytes(gzip.compress(body, compresslevel=1))
            continue
        with open(raw / name, "wb") as f:
            f.write(head)
            if label and name == "t10k-labels-idx1-ubyte":
                f.write(bytes([label]) * (size - len(head)))
            f.truncate(size)
    return raw


def tiny_checkpoint(path: Path, **changes) -> Path:
    """一个很小的 csnn 检查点；changes 里的键覆盖（值为 None 时删掉）检查点字典里的对应项。"""
    model = CSNN(channels=(2, 2), hidden=8)
    payload = {"format": FORMAT, "model": "csnn", "config": model.config,
               "state_dict": model.state_dict(), "metrics": {"dataset": "mnist-sample"}}
    for key, value in changes.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(payload, path)
    return path


def deny_open(mp, target: Path) -> None:
    """模拟“文件没有读取权限”：打开 target 时抛出 PermissionError。"""
    real_open = builtins.open

    def fake(file, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)) and Path(file) == target:
            raise PermissionError(errno.EACCES, "Permission denied", str(target))
        return real_open(file, *args, **kwargs)

    mp.setattr(builtins, "open", fake)


def deny_folder(mp, folder: Path) -> None:
    """模拟“目录没有读取/进入权限”：stat 其中的任何东西都抛出 PermissionError，os.access 也说不行。"""
    real_stat, real_access = os.stat, os.access

    def fake_stat(p, *args, **kwargs):
        if not isinstance(p, int) and Path(p).parent == folder:
            raise PermissionError(errno.EACCES, "Permission denied", os.fspath(p))
        return real_stat(p, *args, **kwargs)

    mp.setattr(os, "stat", fake_stat)
    mp.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder else real_access(p, mode, **kw))


def refuse_writes(mp, folder: Path, code: int) -> None:
    """模拟 folder 下不能新建任何东西（只读文件系统、没有写权限……）：mkdir 与 open(O_CREAT) 抛出 OSError(code)。"""
    real_mkdir, real_open = os.mkdir, os.open

    def inside(p) -> bool:
        p = Path(p)
        return p == folder or folder in p.parents

    def fake_mkdir(p, *args, **kwargs):
        if inside(p):
            raise OSError(code, os.strerror(code), os.fspath(p))
        return real_mkdir(p, *args, **kwargs)

    def fake_open(p, flags, *args, **kwargs):
        if flags & os.O_CREAT and inside(p):
            raise OSError(code, os.strerror(code), os.fspath(p))
        return real_open(p, flags, *args, **kwargs)

    mp.setattr(os, "mkdir", fake_mkdir)
    mp.setattr(os, "open", fake_open)


def fake_fit(net, train, test, *, epochs, on_eval=None, **kwargs):
    """代替真实训练：立刻“评估”一次并返回，用来测试训练之后的保存逻辑（快）。"""
    h = History(epoch=[1.0], train_loss=[0.1], train_acc=[0.5], test_loss=[0.1], test_acc=[0.5], lr=[0.0], seconds=[0.1])
    if on_eval is not None:
        on_eval(h)
    return h


def interrupted_fit(net, train, test, *, on_eval=None, **kwargs):
    raise KeyboardInterrupt


# ---------------------------------------------------------------- 表
@dataclass
class Case:
    id: str
    cli: str
    argv: list[str]
    code: int
    expect: list[str]                                    # 输出里必须有的片段（"{tmp}" 换成临时目录）
    setup: Callable | None = None                        # setup(tmp_path, monkeypatch)
    absent: list[str] = field(default_factory=list)      # 输出里不许有的片段
    before_training: bool = False                        # 断言训练根本没有开始
    check: Callable | None = None                        # check(tmp_path)：额外的断言


def _file(name: str):
    return lambda tmp, mp: (tmp / name).write_text("x")


def _patch(obj, attr, value):
    return lambda tmp, mp: mp.setattr(obj, attr, value)


def _no_cuda(tmp, mp):
    mp.setattr(torch.cuda, "is_available", lambda: False)


def _save_fails(tmp, mp):
    """最终保存时磁盘满了：写 --out 失败，另存到（测试用的）系统临时目录。"""
    real = train_cli.save_checkpoint
    target = tmp / "out" / "m.pt"

    def fake(path, *args, **kwargs):
        if Path(path) == target:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    mp.setattr(train_cli, "save_checkpoint", fake)
    mp.setattr(train_cli, "fit", fake_fit)
    (tmp / "fallback").mkdir()
    mp.setattr(tempfile, "tempdir", str(tmp / "fallback"))


def _check_fallback(tmp):
    saved = list((tmp / "fallback").glob("snn_tutorial-m-*.pt"))
    assert len(saved) == 1 and not (tmp / "out" / "m.pt").exists()
    load_checkpoint(saved[0])


def _interrupt_during_save(tmp, mp):
    def fake(*args, **kwargs):
        raise KeyboardInterrupt

    mp.setattr(train_cli, "fit", fake_fit)
    mp.setattr(train_cli, "save_checkpoint", fake)


def _nan_training(tmp, mp):
    def diverged(net, train, test, **kwargs):
        with torch.no_grad():
            next(net.parameters()).fill_(float("nan"))
        return fake_fit(net, train, test, **kwargs)

    mp.setattr(train_cli, "fit", diverged)
    tiny_checkpoint(tmp / "good.pt")


def _unreadable_raw(tmp, mp):
    fake_mnist(tmp)
    deny_folder(mp, tmp / "MNIST" / "raw")


def _unreadable_file(tmp, mp):
    fake_mnist(tmp)
    deny_open(mp, tmp / "MNIST" / "raw" / "t10k-images-idx3-ubyte")


OUT_NOT_STARTED = ["训练还没有开始"]
CASES = [
    # 1. --out / --log-dir：训练之前就发现，或者结果不丢
    Case("out-existing-dir", "train", [*TINY, "--out", "{tmp}"], 0, ["检查点已保存到 {tmp}/csnn-mnist-sample.pt"],
         setup=_patch(train_cli, "fit", fake_fit), check=lambda tmp: load_checkpoint(tmp / "csnn-mnist-sample.pt")),
    Case("out-trailing-slash", "train", [*TINY, "--out", "{tmp}/new/"], 0, ["检查点已保存到 {tmp}/new/csnn-mnist-sample.pt"],
         setup=_patch(train_cli, "fit", fake_fit)),
    Case("out-proc", "train", [*TINY, "--out", "/proc/x.pt"], 2, ["--out /proc/x.pt", "不允许新建文件", *OUT_NOT_STARTED],
         before_training=True),
    Case("out-sys-unwritable", "train", [*TINY, "--out", "/sys/x.pt"], 2, ["--out /sys/x.pt", "没有写权限", *OUT_NOT_STARTED],
         before_training=True),
    Case("out-parent-is-file", "train", [*TINY, "--out", "{tmp}/file.txt/x.pt"], 2, ["{tmp}/file.txt 是一个文件，不是目录"],
         setup=_file("file.txt"), before_training=True),
    Case("out-readonly-fs", "train", [*TINY, "--out", "{tmp}/ro/x.pt"], 2, ["{tmp}/ro", "只读", *OUT_NOT_STARTED],
         setup=lambda tmp, mp: refuse_writes(mp, tmp / "ro", errno.EROFS), before_training=True),
    Case("out-no-permission", "train", [*TINY, "--out", "{tmp}/locked/x.pt"], 2, ["{tmp}/locked", "没有写权限", *OUT_NOT_STARTED],
         setup=lambda tmp, mp: refuse_writes(mp, tmp / "locked", errno.EACCES), before_training=True),
    Case("out-disk-full", "train", [*TINY, "--out", "{tmp}/x.pt"], 2, ["磁盘空间不足", *OUT_NOT_STARTED],
         setup=_patch(shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10**9, 10**9, 1000)), before_training=True),
    Case("out-name-is-dir", "train", [*TINY, "--out", "{tmp}/d"], 2, ["是一个已存在的目录"],
         setup=lambda tmp, mp: (tmp / "d" / "csnn-mnist-sample.pt").mkdir(parents=True), before_training=True),
    Case("out-empty", "train", [*TINY, "--out", ""], 2, ["--out 不能是空字符串"], before_training=True),
    Case("log-dir-is-file", "train", [*TINY, "--out", "{tmp}/x.pt", "--log-dir", "{tmp}/file.txt"], 2,
         ["--log-dir {tmp}/file.txt 是一个文件"], setup=_file("file.txt"), before_training=True),
    Case("log-dir-unwritable", "train", [*TINY, "--out", "{tmp}/x.pt", "--log-dir", "/sys/runs"], 2,
         ["--log-dir /sys/runs", "不能用"], before_training=True),
    Case("save-fails-late", "train", [*TINY, "--out", "{tmp}/out/m.pt"], 1, ["磁盘已满", "已另存到 {tmp}/fallback/snn_tutorial-m-"],
         setup=_save_fails, check=_check_fallback),
    Case("diverged-not-saved", "train", [*TINY, "--out", "{tmp}/good.pt"], 1, ["NaN", "{tmp}/good.pt 保持原样", "--lr"],
         setup=_nan_training, check=lambda tmp: load_checkpoint(tmp / "good.pt")),
    # 2. 0 不再悄悄当作默认值
    Case("epochs-0", "train", [*TINY, "--epochs", "0"], 2, ["--epochs", "≥ 1"]),
    Case("batch-size-0", "train", [*TINY, "--batch-size", "0"], 2, ["--batch-size", "≥ 2"]),
    Case("lr-0", "train", [*TINY, "--lr", "0"], 2, ["--lr", "正数"]),
    Case("threads-0", "train", [*TINY, "--threads", "0"], 2, ["--threads", "≥ 1"]),
    Case("val-negative", "train", [*TINY, "--val", "-5"], 2, ["--val", "'-5'"]),
    Case("val-too-large", "train", [*TINY, "--out", "{tmp}/v.pt", "--val", "999999"], 2,
         ["--val", "训练集只有 800 个", "训练还没有开始"], check=lambda tmp: not (tmp / "v.pt").exists()),
    Case("evaluate-threads-0", "evaluate", ["--threads", "0"], 2, ["--threads", "≥ 1"]),
    Case("bench-steps-0", "bench", ["--steps", "0"], 2, ["--steps", "≥ 1"]),
    # 3. 参数校验
    Case("epochs-negative", "train", [*TINY, "--epochs", "-1"], 2, ["--epochs", "'-1'"]),
    Case("epochs-not-int", "train", [*TINY, "--epochs", "abc"], 2, ["--epochs", "应为整数"]),
    Case("evals-per-epoch-0", "train", [*TINY, "--evals-per-epoch", "0"], 2, ["--evals-per-epoch", "≥ 1"]),
    Case("evals-per-epoch-negative", "train", [*TINY, "--evals-per-epoch", "-1"], 2, ["--evals-per-epoch", "≥ 1"]),
    Case("batch-size-negative", "train", [*TINY, "--batch-size", "-5"], 2, ["--batch-size", "'-5'"]),
    Case("batch-size-1", "train", [*TINY, "--batch-size", "1"], 2, ["--batch-size", "BN"]),
    Case("T-0", "train", [*TINY, "--T", "0"], 2, ["--T", "≥ 1"]),
    Case("T-negative", "train", [*TINY, "--T", "-2"], 2, ["--T", "'-2'"]),
    Case("T-minus-1", "train", [*TINY, "--T", "-1"], 2, ["--T", "'-1'"]),
    Case("original-T-0", "train", [*TINY, "--model", "original", "--T", "0"], 2, ["--T", "≥ 1"]),
    Case("pool-for-csnn", "train", [*TINY, "--pool", "avg"], 2, ["--pool 只用于 --model ann"]),
    Case("pool-unknown", "train", [*TINY, "--model", "ann", "--pool", "sum"], 2, ["--pool"]),
    Case("lr-nan", "train", [*TINY, "--lr", "nan"], 2, ["--lr", "有限的正数"]),
    Case("lr-inf", "train", [*TINY, "--lr", "inf"], 2, ["--lr", "有限的正数"]),
    Case("lr-negative", "train", [*TINY, "--lr", "-0.1"], 2, ["--lr", "'-0.1'"]),
    Case("channels-0", "train", [*TINY, "--channels", "0", "0"], 2, ["--channels", "≥ 1"]),
    Case("channels-one-value", "train", [*TINY, "--channels", "4"], 2, ["--channels", "需要 2 个值"]),
    Case("hidden-0", "train", [*TINY, "--hidden", "0"], 2, ["--hidden", "≥ 1"]),
    Case("max-shift-negative", "train", [*TINY, "--max-shift", "-3"], 2, ["--max-shift", "0 到 8"]),
    Case("max-shift-100", "train", [*TINY, "--max-shift", "100"], 2, ["--max-shift", "移出画面"]),
    Case("max-rotate-90", "train", [*TINY, "--max-rotate", "90"], 2, ["--max-rotate", "0 到 45", "分不清"]),
    Case("max-rotate-word", "train", [*TINY, "--max-rotate", "ten"], 2, ["--max-rotate", "应为数字"]),
    Case("max-scale-nan", "train", [*TINY, "--max-scale", "nan"], 2, ["--max-scale", "0 到 0.5"]),
    Case("max-scale-negative", "train", [*TINY, "--max-scale", "-0.1"], 2, ["--max-scale"]),
    Case("val-too-many", "train", [*TINY, "--val", "799"], 2, ["错误：参数 --val：验证集 799 个样本太多"], absent=["错误：错误："],
         before_training=True),
    Case("val-fewer-than-processes", "train", [*TINY, "--val", "1"], 2, ["--val 1 比进程数 2 还少"], before_training=True,
         setup=lambda tmp, mp: mp.setenv("WORLD_SIZE", "2")),
    Case("val-split-without-val", "train", [*TINY, "--val-split", "tail"], 2, ["--val-split 须与 --val 一起用"]),
    Case("val-split-unknown", "train", [*TINY, "--val", "100", "--val-split", "writer"], 2, ["--val-split", "'writer' 无效", "tail"]),
    Case("seed-negative", "train", [*TINY, "--seed", "-1"], 2, ["--seed", "0 到 4294967295"]),
    Case("seed-too-big", "train", [*TINY, "--seed", str(2**32)], 2, ["--seed"]),
    Case("model-unknown", "train", ["--model", "resnet"], 2, ["--model", "'resnet' 无效", "csnn"]),
    Case("unknown-argument", "train", ["--epoch", "3", "--bogus"], 2, ["无法识别的参数", "--bogus"]),
    Case("device-cpu-abc", "train", [*TINY, "--device", "cpu:abc"], 2, ["--device", "无法识别的设备 'cpu:abc'"]),
    Case("device-nonsense", "train", [*TINY, "--device", "tpu"], 2, ["无法识别的设备 'tpu'"]),
    Case("device-cuda-abc", "train", [*TINY, "--device", "cuda:abc"], 2, ["无法识别的设备"]),
    Case("device-mps", "train", [*TINY, "--device", "mps"], 2, ["MPS", "SpikingJelly 2.0", "CPU 和 CUDA", "--device cpu"]),
    Case("device-cuda-without-gpu", "train", [*TINY, "--device", "cuda"], 2, ["CUDA", "nvidia-smi"], setup=_no_cuda),
    Case("device-cuda-index-too-big", "train", [*TINY, "--device", "cuda:7"], 2, ["cuda:7"],
         setup=lambda tmp, mp: (mp.setattr(torch.cuda, "is_available", lambda: True), mp.setattr(torch.cuda, "device_count", lambda: 1))),
    Case("evaluate-device-mps", "evaluate", ["--device", "mps"], 2, ["SpikingJelly 2.0", "--device cpu"]),
    Case("evaluate-limit-0", "evaluate", ["--limit", "0"], 2, ["--limit", "≥ 1"]),
    Case("evaluate-limit-negative", "evaluate", ["--limit", "-1"], 2, ["--limit", "'-1'"]),
    Case("evaluate-batch-size-0", "evaluate", ["--batch-size", "0"], 2, ["--batch-size", "≥ 1"]),
    Case("evaluate-batch-size-negative", "evaluate", ["--batch-size", "-1"], 2, ["--batch-size", "'-1'"]),
    Case("evaluate-dataset-unknown", "evaluate", ["--dataset", "cifar10"], 2, ["--dataset", "'cifar10' 无效"]),
    # 4. 只有 1 张图的最后一批不会让 BN 出错（800 = 799 + 1：那 1 张并入前一批）
    Case("ann-batch-799", "train", ["--model", "ann", *TINY, "--batch-size", "799", "--out", "{tmp}/ann.pt"], 0,
         ["最终测试准确率", "检查点已保存到"]),
    # 5. 数据层
    Case("data-dir-missing", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}/nowhere"], 2, ["数据目录不存在", "{tmp}/nowhere"]),
    Case("data-four-files-in-plain-folder", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}/plain"], 2,
         ["直接放在了 {tmp}/plain 里", "mkdir -p {tmp}/plain/MNIST/raw", "数据目录仍设为 {tmp}/plain"],
         setup=lambda tmp, mp: fake_mnist(tmp / "plain", plain=True), absent=["太深"]),
    Case("data-raw-without-mnist-folder", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}/d"], 2,
         ["{tmp}/d/raw", "{tmp}/d/MNIST/raw", "数据目录仍设为 {tmp}/d"],
         setup=lambda tmp, mp: fake_mnist(tmp / "d" / "raw", plain=True), absent=["太深"]),
    Case("data-too-deep", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}/MNIST/raw"], 2, ["太深", "请把数据目录设为 {tmp}（"],
         setup=lambda tmp, mp: fake_mnist(tmp)),
    Case("data-unreadable-file", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["没有权限读取文件 {tmp}/MNIST/raw/t10k-images-idx3-ubyte", "不必重新下载", "chmod"],
         setup=_unreadable_file, absent=["删除", "损坏"]),
    Case("data-unreadable-raw-dir", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["没有权限读取目录 {tmp}/MNIST/raw", "chmod"], setup=_unreadable_raw, absent=["删除"]),
    Case("data-readonly-dir", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}/ro"], 2,
         ["只读", "与网络无关", "{tmp}/ro/MNIST/raw"],
         setup=lambda tmp, mp: ((tmp / "ro").mkdir(), refuse_writes(mp, tmp / "ro", errno.EROFS)), absent=["没有网络"]),
    Case("data-gz-self-made", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}", "--limit", "10"], 0,
         ["测试准确率", "mnist 测试集 10 张"], setup=lambda tmp, mp: fake_mnist(tmp, gz=True)),
    Case("data-gz-wrong-content", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/t10k-labels-idx1-ubyte.gz", "不是 mnist 的官方压缩包"],
         setup=lambda tmp, mp: (fake_mnist(tmp, gz=True),
                                (tmp / "MNIST/raw/t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"short")))),
    Case("data-gz-not-gzip", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/train-images-idx3-ubyte.gz", "不是有效的 gzip 文件"],
         setup=lambda tmp, mp: (fake_mnist(tmp, gz=True),
                                (tmp / "MNIST/raw/train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all"))),
    Case("data-wrong-magic", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/t10k-labels-idx1-ubyte", "文件头不对", "00 00 08 01"],
         setup=lambda tmp, mp: fake_mnist(tmp, header={"t10k-labels-idx1-ubyte": b"garbage!"}), absent=["（）"]),
    Case("data-labels-above-9", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/t10k-labels-idx1-ubyte", "超出 0–9", "值为 12"], setup=lambda tmp, mp: fake_mnist(tmp, label=12)),
    Case("data-truncated", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/t10k-images-idx3-ubyte", "7840016"],
         setup=lambda tmp, mp: (fake_mnist(tmp), os.truncate(tmp / "MNIST/raw/t10k-images-idx3-ubyte", 100))),
    # 6. 检查点
    Case("ckpt-missing", "evaluate", ["--checkpoint", "{tmp}/none.pt"], 2, ["检查点文件不存在", "{tmp}/none.pt"]),
    Case("ckpt-is-dir", "evaluate", ["--checkpoint", "{tmp}"], 2, ["是一个目录"]),
    Case("ckpt-permission", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["没有读取权限", "{tmp}/c.pt", "文件本身可能完好"],
         setup=lambda tmp, mp: (tiny_checkpoint(tmp / "c.pt"), deny_open(mp, tmp / "c.pt")), absent=["损坏", "重新训练"]),
    Case("ckpt-whole-model", "evaluate", ["--checkpoint", "{tmp}/whole.pt"], 2, ["不是纯数据", "torch.nn.modules.linear.Linear", "state_dict"],
         setup=lambda tmp, mp: torch.save(torch.nn.Linear(2, 2), tmp / "whole.pt"),
         absent=["weights_only=False", "weights_only set to False", "Re-running"]),
    Case("ckpt-no-state-dict", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["格式标记", "'state_dict'"],
         setup=lambda tmp, mp: tiny_checkpoint(tmp / "c.pt", state_dict=None)),
    Case("ckpt-no-metrics", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["'metrics'"],
         setup=lambda tmp, mp: tiny_checkpoint(tmp / "c.pt", metrics=None)),
    Case("ckpt-unknown-dataset", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["'cifar'", "--dataset"],
         setup=lambda tmp, mp: tiny_checkpoint(tmp / "c.pt", metrics={"dataset": "cifar"})),
    Case("ckpt-unknown-dataset-with-option", "evaluate", ["--checkpoint", "{tmp}/c.pt", "--dataset", "mnist-sample"], 0,
         ["检查点是在 cifar 上训练的", "mnist-sample 测试集 200 张"],
         setup=lambda tmp, mp: tiny_checkpoint(tmp / "c.pt", metrics={"dataset": "cifar"})),
    Case("ckpt-T-0", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["T 须为 ≥ 1 的整数"],
         setup=lambda tmp, mp: tiny_checkpoint(tmp / "c.pt", config={"channels": [2, 2], "hidden": 8, "T": 0})),
    Case("ckpt-sample-ignores-data-dir", "evaluate", ["--checkpoint", "{tmp}/c.pt", "--data-dir", "{tmp}"], 0,
         ["没有用到 --data-dir", "--dataset mnist", "mnist-sample 测试集 200 张"], setup=lambda tmp, mp: tiny_checkpoint(tmp / "c.pt")),
    Case("ckpt-evaluated-on-other-dataset", "evaluate", ["--dataset", "mnist-sample", "--limit", "20"], 0,
         ["检查点是在 mnist 上训练的", "mnist-sample 测试集 20 张"]),
    # 7. bench 与 data 的命令行
    Case("bench-data-dir-missing", "bench", ["--data-dir", "{tmp}/nowhere", "--steps", "1", "--skip-accuracy"], 2, ["数据目录不存在"]),
    Case("bench-epoch-device-cuda-without-gpu", "bench", ["--epoch-device", "cuda"], 2, ["CUDA", "--device cpu"], setup=_no_cuda),
    Case("bench-epoch-device-mps", "bench", ["--epoch-device", "mps"], 2, ["SpikingJelly 2.0"]),
    Case("bench-steps-negative", "bench", ["--steps", "-1"], 2, ["--steps", "≥ 1"]),
    Case("bench-compile-alone", "bench", ["--compile"], 2, ["--compile", "--epoch-device"]),
    Case("data-cli-missing-dir", "data", ["--build-sample", "--data-dir", "{tmp}/nowhere"], 2, ["数据目录不存在", "{tmp}/nowhere"]),
    Case("data-cli-missing-env-dir", "data", ["--build-sample"], 2, ["数据目录不存在", "SNN_DATA_DIR"],
         setup=lambda tmp, mp: mp.setenv("SNN_DATA_DIR", str(tmp / "gone"))),
    # 8. 中断（不用真信号的部分；真信号见下面的子进程测试）
    Case("ctrl-c-before-first-eval", "train", [*TINY, "--out", "{tmp}/m.pt"], 130, ["已中断（Ctrl+C）", "没有保存任何文件", "没有写入 {tmp}/m.pt"],
         setup=_patch(train_cli, "fit", interrupted_fit), check=lambda tmp: not list(tmp.iterdir())),
    Case("ctrl-c-during-final-save", "train", [*TINY, "--out", "{tmp}/m.pt"], 130, ["已中断（Ctrl+C）", "保存被打断"],
         setup=_interrupt_during_save),
    Case("ctrl-c-while-loading-data", "evaluate", ["--limit", "5"], 130, ["已中断（Ctrl+C）"],
         setup=_patch(data, "tensor_batches", interrupted_fit)),
]


def _run_case(case: Case, tmp_path: Path, monkeypatch, capsys):
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv]
    capsys.readouterr()
    try:
        CLIS[case.cli](argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # 万一有东西写到当前目录，也只写进临时目录
    code, out, err = _run_case(case, tmp_path, monkeypatch, capsys)
    text = out + err
    assert code == case.code, text
    assert "Traceback" not in text
    if case.code != 0:
        first = err.strip().splitlines()[0] if err.strip() else ""
        assert CJK.search(first), f"第一行不是中文说明：{first!r}"
        assert first.startswith(("错误：", "已中断")), first
    for piece in case.expect:
        assert piece.replace("{tmp}", str(tmp_path)) in text, f"缺少 {piece!r}：\n{text}"
    for piece in case.absent:
        assert piece.replace("{tmp}", str(tmp_path)) not in text, f"不应出现 {piece!r}：\n{text}"
    if case.before_training:
        assert "检查点将保存到" not in text and "第 " not in text and "模型 " not in text, text
    if case.check is not None:
        assert case.check(tmp_path) is not False


# ---------------------------------------------------------------- 库函数的误用（第 9 节）与设备（issue 10）
def _sample_batches():
    x, y = data.load_sample()
    return x, y


LIBRARY_CASES = [
    ("load_raw-train-no", lambda: data.load_raw("mnist-sample", train="no"), TypeError, ["train", "True 或 False", "'no'"]),
    ("load_raw-dataset-not-str", lambda: data.load_raw(3), TypeError, ["数据集名"]),
    ("evaluate-empty", lambda: evaluate(CSNN(channels=(2, 2), hidden=8), []), ValueError, ["没有可评估的样本"]),
    ("batches-size-0", lambda: data.TensorBatches(*_sample_batches(), batch_size=0), ValueError, ["batch_size", "≥ 1"]),
    ("batches-negative-shift", lambda: data.TensorBatches(*_sample_batches(), max_shift=-1), ValueError, ["max_shift"]),
    ("batches-seed-negative", lambda: data.TensorBatches(*_sample_batches(), seed=-1), ValueError, ["seed", "0 到 4294967295"]),
    ("batches-rotate-200", lambda: data.TensorBatches(*_sample_batches(), max_rotate=200), ValueError, ["max_rotate", "0 到 180"]),
    ("tensor_batches-limit-0", lambda: data.tensor_batches("mnist-sample", False, limit=0), ValueError, ["limit"]),
    ("fit-epochs-0", lambda: fit(CSNN(channels=(2, 2), hidden=8), [], [], epochs=0), ValueError, ["epochs", "≥ 1"]),
    ("fit-lr-inf", lambda: fit(CSNN(channels=(2, 2), hidden=8), [], [], lr=float("inf")), ValueError, ["有限的正数"]),
    ("seed-negative", lambda: runtime.seed_everything(-1), ValueError, ["随机种子"]),
    ("threads-0", lambda: runtime.set_cpu_threads(0), ValueError, ["线程数"]),
    ("model-T-0", lambda: build_model("csnn", T=0), ValueError, ["T 须为 ≥ 1"]),
    ("model-tau-1", lambda: build_model("original", tau=1.0), ValueError, ["tau"]),
    ("select-device-mps", lambda: runtime.select_device("mps"), runtime.DeviceError, ["SpikingJelly 2.0", "--device cpu", "Unsupported neuron device mps"]),
    ("select-device-cpu-abc", lambda: runtime.select_device("cpu:abc"), runtime.DeviceError, ["无法识别的设备"]),
]


@pytest.mark.parametrize("make, error, pieces", [c[1:] for c in LIBRARY_CASES], ids=[c[0] for c in LIBRARY_CASES])
def test_library_misuse(make, error, pieces):
    with pytest.raises(error) as info:
        make()
    for piece in pieces:
        assert piece in str(info.value)
    assert CJK.search(str(info.value))


def test_auto_device_never_picks_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "_mps_available", lambda: True)
    assert runtime.select_device("auto").type == "cpu"
    assert runtime.select_device().type == "cpu"


def test_checkpoint_on_unavailable_device_is_not_called_corrupt(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(runtime.DeviceError) as info:
        load_checkpoint(SHIPPED, "cuda")
    assert "损坏" not in str(info.value) and "CUDA" in str(info.value)


def test_dataloader_on_bundled_sample():
    loader = data.dataloader("mnist-sample", train=False, batch_size=50)
    x, y = next(iter(loader))
    assert x.shape == (50, 1, 28, 28) and x.dtype == torch.float32 and len(loader.dataset) == 200
    fast_x, fast_y = next(iter(data.tensor_batches("mnist-sample", False, batch_size=50)))
    assert torch.allclose(x, fast_x, atol=1e-6) and torch.equal(y, fast_y)
    train = data.dataloader("mnist-sample", train=True, batch_size=799)   # 800 = 799 + 1：那 1 张被丢掉
    assert [len(b[1]) for b in train] == [799]


def test_single_image_last_batch_is_merged():
    x, y = data.load_sample()
    batches = data.TensorBatches(x[:129], y[:129], batch_size=64, shuffle=False)
    sizes = [len(b) for _, b in batches]
    assert sizes == [64, 65] and len(batches) == 2                     # 每张图都用到，没有 1 张的批
    assert torch.equal(torch.cat([b for _, b in batches]), y[:129])
    parts = [data.TensorBatches(x[:257], y[:257], 64, rank=r, world_size=2) for r in range(2)]
    assert [len(p) for p in parts] == [2, 2] and all(len(b) > 1 for p in parts for _, b in p)
    assert [len(b) for _, b in data.TensorBatches(x[:5], y[:5], batch_size=1)] == [1] * 5   # 批大小 1：照原样


def test_out_directory_convention(tmp_path):
    assert cli.resolve_out(tmp_path, "csnn.pt") == tmp_path / "csnn.pt"
    assert cli.resolve_out(f"{tmp_path}/new/", "csnn.pt") == tmp_path / "new" / "csnn.pt"
    assert cli.resolve_out(tmp_path / "x.pt", "csnn.pt") == tmp_path / "x.pt"
    assert "目录" in train_cli.build_parser().format_help()


# ---------------------------------------------------------------- 保存：中断、临时文件
class _BreaksAfter:
    """写到第 n 次时抛出 KeyboardInterrupt 的文件（模拟在 torch.save 中途按下 Ctrl+C）。"""

    def __init__(self, f, n):
        self.f, self.n = f, n

    def write(self, b):
        self.n -= 1
        if self.n == 0:
            raise KeyboardInterrupt
        return self.f.write(b)

    def __getattr__(self, name):
        return getattr(self.f, name)


def test_ctrl_c_inside_torch_save_keeps_old_file(tmp_path, monkeypatch):
    model = CSNN(channels=(2, 2), hidden=8)
    path = save_checkpoint(tmp_path / "m.pt", model, "csnn")
    before = path.read_bytes()
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, f: real_save(obj, _BreaksAfter(f, 3)))
    with pytest.raises(KeyboardInterrupt):          # 不是 “enforce fail at inline_container.cc”
        save_checkpoint(path, model, "csnn")
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_stale_temp_files_are_removed_on_next_save(tmp_path):
    old = time.time() - 3600
    stale = [tmp_path / ".m.pt.ab12cd_9.tmp", tmp_path / ".other.pt.zzzzzzzz.tmp"]
    stale[0].write_bytes(b"PK\x03\x04" + bytes(100))
    stale[1].write_bytes(b"")
    keep = {
        ".m.pt.fresh123.tmp": b"PK\x03\x04",         # 比本进程新：可能是另一个正在保存的进程
        ".notes.txt.abcdefgh.tmp": b"hello",         # 名字像，内容不是 torch.save 写的
        "m.pt.abcdefgh.tmp": b"PK\x03\x04",          # 不是隐藏文件：不是我们起的名字
        ".m.pt.abc.tmp": b"PK\x03\x04",              # 随机部分不是 8 个字符
    }
    for name, content in keep.items():
        (tmp_path / name).write_bytes(content)
        if name != ".m.pt.fresh123.tmp":
            os.utime(tmp_path / name, (old, old))
    for p in stale:
        os.utime(p, (old, old))
    save_checkpoint(tmp_path / "m.pt", CSNN(channels=(2, 2), hidden=8), "csnn")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*keep, "m.pt"])


# ---------------------------------------------------------------- 真实的信号与 torchrun（子进程）
def _spawn(*args, **kwargs):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=REPO, env=env, **kwargs)


def _wait_for_line(proc, marker: str, timeout: float = 120) -> list[str]:
    lines, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return lines
    proc.kill()
    raise AssertionError("子进程没有打印 " + marker + "：\n" + "".join(lines) + proc.stderr.read())


def test_real_ctrl_c_saves_last_evaluation(tmp_path):
    out = tmp_path / "m.pt"
    proc = _spawn("-m", "snn_tutorial.train", *TINY, "--epochs", "50", "--evals-per-epoch", "13", "--out", str(out))
    _wait_for_line(proc, "第 ")                              # 第一次评估已完成
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stdout + stderr
    last = stderr.strip().splitlines()[-1]
    partial = tmp_path / "m.interrupted.pt"
    assert last.startswith("已中断（Ctrl+C）：第 ") and f"已保存到 {partial}" in last and f"没有写入 {out}" in last, stderr
    _, ckpt = load_checkpoint(partial)
    assert ckpt["metrics"]["interrupted"] is True and not out.exists()


SLOW_SAVE = """
import sys, time, torch
from snn_tutorial import cli
from snn_tutorial.checkpoint import save_checkpoint
from snn_tutorial.models import CSNN

def slow(obj, f):
    f.write(b"PK\\x03\\x04" + bytes(1000)); f.flush()
    print("正在保存", flush=True)
    time.sleep(60)

torch.save = slow

@cli.command()
def main(argv):
    save_checkpoint(sys.argv[1], CSNN(channels=(2, 2), hidden=8), "csnn")

main(None)
"""


def test_sigterm_during_save_removes_temp_file(tmp_path):
    proc = _spawn("-c", SLOW_SAVE, str(tmp_path / "m.pt"))
    _wait_for_line(proc, "正在保存")
    assert len(list(tmp_path.glob(".m.pt.*.tmp"))) == 1
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143 and "收到 SIGTERM" in stderr and "Traceback" not in stderr, stderr
    assert list(tmp_path.iterdir()) == []


def test_torchrun_bad_out_fails_before_training(tmp_path):
    res = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                          "-m", "snn_tutorial.train", *TINY, "--out", "/sys/x.pt"],
                         capture_output=True, text=True, timeout=300, cwd=REPO)
    assert res.returncode != 0
    assert "错误：--out /sys/x.pt 不能用" in res.stderr and "训练还没有开始" in res.stderr
    assert "第 " not in res.stdout and "检查点将保存到" not in res.stdout
    # torchrun 自己会打印 ChildFailedError 的调用栈；我们的进程不应有
    assert not re.search(r'File ".*snn_tutorial', res.stderr), res.stderr
