"""命令行训练：python -m snn_tutorial.train --model csnn --out checkpoints/csnn.pt

最后一行打印最终测试准确率。多进程：torchrun --nproc_per_node=N -m snn_tutorial.train ...
（GPU 用 nccl、CPU 用 gloo；--batch-size 是所有进程合计的批大小，每个进程分到 1/N）。
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import torch

from . import data, distributed, quick, runtime
from .checkpoint import save_checkpoint
from .models import MODELS, build_model, count_parameters
from .training import evaluate, fit

DEFAULTS = {  # 每个模型的默认训练设置
    "csnn": {"epochs": 12, "lr": 2e-3, "batch_size": 64, "schedule": "cosine"},
    "ann": {"epochs": 12, "lr": 2e-3, "batch_size": 64, "schedule": "cosine"},
    "original": {"epochs": 2, "lr": 0.01, "batch_size": 512, "schedule": "none"},
}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m snn_tutorial.train",
        description="训练本教程的模型，并把检查点（state_dict + 配置 + 指标）保存到 --out。",
    )
    p.add_argument("--model", choices=sorted(MODELS), default="csnn", help="模型：csnn（本教程）、original（旧教程）、ann（同结构 ANN）")
    p.add_argument("--dataset", choices=sorted(data.DATASETS), default="mnist",
                   help="数据集（默认 mnist；mnist-sample 是随包附带的 1000 张小样本，离线也能用）")
    p.add_argument("--epochs", type=int, default=None, help="训练轮数（默认按模型而定：csnn 12，original 2）")
    p.add_argument("--T", type=int, default=None, help="时间步数（csnn 默认 4，original 8）")
    p.add_argument("--channels", type=int, nargs=2, default=None, metavar=("C1", "C2"), help="两层卷积的通道数（默认 32 32）")
    p.add_argument("--hidden", type=int, default=None, help="隐藏全连接层的神经元数（csnn 默认 256，original 128）")
    p.add_argument("--batch-size", type=int, default=None, help="批大小（csnn 默认 64）")
    p.add_argument("--lr", type=float, default=None, help="Adam 学习率（csnn 默认 2e-3，original 0.01）")
    p.add_argument("--max-shift", type=int, default=0, help="训练时随机平移图像的最大像素数（数据增强，默认 0）")
    p.add_argument("--device", default="auto", help="auto（默认：cuda → mps → cpu）、cpu、cuda、cuda:1、mps")
    p.add_argument("--threads", type=int, default=None, help="CPU 线程数（默认：全部可用核）")
    p.add_argument("--data-dir", default=None, help=f"数据目录（默认：环境变量 {data.DATA_ENV}，否则仓库下的 data/）")
    p.add_argument("--out", default="checkpoints/model.pt", help="检查点保存路径（默认 checkpoints/model.pt）")
    p.add_argument("--log-dir", default=None, help="TensorBoard 日志目录（默认不写）；例如 runs/csnn")
    p.add_argument("--seed", type=int, default=0, help="随机种子（默认 0）")
    p.add_argument("--evals-per-epoch", type=int, default=1, help="每轮评估几次（默认 1）")
    p.add_argument("--no-amp", action="store_true", help="在 CUDA 上也不用自动混合精度")
    p.add_argument("--no-progress", action="store_true", help="不显示进度条")
    p.add_argument("--compile", action="store_true", help="用 torch.compile 编译模型（实验性，默认关闭；2 核 CPU 上实测编译后每轮快约 1.4 倍，但首次编译需要额外时间）")
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
    return config


def main(argv=None) -> float:
    args = build_parser().parse_args(argv)
    is_quick = args.quick or quick.is_quick()
    d = DEFAULTS[args.model]
    epochs = args.epochs or (1 if is_quick else d["epochs"])
    batch_size = args.batch_size or d["batch_size"]
    lr = args.lr or d["lr"]
    rank, world_size, local_rank = distributed.world()
    main_process = rank == 0
    say = print if main_process else (lambda *a, **k: None)
    try:
        device = runtime.select_device(args.device)
        if device.type == "cuda" and world_size > 1:
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        if world_size > 1 and batch_size % world_size:
            raise ValueError(f"批大小 {batch_size} 不能被进程数 {world_size} 整除，请调整 --batch-size。")
        # 多个进程分享 CPU 核：每个进程的线程数默认为 可用核数 / 本机进程数
        local_procs = int(os.environ.get("LOCAL_WORLD_SIZE", world_size))
        threads = runtime.set_cpu_threads(args.threads or max(1, runtime.available_cores() // local_procs))
        distributed.init(device.type)
        runtime.seed_everything(args.seed)
        model = build_model(args.model, **model_config(args))
        limit_train, limit_test = (2000, 1000) if is_quick and args.dataset != "mnist-sample" else (None, None)
        shard = {"rank": rank, "world_size": world_size}
        train = data.tensor_batches(args.dataset, True, args.data_dir, limit=limit_train, batch_size=batch_size // world_size,
                                    seed=args.seed, device=device, max_shift=args.max_shift, **shard)
        test = data.tensor_batches(args.dataset, False, args.data_dir, limit=limit_test, batch_size=256, device=device,
                                   pad=False, **shard)
    except (data.DataError, runtime.DeviceError, ValueError) as err:
        print(f"错误：{err}", file=sys.stderr)
        raise SystemExit(2)

    config = model.config
    say(f"模型 {args.model} {config}，参数 {count_parameters(model):,} 个；数据 {args.dataset}，"
        f"训练 {len(train.y)} 张、测试 {len(test.y)} 张；设备 {device}，每进程 CPU 线程 {threads}；"
        f"{epochs} 轮，批大小 {batch_size}，学习率 {lr}"
        f"{f'；{world_size} 个进程（DistributedDataParallel）' if world_size > 1 else ''}{'（快速模式）' if is_quick else ''}")
    model.to(device)
    net = model
    if world_size > 1:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if args.compile:
        net = torch.compile(net)
    start = time.perf_counter()
    history = fit(net, train, test, epochs=epochs, lr=lr, schedule=d["schedule"], device=device,
                  amp=not args.no_amp, evals_per_epoch=args.evals_per_epoch, log_dir=args.log_dir,
                  progress=not args.no_progress,
                  on_eval=lambda h: say(f"  第 {h.epoch[-1]:.2f} 轮：训练损失 {h.train_loss[-1]:.4f}，"
                                        f"测试准确率 {h.test_acc[-1]:.2%}，累计训练 {h.seconds[-1]:.0f} 秒", flush=True))
    wall = time.perf_counter() - start
    _, acc = evaluate(net, test, device)
    if world_size > 1:
        agree = distributed.parameters_agree(model)
        say(f"{world_size} 个进程的参数逐位一致：{'是' if agree else '否'}")
        if not agree:
            raise SystemExit("错误：各进程的参数不一致")
    if main_process:
        metrics = {"test_acc": acc, "train_seconds": history.seconds[-1], "wall_seconds": wall, "epochs": epochs,
                   "dataset": args.dataset, "batch_size": batch_size, "lr": lr, "max_shift": args.max_shift,
                   "seed": args.seed, "quick": is_quick, "world_size": world_size,
                   "command": "python -m snn_tutorial.train " + " ".join(sys.argv[1:] if argv is None else argv)}
        path = save_checkpoint(args.out, model, args.model, config, metrics)
        say(f"检查点已保存到 {path}；总耗时 {wall:.0f} 秒")
    distributed.shutdown()
    say(f"最终测试准确率：{acc:.2%}")
    return acc


if __name__ == "__main__":
    main()
