"""数据从哪里来：支持的数据集及其元信息、数据目录的确定、数据相关的错误类型。

数据目录的优先级：显式参数 > 环境变量 SNN_DATA_DIR > 仓库下的 data/。
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from torchvision import datasets

from .errors import TutorialError

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
