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

import argparse
import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from . import cli, data, distributed, quick, runtime
from .configs import LIMIT_REASON, LIMITS
from .models import MODELS, build_model, count_parameters
from .neurons import NEURONS
from .recipes import AUGMENT, MAX_ROTATE, MAX_SCALE, MAX_SHIFT, RECIPES, Recipe, describe_augment  # noqa: F401
from .train_save import checkpoint_bytes, default_file_name, existing_out_problem, save, save_interrupted, stop_after_error
from .training import History, evaluate


# 只对某些模型有意义的参数：(参数的属性名, 命令行写法, 适用的模型, 用在别的模型上时的说明)。解析后按这张表统一检查。
FLAG_RULES = (
    ("pool", "--pool", ("ann",), "{model} 的池化方式是固定的"),
    ("deployable", "--deployable", ("csnn",), "{model} 没有可部署变体"),
    ("neuron", "--neuron", ("csnn",), "{model} 的神经元是固定的"),
)
OUT_HELP = ("检查点保存路径（默认 checkpoints/<模型>.pt；不是 mnist 时为 checkpoints/<模型>-<数据集>.pt；"
                        "快速模式再加 -quick，例如 checkpoints/csnn-quick.pt，不会覆盖完整训练的检查点）。"
                        "给出已存在的目录、或以 / 结尾的路径时，检查点放在该目录里并使用默认文件名。训练开始前会先试写一次")
COMPILE_HELP = ("用 torch.compile 编译模型（实验性，默认关闭）。2 核 CPU 上实测（混合精度 + channels_last 之后）没有加速（0.97 倍），"
                        "首次编译还要额外的时间；见 python -m snn_tutorial.bench --epoch-device cpu --compile")
def build_parser() -> cli.ArgumentParser:
    common = cli.common_parser(
        "device", "threads", "data_dir", "out", "compile",
        threads=f"每个进程的{cli.THREADS_HELP}（默认：全部可用核 / 本机进程数）",
        out=OUT_HELP, compile=COMPILE_HELP)
    p = cli.ArgumentParser(
        prog="python -m snn_tutorial.train", parents=[common],
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
    p.add_argument("--epochs", type=cli.positive_int, default=None, help=f"训练轮数，≥ 1（默认按模型而定：csnn {RECIPES['csnn'].epochs}，original {RECIPES['original'].epochs}）")
    p.add_argument("--T", type=cli.int_range(1, LIMITS["T"], hint=LIMIT_REASON), default=None,
                   help=f"时间步数，1 … {LIMITS['T']}（csnn 默认 4，original 8；ann 没有时间步，忽略此项）")
    p.add_argument("--channels", type=cli.int_range(1, LIMITS["channels"], hint=LIMIT_REASON), nargs=2, default=None,
                   metavar=("C1", "C2"), help=f"两层卷积的通道数，各 1 … {LIMITS['channels']}（默认 32 32）")
    p.add_argument("--hidden", type=cli.int_range(1, LIMITS["hidden"], hint=LIMIT_REASON), default=None,
                   help=f"隐藏全连接层的神经元数，1 … {LIMITS['hidden']}（csnn 默认 256，original 128）")
    p.add_argument("--neuron", choices=sorted(NEURONS), default=None,
                   help="只用于 --model csnn：脉冲神经元，" + "；".join(f"{k.name}：{k.help}" for k in NEURONS.values()))
    p.add_argument("--pool", choices=["max", "avg"], default=None,
                   help="只用于 --model ann：池化方式，max（默认，与 CSNN 相同）或 avg（平均池化，便于转换成 SNN，见笔记本 05）")
    p.add_argument("--deployable", action="store_true",
                   help="只用于 --model csnn：训练可部署变体，两处最大池化换成平均池化（参数量不变），"
                        "折叠 BN 后可导出为神经形态交换格式 NIR（见笔记本 07 与 python -m snn_tutorial.export）")
    p.add_argument("--batch-size", type=cli.int_range(2, hint="；训练时 BN 需要每批至少 2 张图"), default=None,
                   help=f"批大小，≥ 2（csnn 默认 {RECIPES['csnn'].batch_size}）。最后一批若只剩 1 张图，会并入前一批")
    p.add_argument("--lr", type=cli.positive_float, default=None, help=f"Adam 学习率，有限的正数（csnn 默认 {RECIPES['csnn'].lr:g}，original {RECIPES['original'].lr:g}）")
    p.add_argument("--max-shift", type=cli.int_range(0, MAX_SHIFT, hint=f"；数字在图像中央约 20×20 的区域，平移超过 {MAX_SHIFT} 像素会把笔画大量移出画面"),
                   default=None, help=f"训练时随机平移图像的最大像素数（数据增强），0 … {MAX_SHIFT}（默认按模型而定：csnn {RECIPES['csnn'].max_shift}，其余 0）")
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
    p.add_argument("--log-dir", default=None, help="TensorBoard 日志目录（默认不写）；例如 runs/csnn。训练开始前会先试写一次")
    p.add_argument("--seed", type=cli.seed_int, default=0, help=f"随机种子，0 … {runtime.SEED_MAX}（默认 0）")
    p.add_argument("--evals-per-epoch", type=cli.int_range(1, 1000, hint="；每轮评估再多，时间就都花在评估上了"), default=1,
                   help="每轮评估几次，1 … 1000（默认 1）")
    p.add_argument("--no-amp", action="store_true", help="不用自动混合精度（默认：CUDA 上 float16；CPU 有原生 bfloat16 指令（AVX-512 BF16 或 AMX）时 bfloat16，其余 CPU 本来就不用）")
    p.add_argument("--no-progress", action="store_true", help="不显示进度条")
    p.add_argument("--quick", action="store_true", help=f"快速模式（等同于 {quick.QUICK_ENV}=1）：只用小部分数据训练 1 轮")
    return p



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
    if getattr(args, "neuron", None) is not None:
        config["neuron"] = args.neuron
    return config


def check_flags(parser: argparse.ArgumentParser, args) -> None:
    """按 FLAG_RULES 检查只对某些模型有意义的参数，再检查参数之间的搭配；不对时 parser.error（退出码 2）。"""
    for attr, flag, models, why in FLAG_RULES:
        if getattr(args, attr) not in (None, False) and args.model not in models:
            parser.error(f"{flag} 只用于 --model {' 或 '.join(models)}（{why.format(model=args.model)}）")
    if args.val_split is not None and not args.val:
        parser.error("--val-split 须与 --val 一起用（例如 --val 5000 --val-split tail）：不留验证集时没有什么可划分的")


@dataclass
class Plan:
    """一次训练的全部输入，在加载数据、开始训练之前定好。"""

    args: argparse.Namespace
    recipe: Recipe
    is_quick: bool
    val_split: str
    rank: int
    world_size: int
    device: torch.device
    threads: int
    out: Path
    log_dir: Path | None
    command: str

    @property
    def main_process(self) -> bool:
        return self.rank == 0

    def say(self, *args, **kwargs) -> None:
        if self.main_process:
            cli.say(*args, **kwargs)

    def run_inputs(self) -> dict:
        """写进检查点 "run" 的运行输入。"""
        a = self.args
        return {"dataset": a.dataset, **self.recipe.as_dict(), **self.recipe.augment, "val": a.val,
                **({"val_split": self.val_split} if a.val else {}), "seed": a.seed, "quick": self.is_quick,
                "world_size": self.world_size, "command": self.command}


def resolve(parser: argparse.ArgumentParser, args, argv=None) -> Plan:
    """参数 → Plan：配方（默认配方 + 命令行给出的项）、设备、线程、输出位置。进程数相关的问题在这里报（parser.error）。"""
    rank, world_size, local_rank = distributed.world()
    if args.val and args.val < world_size:
        parser.error(f"--val {args.val} 比进程数 {world_size} 还少：每个进程至少要分到 1 张验证图，请增大 --val 或减少进程数")
    is_quick = args.quick or quick.is_quick()
    given = {f.name: getattr(args, f.name, None) for f in dataclasses.fields(Recipe)}   # 命令行没给的项是 None：用默认配方的
    recipe = RECIPES[args.model].replace(**{**given, "epochs": args.epochs or (1 if is_quick else None)})
    if world_size > 1 and recipe.batch_size % world_size:
        parser.error(f"批大小 {recipe.batch_size} 不能被进程数 {world_size} 整除，请调整 --batch-size")
    if world_size > 1 and recipe.batch_size // world_size < 2:
        parser.error(f"每个进程分到的批大小 {recipe.batch_size} / {world_size} 小于 2（训练时 BN 需要每批至少 2 张图），请增大 --batch-size")
    device = runtime.select_device(args.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    # 多个进程分享 CPU 核：每个进程的线程数默认为 可用核数 / 本机进程数
    local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
    threads = runtime.set_cpu_threads(args.threads if args.threads is not None else max(1, runtime.available_cores() // local_procs))
    out = cli.resolve_out(args.out if args.out is not None else "checkpoints/", default_file_name(args.model, args.dataset, is_quick))
    log_dir = None if args.log_dir is None else Path(args.log_dir).expanduser()   # --log-dir=~/runs 时 shell 不展开 ~
    command = "python -m snn_tutorial.train " + " ".join(sys.argv[1:] if argv is None else argv)
    return Plan(args, recipe, is_quick, args.val_split or "random", rank, world_size, device, threads, out, log_dir, command)


def check_outputs(plan: Plan, model: torch.nn.Module) -> None:
    """在加载数据、开始训练之前确认结果能保存（只在 0 号进程）。"""
    if not plan.main_process:
        return
    out, log_dir = plan.out, plan.log_dir
    cli.check_output_file(out, "--out", size_hint=checkpoint_bytes(model))
    problem = existing_out_problem(out, plan.is_quick)
    if problem is not None:
        cli.fail(f"{problem}。训练还没有开始。")
    if log_dir is not None:
        if os.path.abspath(log_dir) == os.path.abspath(out) or Path(os.path.abspath(log_dir)).is_relative_to(os.path.abspath(out)):
            cli.fail(f"--out {out} 与 --log-dir {log_dir} 指向同一个位置：检查点是一个文件，日志是一个目录，不能同名。"
                     f"训练还没有开始；请把它们分开，例如 --out checkpoints/csnn.pt --log-dir runs/csnn。")
        cli.check_output_dir(log_dir, "--log-dir")


@dataclass
class Batches:
    train: data.TensorBatches
    val: data.TensorBatches | None
    test: data.TensorBatches

    @property
    def watch(self) -> data.TensorBatches:   # 训练中评估的数据：有验证集就只看验证集
        return self.val if self.val is not None else self.test

    @property
    def watch_name(self) -> str:
        return "验证" if self.val is not None else "测试"


def load_batches(plan: Plan) -> Batches:
    """读数据，留出验证集（--val），按配方建好训练批次；多进程时每个进程拿自己那一份。"""
    a = plan.args
    limit_train, limit_test = (4000, 1000) if plan.is_quick and a.dataset != "mnist-sample" else (None, None)
    shard = {"rank": plan.rank, "world_size": plan.world_size}
    images, labels = data.load_raw(a.dataset, train=True, root=a.data_dir)
    val = None
    if a.val:
        try:
            images, labels, val_x, val_y = data.split_validation(images, labels, a.val, how=plan.val_split)
        except ValueError as err:
            cli.fail(f"参数 --val：{err}（训练还没有开始）")
        val = data.TensorBatches(val_x[:limit_test], val_y[:limit_test], batch_size=256, shuffle=False, dataset=a.dataset,
                                 device=plan.device, pad=False, **shard)
    train = plan.recipe.train_batches(images[:limit_train], labels[:limit_train], seed=a.seed, dataset=a.dataset,
                                      device=plan.device, **shard)
    test = data.tensor_batches(a.dataset, False, a.data_dir, limit=limit_test, batch_size=256, device=plan.device,
                               pad=False, **shard)
    return Batches(train, val, test)


def announce(plan: Plan, model: torch.nn.Module, b: Batches) -> None:
    a, r = plan.args, plan.recipe
    where_val = "末尾连续" if plan.val_split == "tail" else "随机"
    plan.say(f"模型 {a.model} {model.config}，参数 {count_parameters(model):,} 个；数据 {a.dataset}，"
             f"训练 {len(b.train.y)} 张、{f'验证 {len(b.val.y)} 张（从训练集{where_val}留出）、' if b.val is not None else ''}"
             f"测试 {len(b.test.y)} 张；设备 {plan.device}，每进程 CPU 线程 {plan.threads}；"
             f"{r.epochs} 轮，批大小 {r.batch_size}，学习率 {r.lr}，{r.describe_augment()}"
             f"{f'；{plan.world_size} 个进程（DistributedDataParallel）' if plan.world_size > 1 else ''}{'（快速模式）' if plan.is_quick else ''}")
    plan.say(f"检查点将保存到 {plan.out}", flush=True)


@dataclass
class Result:
    history: History
    test_acc: float
    val_acc: float | None
    wall_seconds: float


def _wrap(plan: Plan, model: torch.nn.Module) -> torch.nn.Module:
    net = model.to(plan.device)
    if plan.world_size > 1:
        device = plan.device
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    return torch.compile(net) if plan.args.compile else net


def run(plan: Plan, model: torch.nn.Module, b: Batches) -> Result:
    """按配方训练并在测试集上评估一次。被中断或出错时先保存最近一次评估的权重，再以相应的退出码结束。"""
    a = plan.args
    net = _wrap(plan, model)
    snapshot = {}  # 最近一次评估时的权重（只在 0 号进程，放在 CPU 内存里），Ctrl+C 时保存它

    def on_eval(h):
        if plan.main_process:  # 先留下快照再打印：看到这一行时，Ctrl+C 一定能保存这次评估的权重
            snapshot.update(state={k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()},
                            epoch=h.epoch[-1], acc=h.eval_acc[-1], watch=b.watch_name, seconds=h.seconds[-1])
        plan.say(f"  第 {h.epoch[-1]:.2f} 轮：训练损失 {h.train_loss[-1]:.4f}，"
                 f"{b.watch_name}准确率 {h.eval_acc[-1]:.2%}，累计训练 {h.seconds[-1]:.0f} 秒", flush=True)

    start = time.perf_counter()
    try:
        history = plan.recipe.fit(net, b.train, b.watch, device=plan.device, amp=not a.no_amp,
                                  evals_per_epoch=a.evals_per_epoch, log_dir=plan.log_dir, progress=not a.no_progress,
                                  on_eval=on_eval)
        wall = time.perf_counter() - start
        _, acc = evaluate(net, b.test, plan.device)
        val_acc = history.eval_acc[-1] if b.val is not None else None   # fit 最后一次评估就在训练结束时、在验证集上
        agree = distributed.parameters_agree(model) if plan.world_size > 1 else True
    except KeyboardInterrupt as exc:
        if plan.main_process:
            save_interrupted(exc, plan.out, model.cpu(), a.model, snapshot, plan.run_inputs())
        raise SystemExit(cli.interrupt_exit_code(exc)) from None
    except Exception as exc:   # 训练中途出错（磁盘写满、另一个进程退出或卡住、内存不足……）：先保存最近一次评估的权重
        stop_after_error(plan, model, snapshot, exc)
    if plan.world_size > 1:
        plan.say(f"{plan.world_size} 个进程的参数逐位一致：{'是' if agree else '否'}")
        if not agree:
            raise SystemExit("错误：各进程的参数不一致")
    return Result(history, acc, val_acc, wall)


@cli.command(interrupted="已中断（{how}）：训练还没有开始，没有保存任何文件。")
def main(argv=None) -> float:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_flags(parser, args)
    plan = resolve(parser, args, argv)
    runtime.seed_everything(args.seed)
    model = build_model(args.model, **model_config(args))
    check_outputs(plan, model)
    distributed.init(plan.device.type)
    batches = load_batches(plan)
    announce(plan, model, batches)
    result = run(plan, model, batches)
    code = save(plan, model, result) if plan.main_process else 0
    distributed.shutdown()
    if result.val_acc is not None:
        plan.say(f"最终验证准确率：{result.val_acc:.2%}")
    plan.say(f"最终测试准确率：{result.test_acc:.2%}")
    if code:
        raise SystemExit(code)
    return result.test_acc


if __name__ == "__main__":
    main()
