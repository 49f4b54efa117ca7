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
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch
from torchvision import datasets

from snn_tutorial import bench, cli, data, evaluate as evaluate_cli, export as export_cli, quick, runtime, train as train_cli
from snn_tutorial import checkpoint, data_cli, raw_checks, raw_files, sample, train_save, training
from snn_tutorial.checkpoint import FORMAT, SHIPPED, CheckpointError, load_checkpoint, save_checkpoint
from snn_tutorial.models import CSNN, build_model
from snn_tutorial.training import History, evaluate, fit

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SNN_DATA_DIR") or REPO.parent / "shared" / "data")   # 完整的 MNIST（只读），没有时相关测试跳过
TINY = ["--dataset", "mnist-sample", "--epochs", "1", "--channels", "2", "2", "--hidden", "8", "--no-progress"]
CLIS = {"train": train_cli.main, "evaluate": evaluate_cli.main, "bench": bench.main, "data": data_cli.main,
        "export": export_cli.main}
CJK = re.compile(r"[\u4e00-\u9fff]")


# ---------------------------------------------------------------- 造出坏环境的小工具
def fake_mnist(root: Path, *, gz: bool = False, label: int = 0, header: dict | None = None, plain: bool = False,
               folder: str = "MNIST") -> Path:
    """在 root/<folder>/raw（plain=True 时直接在 root）写出四个大小正确的假 MNIST 文件（合法文件头 + 全零，稀疏文件，很快）。

    gz=True 时只写 .gz；label 为测试集的全部标签；header={文件名: 开头的字节} 用来写坏文件头。
    全零的像素正是“大小与文件头都对、内容被清零”的坏文件：程序应当认出它（MD5 与官方不符）。
    """
    raw = root if plain else root / folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, size in data.ALL_FILES:
        head = (header or {}).get(name, raw_checks._expected_header(name))
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


def official_mnist(root: Path, gz: bool = False) -> Path:
    """root/MNIST/raw 里放官方 MNIST：训练集链接到完整数据，测试集复制（gz=True 时自己压缩成 .gz）。没有完整数据时跳过。"""
    source = SHARED / "MNIST" / "raw"
    if not (source / "t10k-images-idx3-ubyte").exists():
        pytest.skip("没有完整的 MNIST（设置 SNN_DATA_DIR）")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for name, _ in data.ALL_FILES:
        if name.startswith("train"):
            (raw / name).symlink_to(source / name)
        elif gz:
            (raw / f"{name}.gz").write_bytes(gzip.compress((source / name).read_bytes(), compresslevel=1))
        else:
            shutil.copyfile(source / name, raw / name)
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
    h = History(epoch=[1.0], train_loss=[0.1], train_acc=[0.5], eval_loss=[0.1], eval_acc=[0.5], lr=[0.0], seconds=[0.1])
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
    traceback_after_message: bool = False                # 程序本身的错误：中文说明之后附上调用栈（便于报告问题）


def _file(name: str):
    return lambda tmp, mp: (tmp / name).write_text("x")


def _patch(obj, attr, value):
    return lambda tmp, mp: mp.setattr(obj, attr, value)


def _no_cuda(tmp, mp):
    mp.setattr(torch.cuda, "is_available", lambda: False)


def _save_fails(tmp, mp):
    """最终保存时磁盘满了：写 --out 失败，另存到（测试用的）系统临时目录。"""
    real = train_save.save_checkpoint
    target = tmp / "out" / "m.pt"

    def fake(path, *args, **kwargs):
        if Path(path) == target:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, *args, **kwargs)

    mp.setattr(train_save, "save_checkpoint", fake)
    mp.setattr(training, "fit", fake_fit)
    (tmp / "fallback").mkdir()
    mp.setattr(tempfile, "tempdir", str(tmp / "fallback"))


def _check_fallback(tmp):
    saved = list((tmp / "fallback").glob("snn_tutorial-m-*.pt"))
    assert len(saved) == 1 and not (tmp / "out" / "m.pt").exists()
    load_checkpoint(saved[0])


def _interrupt_during_save(tmp, mp):
    def fake(*args, **kwargs):
        raise KeyboardInterrupt

    mp.setattr(training, "fit", fake_fit)
    mp.setattr(train_save, "save_checkpoint", fake)


def _nan_training(tmp, mp):
    def diverged(net, train, test, **kwargs):
        with torch.no_grad():
            next(net.parameters()).fill_(float("nan"))
        return fake_fit(net, train, test, **kwargs)

    mp.setattr(training, "fit", diverged)
    tiny_checkpoint(tmp / "good.pt", metrics={"dataset": "mnist-sample", "quick": True})   # 快速模式只覆盖快速模式的检查点


def _unreadable_raw(tmp, mp):
    fake_mnist(tmp)
    deny_folder(mp, tmp / "MNIST" / "raw")


def _unreadable_file(tmp, mp):
    fake_mnist(tmp)
    deny_open(mp, tmp / "MNIST" / "raw" / "t10k-images-idx3-ubyte")


OUT_NOT_STARTED = ["训练还没有开始"]


# ---------------------------------------------------------------- 第三轮（issue 25）：训练好的模型一个也不丢
def _deploy_checkpoint(tmp, mp, name="m.pt", **changes):
    """一个很小的可部署变体（平均池化）检查点，导出很快。"""
    model = CSNN(channels=(2, 2), hidden=8, pool="avg")
    save_checkpoint(tmp / name, model, "csnn", metrics={"dataset": "mnist-sample"})
    if changes:
        ckpt = torch.load(tmp / name, weights_only=True)
        ckpt.update(changes)
        torch.save(ckpt, tmp / name)
    (tmp / f"{name}.sha").write_bytes((tmp / name).read_bytes())   # 原样的副本，check 里比较


def _unchanged(name="m.pt"):
    return lambda tmp: (tmp / name).read_bytes() == (tmp / f"{name}.sha").read_bytes()


def _hardlinked_checkpoint(tmp, mp):
    _deploy_checkpoint(tmp, mp, "model.onnx")        # 名字像 ONNX、内容是检查点
    os.link(tmp / "model.onnx", tmp / "alias.onnx")


def _fifo(name):
    def setup(tmp, mp):
        os.mkfifo(tmp / name)
    return setup


def _is_fifo(name):
    return lambda tmp: stat.S_ISFIFO(os.lstat(tmp / name).st_mode)


def _tensorboard_disk_full(tmp, mp):
    """日志所在的磁盘在训练中写满：TensorBoard 每次写都抛出 ENOSPC。"""
    from torch.utils.tensorboard import SummaryWriter

    def full(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    mp.setattr(SummaryWriter, "add_scalar", full)


def _fails_after_eval(error):
    """训练在一次评估之后出错（或被中断）。"""
    def setup(tmp, mp):
        def fit(net, train, test, *, on_eval=None, **kwargs):
            fake_fit(net, train, test, epochs=1, on_eval=on_eval)
            raise error
        mp.setattr(training, "fit", fit)
    return setup


def _previous_partial(tmp, mp):
    """上一次中断留下的 m.interrupted.pt；这一次又在一次评估之后被中断。"""
    tiny_checkpoint(tmp / "m.interrupted.pt")
    (tmp / "m.interrupted.pt.sha").write_bytes((tmp / "m.interrupted.pt").read_bytes())
    _fails_after_eval(KeyboardInterrupt())(tmp, mp)


def _full_checkpoint_at_default(tmp, mp):
    """完整训练存下的 checkpoints/csnn-mnist-sample.pt（metrics.quick 为 False）。"""
    (tmp / "checkpoints").mkdir()
    tiny_checkpoint(tmp / "checkpoints" / "csnn-mnist-sample.pt", metrics={"dataset": "mnist-sample", "quick": False})
    (tmp / "full.sha").write_bytes((tmp / "checkpoints" / "csnn-mnist-sample.pt").read_bytes())
    mp.setattr(training, "fit", fake_fit)


def _text_file(name, text="# 我的笔记\n"):
    def setup(tmp, mp):
        (tmp / name).write_text(text, encoding="utf-8")
        mp.setattr(training, "fit", fake_fit)
    return setup


def _ckpt(**changes):
    return lambda tmp, mp: tiny_checkpoint(tmp / "c.pt", **changes)


def _nan_state():
    state = CSNN(channels=(2, 2), hidden=8).state_dict()
    return {k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in state.items()}


def _foreign(content: bytes, name="c.pt"):
    return lambda tmp, mp: (tmp / name).write_bytes(content)


ONNX_HEAD = b"\x08\x0a\x12\x07pytorch\x1a\x062.14.1" + bytes(40)
HDF5_HEAD = b"\x89HDF\r\n\x1a\n" + bytes(100)
LFS_POINTER = b"version https://git-lfs.github.com/spec/v1\noid sha256:" + b"0" * 64 + b"\nsize 3403483\n"


def _pipe_with_writer(tmp, mp):
    """--checkpoint 是一个命名管道，另一端有人在写检查点（像 <(cat m.pt) 那样）。"""
    import threading

    fifo = tmp / "pipe.pt"
    os.mkfifo(fifo)
    payload = tiny_checkpoint(tmp / "c.pt").read_bytes()

    def writer():
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:
                time.sleep(0.05)
                continue
            os.set_blocking(fd, True)
            try:
                os.write(fd, payload)
            except OSError:
                pass
            os.close(fd)
            return

    threading.Thread(target=writer, daemon=True).start()


def _home_checkpoint(tmp, mp):
    mp.setenv("HOME", str(tmp / "home"))
    tiny_checkpoint(tmp / "home" / "x.pt")


def _home_for_logs(tmp, mp):
    mp.setenv("HOME", str(tmp / "home"))
    (tmp / "home").mkdir()
    mp.setattr(training, "fit", fake_fit)


def _broken_sample(content_of):
    def setup(tmp, mp):
        bad = tmp / "mnist_sample.npz"
        bad.write_bytes(content_of(data.SAMPLE_FILE.read_bytes()))
        mp.setattr(sample, "SAMPLE_FILE", bad)
    return setup


def _links(tmp, mp):
    (tmp / "broken.pt").symlink_to(tmp / "gone.pt")
    (tmp / "loop.pt").symlink_to(tmp / "loop.pt")


def _raw_with_broken_link(tmp, mp):
    raw = fake_mnist(tmp)
    (raw / "t10k-images-idx3-ubyte").unlink()
    (raw / "t10k-images-idx3-ubyte").symlink_to(tmp / "elsewhere" / "t10k-images-idx3-ubyte")


def _gz_beside_truncated(tmp, mp):
    raw = fake_mnist(tmp, gz=True, folder="FashionMNIST")
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x03" + bytes(100))   # 解压到一半被打断


def _low_space_for(folder_name):
    """只有 folder_name 所在的“磁盘”几乎满了（别的位置照常）。"""
    real = shutil.disk_usage

    def usage(path):
        if folder_name in Path(path).parts:
            return shutil._ntuple_diskusage(10**9, 10**9 - 1000, 1000)
        return real(path)

    return lambda tmp, mp: (mp.setattr(shutil, "disk_usage", usage), mp.setattr(training, "fit", fake_fit))


def _export_write_fails(tmp, mp):
    _deploy_checkpoint(tmp, mp)

    def full(model, path):
        Path(path).write_bytes(b"\x08\x0a partial")
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    mp.setattr(export_cli, "export_onnx", full)


def _sample_dir_read_only(tmp, mp):
    (tmp / "pkg").mkdir()
    mp.setattr(sample, "SAMPLE_FILE", tmp / "pkg" / "mnist_sample.npz")
    refuse_writes(mp, tmp / "pkg", errno.EROFS)
    fake_mnist(tmp / "data")
    mp.setattr(raw_files, "load_raw", lambda *a, **k: pytest.fail("写不进去时不应先读数据"))


def _no_network(tmp, mp):
    mp.setattr(datasets.MNIST, "mirrors", ["http://127.0.0.1:9/"])


def _quick_typo(tmp, mp):
    mp.setenv(quick.QUICK_ENV, "ture")
    quick._warned.clear()
    mp.setattr(training, "fit", fake_fit)


def _non_utf8(tmp, mp):
    mp.setattr(training, "fit", fake_fit)


LONG = "a" * 300
NEAR_LIMIT = "b" * 240                     # 文件系统放得下，但加上保存用的临时后缀就超过 255 字节
FAKE_FIT = _patch(training, "fit", fake_fit)
ROUND_THREE = [
    # 1. 导出不能写回输入的检查点、不能写到没有格式扩展名的文件
    Case("export-out-is-checkpoint", "export", ["--checkpoint", "{tmp}/m.pt", "--format", "onnx", "--out", "{tmp}/m.pt"], 2,
         ["--out {tmp}/m.pt 没有 .onnx 扩展名", "还没有导出任何东西"], setup=_deploy_checkpoint, check=_unchanged()),
    Case("export-out-is-checkpoint-nir", "export", ["--checkpoint", "{tmp}/m.pt", "--format", "nir", "--out", "{tmp}/./m.pt"], 2,
         ["没有 .nir 扩展名"], setup=_deploy_checkpoint, check=_unchanged()),
    Case("export-out-hardlink-of-input", "export", ["--checkpoint", "{tmp}/model.onnx", "--format", "onnx", "--out", "{tmp}/alias.onnx"],
         2, ["就是输入文件", "还没有导出任何东西"], setup=_hardlinked_checkpoint, check=_unchanged("model.onnx")),
    Case("export-out-same-file-other-spelling", "export",
         ["--checkpoint", "{tmp}/model.onnx", "--format", "onnx", "--out", "{tmp}/sub/../model.onnx"], 2, ["就是输入文件"],
         setup=lambda tmp, mp: (_hardlinked_checkpoint(tmp, mp), (tmp / "sub").mkdir()), check=_unchanged("model.onnx")),
    # 2. --out 是设备、命名管道：不替换它
    Case("out-fifo", "train", [*TINY, "--out", "{tmp}/fifo.pt"], 2, ["命名管道（FIFO）", "不是普通文件", *OUT_NOT_STARTED],
         setup=_fifo("fifo.pt"), before_training=True, check=_is_fifo("fifo.pt")),
    Case("export-out-fifo", "export", ["--checkpoint", "{tmp}/m.pt", "--format", "onnx", "--out", "{tmp}/fifo.onnx"], 2,
         ["命名管道（FIFO）", "还没有导出任何东西"], setup=lambda tmp, mp: (_deploy_checkpoint(tmp, mp), _fifo("fifo.onnx")(tmp, mp)),
         check=_is_fifo("fifo.onnx")),
    # 3. 日志写不进去只是警告；训练中途出错先保存最近一次评估的权重
    Case("log-dir-fills-up", "train", [*TINY, "--out", "{tmp}/m.pt", "--log-dir", "{tmp}/runs"], 0,
         ["警告：TensorBoard 日志写不进 {tmp}/runs", "磁盘已满", "检查点已保存到 {tmp}/m.pt"], setup=_tensorboard_disk_full,
         check=lambda tmp: load_checkpoint(tmp / "m.pt")),
    Case("error-mid-training-saves-snapshot", "train", [*TINY, "--out", "{tmp}/m.pt"], 1,
         ["错误：训练中途出错（磁盘已满", "已保存到 {tmp}/m.interrupted.pt", "没有写入 {tmp}/m.pt"],
         setup=_fails_after_eval(OSError(errno.ENOSPC, "No space left on device")),
         check=lambda tmp: load_checkpoint(tmp / "m.interrupted.pt")[1]["metrics"]["interrupted"]),
    Case("bug-mid-training-saves-snapshot", "train", [*TINY, "--out", "{tmp}/m.pt"], 1,
         ["错误：训练中途出错（ZeroDivisionError", "已保存到 {tmp}/m.interrupted.pt", "程序本身的错误"],
         setup=_fails_after_eval(ZeroDivisionError("division by zero")), check=lambda tmp: load_checkpoint(tmp / "m.interrupted.pt"),
         traceback_after_message=True),
    # 6. 快速模式不覆盖完整训练的检查点
    Case("quick-default-name", "train", TINY, 0, ["检查点已保存到 checkpoints/csnn-mnist-sample-quick.pt"],
         setup=_full_checkpoint_at_default,
         check=lambda tmp: (tmp / "checkpoints/csnn-mnist-sample.pt").read_bytes() == (tmp / "full.sha").read_bytes()),
    Case("quick-explicit-out-full-checkpoint", "train", [*TINY, "--out", "checkpoints/csnn-mnist-sample.pt"], 2,
         ["快速模式不会覆盖它", "csnn-mnist-sample-quick.pt", *OUT_NOT_STARTED], setup=_full_checkpoint_at_default, before_training=True,
         check=lambda tmp: (tmp / "checkpoints/csnn-mnist-sample.pt").read_bytes() == (tmp / "full.sha").read_bytes()),
    Case("out-is-not-a-checkpoint", "train", [*TINY, "--out", "{tmp}/notes.md"], 2, ["不是检查点", "文本文件", *OUT_NOT_STARTED],
         setup=_text_file("notes.md"), before_training=True,
         check=lambda tmp: (tmp / "notes.md").read_text(encoding="utf-8") == "# 我的笔记\n"),
    # 7. 第二次中断不覆盖第一次留下的 .interrupted.pt
    Case("second-interrupt-keeps-first", "train", [*TINY, "--out", "{tmp}/m.pt"], 130,
         ["已保存到 {tmp}/m.interrupted-2.pt", "m.interrupted.pt 是以前留下的，没有覆盖它"], setup=_previous_partial,
         check=lambda tmp: (tmp / "m.interrupted.pt").read_bytes() == (tmp / "m.interrupted.pt.sha").read_bytes()
         and load_checkpoint(tmp / "m.interrupted-2.pt")[1]["metrics"]["interrupted"]),
    # 8. 大得离谱的结构参数与线程数：解析时就拒绝（否则一批也跑不完，或耗尽内存）
    Case("T-100000", "train", [*TINY, "--T", "100000"], 2, ["--T", "1 到 256", "卡住"], setup=FAKE_FIT),
    Case("hidden-huge", "train", [*TINY, "--hidden", "1000000000"], 2, ["--hidden", "1 到 8192"], setup=FAKE_FIT),
    Case("channels-huge", "train", [*TINY, "--channels", "4", "10000000"], 2, ["--channels", "1 到 1024"], setup=FAKE_FIT),
    Case("threads-huge", "train", [*TINY, "--threads", "100000"], 2, ["--threads", "CPU 核"], setup=FAKE_FIT),
    Case("ckpt-T-1e9", "evaluate", ["--checkpoint", "{tmp}/c.pt", "--limit", "5"], 2, ["T 须为 1 到 256 之间的整数"],
         setup=_ckpt(config={"channels": [2, 2], "hidden": 8, "T": 10**9})),
    Case("ckpt-channels-360GB", "evaluate", ["--checkpoint", "{tmp}/c.pt", "--limit", "5"], 2, ["channels[0] 须为 1 到 1024"],
         setup=_ckpt(config={"channels": [10**6, 10**6], "hidden": 8})),
    # 9. .gz 完好、解压出的文件被截断：只删解压出的文件
    Case("data-truncated-beside-good-gz", "evaluate", ["--dataset", "fashion-mnist", "--data-dir", "{tmp}"], 2,
         ["只删除 t10k-images-idx3-ubyte", "不要删除同目录下的 t10k-images-idx3-ubyte.gz", "重新解压"],
         setup=_gz_beside_truncated, absent=["一并删除"]),
    # 10. 大小与文件头都对、像素被清零：按官方 MD5 认出来
    Case("data-zeroed-pixels", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/t10k-images-idx3-ubyte 的内容与官方的 mnist 文件不一致", "全零"], setup=lambda tmp, mp: fake_mnist(tmp),
         absent=["测试准确率"]),
    Case("fashion-zeroed-pixels", "evaluate", ["--dataset", "fashion-mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/FashionMNIST/raw/t10k-images-idx3-ubyte 里有 10000 张全黑的图", "清零"],
         setup=lambda tmp, mp: fake_mnist(tmp, folder="FashionMNIST")),
    # 11. 参数是 NaN 的检查点：不导出、不评估
    Case("export-nan-checkpoint", "export", ["--checkpoint", "{tmp}/m.pt", "--format", "onnx", "--out", "{tmp}/m.onnx"], 2,
         ["NaN 或无穷大", "训练发散"], setup=lambda tmp, mp: _deploy_checkpoint(tmp, mp, state_dict={
             k: torch.full_like(v, float("nan")) if v.is_floating_point() else v
             for k, v in CSNN(channels=(2, 2), hidden=8, pool="avg").state_dict().items()}),
         check=lambda tmp: not (tmp / "m.onnx").exists(), absent=["已导出", "核对："]),
    Case("evaluate-nan-checkpoint", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["NaN 或无穷大"],
         setup=_ckpt(state_dict=_nan_state()), absent=["测试准确率"]),
    # 12. 线程数大得离谱不是“检查点损坏”
    Case("evaluate-threads-100000", "evaluate", ["--threads", "100000"], 2, ["--threads", "1 到"], absent=["损坏", "重新训练"]),
    # 13. 不是检查点的文件：说出它是什么
    Case("ckpt-is-onnx", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["ONNX 模型"], setup=_foreign(ONNX_HEAD),
         absent=["整个模型", "torch.save("]),
    Case("ckpt-is-nir", "evaluate", ["--checkpoint", "{tmp}/m.nir"], 2, ["HDF5", "NIR"], setup=_foreign(HDF5_HEAD, "m.nir"),
         absent=["整个模型", "torch.save("]),
    Case("ckpt-is-lfs-pointer", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["Git LFS", "git lfs pull"], setup=_foreign(LFS_POINTER),
         absent=["整个模型", "torch.save("]),
    Case("ckpt-is-dev-zero", "evaluate", ["--checkpoint", "/dev/zero"], 2, ["/dev/zero 是一个字符设备文件"], absent=["整个模型", "损坏"]),
    Case("ckpt-is-empty", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["空文件"], setup=_foreign(b"")),
    # 14. 其余的坏输入
    Case("check-split-empty-dir-downloads", "data", ["--check-split", "--data-dir", "{tmp}"], 2, ["自动下载失败"],
         setup=_no_network, absent=["download=False"]),
    Case("out-equals-log-dir", "train", [*TINY, "--out", "{tmp}/x", "--log-dir", "{tmp}/x"], 2, ["指向同一个位置", *OUT_NOT_STARTED],
         before_training=True, check=lambda tmp: not (tmp / "x").exists()),
    Case("ckpt-is-pipe", "evaluate", ["--checkpoint", "{tmp}/pipe.pt"], 2, ["命名管道（FIFO）"], setup=_pipe_with_writer,
         absent=["损坏"]),
    Case("ckpt-tilde-after-equals", "evaluate", ["--checkpoint=~/x.pt", "--limit", "5"], 0, ["测试准确率"], setup=_home_checkpoint),
    Case("log-dir-tilde-after-equals", "train", [*TINY, "--out", "{tmp}/m.pt", "--log-dir=~/runs"], 0, ["检查点已保存到"],
         setup=_home_for_logs, check=lambda tmp: (tmp / "home" / "runs").is_dir() and not (tmp / "~").exists()),
    Case("sample-garbage", "train", [*TINY, "--out", "{tmp}/m.pt"], 2, ["随包附带的小样本", "git checkout"],
         setup=_broken_sample(lambda b: b"garbage, not an npz file" * 10), absent=["allow_pickle"]),
    Case("ckpt-tau-inf", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["tau 须为大于 1 的有限数"],
         setup=_ckpt(config={"channels": [2, 2], "hidden": 8, "tau": float("inf")})),
    Case("ckpt-broken-link", "evaluate", ["--checkpoint", "{tmp}/broken.pt"], 2, ["失效的符号链接", "{tmp}/gone.pt"], setup=_links),
    Case("ckpt-link-loop", "evaluate", ["--checkpoint", "{tmp}/loop.pt"], 2, ["循环的符号链接"], setup=_links),
    Case("data-dir-broken-link", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}/broken"], 2, ["失效的符号链接"],
         setup=lambda tmp, mp: (tmp / "broken").symlink_to(tmp / "nowhere")),
    Case("data-file-broken-link", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/t10k-images-idx3-ubyte 是失效的符号链接"], setup=_raw_with_broken_link, absent=["自动下载"]),
    # 16. 磁盘满：导出与日志目录先查空间；写到一半出错不留临时文件、不打印调用栈
    Case("export-disk-full", "export", ["--checkpoint", "{tmp}/m.pt", "--format", "nir", "--out", "{tmp}/full/m.nir"], 2,
         ["磁盘空间不足", "还没有导出任何东西"],
         setup=lambda tmp, mp: (_deploy_checkpoint(tmp, mp), (tmp / "full").mkdir(), _low_space_for("full")(tmp, mp))),
    Case("export-write-fails", "export", ["--checkpoint", "{tmp}/m.pt", "--format", "onnx", "--out", "{tmp}/m.onnx"], 1,
         ["导出时无法写文件", "磁盘已满", "临时文件已删除"], setup=_export_write_fails,
         check=lambda tmp: sorted(p.name for p in tmp.iterdir()) == ["m.pt", "m.pt.sha"]),
    Case("log-dir-disk-full", "train", [*TINY, "--out", "{tmp}/m.pt", "--log-dir", "{tmp}/full/runs"], 2,
         ["--log-dir {tmp}/full/runs 不能用", "磁盘空间不足"], setup=_low_space_for("full"), before_training=True),
    # 18. 其余的调用栈
    Case("out-name-300-chars", "train", [*TINY, "--out", "{tmp}/" + LONG + ".pt"], 2, ["文件名太长", *OUT_NOT_STARTED],
         before_training=True),
    Case("out-name-near-limit", "train", [*TINY, "--out", "{tmp}/" + NEAR_LIMIT + ".pt"], 2, ["文件名太长", "临时文件名"],
         before_training=True),
    Case("out-non-utf8-name", "train", [*TINY, "--out", "{tmp}/\udcff.pt"], 0, ["检查点已保存到"], setup=_non_utf8,
         check=lambda tmp: (tmp / os.fsdecode(b"\xff.pt")).exists()),
    Case("sample-truncated", "evaluate", ["--dataset", "mnist-sample", "--limit", "5"], 2, ["随包附带的小样本", "已损坏或不完整"],
         setup=_broken_sample(lambda b: b[: len(b) // 2]), absent=["allow_pickle"]),
    Case("build-sample-read-only-package", "data", ["--build-sample", "--data-dir", "{tmp}/data"], 2,
         ["无法写入小样本", "只读", "原来的样本保持不变"], setup=_sample_dir_read_only),
    Case("ckpt-dataset-is-list", "evaluate", ["--checkpoint", "{tmp}/c.pt"], 2, ["不是本教程认识的数据集", "--dataset"],
         setup=_ckpt(metrics={"dataset": ["mnist"]})),
    Case("bench-steps-huge", "bench", ["--steps", "1000000000"], 2, ["--steps", "1 到 10000"]),
    Case("evals-per-epoch-huge", "train", [*TINY, "--evals-per-epoch", "1000000000"], 2, ["--evals-per-epoch", "1 到 1000"],
         setup=FAKE_FIT),
    # 19. 拼错的 SNN_TUTORIAL_QUICK 不会悄悄跑完整训练
    Case("quick-env-typo", "train", [*TINY, "--out", "{tmp}/m.pt"], 0, ["SNN_TUTORIAL_QUICK='ture' 无法识别", "按完整模式运行"],
         setup=_quick_typo),
]

CASES = [
    # 1. --out / --log-dir：训练之前就发现，或者结果不丢
    # （pytest 打开了快速模式：默认文件名带 -quick）
    Case("out-existing-dir", "train", [*TINY, "--out", "{tmp}"], 0, ["检查点已保存到 {tmp}/csnn-mnist-sample-quick.pt"],
         setup=_patch(training, "fit", fake_fit), check=lambda tmp: load_checkpoint(tmp / "csnn-mnist-sample-quick.pt")),
    Case("out-trailing-slash", "train", [*TINY, "--out", "{tmp}/new/"], 0, ["检查点已保存到 {tmp}/new/csnn-mnist-sample-quick.pt"],
         setup=_patch(training, "fit", fake_fit)),
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
         setup=lambda tmp, mp: (tmp / "d" / "csnn-mnist-sample-quick.pt").mkdir(parents=True), before_training=True),
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
    Case("threads-0", "train", [*TINY, "--threads", "0"], 2, ["--threads", "1 到"]),
    Case("val-negative", "train", [*TINY, "--val", "-5"], 2, ["--val", "'-5'"]),
    Case("val-too-large", "train", [*TINY, "--out", "{tmp}/v.pt", "--val", "999999"], 2,
         ["--val", "训练集只有 800 个", "训练还没有开始"], check=lambda tmp: not (tmp / "v.pt").exists()),
    Case("evaluate-threads-0", "evaluate", ["--threads", "0"], 2, ["--threads", "1 到"]),
    Case("bench-steps-0", "bench", ["--steps", "0"], 2, ["--steps", "1 到"]),
    # 3. 参数校验
    Case("epochs-negative", "train", [*TINY, "--epochs", "-1"], 2, ["--epochs", "'-1'"]),
    Case("epochs-not-int", "train", [*TINY, "--epochs", "abc"], 2, ["--epochs", "应为整数"]),
    Case("evals-per-epoch-0", "train", [*TINY, "--evals-per-epoch", "0"], 2, ["--evals-per-epoch", "1 到"]),
    Case("evals-per-epoch-negative", "train", [*TINY, "--evals-per-epoch", "-1"], 2, ["--evals-per-epoch", "1 到"]),
    Case("batch-size-negative", "train", [*TINY, "--batch-size", "-5"], 2, ["--batch-size", "'-5'"]),
    Case("batch-size-1", "train", [*TINY, "--batch-size", "1"], 2, ["--batch-size", "BN"]),
    Case("T-0", "train", [*TINY, "--T", "0"], 2, ["--T", "1 到"]),
    Case("T-negative", "train", [*TINY, "--T", "-2"], 2, ["--T", "'-2'"]),
    Case("T-minus-1", "train", [*TINY, "--T", "-1"], 2, ["--T", "'-1'"]),
    Case("original-T-0", "train", [*TINY, "--model", "original", "--T", "0"], 2, ["--T", "1 到"]),
    Case("pool-for-csnn", "train", [*TINY, "--pool", "avg"], 2, ["--pool 只用于 --model ann"]),
    Case("pool-unknown", "train", [*TINY, "--model", "ann", "--pool", "sum"], 2, ["--pool"]),
    Case("lr-nan", "train", [*TINY, "--lr", "nan"], 2, ["--lr", "有限的正数"]),
    Case("lr-inf", "train", [*TINY, "--lr", "inf"], 2, ["--lr", "有限的正数"]),
    Case("lr-negative", "train", [*TINY, "--lr", "-0.1"], 2, ["--lr", "'-0.1'"]),
    Case("channels-0", "train", [*TINY, "--channels", "0", "0"], 2, ["--channels", "1 到"]),
    Case("channels-one-value", "train", [*TINY, "--channels", "4"], 2, ["--channels", "需要 2 个值"]),
    Case("hidden-0", "train", [*TINY, "--hidden", "0"], 2, ["--hidden", "1 到"]),
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
         ["测试准确率", "mnist 测试集 10 张"], setup=lambda tmp, mp: official_mnist(tmp, gz=True),
         check=lambda tmp: (tmp / "MNIST/raw/t10k-images-idx3-ubyte").stat().st_size == 7_840_016),
    Case("data-gz-zeroed", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}", "--limit", "10"], 2,
         ["train-images-idx3-ubyte.gz 解压出的内容与官方的 mnist 文件不一致", "没有解压出"], setup=lambda tmp, mp: fake_mnist(tmp, gz=True),
         check=lambda tmp: not list((tmp / "MNIST/raw").glob("*-ubyte"))),
    Case("data-gz-wrong-content", "evaluate", ["--dataset", "fashion-mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/FashionMNIST/raw/t10k-labels-idx1-ubyte.gz", "不是 fashion-mnist 的官方压缩包"],
         setup=lambda tmp, mp: (fake_mnist(tmp, gz=True, folder="FashionMNIST"),
                                (tmp / "FashionMNIST/raw/t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"short")))),
    Case("data-gz-not-gzip", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/train-images-idx3-ubyte.gz", "不是有效的 gzip 文件"],
         setup=lambda tmp, mp: (fake_mnist(tmp, gz=True),
                                (tmp / "MNIST/raw/train-images-idx3-ubyte.gz").write_bytes(b"not gzip at all"))),
    Case("data-wrong-magic", "evaluate", ["--dataset", "mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/MNIST/raw/t10k-labels-idx1-ubyte", "文件头不对", "00 00 08 01"],
         setup=lambda tmp, mp: fake_mnist(tmp, header={"t10k-labels-idx1-ubyte": b"garbage!"}), absent=["（）"]),
    # （MNIST 的内容先按 MD5 核对；Fashion-MNIST 没有 .gz 时无从核对，标签范围的检查还在起作用）
    Case("data-labels-above-9", "evaluate", ["--dataset", "fashion-mnist", "--data-dir", "{tmp}"], 2,
         ["{tmp}/FashionMNIST/raw/t10k-labels-idx1-ubyte", "超出 0–9", "值为 12"],
         setup=lambda tmp, mp: fake_mnist(tmp, label=12, folder="FashionMNIST")),
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
    Case("bench-steps-negative", "bench", ["--steps", "-1"], 2, ["--steps", "1 到"]),
    Case("bench-compile-alone", "bench", ["--compile"], 2, ["--compile", "--epoch-device"]),
    Case("data-cli-missing-dir", "data", ["--build-sample", "--data-dir", "{tmp}/nowhere"], 2, ["数据目录不存在", "{tmp}/nowhere"]),
    Case("data-cli-missing-env-dir", "data", ["--build-sample"], 2, ["数据目录不存在", "SNN_DATA_DIR"],
         setup=lambda tmp, mp: mp.setenv("SNN_DATA_DIR", str(tmp / "gone"))),
    # 8. 中断（不用真信号的部分；真信号见下面的子进程测试）
    Case("ctrl-c-before-first-eval", "train", [*TINY, "--out", "{tmp}/m.pt"], 130, ["已中断（Ctrl+C）", "没有保存任何文件", "没有写入 {tmp}/m.pt"],
         setup=_patch(training, "fit", interrupted_fit), check=lambda tmp: not list(tmp.iterdir())),
    Case("ctrl-c-during-final-save", "train", [*TINY, "--out", "{tmp}/m.pt"], 130, ["已中断（Ctrl+C）", "保存被打断"],
         setup=_interrupt_during_save),
    Case("ctrl-c-while-loading-data", "evaluate", ["--limit", "5"], 130, ["已中断（Ctrl+C）"],
         setup=_patch(data, "tensor_batches", interrupted_fit)),
    *ROUND_THREE,
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
    if case.traceback_after_message:
        assert err.index("Traceback") > err.index("程序本身的错误") > 0, err
    else:
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


# ---------------------------------------------------------------- 第三轮（issue 25）：真实的故障（子进程）与库函数
def test_closing_the_terminal_saves_like_sigterm(tmp_path):
    """在伪终端里训练，然后关掉终端（SSH 断开也是这样）：进程收到 SIGHUP，像 SIGTERM 一样保存，退出码 129。
    终端关掉后往它写字会出错（EIO），保存与退出都不能因此失败。"""
    import pty

    out = tmp_path / "m.pt"
    argv = [sys.executable, "-m", "snn_tutorial.train", *TINY, "--epochs", "50", "--evals-per-epoch", "13", "--out", str(out)]
    pid, fd = pty.fork()
    if pid == 0:   # 子进程：pty.fork 让它成为新会话的首进程，这个伪终端是它的控制终端
        os.chdir(REPO)
        os.execv(sys.executable, argv)
    seen, deadline = b"", time.monotonic() + 120
    try:
        while "第 ".encode() not in seen and time.monotonic() < deadline:
            try:
                seen += os.read(fd, 4096)
            except OSError:
                break
    finally:
        os.close(fd)                                      # 关掉终端
    _, status = os.waitpid(pid, 0)
    assert "第 ".encode() in seen, seen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == cli.EXIT_HANGUP, seen.decode(errors="replace")
    _, ckpt = load_checkpoint(tmp_path / "m.interrupted.pt")
    assert ckpt["metrics"]["interrupted"] is True and not out.exists()


CLOSED_OUTPUT = """
import atexit, sys, time
atexit.register(lambda: (print("收尾", file=sys.stderr, flush=True), time.sleep(5)))   # 代替 torch._dynamo 注册的收尾函数
from snn_tutorial import train
train.main(sys.argv[1:])
"""


def test_closed_stdout_and_ctrl_c_at_exit(tmp_path):
    """python -m snn_tutorial.train | head -1：head 读一行就走，管道断开，训练照常进行、检查点照常保存；
    命令结束后、解释器运行收尾函数（例如 torch._dynamo 的）时再按 Ctrl+C，也不打印调用栈。"""
    out = tmp_path / "m.pt"
    proc = _spawn("-c", CLOSED_OUTPUT, *TINY, "--evals-per-epoch", "3", "--out", str(out))
    proc.stdout.readline()
    proc.stdout.close()                                   # 像 head -1 一样读一行就走
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "收尾" in line:
            proc.send_signal(signal.SIGINT)
            break
    stderr = "".join(seen) + proc.stderr.read()
    proc.wait(timeout=120)
    assert "收尾" in stderr and proc.returncode == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr and "KeyboardInterrupt" not in stderr, stderr
    load_checkpoint(out)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _two_ranks(tmp_path, timeout: str):
    """两个训练进程组成一个 gloo 进程组（与 torchrun 设置的环境变量相同，省掉 torchrun 本身的启动时间）。"""
    port, procs = _free_port(), []
    for rank in range(2):
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
               "LOCAL_WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "SNN_TUTORIAL_DIST_TIMEOUT": timeout}
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "snn_tutorial.train", *TINY, "--epochs", "1000", "--evals-per-epoch", "7", "--threads", "1",
             "--out", str(tmp_path / "m.pt")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO, env=env))
    return procs


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_distributed_fault_on_other_rank_saves_rank0_snapshot(tmp_path, fault):
    """另一个进程被 kill -9（连接断开）或 kill -STOP（一直不回应）：0 号进程不再无限等待，而是保存最近一次评估的权重。"""
    rank0, rank1 = _two_ranks(tmp_path, timeout="10")   # 留出两个进程启动快慢不一的余量（建立进程组也受这个超时限制）
    try:
        _wait_for_line(rank0, "第 ")
        rank1.send_signal(signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        start = time.monotonic()
        stdout, stderr = rank0.communicate(timeout=90)
        waited = time.monotonic() - start
    finally:
        for proc in (rank0, rank1):
            if proc.poll() is None:
                proc.kill()
            proc.wait()
    assert rank0.returncode == 1, stderr
    assert "Traceback" not in stderr and "与其他进程的通信中断" in stderr, stderr
    assert f"已保存到 {tmp_path / 'm.interrupted.pt'}" in stderr, stderr
    assert waited < 60
    _, ckpt = load_checkpoint(tmp_path / "m.interrupted.pt")
    assert ckpt["metrics"]["interrupted"] is True and ckpt["run"]["world_size"] == 2


NOTEBOOK_CELL = '''
import sys
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_cell(
    "from snn_tutorial import data\\n"
    "from torchvision import datasets\\n"
    "datasets.MNIST.mirrors = ['http://127.0.0.1:9/']\\n"          # 没有网络
    f"train_x, train_y = data.load_raw('mnist', train=True, root={sys.argv[1]!r})\\n"
)
'''


def test_notebook_shows_the_chinese_message_first(tmp_path):
    """笔记本里（IPython 显示异常的方式）没有数据也没有网络：第一行就是中文说明，没有几十行的调用栈与异常链。"""
    res = subprocess.run([sys.executable, "-c", NOTEBOOK_CELL, str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=REPO)
    text = re.sub(r"\x1b\[[0-9;]*m", "", res.stdout + res.stderr).strip()
    lines = text.splitlines()
    assert lines and lines[0].startswith("DataNotFoundError: 找不到 mnist 的数据文件"), text
    assert "During handling" not in text and "Traceback" not in text and len(lines) < 15, text
    assert "自动下载失败" in text and "原始错误" in text


def test_loading_checkpoints_emits_no_english_warning(tmp_path):
    """普通的恶意 pickle（协议 4）与稀疏张量会让 PyTorch 发出英文警告：加载时不应先于中文说明出现。"""
    import pickle
    import warnings

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo 不应执行",))

    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump(Evil(), f, protocol=4)
    model = CSNN(channels=(2, 2), hidden=8)
    sparse = {k: v.to_sparse() if v.dim() == 2 else v for k, v in model.state_dict().items()}
    torch.save({"format": FORMAT, "model": "csnn", "config": model.config, "state_dict": sparse, "metrics": {}}, tmp_path / "sparse.pt")
    for name, piece in (("evil.pt", "直接用 pickle（协议 4）保存的 Python 对象"), ("sparse.pt", "稠密张量")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(CheckpointError) as err:
                load_checkpoint(tmp_path / name)
        assert not caught, [str(w.message) for w in caught]
        assert piece in str(err.value) and "整个模型" not in str(err.value)


def test_data_verdict_is_cached_and_redone_after_a_change(tmp_path, monkeypatch):
    """官方文件的 MD5 只在第一次用到时核对，结论缓存在用户的缓存目录（数据目录可以是只读的）；文件改动后重新核对。"""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(raw_checks, "_VERIFIED", {})
    official_mnist(tmp_path / "d")
    with monkeypatch.context() as mp:
        refuse_writes(mp, tmp_path / "d", errno.EROFS)                 # 只读的数据目录照样能用
        x, _ = data.load_raw("mnist", train=False, root=tmp_path / "d")
    assert x.shape == (10000, 1, 28, 28)
    cache = raw_checks._cache_file()
    assert cache.exists() and str(tmp_path / "d") in cache.read_text()
    with monkeypatch.context() as mp:                                  # 新的进程：只读缓存文件，不再读数据文件算 MD5
        mp.setattr(raw_checks, "_VERIFIED", {})
        mp.setattr(raw_checks, "file_md5", lambda *a, **k: pytest.fail("已核对过的文件不应再算一遍 MD5"))
        data.load_raw("mnist", train=False, root=tmp_path / "d")
    images = tmp_path / "d" / "MNIST" / "raw" / "t10k-images-idx3-ubyte"
    with open(images, "r+b") as f:                                    # 像 rsync --inplace 中途失败：一段字节被清零
        f.seek(1 << 20)
        f.write(bytes(1 << 16))
    with pytest.raises(data.CorruptDataError, match="内容与官方的 mnist 文件不一致"):
        data.load_raw("mnist", train=False, root=tmp_path / "d")


def test_stale_export_temp_files_are_removed(tmp_path):
    """被强行结束的导出（SIGKILL、h5py 在磁盘满时崩溃）留下的临时文件，下一次写到同一目录时清掉。"""
    old = time.time() - 3600
    stale = {".m.nir.ab12cd_9.tmp": HDF5_HEAD, ".m.onnx.zz12cd_9.tmp": ONNX_HEAD}
    keep = {".notes.nir.abcdefgh.tmp": b"hello"}
    for name, content in {**stale, **keep}.items():
        (tmp_path / name).write_bytes(content)
        os.utime(tmp_path / name, (old, old))
    checkpoint.remove_stale_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(keep)


def test_unusable_browser_fails_in_one_line(monkeypatch):
    """SNN_TUTORIAL_CHROMIUM 指向一个不是浏览器的程序：一行说明就失败，而不是 Playwright 的调用栈。"""
    monkeypatch.syspath_prepend(str(REPO / "tests" / "browser"))
    import browser_support

    monkeypatch.setenv(browser_support.BROWSER_ENV, "/bin/false")
    with pytest.raises(pytest.fail.Exception) as info:
        browser_support.find_chromium()
    message = str(info.value).strip()
    assert "不能用" in message and "\n" not in message and not info.value.pytrace
