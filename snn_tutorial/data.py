"""数据层：数据目录、MNIST/Fashion-MNIST 的加载与校验、快速张量批次与 DataLoader。

数据目录的优先级：显式参数 > 环境变量 SNN_DATA_DIR > 仓库下的 data/。
真实用户联网时会自动下载；离线时报错会说明把哪四个文件放到哪里。
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets, transforms

DATA_ENV = "SNN_DATA_DIR"

# 四个原始文件及其解压后的字节数（MNIST 与 Fashion-MNIST 相同）
ALL_FILES = (
    ("train-images-idx3-ubyte", 47_040_016),
    ("train-labels-idx1-ubyte", 60_008),
    ("t10k-images-idx3-ubyte", 7_840_016),
    ("t10k-labels-idx1-ubyte", 10_008),
)


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


class DataError(RuntimeError):
    """数据相关错误的基类，消息为中文并说明如何处理。"""


class DataPathError(DataError):
    """数据目录路径不对。"""


class DataNotFoundError(DataError):
    """数据文件不存在，且无法下载。"""


class CorruptDataError(DataError):
    """数据文件被截断或已损坏。"""


def dataset_info(name: str) -> DatasetInfo:
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


def _check_root(root: Path, source: str, info: DatasetInfo) -> None:
    """尽早发现常见的路径错误：目录不存在、指向了文件、多写了 MNIST/raw。"""
    if source != "默认" and not root.exists():
        raise DataPathError(
            f"数据目录不存在：{root}（来自{source}）。\n"
            f"请检查拼写；若想把数据下载到这里，先创建该目录。"
            f"数据目录应是 {info.folder}/raw/ 的上一级，例如 data/，而不是 data/{info.folder}/raw/。"
        )
    if root.exists() and not root.is_dir():
        raise DataPathError(f"数据目录 {root}（来自{source}）是一个文件，不是目录。请指向包含 {info.folder}/ 的目录。")
    names = [name for name, _ in ALL_FILES]
    for depth, candidate in ((2, root), (1, root / "raw")):
        if any((candidate / n).exists() or (candidate / f"{n}.gz").exists() for n in names):
            parent = root.parents[depth - 1] if depth == 2 else root.parent
            raise DataPathError(
                f"数据目录设置得太深了：{root} 里直接放着原始文件。\n"
                f"请把数据目录设为 {parent}（程序会在其下寻找 {info.folder}/raw/）。"
            )


def _missing_message(raw_dir: Path, info: DatasetInfo, missing: list[str], reason: str) -> str:
    files = "\n".join(f"  - {name}（或 {name}.gz）" for name, _ in ALL_FILES)
    return (
        f"找不到 {info.name} 的数据文件 {', '.join(missing)}，且{reason}。\n"
        f"处理办法：\n"
        f"1. 联网后重新运行，程序会自动下载；\n"
        f"2. 或者在能上网的机器上下载这四个文件，放到 {raw_dir}/ 下：\n{files}\n"
        f"3. 若数据已在别处，设置环境变量 {DATA_ENV}=那个目录（{info.folder}/raw/ 的上一级），"
        f"或在代码中传入 root=...，命令行传 --data-dir ...。"
    )


def _check_files(raw_dir: Path) -> None:
    """按文件大小检查四个文件是否被截断（torchvision 需要四个文件都在）。"""
    for name, size in ALL_FILES:
        path = raw_dir / name
        actual = path.stat().st_size
        if actual != size:
            raise CorruptDataError(
                f"数据文件不完整或已损坏：{path}\n"
                f"应有 {size} 字节，实际 {actual} 字节（下载中断或复制不完整）。\n"
                f"请删除这个文件（同目录下若有 {name}.gz 也一并删除），然后重新运行以重新下载，或重新复制完整的文件。"
            )


def load_raw(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """读入整个数据集，返回 (图像 uint8 [N,1,28,28], 标签 int64 [N])。"""
    info = dataset_info(dataset)
    if info.name == "mnist-sample":
        x, y = load_sample()
        return (x[:SAMPLE_TRAIN], y[:SAMPLE_TRAIN]) if train else (x[SAMPLE_TRAIN:], y[SAMPLE_TRAIN:])
    root_path, source = resolve_data_root(root)
    _check_root(root_path, source, info)
    raw_dir = root_path / info.folder / "raw"
    missing = [name for name, _ in ALL_FILES if not (raw_dir / name).exists()]
    if missing:
        if not download:
            raise DataNotFoundError(_missing_message(raw_dir, info, missing, "未允许下载（download=False）"))
        try:
            info.torchvision_class(str(root_path), train=train, download=True)
        except Exception as err:  # 网络错误的类型很多：URLError、RuntimeError、OSError……
            raise DataNotFoundError(
                _missing_message(raw_dir, info, missing, f"自动下载失败（{type(err).__name__}，可能没有网络或被防火墙拦截）")
            ) from err
    _check_files(raw_dir)
    try:
        ds = info.torchvision_class(str(root_path), train=train, download=False)
    except Exception as err:
        raise CorruptDataError(
            f"无法解析 {raw_dir} 下的数据文件（{err}）。请删除这些文件后重新下载。"
        ) from err
    return ds.data.unsqueeze(1).contiguous(), ds.targets.long()


def normalize(images: torch.Tensor, dataset: str = "mnist") -> torch.Tensor:
    """uint8 图像 → 缩放到 [0,1] 再标准化的 float32 张量。"""
    info = dataset_info(dataset)
    return (images.float().div(255.0) - info.mean) / info.std


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


class TensorBatches:
    """把整个数据集作为张量放在内存（或 GPU）里，按批产出标准化后的 (x, y)。

    不做逐样本的 PIL 变换，也不需要工作进程，在 Windows 上同样可用。
    每次迭代自动换一个可复现的打乱顺序（种子 = seed + epoch）；rank/world_size 用于多进程时切分数据：
    pad=True（训练用）像 DistributedSampler 一样补齐，使各进程步数相同；pad=False（评估用）不重复任何样本。
    """

    def __init__(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        batch_size: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        dataset: str = "mnist",
        device: str | torch.device = "cpu",
        drop_last: bool = False,
        max_shift: int = 0,
        rank: int = 0,
        world_size: int = 1,
        pad: bool = True,
    ):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError("images 应为 uint8 张量 [N, C, H, W]")
        if len(images) != len(labels):
            raise ValueError(f"图像数 {len(images)} 与标签数 {len(labels)} 不一致")
        self.device = torch.device(device)
        self.x = normalize(images, dataset).to(self.device)
        self.y = labels.long().to(self.device)
        self.batch_size = int(batch_size)
        self.shuffle, self.seed, self.drop_last = shuffle, seed, drop_last
        self.max_shift = max_shift
        self.fill = float(normalize(torch.zeros(1, dtype=torch.uint8), dataset))  # 背景像素标准化后的值
        self.rank, self.world_size, self.pad = rank, world_size, pad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _indices(self) -> torch.Tensor:
        n = len(self.y)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + self.epoch))
        else:
            order = torch.arange(n)
        if self.world_size > 1:  # 与 DistributedSampler 相同：（训练时）补齐到能整除，再隔 world_size 取一个
            if self.pad:
                per_rank = -(-n // self.world_size)
                order = torch.cat([order, order[: per_rank * self.world_size - n]])
            order = order[self.rank :: self.world_size]
        return order

    def __len__(self) -> int:
        n = len(self.y)
        if self.world_size > 1:  # 本进程分到的样本数，不必真的生成一次打乱顺序
            n = -(-n // self.world_size) if self.pad else len(range(self.rank, n, self.world_size))
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = self._indices().to(self.device)
        gen = torch.Generator().manual_seed(10_007 * (self.seed + 1) + self.epoch)
        self.epoch += 1
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            idx = order[start : start + self.batch_size]
            x = self.x[idx]
            if self.max_shift:
                x = random_shift(x, self.max_shift, self.fill, gen)
            yield x, self.y[idx]


def tensor_batches(
    dataset: str = "mnist",
    train: bool = True,
    root: str | os.PathLike | None = None,
    limit: int | None = None,
    **kwargs,
) -> TensorBatches:
    """加载数据集并包装成 TensorBatches；limit 只取前 limit 个样本（快速模式用）。"""
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
    """标准的 torchvision 数据集（逐样本 ToTensor + Normalize），用于讲解 DataLoader。"""
    info = dataset_info(dataset)
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
    """torch.utils.data.DataLoader 版本；num_workers 默认为 0，Windows 上无需 if __name__ == '__main__'。"""
    ds = torchvision_dataset(dataset, train=train, root=root)
    return torch.utils.data.DataLoader(
        ds, batch_size=batch_size, shuffle=train, num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed), **kwargs,
    )


# ---------------------------------------------------------------- 随包附带的小样本
SAMPLE_FILE = Path(__file__).resolve().parent / "assets" / "mnist_sample.npz"
SAMPLE_PER_CLASS = 100
SAMPLE_TRAIN = 800  # 当作数据集 "mnist-sample" 使用时，前 800 张为训练集


def build_sample(root: str | os.PathLike | None = None, out: Path = SAMPLE_FILE, per_class: int = SAMPLE_PER_CLASS) -> Path:
    """从 MNIST 测试集中按原顺序取每类前 per_class 张，写成压缩的 npz（离线演示与单元测试用）。

    重新生成：python -m snn_tutorial.data --build-sample --data-dir 数据目录
    """
    import numpy as np

    images, labels = load_raw("mnist", train=False, root=root, download=False)
    keep = torch.cat([torch.nonzero(labels == c).flatten()[:per_class] for c in range(10)]).sort().values
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out, images=images[keep].numpy(), labels=labels[keep].numpy().astype("uint8"),
                        test_index=keep.numpy().astype("int32"))
    return out


def load_sample() -> tuple[torch.Tensor, torch.Tensor]:
    """随包附带的 MNIST 小样本：(图像 uint8 [1000,1,28,28], 标签 int64 [1000])，每类 100 张。

    来自 MNIST 测试集（Yann LeCun、Corinna Cortes、Christopher J.C. Burges，CC BY-SA 3.0）。
    """
    import numpy as np

    with np.load(SAMPLE_FILE, allow_pickle=False) as f:
        return torch.from_numpy(f["images"].copy()), torch.from_numpy(f["labels"].astype("int64"))


def _main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="数据工具：重新生成随包附带的 MNIST 小样本。")
    parser.add_argument("--build-sample", action="store_true", help="从 MNIST 测试集重新生成小样本")
    parser.add_argument("--data-dir", default=None, help=f"数据目录（默认：环境变量 {DATA_ENV}，否则仓库下的 data/）")
    args = parser.parse_args(argv)
    if args.build_sample:
        print(f"已写入 {build_sample(args.data_dir)}")
    else:
        parser.print_help()


if __name__ == "__main__":
    _main()
