"""运行环境：设备选择、线程数、随机种子、快速模式、中文字体回退。"""

import warnings

import matplotlib
import pytest
import torch

from snn_tutorial import plotting, quick, runtime


def test_auto_device_is_cuda_then_cpu_never_mps(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.select_device("auto").type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.select_device().type == "cpu"   # auto 从不选 MPS：select_device 根本不查询它


def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(runtime.DeviceError, match="nvidia-smi") as err:
        runtime.select_device("cuda")
    assert "--device cpu" in str(err.value)
    with pytest.raises(runtime.DeviceError, match="无法识别"):
        runtime.select_device("tpu")


def test_mps_is_refused_with_the_reason():
    """SpikingJelly 2.0 的神经元只支持 CPU 与 CUDA：要求 mps 时说明原因和办法（不查询本机有没有 MPS）。"""
    with pytest.raises(runtime.DeviceError) as err:
        runtime.select_device("mps")
    msg = str(err.value)
    assert "SpikingJelly 2.0" in msg and "CPU 和 CUDA" in msg and "--device cpu" in msg and "Apple" in msg


def test_mps_is_really_unsupported_by_spikingjelly():
    """上面那条消息引用的事实：SpikingJelly 2.0 在 MPS 上找不到神经元的实现。"""
    from spikingjelly.activation_based import functional

    with pytest.raises(ValueError, match="Unsupported neuron device mps"):
        functional.neuron_implementation("lif", torch.device("mps"))


@pytest.mark.parametrize("text", ["cpu:abc", "cuda:x", "auto:1", "gpu", "", "cpu:1"])
def test_nonsense_device_strings(text):
    if text == "":
        assert runtime.select_device(text).type in {"cpu", "cuda"}   # 空字符串等于 auto
        return
    with pytest.raises(runtime.DeviceError, match="无法识别"):
        runtime.select_device(text)


def test_writable_dir_problem(tmp_path):
    assert runtime.writable_dir_problem(tmp_path / "new" / "dir") is None and (tmp_path / "new" / "dir").is_dir()
    assert list((tmp_path / "new" / "dir").iterdir()) == []          # 试写的文件已删除
    (tmp_path / "f").write_text("x")
    assert "是一个文件" in runtime.writable_dir_problem(tmp_path / "f" / "sub")
    assert runtime.writable_dir_problem("/sys/snn-tutorial-probe") is not None


def test_set_cpu_threads():
    before = torch.get_num_threads()
    try:
        assert runtime.set_cpu_threads(1) == 1 and torch.get_num_threads() == 1
        assert runtime.set_cpu_threads() == runtime.available_cores() == torch.get_num_threads()
        with pytest.raises(ValueError):
            runtime.set_cpu_threads(0)
    finally:
        torch.set_num_threads(before)


def test_seed_everything_repeats():
    runtime.seed_everything(123)
    a = torch.rand(3)
    runtime.seed_everything(123)
    assert torch.equal(a, torch.rand(3))


def test_quick_mode_switch(monkeypatch):
    monkeypatch.setenv("SNN_TUTORIAL_QUICK", "1")
    assert quick.is_quick() and quick.pick(10, 1) == 1
    monkeypatch.setenv("SNN_TUTORIAL_QUICK", "0")
    assert not quick.is_quick() and quick.pick(10, 1) == 10
    monkeypatch.delenv("SNN_TUTORIAL_QUICK")
    assert not quick.is_quick()


def test_pytest_turns_quick_mode_on():
    import os

    assert os.environ.get("SNN_TUTORIAL_QUICK") == "1"


def test_cjk_font_found_and_used():
    family = plotting.setup_matplotlib()
    # 不跳过：即使没有系统中文字体，依赖里的 pip 字体包也保证有一个
    assert family is not None, "找不到任何中文字体：依赖 pylopdf-fonts-zh-cn 应当随 pip install -e . 装好"
    assert matplotlib.rcParams["font.sans-serif"][0] == family
    assert plotting.zh("膜电位", "membrane potential") == "膜电位"
    # 中文字符真的能被这个字体渲染（不是方框）
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    font = FT2Font(font_manager.findfont(family, fallback_to_default=False))
    assert font.get_char_index(ord("膜")) != 0


def test_font_fallback_warns_once_and_uses_english():
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert plotting.setup_matplotlib(font=None) is None
        assert len([w for w in caught if "中文字体" in str(w.message)]) == 1
        assert plotting.zh("膜电位", "membrane potential") == "membrane potential"
        assert matplotlib.rcParams["font.sans-serif"] == ["DejaVu Sans"]
    finally:
        plotting.setup_matplotlib()


@pytest.mark.parametrize("flags, expected", [
    ("fpu sse2 avx2 avx512f avx512bw avx512_bf16 avx512_vnni", True),   # AVX-512 BF16
    ("fpu sse2 avx2 avx512f amx_tile amx_bf16", True),                   # AMX
    ("fpu sse2 avx2 avx512f avx512bw avx512_vnni", False),              # 只有 AVX-512，没有 BF16 扩展
    ("fp asimd bf16 i8mm", False),                                      # ARM 的 bf16 不算：这里只认 x86 的两种
])
def test_native_bf16_is_read_from_cpu_flags(flags, expected):
    assert runtime.cpu_has_native_bf16(f"processor\t: 0\nflags\t\t: {flags}\n") is expected
    assert runtime.cpu_has_native_bf16("no flags line at all") is False


def test_amp_dtype_per_device(monkeypatch):
    monkeypatch.setattr(runtime, "_native_bf16", lambda: True)
    assert runtime.amp_dtype("cpu") is torch.bfloat16
    assert runtime.amp_dtype("cuda") is torch.float16
    assert runtime.amp_dtype("cpu", enabled=False) is None and runtime.amp_dtype("cuda", enabled=False) is None
    monkeypatch.setattr(runtime, "_native_bf16", lambda: False)     # 没有原生 bfloat16 的 CPU：不用混合精度
    assert runtime.amp_dtype("cpu") is None
