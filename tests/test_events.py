"""模拟的 DVS 事件：在合成的输入上核对像素模型、扫视路径、事件流与积分成帧。"""

import math

import numpy as np
import pytest
import torch
from spikingjelly.datasets import integrate_events_by_fixed_frames_number

from snn_tutorial import data, events


def geometric_ramp(start: float, log_step: float, k: int, eps: float = 0.1) -> torch.Tensor:
    """一个像素的亮度序列：log(I + eps) 每步恰好变化 log_step。"""
    log_i = math.log(start + eps) + log_step * torch.arange(k, dtype=torch.float64)
    return (torch.exp(log_i) - eps).float()


def test_rising_ramp_gives_on_events_at_expected_steps():
    # 每步对数亮度增加 0.1，阈值 0.25：累计到 0.3 时（第 3、6、9 步）发出 ON 事件并重置参考值
    intensity = geometric_ramp(0.2, 0.1, 10)[:, None]
    ev = events.events_from_intensity(intensity, threshold=0.25)[:, 0]
    assert ev.tolist() == [0, 0, 1, 0, 0, 1, 0, 0, 1]


def test_falling_ramp_gives_only_off_events():
    intensity = geometric_ramp(0.9, -0.3, 6)[:, None]
    ev = events.events_from_intensity(intensity, threshold=0.25)[:, 0]
    assert ev.tolist() == [-1] * 5


def test_change_below_threshold_gives_no_event():
    intensity = geometric_ramp(0.5, 0.05, 4)[:, None]   # 总共只变化 0.15
    assert events.events_from_intensity(intensity, threshold=0.2).abs().sum() == 0


def test_static_image_gives_no_events():
    images, _ = data.load_sample()
    offsets = torch.tensor([[3.0, 3.0]] * 5)            # 相机不动
    ev = events.events_from_intensity(events.render(images[:20], offsets))
    assert ev.abs().sum() == 0


def test_blank_image_moving_gives_no_events():
    dense = events.simulate(torch.zeros(3, 1, 28, 28, dtype=torch.uint8), steps_per_saccade=4)
    assert dense.sum() == 0


def test_saccades_form_closed_triangle_inside_the_frame():
    off = events.saccade_offsets(10)
    assert off.shape == (31, 2)
    assert torch.equal(off[0], off[-1])                                     # 回到起点
    assert off.min() >= 0 and off.max() <= events.SIZE - 28
    assert torch.equal(off[[0, 10, 20]], torch.tensor(events.TRIANGLE))    # 经过三个顶点
    times = events.event_times_us(10)
    assert times.tolist()[:2] == [10_000, 20_000] and times[-1] == 3 * events.SACCADE_US


def test_render_integer_shift_places_image_exactly():
    images, _ = data.load_sample()
    frame = events.render(images[:2], torch.tensor([[2.0, 5.0]]))[0]
    expected = torch.zeros(2, 34, 34)
    expected[:, 5:33, 2:30] = images[:2, 0].float() / 255
    assert torch.equal(frame, expected)


def test_render_subpixel_shift_conserves_brightness():
    images, _ = data.load_sample()
    frames = events.render(images[:4], torch.tensor([[0.0, 0.0], [2.3, 4.6]]))
    totals = frames.sum((2, 3))
    torch.testing.assert_close(totals[1], totals[0], rtol=1e-5, atol=1e-3)


def test_moving_digit_gives_both_polarities_at_edges():
    images, _ = data.load_sample()
    dense = events.simulate(images[:8])
    assert dense.shape == (8, 30, 2, 34, 34) and dense.dtype == torch.uint8
    per_sample = dense.sum((1, 2, 3, 4))
    assert (per_sample > 500).all()                          # 每个数字都产生了大量事件
    on, off = dense[:, :, 1].sum(), dense[:, :, 0].sum()
    assert 0.4 < on / (on + off) < 0.6                      # 走一圈回到原处，变亮与变暗大致相当
    assert not (dense[:, :, 0] & dense[:, :, 1]).any()      # 同一像素同一时刻不会既变亮又变暗


def test_simulate_is_the_pixel_model_split_by_polarity():
    images, _ = data.load_sample()
    signed = events.events_from_intensity(events.render(images[:5], events.saccade_offsets(6)))   # [K-1, N, H, W]
    dense = events.simulate(images[:5], steps_per_saccade=6)                                     # [N, K-1, 2, H, W]
    assert torch.equal(dense[:, :, 1].bool(), (signed == 1).transpose(0, 1))
    assert torch.equal(dense[:, :, 0].bool(), (signed == -1).transpose(0, 1))


def test_stream_matches_dense_and_is_sorted():
    images, _ = data.load_sample()
    dense = events.simulate(images[:1])[0]
    stream = events.to_stream(dense)
    assert len(stream["t"]) == dense.sum()
    assert (np.diff(stream["t"]) >= 0).all()
    assert set(np.unique(stream["p"])) == {0, 1}
    assert stream["x"].max() < 34 and stream["y"].max() < 34
    rebuilt = torch.zeros_like(dense)
    k = (stream["t"] // 10_000) - 1
    rebuilt[k, stream["p"], stream["y"], stream["x"]] = 1
    assert torch.equal(rebuilt, dense)


@pytest.mark.parametrize("frames", [1, 4, 10, 16])
def test_frames_equal_spikingjelly_and_conserve_counts(frames):
    images, _ = data.load_sample()
    dense = events.simulate(images[:30])
    ours = events.to_frames(dense, frames)
    assert ours.shape == (30, frames, 2, 34, 34)
    # 积分前后事件数守恒，每种极性分别守恒
    assert torch.equal(ours.sum((1, 3, 4)).long(), dense.sum((1, 3, 4)).long())
    for i in range(len(images[:30])):
        ref = integrate_events_by_fixed_frames_number(events.to_stream(dense[i]), "number", frames, 34, 34)
        assert np.array_equal(ref, ours[i].numpy()), f"第 {i} 个样本与 SpikingJelly 的积分结果不同"


def test_frames_with_fewer_events_than_frames_go_to_last_frame():
    dense = torch.zeros(2, 6, 2, 34, 34, dtype=torch.uint8)
    dense[0, 2, 1, 5, 5] = 1            # 第 0 个样本只有 1 个事件；第 1 个样本一个也没有
    out = events.to_frames(dense, 4)
    assert out[0, 3, 1, 5, 5] == 1 and out.sum() == 1
    stream = events.to_stream(dense[0])
    ref = integrate_events_by_fixed_frames_number(stream, "number", 4, 34, 34)
    assert np.array_equal(ref, out[0].numpy())


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: events.saccade_offsets(0), "steps_per_saccade"),
        (lambda: events.events_from_intensity(torch.ones(1, 3)), "两个时刻"),
        (lambda: events.events_from_intensity(torch.ones(3, 3), threshold=0), "threshold"),
        (lambda: events.events_from_intensity(torch.ones(3, 3, dtype=torch.long)), "浮点"),
        (lambda: events.render(torch.zeros(2, 3, 28, 28, dtype=torch.uint8), events.saccade_offsets()), "灰度图"),
        (lambda: events.render(torch.full((1, 28, 28), 2.0), events.saccade_offsets()), "[0, 1]"),
        (lambda: events.render(torch.zeros(1, 28, 28), torch.tensor([[7.0, 0.0]])), "超出"),
        (lambda: events.to_frames(torch.zeros(2, 3, 34, 34, dtype=torch.uint8), 4), "[N, K-1, 2, H, W]"),
        (lambda: events.to_frames(torch.zeros(1, 3, 2, 4, 4, dtype=torch.uint8), 0), "frames"),
        (lambda: events.to_stream(torch.zeros(4, 2, 4, 4, dtype=torch.uint8)), "3 的倍数"),
    ],
)
def test_bad_input_is_explained(call, message):
    with pytest.raises((ValueError, TypeError), match=message.replace("[", r"\[").replace("]", r"\]")):
        call()
