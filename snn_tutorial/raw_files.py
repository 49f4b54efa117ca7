"""读入原始文件：只有 .gz 时先解压，缺文件时下载（或说清怎样手动放好），再逐项检查，最后交给 torchvision 解析；
也从 MNIST 测试集生成随包附带的小样本（build_sample）。

真实用户联网时会自动下载；离线时报错会说明把哪四个文件放到哪里。
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import zlib
from pathlib import Path
from urllib.error import URLError

import torch

from . import sample, validate
from .atomic import atomic_open
from .data_sources import (
    ALL_FILES, OFFICIAL_MD5, CorruptDataError, DataNotFoundError, DataPathError, DataPermissionError, DatasetInfo,
    dataset_info, resolve_data_root,
)
from .raw_checks import (
    _check_blank, _check_files, _check_headers, _check_root, _missing_message, _redo_advice, _verify_content,
)
from .runtime import describe_os_error, link_problem, writable_dir_problem
from .sample import SAMPLE_PER_CLASS, SAMPLE_TRAIN, load_sample

def _extract_gz(gz: Path, target: Path, size: int, info: DatasetInfo) -> None:
    """把 <name>.gz 解压成 <name>（先写临时文件再改名）。不要求是官方压缩包，但解压结果必须大小正确，
    已知官方 MD5 时内容也必须一致。"""
    problem = writable_dir_problem(target.parent, create=False)
    if problem is not None:
        raise DataPermissionError(
            f"{gz} 需要先解压成 {target.name}，但{problem}。\n"
            f"请手动解压（例如 gunzip -k {gz}），或给 {target.parent} 加上写权限。"
        )
    try:
        with atomic_open(target, "wb") as out, gzip.open(gz, "rb") as src:
            _copy_checked(src, out, size, gz, target, info)
    except PermissionError:
        raise
    except (OSError, EOFError, zlib.error) as err:  # gzip.BadGzipFile 是 OSError 的子类
        raise CorruptDataError(
            f"{gz} 无法解压（{type(err).__name__}: {err}）：它不是有效的 gzip 文件，或已损坏/不完整。\n"
            f"请重新下载这个 .gz 文件，或直接放入解压后的 {target.name}。"
        ) from err


def _copy_checked(src, out, size: int, gz: Path, target: Path, info: DatasetInfo) -> None:
    """从 src 复制至多 size + 1 字节到 out，核对大小（与已知的官方 MD5）；不对时抛出 CorruptDataError（临时文件随之删除）。"""
    written = 0
    digest = hashlib.md5(usedforsecurity=False)
    while written <= size:  # 最多多读 1 字节：足以判断“太大”，又不会被异常大的文件填满磁盘
        chunk = src.read(min(1 << 20, size + 1 - written))
        if not chunk:
            break
        out.write(chunk)
        digest.update(chunk)
        written += len(chunk)
    expected = OFFICIAL_MD5.get(info.folder, {}).get(target.name)
    if written == size and expected is not None and digest.hexdigest() != expected:
        raise CorruptDataError(
            f"{gz} 解压出的内容与官方的 {info.name} 文件不一致（MD5 应为 {expected}，实际 {digest.hexdigest()}）："
            f"它不是官方文件压缩成的，或已损坏。没有解压出 {target.name}。\n"
            f"请重新下载这个 .gz 文件，或直接放入解压后的官方文件 {target.name}。"
        )
    if written != size:
        raise CorruptDataError(
            f"{gz} 解压后{'超过' if written > size else '只有'} {written if written <= size else size} 字节，"
            f"而 {target.name} 应有 {size} 字节：它不是 {info.name} 的官方压缩包，或已损坏/不完整。\n"
            f"请重新下载这个 .gz 文件，或直接放入解压后的 {target.name}。"
        )


def _permission_message(err: PermissionError, root: Path) -> str:
    """找出是哪一段路径没有权限：先看数据目录、MNIST/、raw/ 这几级目录，再看文件本身。"""
    culprit = err.filename
    target = Path(err.filename) if err.filename else None
    if target is not None:
        chain = [target, *target.parents]
        chain = [c for c in reversed(chain) if c == root or root in c.parents]
        for candidate in chain:
            mode = os.R_OK | (os.X_OK if candidate != target else 0)
            if not os.access(candidate, mode):
                culprit = candidate
                break
    try:
        kind = "目录" if culprit is not None and Path(culprit).is_dir() else "文件"
    except OSError:  # 连它是不是目录都看不了
        kind = ""
    return (
        f"没有权限读取{kind} {culprit}（[Errno {err.errno}] {err.strerror}）。\n"
        f"这是权限问题，数据本身可能完好，不必重新下载：请检查它和上级目录的权限（例如 ls -ld {culprit}），"
        f"用 chmod 加上读取权限（目录还需要 x 权限），或换一个有权限的账户运行。"
    )


def load_raw(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """读入整个数据集，返回 (图像 uint8 [N,1,28,28], 标签 int64 [N])。train=True 为训练集，False 为测试集。"""
    info = dataset_info(dataset)
    validate.flag("train", train)
    validate.flag("download", download)
    if info.name == "mnist-sample":
        x, y = load_sample()
        return (x[:SAMPLE_TRAIN], y[:SAMPLE_TRAIN]) if train else (x[SAMPLE_TRAIN:], y[SAMPLE_TRAIN:])
    root_path, source = resolve_data_root(root)
    try:
        return _load_raw_files(info, train, root_path, source, download)
    except PermissionError as err:
        raise DataPermissionError(_permission_message(err, root_path)) from err


def _check_links(raw_dir: Path) -> None:
    """数据文件是失效的或循环的符号链接时明说（否则会被当成“缺失”，下载还会顺着失效的链接写到别处）。"""
    for name, _ in ALL_FILES:
        for path in (raw_dir / name, raw_dir / f"{name}.gz"):
            if os.path.lexists(path):
                problem = link_problem(path)
                if problem is not None:
                    raise DataPathError(f"数据文件不能用：{problem}。请修正或删除这个链接，再重新运行。")


def _load_raw_files(info: DatasetInfo, train: bool, root_path: Path, source: str, download: bool):
    _check_root(root_path, source, info)
    raw_dir = root_path / info.folder / "raw"
    _check_links(raw_dir)
    for name, size in ALL_FILES:  # 只有 .gz 的文件先解压（README 说 .gz 也可以）
        gz = raw_dir / f"{name}.gz"
        if not (raw_dir / name).exists() and gz.exists():
            _extract_gz(gz, raw_dir / name, size, info)
    missing = [name for name, _ in ALL_FILES if not (raw_dir / name).exists()]
    if missing:
        if not download:
            raise DataNotFoundError(_missing_message(raw_dir, info, missing, "未允许下载（download=False）"))
        problem = writable_dir_problem(raw_dir)
        if problem is not None:
            raise DataNotFoundError(_missing_message(
                raw_dir, info, missing, f"无法下载到这里：{problem}（这是数据目录的问题，与网络无关）", disk_problem=True))
        try:
            info.torchvision_class(str(root_path), train=train, download=True)
        except Exception as err:  # 网络错误的类型很多：URLError、RuntimeError、OSError……
            disk = isinstance(err, OSError) and not isinstance(err, URLError) and err.errno in _DISK_ERRNOS
            if disk:
                reason = f"下载的文件无法写入 {raw_dir}：{describe_os_error(err)}（这是数据目录的问题，与网络无关）"
            else:
                reason = f"自动下载失败（{type(err).__name__}，可能没有网络或被防火墙拦截）"
            raise DataNotFoundError(_missing_message(raw_dir, info, missing, reason, disk_problem=disk)) from err
    _check_files(raw_dir)
    _check_headers(raw_dir, info)
    prefix = "train" if train else "t10k"
    images_file, labels_file = raw_dir / f"{prefix}-images-idx3-ubyte", raw_dir / f"{prefix}-labels-idx1-ubyte"
    _verify_content(raw_dir, info, [images_file.name, labels_file.name])
    try:
        ds = info.torchvision_class(str(root_path), train=train, download=False)
    except PermissionError:
        raise
    except Exception as err:
        raise CorruptDataError(
            f"无法解析 {raw_dir} 下的数据文件（{type(err).__name__}: {err}）。"
            f"请确认它们是官方的 {info.name} 文件（大小与文件头都已核对无误，这种情况很少见）。"
        ) from err
    labels = ds.targets.long()
    bad = torch.nonzero((labels < 0) | (labels >= len(info.classes))).flatten()
    if len(bad):
        first = int(bad[0])
        raise CorruptDataError(
            f"标签文件 {labels_file} 里有 {len(bad)} 个超出 0–{len(info.classes) - 1} 的标签"
            f"（第一个在第 {first} 个位置，值为 {int(labels[first])}）：它已损坏，或不是 {info.name} 的标签文件。\n"
            f"{_redo_advice(labels_file)}"
        )
    _check_blank(ds.data, images_file, info)
    return ds.data.unsqueeze(1).contiguous(), labels


_DISK_ERRNOS = {errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def build_sample(root: str | os.PathLike | None = None, out: str | os.PathLike | None = None, per_class: int = SAMPLE_PER_CLASS,
                 download: bool = True) -> Path:
    """从 MNIST 测试集中按原顺序取每类前 per_class 张，写成压缩的 npz（离线演示与单元测试用）。

    重新生成：python -m snn_tutorial.data --build-sample --data-dir 数据目录
    先确认 out 所在的目录可写，再读数据；写到临时文件后才替换 out，中途失败时原来的样本保持不变。
    """
    import numpy as np

    out = Path(out) if out is not None else sample.SAMPLE_FILE
    problem = writable_dir_problem(out.parent)
    if problem is not None:
        raise DataPermissionError(f"无法写入小样本 {out}：{problem}。原来的样本保持不变；请换一个可写的位置，或给这个目录加上写权限。")
    images, labels = load_raw("mnist", train=False, root=root, download=download)
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(10)]).sort().values
    try:
        with atomic_open(out, "wb") as f:
            np.savez_compressed(f, images=images[keep].numpy(), labels=labels[keep].numpy().astype("uint8"),
                                test_index=keep.numpy().astype("int32"))
    except OSError as err:
        raise DataPermissionError(f"无法写入小样本 {out}：{describe_os_error(err)}。原来的样本保持不变。") from err
    return out
