"""原始文件的检查：路径放对了没有、大小、IDX 文件头、内容的 MD5（结论缓存在用户的缓存目录）、有没有被清零。"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import stat
import zlib
from pathlib import Path

import torch

from .atomic import atomic_open
from .data_sources import (
    ALL_FILES, DATA_ENV, DATASETS, OFFICIAL_MD5, CorruptDataError, DataPathError, DatasetInfo,
)
from .runtime import file_kind, link_problem

def _has_raw_files(folder: Path) -> bool:
    return any((folder / n).exists() or (folder / f"{n}.gz").exists() for n, _ in ALL_FILES)


def _check_root(root: Path, source: str, info: DatasetInfo) -> None:
    """尽早发现常见的路径错误：目录不存在、指向了文件、多写了 MNIST/raw、原始文件没放进 MNIST/raw/。"""
    if source != "默认" and not root.exists():
        problem = link_problem(root)
        if problem is not None:
            raise DataPathError(f"数据目录不能用（来自{source}）：{problem}。请修正这个链接，或直接给出数据目录的路径。")
        raise DataPathError(
            f"数据目录不存在：{root}（来自{source}）。\n"
            f"请检查拼写；若想把数据下载到这里，先创建该目录。"
            f"数据目录应是 {info.folder}/raw/ 的上一级，例如 data/，而不是 data/{info.folder}/raw/。"
        )
    if root.exists() and not root.is_dir():
        raise DataPathError(f"数据目录 {root}（来自{source}）是一个文件，不是目录。请指向包含 {info.folder}/ 的目录。")
    folders = {d.folder for d in DATASETS.values()}
    wanted = root / info.folder / "raw"
    if _has_raw_files(root):
        if root.name == "raw" and root.parent.name in folders:  # 指向了 <数据目录>/MNIST/raw
            raise DataPathError(
                f"数据目录设置得太深了：{root} 里直接放着原始文件。\n"
                f"请把数据目录设为 {root.parent.parent}（程序会在其下寻找 {info.folder}/raw/）。"
            )
        raise DataPathError(
            f"原始文件直接放在了 {root} 里，但程序在 {wanted}/ 下寻找它们。\n"
            f"请在 {root} 里建一个 {info.folder}/raw/ 子目录，把这四个文件移进去，数据目录仍设为 {root}。"
            f"在终端里：mkdir -p {wanted} && mv {root}/*-ubyte* {wanted}/"
        )
    if _has_raw_files(root / "raw"):
        if root.name in folders:  # 指向了 <数据目录>/MNIST
            raise DataPathError(
                f"数据目录设置得太深了：{root} 里直接放着原始文件。\n"
                f"请把数据目录设为 {root.parent}（程序会在其下寻找 {info.folder}/raw/）。"
            )
        raise DataPathError(
            f"原始文件放在了 {root / 'raw'} 里，但程序在 {wanted}/ 下寻找它们。\n"
            f"请把 raw/ 移到 {root / info.folder}/ 里，数据目录仍设为 {root}。"
            f"在终端里：mkdir -p {root / info.folder} && mv {root / 'raw'} {wanted}"
        )


def _missing_message(raw_dir: Path, info: DatasetInfo, missing: list[str], reason: str, disk_problem: bool = False) -> str:
    files = "\n".join(f"  - {name}（或 {name}.gz）" for name, _ in ALL_FILES)
    first = (f"1. 换一个可写的数据目录，或给 {raw_dir.parent.parent} 加上写权限，再重新运行，程序会自动下载；\n" if disk_problem
             else "1. 联网后重新运行，程序会自动下载；\n")
    return (
        f"找不到 {info.name} 的数据文件 {', '.join(missing)}，且{reason}。\n"
        f"处理办法：\n"
        f"{first}"
        f"2. 或者在能上网的机器上下载这四个文件，放到 {raw_dir}/ 下：\n{files}\n"
        f"3. 若数据已在别处，设置环境变量 {DATA_ENV}=那个目录（{info.folder}/raw/ 的上一级），"
        f"或在代码中传入 root=...，命令行传 --data-dir ...。"
    )


def _redo_advice(path: Path) -> str:
    """坏掉的解压后文件该怎么办：旁边有 .gz 时只删它本身（会从 .gz 重新解压；离线时 .gz 可能是唯一完好的副本），否则重新下载或复制。"""
    gz = path.with_name(path.name + ".gz")
    if gz.exists():
        return (f"请只删除 {path.name}，不要删除同目录下的 {gz.name}：重新运行时程序会从 {gz.name} 重新解压出完整的文件"
                f"（若 .gz 本身也有问题，到时会再告诉你）。")
    return "请删除这个文件，然后重新运行以重新下载（需要联网），或从别处重新复制完整的文件。"


def _check_files(raw_dir: Path) -> None:
    """按文件大小检查四个文件是否被截断（torchvision 需要四个文件都在）。"""
    for name, size in ALL_FILES:
        path = raw_dir / name
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise CorruptDataError(f"数据文件 {path} 是一个{file_kind(info.st_mode)}，不是普通文件。请换成官方的数据文件。")
        actual = info.st_size
        if actual != size:
            raise CorruptDataError(
                f"数据文件不完整或已损坏：{path}\n"
                f"应有 {size} 字节，实际 {actual} 字节（下载中断或复制不完整）。\n{_redo_advice(path)}"
            )


def _expected_header(name: str) -> bytes:
    """IDX 文件头：魔数 00 00 08 03（图像）或 00 00 08 01（标签），接着是各维的大小（大端 32 位）。"""
    count = 60000 if name.startswith("train") else 10000
    if "images" in name:
        return b"\x00\x00\x08\x03" + count.to_bytes(4, "big") + (28).to_bytes(4, "big") * 2
    return b"\x00\x00\x08\x01" + count.to_bytes(4, "big")


def _check_headers(raw_dir: Path, info: DatasetInfo) -> None:
    """逐个打开四个文件、核对文件头：没有读取权限、或不是该数据集的文件时，报出是哪一个文件。"""
    for name, _ in ALL_FILES:
        path = raw_dir / name
        expected = _expected_header(name)
        with open(path, "rb") as f:
            header = f.read(len(expected))
        if header != expected:
            raise CorruptDataError(
                f"数据文件 {path} 的文件头不对：开头应为 {expected.hex(' ')}（IDX 格式），实际是 {header.hex(' ')}。\n"
                f"它不是 {info.name} 的原始文件，或已损坏。{_redo_advice(path)}"
            )


# ---------------------------------------------------------------- 内容核对（MD5），结论缓存在用户的缓存目录
CACHE_ENV = "XDG_CACHE_HOME"


def cache_dir() -> Path:
    """本教程的缓存目录：$XDG_CACHE_HOME/snn-tutorial（默认 ~/.cache/snn-tutorial）。从不写进数据目录（它可能是只读的）。"""
    base = os.environ.get(CACHE_ENV, "").strip()
    return (Path(base) if base else Path.home() / ".cache") / "snn-tutorial"


_VERIFIED: dict[str, list] = {}   # 本进程里已核对过的文件，避免每次加载都重读缓存文件


def _stat_key(path: Path) -> tuple[str, list]:
    info = os.stat(path)
    return os.path.realpath(path), [info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino, info.st_dev]


def _cache_file() -> Path:
    return cache_dir() / "verified-data.json"


def _read_cache() -> dict:
    try:
        with open(_cache_file(), encoding="utf-8") as f:
            cache = json.load(f)
        return cache if isinstance(cache, dict) else {}
    except (OSError, ValueError):
        return {}


def _remember(entries: dict) -> None:
    """把核对通过的文件记进缓存（写不进去就算了：下次再核对一遍，不到一秒）。"""
    _VERIFIED.update(entries)
    cache = _read_cache()
    cache.update(entries)
    target = _cache_file()
    with contextlib.suppress(OSError):
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(target, "w", encoding="utf-8") as f:
            json.dump(cache, f)


def file_md5(path: str | os.PathLike, gz: bool = False) -> str:
    """文件（gz=True 时为 gzip 解压后的内容）的 MD5。"""
    digest = hashlib.md5(usedforsecurity=False)
    with (gzip.open if gz else open)(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _official_gz_md5(info: DatasetInfo) -> dict[str, str]:
    return {Path(name).name.removesuffix(".gz"): md5 for name, md5 in getattr(info.torchvision_class, "resources", [])}


def _expected_md5(raw_dir: Path, name: str, info: DatasetInfo) -> str | None:
    """name 解压后应有的 MD5；不知道时返回 None（Fashion-MNIST 没有官方的 .gz 在旁边时）。"""
    known = OFFICIAL_MD5.get(info.folder, {}).get(name)
    if known is not None:
        return known
    gz = raw_dir / f"{name}.gz"
    wanted = _official_gz_md5(info).get(name)
    try:
        if wanted is not None and gz.exists() and file_md5(gz) == wanted:
            return file_md5(gz, gz=True)
    except (OSError, EOFError, zlib.error):
        return None
    return None


def _verify_content(raw_dir: Path, info: DatasetInfo, names: list[str]) -> None:
    """核对文件内容与官方文件一致（MD5）。每个文件只在第一次用到时核对一次，结论按（路径、大小、修改时间……）缓存；
    文件被改动后会重新核对。大小与文件头都对、内容却被改过（全零的云盘占位文件、中断的 rsync --inplace）时报错。"""
    cache = None
    fresh = {}
    for name in names:
        path = raw_dir / name
        key, value = _stat_key(path)
        if _VERIFIED.get(key) == value:
            continue
        if cache is None:
            cache = _read_cache()
        if cache.get(key) == value:
            _VERIFIED[key] = value
            continue
        expected = _expected_md5(raw_dir, name, info)
        if expected is None:
            continue   # 无从核对：只做下面加载后的空白图检查
        actual = file_md5(path)
        if actual != expected:
            raise CorruptDataError(
                f"数据文件 {path} 的内容与官方的 {info.name} 文件不一致（MD5 应为 {expected}，实际 {actual}）。\n"
                f"它的大小和文件头都对，但内容被改过或损坏了（例如云盘只同步了占位文件、rsync --inplace 中途失败留下了全零的字节）。"
                f"用它训练或评估，得到的准确率没有意义。{_redo_advice(path)}"
            )
        fresh[key] = value
    if fresh:
        _remember(fresh)


BLANK_LIMIT = 10   # 真实的 MNIST / Fashion-MNIST 里没有全黑的图；多于这么多张全黑的图说明文件内容被清零了


def _check_blank(images: torch.Tensor, path: Path, info: DatasetInfo) -> None:
    blank = torch.nonzero(images.flatten(1).amax(1) == 0).flatten()
    if len(blank) > BLANK_LIMIT:
        raise CorruptDataError(
            f"数据文件 {path} 里有 {len(blank)} 张全黑的图（第一张是第 {int(blank[0])} 张）：文件内容被清零了"
            f"（例如云盘只同步了占位文件、rsync --inplace 中途失败），真实的 {info.name} 里没有这样的图。\n{_redo_advice(path)}"
        )
