"""命令行训练：python -m snn_tutorial.train --model csnn --out checkpoints/csnn.pt

最后一行打印最终测试准确率。多进程：torchrun --nproc_per_node=N -m snn_tutorial.train ...
（GPU 用 nccl、CPU 用 gloo；--batch-size 是所有进程合计的批大小，每个进程分到 1/N）。

坏的输入不会浪费一次训练：参数在解析时校验（退出码 2）；--out 与 --log-dir 在加载数据、开始训练之前先试写一次。
最终保存仍然失败时（例如磁盘在训练中写满），检查点另存到系统临时目录（再不行就当前目录）并说明位置，退出码 1。
Ctrl+C、SIGTERM、SIGHUP（终端或 SSH 连接断开）：把最近一次评估时的权重存到 <--out 去掉扩展名>.interrupted.pt
（已有同名文件时改用 .interrupted-2.pt 等，从不覆盖；--out 本身不动），还没评估过就明确说明什么也没保存；
退出码 130、143、129。训练中途出错（磁盘写满、另一个进程退出或卡住、内存不足……）同样先保存最近一次评估时的权重，退出码 1。
TensorBoard 日志写不进去只是警告，训练照常进行。多进程时只有 0 号进程检查与保存。
快速模式（--quick 或 SNN_TUTORIAL_QUICK=1）的默认文件名带 -quick，也不会覆盖完整训练的检查点。
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import torch

from . import cli, data, distributed, quick, runtime
from .checkpoint import foreign_format, save_checkpoint
from .models import LIMIT_REASON, LIMITS, MODELS, build_model, count_parameters
from .training import evaluate, fit

DEFAULTS = {  # 每个模型的默认训练设置
    "csnn": {"epochs": 30, "lr": 2e-3, "batch_size": 128, "schedule": "cosine", "max_shift": 2},
    "ann": {"epochs": 12, "lr": 2e-3, "batch_size": 64, "schedule": "cosine"},
    "original": {"epochs": 2, "lr": 0.01, "batch_size": 512, "schedule": "none"},
}
MAX_SHIFT = 8  # MNIST 的数字在 28×28 图像中央约 20×20 的区域里，平移再多就会把笔画大量移出画面
MAX_ROTATE = 45  # 度；转得再多，6 与 9 之类的数字就分不清了
MAX_SCALE = 0.5  # 缩放到 0.5 … 1.5 倍以内
AUGMENT = ("max_shift", "max_rotate", "max_scale")


def build_parser() -> cli.ArgumentParser:
    p = cli.ArgumentParser(
        prog="python -m snn_tutorial.train",
        description="训练本教程的模型，并把检查点（state_dict + 配置 + 指标）保存到 --out。"
                    "参数在开始前全部校验，--out 在训练前先试写；Ctrl+C 会保存最近一次评估时的权重。",
        epilog="退出码：0 成功；1 训练完成但没能存到 --out（已另存到系统临时目录或当前目录，消息里写明位置），"
               "训练中途出错（最近一次评估时的权重存为 <--out 去掉 .pt>.interrupted.pt），"
               "或训练发散（参数出现 NaN，什么也不保存）；2 参数或输入有误（在训练开始前发现）；"
               "130 Ctrl+C、143 SIGTERM、129 SIGHUP（终端或 SSH 连接断开）：最近一次评估时的权重存为 <--out 去掉 .pt>.interrupted.pt"
               "（已有同名文件时改用 .interrupted-2.pt 等，从不覆盖），--out 本身不动；还没评估过就什么也不保存。",
    )
    p.add_argument("--model", choices=sorted(MODELS), default="csnn", help="模型：csnn（本教程）、original（旧教程）、ann（同结构 ANN）")
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default="mnist",
                   help="数据集（默认 mnist；mnist-sample 是随包附带的 1000 张小样本，离线也能用）")
    p.add_argument("--epochs", type=cli.positive_int, default=None, help=f"训练轮数，≥ 1（默认按模型而定：csnn {DEFAULTS['csnn']['epochs']}，original {DEFAULTS['original']['epochs']}）")
    p.add_argument("--T", type=cli.int_range(1, LIMITS["T"], hint=LIMIT_REASON), default=None,
                   help=f"时间步数，1 … {LIMITS['T']}（csnn 默认 4，original 8；ann 没有时间步，忽略此项）")
    p.add_argument("--channels", type=cli.int_range(1, LIMITS["channels"], hint=LIMIT_REASON), nargs=2, default=None,
                   metavar=("C1", "C2"), help=f"两层卷积的通道数，各 1 … {LIMITS['channels']}（默认 32 32）")
    p.add_argument("--hidden", type=cli.int_range(1, LIMITS["hidden"], hint=LIMIT_REASON), default=None,
                   help=f"隐藏全连接层的神经元数，1 … {LIMITS['hidden']}（csnn 默认 256，original 128）")
    p.add_argument("--pool", choices=["max", "avg"], default=None,
                   help="只用于 --model ann：池化方式，max（默认，与 CSNN 相同）或 avg（平均池化，便于转换成 SNN，见笔记本 05）")
    p.add_argument("--deployable", action="store_true",
                   help="只用于 --model csnn：训练可部署变体，两处最大池化换成平均池化（参数量不变），"
                        "折叠 BN 后可导出为神经形态交换格式 NIR（见笔记本 07 与 python -m snn_tutorial.export）")
    p.add_argument("--batch-size", type=cli.int_range(2, hint="；训练时 BN 需要每批至少 2 张图"), default=None,
                   help=f"批大小，≥ 2（csnn 默认 {DEFAULTS['csnn']['batch_size']}）。最后一批若只剩 1 张图，会并入前一批")
    p.add_argument("--lr", type=cli.positive_float, default=None, help=f"Adam 学习率，有限的正数（csnn 默认 {DEFAULTS['csnn']['lr']:g}，original {DEFAULTS['original']['lr']:g}）")
    p.add_argument("--max-shift", type=cli.int_range(0, MAX_SHIFT, hint=f"；数字在图像中央约 20×20 的区域，平移超过 {MAX_SHIFT} 像素会把笔画大量移出画面"),
                   default=None, help=f"训练时随机平移图像的最大像素数（数据增强），0 … {MAX_SHIFT}（默认按模型而定：csnn {DEFAULTS['csnn']['max_shift']}，其余 0）")
    p.add_argument("--max-rotate", type=cli.float_range(0, MAX_ROTATE, hint="；转得太多，6 与 9 之类的数字就分不清了"), default=None,
                   help=f"训练时随机旋转的最大角度（度），0 … {MAX_ROTATE}（默认 0：不旋转。在验证集上试过，见 README 的“配方是怎么选的”）")
    p.add_argument("--max-scale", type=cli.float_range(0, MAX_SCALE), default=None,
                   help=f"训练时随机缩放的最大幅度：缩放到 1 ± 这个数倍，0 … {MAX_SCALE:g}（默认 0：不缩放）。"
                        "旋转或缩放不为 0 时，平移也改用插值，不限于整像素")
    p.add_argument("--val", type=cli.int_range(0), default=0,
                   help="从训练集留出这么多张图作验证集（默认 0：不留；怎样留出见 --val-split）。留出时训练中的评估都在验证集上，"
                        "测试集只在训练结束后评估一次；用来选超参数而不碰测试集")
    p.add_argument("--val-split", choices=list(data.VALIDATION_SPLITS), default=None,
                   help="验证集怎样留出（须与 --val 一起用）：random（默认，按固定种子随机抽取）或 tail（训练集最后的连续一段；"
                        "相邻的图常出自同一个书写者，连续的一段与训练部分共享的书写者更少）")
    p.add_argument("--device", type=cli.device_name, default="auto", help=cli.DEVICE_HELP)
    p.add_argument("--threads", type=cli.thread_count, default=None, help=f"每个进程的{cli.THREADS_HELP}（默认：全部可用核 / 本机进程数）")
    p.add_argument("--data-dir", default=None, help=f"数据目录（默认：环境变量 {data.DATA_ENV}，否则仓库下的 data/）")
    p.add_argument("--out", default=None,
                   help="检查点保存路径（默认 checkpoints/<模型>.pt；不是 mnist 时为 checkpoints/<模型>-<数据集>.pt；"
                        "快速模式再加 -quick，例如 checkpoints/csnn-quick.pt，不会覆盖完整训练的检查点）。"
                        "给出已存在的目录、或以 / 结尾的路径时，检查点放在该目录里并使用默认文件名。训练开始前会先试写一次")
    p.add_argument("--log-dir", default=None, help="TensorBoard 日志目录（默认不写）；例如 runs/csnn。训练开始前会先试写一次")
    p.add_argument("--seed", type=cli.seed_int, default=0, help=f"随机种子，0 … {runtime.SEED_MAX}（默认 0）")
    p.add_argument("--evals-per-epoch", type=cli.int_range(1, 1000, hint="；每轮评估再多，时间就都花在评估上了"), default=1,
                   help="每轮评估几次，1 … 1000（默认 1）")
    p.add_argument("--no-amp", action="store_true", help="不用自动混合精度（默认：CUDA 上 float16；CPU 有原生 bfloat16 指令（AVX-512 BF16 或 AMX）时 bfloat16，其余 CPU 本来就不用）")
    p.add_argument("--no-progress", action="store_true", help="不显示进度条")
    p.add_argument("--compile", action="store_true",
                   help="用 torch.compile 编译模型（实验性，默认关闭）。2 核 CPU 上实测（混合精度 + channels_last 之后）没有加速（0.97 倍），"
                        "首次编译还要额外的时间；见 python -m snn_tutorial.bench --epoch-device cpu --compile")
    p.add_argument("--quick", action="store_true", help=f"快速模式（等同于 {quick.QUICK_ENV}=1）：只用小部分数据训练 1 轮")
    return p


def describe_augment(max_shift: float = 0, max_rotate: float = 0, max_scale: float = 0) -> str:
    """数据增强的一句话说明，例如“随机平移至多 2 像素、旋转至多 10°、缩放 1 ± 0.1 倍”。"""
    parts = [f"平移至多 {max_shift:g} 像素"] if max_shift else []
    parts += [f"旋转至多 {max_rotate:g}°"] if max_rotate else []
    parts += [f"缩放 1 ± {max_scale:g} 倍"] if max_scale else []
    return "随机" + "、".join(parts) if parts else "不做数据增强"


def model_config(args) -> dict:
    """只把命令行明确给出的结构参数传给模型，其余用模型自己的默认值。"""
    config = {}
    if args.channels is not None:
        config["channels"] = list(args.channels)
    if args.hidden is not None:
        config["hidden"] = args.hidden
    if args.T is not None and args.model != "ann":
        config["T"] = args.T
    if args.pool is not None:
        config["pool"] = args.pool
    if getattr(args, "deployable", False):
        config["pool"] = "avg"
    return config


def default_file_name(model: str, dataset: str, is_quick: bool = False) -> str:
    """默认的检查点文件名：csnn.pt、csnn-fashion-mnist.pt；快速模式加 -quick（csnn-quick.pt），不与完整训练的结果同名。"""
    stem = model if dataset == "mnist" else f"{model}-{dataset}"
    return f"{stem}-quick.pt" if is_quick else f"{stem}.pt"


def existing_out_problem(out: Path, is_quick: bool) -> str | None:
    """--out 已有文件时，覆盖它会不会毁掉别的东西：不是 PyTorch 检查点的文件（笔记本、数据、导出的模型……）一律不覆盖；
    快速模式不覆盖完整训练的检查点。可以覆盖时返回 None。"""
    try:
        if not out.is_file() or out.stat().st_size == 0:
            return None
        with open(out, "rb") as f:
            head = f.read(64)
    except OSError:
        return None   # 读不了：交给写入时的检查
    foreign = foreign_format(out, head)
    if foreign is not None:
        return f"--out {out} 已存在，而且不是检查点：{foreign.removeprefix('它')}。训练不会覆盖它；请换一个 --out"
    if not is_quick:
        return None
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            old = torch.load(out, map_location="cpu", weights_only=True)
        was_quick = bool(old.get("metrics", {}).get("quick"))
    except Exception:   # 坏的或别的格式的检查点：在快速模式下同样不冒险覆盖
        was_quick = False
    if was_quick:
        return None
    return (f"现在是快速模式（--quick 或 {quick.QUICK_ENV}=1，只训练很少的数据），而 --out {out} 是一个完整训练的检查点："
            f"快速模式不会覆盖它。请换一个 --out（例如 {out.with_name(out.stem + '-quick.pt')}），"
            f"或去掉 --quick、取消 {quick.QUICK_ENV} 后做完整训练")


def checkpoint_bytes(model: torch.nn.Module) -> int:
    """检查点大小的估计：参数与缓冲区的字节数，再加一点文件结构的开销。"""
    return sum(t.numel() * t.element_size() for t in model.state_dict().values()) + 64 * 1024


def save_with_fallback(path: Path, model, name: str, config: dict, metrics: dict) -> tuple[Path | None, OSError | None]:
    """先存到 path；写不进去（OSError）就依次另存到系统临时目录、当前目录。返回 (实际保存的位置, path 的错误)。"""
    try:
        return save_checkpoint(path, model, name, config, metrics), None
    except OSError as err:
        first_error = err
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for folder in (Path(tempfile.gettempdir()), Path.cwd()):
        rescue = folder / f"snn_tutorial-{path.stem}-{stamp}-{os.getpid()}.pt"
        try:
            return save_checkpoint(rescue, model, name, config, metrics), first_error
        except OSError:
            continue
    return None, first_error


@contextlib.contextmanager
def _ignore_termination():
    """中断后的那次保存很快（几 MB）：期间忽略 SIGTERM 与 SIGHUP（torchrun 收到 Ctrl+C 后会再发 SIGTERM），
    再按一次 Ctrl+C 仍可放弃。"""
    previous = {}
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is None:
            continue
        try:
            previous[signum] = signal.signal(signum, signal.SIG_IGN)
        except ValueError:  # 不在主线程
            break
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _untouched(out: Path) -> str:
    return f"{out} 保持原样" if out.exists() else f"没有写入 {out}"


MAX_PARTIALS = 1000


def _save_snapshot(out: Path, model, name: str, snapshot: dict, metrics: dict) -> tuple[Path | None, str]:
    """把最近一次评估时的权重存到 <out>.interrupted.pt；已有这个文件（上一次中断留下的）时不覆盖它，
    依次改用 .interrupted-2.pt、-3……返回 (实际保存的位置, 附加说明)。写不进去时另存到临时目录或当前目录。"""
    key = "val_acc" if snapshot["watch"] == "验证" else "test_acc"
    metrics = {**metrics, "interrupted": True, "epochs": snapshot["epoch"], key: snapshot["acc"],
               "train_seconds": snapshot["seconds"]}
    model.load_state_dict(snapshot["state"])
    first = out.with_name(f"{out.stem}.interrupted.pt")
    for k in range(1, MAX_PARTIALS + 1):
        partial = first if k == 1 else out.with_name(f"{out.stem}.interrupted-{k}.pt")
        if os.path.lexists(partial):
            continue
        try:
            saved = save_checkpoint(partial, model, name, model.config, metrics, overwrite=False)
        except FileExistsError:   # 同时有别的进程存了同名文件
            continue
        except OSError as err:
            saved, _ = save_with_fallback(partial, model, name, model.config, metrics)
            note = f"（{partial} 写不进去：{runtime.describe_os_error(err)}）" if saved is not None else ""
            return saved, note
        note = f"（{first.name} 是以前留下的，没有覆盖它）" if k > 1 else ""
        return saved, note
    saved, _ = save_with_fallback(first.with_name(f"{out.stem}.interrupted-{MAX_PARTIALS + 1}.pt"), model, name, model.config, metrics)
    return saved, ""


def _save_after_stop(headline: str, out: Path, model, name: str, snapshot: dict, metrics: dict) -> None:
    """训练停下了（中断或出错）：保存最近一次评估时的权重，用一段中文说明；headline 是开头，例如“已中断（Ctrl+C）”。"""
    if not snapshot:
        cli.eprint(f"{headline}：还没有完成任何一次评估，没有保存任何文件（{_untouched(out)}）。")
        return
    try:
        with _ignore_termination():
            saved, note = _save_snapshot(out, model, name, snapshot, metrics)
    except KeyboardInterrupt:
        cli.eprint(f"{headline}：保存中途再次被中断，没有保存任何文件（{_untouched(out)}）。")
        return
    where = f"已保存到 {saved}{note}" if saved is not None else "也没能保存（各处都写不进去）"
    cli.eprint(f"{headline}：第 {snapshot['epoch']:.2f} 轮评估时的权重（{snapshot['watch']}准确率 {snapshot['acc']:.2%}）{where}；"
               f"{_untouched(out)}。")


def _save_interrupted(exc: BaseException, out: Path, model, name: str, snapshot: dict, metrics: dict) -> None:
    """训练被中断（Ctrl+C、SIGTERM、SIGHUP）：把最近一次评估时的权重存到 <out>.interrupted.pt，并用一行中文说明。"""
    _save_after_stop(f"已中断（{cli.interrupt_name(exc)}）", out, model, name, snapshot, metrics)


KNOWN_FAILURES = (OSError, MemoryError, data.DataError)   # 训练中途可能出现、不是程序错误的异常：只给中文说明，不打印调用栈


@cli.command(interrupted="已中断（{how}）：训练还没有开始，没有保存任何文件。")
def main(argv=None) -> float:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.pool is not None and args.model != "ann":
        parser.error(f"--pool 只用于 --model ann（{args.model} 的池化方式是固定的）")
    if args.deployable and args.model != "csnn":
        parser.error(f"--deployable 只用于 --model csnn（{args.model} 没有可部署变体）")
    if args.val_split is not None and not args.val:
        parser.error("--val-split 须与 --val 一起用（例如 --val 5000 --val-split tail）：不留验证集时没有什么可划分的")
    val_split = args.val_split or "random"
    rank, world_size, local_rank = distributed.world()
    if args.val and args.val < world_size:
        parser.error(f"--val {args.val} 比进程数 {world_size} 还少：每个进程至少要分到 1 张验证图，请增大 --val 或减少进程数")
    is_quick = args.quick or quick.is_quick()
    d = DEFAULTS[args.model]
    epochs = args.epochs if args.epochs is not None else (1 if is_quick else d["epochs"])
    batch_size = args.batch_size if args.batch_size is not None else d["batch_size"]
    lr = args.lr if args.lr is not None else d["lr"]
    augment = {k: getattr(args, k) if getattr(args, k) is not None else d.get(k, 0) for k in AUGMENT}
    if world_size > 1 and batch_size % world_size:
        parser.error(f"批大小 {batch_size} 不能被进程数 {world_size} 整除，请调整 --batch-size")
    if world_size > 1 and batch_size // world_size < 2:
        parser.error(f"每个进程分到的批大小 {batch_size} / {world_size} 小于 2（训练时 BN 需要每批至少 2 张图），请增大 --batch-size")
    main_process = rank == 0
    say = cli.say if main_process else (lambda *a, **k: None)

    device = runtime.select_device(args.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    # 多个进程分享 CPU 核：每个进程的线程数默认为 可用核数 / 本机进程数
    local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    threads = runtime.set_cpu_threads(args.threads if args.threads is not None else max(1, runtime.available_cores() // local_procs))
    runtime.seed_everything(args.seed)
    model = build_model(args.model, **model_config(args))
    out = cli.resolve_out(args.out if args.out is not None else "checkpoints/", default_file_name(args.model, args.dataset, is_quick))
    log_dir = None if args.log_dir is None else Path(args.log_dir).expanduser()   # --log-dir=~/runs 时 shell 不展开 ~
    if main_process:  # 在加载数据、开始训练之前确认结果能保存
        cli.check_output_file(out, "--out", size_hint=checkpoint_bytes(model))
        problem = existing_out_problem(out, is_quick)
        if problem is not None:
            cli.fail(f"{problem}。训练还没有开始。")
        if log_dir is not None:
            if os.path.abspath(log_dir) == os.path.abspath(out) or Path(os.path.abspath(log_dir)).is_relative_to(os.path.abspath(out)):
                cli.fail(f"--out {out} 与 --log-dir {log_dir} 指向同一个位置：检查点是一个文件，日志是一个目录，不能同名。"
                         f"训练还没有开始；请把它们分开，例如 --out checkpoints/csnn.pt --log-dir runs/csnn。")
            cli.check_output_dir(log_dir, "--log-dir")
    distributed.init(device.type)
    limit_train, limit_test = (4000, 1000) if is_quick and args.dataset != "mnist-sample" else (None, None)
    shard = {"rank": rank, "world_size": world_size}
    images, labels = data.load_raw(args.dataset, train=True, root=args.data_dir)
    val = None
    if args.val:
        try:
            images, labels, val_x, val_y = data.split_validation(images, labels, args.val, how=val_split)
        except ValueError as err:
            cli.fail(f"参数 --val：{err}（训练还没有开始）")
        val = data.TensorBatches(val_x[:limit_test], val_y[:limit_test], batch_size=256, shuffle=False, dataset=args.dataset,
                                 device=device, pad=False, **shard)
    train = data.TensorBatches(images[:limit_train], labels[:limit_train], batch_size=batch_size // world_size, seed=args.seed,
                               dataset=args.dataset, device=device, **augment, **shard)
    test = data.tensor_batches(args.dataset, False, args.data_dir, limit=limit_test, batch_size=256, device=device,
                               pad=False, **shard)
    watch = val if val is not None else test   # 训练中评估的数据：有验证集就只看验证集
    watch_name = "验证" if val is not None else "测试"

    config = model.config
    where_val = "末尾连续" if val_split == "tail" else "随机"
    say(f"模型 {args.model} {config}，参数 {count_parameters(model):,} 个；数据 {args.dataset}，"
        f"训练 {len(train.y)} 张、{f'验证 {len(val.y)} 张（从训练集{where_val}留出）、' if val is not None else ''}测试 {len(test.y)} 张；设备 {device}，每进程 CPU 线程 {threads}；"
        f"{epochs} 轮，批大小 {batch_size}，学习率 {lr}，{describe_augment(**augment)}"
        f"{f'；{world_size} 个进程（DistributedDataParallel）' if world_size > 1 else ''}{'（快速模式）' if is_quick else ''}")
    say(f"检查点将保存到 {out}", flush=True)
    model.to(device)
    net = model
    if world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if args.compile:
        net = torch.compile(net)
    metrics = {"dataset": args.dataset, "batch_size": batch_size, "lr": lr, **augment, "val": args.val,
               **({"val_split": val_split} if args.val else {}),
               "seed": args.seed, "quick": is_quick, "world_size": world_size,
               "command": "python -m snn_tutorial.train " + " ".join(sys.argv[1:] if argv is None else argv)}
    snapshot = {}  # 最近一次评估时的权重（只在 0 号进程，放在 CPU 内存里），Ctrl+C 时保存它

    def on_eval(h):
        if main_process:  # 先留下快照再打印：看到这一行时，Ctrl+C 一定能保存这次评估的权重
            snapshot.update(state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                            epoch=h.epoch[-1], acc=h.test_acc[-1], watch=watch_name, seconds=h.seconds[-1])
        say(f"  第 {h.epoch[-1]:.2f} 轮：训练损失 {h.train_loss[-1]:.4f}，"
            f"{watch_name}准确率 {h.test_acc[-1]:.2%}，累计训练 {h.seconds[-1]:.0f} 秒", flush=True)

    start = time.perf_counter()
    try:
        history = fit(net, train, watch, epochs=epochs, lr=lr, schedule=d["schedule"], device=device,
                      amp=not args.no_amp, evals_per_epoch=args.evals_per_epoch, log_dir=log_dir,
                      progress=not args.no_progress, on_eval=on_eval)
        wall = time.perf_counter() - start
        _, acc = evaluate(net, test, device)
        val_acc = history.test_acc[-1] if val is not None else None   # fit 最后一次评估就在训练结束时、在验证集上
        agree = distributed.parameters_agree(model) if world_size > 1 else True
    except KeyboardInterrupt as exc:
        if main_process:
            _save_interrupted(exc, out, model.cpu(), args.model, snapshot, metrics)
        raise SystemExit(cli.interrupt_exit_code(exc)) from None
    except Exception as exc:   # 训练中途出错（磁盘写满、另一个进程退出或卡住、内存不足……）：先保存最近一次评估的权重
        known = isinstance(exc, KNOWN_FAILURES) or cli.is_memory_error(exc) or distributed.is_communication_error(exc)
        if main_process:
            try:
                _save_after_stop(f"错误：训练中途出错（{cli.describe_error(exc)}）", out, model, args.model, snapshot, metrics)
            except Exception as save_error:   # 连保存也出错：说明原来的错误，不掩盖它
                cli.eprint(f"错误：训练中途出错（{cli.describe_error(exc)}），保存最近一次评估时的权重也失败了"
                           f"（{cli.describe_error(save_error)}）；{_untouched(out)}。")
            if not known:
                cli.eprint("这多半是程序本身的错误；下面是调用栈，报告问题时请附上：")
                import traceback

                traceback.print_exception(exc, file=sys.stderr)
        elif not known:
            raise
        else:
            cli.eprint(f"错误：进程 {rank}：{cli.describe_error(exc)}")
        raise SystemExit(cli.EXIT_FAILED) from None
    if world_size > 1:
        say(f"{world_size} 个进程的参数逐位一致：{'是' if agree else '否'}")
        if not agree:
            raise SystemExit("错误：各进程的参数不一致")

    code = 0
    if main_process:
        metrics = {"test_acc": acc, "train_seconds": history.seconds[-1], "wall_seconds": wall, "epochs": epochs, **metrics}
        if val_acc is not None:
            metrics["val_acc"] = val_acc
        if not all(torch.isfinite(v).all() for v in model.state_dict().values() if v.is_floating_point()):
            cli.eprint(f"错误：训练发散了，参数里出现了 NaN 或无穷大，所以没有保存（{_untouched(out)}）。请减小 --lr 后重新训练。")
            code = cli.EXIT_FAILED
        else:
            try:
                saved, err = save_with_fallback(out, model, args.model, config, metrics)
            except KeyboardInterrupt as exc:
                cli.eprint(f"已中断（{cli.interrupt_name(exc)}）：保存被打断，临时文件已删除，{_untouched(out)}；本次训练的结果没有保存。")
                raise SystemExit(cli.interrupt_exit_code(exc)) from None
            if err is None:
                say(f"检查点已保存到 {saved}；总耗时 {wall:.0f} 秒")
            else:
                reason = runtime.describe_os_error(err)
                where = (f"训练好的模型已另存到 {saved}，请把它移到需要的位置" if saved is not None
                         else "也无法另存到系统临时目录或当前目录：本次训练的结果没有保存")
                cli.eprint(f"错误：无法把检查点写入 {out}（{reason}）；{where}。")
                code = cli.EXIT_FAILED
    distributed.shutdown()
    if val_acc is not None:
        say(f"最终验证准确率：{val_acc:.2%}")
    say(f"最终测试准确率：{acc:.2%}")
    if code:
        raise SystemExit(code)
    return acc


if __name__ == "__main__":
    main()
