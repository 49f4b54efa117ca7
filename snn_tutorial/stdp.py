"""STDP（脉冲时间依赖可塑性，spike-timing-dependent plasticity）：不用反向传播、不用标签的学习。

两部分：
1. 成对 STDP（pair-based）的迹（trace）写法，从零实现（在 stdp_rule 里，这里一并导出）。
2. Diehl & Cook (2015) 式的 MNIST 网络：泊松输入 → 兴奋层（侧抑制、自适应阈值、每个神经元的输入权重归一化、
   权重上下界），不用标签训练；训练之后才用训练集图像的标签给每个神经元指定类别，再评估。

与原文的差别（为了在 CPU 上够快）：时间步 1 ms（原文 0.5 ms）；电流型突触，一个输入脉冲让膜电位升高 input_scale × w mV
（原文是电导型）；侧抑制直接从每个兴奋神经元接到其余兴奋神经元（原文经过一层一对一的抑制性神经元）；
两张图之间不模拟 150 ms 的静息，而是把膜电位与迹清零；一批的几张图用同一份权重，整批结束后才改权重、
做归一化（原文每个时间步都改权重，每张图之前归一化）。
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, fields, replace

import torch

from .runtime import SEED_MAX
# 规则本身在 stdp_rule 里；这里一并导出，笔记本只需 from snn_tutorial import stdp
from .stdp_rule import project_weights, stdp_delta, stdp_step, stdp_window, trace_step, traces  # noqa: F401

N_INPUTS = 28 * 28
N_CLASSES = 10


@dataclass(frozen=True)
class STDPConfig:
    """网络与学习规则的全部参数。时间以时间步计，1 步 = 1 ms；电压单位 mV；发放率单位 Hz。"""

    n_neurons: int = 100          # 兴奋神经元个数
    steps: int = 250              # 每张图呈现多少步
    rest_steps: int = 150         # 两张图之间的静息：只用来算自适应阈值的衰减（膜电位与迹直接清零）
    max_rate: float = 63.75       # 像素值 255 对应的泊松发放率（原文：像素值 / 4 Hz）
    rate_boost: float = 32.0      # 兴奋层的脉冲少于 min_spikes 个时，发放率上限加这么多，重新呈现这张图
    min_spikes: int = 5
    max_retries: int = 5          # 最多重新呈现几次
    tau_pre: float = 20.0         # 突触前迹的时间常数
    tau_post: float = 20.0        # 突触后迹的时间常数
    eta_pre: float = 1e-4         # 突触前脉冲到来时：按突触后迹减弱（LTD）
    eta_post: float = 1e-2        # 突触后脉冲发放时：按突触前迹增强（LTP）
    w_max: float = 1.0            # 权重上界（下界是 0）
    w_init: float = 0.3           # 初始权重在 [0, w_init) 上均匀分布
    w_sum: float = 78.4           # 归一化：每个兴奋神经元的输入权重之和
    normalize: bool = True
    # 下面两个数是在验证集上选的（训练集留出的图，见网页版的《STDP 实验记录》）：
    inhibition: float = 100.0     # 侧抑制：一个兴奋神经元发放后，其余兴奋神经元的膜电位下一步降低多少
    input_scale: float = 0.5      # 一个输入脉冲让膜电位升高 input_scale × w mV（原文的电导型突触在 −60 mV 附近约为 0.6）
    theta_plus: float = 0.05      # 自适应阈值：每发放一次，该神经元的阈值升高多少
    tau_theta: float = 1e7        # 自适应阈值的衰减时间常数
    tau_mem: float = 100.0        # 膜时间常数
    v_rest: float = -65.0
    v_reset: float = -60.0
    v_thresh: float = -52.0
    refractory: int = 5           # 不应期（步）
    batch_size: int = 16          # 同时呈现几张图（共用一份权重）
    seed: int = 0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "normalize":
                if not isinstance(value, bool):
                    raise ValueError(f"normalize 应为 True 或 False，收到 {value!r}")
                continue
            if f.type in (int, "int") and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError(f"{f.name} 应为整数，收到 {value!r}")
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{f.name} 应为有限的数，收到 {value!r}")
        low = {"n_neurons": 1, "steps": 1, "batch_size": 1, "tau_pre": 1, "tau_post": 1, "tau_mem": 1, "tau_theta": 1}
        for name, minimum in low.items():  # 时间常数 ≥ 1 步：衰减因子 1 − 1/τ 才不为负（与 SpikingJelly 相同）
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} 应 ≥ {minimum}，收到 {getattr(self, name)!r}")
        for name in ("rest_steps", "rate_boost", "min_spikes", "max_retries", "eta_pre", "eta_post", "inhibition",
                     "theta_plus", "refractory", "max_rate", "w_init", "input_scale"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} 不能为负，收到 {getattr(self, name)!r}")
        if not 0 < self.max_rate <= 1000:
            raise ValueError(f"max_rate 应在 (0, 1000] Hz 之内（每步至多一个脉冲），收到 {self.max_rate!r}")
        if self.w_max <= 0 or self.w_init > self.w_max:
            raise ValueError(f"权重上界 w_max 应为正数且不小于 w_init，收到 w_max={self.w_max!r}、w_init={self.w_init!r}")
        if not 0 < self.w_sum <= N_INPUTS * self.w_max:
            raise ValueError(f"w_sum 应在 0 到 {N_INPUTS} × w_max = {N_INPUTS * self.w_max:g} 之间，收到 {self.w_sum!r}")
        if not self.v_reset < self.v_thresh or not self.v_rest < self.v_thresh:
            raise ValueError(f"静息电位与重置电位都应低于阈值 v_thresh={self.v_thresh!r}")
        if not 0 <= self.seed <= SEED_MAX:
            raise ValueError(f"seed 应为 0 到 {SEED_MAX} 之间的整数，收到 {self.seed!r}")

    def replace(self, **changes) -> "STDPConfig":
        return replace(self, **changes)


def _check_images(images) -> None:
    ok = isinstance(images, torch.Tensor) and images.dtype == torch.uint8 and len(images) > 0
    if not ok or tuple(images.shape[1:]) not in ((1, 28, 28), (28, 28), (N_INPUTS,)):
        what = f"{images.dtype}、形状 {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images 应为至少一张图的 uint8 张量，形状 [M, 1, 28, 28] 或 [M, 784]"
                         f"（data.load_raw 读出的原始像素），收到 {what}")


# ---------------------------------------------------------------- Diehl & Cook 式网络

class DiehlCookNetwork:
    """784 个泊松输入 → n_neurons 个兴奋神经元（LIF，侧抑制，自适应阈值）。只有输入权重会学习。"""

    def __init__(self, config: STDPConfig | None = None):
        if config is not None and not isinstance(config, STDPConfig):
            raise ValueError(f"config 应为 STDPConfig，收到 {type(config).__name__}")
        self.config = cfg = config or STDPConfig()
        self.generator = torch.Generator().manual_seed(cfg.seed)
        w = torch.rand(cfg.n_neurons, N_INPUTS, generator=self.generator) * cfg.w_init
        self.weight = project_weights(w, cfg.w_sum, cfg.w_max) if cfg.normalize else w
        self.theta = torch.zeros(cfg.n_neurons)   # 自适应阈值（在 v_thresh 之上再加多少 mV）
        self.images_seen = 0

    def state_dict(self) -> dict:
        return {"weight": self.weight.clone(), "theta": self.theta.clone(), "images_seen": self.images_seen}

    def load_state_dict(self, state: dict) -> None:
        shape = (self.config.n_neurons, N_INPUTS)
        if tuple(state["weight"].shape) != shape or tuple(state["theta"].shape) != shape[:1]:
            raise ValueError(f"权重形状应为 {shape}、阈值形状应为 {shape[:1]}，收到 {tuple(state['weight'].shape)}、"
                             f"{tuple(state['theta'].shape)}：它们不是这个配置（n_neurons={shape[0]}）训练出来的")
        self.weight, self.theta = state["weight"].float().clone(), state["theta"].float().clone()
        self.images_seen = int(state.get("images_seen", 0))

    def run(self, rates: torch.Tensor, learn: bool):
        """呈现一批图：rates [B, 784]（Hz）。返回 (每个神经元的脉冲数 [B, N], 输入脉冲 [T, B, K], 兴奋层脉冲 [T, B, N],
        模拟了的 K 个像素的下标)：整批都为 0 的像素从不发放，不必模拟。
        learn=True 时阈值在呈现过程中随发放升高（每张图各自一份，呈现完再合并到 self.theta）。"""
        cfg = self.config
        batch, n = rates.shape[0], cfg.n_neurons
        cols = (rates > 0).any(0).nonzero().squeeze(1)
        p = rates[:, cols].clamp(max=1000) / 1000.0   # 每步（1 ms）发放一个脉冲的概率
        pre = (torch.rand(cfg.steps, batch, len(cols), generator=self.generator) < p).float()
        drive = (pre.reshape(cfg.steps * batch, -1) @ self.weight[:, cols].T).reshape(cfg.steps, batch, n) * cfg.input_scale
        v = torch.full((batch, n), cfg.v_rest)
        last = torch.full((batch, n), -math.inf)   # 上次发放的时刻
        threshold = (cfg.v_thresh + self.theta).expand(batch, n).clone()
        post = torch.zeros(cfg.steps, batch, n)
        keep, leak = 1 - 1 / cfg.tau_mem, cfg.v_rest / cfg.tau_mem
        for t in range(cfg.steps):
            current = drive[t]
            if t > 0 and cfg.inhibition:   # 侧抑制：上一步其余神经元的脉冲
                current = current - cfg.inhibition * (post[t - 1].sum(1, keepdim=True) - post[t - 1])
            v.mul_(keep).add_(leak)        # 向静息电位衰减：v += (v_rest − v) / τ
            v.add_(current * (last < t - cfg.refractory))   # 不应期内不接受输入
            spike = v > threshold
            v.masked_fill_(spike, cfg.v_reset)
            last.masked_fill_(spike, t)
            post[t] = spike
            if learn and cfg.theta_plus:
                threshold.add_(post[t], alpha=cfg.theta_plus)
        return post.sum(0), pre, post, cols

    def present(self, images: torch.Tensor, learn: bool) -> torch.Tensor:
        """呈现一批图（uint8 [B, 1, 28, 28] 或 [B, 784]），发放太少的图加大发放率重呈现。返回最后一次呈现的脉冲数 [B, N]。
        learn=True 时按 STDP 改权重（所有呈现的增量相加）、更新自适应阈值、做归一化。
        每张图的突触运算次数（含重呈现）记在 self.last_synops [B]，最后一次呈现时兴奋层的脉冲记在 self.last_spikes [T, B, N]。"""
        _check_images(images)
        cfg = self.config
        pixels = images.reshape(images.shape[0], -1).float() / 255.0
        counts = torch.zeros(pixels.shape[0], cfg.n_neurons)
        todo = torch.arange(pixels.shape[0])
        delta, spikes, presentations = torch.zeros_like(self.weight), torch.zeros(cfg.n_neurons), 0
        synops = torch.zeros(pixels.shape[0])
        self.last_spikes = torch.zeros(cfg.steps, pixels.shape[0], cfg.n_neurons, dtype=torch.bool)
        for attempt in range(cfg.max_retries + 1):
            got, pre, post, cols = self.run(pixels[todo] * (cfg.max_rate + attempt * cfg.rate_boost), learn)
            counts[todo] = got
            self.last_spikes[:, todo] = post.bool()
            # 突触运算：每个输入脉冲送到 N 个兴奋神经元，每个兴奋脉冲抑制其余 N − 1 个（重呈现也算）
            synops[todo] += pre.sum((0, 2)) * cfg.n_neurons + post.sum((0, 2)) * (cfg.n_neurons - 1)
            presentations += len(todo)
            if learn:
                delta[:, cols] += stdp_delta(pre, post, tau_pre=cfg.tau_pre, tau_post=cfg.tau_post,
                                    eta_pre=cfg.eta_pre, eta_post=cfg.eta_post)
                spikes += got.sum(0)
            todo = todo[got.sum(1) < cfg.min_spikes]
            if len(todo) == 0:
                break
        self.last_synops = synops
        if learn:
            keep = math.exp(-presentations * (cfg.steps + cfg.rest_steps) / cfg.tau_theta)
            self.theta = self.theta * keep + cfg.theta_plus * spikes
            w = (self.weight + delta).clamp(0, cfg.w_max)
            self.weight = project_weights(w, cfg.w_sum, cfg.w_max) if cfg.normalize else w
            self.images_seen += pixels.shape[0]
        return counts

    def fit(self, images: torch.Tensor, callback=None, every: int = 0) -> dict:
        """无监督训练：按顺序把 images 呈现一遍（不用标签）。每呈现约 every 张图调用一次 callback(self)。
        返回 {"images", "seconds"（墙钟）, "cpu_seconds"（本进程的 CPU 时间，机器忙时比墙钟可靠）, "images_per_s"}。"""
        _check_images(images)
        if callback is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
            raise ValueError(f"给了 callback 时 every 应为 ≥ 1 的整数，收到 {every!r}")
        bs, start, cpu_start, next_call = self.config.batch_size, time.perf_counter(), time.process_time(), every
        for i in range(0, len(images), bs):
            self.present(images[i:i + bs], learn=True)
            if callback is not None and i + bs >= next_call:
                callback(self)
                next_call += every
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        return {"images": len(images), "seconds": seconds, "cpu_seconds": cpu_seconds,
                "images_per_s": len(images) / max(seconds, 1e-9)}

    @torch.no_grad()
    def responses(self, images: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
        """不学习，只数脉冲：每张图每个神经元的脉冲数 [M, N]（每张图的突触运算次数随后在 self.last_synops [M]）。"""
        _check_images(images)
        counts, synops = [], []
        for i in range(0, len(images), batch_size):
            counts.append(self.present(images[i:i + batch_size], learn=False))
            synops.append(self.last_synops)
        self.last_synops = torch.cat(synops)
        return torch.cat(counts)


    @torch.no_grad()
    def spike_trains(self, images: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
        """不学习：每张图最后一次呈现时兴奋层的脉冲，bool [M, T, N]（对时间求和就是 responses 的脉冲数）。"""
        _check_images(images)
        out = []
        for i in range(0, len(images), batch_size):
            self.present(images[i:i + batch_size], learn=False)
            out.append(self.last_spikes.transpose(0, 1))
        return torch.cat(out)


def assign(counts: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """给每个神经元指定一个类别：它对哪一类图的平均脉冲数最多。从来不发放的神经元记为 −1（不参与投票）。
    counts [M, N] 与 labels [M] 应来自训练集的图像（不要用测试集）。"""
    rates = torch.stack([counts[labels == c].mean(0) if (labels == c).any() else torch.zeros(counts.shape[1])
                         for c in range(N_CLASSES)])
    return torch.where(rates.max(0).values > 0, rates.argmax(0), -1)


def predict(counts: torch.Tensor, assignments: torch.Tensor) -> torch.Tensor:
    """投票：每一类的得分是指定给这一类的神经元的平均脉冲数，取得分最高的类。"""
    votes = torch.zeros(counts.shape[0], N_CLASSES)
    for c in range(N_CLASSES):
        members = assignments == c
        if members.any():
            votes[:, c] = counts[:, members].mean(1)
    return votes.argmax(1)


def accuracy(net: DiehlCookNetwork, images, labels, assignments) -> float:
    return (predict(net.responses(images), assignments) == labels).float().mean().item()
