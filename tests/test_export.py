"""部署（issue 15）：折叠 BN 不改变输出；NIR 与 ONNX 的往返在随包样本上与 PyTorch 的预测相同；
命令行 python -m snn_tutorial.export 的每一种坏输入都得到中文说明与正确的退出码（表驱动，同 test_bad_input.py）。
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import torch

from snn_tutorial import data
from snn_tutorial import export as ex
from snn_tutorial.checkpoint import SHIPPED, load_checkpoint, save_checkpoint
from snn_tutorial.models import ANN, CSNN, build_model

CJK = re.compile(r"[\u4e00-\u9fff]")


def _random_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """给 BN 随机的统计量与仿射参数（刚建好的 BN 是恒等变换，折叠它什么也检验不了）。"""
    gen = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=gen) - 0.5)
            m.running_var.copy_(torch.rand(n, generator=gen) * 0.4 + 0.1)
            m.weight.data.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=gen) - 0.3)
    return model.eval()


def tiny(pool: str = "avg") -> CSNN:
    torch.manual_seed(0)
    return _random_bn(CSNN(channels=(4, 8), hidden=16, pool=pool))


@pytest.fixture(scope="module")
def sample_x() -> torch.Tensor:
    x, _ = data.load_raw("mnist-sample", train=False)
    return data.normalize(x)


# ---------------------------------------------------------------- 模型选项
def test_csnn_pool_option_keeps_old_config():
    assert CSNN().config == {"channels": [32, 32], "hidden": 256, "T": 4, "tau": 2.0, "vote": 10}
    model = build_model("csnn", pool="avg")
    assert model.config["pool"] == "avg"
    assert isinstance(model.encoder[2], torch.nn.AvgPool2d) and isinstance(model.snn[3], torch.nn.AvgPool2d)
    with pytest.raises(ValueError, match="pool 须为"):
        CSNN(pool="sum")


def test_shipped_checkpoints_still_load():
    model, ckpt = load_checkpoint()
    assert "pool" not in ckpt["config"] and isinstance(model.encoder[2], torch.nn.MaxPool2d)
    variant, vckpt = load_checkpoint(ex.DEPLOYABLE)
    assert vckpt["config"]["pool"] == "avg" and ex.nir_problems(variant) == []


# ---------------------------------------------------------------- 折叠 BN
@pytest.mark.parametrize("pool", ["max", "avg"])
def test_fold_bn_keeps_outputs(pool, sample_x):
    model = tiny(pool)
    folded = ex.fold_bn(model)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())   # 原模型不动
    a, b = ex.pytorch_rates(model, sample_x), ex.pytorch_rates(folded, sample_x)
    assert torch.equal(a.argmax(1), b.argmax(1))
    assert (a - b).abs().max() <= 1e-6


# ---------------------------------------------------------------- NIR 与 ONNX 的往返
def test_nir_round_trip(tmp_path, sample_x):
    model = tiny()
    graph = ex.export_nir(model, tmp_path / "m.nir")
    kinds = [type(n).__name__ for n in graph.nodes.values()]
    assert kinds.count("LIF") == 4 and kinds.count("Conv2d") == 2 and kinds.count("AvgPool2d") == 2
    gm = ex.load_nir(tmp_path / "m.nir")
    got = ex.run_nir(gm, sample_x, model.T)
    want = ex.run_core(ex.spiking_core(model), sample_x, model.T)
    assert torch.equal(got, want)
    assert torch.equal(ex.readout(got, model.config["vote"]).argmax(1), ex.pytorch_rates(model, sample_x).argmax(1))


def test_onnx_round_trip(tmp_path, sample_x):
    model = tiny("max")                       # ONNX 不要求平均池化
    ex.export_onnx(model, tmp_path / "m.onnx")
    session = ex.onnx_session(tmp_path / "m.onnx", threads=1)
    rates = ex.run_onnx(session, sample_x, batch_size=64)
    want = ex.pytorch_rates(model, sample_x)
    assert torch.equal(rates.argmax(1), want.argmax(1))
    assert (rates - want).abs().max() <= 1e-6
    again = ex.run_onnx(session, sample_x[:5])          # 状态不在图里：每次调用都从 V[0] = 0 开始
    assert torch.equal(again, rates[:5])


@pytest.mark.parametrize("fmt", ["nir", "onnx"])
def test_shipped_variant_round_trip(fmt, tmp_path, sample_x):
    model, _ = load_checkpoint(ex.DEPLOYABLE)
    path = tmp_path / f"v.{fmt}"
    (ex.export_nir if fmt == "nir" else ex.export_onnx)(model, path)
    result = ex.verify(model, fmt, path, sample_x)
    assert result.ok and result.images == len(sample_x) and result.max_diff <= 1e-6


def test_maxpool_model_is_refused_for_nir():
    with pytest.raises(ex.ExportError, match="最大池化"):
        ex.spiking_core(tiny("max"))
    soft = tiny()
    soft.snn[0].v_reset = None
    assert any("软重置" in p for p in ex.nir_problems(soft))


# ---------------------------------------------------------------- 命令行：表驱动
def _tiny_checkpoint(tmp: Path, pool: str = "avg", name: str = "t.pt") -> Path:
    return save_checkpoint(tmp / name, tiny(pool), "csnn", metrics={"dataset": "mnist-sample"})


def _ann_checkpoint(tmp: Path) -> Path:
    return save_checkpoint(tmp / "ann.pt", ANN(channels=(2, 2), hidden=8), "ann", metrics={"dataset": "mnist-sample"})


def _truncated(path: Path) -> None:
    good = _tiny_checkpoint(path.parent, name="good.pt").read_bytes()
    path.write_bytes(good[:300])
    (path.parent / "good.pt").unlink()


def _mismatch(tmp, mp):
    _tiny_checkpoint(tmp)
    mp.setattr(ex, "verify", lambda model, fmt, path, x: ex.Check(len(x), len(x) - 3, 0.025, "发放率"))


def _interrupt_export(tmp, mp):
    _tiny_checkpoint(tmp)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    mp.setattr(ex, "export_onnx", interrupted)


@dataclass
class Case:
    id: str
    argv: list[str]
    code: int
    expect: list[str]
    setup: Callable | None = None
    exists: list[str] = field(default_factory=list)    # 结束后必须存在的文件
    only: list[str] | None = None                      # 结束后 tmp 里恰好有这些文件（None 表示不检查）


CASES = [
    Case("nir-ok", ["--checkpoint", "{tmp}/t.pt", "--format", "nir", "--out", "{tmp}/m.nir"], 0,
         ["已导出 NIR：{tmp}/m.nir", "200 张测试图上，预测与 PyTorch 全部相同"], setup=lambda t, mp: _tiny_checkpoint(t),
         exists=["m.nir"], only=["m.nir", "t.pt"]),
    Case("onnx-ok-into-dir", ["--checkpoint", "{tmp}/t.pt", "--format", "onnx", "--out", "{tmp}/out/", "--verify-images", "20"], 0,
         ["已导出 ONNX：{tmp}/out/t.onnx", "20 张测试图上，预测与 PyTorch 全部相同"], setup=lambda t, mp: _tiny_checkpoint(t),
         exists=["out/t.onnx"]),
    Case("onnx-maxpool-ok", ["--checkpoint", "{tmp}/t.pt", "--format", "onnx", "--out", "{tmp}/m.onnx", "--verify-images", "20"], 0,
         ["已导出 ONNX"], setup=lambda t, mp: _tiny_checkpoint(t, "max"), exists=["m.onnx"]),
    Case("nir-portable-ok", ["--checkpoint", "{tmp}/t.pt", "--format", "nir", "--portable", "--out", "{tmp}/p.nir", "--verify-images", "20"], 0,
         ["已导出 NIR（可移植形式）：{tmp}/p.nir", "20 张测试图上，预测与 PyTorch 全部相同"], setup=lambda t, mp: _tiny_checkpoint(t),
         exists=["p.nir"], only=["p.nir", "t.pt"]),
    Case("portable-needs-nir", ["--checkpoint", "{tmp}/t.pt", "--format", "onnx", "--portable", "--out", "{tmp}/m.onnx"], 2,
         ["--portable 只用于 --format nir", "还没有导出任何东西"], setup=lambda t, mp: _tiny_checkpoint(t), only=["t.pt"]),
    Case("format-missing", ["--checkpoint", "{tmp}/t.pt"], 2, ["缺少必需的参数：--format"]),
    Case("format-unknown", ["--format", "tflite"], 2, ["--format", "'tflite' 无效", "nir, onnx"]),
    Case("checkpoint-missing", ["--checkpoint", "{tmp}/none.pt", "--format", "nir"], 2, ["检查点文件不存在", "{tmp}/none.pt"]),
    Case("checkpoint-truncated", ["--checkpoint", "{tmp}/bad.pt", "--format", "onnx"], 2, ["{tmp}/bad.pt", "已损坏/不完整"],
         setup=lambda t, mp: _truncated(t / "bad.pt")),
    Case("nir-maxpool", ["--checkpoint", str(SHIPPED), "--format", "nir", "--out", "{tmp}/m.nir"], 2,
         ["不能导出为 NIR", "最大池化", "--deployable", ex.DEPLOYABLE.name], only=[]),
    Case("ann-refused", ["--checkpoint", "{tmp}/ann.pt", "--format", "onnx", "--out", "{tmp}/m.onnx"], 2,
         ["只能导出本教程的卷积 SNN"], setup=lambda t, mp: _ann_checkpoint(t), only=["ann.pt"]),
    Case("out-proc", ["--checkpoint", "{tmp}/t.pt", "--format", "nir", "--out", "/proc/x.nir"], 2,
         ["--out /proc/x.nir", "不允许新建文件", "还没有导出任何东西"], setup=lambda t, mp: _tiny_checkpoint(t)),
    Case("out-parent-is-file", ["--checkpoint", "{tmp}/t.pt", "--format", "onnx", "--out", "{tmp}/f.txt/m.onnx"], 2,
         ["{tmp}/f.txt 是一个文件，不是目录"], setup=lambda t, mp: (_tiny_checkpoint(t), (t / "f.txt").write_text("x"))),
    Case("out-empty", ["--checkpoint", "{tmp}/t.pt", "--format", "onnx", "--out", ""], 2, ["--out 不能是空字符串"],
         setup=lambda t, mp: _tiny_checkpoint(t)),
    Case("verify-images-0", ["--format", "nir", "--verify-images", "0"], 2, ["--verify-images", "1 到 200"]),
    Case("verify-images-too-many", ["--format", "nir", "--verify-images", "201"], 2, ["--verify-images", "200 张"]),
    Case("threads-0", ["--format", "nir", "--threads", "0"], 2, ["--threads", "1 到"]),
    Case("verification-fails", ["--checkpoint", "{tmp}/t.pt", "--format", "onnx", "--out", "{tmp}/m.onnx"], 1,
         ["与 PyTorch 不一致", "200 张样本图中只有 197 张", "没有写入 {tmp}/m.onnx"], setup=_mismatch, only=["t.pt"]),
    Case("ctrl-c-during-export", ["--checkpoint", "{tmp}/t.pt", "--format", "onnx", "--out", "{tmp}/m.onnx"], 130,
         ["已中断（Ctrl+C）", "没有写入任何文件"], setup=_interrupt_export, only=["t.pt"]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_export_cli(case, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    if case.setup is not None:
        case.setup(tmp_path, monkeypatch)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in case.argv] + ["--threads", "1"] * ("--threads" not in case.argv)
    capsys.readouterr()
    try:
        ex.main(argv)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    text = out + err
    assert code == case.code, text
    assert "Traceback" not in text
    if case.code != 0:
        first = err.strip().splitlines()[0]
        assert CJK.search(first) and first.startswith(("错误：", "已中断")), first
    for piece in case.expect:
        assert piece.replace("{tmp}", str(tmp_path)) in text, f"缺少 {piece!r}：\n{text}"
    for name in case.exists:
        assert (tmp_path / name).is_file()
    if case.only is not None:   # 没有留下临时文件，也没有半个输出文件
        assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file()) == sorted(case.only)


def test_cli_portable_file_has_no_average_pooling(tmp_path, capsys):
    import nir

    _tiny_checkpoint(tmp_path)
    ex.main(["--checkpoint", str(tmp_path / "t.pt"), "--format", "nir", "--portable", "--out", str(tmp_path / "p.nir"),
             "--verify-images", "5", "--threads", "1"])
    kinds = [type(n).__name__ for n in nir.read(str(tmp_path / "p.nir")).nodes.values()]
    assert "AvgPool2d" not in kinds and kinds.count("Conv2d") == 4


# ---------------------------------------------------------------- 训练命令行的 --deployable
def test_train_deployable_flag(capsys):
    from snn_tutorial import train as train_cli

    args = train_cli.build_parser().parse_args(["--model", "csnn", "--deployable", "--channels", "2", "2"])
    assert train_cli.model_config(args) == {"channels": [2, 2], "pool": "avg"}
    with pytest.raises(SystemExit) as info:
        train_cli.main(["--model", "ann", "--deployable", "--dataset", "mnist-sample"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "--deployable 只用于 --model csnn" in err and "Traceback" not in err
