"""部署：折叠 BN，导出为 NIR 或 ONNX，并与 PyTorch 逐一核对（笔记本 07 与命令行共用）。

命令行：python -m snn_tutorial.export --checkpoint snn_tutorial/assets/csnn_deploy_mnist.pt --format nir [--portable] --out checkpoints/

- fold_bn：把每个 BN 折叠进它前面的卷积/全连接层（推理时 BN 是固定的逐通道仿射变换），返回副本；
- nir_problems：列出模型里 NIR 无法表示的部分（最大池化、软重置……），空列表表示可以导出；
- spiking_core：折叠后的 CSNN 去掉投票层，得到“输入 [T, N, 1, 28, 28] → 输出层脉冲 [T, N, 10·vote]”的多步网络，
  这就是导出到 NIR 的部分（投票与对时间求平均是读出，留在图外）；
- readout：把输出层脉冲变成各类别的发放率，与 CSNN.forward 的算法逐位相同；
- export_nir / load_nir / run_nir，export_onnx / onnx_session / run_onnx：导出、读回、运行（portable=True：可移植形式，笔记本 09）。

导出先写到同一目录下的临时文件，在随包样本上核对通过后才改名为 --out；核对不通过时删掉临时文件，--out 保持原样。
--out 必须带格式的扩展名（.nir 或 .onnx），不能是输入的检查点本身（无论怎么写路径），也不能是设备、管道之类的特殊文件；
导出前先确认磁盘空间够。被强行结束的导出留下的临时文件，下一次导出到同一目录时清掉。
退出码见 snn_tutorial.cli：0 成功；1 导出完成但核对没有通过、或写文件时出错（什么也没写入 --out）；2 输入有误；129 SIGHUP；130 Ctrl+C；143 SIGTERM。
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import os
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, layer, neuron
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

from . import cli, data, runtime
from .atomic import atomic_path
from .errors import TutorialError
from .checkpoint import SHIPPED, load_checkpoint, remove_stale_temp_files
from .models import CSNN
from .neurons import kind_of, nir_exportable

DEPLOYABLE = SHIPPED.with_name("csnn_deploy_mnist.pt")   # 随包附带的可部署变体（平均池化）
FORMATS = {"nir": ".nir", "onnx": ".onnx"}
DT = 1e-4          # NIR 的时间步长（秒）：只用来换算时间常数，导出再导入后 tau 不变
ONNX_OPSET = 18


class ExportError(TutorialError):
    """模型无法按要求导出，消息为中文并说明如何处理。"""


# ---------------------------------------------------------------- 折叠 BN
_BN = nn.modules.batchnorm._BatchNorm


def fold_bn(model: nn.Module) -> nn.Module:
    """返回 model 的副本（eval 模式）：每个“卷积/全连接 → BN”都换成一个带偏置的卷积/全连接，BN 换成 nn.Identity。

    推理时 BN 计算 γ·(x − μ)/√(σ² + ε) + β，是固定的逐通道仿射变换，可以并进前一层：
    W' = W·γ/√(σ² + ε)，b' = (b − μ)·γ/√(σ² + ε) + β。位置不变（BN 的位置留下 Identity），模块名因此与原模型一一对应。
    """
    folded = copy.deepcopy(model).eval()
    functional.reset_net(folded)
    for seq in [m for m in folded.modules() if isinstance(m, nn.Sequential)]:
        for i in range(1, len(seq)):
            prev, bn = seq[i - 1], seq[i]
            if not isinstance(bn, _BN):
                continue
            if isinstance(prev, nn.Conv2d):
                seq[i - 1] = fuse_conv_bn_eval(prev, bn)
            elif isinstance(prev, nn.Linear):
                seq[i - 1] = fuse_linear_bn_eval(prev, bn)
            else:
                raise ExportError(f"BN（{type(bn).__name__}）前面是 {type(prev).__name__}，不是卷积或全连接，无法折叠。")
            seq[i] = nn.Identity()
    left = [name for name, m in folded.named_modules() if isinstance(m, _BN)]
    if left:
        raise ExportError(f"这些 BN 前面不是卷积或全连接层，无法折叠：{', '.join(left)}")
    return folded


# ---------------------------------------------------------------- NIR 能表示什么
def _require_csnn(model: nn.Module) -> None:
    if not isinstance(model, CSNN):
        raise ExportError(
            f"只能导出本教程的卷积 SNN（csnn），收到的是 {type(model).__name__}。"
            f"ANN 没有脉冲神经元，不需要 NIR（要 ONNX 可直接用 torch.onnx.export）；旧教程的网络（original）请改用 --model csnn 训练。"
        )


def nir_problems(model: nn.Module) -> list[str]:
    """model（CSNN）里 NIR 无法表示的部分，每项一句中文；空列表表示可以导出（BN 会先被折叠，不算问题）。"""
    _require_csnn(model)
    problems = []
    for name, m in model.named_modules():
        if isinstance(m, (nn.MaxPool2d, layer.MaxPool2d)):
            problems.append(f"{name}：最大池化（NIR 没有最大池化；SpikingJelly 只能把平均池化导出为 NIR）")
        elif isinstance(m, neuron.BaseNode):
            kind = kind_of(m)   # 能不能导出看神经元登记表（neurons.NEURONS）
            if kind is None or kind.nir is None:
                problems.append(f"{name}：{type(m).__name__}（NIR 不能表示这种神经元；可以导出的：{nir_exportable()}）")
            elif m.v_reset is None:
                problems.append(f"{name}：软重置的 LIF（NIR 的神经元只有硬重置）")
    return problems


def spiking_core(model: nn.Module) -> nn.Sequential:
    """折叠后的 CSNN → 多步模式的 nn.Sequential：输入 [T, N, 1, 28, 28]（直接编码：每步同一张图），输出输出层的脉冲 [T, N, 10·vote]。

    第一层卷积与池化换成多步模式的 layer.Conv2d / layer.AvgPool2d（每个时间步都算一次：NIR 图里没有“只算一次”），
    去掉 BN 留下的 Identity 和最后的投票层（投票是读出，见 readout）。权重与神经元都是副本。
    """
    problems = nir_problems(model)
    if problems:
        raise ExportError(
            "这个模型不能导出为 NIR：" + "；".join(problems)
            + f"。请用 python -m snn_tutorial.train --model csnn --deployable 训练可部署变体，或直接用随包附带的 {DEPLOYABLE.name}。"
        )
    if any(isinstance(m, _BN) for m in model.modules()):
        model = fold_bn(model)
    conv, _, pool = model.encoder
    first = layer.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, stride=conv.stride, padding=conv.padding,
                         bias=conv.bias is not None)
    first.load_state_dict(conv.state_dict())
    modules = [first, layer.AvgPool2d(pool.kernel_size, pool.stride)]
    modules += [copy.deepcopy(m) for m in model.snn if not isinstance(m, (nn.Identity, layer.VotingLayer))]
    names, seen = [], {}
    for m in modules:   # 给每层起个好读的名字（conv1、pool1、lif1……），NIR 图的节点就用这些名字
        kind = {layer.Conv2d: "conv", layer.AvgPool2d: "pool", layer.Flatten: "flatten", layer.Linear: "fc"}.get(type(m), "lif")
        seen[kind] = seen.get(kind, 0) + 1
        names.append(kind if kind == "flatten" else f"{kind}{seen[kind]}")
    core = nn.Sequential(OrderedDict(zip(names, modules))).eval()
    functional.set_step_mode(core, "m")
    functional.reset_net(core)
    return core


def repeat_input(x: torch.Tensor, T: int) -> torch.Tensor:
    """直接编码：[N, 1, 28, 28] → [T, N, 1, 28, 28]，每个时间步是同一张图。"""
    return x.unsqueeze(0).repeat(T, *([1] * x.dim()))


def readout(spikes: torch.Tensor, vote: int) -> torch.Tensor:
    """输出层脉冲 [T, N, 10·vote] → 各类别的发放率 [N, 10]；运算与 CSNN.forward（投票层，再对时间求平均）相同。"""
    return layer.VotingLayer(vote, step_mode="m")(spikes).mean(0)


@torch.no_grad()
def run_core(core: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    """在 PyTorch 里运行 spiking_core：[N, 1, 28, 28] → 输出层脉冲 [T, N, 10·vote]（前后都重置状态）。"""
    functional.reset_net(core)
    out = core(repeat_input(x, T))
    functional.reset_net(core)
    return out


# ---------------------------------------------------------------- NIR
@contextlib.contextmanager
def _quiet():
    """导出时 PyTorch、onnxscript 与 nirtorch 会发出警告、打印日志，这里都收起来（SpikingJelly 的 loguru 日志默认关闭，不去动它）。"""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def export_nir(model: nn.Module, path: str | os.PathLike | None = None, batch: int = 1, portable: bool = False):
    """CSNN（可部署变体）→ NIR 图；path 不为 None 时同时写成 HDF5 文件。BN 先被折叠。portable=True：nir_portable.portable_graph 的形式。"""
    import nir
    from spikingjelly.activation_based.nir_exchange import export_to_nir
    from .nir_portable import portable_graph

    core = spiking_core(model)
    with _quiet():
        graph = export_to_nir(core, torch.zeros(model.T, batch, 1, 28, 28), save_path=None, dt=DT)
        graph = portable_graph(graph) if portable else graph
        if path is not None:
            nir.write(str(path), graph)
    functional.reset_net(core)
    return graph


def load_nir(graph_or_path, device: str | torch.device = "cpu") -> nn.Module:
    """NIR 图或文件 → SpikingJelly 的多步模型（torch.fx.GraphModule）；它的前向返回 (输出, 状态)。"""
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    graph_or_path = str(graph_or_path) if isinstance(graph_or_path, os.PathLike) else graph_or_path
    with _quiet():
        gm = import_from_nir(graph_or_path, dt=DT, device=str(torch.device(device)), step_mode="m")
    return gm.eval()


@torch.no_grad()
def run_nir(gm: nn.Module, x: torch.Tensor, T: int) -> torch.Tensor:
    """运行从 NIR 导入的模型：[N, 1, 28, 28] → 输出层脉冲 [T, N, 10·vote]。state=None 表示从初始状态（V[0] = 0）开始。"""
    out, _ = gm(repeat_input(x, T), None)
    return out


# ---------------------------------------------------------------- ONNX
def export_onnx(model: nn.Module, path: str | os.PathLike) -> Path:
    """CSNN → ONNX 文件（BN 先被折叠）。用 torch.onnx.export(..., dynamo=True)：先用 torch.export 追踪，
    T 个时间步在图里展开；批大小是动态的。输入名 "x"（[N, 1, 28, 28]），输出名 "rate"（[N, 10]）。"""
    _require_csnn(model)
    folded = fold_bn(model).cpu()
    example = torch.zeros(2, 1, 28, 28)
    batch = torch.export.Dim("batch", min=1)
    with _quiet():
        program = torch.onnx.export(folded, (example,), dynamo=True, input_names=["x"], output_names=["rate"],
                                    dynamic_shapes={"x": {0: batch}}, opset_version=ONNX_OPSET, verbose=False)
        program.save(str(path))
    functional.reset_net(folded)
    return Path(path)


def onnx_session(path: str | os.PathLike, threads: int | None = None):
    """onnxruntime 的 CPU 推理会话；threads 为 None 时用 PyTorch 当前的线程数（与 runtime.set_cpu_threads 一致）。"""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def run_onnx(session, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """用 onnxruntime 运行：[N, 1, 28, 28] → 发放率 [N, 10]（CPU 上的 torch 张量）。"""
    x = x.detach().cpu().float()
    outs = [torch.from_numpy(session.run(None, {"x": x[i:i + batch_size].numpy()})[0])
            for i in range(0, len(x), batch_size)]
    return torch.cat(outs)


@torch.no_grad()
def pytorch_rates(model: nn.Module, x: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """PyTorch 的参照：model(x) 的发放率 [N, 10]（按批运行，每批之后重置状态，结果放在 CPU 上）。"""
    device = next(model.parameters()).device
    outs = []
    for i in range(0, len(x), batch_size):
        outs.append(model(x[i:i + batch_size].to(device)).cpu())
        functional.reset_net(model)
    return torch.cat(outs)


# ---------------------------------------------------------------- 核对
@dataclass
class Check:
    images: int          # 核对了几张图
    same_predictions: int
    max_diff: float      # 输出的最大绝对差（NIR：输出层脉冲；ONNX：发放率）
    what: str            # 比较的是什么

    @property
    def ok(self) -> bool:
        return self.same_predictions == self.images


def verify(model: nn.Module, fmt: str, path: str | os.PathLike, x: torch.Tensor) -> Check:
    """把导出的文件读回来，在 x 上与 PyTorch 比较：预测必须逐张相同。"""
    model = model.cpu().eval()
    reference = pytorch_rates(model, x).argmax(1)
    if fmt == "nir":
        vote = model.config["vote"]
        gm, core = load_nir(path), spiking_core(model)
        got = torch.cat([run_nir(gm, x[i:i + 256], model.T) for i in range(0, len(x), 256)], dim=1)
        want = torch.cat([run_core(core, x[i:i + 256], model.T) for i in range(0, len(x), 256)], dim=1)
        prediction = readout(got, vote).argmax(1)
        return Check(len(x), int((prediction == reference).sum()), float((got - want).abs().max()), "输出层脉冲")
    session = onnx_session(path)
    rates = run_onnx(session, x)
    want = pytorch_rates(fold_bn(model), x)
    return Check(len(x), int((rates.argmax(1) == reference).sum()), float((rates - want).abs().max()), "发放率")


# ---------------------------------------------------------------- 命令行
def build_parser() -> cli.ArgumentParser:
    common = cli.common_parser(
        "checkpoint", "out", "threads", checkpoint=f"检查点路径（默认：随包附带的可部署变体 {DEPLOYABLE.name}）",
        out=("输出文件（默认 checkpoints/<检查点名>.nir 或 .onnx），须以该格式的扩展名结尾，不能是输入的检查点。"
                        "给出已存在的目录、或以 / 结尾的路径时，文件放在该目录里并使用默认文件名。导出前先试写一次"))
    p = cli.ArgumentParser(
        prog="python -m snn_tutorial.export", parents=[common],
        description="把本教程的卷积 SNN 导出为 NIR（神经形态交换格式）或 ONNX，先在随包样本上与 PyTorch 核对预测，通过后才写入 --out。",
        epilog="退出码：0 成功；1 导出完成但与 PyTorch 的预测不一致、或写文件时出错（什么也没写入 --out）；2 参数或输入有误"
               "（例如模型含最大池化，不能导出为 NIR；--out 就是输入的检查点或没有 .nir/.onnx 扩展名）；"
               "130 Ctrl+C、143 SIGTERM、129 SIGHUP。",
    )
    p.add_argument("--format", choices=sorted(FORMATS), required=True,
                   help="nir：神经形态交换格式（需要平均池化、硬重置，BN 自动折叠）；onnx：通用推理格式（用 onnxruntime 核对）")
    p.add_argument("--portable", action="store_true",
                   help="只用于 --format nir：写成 snnTorch、Norse 也能读入的可移植形式（平均池化写成卷积，阈值按 NIR 的“严格大于”写）")
    p.add_argument("--verify-images", type=cli.int_range(1, 200, hint="；核对用随包样本的 200 张测试图"), default=200,
                   help="用随包样本的前 N 张测试图核对，1 … 200（默认 200）")
    return p


def export_bytes(model: nn.Module) -> int:
    """导出文件大小的估计：参数按 float32 计（折叠 BN 后只少不多），再加 1 MB 的图结构与余量。"""
    return sum(t.numel() * 4 for t in model.state_dict().values()) + 1024 * 1024


@cli.command(interrupted="已中断（{how}）：没有写入任何文件。")
def main(argv=None) -> Check:
    args = build_parser().parse_args(argv)
    runtime.set_cpu_threads(args.threads)
    path = Path(args.checkpoint).expanduser() if args.checkpoint is not None else DEPLOYABLE
    suffix = FORMATS[args.format]
    if args.portable and args.format != "nir":
        cli.fail(f"--portable 只用于 --format nir（可移植的是 NIR 图里的原语；{args.format.upper()} 没有这一说）。"
                 f"去掉 --portable，或改用 --format nir；还没有导出任何东西。")
    out = cli.resolve_out(args.out if args.out is not None else "checkpoints/", path.stem + suffix)
    if out.suffix.lower() != suffix:   # 在读检查点之前：--out 写错（例如写成了检查点的名字）时什么也不做
        cli.fail(f"--out {out} 没有 {suffix} 扩展名：{args.format.upper()} 文件应以 {suffix} 结尾"
                 f"（例如 {out.with_suffix(suffix) if out.suffix else out.with_name(out.name + suffix)}）。"
                 f"这样检查点之类的文件不会被误写成 {args.format.upper()}；还没有导出任何东西。")
    model, ckpt = load_checkpoint(path, "cpu")
    try:
        _require_csnn(model)
        if args.format == "nir":
            spiking_core(model)                      # 不能导出时，在写任何东西之前就报错
    except ExportError as err:
        cli.fail(f"{args.checkpoint or DEPLOYABLE.name}（模型 {ckpt['model']}，配置 {ckpt['config']}）：{err}")
    cli.check_output_file(out, size_hint=export_bytes(model), not_started="还没有导出任何东西", inputs=(path,))
    x, _ = data.load_raw("mnist-sample", train=False)
    x = data.normalize(x[:args.verify_images])
    remove_stale_temp_files(out.parent)   # 以前被强行结束的导出（SIGKILL、h5py 崩溃）留下的临时文件
    try:
        with atomic_path(out) as tmp:   # 核对通过才改名为 out；不通过（cli.fail）或出错时删掉临时文件
            export_nir(model, tmp, portable=args.portable) if args.format == "nir" else export_onnx(model, tmp)
            result = verify(model, args.format, tmp, x)
            if not result.ok:
                cli.fail(f"导出的 {args.format.upper()} 模型与 PyTorch 不一致：{result.images} 张样本图中只有 {result.same_predictions} 张预测相同"
                         f"（{result.what}的最大差 {result.max_diff:.3g}）。没有写入 {out}。", cli.EXIT_FAILED)
    except OSError as err:   # 导出途中磁盘写满、目录被删……
        kept = f"{out} 保持原样" if out.exists() else f"没有写入 {out}"
        cli.fail(f"导出时无法写文件（{runtime.describe_os_error(err)}）；临时文件已删除，{kept}。请换一个可写、有空间的位置再导出。",
                 cli.EXIT_FAILED)
    source = args.checkpoint or f"随包附带的 {DEPLOYABLE.name}"
    print(f"已导出 {args.format.upper()}{'（可移植形式）' * args.portable}：{out}（{out.stat().st_size / 1e6:.1f} MB；来自 {source}，模型 {ckpt['model']} {ckpt['config']}）")
    print(f"核对：随包样本的 {result.images} 张测试图上，预测与 PyTorch 全部相同；{result.what}的最大差 {result.max_diff:.3g}")
    return result


if __name__ == "__main__":
    main()
