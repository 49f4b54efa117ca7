"""模拟的 DVS（动态视觉传感器）事件：让静态图像沿三次扫视移动，在对数亮度的变化达到阈值处产生事件。

仿照 N-MNIST 的录制方式（事件相机装在云台上，对着屏幕上的 MNIST 图像做三次扫视），
但这里的输出是“模拟的 DVS 数据”，不是 N-MNIST：没有传感器噪声、不应期、像素间的差异和显示器闪烁；
时间也是离散的（每移动一步一个时间戳，每个像素每步至多一个事件）。

约定（与 SpikingJelly 的 spikingjelly.datasets 相同）：事件是 (t, x, y, p)，t 以微秒计，x 是列、y 是行，
p = 1 为 ON（变亮）、p = 0 为 OFF（变暗）；积分成帧时通道 0 是 OFF、通道 1 是 ON。
"""

from __future__ import annotations

import numpy as np
import torch

from .validate import int_at_least, positive_real

SIZE = 34                                  # 画面边长：28 像素的图像加上两边各 3 像素的移动范围
TRIANGLE = ((0.0, 6.0), (3.0, 0.0), (6.0, 6.0))  # 三次扫视的顶点 (dx, dy)：图像左上角在画面中的位置（像素）
SACCADE_US = 100_000                       # 每次扫视用时（微秒），与 N-MNIST 的约 100 毫秒相当


def _positive_int(name: str, value) -> int:
    return int_at_least(name, value, 1, verb="须为")


def _positive_float(name: str, value) -> float:
    return positive_real(name, value, verb="须为")


def saccade_offsets(steps_per_saccade: int = 10, vertices=TRIANGLE) -> torch.Tensor:
    """三次扫视经过的位置 [K, 2]（dx, dy），K = 3 × steps_per_saccade + 1：从第一个顶点出发，沿三角形走一圈回到原处。"""
    steps = _positive_int("steps_per_saccade", steps_per_saccade)
    v = torch.tensor(vertices, dtype=torch.float64)
    if v.shape != (3, 2):
        raise ValueError(f"vertices 须为三个 (dx, dy) 顶点，收到形状 {tuple(v.shape)}")
    frac = torch.arange(steps, dtype=torch.float64)[:, None] / steps
    legs = [v[i] + frac * (v[(i + 1) % 3] - v[i]) for i in range(3)]
    return torch.cat(legs + [v[:1]]).float()


def event_times_us(steps_per_saccade: int = 10) -> torch.Tensor:
    """第 k 次移动（k = 1, …, K-1）产生的事件的时间戳（微秒，整数）。"""
    steps = _positive_int("steps_per_saccade", steps_per_saccade)
    k = torch.arange(1, 3 * steps + 1, dtype=torch.float64)
    return torch.round(k * SACCADE_US / steps).long()


def _as_intensity(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 1, 28, 28] 或 [N, 28, 28] → [0, 1] 的 float32 [N, 28, 28]。"""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"images 须为张量，收到 {type(images).__name__}")
    if images.dim() == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.dim() != 3:
        raise ValueError(f"images 须为 [N, 1, H, W] 或 [N, H, W] 的灰度图，收到形状 {tuple(images.shape)}")
    if images.dtype == torch.uint8:
        return images.float() / 255.0
    if not images.is_floating_point():
        raise ValueError(f"images 须为 uint8（0–255）或取值 0–1 的浮点张量，收到 {images.dtype}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError("浮点图像的取值须在 [0, 1] 之内（uint8 图像请直接传入，不要先标准化）")
    return images.float()


def render(images: torch.Tensor, offsets: torch.Tensor, size: int = SIZE) -> torch.Tensor:
    """把图像放进 size×size 的黑色画面，按 offsets [K, 2] 逐个平移（亚像素平移用双线性插值），返回亮度 [K, N, size, size]。"""
    img = _as_intensity(images)
    size = _positive_int("size", size)
    n, h, w = img.shape
    offsets = torch.as_tensor(offsets, dtype=torch.float32)
    if offsets.dim() != 2 or offsets.shape[1] != 2:
        raise ValueError(f"offsets 须为 [K, 2] 的 (dx, dy) 序列，收到形状 {tuple(offsets.shape)}")
    if offsets.numel() and (offsets.min() < 0 or (offsets[:, 0].max() > size - w) or (offsets[:, 1].max() > size - h)):
        raise ValueError(f"平移后图像会超出 {size}×{size} 的画面：dx 须在 [0, {size - w}]、dy 须在 [0, {size - h}] 之内")
    frames = img.new_zeros(len(offsets), n, size + 1, size + 1)   # 多一行一列，放亚像素平移溢出的部分
    for k, (dx, dy) in enumerate(offsets.tolist()):
        ix, iy = int(np.floor(dx)), int(np.floor(dy))
        fx, fy = dx - ix, dy - iy
        for ox, oy, weight in ((0, 0, (1 - fx) * (1 - fy)), (1, 0, fx * (1 - fy)), (0, 1, (1 - fx) * fy), (1, 1, fx * fy)):
            if weight:
                frames[k, :, iy + oy : iy + oy + h, ix + ox : ix + ox + w] += weight * img
    return frames[:, :, :size, :size].clamp_(0.0, 1.0)


def _check_pixel_model(intensity: torch.Tensor, threshold: float, eps: float) -> tuple[float, float]:
    threshold, eps = _positive_float("threshold", threshold), _positive_float("eps", eps)
    if not isinstance(intensity, torch.Tensor) or not intensity.is_floating_point() or intensity.dim() < 1:
        raise ValueError("intensity 须为浮点张量 [K, ...]（K 个时刻的亮度）")
    if len(intensity) < 2:
        raise ValueError(f"至少需要两个时刻的亮度才能比较变化，收到 K = {len(intensity)}")
    if intensity.min() < 0:
        raise ValueError("亮度不能为负")
    return threshold, eps


def _pixel_model(intensity: torch.Tensor, threshold: float, eps: float, emit) -> None:
    """逐个时刻比较对数亮度与参考值；第 k 个时刻（k = 1, …, K-1）的 ON/OFF 掩码交给 emit(k, on, off)。"""
    log_i = torch.log(intensity.float() + eps)
    ref = log_i[0].clone()
    for k in range(1, len(log_i)):
        diff = log_i[k] - ref
        on, off = diff >= threshold, diff <= -threshold
        emit(k, on, off)
        torch.where(on | off, log_i[k], ref, out=ref)   # 发出事件的像素把参考值重置为当前的对数亮度


def events_from_intensity(intensity: torch.Tensor, threshold: float = 0.2, eps: float = 0.1) -> torch.Tensor:
    """DVS 像素模型：亮度序列 [K, ...] → 事件 [K-1, ...]（+1 为 ON，-1 为 OFF，0 为没有事件，int8）。

    每个像素记着上一次发出事件时的对数亮度（参考值）；当 log(I + eps) 与参考值之差达到 ±threshold 时，
    发出一个 ON/OFF 事件，并把参考值重置为当前的对数亮度。亮度不变的像素永远不发出事件。
    eps 避免 log(0)，也让全黑附近的微小变化不至于被放大成事件。
    """
    threshold, eps = _check_pixel_model(intensity, threshold, eps)
    out = torch.zeros(intensity.shape[0] - 1, *intensity.shape[1:], dtype=torch.int8)

    def emit(k, on, off):
        out[k - 1] = on.to(torch.int8) - off.to(torch.int8)

    _pixel_model(intensity, threshold, eps, emit)
    return out


def simulate(images: torch.Tensor, steps_per_saccade: int = 10, threshold: float = 0.2, eps: float = 0.1,
             size: int = SIZE, vertices=TRIANGLE) -> torch.Tensor:
    """图像 [N, 1, 28, 28] → 模拟的 DVS 事件 [N, K-1, 2, size, size]（uint8 的 0/1；通道 0 为 OFF、1 为 ON）。

    与 events_from_intensity 是同一个像素模型，只是直接写成按极性分开的两个通道。
    """
    intensity = render(images, saccade_offsets(steps_per_saccade, vertices), size)   # [K, N, H, W]
    threshold, eps = _check_pixel_model(intensity, threshold, eps)
    dense = torch.zeros(intensity.shape[1], len(intensity) - 1, 2, size, size, dtype=torch.uint8)

    def emit(k, on, off):
        dense[:, k - 1, 0] = off
        dense[:, k - 1, 1] = on

    _pixel_model(intensity, threshold, eps, emit)
    return dense


def to_stream(dense: torch.Tensor, steps_per_saccade: int | None = None) -> dict[str, np.ndarray]:
    """一个样本的稠密事件 [K-1, 2, H, W] → 事件流 {'t', 'x', 'y', 'p'}（numpy 数组，按 t、再按 p、y、x 排序）。

    格式与 spikingjelly.datasets 读出的事件相同，可以直接交给 integrate_events_by_fixed_frames_number。
    """
    if not isinstance(dense, torch.Tensor) or dense.dim() != 4 or dense.shape[1] != 2:
        raise ValueError(f"dense 须为一个样本的事件 [K-1, 2, H, W]，收到 {getattr(dense, 'shape', type(dense).__name__)}")
    if steps_per_saccade is None:
        if len(dense) % 3:
            raise ValueError(f"事件的时刻数 {len(dense)} 不是 3 的倍数，请传入 steps_per_saccade")
        steps_per_saccade = len(dense) // 3
    times = event_times_us(steps_per_saccade)
    if len(times) != len(dense):
        raise ValueError(f"steps_per_saccade = {steps_per_saccade} 对应 {len(times)} 个时刻，但事件有 {len(dense)} 个时刻")
    k, p, y, x = dense.nonzero(as_tuple=True)     # nonzero 按 (k, p, y, x) 的字典序返回
    return {"t": times[k].numpy(), "x": x.numpy(), "y": y.numpy(), "p": p.numpy()}


def to_frames(dense: torch.Tensor, frames: int) -> torch.Tensor:
    """稠密事件 [N, K-1, 2, H, W] → 按事件数等分积分成的帧 [N, frames, 2, H, W]（uint8 计数）。

    与 spikingjelly.datasets.integrate_events_by_fixed_frames_number(..., split_by='number') 对 to_stream 的结果
    逐位相同：每个样本的 n 个事件按顺序每 n // frames 个一帧，余下的都归最后一帧；但一次处理一整批，不需要逐样本循环。
    """
    frames = _positive_int("frames", frames)
    if not isinstance(dense, torch.Tensor) or dense.dim() != 5 or dense.shape[2] != 2:
        raise ValueError(f"dense 须为 [N, K-1, 2, H, W]，收到 {getattr(dense, 'shape', type(dense).__name__)}")
    n, steps, _, h, w = dense.shape
    flat = dense.reshape(n, -1)
    if flat.numel() and flat.max() > 1:
        raise ValueError("dense 的每个位置至多一个事件（0 或 1）")
    sample, where = flat.nonzero(as_tuple=True)            # 按样本、再按事件流的顺序排列
    counts = torch.bincount(sample, minlength=n)            # 每个样本的事件数
    first = torch.cumsum(counts, 0) - counts                # 每个样本第一个事件的位置
    rank = torch.arange(len(sample)) - first[sample]        # 事件在本样本事件流里的序号
    per_frame = (counts // frames)[sample]                  # 每帧的事件数（整除）；不足 frames 个事件时全归最后一帧
    index = torch.where(per_frame > 0, rank // per_frame.clamp(min=1), frames - 1).clamp(max=frames - 1)
    pixel = where % (2 * h * w)                             # 事件的 (p, y, x)
    out = torch.bincount((sample * frames + index) * (2 * h * w) + pixel, minlength=n * frames * 2 * h * w)
    if out.numel() and out.max() > 255:
        raise OverflowError("某个像素一帧里的事件数超过 255，uint8 放不下")
    return out.reshape(n, frames, 2, h, w).to(torch.uint8)
