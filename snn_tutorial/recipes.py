"""训练配方：每个模型一份不可变的 Recipe（轮数、学习率、批大小、学习率策略、数据增强）。

命令行（python -m snn_tutorial.train）、bench、测试与笔记本用的是同一份 RECIPES；改动配方只改这里。
调用方不逐项拆开配方：recipe.train_batches(...) 建好训练批次（批大小与数据增强取自配方），
recipe.fit(...) 按配方训练（轮数、学习率、策略取自配方）；要改某一项用 recipe.replace(epochs=2, max_shift=0)。
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from . import data, training
from .validate import int_at_least, int_between, positive_real, real_between

MAX_SHIFT = 8  # MNIST 的数字在 28×28 图像中央约 20×20 的区域里，平移再多就会把笔画大量移出画面
MAX_ROTATE = 45  # 度；转得再多，6 与 9 之类的数字就分不清了
MAX_SCALE = 0.5  # 缩放到 0.5 … 1.5 倍以内
AUGMENT = ("max_shift", "max_rotate", "max_scale")
SCHEDULES = ("cosine", "none")


@dataclass(frozen=True)
class Recipe:
    """一个模型的训练配方。max_shift / max_rotate / max_scale 是训练时的随机平移（像素）、旋转（度）、缩放（1 ± 倍数）。"""

    epochs: int
    lr: float
    batch_size: int
    schedule: str = "cosine"
    max_shift: int = 0
    max_rotate: float = 0.0
    max_scale: float = 0.0

    def __post_init__(self):
        values = {"epochs": int_at_least("epochs", self.epochs, 1), "lr": positive_real("学习率 lr", self.lr),
                  "batch_size": int_at_least("batch_size", self.batch_size, 1),
                  "max_shift": int_between("max_shift", self.max_shift, 0, MAX_SHIFT),
                  "max_rotate": real_between("max_rotate", self.max_rotate, 0, MAX_ROTATE),
                  "max_scale": real_between("max_scale", self.max_scale, 0, MAX_SCALE)}
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule 应为 {' 或 '.join(map(repr, SCHEDULES))}，收到 {self.schedule!r}")
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def augment(self) -> dict:
        """数据增强的三个量（传给 data.TensorBatches）。"""
        return {k: getattr(self, k) for k in AUGMENT}

    def replace(self, **changes) -> "Recipe":
        """改几项，得到一份新配方（原配方不变）。值为 None 的项不改（命令行没给的参数）。"""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        """配方写成字典：数据增强只列出不为 0 的项（与早先的写法一致）。"""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if f.name not in AUGMENT or getattr(self, f.name)}

    def describe_augment(self) -> str:
        return describe_augment(**self.augment)

    def train_batches(self, images, labels, *, world_size: int = 1, **kwargs) -> data.TensorBatches:
        """训练用的批次：批大小（多进程时每个进程分到 1/world_size）与数据增强取自配方；
        其余参数（seed、device、dataset、rank……）原样传给 data.TensorBatches。"""
        return data.TensorBatches(images, labels, batch_size=self.batch_size // world_size, world_size=world_size,
                                  **self.augment, **kwargs)

    def fit(self, model, train_batches, eval_batches, *, epochs: int | None = None, **kwargs) -> training.History:
        """按配方训练：轮数（epochs 给出时用它）、学习率与学习率策略取自配方；其余参数原样传给 training.fit。"""
        return training.fit(model, train_batches, eval_batches, epochs=epochs or self.epochs, lr=self.lr,
                            schedule=self.schedule, **kwargs)


def describe_augment(max_shift: float = 0, max_rotate: float = 0, max_scale: float = 0) -> str:
    """数据增强的一句话说明，例如“随机平移至多 2 像素、旋转至多 10°、缩放 1 ± 0.1 倍”。"""
    parts = [f"平移至多 {max_shift:g} 像素"] if max_shift else []
    parts += [f"旋转至多 {max_rotate:g}°"] if max_rotate else []
    parts += [f"缩放 1 ± {max_scale:g} 倍"] if max_scale else []
    return "随机" + "、".join(parts) if parts else "不做数据增强"


RECIPES = {  # 每个模型的默认训练配方（怎样在验证集上选出来的，见网页版的“实验记录”）
    "csnn": Recipe(epochs=30, lr=2e-3, batch_size=128, schedule="cosine", max_shift=2),
    "ann": Recipe(epochs=12, lr=2e-3, batch_size=64, schedule="cosine"),
    "original": Recipe(epochs=2, lr=0.01, batch_size=512, schedule="none"),
}
# 最快到 99% 的配方（bench）：默认配方只改两项，轮数少、不做平移增强
FAST = RECIPES["csnn"].replace(epochs=2, max_shift=0)


def recipe_for(model: str) -> Recipe:
    if model not in RECIPES:
        raise ValueError(f"未知模型 {model!r}，可选：{', '.join(RECIPES)}")
    return RECIPES[model]
