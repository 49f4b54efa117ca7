"""成对 STDP（pair-based spike-timing-dependent plasticity）的迹写法，从零实现，外加权重归一化。

约定与 SpikingJelly 2.0 的 learning.STDPLearner 相同：迹每步减去自身的 1/τ 再加上本步的脉冲，
权重增量用加上本步脉冲之后的迹计算（tests/test_stdp.py 逐位核对）。时间以时间步计。
"""

from __future__ import annotations

import functools
import math

import torch


def _check_tau(**taus) -> None:
    for name, tau in taus.items():
        if isinstance(tau, bool) or not isinstance(tau, (int, float)) or not math.isfinite(tau) or tau < 1:
            raise ValueError(f"{name} 应为 ≥ 1 的有限数（单位：时间步），收到 {tau!r}")



# ---------------------------------------------------------------- 成对 STDP 的迹写法

def trace_step(trace: torch.Tensor, spikes: torch.Tensor, tau: float) -> torch.Tensor:
    """迹的一步：衰减 1/τ，再加上本步的脉冲（与 SpikingJelly 的写法逐位相同）。"""
    return trace - trace / tau + spikes


def stdp_step(pre, post, traces, *, tau_pre, tau_post, eta_pre=1.0, eta_post=1.0):
    """一个时间步的权重增量（逐步写法，用来与 STDPLearner 逐位核对）。

    pre [B, I]、post [B, O] 是本步的脉冲；traces = (突触前迹 [B, I], 突触后迹 [B, O])。
    Δw[o, i] = η_post · Σ_b post[b, o]·迹_pre[b, i] − η_pre · Σ_b 迹_post[b, o]·pre[b, i]（对批求和，不取平均）。
    返回 (Δw [O, I], 新的迹)。
    """
    _check_tau(tau_pre=tau_pre, tau_post=tau_post)
    trace_pre = trace_step(traces[0], pre, tau_pre)
    trace_post = trace_step(traces[1], post, tau_post)
    depress = -eta_pre * (trace_post.T @ pre)
    potentiate = eta_post * (post.T @ trace_pre)
    return depress + potentiate, (trace_pre, trace_post)


def traces(spikes: torch.Tensor, tau: float) -> torch.Tensor:
    """整段脉冲 [T, ...] 的迹 [T, ...]（从 0 开始）。"""
    out, trace = torch.empty_like(spikes), torch.zeros_like(spikes[0])
    for t in range(spikes.shape[0]):
        trace = trace_step(trace, spikes[t], tau)
        out[t] = trace
    return out


def stdp_delta(pre, post, *, tau_pre, tau_post, eta_pre=1.0, eta_post=1.0) -> torch.Tensor:
    """整段脉冲 pre [T, B, I]、post [T, B, O] 的权重增量之和 [O, I]，等于逐步调用 stdp_step 再相加（只差浮点舍入）。

    换个求和次序：突触前脉冲在 t 时刻带来的减弱 η_pre·迹_post(t)，记到引起它的每个突触后脉冲 s（s ≤ t）名下，
    于是 Δw = Σ_(s,b) post[s, b]ᵀ · (K[s] @ pre[:, b])，其中 a = 1 − 1/τ，
    K[s, t] = η_post·a_pre^(s−t)（t ≤ s，增强） − η_pre·a_post^(t−s)（t ≥ s，减弱）。
    突触后脉冲很稀疏，只需对有脉冲的 (s, b) 做乘法，比逐步更新两条迹快得多。
    """
    _check_tau(tau_pre=tau_pre, tau_post=tau_post)
    kernel = _stdp_kernel(pre.shape[0], float(tau_pre), float(tau_post), float(eta_pre), float(eta_post)).to(pre.dtype)
    rows = post.sum(2).nonzero()    # 有突触后脉冲的 (s, b)
    delta = torch.zeros(post.shape[2], pre.shape[2], dtype=pre.dtype)
    for b in rows[:, 1].unique().tolist():
        s = rows[rows[:, 1] == b, 0]
        delta += post[s, b].T @ (kernel[s] @ pre[:, b])
    return delta


@functools.lru_cache(maxsize=8)
def _stdp_kernel(steps: int, tau_pre: float, tau_post: float, eta_pre: float, eta_post: float) -> torch.Tensor:
    k = torch.arange(steps, dtype=torch.float64)
    lag = k[:, None] - k[None, :]   # s − t
    return (eta_post * torch.where(lag >= 0, (1 - 1 / tau_pre) ** lag.clamp(min=0), 0.0)
            - eta_pre * torch.where(lag <= 0, (1 - 1 / tau_post) ** (-lag).clamp(min=0), 0.0))


def stdp_window(delta_t: torch.Tensor, *, tau_pre, tau_post, eta_pre=1.0, eta_post=1.0) -> torch.Tensor:
    """一对脉冲（Δt = t_post − t_pre，单位：步）的理论权重变化。

    离散的迹每步乘 a = 1 − 1/τ，相当于时间常数 τ' = −1/ln(1 − 1/τ) 的指数衰减：
    Δt > 0：η_post·exp(−Δt/τ'_pre)；Δt < 0：−η_pre·exp(Δt/τ'_post)；Δt = 0：两项都有（同一步里先更新迹）。
    """
    _check_tau(tau_pre=tau_pre, tau_post=tau_post)
    dt = delta_t.double()
    tau_p, tau_m = -1 / math.log(1 - 1 / tau_pre), -1 / math.log(1 - 1 / tau_post)
    ltp = torch.where(dt >= 0, eta_post * torch.exp(-dt.clamp(min=0) / tau_p), 0.0)
    ltd = torch.where(dt <= 0, eta_pre * torch.exp(dt.clamp(max=0) / tau_m), 0.0)
    return ltp - ltd


def project_weights(w: torch.Tensor, w_sum: float, w_max: float) -> torch.Tensor:
    """每行（一个神经元的输入权重）乘同一个系数 c，超过 w_max 的截到 w_max，使行和恰为 w_sum。

    多数时候乘一个系数就够了；有元素超出上界的行，先乘再截断会让行和变小，所以解 Σ min(c·w, w_max) = w_sum：
    按从大到小排序，依次假设前 k 个被截断。全为 0 的行改为均匀分布；
    非零权重太少、全部截到 w_max 也凑不够 w_sum 时，只能全部截到 w_max。
    """
    w = w.clamp(min=0)
    w = torch.where((w.sum(1) == 0)[:, None], torch.full_like(w, w_sum / w.shape[1]), w)
    out = w * (w_sum / w.sum(1, keepdim=True))
    over = (out > w_max).any(1)
    if over.any():
        out[over] = _water_fill(w[over], w_sum, w_max)
    return out


def _water_fill(w: torch.Tensor, w_sum: float, w_max: float) -> torch.Tensor:
    ws = w.sort(dim=1, descending=True).values
    top = torch.cat([torch.zeros_like(ws[:, :1]), ws.cumsum(1)[:, :-1]], 1)   # 前 k 个之和，k = 0 … I−1
    rest = w.sum(1, keepdim=True) - top
    c = (w_sum - torch.arange(w.shape[1], dtype=w.dtype) * w_max) / rest.clamp(min=1e-30)
    ok = (c * ws <= w_max) & (rest > 0) & (ws > 0)
    first = torch.where(ok.any(1), ok.int().argmax(1), w.shape[1] - 1)
    scale = torch.where(ok.any(1), c.gather(1, first[:, None]).squeeze(1), torch.full_like(w[:, 0], math.inf))
    return (w * scale[:, None]).clamp(max=w_max)
