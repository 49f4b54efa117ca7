"""数据层：数据目录、MNIST/Fashion-MNIST 的加载与校验、快速张量批次与 DataLoader。

数据目录的优先级：显式参数 > 环境变量 SNN_DATA_DIR > 仓库下的 data/。
真实用户联网时会自动下载；离线时报错会说明把哪四个文件放到哪里。
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import math
import os
import stat
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from urllib.error import URLError

import torch
from torchvision import datasets, transforms

from . import validate
from .atomic import atomic_open
from .errors import TutorialError
from .runtime import SEED_MAX, describe_os_error, file_kind, link_problem, writable_dir_problem

DATA_ENV = "SNN_DATA_DIR"

# 四个原始文件及其解压后的字节数（MNIST 与 Fashion-MNIST 相同）
ALL_FILES = (
    ("train-images-idx3-ubyte", 47_040_016),
    ("train-labels-idx1-ubyte", 60_008),
    ("t10k-images-idx3-ubyte", 7_840_016),
    ("t10k-labels-idx1-ubyte", 10_008),
)


# 官方文件解压后的 MD5（MNIST：公开记录的值，与 torchvision 下载、解压出的文件一致）。
# Fashion-MNIST 只有 .gz 的官方 MD5（torchvision 的 FashionMNIST.resources）：有 .gz 时先核对它，再用它解压出的内容核对解压后的文件。
OFFICIAL_MD5 = {
    "MNIST": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
}
CACHE_ENV = "XDG_CACHE_HOME"


@dataclass(frozen=True)
class DatasetInfo:
    """一个数据集的元信息。mean/std 由训练集像素（缩放到 [0,1] 后）算出，笔记本 01 会重新计算核对。"""

    name: str
    torchvision_class: type
    folder: str
    mean: float
    std: float
    classes: tuple[str, ...]


DATASETS = {
    "mnist": DatasetInfo("mnist", datasets.MNIST, "MNIST", 0.1307, 0.3081, tuple(str(i) for i in range(10))),
    # 随包附带的 1000 张小样本：前 800 张当训练集、后 200 张当测试集，离线演示与测试用
    "mnist-sample": DatasetInfo("mnist-sample", datasets.MNIST, "MNIST", 0.1307, 0.3081, tuple(str(i) for i in range(10))),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist", datasets.FashionMNIST, "FashionMNIST", 0.2860, 0.3530,
        ("T恤", "裤子", "套头衫", "连衣裙", "外套", "凉鞋", "衬衫", "运动鞋", "包", "短靴"),
    ),
}


class DataError(TutorialError):
    """数据相关错误的基类，消息为中文并说明如何处理。"""


class DataPathError(DataError):
    """数据目录路径不对。"""


class DataNotFoundError(DataError):
    """数据文件不存在，且无法下载。"""


class CorruptDataError(DataError):
    """数据文件被截断、已损坏，或不是该数据集的文件。"""


class DataPermissionError(DataError):
    """数据文件或目录没有读取（或写入）权限：文件本身可能完好。"""


def dataset_info(name: str) -> DatasetInfo:
    if not isinstance(name, str):
        raise TypeError(f"数据集名应为字符串，例如 'mnist'，收到 {name!r}")
    key = name.strip().lower().replace("_", "-")
    if key == "fashionmnist":
        key = "fashion-mnist"
    if key not in DATASETS:
        raise ValueError(f"未知数据集 {name!r}，可选：{', '.join(DATASETS)}")
    return DATASETS[key]


def repo_root() -> Path:
    """仓库根目录（以可编辑方式安装时）；否则为当前工作目录。"""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "pyproject.toml").exists() else Path.cwd()


def resolve_data_root(root: str | os.PathLike | None = None) -> tuple[Path, str]:
    """返回 (数据目录, 来源)。来源为 "参数"、"环境变量 SNN_DATA_DIR" 或 "默认"。"""
    if root is not None and str(root) != "":
        return Path(root).expanduser(), "参数"
    env = os.environ.get(DATA_ENV, "").strip()
    if env:
        return Path(env).expanduser(), f"环境变量 {DATA_ENV}"
    return repo_root() / "data", "默认"


def display_path(path: str | os.PathLike) -> str:
    """便于展示的路径：在仓库内或其旁边时写成相对仓库根目录的路径，否则把家目录写成 ~。"""
    path = Path(os.path.abspath(path))  # 不解析符号链接：按用户看到的路径来写
    base = Path(os.path.abspath(repo_root()))
    try:
        rel = os.path.relpath(path, base)
    except ValueError:  # Windows 上不同盘符
        rel = None
    if rel is not None and not rel.startswith(os.path.join("..", "..")):
        return Path(rel).as_posix()
    home = Path.home().resolve()
    return "~/" + path.relative_to(home).as_posix() if path.is_relative_to(home) else str(path)


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


def _check_flag(name: str, value) -> None:
    validate.flag(name, value)


def load_raw(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """读入整个数据集，返回 (图像 uint8 [N,1,28,28], 标签 int64 [N])。train=True 为训练集，False 为测试集。"""
    info = dataset_info(dataset)
    _check_flag("train", train)
    _check_flag("download", download)
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


def normalize(images: torch.Tensor, dataset: str = "mnist") -> torch.Tensor:
    """uint8 图像 → 缩放到 [0,1] 再标准化的 float32 张量。"""
    info = dataset_info(dataset)
    return (images.float().div(255.0) - info.mean) / info.std


def _check_count(name: str, value, minimum: int) -> int:
    return validate.int_at_least(name, value, minimum)


def random_shift(x: torch.Tensor, max_shift: int, fill: float, generator: torch.Generator) -> torch.Tensor:
    """每张图独立地随机平移至多 max_shift 个像素，空出的地方用 fill 填充。"""
    if max_shift <= 0:
        return x
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (max_shift,) * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (2, n), generator=generator).to(x.device)
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device))[:, None, :, None]
    cols = (offsets[1][:, None] + torch.arange(w, device=x.device))[:, None, None, :]
    batch = torch.arange(n, device=x.device)[:, None, None, None]
    chan = torch.arange(c, device=x.device)[None, :, None, None]
    return padded[batch, chan, rows, cols]


def random_affine(x: torch.Tensor, max_shift: float, max_rotate: float, max_scale: float, fill: float,
                  generator: torch.Generator) -> torch.Tensor:
    """每张图独立地随机旋转至多 max_rotate 度、缩放到 1 ± max_scale 倍、平移至多 max_shift 像素（双线性插值），
    空出的地方用 fill 填充。三个量各自在范围内均匀抽取；都为 0 时原样返回。"""
    if not (max_shift or max_rotate or max_scale):
        return x
    n, c, h, w = x.shape
    u = torch.rand(4, n, generator=generator).to(x.device) * 2 - 1             # 每张图 4 个 [-1, 1) 的随机数
    angle = u[0] * math.radians(max_rotate)
    scale = 1 + u[1] * max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    # affine_grid 的矩阵把输出坐标映射到输入坐标（坐标归一化到 [-1, 1]，1 个像素 = 2 / 边长）
    theta = torch.stack([torch.stack([cos, -sin, u[2] * max_shift * 2 / w], 1),
                         torch.stack([sin, cos, u[3] * max_shift * 2 / h], 1)], 1).to(x.dtype)
    grid = torch.nn.functional.affine_grid(theta, [n, c, h, w], align_corners=False)
    moved = torch.nn.functional.grid_sample(x - fill, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return moved + fill


def _check_range(name: str, value, low: float, high: float) -> float:
    return validate.real_between(name, value, low, high)


_GOLDEN = 0x9E3779B9   # 2^32 / 黄金分割比，取整


def _mix(seed: int, epoch: int, rank: int = 0) -> int:
    """把 (种子, 轮次, 进程号) 合成一个 32 位的随机数种子（CPU 生成器只用种子的低 32 位）。

    种子相差 1，合成值就相差约 26 亿，所以不同种子的各轮不会撞上同一个洗牌顺序（写成 seed + epoch 时，
    种子 1 的第 e 轮就是种子 0 的第 e + 1 轮）。种子 0、进程 0 时合成值就是 epoch，与早先的写法相同。
    """
    return (seed * _GOLDEN + epoch + rank * _GOLDEN * _GOLDEN) % 2**32


class TensorBatches:
    """把整个数据集作为张量放在内存（或 GPU）里，按批产出标准化后的 (x, y)。

    不做逐样本的 PIL 变换，也不需要工作进程，在 Windows 上同样可用。
    每次迭代自动换一个可复现的打乱顺序（种子由 seed 与轮次合成，见 _mix）；rank/world_size 用于多进程时切分数据：
    pad=True（训练用）像 DistributedSampler 一样补齐，使各进程步数相同；pad=False（评估用）不重复任何样本。
    merge_single=True（默认）：最后一批若只剩 1 张图，就并入前一批（那一批多 1 张）。
    dataset=None：不做标准化，uint8 张量（形状不限于 [N, C, H, W]，例如事件帧 [N, T, 2, H, W] 的计数）按原样存放，
    每批取出时才转成 float32，内存只占 1/4。
    训练时只有 1 张图的批会让 BN 报错（它要用一批里的多个值估计均值和方差）；并入而不是丢掉，每张图仍然都用到。
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        dataset: str | None = "mnist",
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        max_shift: int = 0,
        max_rotate: float = 0.0,
        max_scale: float = 0.0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
        merge_single: bool = True,
    ):
        batch_size = _check_count("batch_size", batch_size, 1)
        max_shift = _check_count("max_shift", max_shift, 0)
        world_size = _check_count("world_size", world_size, 1)
        rank = _check_count("rank", rank, 0)
        if rank >= world_size:
            raise ValueError(f"rank 应小于 world_size（{world_size}），收到 {rank}")
        if not isinstance(images, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise TypeError("images 与 labels 应为张量")
        if images.dtype != torch.uint8 or (images.dim() != 4 if dataset is not None else images.dim() < 2):
            raise ValueError("images 应为 uint8 张量 [N, C, H, W]" if dataset is not None else "images 应为 uint8 张量 [N, ...]")
        max_rotate = _check_range("max_rotate", max_rotate, 0, 180)
        max_scale = _check_range("max_scale", max_scale, 0, 0.9)
        if dataset is None and (max_shift or max_rotate or max_scale):
            raise ValueError("max_shift、max_rotate、max_scale（数据增强）只用于图像数据集，dataset=None 时请设为 0")
        if len(images) != len(labels):
            raise ValueError(f"图像数 {len(images)} 与标签数 {len(labels)} 不一致")
        seed = validate.int_between("seed", seed, 0, SEED_MAX)
        self.device = torch.device(device)
        self.raw = dataset is None
        self.x = (images if self.raw else normalize(images, dataset)).to(self.device)
        self.y = labels.long().to(self.device)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.max_shift, self.max_rotate, self.max_scale = max_shift, max_rotate, max_scale
        self.fill = 0.0 if self.raw else float(normalize(torch.zeros(1, dtype=torch.uint8), dataset))  # 背景像素标准化后的值
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.merge_single = merge_single
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.y)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(_mix(self.seed, self.epoch)))
        else:
            order = torch.arange(n)
        if self.world_size > 1:  # 与 DistributedSampler 相同：（训练时）补齐到能整除，再隔 world_size 取一个
            if self.pad:
                per_rank = -(-n // self.world_size)
                order = torch.cat([order, order[: per_rank * self.world_size - n]])
            order = order[self.rank :: self.world_size]
        return order

    def _starts(self, n: int) -> range:
        """各批在本进程顺序里的起点；最后一批从起点一直取到 stop。"""
        stop = n - n % self.batch_size if self.drop_last else n
        starts = range(0, stop, self.batch_size)
        if self.merge_single and not self.drop_last and self.batch_size > 1 and n > 1 and n % self.batch_size == 1:
            starts = starts[:-1]  # 只剩 1 张图的最后一批并入前一批
        return starts

    def _local_count(self) -> int:
        n = len(self.y)
        if self.world_size > 1:  # 本进程分到的样本数，不必真的生成一次打乱顺序
            n = -(-n // self.world_size) if self.pad else len(range(self.rank, n, self.world_size))
        return n

    def __len__(self) -> int:
        return len(self._starts(self._local_count()))

    def __iter__(self):
        order = self._indices().to(self.device)
        # 增强的随机数：各进程不同（0 号进程与单进程相同），否则每个进程的第 k 张图会得到同样的变换
        gen = torch.Generator().manual_seed(_mix(10_007 * (self.seed + 1) + self.epoch, 0, self.rank))
        self.epoch += 1
        starts = self._starts(len(order))
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for i, start in enumerate(starts):
            end = start + self.batch_size if i + 1 < len(starts) else stop
            idx = order[start:end]
            x = self.x[idx].float() if self.raw else self.x[idx]
            if self.max_rotate or self.max_scale:   # 旋转、缩放时平移也用插值（不限于整像素）
                x = random_affine(x, self.max_shift, self.max_rotate, self.max_scale, self.fill, gen)
            elif self.max_shift:
                x = random_shift(x, self.max_shift, self.fill, gen)
            yield x, self.y[idx]


VALIDATION_SEED = 0  # 验证集的划分与训练的随机种子无关：不同的 --seed 用的是同一份验证集
VALIDATION_SPLITS = ("random", "tail")


def split_validation(images: torch.Tensor, labels: torch.Tensor, n_val: int, seed: int = VALIDATION_SEED,
                     how: str = "random"):
    """从训练集里留出 n_val 个样本作验证集（用来选超参数，测试集只在最后用一次）。

    how="random"（默认）：按固定种子随机留出；how="tail"：留出最后 n_val 个（连续的一段，顺序不变）。
    MNIST 训练集里相邻的图常出自同一个书写者，连续的一段与其余部分共享的书写者比随机抽取的少。
    返回 (训练图像, 训练标签, 验证图像, 验证标签)；训练部分至少要剩 2 个样本。
    """
    _check_count("n_val", n_val, 1)
    if how not in VALIDATION_SPLITS:
        raise ValueError(f"how 应为 {' 或 '.join(map(repr, VALIDATION_SPLITS))}，收到 {how!r}")
    if n_val > len(labels) - 2:
        raise ValueError(f"验证集 {n_val} 个样本太多：训练集只有 {len(labels)} 个，留出后至少要剩 2 个用来训练")
    if how == "tail":
        n = len(labels) - n_val
        return images[:n], labels[:n], images[n:], labels[n:]
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    return images[train], labels[train], images[val], labels[val]


def tensor_batches(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    **kwargs,
) -> TensorBatches:
    """加载数据集并包装成 TensorBatches；limit 只取前 limit 个样本（快速模式用）。"""
    if limit is not None:
        _check_count("limit", limit, 1)
    images, labels = load_raw(dataset, train=train, root=root)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    kwargs.setdefault("shuffle", train)
    return TensorBatches(images, labels, dataset=dataset, **kwargs)


def torchvision_dataset(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
):
    """标准的 torchvision 数据集（逐样本 ToTensor + Normalize），用于讲解 DataLoader。

    "mnist-sample" 返回随包小样本的等价数据集（同样的逐样本变换），不读数据目录。
    """
    info = dataset_info(dataset)
    if info.name == "mnist-sample":
        return SampleDataset(train)
    load_raw(dataset, train=train, root=root, download=download)  # 先做检查，报错更清楚
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((info.mean,), (info.std,))])
    return info.torchvision_class(str(resolve_data_root(root)[0]), train=train, download=False, transform=tf)


def dataloader(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    batch_size: int = 64,
    num_workers: int = 0,
    seed: int = 0,
    **kwargs,
) -> torch.utils.data.DataLoader:
    """torch.utils.data.DataLoader 版本；num_workers 默认为 0，Windows 上无需 if __name__ == '__main__'。

    训练集的最后一批若只剩 1 张图，就丢掉它（drop_last=True，只丢这 1 张；BN 在训练时不接受 1 张图的批）。
    """
    _check_count("batch_size", batch_size, 1)
    ds = torchvision_dataset(dataset, train=train, root=root)
    if train and batch_size > 1 and len(ds) % batch_size == 1:
        kwargs.setdefault("drop_last", True)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=train, num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed), **kwargs,
    )


class SampleDataset(torch.utils.data.Dataset):
    """随包小样本的逐样本数据集：返回 (标准化后的 float32 图像 [1,28,28], 整数标签)，与 torchvision 版一致。"""

    def __init__(self, train: bool = True):
        _check_flag("train", train)
        x, y = load_sample()
        self.data, self.targets = (x[:SAMPLE_TRAIN], y[:SAMPLE_TRAIN]) if train else (x[SAMPLE_TRAIN:], y[SAMPLE_TRAIN:])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return normalize(self.data[index], "mnist-sample"), int(self.targets[index])


# ---------------------------------------------------------------- 随包附带的小样本
SAMPLE_FILE = Path(__file__).resolve().parent / "assets" / "mnist_sample.npz"
SAMPLE_PER_CLASS = 100
SAMPLE_TRAIN = 800  # 当作数据集 "mnist-sample" 使用时，前 800 张为训练集


def build_sample(root: str | os.PathLike | None = None, out: str | os.PathLike | None = None, per_class: int = SAMPLE_PER_CLASS,
                 download: bool = True) -> Path:
    """从 MNIST 测试集中按原顺序取每类前 per_class 张，写成压缩的 npz（离线演示与单元测试用）。

    重新生成：python -m snn_tutorial.data --build-sample --data-dir 数据目录
    先确认 out 所在的目录可写，再读数据；写到临时文件后才替换 out，中途失败时原来的样本保持不变。
    """
    import numpy as np

    out = Path(out) if out is not None else SAMPLE_FILE
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


def _sample_broken(reason: str) -> CorruptDataError:
    return CorruptDataError(
        f"随包附带的小样本 {SAMPLE_FILE} 已损坏或不完整（{reason}）。\n"
        f"请恢复它：在仓库里运行 git checkout -- snn_tutorial/assets/{SAMPLE_FILE.name}，或重新安装本教程的包；"
        f"有完整的 MNIST 时也可以用 python -m snn_tutorial.data --build-sample 重新生成。"
    )


def load_sample() -> tuple[torch.Tensor, torch.Tensor]:
    """随包附带的 MNIST 小样本：(图像 uint8 [1000,1,28,28], 标签 int64 [1000])，每类 100 张。

    来自 MNIST 测试集（Yann LeCun、Corinna Cortes、Christopher J.C. Burges，CC BY-SA 3.0）。
    文件缺失、被截断或内容不对时抛出中文的 CorruptDataError（说明怎样恢复），没有读权限时抛出 DataPermissionError。
    """
    import numpy as np

    try:
        with np.load(SAMPLE_FILE, allow_pickle=False) as f:
            images, labels = f["images"].copy(), f["labels"]
    except PermissionError as err:
        raise DataPermissionError(f"没有权限读取随包附带的小样本 {SAMPLE_FILE}（{describe_os_error(err, reading=True)}）。"
                                  f"文件本身可能完好：请检查它的权限（例如 ls -l）。") from err
    except FileNotFoundError as err:
        raise _sample_broken("文件不存在") from err
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        # 截断或被改写的 .npz：numpy 会报 BadZipFile、EOFError，或建议 allow_pickle=True（不要照做：那会执行文件里的代码）
        raise _sample_broken(f"{type(err).__name__}") from err
    if (images.dtype != np.uint8 or images.shape[1:] != (1, 28, 28) or labels.shape != (len(images),)
            or len(images) != 10 * SAMPLE_PER_CLASS or labels.max(initial=0) > 9):
        raise _sample_broken(f"内容不对：图像 {images.dtype} {images.shape}，标签 {labels.shape}")
    return torch.from_numpy(images), torch.from_numpy(labels.astype("int64"))


if __name__ == "__main__":
    # python -m snn_tutorial.data --build-sample：命令行在 data_cli 里（数据层本身不导入命令行的模块）
    from snn_tutorial.data_cli import main

    main()
