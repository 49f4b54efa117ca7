"""模型配置：不可变的数据类（frozen dataclass），构造时校验。模型、检查点、命令行用的都是它们。

to_dict() 是写进检查点的样子（通道数写成列表）。OPTIONAL 里是后来加的字段：取默认值时不写出来，
所以旧检查点（没有这些字段）照常加载，新检查点在默认设置下也与旧的一样。加字段时把它列进 OPTIONAL 即可。
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

from .neurons import neuron_kind
from .validate import int_at_least, is_real

# 结构参数的上限：远大于本教程用到的值（T 4–30、隐藏层 256、通道 32/64），又挡住会让训练卡住或耗尽内存的值
# （例如 T = 100000 一批也跑不完；通道数上百万要几百 GB 内存）。命令行与加载检查点时都按它检查。
LIMITS = {"T": 256, "hidden": 8192, "channels": 1024, "vote": 100}
LIMIT_REASON = "；再大的值会让一步训练慢到像卡住、或耗尽内存"
POOLS = ("max", "avg")


def count(name: str, value, limit: str | None = None) -> int:
    """结构参数（通道数、神经元数、时间步数……）须为 ≥ 1 的整数，且不超过 LIMITS 里的上限。"""
    value = int_at_least(name, value, 1, verb="须为")
    maximum = LIMITS.get(limit or name)
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} 须为 1 到 {maximum} 之间的整数，收到 {value!r}{LIMIT_REASON}")
    return value


def channels_pair(value) -> tuple[int, int]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ValueError(f"channels 须为两个 ≥ 1 的整数（两层卷积的通道数），收到 {value!r}")
    return count("channels[0]", value[0], "channels"), count("channels[1]", value[1], "channels")


def tau_value(value) -> float:
    """LIF 的膜时间常数须为大于 1 的有限数（每步衰减 1/tau 须小于 1；tau 为无穷大时膜电位不再衰减，不是 LIF）。"""
    if not is_real(value) or not 1 < value < float("inf"):
        raise ValueError(f"tau 须为大于 1 的有限数，收到 {value!r}")
    return float(value)


def pool_name(value) -> str:
    if not isinstance(value, str) or value not in POOLS:
        raise ValueError(f"pool 须为 {' 或 '.join(map(repr, POOLS))}，收到 {value!r}")
    return value


class _Config:
    OPTIONAL: ClassVar[tuple[str, ...]] = ()

    def _set(self, **values) -> None:
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def to_dict(self) -> dict:
        """写进检查点的配置：通道数是列表；OPTIONAL 里的字段取默认值时不写。"""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in self.OPTIONAL and value == f.default:
                continue
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes):
        """改几项，得到一份新配置（原配置不变）。"""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class CSNNConfig(_Config):
    """本教程的卷积 SNN：两层卷积的通道数、隐藏层神经元数、时间步数、膜时间常数、每类投票的神经元数、池化、神经元。"""

    channels: tuple[int, int] = (32, 32)
    hidden: int = 256
    T: int = 4
    tau: float = 2.0
    vote: int = 10
    pool: str = "max"
    neuron: str = "lif"
    OPTIONAL: ClassVar[tuple[str, ...]] = ("pool", "neuron")

    def __post_init__(self):
        self._set(channels=channels_pair(self.channels), hidden=count("hidden", self.hidden), T=count("T", self.T),
                  tau=tau_value(self.tau), vote=count("vote", self.vote), pool=pool_name(self.pool))
        neuron_kind(self.neuron)


@dataclass(frozen=True)
class ANNConfig(_Config):
    """与 CSNN 同结构的 ANN（ReLU 代替 LIF，没有时间步）。"""

    channels: tuple[int, int] = (32, 32)
    hidden: int = 256
    vote: int = 10
    pool: str = "max"
    OPTIONAL: ClassVar[tuple[str, ...]] = ("pool",)

    def __post_init__(self):
        self._set(channels=channels_pair(self.channels), hidden=count("hidden", self.hidden),
                  vote=count("vote", self.vote), pool=pool_name(self.pool))

    @classmethod
    def twin_of(cls, config: dict | CSNNConfig) -> "ANNConfig":
        """与给定 CSNN 配置同结构（通道、隐藏层、投票数相同）的 ANN 配置：参数量与那个 CSNN 完全相同。"""
        if isinstance(config, dict):
            config = CSNNConfig(**config)
        return cls(channels=config.channels, hidden=config.hidden, vote=config.vote)


@dataclass(frozen=True)
class OriginalConfig(_Config):
    """旧教程的网络；fix_loss、conv_every_step 是笔记本 03 的消融开关（默认关闭，即原样的旧模型）。"""

    channels: tuple[int, int] = (32, 32)
    hidden: int = 128
    T: int = 8
    tau: float = 2.0
    fix_loss: bool = False
    conv_every_step: bool = False

    def __post_init__(self):
        self._set(channels=channels_pair(self.channels), hidden=count("hidden", self.hidden), T=count("T", self.T),
                  tau=tau_value(self.tau))

    def to_dict(self) -> dict:
        out = super().to_dict()
        if not (self.fix_loss or self.conv_every_step):   # 两个开关都关时都不写；开了一个就两个都写（与旧检查点一致）
            del out["fix_loss"], out["conv_every_step"]
        return out


CONFIGS = {"csnn": CSNNConfig, "ann": ANNConfig, "original": OriginalConfig}
