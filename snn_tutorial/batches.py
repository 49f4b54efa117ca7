"""内存里的数据：标准化、GPU 上也能跑的数据增强、按轮洗牌的张量批次、验证集的划分，以及 torchvision 的 DataLoader。"""

from __future__ import annotations

import math
import os

import torch
from torchvision import transforms

from . import validate
from .data_sources import dataset_info, resolve_data_root
from .raw_files import load_raw
from .runtime import SEED_MAX
from .sample import SAMPLE_TRAIN, load_sample

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
        validate.flag("train", train)
        x, y = load_sample()
        self.data, self.targets = (x[:SAMPLE_TRAIN], y[:SAMPLE_TRAIN]) if train else (x[SAMPLE_TRAIN:], y[SAMPLE_TRAIN:])

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return normalize(self.data[index], "mnist-sample"), int(self.targets[index])
